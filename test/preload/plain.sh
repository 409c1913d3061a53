#!/bin/bash
# SPDX-License-Identifier: MIT
# preload/plain: a plain libc program that is not linked with tessera runs
# with and without tessera preloaded; the outputs must be identical, and with
# the preload its malloc must come from libtessera.
# Usage: plain.sh LIBTESSERA PROGRAM
. "$(dirname "$0")/common.sh"
prog=${2:?usage: plain.sh LIBTESSERA PROGRAM}
check_loads
ldd "$prog" | grep -q libtessera && fail "$prog is linked with tessera; it must not be"

run_pair plain /dev/null "$prog"
grep -q 'malloc from: .*libtessera' "$WORK/plain.ts.err" \
  || fail "with LD_PRELOAD, malloc does not come from libtessera: $(cat "$WORK/plain.ts.err")"
grep -q 'malloc from: .*libtessera' "$WORK/plain.plain.err" \
  && fail "without LD_PRELOAD, malloc comes from libtessera"
grep -qx "done" "$WORK/plain.ts.out" || fail "the program did not finish"
echo "preload/plain: ok"
