/* SPDX-License-Identifier: MIT */
/* Unit test of arena.c: least-loaded choice, large runs (first fit, in
 * place resize), empty chunks kept once then unmapped. */
#include "internal.h"
#include "tessera.h"
#include "test.h"

#include <pthread.h>

TS_TEST(choose_least_loaded) {
  unsigned n = ts_narenas;
  ts_arena_t *got[TS_ARENAS_MAX];
  unsigned seen[TS_ARENAS_MAX] = {0};
  for (unsigned i = 0; i < n; i++) seen[i] = atomic_load(&ts_arenas[i].xthreads);
  for (unsigned i = 0; i < n; i++) got[i] = ts_arena_choose();
  /* every arena gained exactly one thread beyond the least loaded level */
  unsigned lo = ~0u, hi = 0;
  for (unsigned i = 0; i < n; i++) {
    unsigned t = atomic_load(&ts_arenas[i].xthreads);
    if (t < lo) lo = t;
    if (t > hi) hi = t;
  }
  expect_true(hi - lo <= 1 || n == 1, "lo %u hi %u", lo, hi);
  for (unsigned i = 0; i < n; i++) ts_arena_release(got[i]);
  for (unsigned i = 0; i < n; i++) expect_eq(atomic_load(&ts_arenas[i].xthreads), seen[i]);
  expect_true(ts_narenas >= 1 && ts_narenas == (ts_os_ncpus() < TS_ARENAS_MAX ? ts_os_ncpus() : TS_ARENAS_MAX));
}

static void *bind_thread(void *arg) {
  (void)arg;
  void *p = ts_malloc(10);
  ts_arena_t *a = ts_tcache.arena;
  ts_free(p);
  return a;
}

TS_TEST(threads_spread_over_arenas) {
  if (ts_narenas < 2) ts_skip("one arena");
  pthread_t t[2];
  void *a[2];
  /* the main thread is bound to one arena: two threads started while it
   * lives must use the others first */
  ts_free(ts_malloc(1));
  ts_arena_t *mine = ts_tcache.arena;
  pthread_create(&t[0], NULL, bind_thread, NULL);
  pthread_join(t[0], &a[0]);
  expect_true(a[0] != mine);
  (void)t[1], (void)a[1];
}

TS_TEST(large_runs_first_fit_and_resize) {
  ts_arena_t *arena = &ts_arenas[0];
  char *a = ts_arena_large_alloc(arena, 40000, 0);
  char *b = ts_arena_large_alloc(arena, 40000, 0);
  assert_true(a && b);
  ts_chunk_t *c = ts_chunk_of(a);
  expect_eq(ts_chunk_codes(c)[ts_chunk_page_of(a)], TS_PAGE_LARGE);
  expect_eq(ts_chunk_codes(c)[ts_chunk_page_of(a) + 1], TS_PAGE_NOBLOCK);
  expect_eq(ts_malloc_usable_size(a), 40960);
  /* a cannot grow into b; shrink works in place, then growth fits again */
  if (ts_chunk_of(b) == c && b == a + 40960) {
    expect_true(!ts_arena_large_resize(a, 50000));
    expect_true(ts_arena_large_resize(a, 33000));
    expect_eq(ts_malloc_usable_size(a), 36864);
    expect_true(ts_arena_large_resize(a, 40000));
  }
  /* b grows in place into the free pages after it */
  expect_true(ts_arena_large_resize(b, 400000));
  expect_eq(ts_malloc_usable_size(b), 401408);
  /* aligned */
  char *al = ts_arena_large_alloc(arena, 5000, 65536);
  expect_eq((uintptr_t)al % 65536, 0);
  ts_arena_run_free(ts_chunk_of(al), ts_chunk_page_of(al));
  ts_arena_run_free(c, ts_chunk_page_of(a));
  /* first fit: a's place is reused */
  char *a2 = ts_arena_large_alloc(arena, 40000, 0);
  expect_true(a2 == a);
  ts_arena_run_free(ts_chunk_of(a2), ts_chunk_page_of(a2));
  ts_arena_run_free(ts_chunk_of(b), ts_chunk_page_of(b));
}

TS_TEST(empty_chunks_kept_once) {
  ts_arena_t *arena = &ts_arenas[ts_narenas - 1];
  /* fill two chunks with 2 MiB runs, then free everything */
  void *r[4];
  for (int i = 0; i < 4; i++) r[i] = ts_arena_large_alloc(arena, TS_LARGE_MAX - TS_PAGE_SIZE * 40, 0);
  for (int i = 0; i < 4; i++) assert_true(r[i] != NULL);
  for (int i = 0; i < 4; i++) ts_arena_run_free(ts_chunk_of(r[i]), ts_chunk_page_of(r[i]));
  unsigned empty = 0;
  for (ts_chunk_t *c = arena->chunks; c; c = c->next) empty += ts_chunk_is_empty(c);
  expect_true(empty <= 1, "%u empty chunks", empty);
  for (ts_chunk_t *c = arena->chunks; c && c->next; c = c->next) expect_true((uintptr_t)c < (uintptr_t)c->next);
}

int main(void) {
  ts_init_slow();
  ts_opt.background_thread = false; /* exact bin and arena states: no purger */
  ts_run(choose_least_loaded);
  ts_run(threads_spread_over_arenas);
  ts_run(large_runs_first_fit_and_resize);
  ts_run(empty_chunks_kept_once);
  return ts_test_done();
}
