#!/bin/bash
# SPDX-License-Identifier: MIT
# install/cmake, install/pkgconfig: install the build tree into a temporary
# prefix with `cmake --install`, then build a small consumer program against
# the installed copy, with find_package(tessera) (mode cmake) or with
# pkg-config (mode pkgconfig), and run it.
# Usage: install.sh MODE CMAKE BUILD_DIR CONFIG CONSUMER_DIR C_COMPILER
set -u
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*"; exit 77; }
[ $# -eq 6 ] || fail "usage: install.sh cmake|pkgconfig CMAKE BUILD_DIR CONFIG CONSUMER_DIR C_COMPILER"
mode=$1 cmake=$2 build=$3 config=$4 consumer=$5 cc=$6
case $mode in cmake|pkgconfig) ;; *) fail "unknown mode $mode" ;; esac
if [ "$mode" = pkgconfig ]; then command -v pkg-config >/dev/null 2>&1 || skip "pkg-config is not installed"; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tessera-install.XXXXXX") || fail "mktemp"
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
export LC_ALL=C

# run LOG CMD...: runs CMD with its output in LOG, shown on failure.
run() {
  local log=$1
  shift
  "$@" >"$log" 2>&1 || { tail -n 60 "$log" >&2; fail "$* failed"; }
}

# ---- install ----
run "$work/install.log" "$cmake" --install "$build" --prefix "$prefix" --config "$config"
[ -f "$prefix/include/tessera.h" ] || fail "tessera.h is not installed in $prefix/include"
so=$(find "$prefix" -name 'libtessera.so' | head -n 1)
[ -n "$so" ] || fail "libtessera.so is not installed: $(cd "$prefix" && find . -type f -o -type l)"
libdir=$(dirname "$so")
ls "$libdir"/libtessera.so.* >/dev/null 2>&1 || fail "no versioned libtessera.so.* next to $so"
[ -f "$libdir/libtessera.a" ] || fail "libtessera.a is not installed in $libdir"
pc=$(find "$prefix" -name tessera.pc | head -n 1)
[ -n "$pc" ] || fail "tessera.pc is not installed"
config_file=$(find "$prefix" -name tessera-config.cmake | head -n 1)
[ -n "$config_file" ] || fail "tessera-config.cmake is not installed"
echo "installed: library in ${libdir#"$prefix"/}, ${pc#"$prefix"/}, ${config_file#"$prefix"/}"

# The shared library exports the malloc family, the static one only ts_ names.
exports=$(nm -D --defined-only "$so" | awk '{print $NF}')
for sym in malloc free calloc realloc posix_memalign aligned_alloc malloc_usable_size ts_malloc ts_free ts_version _Znwm _ZdlPv; do
  grep -qx "$sym" <<<"$exports" || fail "libtessera.so does not export $sym"
done
static_exports=$(nm --defined-only -g "$libdir/libtessera.a" 2>/dev/null | awk 'NF == 3 && $2 ~ /[TWDB]/ {print $3}')
grep -qx ts_malloc <<<"$static_exports" || fail "libtessera.a does not define ts_malloc"
grep -qx malloc <<<"$static_exports" && fail "libtessera.a defines malloc; it must export only ts_ names"

want_version=$(sed -n 's/^#define TESSERA_VERSION "\(.*\)"$/\1/p' "$prefix/include/tessera.h")
[ -n "$want_version" ] || fail "no TESSERA_VERSION in the installed header"

# check_run EXE SHARED(0/1): runs a consumer against the installed library.
check_run() {
  local exe=$1 shared=$2 out resolved
  out=$(LD_LIBRARY_PATH=$libdir "$exe" 2>&1) || fail "$exe failed: $out"
  [ "$out" = "ok $want_version" ] || fail "$exe printed '$out', want 'ok $want_version'"
  resolved=$(LD_LIBRARY_PATH=$libdir ldd "$exe" | awk '$1 ~ /^libtessera\.so/ {print $3}')
  if [ "$shared" = 1 ]; then
    [ -n "$resolved" ] || fail "$exe does not load libtessera.so"
    [ "$(realpath "$resolved")" = "$(realpath "$so")" ] || [ "$(dirname "$(realpath "$resolved")")" = "$(realpath "$libdir")" ] \
      || fail "$exe loads $resolved, not the installed copy in $libdir"
  else
    [ -z "$resolved" ] || fail "$exe (static) loads $resolved"
  fi
  echo "ok: $(basename "$exe") prints '$out'"
}

src=$work/src
mkdir -p "$src"
cp "$consumer/main.c" "$consumer/CMakeLists.txt" "$src/"

if [ "$mode" = cmake ]; then
  run "$work/configure.log" "$cmake" -S "$src" -B "$work/build" -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=Release
  grep -q "tessera_DIR:PATH=$prefix" "$work/build/CMakeCache.txt" \
    || fail "find_package found tessera elsewhere: $(grep tessera_DIR "$work/build/CMakeCache.txt")"
  run "$work/build.log" "$cmake" --build "$work/build"
  check_run "$work/build/consumer" 1
  check_run "$work/build/consumer_static" 0
  echo "install/cmake: ok"
  exit 0
fi

# ---- pkg-config ----
PKG_CONFIG_PATH=$(dirname "$pc")
export PKG_CONFIG_PATH
pkg-config --exists tessera || fail "pkg-config does not find tessera with PKG_CONFIG_PATH=$PKG_CONFIG_PATH"
got_version=$(pkg-config --modversion tessera)
[ "$got_version" = "$want_version" ] || fail "pkg-config says version $got_version, the header $want_version"
cflags=$(pkg-config --cflags tessera)
libs=$(pkg-config --libs tessera)
echo "pkg-config: cflags '$cflags', libs '$libs'"
# The flags must point into the prefix the files were installed to: a
# tessera.pc that names the configure-time prefix is not relocatable.
inc_ok=0 lib_ok=0
for f in $cflags; do
  case $f in -I*) [ "$(realpath -m "${f#-I}")" = "$(realpath "$prefix/include")" ] && inc_ok=1 ;; esac
done
for f in $libs; do
  case $f in -L*) [ "$(realpath -m "${f#-L}")" = "$(realpath "$libdir")" ] && lib_ok=1 ;; esac
done
if [ $inc_ok != 1 ] || [ $lib_ok != 1 ]; then
  fail "tessera.pc does not point at the install prefix $prefix" \
    "(cflags '$cflags', libs '$libs'): it must be relocatable, e.g. prefix=\${pcfiledir}/../.., or written at install time"
fi
# shellcheck disable=SC2086 # the flags are meant to split
run "$work/cc.log" "$cc" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror "$src/main.c" $cflags $libs -o "$work/consumer_pc"
check_run "$work/consumer_pc" 1
# shellcheck disable=SC2086,SC2046
run "$work/cc-static.log" "$cc" -std=c11 -D_GNU_SOURCE -DTS_STATIC_ONLY=1 -Wall -Wextra -Werror "$src/main.c" $cflags \
  "$libdir/libtessera.a" $(pkg-config --libs-only-other --static tessera) -lpthread -o "$work/consumer_pc_static"
check_run "$work/consumer_pc_static" 0
echo "install/pkgconfig: ok"
