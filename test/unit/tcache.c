/* SPDX-License-Identifier: MIT */
/* Unit test of tcache.c: bounded bins, refill and flush by halves, trim of
 * idle bins, flush at thread exit, the registry entry of a thread whose
 * cache was made too late for its destructor, and medium:auto: a thread's
 * choice of medium blocks by the lifetimes it sees. */
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

/* ---- medium:auto: each thread chooses by the lifetimes it sees ---- */

/* Runs fn in a new thread (a new cache); fn returns NULL or what failed.
 * Returns whether it succeeded. */
static bool in_new_thread(void *(*fn)(void *)) {
  pthread_t t;
  void *err = NULL;
  if (pthread_create(&t, NULL, fn, NULL) != 0) {
    expect_true(false, "pthread_create failed");
    return false;
  }
  pthread_join(t, &err);
  expect_true(err == NULL, "%s", err ? (const char *)err : "");
  return err == NULL;
}

static unsigned code_of(const void *p) { return ts_chunk_block_code(ts_chunk_of(p), ts_chunk_page_of(p)); }

/* Blocks of 4 to 64 KiB allocated and freed at once (a request's
 * buffers), then kept in a FIFO of 256 (a cache's entries), then freed
 * at once again; where the thread's next 10 and 40 KiB blocks go after
 * each, as the contents of every block are checked. */
static void *lifetimes(void *arg) {
  (void)arg;
  static __thread void *fifo[256];
  static __thread size_t sizes[256];
  uint64_t x = 88172645463325252ull;
  /* a new thread starts with medium blocks */
  void *p = ts_malloc(10000);
  expect_eq(code_of(p), TS_PAGE_MEDIUM);
  ts_free(p);
  for (int i = 0; i < 4 * TS_LIFE_WINDOW; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    size_t n = 4097 + x % (60 << 10);
    if (!(p = ts_malloc(n))) return (void *)"out of memory";
    ts_test_fill(p, n);
    expect_true(ts_test_check(p, n));
    ts_free(p);
  }
  expect_true(!ts_tcache.medium_mode);
  void *a = ts_malloc(10000), *b = ts_malloc(40000);
  expect_true(code_of(a) < TS_NCLASSES, "a 10 KiB block of a thread of short-lived blocks: code %u", code_of(a));
  expect_eq(code_of(b), TS_PAGE_LARGE);
  ts_free(a), ts_free(b);
  /* long-lived: each block lives 256 allocations */
  for (int i = 0; i < 256 + 4 * TS_LIFE_WINDOW; i++) {
    unsigned k = (unsigned)i % 256;
    if (fifo[k]) {
      expect_true(ts_test_check(fifo[k], sizes[k]), "block %p of %zu bytes changed", fifo[k], sizes[k]);
      ts_free(fifo[k]);
    }
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    sizes[k] = 4097 + x % (60 << 10);
    if (!(fifo[k] = ts_malloc(sizes[k]))) return (void *)"out of memory";
    ts_test_fill(fifo[k], sizes[k]);
  }
  expect_true(ts_tcache.medium_mode);
  a = ts_malloc(10000), b = ts_malloc(40000);
  expect_eq(code_of(a), TS_PAGE_MEDIUM);
  expect_eq(code_of(b), TS_PAGE_MEDIUM);
  ts_free(a), ts_free(b);
  /* a slab object of such a class freed now goes back to its bin, not to
   * a bin that no malloc would take from */
  for (unsigned c = 0; c < TS_NCLASSES; c++)
    if (ts_class_size[c] > TS_MEDIUM_MIN_SIZE) expect_eq(ts_tcache.bins[c].count, 0);
  for (unsigned k = 0; k < 256; k++) {
    expect_true(ts_test_check(fifo[k], sizes[k]));
    ts_free(fifo[k]);
  }
  return NULL;
}

TS_TEST(a_thread_chooses_medium_blocks_by_lifetime) {
  assert_eq(ts_opt.medium, TS_MEDIUM_AUTO);
  in_new_thread(lifetimes);
}

static void *plain(void *arg) {
  (void)arg;
  void *p = ts_malloc(10000);
  expect_true(code_of(p) < TS_NCLASSES, "code %u", code_of(p));
  ts_free(p);
  return NULL;
}

TS_TEST(medium_off_keeps_slabs) {
  ts_opt.medium = TS_MEDIUM_OFF;
  in_new_thread(plain);
  ts_opt.medium = TS_MEDIUM_AUTO;
}

/* (ts_tcache is read directly, not through a pointer, in these threads:
 * UBSan took &ts_tcache in a new thread for a null pointer.)
 *
 * Frees of blocks of another arena (another thread's, most likely) are
 * left out of a thread's lifetimes: a thread that frees what others made
 * would count them old and take medium blocks for its own short-lived
 * ones. */
static void *foreign_frees(void *arg) {
  (void)arg;
  void *p;
  /* its own short-lived blocks put it on slabs */
  for (unsigned i = 0; i < 2 * TS_LIFE_WINDOW; i++) {
    if (!(p = ts_malloc(10000))) return (void *)"out of memory";
    ts_free(p);
  }
  expect_true(!ts_tcache.medium_mode);
  /* then it frees a long run of blocks of another arena: none counts */
  ts_arena_t *other = &ts_arenas[(ts_tcache.arena->index + 1) % ts_narenas];
  static __thread void *theirs[2 * TS_LIFE_WINDOW];
  for (unsigned i = 0; i < 2 * TS_LIFE_WINDOW; i++)
    if (!(theirs[i] = ts_medium_alloc(other, 40000))) return (void *)"out of memory";
  for (unsigned i = 0; i < 2 * TS_LIFE_WINDOW; i++) ts_free(theirs[i]);
  expect_true(!ts_tcache.medium_mode, "frees of another arena's blocks moved the thread to medium blocks");
  return NULL;
}

TS_TEST(frees_of_another_arenas_blocks_are_left_out) {
  if (ts_narenas < 2) ts_skip("one arena (one CPU): no other arena's blocks to free");
  in_new_thread(foreign_frees);
}

/* A thread whose sampled population changes with its mode (blocks of 40
 * KiB that live long, seen on slabs; short-lived ones of 8 to 14 KiB, seen
 * too on medium blocks) switches ever more rarely, not at every window. */
static void *flapping(void *arg) {
  (void)arg;
  static __thread void *keep[64];
  unsigned switches = 0, k = 0;
  bool mode = false;
  void *p = ts_malloc(10000); /* sets the cache up */
  ts_free(p);
  mode = ts_tcache.medium_mode;
  for (unsigned i = 0; i < 3000 * TS_LIFE_WINDOW / 64; i++) {
    for (unsigned j = 0; j < 8; j++) { /* short-lived */
      if (!(p = ts_malloc(8192 + 768 * j))) return (void *)"out of memory";
      ts_free(p);
    }
    if (keep[k]) ts_free(keep[k]); /* long-lived: 64 rounds */
    if (!(keep[k] = ts_malloc(40000))) return (void *)"out of memory";
    k = (k + 1) % 64;
    if (ts_tcache.medium_mode != mode) switches++, mode = ts_tcache.medium_mode;
  }
  for (k = 0; k < 64; k++) ts_free(keep[k]);
  expect_true(switches <= 12, "%u switches", switches);
  return NULL;
}

TS_TEST(a_thread_whose_sample_changes_with_its_mode_backs_off) {
  in_new_thread(flapping);
}

/* A new thread that only frees what another made caches their slab
 * objects above 4 KiB as any thread does: its capacities are zeroed only
 * once it decides on medium blocks. */
static void *made[100];
static void *maker(void *arg) {
  (void)arg;
  void *p;
  for (unsigned i = 0; i < 2 * TS_LIFE_WINDOW; i++) { /* short-lived: onto slabs */
    if (!(p = ts_malloc(40000))) return (void *)"out of memory";
    ts_free(p);
  }
  for (unsigned i = 0; i < 100; i++)
    if (!(made[i] = ts_malloc(8000))) return (void *)"out of memory";
  return NULL;
}
static void *freer(void *arg) {
  (void)arg;
  for (unsigned i = 0; i < 100; i++) ts_free(made[i]);
  unsigned cls = ts_size_to_class(8000);
  expect_true(ts_tcache.bins[cls].count > 0, "the freed slab objects were not cached");
  return NULL;
}

TS_TEST(a_thread_that_only_frees_others_blocks_caches_them) {
  assert_true(in_new_thread(maker));
  for (unsigned i = 0; i < 100; i++)
    assert_true(code_of(made[i]) < TS_NCLASSES, "block %u is not a slab object (code %u)", i, code_of(made[i]));
  in_new_thread(freer);
}

int main(void) {
  ts_init_slow();
  ts_opt.background_thread = false; /* exact bin and arena states: no purger */
  ts_run(caps_are_bounded);
  ts_run(refill_and_flush_by_halves);
  ts_run(idle_bins_are_trimmed);
  ts_run(thread_exit_flushes);
  ts_run(gone_thread_leaves_the_registry);
  ts_run(a_thread_chooses_medium_blocks_by_lifetime);
  ts_run(medium_off_keeps_slabs);
  ts_run(frees_of_another_arenas_blocks_are_left_out);
  ts_run(a_thread_whose_sample_changes_with_its_mode_backs_off);
  ts_run(a_thread_that_only_frees_others_blocks_caches_them);
  return ts_test_done();
}
