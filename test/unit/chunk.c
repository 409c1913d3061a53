/* SPDX-License-Identifier: MIT */
/* Unit test of chunk.c: the chunk map, run search, split and merge. */
#include "internal.h"
#include "test.h"

static ts_arena_t test_arena;

TS_TEST(new_chunk_is_aligned_and_mapped) {
  ts_chunk_t *c = ts_chunk_new(&test_arena);
  assert_true(c != NULL);
  expect_eq((uintptr_t)c & TS_CHUNK_MASK, 0);
  expect_eq(ts_window_kind((uintptr_t)c), TS_WINDOW_CHUNK);
  expect_eq(ts_window_kind((uintptr_t)c + TS_CHUNK_SIZE - 1), TS_WINDOW_CHUNK);
  expect_true(c->first_page * TS_PAGE_SIZE >= sizeof(ts_chunk_t));
  expect_eq(c->free_pages, TS_CHUNK_PAGES - c->first_page);
  expect_true(ts_chunk_is_empty(c));
  for (unsigned p = 0; p < c->first_page; p++) expect_eq(c->page_cls[p], TS_PAGE_META);
  ts_chunk_delete(c);
  expect_eq(ts_window_kind((uintptr_t)c), TS_WINDOW_NONE);
  expect_eq(ts_window_kind(~(uintptr_t)0), TS_WINDOW_NONE);
}

TS_TEST(first_fit_split_and_merge) {
  ts_chunk_t *c = ts_chunk_new(&test_arena);
  assert_true(c != NULL);
  unsigned f = c->first_page;
  unsigned a = ts_chunk_find_run(c, 10, 1);
  expect_eq(a, f);
  ts_chunk_mark_used(c, a, 10);
  unsigned b = ts_chunk_find_run(c, 5, 1);
  expect_eq(b, f + 10);
  ts_chunk_mark_used(c, b, 5);
  unsigned d = ts_chunk_find_run(c, 20, 1);
  expect_eq(d, f + 15);
  ts_chunk_mark_used(c, d, 20);
  /* a hole of 10 at the start: a 4-page run splits it (lowest address) */
  ts_chunk_mark_free(c, a, 10);
  expect_eq(ts_chunk_find_run(c, 4, 1), f);
  /* 12 pages do not fit in the hole: they go after d */
  expect_eq(ts_chunk_find_run(c, 12, 1), f + 35);
  /* freeing b merges it with the hole: now 15 fit at the start */
  ts_chunk_mark_free(c, b, 5);
  expect_eq(ts_chunk_find_run(c, 15, 1), f);
  expect_eq(ts_chunk_find_run(c, 16, 1), f + 35);
  /* aligned search */
  unsigned al = ts_chunk_find_run(c, 8, 64);
  expect_eq(al % 64, 0);
  expect_true(al >= f + 35, "%u", al);
  /* free_after counts free pages after a run */
  expect_eq(ts_chunk_free_after(c, f, 100), 15);
  ts_chunk_mark_free(c, d, 20);
  expect_true(ts_chunk_is_empty(c));
  /* the largest run that fits */
  unsigned big = TS_CHUNK_PAGES - f;
  expect_eq(ts_chunk_find_run(c, big, 1), f);
  expect_eq(ts_chunk_find_run(c, big + 1, 1), 0);
  ts_chunk_delete(c);
}

TS_TEST(largest_run_fits_in_a_chunk) {
  ts_chunk_t *c = ts_chunk_new(&test_arena);
  assert_true(c != NULL);
  unsigned pages = (unsigned)(TS_LARGE_MAX >> TS_PAGE_SHIFT);
  expect_true(ts_chunk_find_run(c, pages, pages) != 0, "2 MiB aligned run");
  ts_chunk_delete(c);
}

int main(void) {
  ts_init_slow();
  ts_run(new_chunk_is_aligned_and_mapped);
  ts_run(first_fit_split_and_merge);
  ts_run(largest_run_fits_in_a_chunk);
  return ts_test_done();
}
