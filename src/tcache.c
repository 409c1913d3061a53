/* SPDX-License-Identifier: MIT */
/*
 * tcache.c: per-thread caches of free objects, one LIFO list per size
 * class, in front of the arenas' bins.
 *
 * The cache lives in static TLS (ts_tcache, initial-exec model), so the
 * fast paths in alloc.c are a TLS-relative load, a compare and two stores:
 * no lock, no atomic, no call.  A bin's list is linked through the first
 * word of its free objects (types.h: ts_tbin_s).
 *
 * Bounds: a class caches at most ts_tcache_cap_of(cls) objects: 32 KiB
 * worth, between TS_TCACHE_MIN_SLOTS and TS_TCACHE_MAX_SLOTS objects.  An
 * empty bin is refilled with half its capacity in one bin lock; a full one
 * flushes its older half.  Frees of another thread's objects land in the
 * freeing thread's cache like any other (no atomic at all) and reach the
 * owning arena's bin in batches, one lock per arena met, on flush.
 *
 * Large runs of up to 256 KiB are cached too, per page count, at most
 * 512 KiB per thread (types.h); a cached run stays allocated in its arena
 * with the page code TS_PAGE_CACHED, so freeing it twice is caught.
 *
 * Trimming: at most every TS_TCACHE_GC_MS, a refill or flush trims the
 * bins that did not run empty since the last trim to half their content,
 * so a cache's idle classes give their objects back.  At thread exit a
 * pthread key destructor flushes everything and unbinds the thread from its
 * arena; allocations made after that (by later TLS destructors) go straight
 * to the arena.
 */
#include "internal.h"

__thread ts_tcache_t ts_tcache __attribute__((tls_model("initial-exec")));

#define TS_TCACHE_CLASS_BYTES ((size_t)32 << 10)
#define TS_TCACHE_MIN_SLOTS 4u
#define TS_TCACHE_MAX_SLOTS 256u
#define TS_TCACHE_GC_MS 100u

extern pthread_key_t ts_tcache_key;

uint32_t ts_tcache_cap_of(unsigned cls) {
  size_t n = TS_TCACHE_CLASS_BYTES / ts_class_size[cls];
  if (n < TS_TCACHE_MIN_SLOTS) n = TS_TCACHE_MIN_SLOTS;
  if (n > TS_TCACHE_MAX_SLOTS) n = TS_TCACHE_MAX_SLOTS;
  return (uint32_t)n;
}

void ts_tcache_setup(ts_tcache_t *tc) {
  tc->arena = ts_arena_choose();
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    tc->bins[c].head = NULL;
    tc->bins[c].count = 0;
    tc->bins[c].cap = ts_tcache_cap_of(c);
    tc->used[c] = 0;
  }
  for (unsigned n = 0; n <= TS_TCACHE_LARGE_PAGES; n++) tc->large[n] = NULL;
  tc->large_bytes = 0;
  tc->large_used = false;
  tc->last_gc_ns = ts_os_now_ns();
  tc->state = TS_TCACHE_ACTIVE;
  pthread_setspecific(ts_tcache_key, tc);
}

/* Flushes the oldest objects of a bin (the end of its list) until keep
 * are left. */
void ts_tcache_flush_bin(ts_tcache_t *tc, unsigned cls, unsigned keep) {
  ts_tbin_t *b = &tc->bins[cls];
  if (b->count <= keep) return;
  void *batch[TS_TCACHE_MAX_SLOTS];
  void **link = &b->head;
  for (unsigned i = 0; i < keep; i++) link = (void **)*link;
  void *p = *link;
  *link = NULL;
  unsigned n = 0;
  while (p) {
    batch[n++] = p;
    p = *(void **)p;
  }
  b->count = keep;
  ts_bin_flush(cls, batch, n);
}

/* ---- Large runs ---- */

void *ts_tcache_large_pop(ts_tcache_t *tc, unsigned npages) {
  void *p = tc->large[npages];
  if (!p) return NULL;
  tc->large[npages] = *(void **)p;
  tc->large_bytes -= (size_t)npages << TS_PAGE_SHIFT;
  tc->large_used = true;
  ts_chunk_t *chunk = ts_chunk_of(p);
  ts_chunk_codes(chunk)[ts_chunk_page_of(p)] = TS_PAGE_LARGE;
  return p;
}

bool ts_tcache_large_push(ts_tcache_t *tc, void *p, unsigned npages) {
  size_t bytes = (size_t)npages << TS_PAGE_SHIFT;
  if (npages > TS_TCACHE_LARGE_PAGES || tc->large_bytes + bytes > TS_TCACHE_LARGE_BYTES) return false;
  /* the run stays allocated in its arena; its code says it is cached, so a
   * second free of it is caught */
  ts_chunk_codes(ts_chunk_of(p))[ts_chunk_page_of(p)] = TS_PAGE_CACHED;
  *(void **)p = tc->large[npages];
  tc->large[npages] = p;
  tc->large_bytes += bytes;
  return true;
}

static void tcache_flush_large(ts_tcache_t *tc) {
  for (unsigned n = 0; n <= TS_TCACHE_LARGE_PAGES; n++) {
    while (tc->large[n]) {
      void *p = tc->large[n];
      tc->large[n] = *(void **)p;
      ts_chunk_t *chunk = ts_chunk_of(p);
      unsigned page = ts_chunk_page_of(p);
      ts_chunk_codes(chunk)[page] = TS_PAGE_LARGE;
      ts_arena_run_free(chunk, page);
    }
  }
  tc->large_bytes = 0;
}

void ts_tcache_flush_all(ts_tcache_t *tc) {
  for (unsigned c = 0; c < TS_NCLASSES; c++) ts_tcache_flush_bin(tc, c, 0);
  tcache_flush_large(tc);
}

void ts_tcache_gc(ts_tcache_t *tc) {
  uint64_t now = ts_os_now_ns();
  if (now - tc->last_gc_ns < (uint64_t)TS_TCACHE_GC_MS * 1000000u) return;
  tc->last_gc_ns = now;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    if (!tc->used[c]) ts_tcache_flush_bin(tc, c, tc->bins[c].count / 2);
    tc->used[c] = 0;
  }
  if (!tc->large_used) tcache_flush_large(tc);
  tc->large_used = false;
}

/* Refills an empty bin and returns one object of it, or NULL.  Objects are
 * linked in the order the slab gave them, lowest address first. */
void *ts_tcache_refill(ts_tcache_t *tc, unsigned cls) {
  ts_tbin_t *b = &tc->bins[cls];
  void *batch[TS_TCACHE_MAX_SLOTS];
  tc->used[cls] = 1;
  unsigned want = b->cap / 2;
  if (want == 0) want = 1;
  unsigned n = ts_bin_fill(tc->arena, cls, batch, want);
  ts_tcache_gc(tc);
  if (!n) return NULL;
  for (unsigned i = n - 1; i > 0; i--) ts_tcache_push(b, batch[i]);
  return batch[0];
}

void ts_tcache_teardown(ts_tcache_t *tc) {
  if (tc->state != TS_TCACHE_ACTIVE) return;
  ts_tcache_flush_all(tc);
  for (unsigned c = 0; c < TS_NCLASSES; c++) tc->bins[c].cap = 0;
  ts_arena_release(tc->arena);
  tc->state = TS_TCACHE_DEAD;
  ts_purge_kick();
}
