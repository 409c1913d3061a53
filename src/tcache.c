/* SPDX-License-Identifier: MIT */
/*
 * tcache.c: per-thread caches of free objects, one stack per size class,
 * in front of the arenas' bins.
 *
 * The cache lives in static TLS (ts_tcache, initial-exec model), so the
 * fast paths in alloc.c are a TLS-relative load, a compare and a store:
 * no lock, no atomic, no call.  A bin's slots come from one block per
 * thread (a large run of the thread's arena).
 *
 * Bounds: a class caches at most ts_tcache_cap_of(cls) objects: 64 KiB
 * worth, between TS_TCACHE_MIN_SLOTS and TS_TCACHE_MAX_SLOTS objects.  An
 * empty bin is refilled with half its capacity in one bin lock; a full one
 * flushes its older half.  Frees of another thread's objects land in the
 * freeing thread's cache like any other (no atomic at all) and reach the
 * owning arena's bin in batches, one lock per arena met, on flush.
 *
 * Trimming: at most every TS_TCACHE_GC_MS, a refill or flush trims the
 * bins that did not run empty since the last trim to half their content,
 * so a cache's idle classes give their objects back.  At thread exit a
 * pthread key destructor flushes everything, returns the slot block and
 * unbinds the thread from its arena; allocations made after that (by later
 * TLS destructors) go straight to the arena.
 */
#include "internal.h"

#include <string.h>

__thread ts_tcache_t ts_tcache __attribute__((tls_model("initial-exec")));

#define TS_TCACHE_CLASS_BYTES ((size_t)64 << 10)
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
  size_t slots = 0;
  for (unsigned c = 0; c < TS_NCLASSES; c++) slots += ts_tcache_cap_of(c);
  ts_arena_t *arena = ts_arena_choose();
  void **block = ts_arena_large_alloc(arena, slots * sizeof(void *), 0);
  if (!block) {
    ts_arena_release(arena);
    tc->state = TS_TCACHE_DEAD; /* run uncached rather than fail */
    return;
  }
  tc->arena = arena;
  tc->slot_block = block;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    tc->bins[c].slots = block;
    tc->bins[c].count = 0;
    tc->bins[c].cap = ts_tcache_cap_of(c);
    block += tc->bins[c].cap;
    tc->used[c] = 0;
  }
  tc->last_gc_ns = ts_os_now_ns();
  tc->state = TS_TCACHE_ACTIVE;
  pthread_setspecific(ts_tcache_key, tc);
}

/* Flushes the oldest objects of a bin until keep are left. */
void ts_tcache_flush_bin(ts_tcache_t *tc, unsigned cls, unsigned keep) {
  ts_tbin_t *b = &tc->bins[cls];
  if (b->count <= keep) return;
  unsigned n = b->count - keep;
  ts_bin_flush(cls, b->slots, n);
  memmove(b->slots, b->slots + n, keep * sizeof(void *));
  b->count = keep;
}

void ts_tcache_flush_all(ts_tcache_t *tc) {
  for (unsigned c = 0; c < TS_NCLASSES; c++) ts_tcache_flush_bin(tc, c, 0);
}

void ts_tcache_gc(ts_tcache_t *tc) {
  uint64_t now = ts_os_now_ns();
  if (now - tc->last_gc_ns < (uint64_t)TS_TCACHE_GC_MS * 1000000u) return;
  tc->last_gc_ns = now;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    if (!tc->used[c]) ts_tcache_flush_bin(tc, c, tc->bins[c].count / 2);
    tc->used[c] = 0;
  }
}

void *ts_tcache_refill(ts_tcache_t *tc, unsigned cls) {
  ts_tbin_t *b = &tc->bins[cls];
  tc->used[cls] = 1;
  unsigned want = b->cap / 2;
  if (want == 0) want = 1;
  b->count = ts_bin_fill(tc->arena, cls, b->slots, want);
  ts_tcache_gc(tc);
  if (!b->count) return NULL;
  return b->slots[--b->count];
}

void ts_tcache_teardown(ts_tcache_t *tc) {
  if (tc->state != TS_TCACHE_ACTIVE) return;
  ts_tcache_flush_all(tc);
  for (unsigned c = 0; c < TS_NCLASSES; c++) tc->bins[c].cap = 0;
  ts_chunk_t *chunk = ts_chunk_of(tc->slot_block);
  ts_arena_run_free(chunk, ts_chunk_page_of(tc->slot_block));
  ts_arena_release(tc->arena);
  tc->slot_block = NULL;
  tc->state = TS_TCACHE_DEAD;
}
