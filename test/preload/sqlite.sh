#!/bin/bash
# SPDX-License-Identifier: MIT
# preload/sqlite: sqlite3 runs a SQL script over 100,000 rows with and
# without tessera preloaded; the outputs must be identical.
# Usage: sqlite.sh LIBTESSERA WORKLOAD.sql
. "$(dirname "$0")/common.sh"
sql=${2:?usage: sqlite.sh LIBTESSERA WORKLOAD.sql}
need sqlite3
check_loads

# sqlite3 itself runs with the library mapped.
out=$(echo ".system grep -c libtessera /proc/\$PPID/maps" | LD_PRELOAD=$TS_LIB sqlite3 -batch :memory: 2>&1)
[ "${out:-0}" -gt 0 ] 2>/dev/null || fail "libtessera is not mapped into a preloaded sqlite3 ($out)"

# On-disk databases (a fresh one per run) and in memory.
run_pair sqlite-memory "$sql" sqlite3 -batch -bail :memory:
run_pair sqlite-disk "$sql" bash -c "rm -f '$WORK/disk.db'; exec sqlite3 -batch -bail '$WORK/disk.db'"
grep -q '^end|' "$WORK/sqlite-memory.ts.out" || fail "the script did not finish"
grep -qx ok "$WORK/sqlite-memory.ts.out" || fail "integrity_check did not say ok"
echo "preload/sqlite: ok"
