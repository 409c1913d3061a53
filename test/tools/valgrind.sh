#!/bin/bash
# SPDX-License-Identifier: MIT
# tools/valgrind: the tessera tool itself (not the programs it runs:
# --trace-children=no) under valgrind's memcheck with a full leak check:
# `tessera stats` on a saved snapshot and on a bad file, `tessera run
# --allocator glibc -- /bin/true`, and a tessera run that reads snapshots
# and writes both reports.  Any memcheck error or leak fails.  Skipped
# (77) when valgrind is not installed.
# Usage: valgrind.sh TESSERA_TOOL FRAGPROG
. "$(dirname "$0")/common.sh"

command -v valgrind >/dev/null 2>&1 || skip "valgrind is not installed"
# An old valgrind cannot read a newer compiler's debug information (DWARF 5).
valgrind -q "$TOOL" --version >vgcheck.out 2>&1 ||
  { grep -q 'debuginfo reader' vgcheck.out && skip "valgrind cannot read the debug information of $TOOL (DWARF 5? build with -gdwarf-4)"; }

# vg WANT NAME ARGS...: the tool under memcheck; it must exit WANT, and 99
# means memcheck found errors.
vg() {
  local want=$1 name=$2
  shift 2
  expect_rc "$want" "$name" valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=all \
    --show-leak-kinds=definite,indirect,possible --trace-children=no --child-silent-after-fork=yes "$TOOL" "$@"
  if grep -q '^==[0-9]*==' "$WORK/$name.err"; then
    grep '^==[0-9]*==' "$WORK/$name.err" | head -n 40 >&2
    fail "$name: valgrind reported a problem"
  fi
  echo "ok: $name"
}

# snapshots to read, made without valgrind
expect_rc 0 make "$TOOL" run --interval 20 --json snaps.jsonl -- "$PROG" --quick
printf '{"tessera": "0.1.0", "classes": [1, 2' >bad.json

vg 0 stats stats snaps.jsonl
vg 1 stats_bad stats bad.json
vg 0 run_glibc run --allocator glibc -- /bin/true
vg 0 run_tessera run --interval 20 --report vg.html --json vg.jsonl -- "$PROG" --quick
vg 0 run_svg run --interval 20 --report vg.svg -- "$PROG" --quick
grep -q '^  ledger .*final snapshot' "$WORK/run_tessera.err" || fail "run_tessera: no ledger in the summary"
python3 "$HERE/check_schema.py" vg.jsonl --final >/dev/null || fail "vg.jsonl: bad snapshots"
no_leftovers
echo "tools/valgrind: ok"
