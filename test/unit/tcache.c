/* SPDX-License-Identifier: MIT */
/* Unit test of tcache.c: bounded bins, refill and flush by halves, trim of
 * idle bins, flush at thread exit, the registry entry of a thread whose
 * cache was made too late for its destructor. */
#include "internal.h"
#include "tessera.h"
#include "test.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#define CLS 3 /* 64-byte objects */

#if defined(__SANITIZE_THREAD__)
#define TS_UNDER_TSAN 1
#else
#define TS_UNDER_TSAN 0
#endif

static size_t bin_free_objs(ts_arena_t *arena, unsigned cls) {
  size_t n = 0;
  ts_bin_t *bin = &arena->bins[cls];
  pthread_mutex_lock(&bin->lock);
  for (unsigned i = 0; i < TS_BIN_LISTS; i++)
    for (ts_span_t *s = bin->lists[i]; s; s = s->next) n += s->nfree;
  if (bin->spare) n += bin->spare->nfree;
  pthread_mutex_unlock(&bin->lock);
  return n;
}

TS_TEST(caps_are_bounded) {
  size_t total = 0;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    uint32_t cap = ts_tcache_cap_of(c);
    expect_true(cap >= 4 && cap <= 256, "class %u cap %u", c, cap);
    total += (size_t)cap * ts_class_size[c];
  }
  printf("  most bytes one thread cache can hold: %zu KiB\n", total >> 10);
  expect_true(total <= (size_t)8 << 20);
}

TS_TEST(refill_and_flush_by_halves) {
  void *p = ts_malloc(64);
  ts_tcache_t *tc = &ts_tcache;
  assert_eq(tc->state, TS_TCACHE_ACTIVE);
  ts_tbin_t *b = &tc->bins[CLS];
  expect_eq(b->count, b->cap / 2 - 1);
  ts_free(p);
  /* free more than a whole cache: the count never passes the cap */
  enum { N = 1000 };
  static void *v[N];
  for (int i = 0; i < N; i++) v[i] = ts_malloc(64);
  for (int i = 0; i < N; i++) {
    ts_free(v[i]);
    assert_true(b->count <= b->cap);
  }
  expect_true(b->count >= b->cap / 2);
}

TS_TEST(idle_bins_are_trimmed) {
  ts_tcache_t *tc = &ts_tcache;
  ts_tbin_t *b = &tc->bins[CLS];
  unsigned before = b->count;
  assert_true(before > 1);
  struct timespec ts = {0, 150 * 1000 * 1000};
  nanosleep(&ts, NULL);
  tc->used[CLS] = 0;
  tc->last_gc_ns = 0;
  ts_tcache_gc(tc);
  expect_eq(b->count, before / 2);
}

static void *exiting_thread(void *arg) {
  (void)arg;
  static void *v[100];
  for (int i = 0; i < 100; i++) v[i] = ts_malloc(64);
  for (int i = 0; i < 100; i++) ts_free(v[i]);
  return ts_tcache.arena;
}

TS_TEST(thread_exit_flushes) {
  pthread_t t;
  void *arena;
  pthread_create(&t, NULL, exiting_thread, NULL);
  pthread_join(t, &arena);
  /* all 100 objects, and the ones the refill took, are back in the bin:
   * every slab of the class in that arena is wholly free or the spare */
  ts_bin_t *bin = &((ts_arena_t *)arena)->bins[CLS];
  size_t free_objs = bin_free_objs(arena, CLS);
  pthread_mutex_lock(&bin->lock);
  size_t slab_objs = (size_t)bin->slabs * ts_class_slab_objs[CLS];
  pthread_mutex_unlock(&bin->lock);
  /* the main thread may hold objects of this class from the same arena */
  if (arena != ts_tcache.arena) expect_eq(free_objs, slab_objs);
  expect_eq(atomic_load(&((ts_arena_t *)arena)->xthreads), arena == ts_tcache.arena ? 1 : 0);
}

/* A key created after tessera's: in the last round of destructors its
 * destructor makes the thread's first cache, whose own destructor then
 * never runs. */
static pthread_key_t late_key;

static void late_dtor(void *v) {
  uintptr_t round = (uintptr_t)v;
  if (round < PTHREAD_DESTRUCTOR_ITERATIONS) {
    pthread_setspecific(late_key, (void *)(round + 1));
    return;
  }
  ts_free(ts_malloc(64));
}

static void *late_thread(void *arg) {
  (void)arg;
  pthread_setspecific(late_key, (void *)1);
  return NULL;
}

static unsigned bound_threads(void) {
  unsigned n = 0;
  for (unsigned i = 0; i < ts_narenas; i++) n += atomic_load(&ts_arenas[i].xthreads);
  return n;
}

TS_TEST(gone_thread_leaves_the_registry) {
  /* TSan's runtime ends its thread in an earlier round: instrumented code
   * (an atomic store in ts_malloc) faults in the last one */
  if (TS_UNDER_TSAN) ts_skip("allocation in the last round of destructors under TSan");
  assert_eq(pthread_key_create(&late_key, late_dtor), 0);
  unsigned before = bound_threads();
  uint64_t lost = ts_tcache_lost();
  pthread_t t;
  assert_eq(pthread_create(&t, NULL, late_thread, NULL), 0);
  pthread_join(t, NULL);
  /* the kernel may report the thread a moment after the join */
  for (int i = 0; i < 1000 && ts_tcache_lost() == lost; i++) {
    static ts_tstats_t sum;
    static uint64_t cached[TS_NCLASSES];
    uint64_t large, medium;
    ts_tcache_sum_stats(&sum, cached, &large, &medium); /* a walk: prunes */
    if (ts_tcache_lost() == lost) {
      struct timespec ms = {0, 1000000};
      nanosleep(&ms, NULL);
    }
  }
  expect_eq(ts_tcache_lost(), lost + 1);
  expect_eq(bound_threads(), before); /* its arena binding released */
  pthread_key_delete(late_key);
}

int main(void) {
  ts_init_slow();
  ts_opt.background_thread = false; /* exact bin and arena states: no purger */
  ts_run(caps_are_bounded);
  ts_run(refill_and_flush_by_halves);
  ts_run(idle_bins_are_trimmed);
  ts_run(thread_exit_flushes);
  ts_run(gone_thread_leaves_the_registry);
  return ts_test_done();
}
