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
 * requests).  A run is carved from the low end of the free run it comes
 * from, and a freed run merges with free neighbours at once, so the free
 * space never splinters into adjacent pieces.
 * The caller holds the arena's lock.
 */
#include "internal.h"

#include <string.h>

static inline bool run_page_free(const ts_chunk_t *c, unsigned p) {
  return (c->free_map[p >> 6] >> (p & 63)) & 1;
}

/* Records [head, head + n) as a free run and indexes it. */
static void run_index(ts_arena_t *arena, ts_chunk_t *c, unsigned head, unsigned n) {
  ts_span_t *s = &c->spans[head];
  unsigned list = n - 1;
  s->npages = n;
  s->is_slab = 0;
  c->spans[head + n - 1].npages = n;
  s->prev = NULL;
  s->next = arena->free_runs[list];
  if (s->next) s->next->prev = s;
  arena->free_runs[list] = s;
  arena->free_runs_nonempty[list >> 6] |= 1ull << (list & 63);
}

static void run_unindex(ts_arena_t *arena, ts_span_t *s) {
  unsigned list = s->npages - 1;
  if (s->prev) s->prev->next = s->next;
  else arena->free_runs[list] = s->next;
  if (s->next) s->next->prev = s->prev;
  if (!arena->free_runs[list]) arena->free_runs_nonempty[list >> 6] &= ~(1ull << (list & 63));
  s->next = s->prev = NULL;
}

/* The smallest indexed free run of at least n pages, or NULL. */
static ts_span_t *run_best_fit(ts_arena_t *arena, unsigned n) {
  unsigned list = n - 1;
  for (unsigned w = list >> 6; w < TS_RUN_LISTS / 64; w++) {
    uint64_t bits = arena->free_runs_nonempty[w];
    if (w == list >> 6) bits &= ~0ull << (list & 63);
    if (bits) return arena->free_runs[w * 64 + (unsigned)__builtin_ctzll(bits)];
  }
  return NULL;
}

/* The smallest free run holding n pages that start at a multiple of
 * align pages: walks the lists from n up (aligned requests are rare). */
static ts_span_t *run_aligned_fit(ts_arena_t *arena, unsigned n, unsigned align) {
  for (unsigned list = n - 1; list < TS_RUN_LISTS; list++) {
    if (!((arena->free_runs_nonempty[list >> 6] >> (list & 63)) & 1)) continue;
    for (ts_span_t *s = arena->free_runs[list]; s; s = s->next) {
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
  ts_span_t *s = align_pages > 1 ? run_aligned_fit(arena, npages, align_pages) : run_best_fit(arena, npages);
  if (!s) return NULL;
  ts_chunk_t *c = ts_chunk_of(s);
  unsigned head = (unsigned)(s - c->spans), len = s->npages;
  run_unindex(arena, s);
  unsigned start = align_pages > 1 ? (head + align_pages - 1) & ~(align_pages - 1) : head;
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

bool ts_run_free(ts_arena_t *arena, ts_chunk_t *c, unsigned head, unsigned n) {
  ts_chunk_mark_free(c, head, n);
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
