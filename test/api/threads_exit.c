/* SPDX-License-Identifier: MIT */
/*
 * api/threads_exit.c: threads that allocate and exit while other threads
 * still hold, and later free, their memory; thread churn (many short-lived
 * threads, one after another and several at once); malloc and free inside
 * thread-specific-data destructors; detached threads.
 */
#include "test.h"
#include "tessera.h"

#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1024)

struct blk {
  void *p;
  size_t n;
};

static atomic_long corrupt;     /* blocks whose contents were damaged */
static atomic_long alloc_fail;  /* allocations that returned NULL */

static uint64_t xs(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  return *s = x;
}

/* Mostly small, some medium, a few large (up to 1 MiB). */
static size_t pick_size(uint64_t *s) {
  uint64_t r = xs(s);
  unsigned k = (unsigned)(r & 255);
  if (k < 200) return (size_t)(r >> 8) % 512;
  if (k < 252) return 512 + (size_t)(r >> 8) % (16 * KiB);
  if (k < 255) return 16 * KiB + (size_t)(r >> 8) % (240 * KiB);
  return 256 * KiB + (size_t)(r >> 8) % (768 * KiB);
}

static struct blk make(uint64_t *s) {
  struct blk b;
  b.n = pick_size(s);
  b.p = (xs(s) & 1) ? ts_malloc(b.n) : malloc(b.n);
  if (!b.p) { atomic_fetch_add(&alloc_fail, 1); b.n = 0; return b; }
  ts_test_fill(b.p, b.n);
  return b;
}

static void drop(struct blk b) {
  if (!b.p) return;
  if (!ts_test_check(b.p, b.n)) atomic_fetch_add(&corrupt, 1);
  if (b.n & 1) free(b.p);
  else ts_free(b.p);
}

/* Some allocation traffic private to the calling thread, to give it caches
 * that its exit has to dispose of. */
static void private_work(uint64_t *s, int ops) {
  enum { K = 32 };
  struct blk local[K];
  memset(local, 0, sizeof local);
  for (int i = 0; i < ops; i++) {
    int j = (int)(xs(s) % K);
    drop(local[j]);
    local[j] = make(s);
  }
  for (int j = 0; j < K; j++) drop(local[j]);
}

static void check_counters(void) {
  expect_eq(atomic_load(&corrupt), 0);
  expect_eq(atomic_load(&alloc_fail), 0);
  atomic_store(&corrupt, 0);
  atomic_store(&alloc_fail, 0);
}

/* ---- many threads, each with many live small blocks at once ---- */

enum { NMANY = 8, MANY_BLOCKS = 40000 };
static pthread_barrier_t many_barrier;

static void *many_small(void *arg) {
  int id = (int)(intptr_t)arg;
  uint64_t s = 0x94D049BB133111EBull * (uint64_t)(id + 1);
  struct blk *v = malloc(MANY_BLOCKS * sizeof *v);
  if (!v) { atomic_fetch_add(&alloc_fail, 1); pthread_barrier_wait(&many_barrier); pthread_barrier_wait(&many_barrier); return NULL; }
  for (int i = 0; i < MANY_BLOCKS; i++) {
    v[i].n = 2 + (size_t)(xs(&s) % 40);
    v[i].p = malloc(v[i].n);
    if (!v[i].p) { atomic_fetch_add(&alloc_fail, 1); v[i].n = 0; continue; }
    ts_test_fill(v[i].p, v[i].n);
  }
  /* Every thread's blocks are live now: none may overlap another's. */
  pthread_barrier_wait(&many_barrier);
  for (int i = 0; i < MANY_BLOCKS; i++)
    if (v[i].p && !ts_test_check(v[i].p, v[i].n)) atomic_fetch_add(&corrupt, 1);
  pthread_barrier_wait(&many_barrier);
  for (int i = 0; i < MANY_BLOCKS; i++) drop(v[i]);
  free(v);
  return NULL;
}

TS_TEST(many_threads_many_blocks) {
  /* Also fills and empties glibc's cache of thread stacks, whose TLS
   * vectors were allocated by the creating thread and are freed at join. */
  for (int round = 0; round < 3; round++) {
    assert_eq(pthread_barrier_init(&many_barrier, NULL, NMANY + 1), 0);
    pthread_t t[NMANY];
    for (int i = 0; i < NMANY; i++)
      assert_eq(pthread_create(&t[i], NULL, many_small, (void *)(intptr_t)(i + round * NMANY)), 0);
    /* The main thread allocates while they do. */
    uint64_t s = 77 + (uint64_t)round;
    void *mine[256];
    for (int i = 0; i < 256; i++) {
      size_t n = 1 + (size_t)(xs(&s) % 300);
      mine[i] = ts_malloc(n);
      if (mine[i]) memset(mine[i], 0xAB, n);
    }
    pthread_barrier_wait(&many_barrier);
    pthread_barrier_wait(&many_barrier);
    for (int i = 0; i < NMANY; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 256; i++) ts_free(mine[i]);
    pthread_barrier_destroy(&many_barrier);
  }
  check_counters();
}

/* ---- owners exit, others free later ---- */

enum { NOWN = 8, PER = 96 };
static struct blk held[NOWN][PER];

static void *owner(void *arg) {
  int id = (int)(intptr_t)arg;
  uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1);
  private_work(&s, 300);
  for (int i = 0; i < PER; i++) held[id][i] = make(&s);
  private_work(&s, 100);
  return NULL;
}

static void *heir(void *arg) {
  int id = (int)(intptr_t)arg;
  uint64_t s = 0xC2B2AE3D27D4EB4Full * (uint64_t)(id + 1);
  int victim = (id + 3) % NOWN;
  for (int i = 0; i < PER; i++) {
    drop(held[victim][i]);
    held[victim][i].p = NULL;
    if (i % 8 == 0) private_work(&s, 20);
  }
  return NULL;
}

TS_TEST(exit_while_held) {
  for (int round = 0; round < 5; round++) {
    pthread_t t[NOWN];
    for (int i = 0; i < NOWN; i++)
      assert_eq(pthread_create(&t[i], NULL, owner, (void *)(intptr_t)i), 0);
    for (int i = 0; i < NOWN; i++) pthread_join(t[i], NULL);
    /* All owners are gone; their blocks are intact. */
    for (int i = 0; i < NOWN; i++)
      for (int j = 0; j < PER; j++)
        if (held[i][j].p && !ts_test_check(held[i][j].p, held[i][j].n)) atomic_fetch_add(&corrupt, 1);
    /* Half the rounds: new threads free them; the other half: main does. */
    if (round % 2 == 0) {
      for (int i = 0; i < NOWN; i++)
        assert_eq(pthread_create(&t[i], NULL, heir, (void *)(intptr_t)i), 0);
      for (int i = 0; i < NOWN; i++) pthread_join(t[i], NULL);
    } else {
      for (int i = 0; i < NOWN; i++)
        for (int j = 0; j < PER; j++) { drop(held[i][j]); held[i][j].p = NULL; }
    }
  }
  check_counters();
}

/* ---- producers hand blocks over and exit while consumers free them ---- */

enum { NSLOT = 128, NPROD = 6, NCONS = 2, PROD_BLOCKS = 400 };
static _Atomic(struct blk *) slots[NSLOT];
static atomic_long consumed;
static atomic_int producers_left;

static void *producer(void *arg) {
  int id = (int)(intptr_t)arg;
  uint64_t s = 0xD6E8FEB86659FD93ull * (uint64_t)(id + 7);
  for (int i = 0; i < PROD_BLOCKS; i++) {
    struct blk *m = ts_malloc(sizeof *m);
    if (!m) { atomic_fetch_add(&alloc_fail, 1); continue; }
    *m = make(&s);
    /* Wait for a free slot (consumers are running). */
    for (unsigned k = (unsigned)xs(&s);; k++) {
      struct blk *expected = NULL;
      if (atomic_compare_exchange_weak(&slots[k % NSLOT], &expected, m)) break;
      if (k % NSLOT == 0) sched_yield();
    }
  }
  atomic_fetch_sub(&producers_left, 1);
  return NULL;   /* exits while its blocks are still being consumed */
}

static void *consumer(void *arg) {
  (void)arg;
  for (;;) {
    int got = 0;
    for (int i = 0; i < NSLOT; i++) {
      struct blk *m = atomic_exchange(&slots[i], NULL);
      if (!m) continue;
      got = 1;
      drop(*m);
      ts_free(m);   /* the message itself: freed by a thread that did not allocate it */
      atomic_fetch_add(&consumed, 1);
    }
    if (!got) {
      if (atomic_load(&producers_left) == 0) {
        /* one more sweep, since a producer may have stored after ours */
        int any = 0;
        for (int i = 0; i < NSLOT; i++) if (atomic_load(&slots[i])) any = 1;
        if (!any) break;
      }
      sched_yield();
    }
  }
  return NULL;
}

TS_TEST(handoff_while_exiting) {
  for (int round = 0; round < 4; round++) {
    atomic_store(&consumed, 0);
    atomic_store(&producers_left, NPROD);
    pthread_t c[NCONS], p[NPROD];
    for (int i = 0; i < NCONS; i++) assert_eq(pthread_create(&c[i], NULL, consumer, NULL), 0);
    for (int i = 0; i < NPROD; i++)
      assert_eq(pthread_create(&p[i], NULL, producer, (void *)(intptr_t)(i + round * NPROD)), 0);
    for (int i = 0; i < NPROD; i++) pthread_join(p[i], NULL);
    for (int i = 0; i < NCONS; i++) pthread_join(c[i], NULL);
    expect_eq(atomic_load(&consumed), (long)NPROD * PROD_BLOCKS - atomic_load(&alloc_fail));
  }
  check_counters();
}

/* ---- churn: many short-lived threads ---- */

enum { BATON = 24 };

struct churn_arg {
  struct blk in[BATON];    /* left by the previous thread, freed by this one */
  struct blk out[BATON];   /* left by this thread for the next one */
  uint64_t seed;
};

static void *churn_thread(void *arg) {
  struct churn_arg *a = arg;
  uint64_t s = a->seed;
  for (int i = 0; i < BATON; i++) {
    drop(a->in[i]);
    a->in[i].p = NULL;
  }
  private_work(&s, 400);
  for (int i = 0; i < BATON; i++) a->out[i] = make(&s);
  return NULL;
}

TS_TEST(churn_sequential) {
  static struct churn_arg a;
  memset(&a, 0, sizeof a);
  for (int t = 0; t < 200; t++) {
    a.seed = 0x2545F4914F6CDD1Dull + (uint64_t)t * 0x9E3779B97F4A7C15ull;
    pthread_t th;
    assert_eq(pthread_create(&th, NULL, churn_thread, &a), 0);
    pthread_join(th, NULL);
    memcpy(a.in, a.out, sizeof a.in);
    memset(a.out, 0, sizeof a.out);
  }
  for (int i = 0; i < BATON; i++) drop(a.in[i]);
  check_counters();
}

/* Up to 8 threads at a time, 200 in all; each takes the blocks of a thread
 * that finished before it (possibly long gone) through shared slots. */
enum { CONC = 8, CHURN_TOTAL = 200, XSLOT = 64 };
static _Atomic(struct blk *) xslots[XSLOT];

struct conc_arg {
  uint64_t seed;
  atomic_int done;
};

static void *conc_thread(void *arg) {
  struct conc_arg *a = arg;
  uint64_t s = a->seed;
  for (int i = 0; i < 16; i++) {
    struct blk *m = atomic_exchange(&xslots[xs(&s) % XSLOT], NULL);
    if (m) { drop(*m); free(m); }
  }
  private_work(&s, 300);
  for (int i = 0; i < 16; i++) {
    struct blk *m = malloc(sizeof *m);
    if (!m) { atomic_fetch_add(&alloc_fail, 1); continue; }
    *m = make(&s);
    struct blk *old = atomic_exchange(&xslots[xs(&s) % XSLOT], m);
    if (old) { drop(*old); ts_free(old); }
  }
  atomic_store(&a->done, 1);
  return NULL;
}

TS_TEST(churn_concurrent) {
  static struct conc_arg args[CONC];
  pthread_t th[CONC];
  int running[CONC] = {0};
  int started = 0, finished = 0;
  time_t deadline = time(NULL) + 120;
  while (finished < CHURN_TOTAL) {
    for (int i = 0; i < CONC; i++) {
      if (running[i] && atomic_load(&args[i].done)) {
        pthread_join(th[i], NULL);
        running[i] = 0;
        finished++;
      }
      if (!running[i] && started < CHURN_TOTAL) {
        args[i].seed = 0x853C49E6748FEA9Bull * (uint64_t)(started + 1);
        atomic_store(&args[i].done, 0);
        assert_eq(pthread_create(&th[i], NULL, conc_thread, &args[i]), 0);
        running[i] = 1;
        started++;
      }
    }
    usleep(200);
    assert_true(time(NULL) < deadline, "churn did not finish in time (%d of %d)", finished, CHURN_TOTAL);
  }
  for (int i = 0; i < XSLOT; i++) {
    struct blk *m = atomic_exchange(&xslots[i], NULL);
    if (m) { drop(*m); free(m); }
  }
  check_counters();
}

/* ---- malloc and free in thread-specific-data destructors ---- */

static pthread_key_t key;
static _Atomic(struct blk *) dtor_out[64];
static atomic_int dtor_calls;

static void dtor(void *v) {
  struct blk *b = v;
  atomic_fetch_add(&dtor_calls, 1);
  int second = b->n == 0;   /* the value re-armed by the first call */
  int idx = (int)(((uintptr_t)b >> 4) % 64);
  drop(*b);
  ts_free(b);
  uint64_t s = (uint64_t)(uintptr_t)v | 1;
  private_work(&s, 50);
  struct blk *out = malloc(sizeof *out);
  if (!out) { atomic_fetch_add(&alloc_fail, 1); return; }
  *out = make(&s);
  struct blk *old = atomic_exchange(&dtor_out[idx], out);
  if (old) { drop(*old); free(old); }
  if (!second) {
    /* Re-arm: the destructor runs again for the new value. */
    struct blk *again = ts_malloc(sizeof *again);
    if (!again) { atomic_fetch_add(&alloc_fail, 1); return; }
    again->p = ts_malloc(0);
    again->n = 0;
    pthread_setspecific(key, again);
  }
}

static void *tsd_thread(void *arg) {
  uint64_t s = (uint64_t)(uintptr_t)arg * 0x9E3779B97F4A7C15ull + 1;
  private_work(&s, 200);
  struct blk *b = malloc(sizeof *b);
  if (!b) { atomic_fetch_add(&alloc_fail, 1); return NULL; }
  do { *b = make(&s); if (b->n == 0) drop(*b); } while (b->n == 0);
  pthread_setspecific(key, b);
  return NULL;
}

TS_TEST(tsd_destructor_allocates) {
  assert_eq(pthread_key_create(&key, dtor), 0);
  atomic_store(&dtor_calls, 0);
  for (int round = 0; round < 20; round++) {
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
      assert_eq(pthread_create(&t[i], NULL, tsd_thread, (void *)(intptr_t)(round * 4 + i + 1)), 0);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  }
  expect_eq(atomic_load(&dtor_calls), 20 * 4 * 2);
  for (int i = 0; i < 64; i++) {
    struct blk *m = atomic_exchange(&dtor_out[i], NULL);
    if (m) { drop(*m); free(m); }
  }
  pthread_key_delete(key);
  check_counters();
}

/* ---- a thread's first allocation in the last round of destructors ----
 * The library's key was created before this one, so in the last round its
 * slot has been passed when this key's destructor makes the thread's
 * cache: the cache's destructor never runs.  The next threads get the
 * same stacks, so the same TLS address for their caches.  Before the
 * registry kept (cache, thread) pairs, that TLS held its links, and
 * ts_stats_get() looped for ever in the broken list. */

static pthread_key_t late_key;
static atomic_int late_allocs;

static void late_dtor(void *v) {
  uintptr_t round = (uintptr_t)v;
  if (round < PTHREAD_DESTRUCTOR_ITERATIONS) {
    pthread_setspecific(late_key, (void *)(round + 1)); /* no allocation: keys below 32 are in the thread */
    return;
  }
  char *p = malloc(100);
  if (!p) { atomic_fetch_add(&alloc_fail, 1); return; }
  memset(p, 0x5A, 100);
  free(p);
  atomic_fetch_add(&late_allocs, 1);
}

static void *late_thread(void *arg) {
  (void)arg;
  pthread_setspecific(late_key, (void *)1);
  return NULL;
}

static void *plain_thread(void *arg) {
  uint64_t s = (uint64_t)(uintptr_t)arg | 1;
  private_work(&s, 20);
  return NULL;
}

static uint64_t threads_bound(void) {
  ts_stats_t st;
  int rc = ts_stats_get(&st);
  expect_true(rc == 0, "ts_stats_get: %d", rc);
  if (rc != 0) return 0;
  uint64_t n = 0;
  for (int a = 0; a < TS_STATS_ARENAS; a++) n += st.arenas[a].threads;
  return n;
}

static void watchdog(int sig) {
  (void)sig;
  static const char msg[] = "threads_exit: hung after caches made in the last round of destructors\n";
  ssize_t w = write(2, msg, sizeof msg - 1);
  (void)w;
  _exit(1);
}

TS_TEST(first_allocation_in_last_destructor_round) {
  assert_eq(pthread_key_create(&late_key, late_dtor), 0);
  atomic_store(&late_allocs, 0);
  uint64_t before = threads_bound();
  signal(SIGALRM, watchdog);
  alarm(60);
  for (int i = 0; i < 40; i++) {
    pthread_t t;
    assert_eq(pthread_create(&t, NULL, (i % 2) ? plain_thread : late_thread, (void *)(intptr_t)(i + 1)), 0);
    pthread_join(t, NULL);
    if (i % 8 == 7) (void)threads_bound(); /* walks the registry */
  }
  expect_eq(atomic_load(&late_allocs), 20);
  /* the first walk drops the gone threads' entries and their bindings */
  (void)threads_bound();
  expect_eq(threads_bound(), before);
  usleep(1200000); /* purger ticks walk the registry too */
  expect_eq(threads_bound(), before);
  /* a fork right after a late thread: the parent prunes before it forks,
   * the child keeps only its own cache and can walk its table */
  pthread_t t;
  assert_eq(pthread_create(&t, NULL, late_thread, NULL), 0);
  pthread_join(t, NULL);
  pid_t pid = fork();
  assert_true(pid >= 0, "fork");
  if (pid == 0) {
    void *p = malloc(100);
    free(p);
    _exit(threads_bound() == 1 ? 0 : 3);
  }
  int status = 0;
  assert_eq(waitpid(pid, &status, 0), pid);
  expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  alarm(0);
  signal(SIGALRM, SIG_DFL);
  pthread_key_delete(late_key);
  check_counters();
}

/* ---- detached threads ---- */

enum { NDET = 64 };
static _Atomic(struct blk *) det_out[NDET];
static atomic_int det_left;

static void *detached(void *arg) {
  int id = (int)(intptr_t)arg;
  uint64_t s = 0xA0761D6478BD642Full * (uint64_t)(id + 1);
  private_work(&s, 100);
  struct blk *m = ts_malloc(sizeof *m);
  if (m) *m = make(&s);
  else atomic_fetch_add(&alloc_fail, 1);
  atomic_store(&det_out[id], m);
  atomic_fetch_sub(&det_left, 1);
  return NULL;
}

TS_TEST(detached_threads) {
  atomic_store(&det_left, NDET);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  for (int i = 0; i < NDET; i++) {
    pthread_t t;
    assert_eq(pthread_create(&t, &attr, detached, (void *)(intptr_t)i), 0);
  }
  pthread_attr_destroy(&attr);
  for (int w = 0; w < 30000 && atomic_load(&det_left) > 0; w++) usleep(1000);
  assert_eq(atomic_load(&det_left), 0);
  usleep(20000);   /* let the last ones get through their exit */
  for (int i = 0; i < NDET; i++) {
    struct blk *m = atomic_exchange(&det_out[i], NULL);
    if (m) { drop(*m); ts_free(m); }
  }
  check_counters();
}

int main(void) {
  ts_run(many_threads_many_blocks);
  ts_run(exit_while_held);
  ts_run(handoff_while_exiting);
  ts_run(churn_sequential);
  ts_run(churn_concurrent);
  ts_run(tsd_destructor_allocates);
  ts_run(detached_threads);
  ts_run(first_allocation_in_last_destructor_round);
  return ts_test_done();
}
