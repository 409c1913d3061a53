# allocators.sh: sourced by run.sh and frag.sh (needs BUILD set).  Finds the
# allocators to compare and fills NAMES (glibc, then each one found),
# PRELOADS (the LD_PRELOAD value for each, "" for glibc), CONFS (the
# TESSERA_CONF for each, "" but for tessera's modes), NOTES (why one was
# skipped, with the Debian package that provides it) and NALLOC.  Installs
# nothing.

# Locate a system library: Debian's directory, then the dynamic linker
# cache, then the usual directories.
find_lib() {
    local path=/usr/lib/x86_64-linux-gnu/$1 dir
    [ -e "$path" ] && { printf '%s' "$path"; return; }
    path=$( (ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null) |
            awk -v n="$1" '$1 == n && /x86-64|x86_64|64bit/ { print $NF; exit }')
    if [ -z "$path" ]; then
        for dir in /usr/lib64 /usr/lib /usr/local/lib; do
            [ -e "$dir/$1" ] && { path=$dir/$1; break; }
        done
    fi
    printf '%s' "$path"
}

NAMES=(glibc)
PRELOADS=("")
CONFS=("")
NOTES=()
add_system() { # name soname debian-package
    local p
    p=$(find_lib "$2")
    if [ -n "$p" ] && [ -e "$p" ]; then
        NAMES+=("$1"); PRELOADS+=("$p"); CONFS+=("")
    else
        NOTES+=("$1 skipped: $2 not found (install with: apt-get install $3)")
    fi
}
add_system jemalloc libjemalloc.so.2 libjemalloc2
add_system mimalloc libmimalloc.so.2 libmimalloc2.0
add_system tcmalloc libtcmalloc_minimal.so.4 libtcmalloc-minimal4
HAVE_TESSERA=0
if [ -e "$BUILD/libtessera.so" ]; then
    NAMES+=(tessera); PRELOADS+=("$BUILD/libtessera.so"); CONFS+=(""); HAVE_TESSERA=1
fi
# TS_BENCH_NOSTATS=1: also tessera with the accounting compiled out, to
# measure the ledger's cost
if [ "${TS_BENCH_NOSTATS:-0}" = 1 ] && [ -e "$BUILD/libtessera_nostats.so" ]; then
    NAMES+=(tessera-nostats); PRELOADS+=("$BUILD/libtessera_nostats.so"); CONFS+=("")
fi
# TS_BENCH_MODES=1: also tessera with exact requested bytes (stats_exact)
# and with tags (tags), to measure what those modes cost
if [ "${TS_BENCH_MODES:-0}" = 1 ] && [ "$HAVE_TESSERA" = 1 ]; then
    NAMES+=(tessera-exact tessera-tags)
    PRELOADS+=("$BUILD/libtessera.so" "$BUILD/libtessera.so")
    CONFS+=("stats_exact:true" "tags:true")
fi
# TS_BENCH_NOMIXED=1: also tessera with mixed slabs off, to see what
# placing objects in other classes' slabs changes
if [ "${TS_BENCH_NOMIXED:-0}" = 1 ] && [ "$HAVE_TESSERA" = 1 ]; then
    NAMES+=(tessera-nomixed); PRELOADS+=("$BUILD/libtessera.so"); CONFS+=("mixed_slabs:false")
fi
# The name a run under allocator i reports (bench.h, frag.h): the library's.
alloc_reported() { case $1 in tessera-exact|tessera-tags|tessera-nomixed) echo tessera ;; *) echo "$1" ;; esac; }
NALLOC=${#NAMES[@]}
