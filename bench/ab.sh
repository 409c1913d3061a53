#!/usr/bin/env bash
# ab.sh OLD.so NEW.so [RUNS]: compare two builds of tessera on the programs
# where purging and reuse cost time: the speed suite's server, the
# fragmentation suite's cache pattern (with its page-fault count) and its
# 4-thread server pattern (end of the busy phase, RSS/live there, peak RSS).
# Runs are interleaved (old, new, old, new, ...) so that a noisy machine
# hits both alike; prints every run, then the median and range of each
# figure per build.  Build the old library from another checkout, e.g.
#   git worktree add /tmp/old HEAD~1 && cmake -S /tmp/old -B /tmp/old/build &&
#   cmake --build /tmp/old/build && bash bench/ab.sh /tmp/old/build/libtessera.so build/libtessera.so
# Needs perf (linux-perf) for the fault counts; installs nothing.
set -u
[ $# -ge 2 ] || { echo "usage: $0 OLD.so NEW.so [RUNS]" >&2; exit 2; }
OLD=$1 NEW=$2 RUNS=${3:-7}
BENCH=$(cd "$(dirname "$0")/.." && pwd)/build/bench
for f in "$OLD" "$NEW" "$BENCH/bench_server" "$BENCH/bench_frag_cache" "$BENCH/bench_frag_server"; do
    [ -e "$f" ] || { echo "ab.sh: $f not found (build first: make)" >&2; exit 2; }
done
command -v perf >/dev/null || { echo "ab.sh: perf not found (apt-get install linux-perf)" >&2; exit 2; }

# field NAME: the value of NAME=... (a word of its own) in the first input
# line that has it; fields NAME: in every such line
fields() { sed -n "s/\(^\|.* \)$1=\([0-9.]*\).*/\2/p"; }
field() { fields "$1" | head -1; }
out=$(mktemp)
for r in $(seq "$RUNS"); do
    for v in old new; do
        lib=$OLD; [ $v = new ] && lib=$NEW
        server=$(LD_PRELOAD=$lib "$BENCH/bench_server" 2>&1 | tail -1 | field seconds)
        cache=$(LD_PRELOAD=$lib perf stat -x, -e page-faults "$BENCH/bench_frag_cache" 2>&1)
        cache_s=$(grep '^done' <<<"$cache" | field seconds)
        faults=$(grep 'page-faults' <<<"$cache" | cut -d, -f1)
        busy=$(LD_PRELOAD=$lib "$BENCH/bench_frag_server" 2>&1 | grep '^phase=busy')
        ratio=$(awk -v r="$(field rss_bytes <<<"$busy")" -v l="$(field live_bytes <<<"$busy")" \
                    -v m="$(field meta_bytes <<<"$busy")" 'BEGIN { printf "%.3f", (r - m) / l }')
        peak=$(awk -v p="$(field peak_rss_bytes <<<"$busy")" 'BEGIN { printf "%.0f", p / 1048576 }')
        echo "$v server_s=$server cache_s=$cache_s cache_faults=$faults busy_end_s=$(field t <<<"$busy") busy_rss_live=$ratio busy_peak_mib=$peak" |
            tee -a "$out"
    done
done
echo
for v in old new; do
    printf '%s:' "$v"
    for k in server_s cache_s cache_faults busy_end_s busy_rss_live busy_peak_mib; do
        grep "^$v " "$out" | fields "$k" | sort -g |
            awk -v k="$k" '{ a[NR] = $1 } END { printf " %s median %s (%s-%s)", k, a[int((NR + 1) / 2)], a[1], a[NR] }'
    done
    echo
done
rm -f "$out"
