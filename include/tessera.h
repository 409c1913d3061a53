/* SPDX-License-Identifier: MIT */
/*
 * tessera.h: the whole public API of tessera, a memory allocator for
 * long-running servers.
 *
 * Every function here has the behaviour of its libc namesake without the
 * `ts_` prefix (C17, POSIX and glibc, as documented in the README).  The
 * shared library libtessera.so also exports the unprefixed names (malloc,
 * free, ..., and the C++ operator new/delete family), so that
 * `LD_PRELOAD=libtessera.so program` or linking with -ltessera replaces the
 * system allocator.  The static library libtessera.a exports only the
 * prefixed names.
 *
 * Guarantees: every pointer returned is aligned to at least
 * TS_MIN_ALIGN bytes; ts_malloc(0) returns a unique pointer that must be
 * freed; out of memory returns NULL with errno ENOMEM; a bad alignment gives
 * EINVAL.  Freeing a pointer that tessera never handed out is reported on
 * stderr as "tessera: free(): invalid pointer 0x..." and the process aborts.
 */
#ifndef TESSERA_H
#define TESSERA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TESSERA_VERSION_MAJOR 0
#define TESSERA_VERSION_MINOR 1
#define TESSERA_VERSION_PATCH 0
#define TESSERA_VERSION "0.1.0"

/* Alignment of every pointer returned by ts_malloc and friends. */
#define TS_MIN_ALIGN 16

#if defined(__GNUC__)
#define TS_API __attribute__((visibility("default")))
#define TS_MALLOC_ATTR __attribute__((malloc, warn_unused_result))
#else
#define TS_API
#define TS_MALLOC_ATTR
#endif

TS_API TS_MALLOC_ATTR void *ts_malloc(size_t size);
TS_API void ts_free(void *ptr);
TS_API TS_MALLOC_ATTR void *ts_calloc(size_t count, size_t size);
TS_API void *ts_realloc(void *ptr, size_t size);
TS_API void *ts_reallocarray(void *ptr, size_t count, size_t size);
TS_API int ts_posix_memalign(void **out, size_t alignment, size_t size);
TS_API TS_MALLOC_ATTR void *ts_aligned_alloc(size_t alignment, size_t size);
TS_API TS_MALLOC_ATTR void *ts_memalign(size_t alignment, size_t size);
TS_API TS_MALLOC_ATTR void *ts_valloc(size_t size);
TS_API TS_MALLOC_ATTR void *ts_pvalloc(size_t size);
TS_API size_t ts_malloc_usable_size(const void *ptr);
/* C23: free a block whose requested size (and alignment) the caller knows.
 * A size that does not match the block is reported as an error. */
TS_API void ts_free_sized(void *ptr, size_t size);
TS_API void ts_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* Returns every free page tessera holds to the OS now (the calling
 * thread's cache is flushed first, and every empty slab released), instead
 * of within decay_ms; returns the number of bytes given back. */
TS_API size_t ts_purge(void);

/* The library's version string, e.g. "0.1.0". */
TS_API const char *ts_version(void);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_H */
