/* SPDX-License-Identifier: MIT */
/* Unit test of purge.c and the dirty maps in chunk.c: ts_purge() and the
 * deadline bring RSS back near live bytes, the dirty cap holds under a
 * burst, and the number of mappings stays bounded in a long random
 * workload.  RSS is read from /proc/self/statm. */
#include "internal.h"
#include "tessera.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Under ThreadSanitizer RSS includes its shadow memory, and every mapping
 * has shadow mappings: the RSS and mapping bounds cannot be checked there
 * (the tsan variant still runs the cap test and the other modules). */
#if defined(__SANITIZE_THREAD__)
#define TS_RSS_CHECKS 0
#else
#define TS_RSS_CHECKS 1
#endif

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

enum { NBLOCKS = 100000 };
static void *blocks[NBLOCKS];
static size_t sizes[NBLOCKS];

/* Allocates about 200 MiB of mixed small and large blocks, touching them. */
static size_t fill(unsigned seed) {
  size_t live = 0;
  srand(seed);
  for (int i = 0; i < NBLOCKS; i++) {
    size_t n = (rand() % 10 == 0) ? 4096 + (size_t)(rand() % 60000) : 16 + (size_t)(rand() % 2000);
    blocks[i] = ts_malloc(n);
    if (!blocks[i]) return 0;
    memset(blocks[i], 0xA5, n);
    sizes[i] = n;
    live += n;
  }
  return live;
}

/* Frees the blocks allocated first, all but the last 1/keep_share of them
 * (all when keep_share is 0); returns the live bytes left. */
static size_t drain(int keep_share) {
  size_t live = 0;
  for (int i = 0; i < NBLOCKS; i++) {
    if (keep_share && i >= NBLOCKS - NBLOCKS / keep_share) {
      live += sizes[i];
      continue;
    }
    ts_free(blocks[i]);
    blocks[i] = NULL;
  }
  return live;
}

static void free_rest(void) {
  for (int i = 0; i < NBLOCKS; i++)
    if (blocks[i]) ts_free(blocks[i]), blocks[i] = NULL;
}

/* After freeing everything, ts_purge() brings RSS within 16 MiB of where
 * it started, and reports the bytes it returned. */
TS_TEST(ts_purge_returns_freed_memory) {
  if (!TS_RSS_CHECKS) ts_skip("RSS includes ThreadSanitizer's shadow memory");
  /* run with TESSERA_CONF=dirty_max:1024G (CMakeLists): no cap, so the
   * freed pages are left to ts_purge */
  assert_true(ts_opt.dirty_max_bytes >= ((uint64_t)1 << 40), "TESSERA_CONF not applied");
  size_t start = ts_test_rss_bytes();
  size_t live = fill(1);
  assert_true(live > 0);
  size_t full = ts_test_rss_bytes();
  expect_true(full > start + live / 2, "rss %zu after filling %zu", full, live);
  drain(0);
  size_t before = ts_test_rss_bytes(); /* empty chunks went back as they emptied */
  size_t returned = ts_purge();
  size_t after = ts_test_rss_bytes();
  printf("  start %zu KiB, full %zu KiB, freed %zu KiB, after ts_purge %zu KiB, returned %zu KiB\n", start >> 10,
         full >> 10, before >> 10, after >> 10, returned >> 10);
  expect_true(returned > 0);
  /* what it says it returned is what RSS lost, give or take 2 MiB */
  expect_true(returned + (2u << 20) >= before - after, "returned %zu, rss fell %zu", returned, before - after);
  expect_true(returned <= before - after + (2u << 20), "returned %zu, rss fell %zu", returned, before - after);
  expect_true(after <= start + (16u << 20), "rss %zu KiB, start %zu KiB", after >> 10, start >> 10);
  expect_eq(ts_purge_dirty_pages(), 0);
}

/* With live data left, RSS after ts_purge() is within a stated bound of
 * it, when the program freed what it allocated first (as a phase ends):
 * live bytes times 1.25 plus 16 MiB.  (Blocks freed scattered all over
 * the heap leave pages that hold one live block: that is issue 3's
 * placement work, measured by the fragmentation benchmarks.) */
TS_TEST(ts_purge_bounds_rss_by_live) {
  if (!TS_RSS_CHECKS) ts_skip("RSS includes ThreadSanitizer's shadow memory");
  size_t start = ts_test_rss_bytes();
  fill(2);
  size_t live = drain(8); /* keep the last eighth */
  ts_purge();
  size_t after = ts_test_rss_bytes();
  printf("  live %zu KiB, rss above start %zu KiB\n", live >> 10, (after - start) >> 10);
  expect_true(after - start <= live + live / 4 + (16u << 20), "rss %zu KiB for %zu KiB live", (after - start) >> 10,
              live >> 10);
  free_rest();
  ts_purge();
}

/* The deadline: with no further allocator calls, RSS comes back within
 * 16 MiB of the start within 1.5 s (decay_ms 1000). */
TS_TEST(deadline_returns_memory_without_calls) {
  if (!TS_RSS_CHECKS) ts_skip("RSS includes ThreadSanitizer's shadow memory");
  if (!ts_opt.background_thread) ts_skip("background_thread is off");
  size_t start = ts_test_rss_bytes();
  fill(3);
  drain(0);
  /* the blocks this thread's cache still holds come back too: the purger
   * trims caches that stay unchanged for a tick */
  size_t t0 = ts_test_rss_bytes(), t;
  int waited = 0;
  do {
    sleep_ms(100);
    waited += 100;
    t = ts_test_rss_bytes();
  } while (t > start + (16u << 20) && waited < 1500);
  printf("  after free %zu KiB above start, after %d ms %zu KiB above start\n", (t0 - start) >> 10, waited,
         (t > start ? t - start : 0) >> 10);
  expect_true(t <= start + (16u << 20), "rss %zu KiB above start after %d ms", (t - start) >> 10, waited);
}

/* Idle thread caches are trimmed on the purger's clock: a thread that
 * filled its cache and then makes no allocator call at all sees it
 * flushed within two ticks (decay_ms), without any call of its own. */
static pthread_mutex_t idle_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t idle_cond = PTHREAD_COND_INITIALIZER;
static ts_tcache_t *idle_cache;
static size_t idle_held;
static bool idle_done;

static void *idle_thread(void *arg) {
  (void)arg;
  enum { PER_CLASS = 40 };
  static const size_t class_sizes[] = {16, 48, 128, 640, 2048, 9000};
  void *p[PER_CLASS];
  for (size_t k = 0; k < sizeof class_sizes / sizeof class_sizes[0]; k++) {
    for (int i = 0; i < PER_CLASS; i++) p[i] = ts_malloc(class_sizes[k]);
    for (int i = 0; i < PER_CLASS; i++) ts_free(p[i]);
  }
  ts_free(ts_malloc(100000)); /* a large run, cached too */
  pthread_mutex_lock(&idle_lock);
  idle_cache = &ts_tcache;
  idle_held = ts_tcache_held_bytes(&ts_tcache);
  pthread_cond_broadcast(&idle_cond);
  while (!idle_done) pthread_cond_wait(&idle_cond, &idle_lock); /* idle: no allocator call */
  pthread_mutex_unlock(&idle_lock);
  return NULL;
}

TS_TEST(idle_thread_cache_is_trimmed) {
  if (!ts_opt.background_thread) ts_skip("background_thread is off");
  ts_free(ts_malloc(1u << 20)); /* leaves dirty pages: the purger runs */
  pthread_t t;
  assert_eq(pthread_create(&t, NULL, idle_thread, NULL), 0);
  pthread_mutex_lock(&idle_lock);
  while (!idle_cache) pthread_cond_wait(&idle_cond, &idle_lock);
  pthread_mutex_unlock(&idle_lock);
  expect_true(idle_held >= 100000, "the thread's cache holds %zu bytes", idle_held);
  size_t held = idle_held;
  int waited = 0;
  while (held && waited < 3 * (int)ts_opt.decay_ms) {
    sleep_ms(50);
    waited += 50;
    held = ts_tcache_held_bytes(idle_cache);
  }
  printf("  idle thread's cache: %zu bytes, %zu after %d ms\n", idle_held, held, waited);
  expect_eq(held, 0);
  expect_true(waited <= (int)ts_opt.decay_ms + 200, "trimmed after %d ms (decay_ms %llu)", waited,
              (unsigned long long)ts_opt.decay_ms);
  pthread_mutex_lock(&idle_lock);
  idle_done = true;
  pthread_cond_broadcast(&idle_cond);
  pthread_mutex_unlock(&idle_lock);
  pthread_join(t, NULL);
}

/* The cap: a burst of frees never leaves an arena more dirty pages than
 * its cap. */
TS_TEST(dirty_cap_holds_under_burst) {
  /* run as "unit_purge cap" with TESSERA_CONF=dirty_max:32M (CMakeLists):
   * options are read once at start-up */
  assert_eq(ts_opt.dirty_max_bytes, 32u << 20);
  fill(4);
  size_t worst = 0;
  for (int i = 0; i < NBLOCKS; i++) {
    ts_free(blocks[i]);
    blocks[i] = NULL;
    if (i % 1000 == 0) {
      size_t d = 0;
      for (unsigned a = 0; a < ts_narenas; a++) {
        pthread_mutex_lock(&ts_arenas[a].lock);
        if (ts_arenas[a].dirty_pages > d) d = ts_arenas[a].dirty_pages;
        pthread_mutex_unlock(&ts_arenas[a].lock);
      }
      if (d > worst) worst = d;
    }
  }
  printf("  most dirty pages in one arena during the burst: %zu KiB (cap %llu KiB)\n", worst << 2,
         (unsigned long long)(ts_opt.dirty_max_bytes >> 10));
  expect_true((worst << TS_PAGE_SHIFT) <= ts_opt.dirty_max_bytes, "%zu pages", worst);
  ts_purge();
}

/* Mappings: tessera adds one per chunk and one per huge block at most, and
 * purging never splits them. */
TS_TEST(mappings_stay_bounded) {
  if (!TS_RSS_CHECKS) ts_skip("ThreadSanitizer maps shadow memory for every mapping");
  enum { SLOTS = 4000 };
  static void *slot[SLOTS];
  unsigned base = ts_test_mappings(), worst_excess = 0;
  srand(5);
  for (int step = 0; step < 200000; step++) {
    int i = rand() % SLOTS;
    ts_free(slot[i]);
    unsigned r = (unsigned)rand() % 1000;
    size_t n = r < 900 ? 16 + (size_t)(rand() % 4000) : r < 995 ? 40000 + (size_t)(rand() % 1000000)
                                                                : 3000000 + (size_t)(rand() % 5000000);
    slot[i] = ts_malloc(n);
    if (slot[i]) memset(slot[i], 1, n < 8192 ? n : 8192);
    if (step % 20000 == 0) ts_purge();
    if (step % 5000 == 0) {
      unsigned chunks = 0, huge = 0;
      for (unsigned a = 0; a < ts_narenas; a++) {
        pthread_mutex_lock(&ts_arenas[a].lock);
        for (ts_chunk_t *c = ts_arenas[a].chunks; c; c = c->next) chunks++;
        pthread_mutex_unlock(&ts_arenas[a].lock);
      }
      for (int k = 0; k < SLOTS; k++)
        if (slot[k] && ts_window_kind((uintptr_t)slot[k]) == TS_WINDOW_HUGE) huge++;
      unsigned now = ts_test_mappings();
      /* +4: the purger thread's stack and guard, and stdio's buffers */
      if (now > base + chunks + huge + 4) {
        expect_true(0, "step %d: %u mappings, base %u + %u chunks + %u huge", step, now, base, chunks, huge);
        break;
      }
      unsigned excess = now > base ? now - base : 0;
      if (excess > worst_excess) worst_excess = excess;
    }
  }
  printf("  most mappings above the start: %u\n", worst_excess);
  for (int i = 0; i < SLOTS; i++) ts_free(slot[i]);
  ts_purge();
}

int main(int argc, char **argv) {
  ts_init_slow();
  ts_free(ts_malloc(1)); /* set this thread up before measuring */
  if (argc > 1 && strcmp(argv[1], "cap") == 0) {
    ts_run(dirty_cap_holds_under_burst);
    return ts_test_done();
  }
  ts_run(ts_purge_returns_freed_memory);
  ts_run(ts_purge_bounds_rss_by_live);
  ts_run(deadline_returns_memory_without_calls);
  ts_run(idle_thread_cache_is_trimmed);
  ts_run(mappings_stay_bounded);
  return ts_test_done();
}
