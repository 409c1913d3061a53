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
#include <stdint.h>
#include <stdio.h>

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

/* ---- The ledger (docs/STATS.md has every field) ----
 *
 * ts_stats_get() fills a snapshot of where the process's memory goes.
 * The ledger's parts add up exactly to committed_bytes:
 *   committed = requested + rounding + cached + slab_free + dirty + metadata
 * where requested is what callers asked for and still hold (exact, every
 * byte of every live block), rounding what size classes and page
 * rounding add to it (requested + rounding = allocated), cached what
 * thread caches hold, slab_free the unused slots of slabs (external
 * fragmentation), dirty the free pages not yet given back, metadata
 * tessera's own structures.  resident_bytes is what the kernel says is in
 * memory of tessera's mappings (mincore); process_rss_bytes the whole
 * process's (/proc/self/statm).  While other threads allocate, the
 * snapshot mixes moments a few microseconds apart; the parts add up
 * exactly in a process whose other threads are quiet.  Cost: every arena's
 * locks, held for a walk of its page maps (about 1 ms per GiB in use). */
#define TS_STATS_VERSION 3
#define TS_STATS_CLASSES 128
#define TS_STATS_ARENAS 64

typedef struct ts_stats_class_s {
  uint64_t size;          /* object size, bytes */
  uint64_t slabs;         /* slabs of the class, over all arenas */
  uint64_t slab_bytes;    /* their committed pages, bytes */
  uint64_t objects;       /* object slots in them */
  uint64_t used;          /* objects of the class out of slabs: live + cached, wherever they lie */
  uint64_t live;          /* objects held by callers */
  uint64_t cached;        /* objects in thread caches */
  double utilisation;     /* bytes of the class's slabs in use (its own objects and hosted_bytes)
                             / slab_bytes (0 when there are no slabs) */
  uint64_t foreign;       /* of used, objects placed in other classes' slabs (mixed slabs) */
  uint64_t hosted_bytes;  /* bytes of other classes' objects placed in this class's slabs */
} ts_stats_class_t;

typedef struct ts_stats_arena_s {
  uint64_t requested_bytes; /* asked for by callers, in this arena's memory (large blocks only
                               unless requested_exact) */
  uint64_t used_bytes;      /* slab slots and large runs out of the arena (callers + caches) */
  uint64_t slab_free_bytes; /* unused slots and tails of its slabs */
  uint64_t dirty_bytes;     /* free pages not yet returned */
  uint64_t metadata_bytes;  /* chunk headers (resident part) and side arrays */
  uint64_t committed_bytes; /* used + slab_free + dirty + metadata */
  uint64_t mapped_bytes;    /* chunks and metadata blocks mapped */
  uint64_t resident_bytes;  /* of those, in memory (mincore) */
  uint64_t chunks;
  uint64_t threads;         /* threads bound to it */
} ts_stats_arena_t;

typedef struct ts_stats_s {
  uint32_t version;          /* TS_STATS_VERSION */
  uint32_t narenas;          /* arenas[0 .. narenas - 1] are filled */
  uint32_t requested_exact;  /* 1: requested_bytes is exact (option stats_exact); 0: small
                                blocks count at their class size */
  uint32_t reserved_;
  /* the ledger, bytes */
  uint64_t requested_bytes;
  uint64_t rounding_bytes;
  uint64_t cached_bytes;
  uint64_t slab_free_bytes;
  uint64_t dirty_bytes;
  uint64_t metadata_bytes;
  uint64_t committed_bytes;
  uint64_t allocated_bytes;  /* requested + rounding */
  uint64_t medium_bytes;     /* of allocated: blocks of 4 .. 64 KiB in granule regions */
  uint64_t large_bytes;      /* of allocated: page runs (32 KiB .. 2 MiB) */
  uint64_t huge_bytes;       /* of allocated: blocks mapped on their own */
  uint64_t mapped_bytes;     /* address space of every mapping of tessera's */
  uint64_t resident_bytes;   /* tessera's mappings in memory (mincore) */
  uint64_t process_rss_bytes;      /* the whole process (statm) */
  uint64_t process_rss_peak_bytes; /* the kernel's high-water mark (VmHWM) */
  uint64_t returned_bytes;   /* given back to the OS since start (purging, unmapping) */
  /* high-water marks, sampled at every snapshot and purger tick */
  uint64_t requested_peak_bytes;
  uint64_t allocated_peak_bytes;
  uint64_t resident_peak_bytes;
  /* fragmentation: committed / requested, and each cause's share of
   * committed - requested (0 when there is none) */
  double frag_ratio;
  double rounding_share, cached_share, slab_free_share, dirty_share, metadata_share;
  /* calls */
  uint64_t nmalloc;          /* blocks handed out, by any call */
  uint64_t nfree;            /* blocks taken back */
  uint64_t ncalloc, nrealloc, naligned;
  uint64_t nremote_free;     /* frees of blocks from another arena than the freeing thread's */
  uint64_t nhuge;            /* huge blocks live */
  ts_stats_class_t classes[TS_STATS_CLASSES];
  ts_stats_arena_t arenas[TS_STATS_ARENAS];
} ts_stats_t;

/* Fills *out; returns 0, or -1 with errno EINVAL when out is NULL. */
TS_API int ts_stats_get(ts_stats_t *out);

/* ---- Tags: what a program allocates, by name ----
 *
 * With TESSERA_CONF=tags:true (which implies stats_exact) every block is
 * charged to the tag current on the allocating thread, and credited back
 * to that tag when freed, by whichever thread.  Tag 0 is "untagged".
 * Without the option tags can be registered and set but nothing is
 * charged (and the fast paths pay nothing). */
typedef uint16_t ts_tag_t;
#define TS_TAG_NONE 0
#define TS_TAGS_MAX 256       /* tags, "untagged" included */
#define TS_TAG_NAME_MAX 48    /* bytes of a name, NUL included; longer names are cut */

/* The tag of that name, registered on first use; TS_TAG_NONE with errno
 * EINVAL (no name) or ENOSPC (table full), with a message on stderr. */
TS_API ts_tag_t ts_tag_register(const char *name);
/* Sets the calling thread's current tag; returns the previous one, so that
 *   ts_tag_t prev = ts_tag_set(t); ... ts_tag_set(prev);
 * scopes it.  An unregistered tag is refused (errno EINVAL, a message). */
TS_API ts_tag_t ts_tag_set(ts_tag_t tag);
TS_API ts_tag_t ts_tag_get(void);
#define ts_tag_push(tag) ts_tag_set(tag)
#define ts_tag_pop(prev) ((void)ts_tag_set(prev))
/* ts_malloc charged to tag, whatever the current tag. */
TS_API TS_MALLOC_ATTR void *ts_malloc_tagged(size_t size, ts_tag_t tag);

typedef struct ts_tag_stats_s {
  char name[TS_TAG_NAME_MAX];
  ts_tag_t tag;
  uint64_t requested_bytes; /* asked for by blocks of the tag that are still held */
  uint64_t peak_bytes;      /* the highest requested_bytes has been */
  uint64_t allocations;     /* blocks allocated with the tag since start */
} ts_tag_stats_t;
/* Fills out[0 .. min(max, n) - 1] with tags 0, 1, ...; returns n, the
 * number of tags (untagged included). */
TS_API unsigned ts_tag_stats(ts_tag_stats_t *out, unsigned max);

/* Prints a snapshot to out: TS_STATS_TEXT, a table for people, or
 * TS_STATS_JSON, one JSON object on one line (docs/STATS.md: stable field
 * names).  Or-ing TS_STATS_NO_CLASSES / TS_STATS_NO_ARENAS leaves out the
 * per-class and per-arena tables.  Returns 0, or -1 if writing failed. */
#define TS_STATS_TEXT 0
#define TS_STATS_JSON 1
#define TS_STATS_NO_CLASSES 2
#define TS_STATS_NO_ARENAS 4
TS_API int ts_stats_print(FILE *out, int flags);

#ifdef __cplusplus
}
#endif

#endif /* TESSERA_H */
