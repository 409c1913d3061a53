/* SPDX-License-Identifier: MIT */
/* Unit test of bin.c: fills take from the fullest slab, flushes return
 * objects to slabs of any arena, empty slabs become the spare or go back. */
#include "internal.h"
#include "test.h"

#include <string.h>

#define CLS 5 /* 96-byte objects */

static unsigned bin_nonfull(ts_bin_t *bin) {
  unsigned n = 0;
  for (unsigned i = 0; i < TS_BIN_LISTS; i++)
    for (ts_span_t *s = bin->lists[i]; s; s = s->next) n++;
  return n;
}

TS_TEST(fill_prefers_fullest_slab) {
  ts_arena_t *arena = &ts_arenas[0];
  ts_bin_t *bin = &arena->bins[CLS];
  unsigned nobjs = ts_class_slab_objs[CLS];
  static void *a[TS_SLAB_MAX_OBJS], *b[TS_SLAB_MAX_OBJS];
  /* two full slabs */
  expect_eq(ts_bin_fill(arena, CLS, a, nobjs), nobjs);
  expect_eq(ts_bin_fill(arena, CLS, b, nobjs), nobjs);
  expect_true(ts_chunk_of(a[0])->spans != NULL);
  expect_eq(bin_nonfull(bin), 0);
  /* slab A gets 1 free object, slab B most of its objects free */
  ts_bin_flush(CLS, a, 1);
  ts_bin_flush(CLS, b, nobjs - 2);
  expect_eq(bin_nonfull(bin), 2);
  /* the next object comes from A, the fuller one */
  void *p;
  expect_eq(ts_bin_fill(arena, CLS, &p, 1), 1);
  expect_true(p == a[0], "%p %p", p, a[0]);
  /* then from B */
  expect_eq(ts_bin_fill(arena, CLS, &p, 1), 1);
  expect_true(ts_chunk_of(p) == ts_chunk_of(b[0]) &&
              ts_chunk_of(p)->page_head[ts_chunk_page_of(p)] == ts_chunk_of(b[0])->page_head[ts_chunk_page_of(b[0])]);
  ts_bin_flush(CLS, &p, 1);
  ts_bin_flush(CLS, b + nobjs - 2, 2);
  /* B is now empty: it is the spare */
  expect_true(bin->spare != NULL);
  a[0] = a[0];
  ts_bin_flush(CLS, a, nobjs); /* A empties too: its pages go back */
  expect_eq(bin_nonfull(bin), 0);
  expect_eq(bin->slabs, 1);
}

TS_TEST(double_free_and_interior_pointer_reported_at_flush) {
  /* death is checked by the api tests; here only the non-fatal bookkeeping */
  ts_arena_t *arena = &ts_arenas[0];
  void *p;
  expect_eq(ts_bin_fill(arena, CLS, &p, 1), 1);
  ts_chunk_t *c = ts_chunk_of(p);
  ts_span_t *s = &c->spans[c->page_head[ts_chunk_page_of(p)]];
  unsigned before = s->nfree;
  ts_bin_flush(CLS, &p, 1);
  expect_eq(c->spans[c->page_head[ts_chunk_page_of(p)]].nfree >= before, 1);
}

int main(void) {
  ts_init_slow();
  ts_opt.background_thread = false; /* exact bin and arena states: no purger */
  ts_run(fill_prefers_fullest_slab);
  ts_run(double_free_and_interior_pointer_reported_at_flush);
  return ts_test_done();
}
