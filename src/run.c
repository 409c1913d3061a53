/* SPDX-License-Identifier: MIT */
/*
 * run.c: page runs inside an arena's chunks: the index of free runs, and
 * split and coalesce.
 *
 * Every maximal stretch of free pages in a chunk is one free run, recorded
 * in the span of its first page (npages, list links) and, as a boundary
 * tag, in the span of its last page (npages).  The chunk's free_map has a
 * set bit per free page; it is the truth the index is kept consistent with:
 *   a page is free  <=>  its bit is set  <=>  it lies in exactly one
 *   indexed free run, and no two free runs touch.
 * The arena indexes its free runs by length: list i holds the runs of i + 1
 * pages, and a bitmap marks the non-empty lists, so finding the smallest run
 * that fits is a scan of at most 16 words (best fit, as dlmalloc and
 * jemalloc 4's runs_avail do; it keeps large holes whole for large
 * requests).  There are two such indexes: runs with at least one dirty
 * page (freed and not purged: still resident) and clean runs.
 *   a free run is in the dirty set  <=>  one of its pages is in dirty_map
 * (span->list of its head page names the set).  A request takes the
 * smallest dirty run that fits, and only if there is none the smallest
 * clean one (aligned requests: the smallest of either set), carving at the
 * run's first dirty page: a page reused while
 * resident costs no page fault and adds nothing to RSS, where a clean page
 * costs both, while the dirty one waits to be purged (jemalloc takes its
 * dirty extents first for the same reason).  Best fit over all runs took
 * a clean run for 30% of the pages carved in the cache pattern, though a
 * dirty run would have fitted for most of them (ARCHITECTURE, Returning
 * memory).  Purging changes a run's set: chunk.c calls ts_run_recheck()
 * for every range it purges.
 * A run is carved from the low end of the free run it comes from (or from
 * its first dirty page), and a freed run merges with free neighbours at
 * once, so the free space never splinters into adjacent pieces.
 * The caller holds the arena's lock.
 */
#include "internal.h"

#include <string.h>

static inline bool run_page_free(const ts_chunk_t *c, unsigned p) {
  return (c->free_map[p >> 6] >> (p & 63)) & 1;
}

/* The set the free run [head, head + n) belongs in. */
static unsigned run_set_of(const ts_chunk_t *c, unsigned head, unsigned n) {
  return ts_bits_next(c->dirty_map, head, head + n, true) < head + n ? TS_RUNS_DIRTY : TS_RUNS_CLEAN;
}

/* Records [head, head + n) as a free run and indexes it in its set. */
static void run_index(ts_arena_t *arena, ts_chunk_t *c, unsigned head, unsigned n) {
  ts_span_t *s = &c->spans[head];
  unsigned list = n - 1;
  unsigned set = run_set_of(c, head, n);
  s->npages = n;
  s->is_slab = 0;
  s->list = (uint8_t)set;
  c->spans[head + n - 1].npages = n;
  s->prev = NULL;
  s->next = arena->free_runs[set][list];
  if (s->next) s->next->prev = s;
  arena->free_runs[set][list] = s;
  arena->free_runs_nonempty[set][list >> 6] |= 1ull << (list & 63);
}

static void run_unindex(ts_arena_t *arena, ts_span_t *s) {
  unsigned list = s->npages - 1, set = s->list;
  if (s->prev) s->prev->next = s->next;
  else arena->free_runs[set][list] = s->next;
  if (s->next) s->next->prev = s->prev;
  if (!arena->free_runs[set][list]) arena->free_runs_nonempty[set][list >> 6] &= ~(1ull << (list & 63));
  s->next = s->prev = NULL;
}

/* The smallest free run of set with at least n pages, or NULL. */
static ts_span_t *run_best_fit(ts_arena_t *arena, unsigned set, unsigned n) {
  unsigned list = n - 1;
  for (unsigned w = list >> 6; w < TS_RUN_LISTS / 64; w++) {
    uint64_t bits = arena->free_runs_nonempty[set][w];
    if (w == list >> 6) bits &= ~0ull << (list & 63);
    if (bits) return arena->free_runs[set][w * 64 + (unsigned)__builtin_ctzll(bits)];
  }
  return NULL;
}

/* The smallest free run, of either set, holding n pages that start at a
 * multiple of align pages: walks the lists from n up (aligned requests are
 * rare). */
static ts_span_t *run_aligned_fit(ts_arena_t *arena, unsigned n, unsigned align) {
  for (unsigned list = n - 1; list < TS_RUN_LISTS; list++)
    for (unsigned set = TS_RUN_SETS; set-- > 0;) {
      if (!((arena->free_runs_nonempty[set][list >> 6] >> (list & 63)) & 1)) continue;
      for (ts_span_t *s = arena->free_runs[set][list]; s; s = s->next) {
        ts_chunk_t *c = ts_chunk_of(s);
        unsigned head = (unsigned)(s - c->spans);
        unsigned start = (head + align - 1) & ~(align - 1);
        if (start + n <= head + s->npages) return s;
      }
    }
  return NULL;
}

void ts_run_add_chunk(ts_arena_t *arena, ts_chunk_t *chunk) {
  run_index(arena, chunk, chunk->first_page, TS_CHUNK_PAGES - chunk->first_page);
}

void ts_run_remove_chunk(ts_arena_t *arena, ts_chunk_t *chunk) {
  run_unindex(arena, &chunk->spans[chunk->first_page]);
}

ts_span_t *ts_run_alloc(ts_arena_t *arena, unsigned npages, unsigned align_pages) {
  ts_span_t *s = NULL;
  if (align_pages > 1) /* best fit over both sets: the aligned start need not be on dirty pages */
    s = run_aligned_fit(arena, npages, align_pages);
  else
    for (unsigned set = TS_RUN_SETS; !s && set-- > 0;) /* dirty first */
      s = run_best_fit(arena, set, npages);
  if (!s) return NULL;
  ts_chunk_t *c = ts_chunk_of(s);
  unsigned head = (unsigned)(s - c->spans), len = s->npages;
  unsigned start = head;
  if (align_pages > 1) {
    start = (head + align_pages - 1) & ~(align_pages - 1);
  } else if (s->list == TS_RUNS_DIRTY) {
    /* from the first dirty page, or the end of the run if that is past it */
    start = ts_bits_next(c->dirty_map, head, head + len, true);
    if (start > head + len - npages) start = head + len - npages;
  }
  run_unindex(arena, s);
  if (start > head) run_index(arena, c, head, start - head);
  if (start + npages < head + len) run_index(arena, c, start + npages, head + len - start - npages);
  ts_chunk_mark_used(c, start, npages);
  ts_span_t *r = &c->spans[start];
  r->npages = npages;
  r->is_slab = 0;
  r->list = TS_BIN_NOLIST;
  r->next = r->prev = NULL;
  return r;
}

void ts_run_recheck(ts_arena_t *arena, ts_chunk_t *c, unsigned page) {
  if (!run_page_free(c, page)) ts_fatal("internal: ts_run_recheck on page %u, which is not free", page);
  /* the head: the page after the last used one at or below page (the
   * header's pages are never free, so there is one) */
  unsigned i = page >> 6;
  uint64_t used = ~c->free_map[i] & (((page & 63) == 63) ? ~0ull : (1ull << ((page & 63) + 1)) - 1);
  while (!used) used = ~c->free_map[--i];
  unsigned head = i * 64 + 63 - (unsigned)__builtin_clzll(used) + 1;
  ts_span_t *s = &c->spans[head];
  if (run_set_of(c, head, s->npages) == s->list) return;
  run_unindex(arena, s);
  run_index(arena, c, head, s->npages);
}

bool ts_run_free(ts_arena_t *arena, ts_chunk_t *c, unsigned head, unsigned n, const uint64_t *purged) {
  ts_chunk_mark_free(c, head, n, purged);
  unsigned right = head + n;
  if (right < TS_CHUNK_PAGES && run_page_free(c, right)) {
    ts_span_t *r = &c->spans[right];
    n += r->npages;
    run_unindex(arena, r);
  }
  if (head > c->first_page && run_page_free(c, head - 1)) {
    unsigned left = head - c->spans[head - 1].npages;
    n += c->spans[left].npages;
    run_unindex(arena, &c->spans[left]);
    head = left;
  }
  run_index(arena, c, head, n);
  return n == TS_CHUNK_PAGES - c->first_page;
}

bool ts_run_grow(ts_arena_t *arena, ts_chunk_t *c, unsigned head, unsigned old_pages, unsigned new_pages) {
  unsigned next = head + old_pages, need = new_pages - old_pages;
  if (next >= TS_CHUNK_PAGES || !run_page_free(c, next)) return false;
  ts_span_t *f = &c->spans[next];
  unsigned len = f->npages;
  if (len < need) return false;
  run_unindex(arena, f);
  if (len > need) run_index(arena, c, next + need, len - need);
  ts_chunk_mark_used(c, next, need);
  return true;
}
