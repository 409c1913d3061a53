# SPDX-License-Identifier: MIT
# common.sh: helpers for the tools tests, sourced by each script.  A script
# gets the path of the tessera tool first and that of fragprog second; it
# works in a fresh directory ($WORK, removed at exit), with TMPDIR inside it
# so that it can check that the tool removes its temporary files.

set -u

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }

TOOL=${1:-}
PROG=${2:-}
[ -n "$TOOL" ] && [ -n "$PROG" ] || fail "usage: $0 /path/to/tessera /path/to/fragprog"
[ -x "$TOOL" ] || fail "no tool at $TOOL"
[ -x "$PROG" ] || fail "no fragprog at $PROG"
case $TOOL in /*) ;; *) TOOL=$PWD/$TOOL ;; esac
case $PROG in /*) ;; *) PROG=$PWD/$PROG ;; esac
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-tools.XXXXXX") || fail "mktemp"
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/tmp"
export TMPDIR=$WORK/tmp
cd "$WORK" || fail "cd $WORK"

# The tool must find the library beside itself, and nothing of the
# caller's environment may change what it does.
unset TESSERA_LIB TESSERA_CONF LD_PRELOAD
export LC_ALL=C TZ=UTC

# expect_rc WANT NAME CMD...: runs CMD with stdout and stderr to
# $WORK/NAME.out and $WORK/NAME.err; fails unless it exits with WANT.
expect_rc() {
  local want=$1 name=$2 rc
  shift 2
  "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  rc=$?
  if [ "$rc" != "$want" ]; then
    echo "--- stdout of $name:" >&2; tail -n 30 "$WORK/$name.out" >&2
    echo "--- stderr of $name:" >&2; tail -n 30 "$WORK/$name.err" >&2
    fail "$name: exit status $rc, expected $want: $*"
  fi
}

# has FILE REGEX...: fails unless FILE has a line matching each (grep -E).
has() {
  local file=$1 re
  shift
  for re in "$@"; do
    grep -Eq -- "$re" "$file" || { echo "--- $file:" >&2; head -n 60 "$file" >&2; fail "$file has no line matching: $re"; }
  done
}

# lacks FILE REGEX: fails if FILE has a line matching it.
lacks() {
  if grep -Eq -- "$2" "$1"; then
    echo "--- $1:" >&2; grep -En -- "$2" "$1" | head -n 10 >&2
    fail "$1 has a line matching: $2"
  fi
}

# no_leftovers: the tool removed its temporary directory.
no_leftovers() {
  local left
  left=$(ls -A "$TMPDIR")
  [ -z "$left" ] || fail "temporary files left in TMPDIR: $left"
}
