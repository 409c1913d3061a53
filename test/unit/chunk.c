/* SPDX-License-Identifier: MIT */
/* Unit test of chunk.c: the chunk map and chunk headers. */
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
  for (unsigned p = 0; p < c->first_page; p++) expect_eq(ts_chunk_codes(c)[p], TS_PAGE_META);
  ts_chunk_delete(c);
  expect_eq(ts_window_kind((uintptr_t)c), TS_WINDOW_NONE);
  expect_eq(ts_window_kind(~(uintptr_t)0), TS_WINDOW_NONE);
}

int main(void) {
  ts_init_slow();
  ts_opt.background_thread = false; /* exact bin and arena states: no purger */
  ts_run(new_chunk_is_aligned_and_mapped);
  return ts_test_done();
}
