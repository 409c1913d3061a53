/* SPDX-License-Identifier: MIT */
/* Unit test of run.c: best fit, split, coalesce, in-place growth, and the
 * index's invariants (every free page in exactly one indexed run; no two
 * free runs touch). */
#include "internal.h"
#include "test.h"

static ts_arena_t arena;

/* Checks the index against the chunk's bitmap; returns free runs seen. */
static unsigned check_index(ts_chunk_t *c) {
  unsigned runs = 0, pages = 0;
  for (unsigned set = 0; set < TS_RUN_SETS; set++)
  for (unsigned l = 0; l < TS_RUN_LISTS; l++) {
    bool nonempty = (arena.free_runs_nonempty[set][l >> 6] >> (l & 63)) & 1;
    expect_eq(nonempty, arena.free_runs[set][l] != NULL);
    for (ts_span_t *s = arena.free_runs[set][l]; s; s = s->next) {
      if (ts_chunk_of(s) != c) continue;
      unsigned head = (unsigned)(s - c->spans);
      expect_eq(s->npages, l + 1);
      expect_eq(s->list, set);
      /* the dirty set holds exactly the runs with a dirty page */
      bool dirty = false;
      for (unsigned p = head; p < head + s->npages; p++) dirty |= (c->dirty_map[p >> 6] >> (p & 63)) & 1;
      expect_true(dirty == (set == TS_RUNS_DIRTY), "run at page %u in set %u", head, set);
      expect_eq(c->spans[head + s->npages - 1].npages, s->npages);
      for (unsigned p = head; p < head + s->npages; p++) expect_true((c->free_map[p >> 6] >> (p & 63)) & 1, "page %u", p);
      /* maximal: neighbours are used */
      if (head > c->first_page) expect_true(!((c->free_map[(head - 1) >> 6] >> ((head - 1) & 63)) & 1));
      unsigned r = head + s->npages;
      if (r < TS_CHUNK_PAGES) expect_true(!((c->free_map[r >> 6] >> (r & 63)) & 1));
      runs++;
      pages += s->npages;
    }
  }
  expect_eq(pages, c->free_pages);
  return runs;
}

static unsigned head_of(ts_chunk_t *c, ts_span_t *s) { return (unsigned)(s - c->spans); }

/* The arena reset, and a new chunk whose pages are one free run in its
 * index (NULL if mapping failed). */
static ts_chunk_t *fresh_chunk(void) {
  ts_arena_init(&arena, 0);
  ts_chunk_t *c = ts_chunk_new(&arena);
  if (c) ts_run_add_chunk(&arena, c);
  return c;
}

TS_TEST(split_and_coalesce) {
  ts_chunk_t *c = fresh_chunk();
  assert_true(c != NULL);
  unsigned f = c->first_page;
  ts_span_t *a = ts_run_alloc(&arena, 10, 1);
  ts_span_t *b = ts_run_alloc(&arena, 5, 1);
  ts_span_t *d = ts_run_alloc(&arena, 20, 1);
  assert_true(a && b && d);
  /* carved from the low end */
  expect_eq(head_of(c, a), f);
  expect_eq(head_of(c, b), f + 10);
  expect_eq(head_of(c, d), f + 15);
  expect_eq(check_index(c), 1);
  /* free a: a hole of 10 at the start */
  expect_true(!ts_run_free(&arena, c, f, 10, NULL));
  expect_eq(check_index(c), 2);
  /* best fit: 4 pages go into the 10-page hole, not the big tail */
  ts_span_t *e = ts_run_alloc(&arena, 4, 1);
  expect_eq(head_of(c, e), f);
  /* 12 pages do not fit the 6 left: they go after d */
  ts_span_t *g = ts_run_alloc(&arena, 12, 1);
  expect_eq(head_of(c, g), f + 35);
  /* freeing b merges with the 6-page hole on its left: 11 pages */
  expect_true(!ts_run_free(&arena, c, f + 10, 5, NULL));
  expect_eq(check_index(c), 2);
  expect_true(arena.free_runs[TS_RUNS_DIRTY][10] != NULL);
  /* freeing e merges everything before d: 15 pages */
  expect_true(!ts_run_free(&arena, c, f, 4, NULL));
  expect_true(arena.free_runs[TS_RUNS_DIRTY][14] != NULL);
  /* growing d in place fails (g follows), growing g works */
  expect_true(!ts_run_grow(&arena, c, f + 15, 20, 21));
  expect_true(ts_run_grow(&arena, c, f + 35, 12, 40));
  check_index(c);
  /* aligned */
  ts_span_t *al = ts_run_alloc(&arena, 8, 64);
  expect_eq(head_of(c, al) % 64, 0);
  check_index(c);
  expect_true(!ts_run_free(&arena, c, head_of(c, al), 8, NULL));
  expect_true(!ts_run_free(&arena, c, f + 15, 20, NULL));
  /* the last free empties the chunk: one run of every page */
  expect_true(ts_run_free(&arena, c, f + 35, 40, NULL));
  expect_eq(check_index(c), 1);
  expect_true(ts_chunk_is_empty(c));
  ts_run_remove_chunk(&arena, c);
  ts_chunk_delete(c);
}

TS_TEST(largest_run_fits_in_a_chunk) {
  ts_chunk_t *c = fresh_chunk();
  assert_true(c != NULL);
  unsigned pages = (unsigned)(TS_LARGE_MAX >> TS_PAGE_SHIFT);
  ts_span_t *s = ts_run_alloc(&arena, pages, pages);
  expect_true(s != NULL, "a 2 MiB aligned run");
  expect_true(ts_run_alloc(&arena, TS_CHUNK_PAGES, 1) == NULL);
}

/* Resident (dirty) free pages are reused before clean ones, even when a
 * clean run fits better, from the run's first dirty page; purging moves a
 * run to the clean set once none of its pages is dirty. */
TS_TEST(dirty_runs_first) {
  ts_chunk_t *c = fresh_chunk();
  assert_true(c != NULL);
  unsigned f = c->first_page;
  ts_span_t *a = ts_run_alloc(&arena, 10, 1);
  ts_span_t *b = ts_run_alloc(&arena, 10, 1);
  ts_span_t *d = ts_run_alloc(&arena, 10, 1);
  assert_true(a && b && d);
  expect_eq(head_of(c, d), f + 20);
  /* a's pages freed and purged: a clean 10-page hole before b */
  expect_true(!ts_run_free(&arena, c, f, 10, NULL));
  expect_eq(ts_chunk_purge(c, TS_PURGE_ALL, 1, SIZE_MAX), 10);
  check_index(c);
  expect_true(arena.free_runs[TS_RUNS_CLEAN][9] != NULL, "a's hole is clean");
  /* d's pages freed: dirty, merged with the (clean) rest of the chunk */
  expect_true(!ts_run_free(&arena, c, f + 20, 10, NULL));
  check_index(c);
  /* 6 pages: best fit alone would take a's clean hole; the dirty run wins,
   * at its first dirty page */
  ts_span_t *e = ts_run_alloc(&arena, 6, 1);
  expect_eq(head_of(c, e), f + 20);
  check_index(c);
  /* the 4 dirty pages left are taken before the clean hole too */
  ts_span_t *g = ts_run_alloc(&arena, 4, 1);
  expect_eq(head_of(c, g), f + 26);
  check_index(c);
  /* no dirty page left: best fit among clean runs */
  ts_span_t *h = ts_run_alloc(&arena, 8, 1);
  expect_eq(head_of(c, h), f); /* into a's clean hole, the best clean fit */
  check_index(c);
  /* a dirty run whose first dirty page lies past where a request would
   * start is carved at its end, so that it still takes the dirty pages:
   * b's 10 dirty pages merge with h's 2 clean ones into 12 */
  expect_true(!ts_run_free(&arena, c, f + 10, 10, NULL));
  check_index(c);
  ts_span_t *k = ts_run_alloc(&arena, 11, 1);
  expect_eq(head_of(c, k), f + 9);
  check_index(c);
  /* g's pages freed merge with the clean rest of the chunk; purging them
   * makes every free run clean */
  expect_true(!ts_run_free(&arena, c, f + 26, 4, NULL));
  check_index(c);
  expect_eq(ts_chunk_purge(c, TS_PURGE_ALL, 1, SIZE_MAX), 4);
  check_index(c);
  for (unsigned w = 0; w < TS_RUN_LISTS / 64; w++) expect_eq(arena.free_runs_nonempty[TS_RUNS_DIRTY][w], 0);
  /* aligned requests take the smallest run of either set that holds them
   * aligned: a dirty 3-page hole is skipped for the clean tail */
  ts_span_t *x = ts_run_alloc(&arena, 3, 1);
  ts_span_t *y = ts_run_alloc(&arena, 3, 1);
  assert_true(x && y);
  expect_true(!ts_run_free(&arena, c, head_of(c, x), 3, NULL));
  check_index(c);
  ts_span_t *al = ts_run_alloc(&arena, 2, 64);
  assert_true(al != NULL);
  expect_eq(head_of(c, al) % 64, 0);
  check_index(c);
}

/* Dirty pages are free pages, and the chunk counts them. */
static void check_dirty(ts_chunk_t *c) {
  unsigned n = 0;
  for (unsigned p = 0; p < TS_CHUNK_PAGES; p++) {
    bool dirty = (c->dirty_map[p >> 6] >> (p & 63)) & 1;
    if (dirty) expect_true((c->free_map[p >> 6] >> (p & 63)) & 1, "dirty page %u is free", p);
    n += dirty;
  }
  expect_eq(n, c->dirty_pages);
}

static unsigned rng_next(uint64_t *x) {
  *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
  return (unsigned)(*x >> 11);
}

/* Random allocations (some aligned), frees (some with pages purged in
 * place, as a slab's), growth, shrinking, purges and ticks over two
 * chunks, with every invariant of the index checked after each step. */
TS_TEST(random_ops_keep_the_index) {
  enum { CHUNKS = 2, LIVE = 512, STEPS = 20000 };
  ts_chunk_t *cs[CHUNKS] = {fresh_chunk()};
  assert_true(cs[0] != NULL);
  for (unsigned k = 1; k < CHUNKS; k++) {
    cs[k] = ts_chunk_new(&arena);
    assert_true(cs[k] != NULL);
    ts_run_add_chunk(&arena, cs[k]);
  }
  struct { ts_chunk_t *c; unsigned head, n; } live[LIVE];
  unsigned nlive = 0;
  uint64_t x = 0x9E3779B97F4A7C15ull;
#define NEXT() rng_next(&x)
  for (unsigned step = 0; step < STEPS && ts_test_failures == 0; step++) {
    unsigned op = NEXT() % 100;
    if (op < 40 && nlive < LIVE) {
      unsigned n = 1 + (NEXT() % 4 ? NEXT() % 8 : NEXT() % 300);
      unsigned align = NEXT() % 10 ? 1 : 1u << (NEXT() % 6);
      ts_span_t *s = ts_run_alloc(&arena, n, align);
      if (s) {
        ts_chunk_t *c = ts_chunk_of(s);
        unsigned head = head_of(c, s);
        expect_eq(head & (align - 1), 0);
        live[nlive].c = c, live[nlive].head = head, live[nlive].n = n, nlive++;
      }
    } else if (op < 80 && nlive) {
      unsigned i = NEXT() % nlive;
      ts_chunk_t *c = live[i].c;
      unsigned head = live[i].head, n = live[i].n;
      live[i] = live[--nlive];
      uint64_t purged = NEXT() % 3 ? 0 : NEXT() & ((1u << (n < 16 ? n : 16)) - 1);
      ts_run_free(&arena, c, head, n, &purged); /* some pages purged in place, as a slab's */
    } else if (op < 88 && nlive) {
      unsigned i = NEXT() % nlive, more = 1 + NEXT() % 10;
      if (ts_run_grow(&arena, live[i].c, live[i].head, live[i].n, live[i].n + more)) {
        live[i].n += more;
        live[i].c->spans[live[i].head].npages = live[i].n;
      }
    } else if (op < 92 && nlive) {
      unsigned i = NEXT() % nlive;
      if (live[i].n > 1) {
        unsigned keep = 1 + NEXT() % (live[i].n - 1);
        live[i].c->spans[live[i].head].npages = keep;
        ts_run_free(&arena, live[i].c, live[i].head + keep, live[i].n - keep, NULL);
        live[i].n = keep;
      }
    } else if (op < 96) {
      ts_chunk_purge(cs[NEXT() % CHUNKS], NEXT() % 2 ? TS_PURGE_ALL : TS_PURGE_OLD, 1u << (NEXT() % 6), NEXT() % 200);
    } else {
      ts_chunk_age(cs[NEXT() % CHUNKS]);
    }
    for (unsigned k = 0; k < CHUNKS; k++) {
      check_index(cs[k]);
      check_dirty(cs[k]);
    }
  }
#undef NEXT
}

int main(void) {
  ts_init_slow();
  ts_opt.background_thread = false; /* exact bin and arena states: no purger */
  ts_run(split_and_coalesce);
  ts_run(largest_run_fits_in_a_chunk);
  ts_run(dirty_runs_first);
  ts_run(random_ops_keep_the_index);
  return ts_test_done();
}
