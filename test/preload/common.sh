# SPDX-License-Identifier: MIT
# common.sh: helpers for the preload tests, sourced by each script.
# A script gets the path of libtessera.so as its first argument.

set -u

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
need() { command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed"; }

TS_LIB=${1:-}
[ -n "$TS_LIB" ] || fail "usage: $0 /path/to/libtessera.so ..."
[ -f "$TS_LIB" ] || fail "no library at $TS_LIB"
case $TS_LIB in /*) ;; *) TS_LIB=$PWD/$TS_LIB ;; esac

WORK=$(mktemp -d "${TMPDIR:-/tmp}/tessera-preload.XXXXXX") || fail "mktemp"
ts_cleanup_hooks=()
ts_cleanup() {
  local h
  for h in "${ts_cleanup_hooks[@]+"${ts_cleanup_hooks[@]}"}"; do $h; done
  rm -rf "$WORK"
}
trap ts_cleanup EXIT

# Deterministic program behaviour where it depends on the environment.
export LC_ALL=C TZ=UTC

# The library loads into a program: ld.so prints an error and goes on
# without it when it cannot preload an object, so check the maps.
check_loads() {
  local maps
  maps=$(LD_PRELOAD=$TS_LIB cat /proc/self/maps 2>"$WORK/loads.err") || fail "cat under LD_PRELOAD failed: $(cat "$WORK/loads.err")"
  grep -q "$(basename "$TS_LIB")" <<<"$maps" || fail "$TS_LIB is not mapped into a preloaded process: $(cat "$WORK/loads.err")"
}

# run_pair NAME STDIN CMD...: runs CMD without and with tessera preloaded,
# STDIN as standard input, and fails unless the exit codes and standard
# outputs are the same.  Standard error of the preloaded run must not show
# a tessera report or a preload failure.
run_pair() {
  local name=$1 input=$2
  shift 2
  local base=$WORK/$name rc_plain rc_ts
  timeout 600 "$@" <"$input" >"$base.plain.out" 2>"$base.plain.err"
  rc_plain=$?
  LD_PRELOAD=$TS_LIB timeout 600 "$@" <"$input" >"$base.ts.out" 2>"$base.ts.err"
  rc_ts=$?
  if grep -q -e 'tessera:' -e 'cannot be preloaded' "$base.ts.err"; then
    echo "--- stderr with tessera:" >&2
    head -n 40 "$base.ts.err" >&2
    fail "$name: tessera reported an error"
  fi
  if [ "$rc_ts" != "$rc_plain" ]; then
    echo "--- stderr with tessera:" >&2
    tail -n 40 "$base.ts.err" >&2
    fail "$name: exit code $rc_ts with tessera, $rc_plain without"
  fi
  if ! cmp -s "$base.plain.out" "$base.ts.out"; then
    echo "--- diff of standard output (without tessera / with tessera):" >&2
    diff -u "$base.plain.out" "$base.ts.out" | head -n 80 >&2
    fail "$name: output differs with tessera preloaded"
  fi
  [ "$rc_plain" = 0 ] || { tail -n 40 "$base.plain.err" >&2; fail "$name: exits with $rc_plain even without tessera"; }
  echo "ok: $name ($(wc -l <"$base.plain.out") lines of identical output)"
}
