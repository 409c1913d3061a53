/* SPDX-License-Identifier: MIT */
/*
 * alloc.c: the malloc family, on top of the thread cache, the arenas and
 * huge mappings.
 *
 * Which layer serves a request:
 *   4 KiB < size <= 64 KiB           while the thread is on medium blocks
 *                                    (option medium; auto: by the lifetimes
 *                                    it sees, tcache.c): a block of whole
 *                                    256-byte granules (medium.c), under the
 *                                    arena's medium lock, no thread cache
 *   size <= TS_SMALL_MAX (32 KiB)    a size class: thread cache, else bin
 *   size <= TS_LARGE_MAX (2 MiB)     a page run: the thread's cached runs (up to
 *                                    256 KiB), else its arena's chunks
 *   larger                           a mapping of its own (huge.c)
 * Aligned requests use the smallest class whose size is a multiple of the
 * alignment (objects then sit on aligned addresses), else an aligned page
 * run, else an aligned huge mapping.
 *
 * The fast paths (ts_malloc, ts_free) touch only the calling thread's
 * cache and the chunk map: no lock, no atomic read-modify-write, no call;
 * they mark the cache in use around the list operation so that the
 * purger can trim it when the thread is idle (types.h, ts_tcache_s).
 * Everything else is in the *_slow functions.  Behaviour follows C17,
 * POSIX and glibc: malloc(0) is a unique 16-byte block, realloc(p, 0)
 * frees p and returns NULL, sizes above PTRDIFF_MAX and overflowing
 * calloc/reallocarray products fail with ENOMEM, bad alignments with
 * EINVAL.  Misuse is reported by ts_fatal (safety.c).
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <tessera.h>

#define TS_ALLOC_MAX ((size_t)PTRDIFF_MAX)

static void *alloc_fail(void) {
  errno = ENOMEM;
  return NULL;
}

/* A block of class cls for a request of n bytes, through the cache when
 * the thread has one. */
static void *alloc_class(unsigned cls, size_t n) {
  ts_tcache_t *tc = ts_tcache_claim();
  void *p = NULL;
  if (tc) {
    ts_tbin_t *b = &tc->bins[cls];
    bool refilled = b->head == NULL;
    p = refilled ? ts_tcache_refill(tc, cls) : ts_tcache_pop(b);
    if (p) ts_acct_small_alloc(&tc->stats, false, p, cls, n);
    ts_tcache_leave(tc);
    if (refilled) ts_purge_kick(); /* the purger trims the cache if the thread goes idle */
  } else {
    ts_arena_t *arena = ts_thread_arena();
    if (arena && !ts_bin_fill(arena, cls, &p, 1)) p = NULL;
    if (p) ts_acct_small_alloc(&ts_stats_orphan, true, p, cls, n);
  }
  return p ? p : alloc_fail();
}

/* medium:auto: a sampled block p allocated goes into the thread's
 * lifetime ring (tcache.c, Lifetimes). */
static void life_born(void *p) {
  if (!ts_medium_auto()) return;
  ts_tcache_t *tc = ts_tcache_claim();
  if (tc) {
    ts_tcache_life_born(tc, p);
    ts_tcache_leave(tc);
  }
}

/* Whether this thread makes a request of size bytes (alignment at most a
 * granule) a medium block now: the option, and with medium:auto the
 * thread's mode, read once its cache is set up (a new thread's starts on
 * medium blocks). */
static bool medium_wanted(size_t size) {
  if (!ts_medium_size(size)) return false;
  if (ts_opt.medium == TS_MEDIUM_ON) return true;
  (void)ts_thread_tcache();
  return ts_tcache.medium_mode;
}

/* A large run of size bytes for a request of `requested` (alignment 0:
 * pages). */
static void *alloc_large(size_t size, size_t alignment, size_t requested) {
  unsigned npages = (unsigned)((size + TS_PAGE_MASK) >> TS_PAGE_SHIFT);
  void *p = NULL;
  if (npages <= TS_TCACHE_LARGE_PAGES && alignment <= TS_PAGE_SIZE) {
    ts_tcache_t *tc = ts_tcache_claim();
    if (tc) {
      p = ts_tcache_large_pop(tc, npages);
      ts_tcache_leave(tc);
    }
  }
  if (!p) {
    ts_arena_t *arena = ts_thread_arena();
    p = arena ? ts_arena_large_alloc(arena, size, alignment) : NULL;
  }
  if (!p) return alloc_fail();
  ts_acct_large_alloc(ts_stats_here(), p, requested);
  if (size > TS_LIFE_MIN_SIZE && size <= TS_MEDIUM_MAX_SIZE) life_born(p);
  return p;
}

/* A medium block (medium.c) of size bytes. */
static void *alloc_medium(size_t size) {
  ts_arena_t *arena = ts_thread_arena();
  void *p = arena ? ts_medium_alloc(arena, size) : NULL;
  if (!p) return alloc_fail();
  life_born(p);
  ts_tstats_t *st = ts_stats_here();
  ts_cnt_add(st == &ts_stats_orphan, &st->nmalloc, 1);
  return p;
}

static TS_NOINLINE void *alloc_slow(size_t size) {
  if (medium_wanted(size)) return alloc_medium(size);
  /* computed, not looked up: the table may not be built yet */
  if (size <= TS_SMALL_MAX) return alloc_class(ts_size_to_class_compute(size), size);
  if (size <= TS_LARGE_MAX) return alloc_large(size, 0, size);
  if (size > TS_ALLOC_MAX) return alloc_fail();
  if (!ts_is_ready()) ts_init_slow();
  return ts_huge_alloc(size, 0, size);
}

void *ts_malloc(size_t size) {
  if (TS_LIKELY(size <= TS_SMALL_MAX)) {
    ts_tcache_t *tc = &ts_tcache;
    unsigned cls = ts_size_to_class(size);
    ts_tcache_enter(tc);
    ts_tbin_t *b = ts_tcache_bins(tc) + cls;
    if (TS_LIKELY(b->head != NULL)) {
      void *p = ts_tcache_pop(b);
      if (TS_STATS) ts_cnt_bump(&tc->stats.nmalloc, 1);
      ts_tcache_leave(tc);
      return p;
    }
    ts_tcache_leave(tc);
  }
  return alloc_slow(size);
}

/* ---- free ---- */

static TS_NOINLINE __attribute__((noreturn)) void free_invalid(const char *fn, const void *p) {
  ts_fatal("%s(): invalid pointer %p", fn, p);
}

/* A medium block goes into the thread's gathered frees, which go back
 * to their regions TS_MEDIUM_PENDING at a time. */
static void free_medium(ts_chunk_t *chunk, void *p, const char *fn) {
  size_t bytes = ts_medium_usable(chunk, p);
  if (TS_UNLIKELY(!bytes)) ts_fatal("%s(): invalid pointer %p (not a block in a medium region, or freed twice)", fn, p);
  ts_tcache_t *tc = ts_tcache_claim();
  if (!tc) {
    ts_cnt_add(true, &ts_stats_orphan.nfree, 1);
    ts_medium_free_many(&p, 1, fn);
    ts_purge_kick();
    return;
  }
  uint32_t n = tc->medium_npending;
  for (uint32_t i = 0; i < n; i++)
    if (TS_UNLIKELY(tc->medium_pending[i] == p)) {
      ts_tcache_leave(tc);
      ts_fatal("%s(): double free of %p (size %zu)", fn, p, bytes);
    }
  ts_cnt_add(false, &tc->stats.nfree, 1);
  if (ts_medium_auto()) ts_tcache_life_died(tc, p);
  tc->medium_pending[n] = p;
  TS_SW_SET(tc->medium_npending, n + 1);
  TS_SW_ADD(tc->medium_pending_bytes, bytes);
  bool flush = n + 1 == TS_MEDIUM_PENDING;
  if (flush) ts_tcache_flush_medium(tc);
  ts_tcache_leave(tc);
  ts_purge_kick(); /* the purger gives them back if the thread goes idle */
}

/* Frees p after the fast path could not: NULL, a full or absent cache, a
 * large or huge block, or a pointer that is not ours. */
void ts_free_slow(void *p, const char *fn) {
  if (!p) return;
  uintptr_t a = (uintptr_t)p;
  unsigned kind = ts_window_kind(a);
  if (kind == TS_WINDOW_CHUNK) {
    ts_chunk_t *chunk = ts_chunk_of(p);
    if (chunk->cookie != (TS_CHUNK_MAGIC ^ ts_secret)) free_invalid(fn, p);
    unsigned page = ts_chunk_page_of(p);
    unsigned code = ts_chunk_block_code(chunk, page);
    if (code == TS_PAGE_MIXED && (code = ts_mixed_class_nolock(chunk, p)) == TS_PAGE_MIXED) {
      ts_mixed_free(chunk, p, fn);
      return;
    }
    if (code == TS_PAGE_MEDIUM) {
      free_medium(chunk, p, fn);
      return;
    }
    if (code < TS_NCLASSES) {
      ts_tcache_t *tc = ts_tcache_claim();
      if (!tc) {
        ts_acct_small_free(&ts_stats_orphan, true, p, code);
        ts_bin_flush(code, &p, 1);
        ts_purge_kick(); /* the flush may have started a grace */
        return;
      }
      ts_tbin_t *b = &tc->bins[code];
      if (TS_UNLIKELY(p == b->head))
        ts_fatal("%s(): double free of %p (size %u)", fn, p, (unsigned)ts_class_size[code]);
      ts_acct_small_free(&tc->stats, false, p, code);
      ts_tcache_push(b, p);
      bool flushed = ts_tbin_count(b) > b->cap;
      if (flushed) {
        ts_tcache_flush_bin(tc, code, b->cap / 2);
        ts_tcache_gc(tc);
      }
      ts_tcache_leave(tc);
      if (flushed) ts_purge_kick();
      return;
    }
    if (code == TS_PAGE_LARGE && (a & TS_PAGE_MASK) == 0) {
      ts_acct_large_free(ts_stats_here(), chunk, page);
      ts_tcache_t *tc = ts_tcache_claim();
      if (tc) {
        unsigned np = chunk->spans[page].npages;
        if (np > (TS_LIFE_MIN_SIZE >> TS_PAGE_SHIFT) && np <= (TS_MEDIUM_MAX_SIZE >> TS_PAGE_SHIFT) && ts_medium_auto())
          ts_tcache_life_died(tc, p);
        bool cached = ts_tcache_large_push(tc, p, np);
        ts_tcache_leave(tc);
        if (cached) {
          ts_purge_kick(); /* the purger trims the cache if the thread goes idle */
          return;
        }
      }
      ts_arena_run_free(chunk, page);
      ts_purge_kick();
      return;
    }
    if (code == TS_PAGE_CACHED && (a & TS_PAGE_MASK) == 0)
      ts_fatal("%s(): double free of %p (size %u)", fn, p, (unsigned)(chunk->spans[page].npages << TS_PAGE_SHIFT));
    free_invalid(fn, p);
  }
  if (kind == TS_WINDOW_HUGE && ts_huge_header(p)) {
    ts_huge_free(p);
    return;
  }
  free_invalid(fn, p);
}

void ts_free(void *p) {
  uintptr_t a = (uintptr_t)p;
  if (TS_LIKELY(ts_window_kind(a) == TS_WINDOW_CHUNK)) {
    unsigned code = ts_chunk_code(ts_chunk_of(p), ts_chunk_page_of(p));
    if (TS_LIKELY(code < TS_NCLASSES)) {
      ts_tcache_t *tc = &ts_tcache;
      ts_tcache_enter(tc);
      ts_tbin_t *b = ts_tcache_bins(tc) + code;
      if (TS_LIKELY(ts_tbin_count(b) < b->cap && p != b->head)) {
        if (TS_STATS) ts_cnt_bump(&tc->stats.nfree, 1);
        ts_tcache_push(b, p);
        ts_tcache_leave(tc);
        return;
      }
      ts_tcache_leave(tc);
    }
  }
  ts_free_slow(p, "free");
}

/* Bytes usable at p; reports p in fn's name when it is not a block. */
size_t ts_usable_checked(const void *p, const char *fn) {
  if (!p) return 0;
  unsigned kind = ts_window_kind((uintptr_t)p);
  if (kind == TS_WINDOW_CHUNK) {
    ts_chunk_t *chunk = ts_chunk_of(p);
    if (chunk->cookie == (TS_CHUNK_MAGIC ^ ts_secret)) {
      unsigned page = ts_chunk_page_of(p);
      unsigned code = ts_chunk_block_code(chunk, page);
      if (code == TS_PAGE_MIXED && (code = ts_mixed_class_nolock(chunk, p)) == TS_PAGE_MIXED)
        code = ts_mixed_class_of(chunk, p, fn); /* reports p */
      if (code == TS_PAGE_MEDIUM) {
        size_t n = ts_medium_usable(chunk, p);
        if (n) return n;
      }
      if (code < TS_NCLASSES) return ts_class_size[code];
      if (code == TS_PAGE_LARGE && ((uintptr_t)p & TS_PAGE_MASK) == 0) return (size_t)chunk->spans[page].npages << TS_PAGE_SHIFT;
    }
  } else if (kind == TS_WINDOW_HUGE && ts_huge_header(p)) {
    return ts_huge_usable(p);
  }
  free_invalid(fn, p);
}

size_t ts_malloc_usable_size(const void *p) { return ts_usable_checked(p, "malloc_usable_size"); }

void ts_free_sized(void *p, size_t size) {
  if (!p) return;
  size_t usable = ts_usable_checked(p, "free_sized");
  if (TS_UNLIKELY(size > usable))
    ts_fatal("free_sized(): size %zu does not match block %p of %zu bytes", size, p, usable);
  ts_free(p);
}

void ts_free_aligned_sized(void *p, size_t alignment, size_t size) {
  if (!p) return;
  size_t usable = ts_usable_checked(p, "free_aligned_sized");
  if (TS_UNLIKELY(size > usable || alignment == 0 || ((uintptr_t)p & (alignment - 1))))
    ts_fatal("free_aligned_sized(): size %zu, alignment %zu do not match block %p of %zu bytes", size,
             alignment, p, usable);
  ts_free(p);
}

/* ---- calloc, realloc ---- */

void *ts_calloc(size_t count, size_t size) {
  size_t bytes;
  ts_acct_call(TS_CALL_CALLOC);
  if (TS_UNLIKELY(__builtin_mul_overflow(count, size, &bytes))) return alloc_fail();
  void *p = ts_malloc(bytes);
  if (p && bytes <= TS_LARGE_MAX) memset(p, 0, bytes); /* huge blocks are fresh mappings */
  return p;
}

void *ts_realloc(void *p, size_t size) {
  ts_acct_call(TS_CALL_REALLOC);
  if (!p) return ts_malloc(size);
  if (size == 0) {
    ts_free_slow(p, "realloc");
    return NULL;
  }
  size_t old = ts_usable_checked(p, "realloc");
  if (size > TS_ALLOC_MAX) return alloc_fail();
  unsigned kind = ts_window_kind((uintptr_t)p);
  if (kind == TS_WINDOW_CHUNK) {
    unsigned code = ts_chunk_block_code(ts_chunk_of(p), ts_chunk_page_of(p));
    if (code == TS_PAGE_MIXED) code = ts_mixed_class_nolock(ts_chunk_of(p), p); /* p was checked above */
    if (code == TS_PAGE_MEDIUM) {
      if (ts_medium_size(size) && ts_medium_resize(ts_chunk_of(p), p, size)) {
        if (size < old) ts_purge_kick();
        return p;
      }
    } else if (code < TS_NCLASSES) {
      if (size <= TS_SMALL_MAX && ts_size_to_class(size) == code) {
        if (ts_opt.stats_exact) ts_acct_small_resize(p, code, size);
        return p;
      }
    } else if (size > TS_SMALL_MAX && size <= TS_LARGE_MAX) {
      if (ts_arena_large_resize(p, size)) {
        ts_acct_large_resize(ts_stats_here(), p, size);
        ts_purge_kick();
        return p;
      }
    }
  } else if (size > TS_LARGE_MAX) {
    void *q = ts_huge_realloc(p, size);
    if (q) return q;
  }
  /* a moved block keeps its tag */
  ts_tag_t prev = ts_tag_current;
  if (ts_opt.tags) ts_tag_current = ts_tag_of_block(p);
  void *q = ts_malloc(size);
  ts_tag_current = prev;
  if (!q) return NULL;
  memcpy(q, p, old < size ? old : size);
  ts_free(p);
  return q;
}

void *ts_reallocarray(void *p, size_t count, size_t size) {
  size_t bytes;
  if (TS_UNLIKELY(__builtin_mul_overflow(count, size, &bytes))) return alloc_fail();
  return ts_realloc(p, bytes);
}

/* ---- aligned ---- */

static bool is_pow2(size_t x) { return x && !(x & (x - 1)); }

/* A block of class cls at an address that is a multiple of alignment
 * (a power of two dividing the class size).  Slots of the class's own
 * slabs are (base + i * size), but an object placed in another class's
 * slab (mixed.c, classes up to 1 KiB) is only granule-aligned: one the
 * thread cache hands out goes back to it, and the bin gives one of its
 * own slots instead. */
static void *alloc_class_aligned(unsigned cls, size_t n, size_t alignment) {
  void *p = alloc_class(cls, n);
  if (TS_LIKELY(!p || ((uintptr_t)p & (alignment - 1)) == 0)) return p;
  ts_free(p);
  ts_arena_t *arena = ts_thread_arena();
  if (!arena || !ts_bin_fill_own(arena, cls, &p, 1)) return alloc_fail();
  ts_acct_small_alloc(&ts_stats_orphan, true, p, cls, n);
  return p;
}

/* alignment: a power of two. */
static void *alloc_aligned(size_t alignment, size_t size) {
  ts_acct_call(TS_CALL_ALIGNED);
  if (alignment <= TS_MIN_ALIGN_BYTES) return ts_malloc(size);
  if (size > TS_ALLOC_MAX || alignment > TS_ALLOC_MAX / 2 + 1) return alloc_fail();
  if (size <= TS_SMALL_MAX && alignment <= TS_PAGE_SIZE) {
    if (alignment <= ((size_t)1 << TS_MEDIUM_GRANULE_SHIFT) && medium_wanted(size)) return alloc_medium(size);
    for (unsigned c = ts_size_to_class_compute(size); c < TS_NCLASSES; c++)
      if ((ts_class_size[c] & (alignment - 1)) == 0) return alloc_class_aligned(c, size, alignment);
  }
  if (size <= TS_LARGE_MAX && alignment <= TS_LARGE_MAX) return alloc_large(size ? size : 1, alignment, size);
  if (!ts_is_ready()) ts_init_slow();
  return ts_huge_alloc(size > TS_LARGE_MAX ? size : TS_LARGE_MAX + 1, alignment, size);
}

int ts_posix_memalign(void **out, size_t alignment, size_t size) {
  if (!is_pow2(alignment) || alignment % sizeof(void *)) return EINVAL;
  int saved = errno;
  void *p = alloc_aligned(alignment, size);
  if (!p) {
    errno = saved;
    return ENOMEM;
  }
  *out = p;
  return 0;
}

void *ts_aligned_alloc(size_t alignment, size_t size) {
  if (!is_pow2(alignment)) {
    errno = EINVAL;
    return NULL;
  }
  return alloc_aligned(alignment, size);
}

/* glibc's memalign rounds an alignment that is not a power of two up to
 * the next one, and fails with EINVAL only above SIZE_MAX / 2 + 1. */
void *ts_memalign(size_t alignment, size_t size) {
  if (alignment > SIZE_MAX / 2 + 1) {
    errno = EINVAL;
    return NULL;
  }
  if (!is_pow2(alignment)) {
    size_t a = TS_MIN_ALIGN_BYTES;
    while (a < alignment) a <<= 1;
    alignment = a;
  }
  return alloc_aligned(alignment, size);
}

void *ts_valloc(size_t size) { return alloc_aligned(TS_PAGE_SIZE, size); }

void *ts_pvalloc(size_t size) {
  size_t rounded = (size + TS_PAGE_MASK) & ~TS_PAGE_MASK;
  if (rounded < size) return alloc_fail();
  return alloc_aligned(TS_PAGE_SIZE, rounded ? rounded : TS_PAGE_SIZE);
}

const char *ts_version(void) { return TESSERA_VERSION; }

/* ---- the unprefixed names, in libtessera.so only ---- */
#ifdef TS_OVERRIDE
#define TS_ALIAS(name) __attribute__((alias(#name), visibility("default"), used))
#define TS_ALIAS_M(name) __attribute__((alias(#name), visibility("default"), used, malloc))
void *malloc(size_t size) TS_ALIAS_M(ts_malloc);
void free(void *p) TS_ALIAS(ts_free);
void *calloc(size_t count, size_t size) TS_ALIAS_M(ts_calloc);
void *realloc(void *p, size_t size) TS_ALIAS(ts_realloc);
void *reallocarray(void *p, size_t count, size_t size) TS_ALIAS(ts_reallocarray);
int posix_memalign(void **out, size_t alignment, size_t size) TS_ALIAS(ts_posix_memalign);
void *aligned_alloc(size_t alignment, size_t size) TS_ALIAS_M(ts_aligned_alloc);
void *memalign(size_t alignment, size_t size) TS_ALIAS_M(ts_memalign);
void *valloc(size_t size) TS_ALIAS_M(ts_valloc);
void *pvalloc(size_t size) TS_ALIAS_M(ts_pvalloc);
size_t malloc_usable_size(void *p) TS_ALIAS(ts_malloc_usable_size);
void free_sized(void *p, size_t size) TS_ALIAS(ts_free_sized);
void free_aligned_sized(void *p, size_t alignment, size_t size) TS_ALIAS(ts_free_aligned_sized);
/* glibc-internal entry points some programs and libraries call directly. */
void *__libc_malloc(size_t size) TS_ALIAS_M(ts_malloc);
void __libc_free(void *p) TS_ALIAS(ts_free);
void *__libc_calloc(size_t count, size_t size) TS_ALIAS_M(ts_calloc);
void *__libc_realloc(void *p, size_t size) TS_ALIAS(ts_realloc);
void *__libc_memalign(size_t alignment, size_t size) TS_ALIAS_M(ts_memalign);
#endif
