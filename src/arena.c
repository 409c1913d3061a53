/* SPDX-License-Identifier: MIT */
/*
 * arena.c: arenas own chunks, hand out page runs (for slabs and large
 * blocks) and hold the bins.
 *
 * There are ts_narenas arenas, one per CPU the process may run on (at most
 * TS_ARENAS_MAX); each thread is bound at its first allocation to the arena
 * with the fewest bound threads and unbound when it exits.  Page runs come
 * from the arena's free-run index (run.c: best fit over all its chunks,
 * among runs with resident pages first); a
 * new chunk is mapped only when no free run fits.  An arena keeps at most
 * one empty chunk mapped (spare_chunk); a second empty one is unmapped at
 * once.  Chunks are listed in address order.
 *
 * Locking: arena->lock guards the chunk list, the free-run index, every
 * chunk's page bitmap and its run spans.  It is taken after a bin lock, never
 * before one.  Fork: every bin lock and then every arena lock are taken in
 * prefork and released (parent) or re-initialised (child) after.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

ts_arena_t ts_arenas[TS_ARENAS_MAX];
unsigned ts_narenas;

void ts_arena_init(ts_arena_t *arena, unsigned index) {
  pthread_mutex_init(&arena->lock, NULL);
  arena->chunks = NULL;
  arena->spare_chunk = NULL;
  memset(arena->free_runs, 0, sizeof arena->free_runs);
  memset(arena->free_runs_nonempty, 0, sizeof arena->free_runs_nonempty);
  arena->index = index;
  atomic_init(&arena->xthreads, 0);
  atomic_init(&arena->large_pages, 0);
  ts_meta_init(&arena->meta);
  ts_medium_init(&arena->medium);
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    ts_bin_init(&arena->bins[c]);
    atomic_init(&arena->foreign_objs[c], 0);
  }
}

ts_arena_t *ts_arena_choose(void) {
  ts_arena_t *best = &ts_arenas[0];
  unsigned best_n = atomic_load_explicit(&best->xthreads, memory_order_relaxed);
  for (unsigned i = 1; i < ts_narenas && best_n; i++) {
    unsigned n = atomic_load_explicit(&ts_arenas[i].xthreads, memory_order_relaxed);
    if (n < best_n) best = &ts_arenas[i], best_n = n;
  }
  atomic_fetch_add_explicit(&best->xthreads, 1, memory_order_relaxed);
  return best;
}

void ts_arena_release(ts_arena_t *arena) {
  atomic_fetch_sub_explicit(&arena->xthreads, 1, memory_order_relaxed);
}

/* ---- Page runs ---- */

static void arena_insert_chunk(ts_arena_t *arena, ts_chunk_t *chunk) {
  ts_chunk_t **link = &arena->chunks;
  while (*link && (uintptr_t)*link < (uintptr_t)chunk) link = &(*link)->next;
  chunk->next = *link;
  *link = chunk;
}

static void arena_remove_chunk(ts_arena_t *arena, ts_chunk_t *chunk) {
  ts_chunk_t **link = &arena->chunks;
  while (*link != chunk) link = &(*link)->next;
  *link = chunk->next;
}

void *ts_arena_run_alloc(ts_arena_t *arena, unsigned npages, unsigned align_pages, ts_span_t **span_out) {
  pthread_mutex_lock(&arena->lock);
  ts_span_t *s = ts_run_alloc(arena, npages, align_pages);
  if (!s) {
    ts_chunk_t *chunk = ts_chunk_new(arena);
    if (!chunk) {
      pthread_mutex_unlock(&arena->lock);
      errno = ENOMEM;
      return NULL;
    }
    arena_insert_chunk(arena, chunk);
    ts_run_add_chunk(arena, chunk);
    s = ts_run_alloc(arena, npages, align_pages);
  }
  ts_chunk_t *chunk = ts_chunk_of(s);
  if (chunk == arena->spare_chunk) arena->spare_chunk = NULL;
  pthread_mutex_unlock(&arena->lock);
  *span_out = s;
  return ts_chunk_page_addr(chunk, (unsigned)(s - chunk->spans));
}

/* Frees the run at head whose pages set in purged (ts_chunk_mark_free;
 * NULL: none) were purged while it was in use; the arena lock held. */
static void arena_run_free_purged(ts_chunk_t *chunk, unsigned head, const uint64_t *purged) {
  ts_arena_t *arena = chunk->arena;
  ts_span_t *s = &chunk->spans[head];
  unsigned npages = s->npages;
  unsigned code = ts_chunk_codes(chunk)[head];
  if (code == TS_PAGE_LARGE || code == TS_PAGE_CACHED)
    atomic_fetch_sub_explicit(&arena->large_pages, npages, memory_order_relaxed);
  uint64_t slab_purged; /* a slab's pages purged while it was in use */
  if (s->is_slab) {
    ts_side_detach(chunk, head, npages);
    ts_mixed_forget(chunk, head);
    slab_purged = ts_slab_purged(s);
    ts_slab_fini(chunk, s);
    purged = &slab_purged;
  }
  s->is_slab = 0;
  /* pages purged inside the slab are free now, but not dirty: counted as
   * dirty, ts_purge() said it returned them a second time and the
   * ledger's dirty bytes held them (unit/purge
   * slab_pages_purged_inside_are_not_dirty; on a loaded machine, where the
   * purger ticked while unit/purge freed its blocks, ts_purge() reported
   * 2.2 MiB more than RSS lost) */
  bool empty = ts_run_free(arena, chunk, head, npages, purged);
  if (!empty) {
    ts_purge_after_free(arena);
    return;
  }
  if (!arena->spare_chunk) {
    arena->spare_chunk = chunk;
    ts_purge_after_free(arena);
    return;
  }
  ts_run_remove_chunk(arena, chunk);
  arena_remove_chunk(arena, chunk);
  ts_chunk_delete(chunk);
}

void ts_arena_run_free_locked(ts_chunk_t *chunk, unsigned head) { arena_run_free_purged(chunk, head, NULL); }

void ts_arena_run_free_purged(ts_chunk_t *chunk, unsigned head, const uint64_t *purged) {
  ts_arena_t *arena = chunk->arena; /* the chunk may be unmapped below */
  pthread_mutex_lock(&arena->lock);
  arena_run_free_purged(chunk, head, purged);
  pthread_mutex_unlock(&arena->lock);
}

void ts_arena_run_free(ts_chunk_t *chunk, unsigned head) {
  ts_arena_t *arena = chunk->arena;
  pthread_mutex_lock(&arena->lock);
  ts_arena_run_free_locked(chunk, head);
  pthread_mutex_unlock(&arena->lock);
}

/* ---- Large blocks: page runs of their own ---- */

/* Only the head page of a large run gets a code; its other pages keep
 * TS_PAGE_NOBLOCK, so a pointer into them is not a block. */
static void arena_mark_large(ts_chunk_t *chunk, unsigned head) {
  ts_chunk_codes(chunk)[head] = TS_PAGE_LARGE; /* the span's npages gives the usable size */
}

void *ts_arena_large_alloc(ts_arena_t *arena, size_t size, size_t alignment) {
  unsigned npages = (unsigned)((size + TS_PAGE_MASK) >> TS_PAGE_SHIFT);
  unsigned align_pages = alignment > TS_PAGE_SIZE ? (unsigned)(alignment >> TS_PAGE_SHIFT) : 1;
  ts_span_t *s;
  void *p = ts_arena_run_alloc(arena, npages, align_pages, &s);
  if (!p) return NULL;
  /* The run is this thread's alone now: its page codes need no lock. */
  ts_chunk_t *chunk = ts_chunk_of(p);
  arena_mark_large(chunk, (unsigned)(s - chunk->spans));
  atomic_fetch_add_explicit(&arena->large_pages, npages, memory_order_relaxed);
  return p;
}

/* Grows or shrinks the large block at p to new_size bytes (a large size)
 * without moving it.  Growth needs the pages right after the run free. */
bool ts_arena_large_resize(void *p, size_t new_size) {
  ts_chunk_t *chunk = ts_chunk_of(p);
  ts_arena_t *arena = chunk->arena;
  unsigned head = ts_chunk_page_of(p);
  unsigned npages = (unsigned)((new_size + TS_PAGE_MASK) >> TS_PAGE_SHIFT);
  bool ok = true;
  pthread_mutex_lock(&arena->lock);
  ts_span_t *s = &chunk->spans[head];
  unsigned old = s->npages;
  atomic_fetch_add_explicit(&arena->large_pages, (size_t)npages - old, memory_order_relaxed);
  if (npages < old) {
    s->npages = npages;
    arena_mark_large(chunk, head);
    ts_run_free(arena, chunk, head + npages, old - npages, NULL); /* cannot empty the chunk */
    ts_purge_after_free(arena);
  } else if (npages > old) {
    ok = ts_run_grow(arena, chunk, head, old, npages);
    if (!ok) atomic_fetch_sub_explicit(&arena->large_pages, (size_t)npages - old, memory_order_relaxed);
    if (ok) {
      s->npages = npages;
      arena_mark_large(chunk, head);
    }
  }
  pthread_mutex_unlock(&arena->lock);
  return ok;
}

/* ---- fork ---- */

void ts_arena_prefork(void) {
  for (unsigned i = 0; i < ts_narenas; i++) {
    for (unsigned c = 0; c < TS_NCLASSES; c++) pthread_mutex_lock(&ts_arenas[i].bins[c].lock);
    ts_medium_prefork(&ts_arenas[i]);
    pthread_mutex_lock(&ts_arenas[i].lock);
    ts_meta_prefork(&ts_arenas[i]);
  }
}

void ts_arena_postfork_parent(void) {
  for (unsigned i = ts_narenas; i-- > 0;) {
    ts_meta_postfork_parent(&ts_arenas[i]);
    pthread_mutex_unlock(&ts_arenas[i].lock);
    ts_medium_postfork_parent(&ts_arenas[i]);
    for (unsigned c = TS_NCLASSES; c-- > 0;) pthread_mutex_unlock(&ts_arenas[i].bins[c].lock);
  }
}

/* In the child only the forking thread lives: locks are re-made and the
 * thread counts restart from it. */
void ts_arena_postfork_child(void) {
  for (unsigned i = 0; i < ts_narenas; i++) {
    pthread_mutex_init(&ts_arenas[i].lock, NULL);
    ts_medium_postfork_child(&ts_arenas[i]);
    ts_meta_postfork_child(&ts_arenas[i]);
    for (unsigned c = 0; c < TS_NCLASSES; c++) pthread_mutex_init(&ts_arenas[i].bins[c].lock, NULL);
    atomic_store_explicit(&ts_arenas[i].xthreads, 0, memory_order_relaxed);
  }
}
