#!/bin/bash
# SPDX-License-Identifier: MIT
# preload/stats: the ledger from real programs.  python3 (PYTHONMALLOC=malloc,
# so every object goes through malloc; not -I, which would ignore it) writes JSON snapshots every 50 ms and
# a final one at exit, with exact requested bytes and tags on; every line is
# parsed by python3's json module and checked against docs/STATS.md's fields
# and the ledger's identities (test/tools/check_schema.py).  sqlite3 prints
# the text ledger at exit on stderr.  A bad stats option is warned about
# once and the program still runs.
# Usage: stats.sh LIBTESSERA WORKLOAD.py WORKLOAD.sql CHECK_SCHEMA.py
. "$(dirname "$0")/common.sh"
script=${2:?usage: stats.sh LIBTESSERA WORKLOAD.py WORKLOAD.sql CHECK_SCHEMA.py}
sql=${3:?}
schema=${4:?}
PY=/usr/bin/python3
[ -x "$PY" ] || skip "$PY is not installed"
check_loads
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1

for conf in "stats_exact:true" "tags:true" ""; do
  rm -f "$WORK"/snap.*.jsonl
  TESSERA_CONF="${conf:+$conf,}stats_interval_ms:50,stats_print:json,stats_file:$WORK/snap.%p.jsonl" \
    PYTHONMALLOC=malloc PYTHONNOUSERSITE=1 LD_PRELOAD=$TS_LIB "$PY" "$script" >"$WORK/py.out" 2>"$WORK/py.err" \
    || { tail -n 20 "$WORK/py.err" >&2; fail "python3 failed with TESSERA_CONF=$conf"; }
  grep -qx done "$WORK/py.out" || fail "the script did not finish"
  grep -q 'tessera:' "$WORK/py.err" && { head "$WORK/py.err" >&2; fail "tessera printed a warning"; }
  n=0
  for f in "$WORK"/snap.*.jsonl; do
    [ -e "$f" ] || fail "no snapshot file written (conf $conf)"
    "$PY" "$schema" "$f" --final || fail "snapshot file $(basename "$f") (conf $conf) does not match the schema"
    n=$((n + 1))
  done
  lines=$(cat "$WORK"/snap.*.jsonl | wc -l)
  [ "$lines" -ge 3 ] || fail "only $lines snapshots with conf $conf"
  # exact requested bytes and tags where asked
  "$PY" - "$conf" "$WORK"/snap.*.jsonl <<'PYEOF' || fail "snapshot contents (conf $conf)"
import json, sys
conf, files = sys.argv[1], sys.argv[2:]
for path in files:
    snaps = [json.loads(line) for line in open(path)]
    last = snaps[-1]
    assert last["final"] and "arenas" in last, path
    assert last["requested_exact"] == (conf != ""), (conf, last["requested_exact"])
    assert last["tags_enabled"] == (conf == "tags:true"), conf
    if conf == "tags:true":
        assert sum(t["requested_bytes"] for t in last["tags"]) == last["requested_bytes"]
    assert any(s["requested_bytes"] > 1 << 20 for s in snaps), "python held over 1 MiB at some snapshot"
print("ok:", conf or "default", len(files), "file(s)")
PYEOF
done

# the text ledger at exit, from sqlite3
if command -v sqlite3 >/dev/null 2>&1; then
  TESSERA_CONF=stats_print:text LD_PRELOAD=$TS_LIB sqlite3 :memory: <"$sql" >"$WORK/sql.out" 2>"$WORK/sql.err" \
    || fail "sqlite3 failed"
  grep -q "memory ledger" "$WORK/sql.err" || { head "$WORK/sql.err" >&2; fail "no text ledger from sqlite3"; }
  grep -q "^  committed " "$WORK/sql.err" || fail "the text ledger has no committed line"
fi

# a bad value: one warning, the program runs
TESSERA_CONF=stats_print:yaml LD_PRELOAD=$TS_LIB "$PY" -I -c 'print("ran")' >"$WORK/bad.out" 2>"$WORK/bad.err"
grep -qx ran "$WORK/bad.out" || fail "python3 did not run with a bad option"
[ "$(grep -c 'tessera: warning: TESSERA_CONF: stats_print: not none, text or json' "$WORK/bad.err")" = 1 ] \
  || { cat "$WORK/bad.err" >&2; fail "expected one warning for stats_print:yaml"; }
echo "preload/stats: ok"
