#!/bin/bash
# SPDX-License-Identifier: MIT
# preload/python: /usr/bin/python3 runs an allocation-heavy script with and
# without tessera preloaded; the outputs must be identical.  Run twice with
# tessera: with Python's own small-object allocator (the default) and with
# PYTHONMALLOC=malloc, which sends every object through malloc.
# Usage: python.sh LIBTESSERA WORKLOAD.py
. "$(dirname "$0")/common.sh"
script=${2:?usage: python.sh LIBTESSERA WORKLOAD.py}
PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is not installed"
check_loads
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1

# Python itself sees the library in its own maps.
LD_PRELOAD=$TS_LIB "$PY" -I -c 'import sys; sys.exit(0 if "libtessera" in open("/proc/self/maps").read() else 1)' \
  || fail "libtessera is not mapped into a preloaded python3"

run_pair python "/dev/null" "$PY" -I "$script"
# Not -I here: it ignores every PYTHON* variable, PYTHONMALLOC included (a
# run with -I made 3 424 mallocs where this one makes 383 017 for the same
# list of strings).
PYTHONMALLOC=malloc PYTHONNOUSERSITE=1 run_pair python-malloc "/dev/null" "$PY" "$script"
# The default allocator's output is the reference for both.
cmp -s "$WORK/python.plain.out" "$WORK/python-malloc.ts.out" \
  || { diff -u "$WORK/python.plain.out" "$WORK/python-malloc.ts.out" | head -n 40 >&2; fail "PYTHONMALLOC=malloc output differs"; }
grep -qx "done" "$WORK/python.ts.out" || fail "the script did not finish"
echo "preload/python: ok"
