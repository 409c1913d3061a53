#!/usr/bin/env bash
# demo.sh BUILD_DIR: a quick look at tessera.  Runs the 'server' benchmark
# once with glibc's malloc and once with LD_PRELOAD=BUILD_DIR/libtessera.so,
# and prints elapsed time and peak RSS side by side.  Then runs a
# fragmentation-heavy program (the two-wave pattern of bench/frag_twowaves.c)
# under both with `tessera run`, which prints where the memory went and
# charts it (BUILD_DIR/demo/*.html).  Takes about 15 seconds.  Needs only
# glibc and a built tessera; `make bench` (run.sh, frag.sh) does the careful
# multi-run comparison against other allocators.
#
# Environment: DEMO_WORKLOAD=server (or st_lifo, st_random, prodcons),
#              BENCH_SCALE=3 (iteration multiplier).
set -u

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR   (e.g. $0 build)" >&2; exit 2; }
BUILD=$(cd "$1" 2>/dev/null && pwd) || { echo "demo.sh: no such directory: $1" >&2; exit 2; }
WL=${DEMO_WORKLOAD:-server}
export BENCH_SCALE=${BENCH_SCALE:-3}
PROG=$BUILD/bench/bench_$WL
LIB=$BUILD/libtessera.so

[ -x "$PROG" ] || { echo "demo.sh: $PROG not found; build first (make)" >&2; exit 2; }
[ -e "$LIB" ] || { echo "demo.sh: $LIB not found; build first (make)" >&2; exit 2; }

case $WL in
    server)    what="two threads serving requests: objects of 16 B..1 MiB, some kept long,
most freed at the end of their request, 10% freed by the other thread" ;;
    st_lifo)   what="one thread allocating batches of 16..512-byte blocks and freeing them LIFO" ;;
    st_random) what="one thread replacing random blocks of a 20000-block working set" ;;
    prodcons)  what="a producer thread allocating blocks that a consumer thread frees" ;;
    *)         what="workload $WL" ;;
esac

echo "tessera demo: the '$WL' benchmark"
echo "($what),"
echo "run once with glibc's malloc and once with LD_PRELOAD=$LIB."
echo

# run NAME PRELOAD -> sets SECS and RSS, or exits on failure
run() {
    local out line rc got
    out=$(LD_PRELOAD=$2 "$PROG")
    rc=$?
    line=$(printf '%s\n' "$out" | grep '^workload=' | tail -n 1)
    SECS=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^seconds=//p')
    RSS=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^maxrss_kib=//p')
    got=$(printf '%s\n' "$line" | tr ' ' '\n' | sed -n 's/^alloc=//p')
    if [ $rc -ne 0 ] || [ -z "$SECS" ]; then
        echo "demo.sh: $WL failed under $1 (exit status $rc)" >&2
        exit 1
    fi
    if [ "$got" != "$1" ]; then
        echo "demo.sh: asked for $1 but the program ran with $got (LD_PRELOAD failed?)" >&2
        exit 1
    fi
}

run glibc ""
G_SECS=$SECS G_RSS=$RSS
run tessera "$LIB"
T_SECS=$SECS T_RSS=$RSS

awk -v gs="$G_SECS" -v gr="$G_RSS" -v ts="$T_SECS" -v tr="$T_RSS" 'BEGIN {
    print  "| allocator | time (s) | peak RSS (MiB) |"
    print  "|---|---:|---:|"
    printf "| glibc | %.3f | %.1f |\n", gs, gr / 1024
    printf "| tessera | %.3f | %.1f |\n", ts, tr / 1024
    print  ""
    if (ts > 0 && gs > 0) {
        if (gs >= ts) speed = sprintf("%.2fx faster than glibc", gs / ts)
        else          speed = sprintf("%.2fx slower than glibc", ts / gs)
    } else speed = "time too short to compare"
    mem = gr > 0 ? sprintf("%.2fx glibc'"'"'s peak RSS", tr / gr) : "peak RSS unknown"
    printf "tessera: %s, %s.\n", speed, mem
}'
echo "(Timed part only, after an untimed warm-up pass; one run each, so expect"
echo "some noise.  For a careful comparison with jemalloc, mimalloc and tcmalloc: make bench)"

# ---- memory over time: tessera run on a fragmentation-heavy program ----
TOOL=$BUILD/tessera
FRAG=$BUILD/bench/bench_frag_twowaves
[ -x "$TOOL" ] && [ -x "$FRAG" ] || { echo "demo.sh: $TOOL or $FRAG not found; build first (make)" >&2; exit 2; }
OUT=$BUILD/demo
mkdir -p "$OUT" || exit 2
echo
echo "Memory over time: the two-wave pattern (bench/frag_twowaves.c, 100 MiB):"
echo "a wave of short-lived blocks with long-lived ones scattered among them;"
echo "the short-lived ones are freed and the program idles 2 s, then reads the rest."
echo "Each run is \`$TOOL run --report FILE -- PROGRAM\`:"
for alloc in glibc tessera; do
    echo
    FRAG_SCALE=0.25 "$TOOL" run --interval 100 --allocator "$alloc" --report "$OUT/$alloc.html" -- "$FRAG" \
        >"$OUT/$alloc.out" 2>"$OUT/$alloc.summary" ||
        { cat "$OUT/$alloc.summary" >&2; echo "demo.sh: tessera run failed under $alloc" >&2; exit 1; }
    grep -v -e '^  program' -e '^  ledger' "$OUT/$alloc.summary"
done
echo
echo "Charts of memory over time: $OUT/glibc.html and $OUT/tessera.html"
echo "(compare the mean RSS: through the idle glibc holds the freed wave, tessera"
echo "returns every page with no live block on it within a second; the ledger"
echo "says what the rest is.  At exit glibc trims its heap top at once, tessera"
echo "had not yet reached its deadline.)"
