#!/usr/bin/env bash
# run.sh BUILD_DIR: run every benchmark under glibc, jemalloc, mimalloc,
# tcmalloc and tessera (BUILD_DIR/libtessera.so) and print markdown tables of
# median time, ratio to tessera, spread and peak RSS.
#
# Runs are interleaved: each round runs every workload once under every
# allocator (starting allocator rotated per round), so slow phases of a noisy
# machine hit all allocators alike.  Installs nothing.
#
# Environment:
#   RUNS=5          runs per (workload, allocator); the median is reported
#   BENCH_SCALE=1   multiplies the iteration counts of every program
#   WORKLOADS="st_lifo st_random prodcons server"   subset / order
#   TIMEOUT=300     seconds before one run counts as failed (hang)
#   BENCH_PIN=1     pin the two threads of prodcons/server to separate CPUs
#                   (steadier on a quiet machine, much worse on a busy one)
#   TS_BENCH_NOSTATS=1  also build/libtessera_nostats.so (the ledger's
#                   counters compiled out): what the ledger costs
#   TS_BENCH_MODES=1    also tessera with stats_exact:true and with tags:true
#   TS_BENCH_NOMIXED=1  also tessera with mixed_slabs:false
set -u

usage() { echo "usage: $0 BUILD_DIR   (e.g. $0 build)" >&2; exit 2; }
[ $# -eq 1 ] || usage
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "run.sh: no such directory: $1" >&2; exit 2; }

RUNS=${RUNS:-5}
export BENCH_SCALE=${BENCH_SCALE:-1}
WORKLOADS=${WORKLOADS:-"st_lifo st_random prodcons server"}
TIMEOUT=${TIMEOUT:-300}
case $RUNS in ''|*[!0-9]*|0) echo "run.sh: RUNS must be a positive integer" >&2; exit 2;; esac

for wl in $WORKLOADS; do
    if [ ! -x "$BUILD/bench/bench_$wl" ]; then
        echo "run.sh: $BUILD/bench/bench_$wl not found; build first (make)" >&2
        exit 2
    fi
done

. "$(dirname "$0")/allocators.sh"
if [ "$HAVE_TESSERA" = 1 ]; then
    BASE=tessera
else
    NOTES+=("tessera skipped: $BUILD/libtessera.so not found (run make); ratios are relative to glibc instead")
    BASE=glibc
fi

RESULTS=$(mktemp)
ERRLOG=$(mktemp)
trap 'rm -f "$RESULTS" "$ERRLOG"' EXIT

# ---- header ----
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
glibc_version=$(getconf GNU_LIBC_VERSION 2>/dev/null || echo unknown)
echo "# tessera benchmarks"
echo
echo "- date: $(date '+%Y-%m-%d %H:%M:%S %Z')"
echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, kernel $(uname -sr)"
echo "- runs: $RUNS per cell, interleaved; BENCH_SCALE=$BENCH_SCALE; $glibc_version"
if [ "${BENCH_PIN:-0}" = 1 ]; then
    echo "- two-thread workloads: each thread pinned to its own CPU (BENCH_PIN=1)"
else
    echo "- two-thread workloads: threads not pinned (BENCH_PIN=1 to pin)"
fi
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
for i in "${!NAMES[@]}"; do
    echo "- ${NAMES[$i]}: ${PRELOADS[$i]:-system malloc (no preload)}${CONFS[$i]:+ with TESSERA_CONF=${CONFS[$i]}}"
done
for note in "${NOTES[@]+"${NOTES[@]}"}"; do
    echo "- NOTE: $note"
done
echo

# ---- runs ----
progress() { :; }
if [ -t 2 ]; then
    progress() { printf '\r[%d/%d] round %d: %-9s %-8s ' "$@" >&2; }
fi
total=$((RUNS * NALLOC * $(echo $WORKLOADS | wc -w)))
done_runs=0
for ((r = 0; r < RUNS; r++)); do
    for wl in $WORKLOADS; do
        for ((k = 0; k < NALLOC; k++)); do
            i=$(((k + r) % NALLOC))
            name=${NAMES[$i]}
            done_runs=$((done_runs + 1))
            progress "$done_runs" "$total" $((r + 1)) "$wl" "$name"
            out=$(TESSERA_CONF=${CONFS[$i]:-${TESSERA_CONF:-}} LD_PRELOAD=${PRELOADS[$i]} timeout "$TIMEOUT" "$BUILD/bench/bench_$wl" 2>"$ERRLOG")
            rc=$?
            line=$(printf '%s\n' "$out" | grep '^workload=' | tail -n 1)
            secs=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^seconds=//p')
            rss=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^maxrss_kib=//p')
            got=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^alloc=//p')
            if [ $rc -ne 0 ] || [ -z "$secs" ]; then
                [ $rc -eq 124 ] && why="timed out after ${TIMEOUT}s" || why="exit status $rc"
                printf '\nrun.sh: %s under %s failed (%s):\n' "$wl" "$name" "$why" >&2
                head -n 5 "$ERRLOG" | sed 's/^/    /' >&2
                echo "$wl $name FAIL -" >>"$RESULTS"
            elif [ "$got" != "$(alloc_reported "$name")" ]; then
                printf '\nrun.sh: %s: asked for %s but the program ran with %s (preload failed?)\n' \
                    "$wl" "$name" "$got" >&2
                head -n 5 "$ERRLOG" | sed 's/^/    /' >&2
                echo "$wl $name FAIL -" >>"$RESULTS"
            else
                echo "$wl $name $secs ${rss:--}" >>"$RESULTS"
            fi
        done
    done
done
[ -t 2 ] && printf '\r%60s\r' '' >&2

echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)" \
     "(well above the CPU count means other work disturbed the timings)"
echo

# ---- tables ----
awk -v workloads="$WORKLOADS" -v allocs="${NAMES[*]}" -v base="$BASE" -v runs="$RUNS" '
function median(key,    n, i, j, v, a) {
    n = cnt[key]
    for (i = 1; i <= n; i++) a[i] = val[key, i]
    for (i = 2; i <= n; i++) {          # insertion sort (mawk has no asort)
        v = a[i]
        for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
        a[j + 1] = v
    }
    if (n % 2) return a[(n + 1) / 2]
    return (a[n / 2] + a[n / 2 + 1]) / 2
}
function rss_median(key,    n, i, j, v, a) {
    n = rcnt[key]
    if (n == 0) return -1
    for (i = 1; i <= n; i++) a[i] = rval[key, i]
    for (i = 2; i <= n; i++) {
        v = a[i]
        for (j = i - 1; j >= 1 && a[j] > v; j--) a[j + 1] = a[j]
        a[j + 1] = v
    }
    if (n % 2) return a[(n + 1) / 2]
    return (a[n / 2] + a[n / 2 + 1]) / 2
}
function ok(key) { return fail[key] == 0 && cnt[key] > 0 }
function failcell(key) { return sprintf("FAIL %d/%d", fail[key], fail[key] + cnt[key]) }
{
    key = $1 SUBSEP $2
    if ($3 == "FAIL") { fail[key]++; next }
    n = ++cnt[key]; val[key, n] = $3 + 0
    if (!(key in lo) || $3 + 0 < lo[key]) lo[key] = $3 + 0
    if (!(key in hi) || $3 + 0 > hi[key]) hi[key] = $3 + 0
    if ($4 != "-") { m = ++rcnt[key]; rval[key, m] = $4 + 0 }
}
END {
    nw = split(workloads, W, " ")
    na = split(allocs, A, " ")
    for (w = 1; w <= nw; w++)
        for (a = 1; a <= na; a++) {
            key = W[w] SUBSEP A[a]
            if (ok(key)) { med[key] = median(key); rmed[key] = rss_median(key) }
        }

    printf "## Time: median seconds over %d runs (lower is better)\n\n", runs
    printf "`X/%s` = X median / %s median, so >1 means %s is faster.\n\n", base, base, base
    hdr = "| workload |"; sep = "|---|"
    for (a = 1; a <= na; a++) {
        hdr = hdr " " A[a] " s |"; sep = sep "---:|"
        if (A[a] != base) { hdr = hdr " " A[a] "/" base " |"; sep = sep "---:|" }
    }
    print hdr; print sep
    for (w = 1; w <= nw; w++) {
        line = "| " W[w] " |"
        bkey = W[w] SUBSEP base
        for (a = 1; a <= na; a++) {
            key = W[w] SUBSEP A[a]
            if (ok(key)) line = line sprintf(" %.3f |", med[key])
            else line = line " " failcell(key) " |"
            if (A[a] != base) {
                if (ok(key) && ok(bkey) && med[bkey] > 0) line = line sprintf(" %.2f |", med[key] / med[bkey])
                else line = line " - |"
            }
        }
        print line
    }

    printf "\n## Spread: min-max seconds (and (max-min)/median)\n\n"
    hdr = "| workload |"; sep = "|---|"
    for (a = 1; a <= na; a++) { hdr = hdr " " A[a] " |"; sep = sep "---:|" }
    print hdr; print sep
    for (w = 1; w <= nw; w++) {
        line = "| " W[w] " |"
        for (a = 1; a <= na; a++) {
            key = W[w] SUBSEP A[a]
            if (ok(key)) line = line sprintf(" %.3f-%.3f (%.0f%%) |", lo[key], hi[key],
                                             med[key] > 0 ? 100 * (hi[key] - lo[key]) / med[key] : 0)
            else line = line " " failcell(key) " |"
        }
        print line
    }

    printf "\n## Peak RSS: median MiB (VmHWM, includes the warm-up pass)\n\n"
    print hdr; print sep
    for (w = 1; w <= nw; w++) {
        line = "| " W[w] " |"
        for (a = 1; a <= na; a++) {
            key = W[w] SUBSEP A[a]
            if (ok(key) && rmed[key] >= 0) line = line sprintf(" %.1f |", rmed[key] / 1024)
            else if (ok(key)) line = line " - |"
            else line = line " " failcell(key) " |"
        }
        print line
    }
}' "$RESULTS"

if grep -q ' FAIL ' "$RESULTS"; then
    echo
    echo "Some runs FAILED (see messages above)."
    exit 1
fi
exit 0
