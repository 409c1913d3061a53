/* SPDX-License-Identifier: MIT */
/*
 * bin.c: the slabs of one size class in one arena, and the two batch
 * operations thread caches use: fill (take objects) and flush (give them
 * back).
 *
 * A bin's non-full slabs sit on TS_BIN_LISTS lists by how full they are
 * (types.h: ts_bin_s); fills take from the fullest list first, so that the
 * objects of a class concentrate in few slabs and sparse slabs empty out.
 * An empty slab is kept as the bin's spare if it has none, otherwise its
 * pages go back to the arena at once.  Full slabs are on no list; a flush
 * that frees into one puts it back on a list.
 *
 * Locking: each bin has its own mutex, taken by fill and flush.  A fill that
 * needs a new slab, and a flush that empties one, take the arena's lock
 * while holding the bin's: the order is always bin, then arena.
 */
#include "internal.h"

void ts_bin_init(ts_bin_t *bin) {
  pthread_mutex_init(&bin->lock, NULL);
  for (unsigned i = 0; i < TS_BIN_LISTS; i++) bin->lists[i] = NULL;
  bin->spare = NULL;
  bin->slabs = 0;
}

unsigned ts_bin_list_of(unsigned nfree, unsigned nobjs) {
  if (nfree == 0) return TS_BIN_NOLIST;
  return (nobjs - nfree) * TS_BIN_LISTS / nobjs;
}

static void bin_unlink(ts_bin_t *bin, ts_span_t *s) {
  if (s->list == TS_BIN_NOLIST) return;
  if (s->prev) s->prev->next = s->next;
  else bin->lists[s->list] = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->list = TS_BIN_NOLIST;
}

static void bin_link(ts_bin_t *bin, ts_span_t *s, unsigned list) {
  s->list = (uint8_t)list;
  s->prev = NULL;
  s->next = bin->lists[list];
  if (s->next) s->next->prev = s;
  bin->lists[list] = s;
}

/* Puts a slab on the list its fullness calls for. */
static void bin_relist(ts_bin_t *bin, ts_span_t *s) {
  unsigned want = ts_bin_list_of(s->nfree, s->nobjs);
  if (want == s->list) return;
  bin_unlink(bin, s);
  if (want != TS_BIN_NOLIST) bin_link(bin, s, want);
}

/* A slab to fill from: the fullest non-full one, else the spare, else a
 * new one from the arena.  NULL when the arena is out of memory. */
static ts_span_t *bin_pick(ts_arena_t *arena, ts_bin_t *bin, unsigned cls, ts_chunk_t **chunk_out) {
  for (int i = TS_BIN_LISTS - 1; i >= 0; i--) {
    ts_span_t *s = bin->lists[i];
    if (s) {
      *chunk_out = ts_chunk_of(s);
      return s;
    }
  }
  ts_span_t *s = bin->spare;
  if (s) {
    bin->spare = NULL;
    *chunk_out = ts_chunk_of(s);
    return s;
  }
  if (!ts_arena_run_alloc(arena, ts_class_slab_pages[cls], 1, &s)) return NULL;
  ts_chunk_t *chunk = ts_chunk_of(s);
  ts_slab_init(chunk, (unsigned)(s - chunk->spans), cls);
  bin->slabs++;
  *chunk_out = chunk;
  return s;
}

unsigned ts_bin_fill(ts_arena_t *arena, unsigned cls, void **out, unsigned want) {
  ts_bin_t *bin = &arena->bins[cls];
  unsigned n = 0;
  pthread_mutex_lock(&bin->lock);
  while (n < want) {
    ts_chunk_t *chunk;
    ts_span_t *s = bin_pick(arena, bin, cls, &chunk);
    if (!s) break;
    n += ts_slab_take(chunk, s, out + n, want - n);
    bin_relist(bin, s);
  }
  pthread_mutex_unlock(&bin->lock);
  return n;
}

/* Returns one object to its slab; the caller holds the slab's bin lock. */
static void bin_put(ts_bin_t *bin, ts_chunk_t *chunk, void *p) {
  ts_span_t *s = &chunk->spans[chunk->page_head[ts_chunk_page_of(p)]];
  int r = ts_slab_put(chunk, s, p);
  if (TS_UNLIKELY(r < 0)) {
    pthread_mutex_unlock(&bin->lock);
    if (r == -2) ts_fatal("free(): double free of %p (size %u)", p, (unsigned)ts_class_size[s->cls]);
    ts_fatal("free(): invalid pointer %p (inside a block of size %u)", p, (unsigned)ts_class_size[s->cls]);
  }
  if (s->nfree == s->nobjs) {
    bin_unlink(bin, s);
    if (!bin->spare) {
      bin->spare = s;
    } else {
      bin->slabs--;
      ts_arena_run_free(chunk, (unsigned)(s - chunk->spans));
    }
  } else {
    bin_relist(bin, s);
  }
}

/* Purges the pages of the bin's non-full slabs that hold only free
 * objects; returns the pages purged. */
size_t ts_bin_purge_pages(ts_arena_t *arena, unsigned cls) {
  ts_bin_t *bin = &arena->bins[cls];
  size_t n = 0;
  if (ts_class_slab_pages[cls] < 2) return 0;
  pthread_mutex_lock(&bin->lock);
  for (unsigned i = 0; i < TS_BIN_LISTS; i++)
    for (ts_span_t *s = bin->lists[i]; s; s = s->next) n += ts_slab_purge_free_pages(ts_chunk_of(s), s);
  pthread_mutex_unlock(&bin->lock);
  return n;
}

/* Gives the bin's spare empty slab, if any, back to the arena. */
void ts_bin_release_spare(ts_arena_t *arena, unsigned cls) {
  ts_bin_t *bin = &arena->bins[cls];
  pthread_mutex_lock(&bin->lock);
  ts_span_t *s = bin->spare;
  if (s) {
    bin->spare = NULL;
    bin->slabs--;
    ts_chunk_t *chunk = ts_chunk_of(s);
    ts_arena_run_free(chunk, (unsigned)(s - chunk->spans));
  }
  pthread_mutex_unlock(&bin->lock);
}

/* Gives n objects of class cls back to their slabs, whatever arenas they
 * belong to: one lock per arena met.  ptrs is reordered. */
void ts_bin_flush(unsigned cls, void **ptrs, unsigned n) {
  while (n) {
    ts_arena_t *arena = ts_chunk_of(ptrs[0])->arena;
    ts_bin_t *bin = &arena->bins[cls];
    unsigned rest = 0;
    pthread_mutex_lock(&bin->lock);
    for (unsigned i = 0; i < n; i++) {
      ts_chunk_t *chunk = ts_chunk_of(ptrs[i]);
      if (chunk->arena == arena) bin_put(bin, chunk, ptrs[i]);
      else ptrs[rest++] = ptrs[i];
    }
    pthread_mutex_unlock(&bin->lock);
    n = rest;
  }
}
