#!/usr/bin/env bash
# frag.sh BUILD_DIR: run the fragmentation / memory-return benchmarks
# (bench_frag_*) under glibc, jemalloc, mimalloc, tcmalloc and tessera
# (BUILD_DIR/libtessera.so) and print markdown tables: RSS/live bytes at the
# end of every phase, peak RSS, what frag_realloc leaves resident after
# freeing everything, and run times.  Writes the raw outputs to
# BUILD_DIR/frag/raw/, the tables to BUILD_DIR/frag/report.md and a chart of
# RSS over time to BUILD_DIR/frag/frag.svg.  Needs python3 (standard library
# only) for the tables and the chart.  Installs nothing.
#
# Runs are interleaved: each round runs every pattern once under every
# allocator (starting allocator rotated per round).  Each program reports
# phases itself (see bench/frag.h); a run takes a few seconds, most of them
# spent allocating or in deliberate idle phases, so timings are not the point.
#
# Environment:
#   RUNS=3          runs per (pattern, allocator); the median is reported
#   FRAG_SCALE=1    multiplies the byte volume of every program
#   PATTERNS="twowaves twowaves20 redis cache realloc server"   subset / order
#   TIMEOUT=300     seconds before one run counts as failed (hang)
set -u

usage() { echo "usage: $0 BUILD_DIR   (e.g. $0 build)" >&2; exit 2; }
[ $# -eq 1 ] || usage
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "frag.sh: no such directory: $1" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)

RUNS=${RUNS:-3}
export FRAG_SCALE=${FRAG_SCALE:-1}
PATTERNS=${PATTERNS:-"twowaves twowaves20 redis cache realloc server"}
TIMEOUT=${TIMEOUT:-300}
case $RUNS in ''|*[!0-9]*|0) echo "frag.sh: RUNS must be a positive integer" >&2; exit 2;; esac

for p in $PATTERNS; do
    if [ ! -x "$BUILD/bench/bench_frag_$p" ]; then
        echo "frag.sh: $BUILD/bench/bench_frag_$p not found; build first (make)" >&2
        exit 2
    fi
done
command -v python3 >/dev/null 2>&1 ||
    { echo "frag.sh: python3 is needed for the tables and the chart (apt-get install python3)" >&2; exit 2; }

. "$(dirname "$0")/allocators.sh"
[ "$HAVE_TESSERA" = 1 ] || NOTES+=("tessera skipped: $BUILD/libtessera.so not found (run make)")

OUT=$BUILD/frag
RAW=$OUT/raw
mkdir -p "$RAW" || exit 2
rm -f "$RAW"/*.out "$RAW"/*.err "$RAW"/*.fail

REPORT=$OUT/report.md
exec 3>&1
exec > >(tee "$REPORT")
TEE_PID=$!

# ---- header ----
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null)
glibc_version=$(getconf GNU_LIBC_VERSION 2>/dev/null || echo unknown)
echo "# tessera fragmentation benchmarks"
echo
echo "- date: $(date '+%Y-%m-%d %H:%M:%S %Z')"
echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(awk '/^MemTotal/ { printf "%.0f GiB RAM", $2 / 1048576 }' /proc/meminfo), kernel $(uname -sr)"
echo "- runs: $RUNS per cell, interleaved; FRAG_SCALE=$FRAG_SCALE; $glibc_version"
echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
for i in "${!NAMES[@]}"; do
    echo "- ${NAMES[$i]}: ${PRELOADS[$i]:-system malloc (no preload)}${CONFS[$i]:+ with TESSERA_CONF=${CONFS[$i]}}"
done
for note in "${NOTES[@]+"${NOTES[@]}"}"; do
    echo "- NOTE: $note"
done
echo "- raw outputs: $RAW/"
echo

# ---- runs ----
progress() { :; }
if [ -t 2 ]; then
    progress() { printf '\r[%d/%d] round %d: %-9s %-8s ' "$@" >&2; }
fi
total=$((RUNS * NALLOC * $(wc -w <<<"$PATTERNS")))
done_runs=0
failed=0
for ((r = 1; r <= RUNS; r++)); do
    for p in $PATTERNS; do
        for ((k = 0; k < NALLOC; k++)); do
            i=$(((k + r - 1) % NALLOC))
            name=${NAMES[$i]}
            stem=$RAW/$p.$name.$r
            done_runs=$((done_runs + 1))
            progress "$done_runs" "$total" "$r" "$p" "$name"
            timeout "$TIMEOUT" env TESSERA_CONF="${CONFS[$i]:-${TESSERA_CONF:-}}" LD_PRELOAD="${PRELOADS[$i]}" \
                "$BUILD/bench/bench_frag_$p" \
                >"$stem.out" 2>"$stem.err"
            rc=$?
            got=$(sed -n 's/^done .*alloc=\([^ ]*\).*/\1/p' "$stem.out")
            why=
            if [ $rc -ne 0 ]; then
                [ $rc -eq 124 ] && why="timed out after ${TIMEOUT}s" || why="exit status $rc"
            elif [ -z "$got" ]; then
                why="no closing line"
            elif [ "$got" != "$(alloc_reported "$name")" ]; then
                why="asked for $name but the program ran with $got (preload failed?)"
            fi
            if [ -n "$why" ]; then
                printf '\nfrag.sh: frag_%s under %s, run %d failed (%s):\n' "$p" "$name" "$r" "$why" >&2
                head -n 5 "$stem.err" | sed 's/^/    /' >&2
                echo "$why" >"$stem.fail"
                failed=1
            fi
        done
    done
done
[ -t 2 ] && printf '\r%60s\r' '' >&2

echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)"
echo

# ---- tables and chart ----
python3 "$HERE/frag_report.py" "$OUT" "$RUNS" "$PATTERNS" "${NAMES[*]}" || failed=1

# ---- the ledger against the kernel ----
# One more run of each pattern under tessera with FRAG_RECONCILE=1: at the
# end of every phase ts_purge(), then ts_stats_get()'s committed bytes
# (grown since the start) against the growth of smaps_rollup Rss less the
# program's bookkeeping (bench/frag.h).  Apart from the comparison runs,
# since the purges change later phases.
if [ "$HAVE_TESSERA" = 1 ]; then
    echo "## Ledger reconciliation (tessera)"
    echo
    echo "After \`ts_purge()\` at the end of every phase: growth of the ledger's \`committed_bytes\` since the"
    echo "program started against the growth of the kernel's Rss (\`/proc/self/smaps_rollup\`) less the"
    echo "program's own bookkeeping; the tolerance is 2% of committed + 1 MiB (\`FRAG_RECONCILE=1\`, one run)."
    echo
    echo "| pattern | phase | ledger MiB | kernel MiB | difference MiB | tolerance MiB | within |"
    echo "|---|---|---:|---:|---:|---:|---|"
    for p in $PATTERNS; do
        stem=$RAW/$p.reconcile
        timeout "$TIMEOUT" env FRAG_RECONCILE=1 LD_PRELOAD="$BUILD/libtessera.so" \
            "$BUILD/bench/bench_frag_$p" >"$stem.out" 2>"$stem.err" || failed=1
        awk -v p="$p" '$1 == "reconcile" {
            for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
            d = f["kernel_delta_bytes"] - f["ledger_delta_bytes"]; if (d < 0) d = -d
            printf "| %s | %s | %.1f | %.1f | %.2f | %.1f | %s |\n", p, f["phase"],
                   f["ledger_delta_bytes"] / 1048576, f["kernel_delta_bytes"] / 1048576, d / 1048576,
                   f["tolerance_bytes"] / 1048576, f["ok"] == 1 ? "yes" : "NO"
        }' "$stem.out"
    done
    echo
fi

exec >&3 3>&-
wait "$TEE_PID" 2>/dev/null
echo "Report: $REPORT" >&2

if [ $failed -ne 0 ]; then
    echo
    echo "Some runs FAILED (see messages above and $RAW/*.err)."
    exit 1
fi
exit 0
