#!/usr/bin/env bash
# variant.sh KIND SOURCE_DIR WORK_DIR: builds tessera again in WORK_DIR as
# a variant and runs part of the suite there.
#   clang  - clang with -Wall -Wextra -Werror; runs the unit tests
#   ubsan  - gcc with -fsanitize=undefined (no recovery); runs unit, api and stress
#   tsan   - gcc with -fsanitize=thread; runs the unit tests
# Exits 77 (skip) when the compiler or runtime it needs is missing.
set -euo pipefail
kind=$1 src=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
common=(-DTS_BUILD_BENCH=OFF -DTS_WERROR=ON -DTS_VARIANT_TESTS=OFF)

# configure_sanitized NAME FLAGS: skips (77) when gcc cannot link with FLAGS.
configure_sanitized() {
  echo 'int main(void){return 0;}' > "$work/probe.c"
  gcc $2 "$work/probe.c" -o "$work/probe" 2>/dev/null || { echo "no $1 runtime"; exit 77; }
  cmake -S "$src" -B "$work" "${common[@]}" -DCMAKE_C_FLAGS="$2" -DCMAKE_CXX_FLAGS="$2" \
    -DCMAKE_EXE_LINKER_FLAGS="$2" -DCMAKE_SHARED_LINKER_FLAGS="$2" >/dev/null
}

case "$kind" in
  clang)
    command -v clang >/dev/null || { echo "clang not installed"; exit 77; }
    CC=clang CXX=clang++ cmake -S "$src" -B "$work" "${common[@]}" >/dev/null
    labels='unit'
    ;;
  ubsan)
    configure_sanitized UBSan "-fsanitize=undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
    labels='unit|api|stress'
    ;;
  tsan)
    configure_sanitized TSan "-fsanitize=thread -fno-omit-frame-pointer"
    # the unit tests drive the internals (thread caches, bins, arenas, the
    # purger thread) directly; the programs that call the exported malloc
    # cannot run under TSan, which replaces malloc itself
    labels='unit'
    ;;
  *) echo "unknown variant $kind"; exit 2 ;;
esac
cmake --build "$work" -j "$(nproc)" >/dev/null
cd "$work"
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 TSAN_OPTIONS=halt_on_error=1 ctest -L "$labels" --output-on-failure -j "$(nproc)"
