#!/bin/bash
# SPDX-License-Identifier: MIT
# preload/mixed: python3 (PYTHONMALLOC=malloc) keeps a table whose value
# sizes shift (shift.py), with and without tessera: the digests of the
# table after every step must be the same, and tessera's snapshots (every
# 50 ms) must show objects placed in other classes' slabs (mixed slabs,
# the classes' `foreign` counts) while the program runs.
# Usage: mixed.sh LIBTESSERA SHIFT.py
. "$(dirname "$0")/common.sh"
script=${2:?usage: mixed.sh LIBTESSERA SHIFT.py}
PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is not installed"
check_loads
# not -I: it would ignore PYTHONMALLOC, and small objects would stay in
# python's own arenas
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 PYTHONNOUSERSITE=1 PYTHONMALLOC=malloc

export TESSERA_CONF="stats_interval_ms:50,stats_file:$WORK/snap.%p.jsonl"
run_pair shift /dev/null "$PY" "$script"
grep -qx done "$WORK/shift.ts.out" || fail "the script did not finish"

"$PY" - "$WORK"/snap.*.jsonl <<'PYEOF' || fail "no object was placed in another class's slab"
import json, sys
most = 0
for path in sys.argv[1:]:
    for line in open(path):
        snap = json.loads(line)
        placed = sum(c["foreign"] for c in snap.get("classes", []))
        hosted = sum(c["hosted_bytes"] for c in snap.get("classes", []))
        assert placed == 0 or hosted > 0, "placed objects without hosting slabs"
        most = max(most, placed)
print("most objects placed in other classes' slabs at once:", most)
sys.exit(0 if most > 0 else 1)
PYEOF
