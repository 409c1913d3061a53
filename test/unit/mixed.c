/* SPDX-License-Identifier: MIT */
/* Unit test of mixed.c: once an arena's slabs have holes, objects of one
 * class go into the free space of another class's slabs; their contents
 * and sizes are those of their own class, aligned requests still get
 * aligned blocks; a bin with holes refills from its lone slots first;
 * freeing them (through
 * the free path, a thread cache's flush or another thread) gives the space
 * back and the slabs their own page codes; misuse is reported; the option
 * turns it off; and the ledger counts them once. */
#include "internal.h"
#include "tessera.h"
#include "test.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define TS_UNDER_TSAN 1
#else
#define TS_UNDER_TSAN 0
#endif

/* Where a block lies: the class of the slab holding it, and whether that
 * slab hosts objects of other classes. */
static unsigned home_class(const void *p) {
  ts_chunk_t *c = ts_chunk_of(p);
  return c->spans[c->page_head[ts_chunk_page_of(p)]].cls;
}
static bool on_mixed_page(const void *p) {
  ts_chunk_t *c = ts_chunk_of(p);
  return ts_chunk_codes(c)[ts_chunk_page_of(p)] == TS_PAGE_MIXED;
}

/* Holes: bytes of blocks of `size`, every other pair of them freed (its
 * slabs are left half used, with holes of two neighbouring slots).  The
 * survivors are kept in keep[] (count in nkeep). */
enum { HOLE_MAX = 1 << 16 };
static void *keep[HOLE_MAX];
static unsigned nkeep;
static void make_holes(size_t size, size_t bytes) {
  static void *all[2 * HOLE_MAX];
  unsigned n = (unsigned)(bytes / size);
  assert_true(n <= 2 * HOLE_MAX);
  for (unsigned i = 0; i < n; i++) {
    all[i] = ts_malloc(size);
    assert_true(all[i] != NULL);
    ts_test_fill(all[i], size);
  }
  nkeep = 0;
  for (unsigned i = 0; i < n; i++) {
    if (i & 2) ts_free(all[i]);
    else keep[nkeep++] = all[i];
  }
  ts_purge(); /* the frees reach the slabs */
}
static void free_holes(size_t size) {
  for (unsigned i = 0; i < nkeep; i++) {
    expect_true(ts_test_check(keep[i], size), "a block next to placed objects was overwritten");
    ts_free(keep[i]);
  }
  nkeep = 0;
}

/* Nothing placed anywhere, every slab with its own code: after a test has
 * freed everything it allocated. */
static void expect_no_foreign(void) {
  ts_purge();
  ts_stats_t st;
  ts_stats_get(&st);
  for (unsigned c = 0; c < TS_STATS_CLASSES; c++) {
    expect_eq(st.classes[c].foreign, 0);
    expect_eq(st.classes[c].hosted_bytes, 0);
  }
  for (unsigned i = 0; i < ts_narenas; i++)
    for (unsigned c = 0; c < TS_NCLASSES; c++) {
      expect_eq(atomic_load(&ts_arenas[i].foreign_objs[c]), 0);
      expect_eq(ts_arenas[i].bins[c].covered, 0);
    }
}

enum { NOBJ = 6000 };
static void *obj[NOBJ];

/* Allocates n blocks of size, filled; returns how many lie in slabs of
 * another class. */
static unsigned allocate(size_t size, unsigned n) {
  unsigned placed = 0;
  for (unsigned i = 0; i < n; i++) {
    obj[i] = ts_malloc(size);
    if (!obj[i]) return placed;
    ts_test_fill(obj[i], size);
    if (home_class(obj[i]) != ts_size_to_class(size)) {
      placed++;
      expect_true(on_mixed_page(obj[i]), "%p of %zu bytes lies in a slab of class %u whose pages are not mixed",
                  obj[i], size, home_class(obj[i]));
    }
  }
  return placed;
}
static void release(size_t size, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    expect_true(ts_test_check(obj[i], size), "block %u of %zu bytes changed", i, size);
    ts_free(obj[i]);
  }
}

TS_TEST(larger_objects_fill_the_holes_of_smaller_classes) {
  make_holes(512, 24 << 20); /* 12 MiB of holes in 512-byte slabs */
  ts_stats_t before, after;
  ts_stats_get(&before);
  unsigned placed = allocate(1000, 4000); /* 4 MiB of 1 KiB blocks */
  ts_stats_get(&after);
  expect_true(placed > 3000, "only %u of 4000 blocks of 1000 bytes went into holes", placed);
  /* the holes took them: the slabs grew by far less than the blocks */
  expect_true(after.slab_free_bytes + (2u << 20) < before.slab_free_bytes, "slab_free %llu -> %llu",
              (unsigned long long)before.slab_free_bytes, (unsigned long long)after.slab_free_bytes);
  unsigned c1024 = ts_size_to_class(1000);
  expect_true(after.classes[c1024].foreign >= placed); /* and any its thread cache holds */
  for (unsigned i = 0; i < 4000; i++) {
    expect_eq(ts_malloc_usable_size(obj[i]), 1024);
    expect_ptr_aligned(obj[i], 16); /* at granules, not at 1024 as in its own slabs */
  }
  release(1000, 4000);
  free_holes(512);
  expect_no_foreign();
}

TS_TEST(small_objects_fill_the_holes_of_larger_classes) {
  make_holes(1024, 24 << 20);
  unsigned placed = allocate(40, NOBJ);
  expect_true(placed > NOBJ / 2, "only %u of %u blocks of 40 bytes went into holes", placed, NOBJ);
  /* freed in another order than allocated: covered slots come free one by one */
  for (unsigned i = 0; i < NOBJ; i += 2) {
    expect_true(ts_test_check(obj[i], 40));
    ts_free(obj[i]);
  }
  for (unsigned i = 1; i < NOBJ; i += 2) {
    expect_true(ts_test_check(obj[i], 40));
    ts_free(obj[i]);
  }
  free_holes(1024);
  expect_no_foreign();
}

TS_TEST(aligned_requests_stay_aligned) {
  make_holes(768, 24 << 20);
  static const size_t al[] = {32, 64, 128, 256, 512};
  for (unsigned i = 0; i < NOBJ; i++) {
    size_t a = al[i % 5];
    obj[i] = ts_aligned_alloc(a, a);
    assert_true(obj[i] != NULL);
    expect_ptr_aligned(obj[i], a);
    ts_test_fill(obj[i], a);
  }
  for (unsigned i = 0; i < NOBJ; i++) {
    expect_true(ts_test_check(obj[i], al[i % 5]));
    ts_free(obj[i]);
  }
  free_holes(768);
  expect_no_foreign();
}

/* A bin whose slabs have holes refills from its lone free slots (no free
 * neighbour) first, leaving runs of free slots to placed objects. */
TS_TEST(a_bin_with_holes_refills_from_lone_slots_first) {
  enum { N = 4096, SIZE = 512 }; /* 1-page slabs of 8 slots: 2 MiB */
  static void *b[N];
  static char freed[N];
  for (unsigned i = 0; i < N; i++) {
    b[i] = ts_malloc(SIZE);
    assert_true(b[i] != NULL);
    ts_test_fill(b[i], SIZE);
  }
  /* free 3 of every 5: one alone, then two side by side */
  for (unsigned i = 0; i < N; i++) {
    freed[i] = i % 5 == 0 || i % 5 == 2 || i % 5 == 3;
    if (freed[i]) ts_free(b[i]);
  }
  ts_purge(); /* the frees reach the slabs */
  /* which freed blocks are lone, by address: a neighbour in the same page
   * that is free makes a run */
  unsigned nlone = 0;
  for (unsigned i = 0; i < N; i++) {
    if (!freed[i]) continue;
    bool lone = true;
    for (unsigned j = 0; j < N && lone; j++) {
      if (j == i || !freed[j]) continue;
      uintptr_t p = (uintptr_t)b[i], q = (uintptr_t)b[j];
      if ((p >> TS_PAGE_SHIFT) == (q >> TS_PAGE_SHIFT) && (q + SIZE == p || p + SIZE == q)) lone = false;
    }
    freed[i] = lone ? 2 : 1;
    nlone += lone;
  }
  assert_true(nlone > 8, "%u lone slots", nlone);
  void *got[8];
  for (unsigned k = 0; k < 8; k++) {
    got[k] = ts_malloc(SIZE);
    bool was_lone = false;
    for (unsigned i = 0; i < N && !was_lone; i++) was_lone = freed[i] == 2 && b[i] == got[k];
    expect_true(was_lone, "allocation %u (%p) is not one of the %u lone slots", k, got[k], nlone);
    ts_test_fill(got[k], SIZE);
  }
  for (unsigned k = 0; k < 8; k++) {
    expect_true(ts_test_check(got[k], SIZE));
    ts_free(got[k]);
  }
  for (unsigned i = 0; i < N; i++)
    if (!freed[i]) {
      expect_true(ts_test_check(b[i], SIZE));
      ts_free(b[i]);
    }
  expect_no_foreign();
}

/* The heap of the back-off tests: PAIRS_N blocks of 512 bytes (4 MiB of
 * 1-page slabs of 8 slots) with slots 1-2 and 5-6 of every page freed,
 * pairs only; with lone, the page of the middle block keeps only slots 1
 * and 7 instead (a quarter used, so searched last), and its slot 0, lone,
 * is returned.  Survivors stay in b (NULL where freed); the bin's
 * back-off starts at none.  Returns the bin, NULL if out of memory. */
enum { PAIRS_N = 8192, PAIRS_SIZE = 512 };
static ts_bin_t *pairs_heap(void **b, bool lone, void **lone_out) {
  for (unsigned i = 0; i < PAIRS_N; i++) {
    b[i] = ts_malloc(PAIRS_SIZE);
    expect_true(b[i] != NULL);
    if (!b[i]) return NULL;
  }
  uintptr_t special = lone ? ((uintptr_t)b[PAIRS_N / 2] >> TS_PAGE_SHIFT) << TS_PAGE_SHIFT : 0;
  for (unsigned i = 0; i < PAIRS_N; i++) {
    uintptr_t p = (uintptr_t)b[i];
    unsigned slot = (unsigned)((p & TS_PAGE_MASK) / PAIRS_SIZE);
    bool in_special = (p >> TS_PAGE_SHIFT) << TS_PAGE_SHIFT == special;
    if (in_special && slot == 0) *lone_out = b[i];
    if (in_special ? slot != 1 && slot != 7 : slot % 4 == 1 || slot % 4 == 2) {
      ts_free(b[i]);
      b[i] = NULL;
    }
  }
  ts_purge();
  ts_bin_t *bin = &ts_thread_arena()->bins[ts_size_to_class(PAIRS_SIZE)];
  pthread_mutex_lock(&bin->lock);
  bin->lone_skip = bin->lone_backoff = 0;
  pthread_mutex_unlock(&bin->lock);
  return bin;
}
static void pairs_free(void **b) {
  for (unsigned i = 0; i < PAIRS_N; i++)
    if (b[i]) ts_free(b[i]);
  ts_purge();
}

/* A search for lone slots that finds none makes the next fills skip it
 * (1, 2, 4, ... fills), and one that finds some ends that. */
TS_TEST(a_search_for_lone_slots_that_finds_none_backs_off) {
  static void *b[PAIRS_N];
  ts_bin_t *bin = pairs_heap(b, false, NULL);
  assert_true(bin != NULL);
  ts_arena_t *arena = ts_thread_arena();
  unsigned cls = ts_size_to_class(PAIRS_SIZE);
  void *p, *q;
  expect_eq(ts_bin_fill(arena, cls, &p, 1), 1); /* no lone slot: a plain take, the first of a pair */
  expect_eq(bin->lone_backoff, 1);
  expect_eq(bin->lone_skip, 0);
  expect_eq(ts_bin_fill(arena, cls, &q, 1), 1); /* its partner is lone now */
  expect_true((char *)q == (char *)p + PAIRS_SIZE, "%p after %p", q, p);
  expect_eq(bin->lone_backoff, 0);
  /* take pairs two at a time, which leaves no lone slot: the searches
   * find nothing and back off, 1, 2, 4, ..., and skipped fills count down */
  static void *taken[PAIRS_N];
  unsigned nt = 0, max_backoff = 0, skipped = 0;
  taken[nt++] = p;
  taken[nt++] = q;
  for (unsigned k = 0; k < 200; k++) {
    unsigned before = bin->lone_skip;
    expect_eq(ts_bin_fill(arena, cls, &taken[nt], 2), 2);
    expect_true((char *)taken[nt + 1] == (char *)taken[nt] + PAIRS_SIZE, "a pair: %p %p", taken[nt],
                taken[nt + 1]);
    nt += 2;
    if (before) {
      skipped++;
      expect_eq(bin->lone_skip, before - 1);
    }
    if (bin->lone_backoff > max_backoff) max_backoff = bin->lone_backoff;
  }
  expect_eq(max_backoff, 64);
  expect_true(skipped > 150, "%u of 200 fills skipped the search", skipped);
  for (unsigned i = 0; i < nt; i++) ts_free(taken[i]);
  pairs_free(b);
}

/* A search that finds a lone slot only after looking at many slabs backs
 * off as one that finds none (TS_BIN_LONE_YIELD). */
TS_TEST(a_search_with_a_poor_yield_backs_off) {
  static void *b[PAIRS_N];
  void *lone = NULL;
  ts_bin_t *bin = pairs_heap(b, true, &lone);
  assert_true(bin != NULL && lone != NULL);
  void *p;
  expect_eq(ts_bin_fill(ts_thread_arena(), ts_size_to_class(PAIRS_SIZE), &p, 1), 1);
  expect_true(p == lone, "the one lone slot (%p), got %p", lone, p);
  expect_eq(bin->lone_backoff, 1); /* found after hundreds of slabs: backs off */
  ts_free(p);
  pairs_free(b);
}

/* Placed objects sit at 16 bytes: an aligned request that the thread
 * cache would answer with one gets a slot of the class's own instead. */
/* The snug pass: 1-page slabs of 512 bytes with runs of two free slots,
 * which a 1 KiB object fills, and a few, searched first (sparser), with
 * runs of three, where it would leave a 512-byte sliver.  The objects go
 * into the runs they fill, while the snug pass finds them. */
TS_TEST(placement_prefers_runs_an_object_fills) {
  enum { N = 49152, SIZE = 512, SPARSE_EVERY = 384 };
  static void *b[N];
  for (unsigned i = 0; i < N; i++) {
    b[i] = ts_malloc(SIZE);
    assert_true(b[i] != NULL);
  }
  uintptr_t sparse[N / SPARSE_EVERY + 1];
  unsigned nsparse = 0;
  for (unsigned i = 0; i < N; i++) {
    uintptr_t page = (uintptr_t)b[i] >> TS_PAGE_SHIFT;
    unsigned slot = (unsigned)(((uintptr_t)b[i] & TS_PAGE_MASK) / SIZE);
    bool is_sparse = page % SPARSE_EVERY == 0;
    if (is_sparse && slot == 0) sparse[nsparse++] = page;
    if (is_sparse ? slot % 4 != 0 : slot % 4 == 1 || slot % 4 == 2) { /* runs of 3, or of 2 */
      ts_free(b[i]);
      b[i] = NULL;
    }
  }
  ts_purge();
  expect_true(nsparse > 4 && nsparse < TS_MIXED_SNUG_SLABS / 2, "%u sparse pages", nsparse);
  unsigned placed = allocate(1024, 2000), in_sparse = 0;
  for (unsigned i = 0; i < 2000; i++)
    for (unsigned k = 0; k < nsparse; k++) in_sparse += (uintptr_t)obj[i] >> TS_PAGE_SHIFT == sparse[k];
  expect_true(placed > 1500, "%u of 2000 placed", placed);
  expect_eq(in_sparse, 0);
  release(1024, 2000);
  for (unsigned i = 0; i < N; i++)
    if (b[i]) ts_free(b[i]);
  expect_no_foreign();
}

TS_TEST(aligned_requests_skip_placed_objects) {
  make_holes(768, 24 << 20); /* runs of 1536 bytes: every other one off 1024 */
  unsigned placed = allocate(1000, 4000);
  assert_true(placed > 3000, "only %u placed", placed);
  unsigned misaligned = 0;
  for (unsigned i = 0; i < 4000; i++) misaligned += ((uintptr_t)obj[i] & 1023) != 0;
  expect_true(misaligned > 0, "no placed object off 1024 bytes: the test shows nothing");
  /* give back the placed ones off 1024 (into this thread's cache, which
   * hands them out first), then ask for aligned blocks of the same class */
  static void *al[4000];
  unsigned nal = 0;
  for (unsigned i = 0; i < 4000; i++)
    if (home_class(obj[i]) != ts_size_to_class(1000) && ((uintptr_t)obj[i] & 1023)) {
      expect_true(ts_test_check(obj[i], 1000));
      ts_free(obj[i]);
      obj[i] = NULL;
      nal++;
    }
  expect_true(nal > 0);
  for (unsigned i = 0; i < nal; i++) {
    al[i] = ts_aligned_alloc(1024, 1000);
    assert_true(al[i] != NULL);
    expect_ptr_aligned(al[i], 1024);
    ts_test_fill(al[i], 1000);
  }
  for (unsigned i = 0; i < nal; i++) {
    expect_true(ts_test_check(al[i], 1000));
    ts_free(al[i]);
  }
  for (unsigned i = 0; i < 4000; i++)
    if (obj[i]) {
      expect_true(ts_test_check(obj[i], 1000));
      ts_free(obj[i]);
    }
  ts_purge();
  free_holes(768);
  expect_no_foreign();
}

TS_TEST(realloc_keeps_or_moves_placed_objects) {
  make_holes(512, 24 << 20);
  unsigned placed = allocate(600, 2000);
  assert_true(placed > 0);
  for (unsigned i = 0; i < 2000; i++) {
    memset(obj[i], (int)(i & 0xFF), 600);
    void *q = ts_realloc(obj[i], 604); /* the same class (608 bytes): stays */
    expect_true(q == obj[i]);
    q = ts_realloc(obj[i], 3000); /* moves, with its first 600 bytes */
    assert_true(q != NULL);
    obj[i] = q;
  }
  for (unsigned i = 0; i < 2000; i++) {
    const unsigned char *b = obj[i];
    unsigned bad = 0;
    for (unsigned k = 0; k < 600; k++) bad += b[k] != (i & 0xFF);
    expect_eq(bad, 0);
    ts_free(obj[i]);
  }
  free_holes(512);
  expect_no_foreign();
}

/* A thread that allocated from the holes exits: its cache's unused
 * placed objects go back with the flush, the blocks it kept are freed by
 * the main thread. */
static void *worker(void *arg) {
  size_t size = (size_t)(uintptr_t)arg;
  for (unsigned i = 0; i < 500; i++) {
    void *p = ts_malloc(size);
    ts_test_fill(p, size);
    void *q = ts_malloc(size);
    ts_free(p);
    obj[i] = q;
    ts_test_fill(q, size);
  }
  return NULL;
}

TS_TEST(flushes_and_other_threads_give_placed_objects_back) {
  make_holes(512, 24 << 20);
  pthread_t t;
  assert_true(pthread_create(&t, NULL, worker, (void *)(uintptr_t)700) == 0);
  pthread_join(t, NULL);
  release(700, 500);
  free_holes(512);
  expect_no_foreign();
}

/* Holes in the calling thread's own arena (threads are bound to arenas
 * as they start, so the main thread's holes may not be theirs): 16 MiB of
 * 512-byte blocks, every other pair freed.  thread_holes_free() frees the
 * rest. */
enum { THREAD_HOLES = (16 << 20) / 512 };
static void **thread_holes(void) {
  void **mine = malloc(THREAD_HOLES * sizeof *mine); /* the test's own memory: glibc's */
  if (!mine) return NULL;
  for (unsigned i = 0; i < THREAD_HOLES; i++) mine[i] = ts_malloc(512);
  for (unsigned i = 0; i < THREAD_HOLES; i++)
    if (i & 2) ts_free(mine[i]), mine[i] = NULL;
  ts_purge();
  return mine;
}
static void thread_holes_free(void **mine) {
  for (unsigned i = 0; i < THREAD_HOLES && mine; i++) ts_free(mine[i]);
  free(mine);
}

/* Many threads, each churning its own blocks of 16..1024 bytes over a
 * heap with holes, every block checked before it is freed. */
enum { THREADS = 4, SLOTS = 4096, STEPS = 200000 };
static _Atomic unsigned churn_placed;
static void *churn(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void **mine = thread_holes();
  static __thread void *slot[SLOTS];
  static __thread size_t len[SLOTS];
  for (unsigned s = 0; s < STEPS; s++) {
    unsigned i = (unsigned)rand_r(&seed) % SLOTS;
    if (slot[i]) {
      if (!ts_test_check(slot[i], len[i])) {
        expect_true(0, "block of %zu bytes at %p changed", len[i], slot[i]);
        thread_holes_free(mine);
        return NULL;
      }
      ts_free(slot[i]);
      slot[i] = NULL;
    } else {
      len[i] = 16 + (size_t)rand_r(&seed) % 1009;
      slot[i] = ts_malloc(len[i]);
      ts_test_fill(slot[i], len[i]);
      if (home_class(slot[i]) != ts_size_to_class(len[i])) atomic_fetch_add(&churn_placed, 1);
    }
  }
  for (unsigned i = 0; i < SLOTS; i++)
    if (slot[i]) {
      expect_true(ts_test_check(slot[i], len[i]));
      ts_free(slot[i]);
    }
  thread_holes_free(mine);
  return NULL;
}

TS_TEST(threads_churn_with_content_checks) {
  pthread_t t[THREADS];
  for (unsigned i = 0; i < THREADS; i++)
    assert_true(pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1)) == 0);
  for (unsigned i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  expect_true(atomic_load(&churn_placed) > 1000, "%u blocks placed in other classes' slabs", atomic_load(&churn_placed));
  expect_no_foreign();
}

/* Blocks allocated by some threads and freed by others: placed objects
 * travel through other threads' caches and flushes, across arenas. */
enum { HANDOFF = 1024, HANDOFF_BLOCKS = 300000 };
static struct {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  void *block[HANDOFF];
  size_t len[HANDOFF];
  unsigned head, count, produced, consumed;
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
static _Atomic unsigned handoff_placed, handoff_bad;

static void *producer(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void **mine = thread_holes();
  for (;;) {
    size_t len = 16 + (size_t)rand_r(&seed) % 1009;
    void *p = ts_malloc(len);
    ts_test_fill(p, len);
    if (home_class(p) != ts_size_to_class(len)) atomic_fetch_add(&handoff_placed, 1);
    pthread_mutex_lock(&q.lock);
    while (q.count == HANDOFF && q.produced < HANDOFF_BLOCKS) pthread_cond_wait(&q.cond, &q.lock);
    if (q.produced == HANDOFF_BLOCKS) {
      pthread_mutex_unlock(&q.lock);
      ts_free(p);
      thread_holes_free(mine);
      return NULL;
    }
    unsigned slot = (q.head + q.count) % HANDOFF;
    q.block[slot] = p, q.len[slot] = len;
    q.count++, q.produced++;
    pthread_cond_broadcast(&q.cond);
    pthread_mutex_unlock(&q.lock);
  }
}

static void *consumer(void *arg) {
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&q.lock);
    while (q.count == 0 && q.consumed < HANDOFF_BLOCKS) pthread_cond_wait(&q.cond, &q.lock);
    if (q.consumed == HANDOFF_BLOCKS) {
      pthread_mutex_unlock(&q.lock);
      return NULL;
    }
    void *p = q.block[q.head];
    size_t len = q.len[q.head];
    q.head = (q.head + 1) % HANDOFF;
    q.count--, q.consumed++;
    pthread_cond_broadcast(&q.cond);
    pthread_mutex_unlock(&q.lock);
    if (!ts_test_check(p, len)) atomic_fetch_add(&handoff_bad, 1);
    ts_free(p);
  }
}

TS_TEST(blocks_freed_by_other_threads) {
  pthread_t t[4];
  for (unsigned i = 0; i < 2; i++) assert_true(pthread_create(&t[i], NULL, producer, (void *)(uintptr_t)(i + 7)) == 0);
  for (unsigned i = 2; i < 4; i++) assert_true(pthread_create(&t[i], NULL, consumer, NULL) == 0);
  for (unsigned i = 0; i < 4; i++) pthread_join(t[i], NULL);
  expect_eq(q.consumed, HANDOFF_BLOCKS);
  expect_eq(atomic_load(&handoff_bad), 0);
  expect_true(atomic_load(&handoff_placed) > 1000, "%u blocks placed in other classes' slabs",
              atomic_load(&handoff_placed));
  expect_no_foreign();
}

/* ---- misuse ---- */

static void *victim;
/* Caught at once or when the block reaches its slab (the flush that
 * ts_purge() makes), as anywhere in tessera. */
static void double_free(void) {
  ts_free(victim);
  ts_free(victim);
  ts_purge();
}
static void interior_free(void) {
  ts_free((char *)victim + 16);
  ts_purge();
}

/* Runs fn in a child; expects it to abort with a message that contains
 * want and names victim (or victim + 16). */
static void expect_death(void (*fn)(void), const char *want, const void *named) {
  int fds[2];
  assert_true(pipe(fds) == 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  char err[1024];
  size_t len = 0;
  ssize_t r;
  while (len < sizeof err - 1 && (r = read(fds[0], err + len, sizeof err - 1 - len)) > 0) len += (size_t)r;
  err[len] = 0;
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  expect_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "the child did not abort (status %d)", st);
  char ptr[32];
  snprintf(ptr, sizeof ptr, "%p", named);
  expect_true(strstr(err, want) && strstr(err, ptr), "stderr was \"%s\", wanted \"%s\" and %s", err, want, ptr);
}

TS_TEST(misuse_of_placed_objects_is_reported) {
  /* fork takes every bin lock: more than TSan's deadlock detector follows */
  if (TS_UNDER_TSAN) ts_skip("fork under TSan");
  make_holes(512, 24 << 20);
  allocate(1000, 2000);
  victim = NULL;
  for (unsigned i = 0; i < 2000 && !victim; i++)
    if (home_class(obj[i]) != ts_size_to_class(1000)) victim = obj[i];
  assert_true(victim != NULL);
  expect_death(double_free, "free(): ", victim); /* a double free, or an invalid pointer once its space was reused */
  expect_death(interior_free, "free(): invalid pointer", (char *)victim + 16);
  release(1000, 2000);
  free_holes(512);
  expect_no_foreign();
}

TS_TEST(the_option_keeps_classes_apart) {
  ts_opt.mixed_slabs = false;
  make_holes(512, 24 << 20);
  expect_eq(allocate(1000, 4000), 0);
  release(1000, 4000);
  free_holes(512);
  ts_opt.mixed_slabs = true;
  expect_no_foreign();
}

/* A chunk none of whose slabs ever hosted a placed object has never read
 * its mixed pointers: a read of a page never written maps the kernel's
 * zero page, which mincore (the ledger's residency) counts as resident
 * and RSS does not.  Slab runs freed (ts_purge releases the spare slabs)
 * used to read them for every run. */
TS_TEST(chunks_that_host_nothing_leave_their_mixed_pointers_untouched) {
  static void *blocks[3][2000];
  static const size_t sizes[3] = { 64, 512, 4096 };
  for (unsigned k = 0; k < 3; k++)
    for (unsigned i = 0; i < 2000; i++) assert_true((blocks[k][i] = ts_malloc(sizes[k])) != NULL);
  for (unsigned k = 0; k < 3; k++) /* the last of each kept: their chunk stays */
    for (unsigned i = 0; i < 1999; i++) ts_free(blocks[k][i]);
  ts_purge();
  unsigned checked = 0;
  for (ts_chunk_t *c = ts_thread_arena()->chunks; c; c = c->next) {
    if (__atomic_load_n(&c->has_mixed, __ATOMIC_RELAXED)) continue;
    uintptr_t lo = ((uintptr_t)&c->mixed[0] + TS_PAGE_SIZE - 1) & ~(uintptr_t)(TS_PAGE_SIZE - 1);
    uintptr_t hi = (uintptr_t)&c->mixed[TS_CHUNK_PAGES] & ~(uintptr_t)(TS_PAGE_SIZE - 1);
    unsigned char v[TS_CHUNK_PAGES * sizeof(void *) / TS_PAGE_SIZE];
    assert_true(hi > lo && mincore((void *)lo, hi - lo, v) == 0);
    for (unsigned i = 0; i < (hi - lo) / TS_PAGE_SIZE; i++)
      expect_true(!(v[i] & 1), "chunk %p: page %u of its mixed pointers is resident", (void *)c, i);
    checked++;
  }
  expect_true(checked > 0, "no chunk without placed objects to check");
  for (unsigned k = 0; k < 3; k++) ts_free(blocks[k][1999]);
}

int main(void) {
  if (!ts_opt.mixed_slabs || ts_opt.stats_exact) {
    printf("  skip: mixed slabs are off (TESSERA_CONF)\n");
    return 77;
  }
  ts_run(chunks_that_host_nothing_leave_their_mixed_pointers_untouched); /* first: before any placement */
  ts_run(a_bin_with_holes_refills_from_lone_slots_first);
  ts_run(a_search_for_lone_slots_that_finds_none_backs_off);
  ts_run(a_search_with_a_poor_yield_backs_off);
  ts_run(larger_objects_fill_the_holes_of_smaller_classes);
  ts_run(small_objects_fill_the_holes_of_larger_classes);
  ts_run(placement_prefers_runs_an_object_fills);
  ts_run(aligned_requests_stay_aligned);
  ts_run(aligned_requests_skip_placed_objects);
  ts_run(realloc_keeps_or_moves_placed_objects);
  ts_run(flushes_and_other_threads_give_placed_objects_back);
  ts_run(threads_churn_with_content_checks);
  ts_run(blocks_freed_by_other_threads);
  ts_run(misuse_of_placed_objects_is_reported);
  ts_run(the_option_keeps_classes_apart);
  return ts_test_done();
}
