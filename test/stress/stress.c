/* SPDX-License-Identifier: MIT */
/*
 * stress/stress.c: several threads allocate, check and free at random for a
 * bounded time (TS_STRESS_SECONDS, default 12).  Every block is filled with
 * a pattern derived from its address and size (ts_test_fill) and checked
 * (ts_test_check) before it is freed or reallocated.  The seed is printed;
 * TS_STRESS_SEED replays the same choices (not the same interleaving).  Blocks cross threads
 * through shared exchange slots; threads exit after a random lifetime and
 * new ones take their place, leaving blocks behind for others to free;
 * realloc must keep the contents.  Any mismatch fails the test.
 */
#include "test.h"
#include "tessera.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

enum {
  NTHREADS = 6,      /* running at once */
  LOCAL = 512,       /* blocks each thread holds */
  NSHARED = 256,     /* exchange slots */
  MAX_REPORTS = 20,
};

struct blk {
  void *p;
  size_t n;
};

static _Atomic(struct blk *) shared[NSHARED];
static atomic_long errors, alloc_failures, total_ops, reports;
static atomic_long n_realloc, n_cross, n_calloc, n_aligned;
static double deadline;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t xs(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  return *s = x;
}

static void report(const char *what, const void *p, size_t n) {
  atomic_fetch_add(&errors, 1);
  if (atomic_fetch_add(&reports, 1) < MAX_REPORTS) fprintf(stderr, "stress: %s: block %p, %zu bytes\n", what, p, n);
}

/* Mostly small, some medium, a few up to 1 MiB, rarely about 4 MiB. */
static size_t pick_size(uint64_t *s) {
  uint64_t r = xs(s);
  unsigned k = (unsigned)(r % 10000);
  size_t v = (size_t)(r >> 20);
  if (k < 8000) return 1 + v % 256;
  if (k < 9700) return 257 + v % (16 * KiB);
  if (k < 9980) return 16 * KiB + v % (240 * KiB);
  if (k < 9998) return 256 * KiB + v % (768 * KiB);
  return 4 * MiB - 32 * KiB + v % (64 * KiB);
}

/* A pattern that depends on a tag and the offset only: it survives a move. */
static void tag_fill(void *p, size_t n, uint64_t tag) {
  unsigned char *b = p;
  for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(((tag ^ i) * 0x9E3779B97F4A7C15ull) >> 56);
}

static int tag_check(const void *p, size_t n, uint64_t tag) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != (unsigned char)(((tag ^ i) * 0x9E3779B97F4A7C15ull) >> 56)) return 0;
  return 1;
}

static int all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

static void release(struct blk *b) {
  if (!b->p) return;
  if (!ts_test_check(b->p, b->n)) report("contents damaged before free", b->p, b->n);
  if (b->n & 1) free(b->p);
  else ts_free(b->p);
  b->p = NULL;
  b->n = 0;
}

static void acquire(struct blk *b, uint64_t *s) {
  size_t n = pick_size(s);
  uint64_t how = xs(s) % 32;
  void *p = NULL;
  if (how < 2) {
    p = (how & 1) ? calloc(1, n) : ts_calloc(n, 1);
    atomic_fetch_add_explicit(&n_calloc, 1, memory_order_relaxed);
    if (p && !all_zero(p, n)) report("calloc block not zeroed", p, n);
  } else if (how < 4) {
    size_t al = (size_t)16 << (xs(s) % 9);   /* 16 .. 4096 */
    if (how & 1) {
      if (ts_posix_memalign(&p, al, n) != 0) p = NULL;
    } else {
      p = aligned_alloc(al, n);
    }
    atomic_fetch_add_explicit(&n_aligned, 1, memory_order_relaxed);
    if (p && (uintptr_t)p % al) report("misaligned block", p, al);
  } else if (how < 16) {
    p = ts_malloc(n);
  } else {
    p = malloc(n);
  }
  if (!p) {
    atomic_fetch_add(&alloc_failures, 1);
    b->p = NULL;
    b->n = 0;
    return;
  }
  if ((uintptr_t)p % TS_MIN_ALIGN) report("block below minimum alignment", p, n);
  size_t u = ts_malloc_usable_size(p);
  if (u < n) report("usable size below request", p, n);
  else if (xs(s) % 16 == 0) n = u;   /* the whole usable size is writable */
  ts_test_fill(p, n);
  b->p = p;
  b->n = n;
}

static void regrow(struct blk *b, uint64_t *s) {
  if (!b->p) return;
  if (!ts_test_check(b->p, b->n)) {
    report("contents damaged before realloc", b->p, b->n);
    release(b);
    return;
  }
  uint64_t tag = xs(s);
  tag_fill(b->p, b->n, tag);
  size_t m;
  switch (xs(s) % 4) {
    case 0: m = b->n / 2 + 1; break;               /* shrink */
    case 1: m = b->n + 1 + xs(s) % 64; break;      /* grow a little */
    case 2: m = b->n * 2 + 1; break;               /* double */
    default: m = pick_size(s); break;
  }
  if (m > 8 * MiB) m = 8 * MiB;
  void *q = (m & 1) ? realloc(b->p, m) : ts_realloc(b->p, m);
  atomic_fetch_add_explicit(&n_realloc, 1, memory_order_relaxed);
  if (!q) {
    atomic_fetch_add(&alloc_failures, 1);
    ts_test_fill(b->p, b->n);   /* the old block is still ours */
    return;
  }
  size_t keep = b->n < m ? b->n : m;
  if (!tag_check(q, keep, tag)) report("realloc lost contents", q, keep);
  ts_test_fill(q, m);
  b->p = q;
  b->n = m;
}

/* Passes a block to whichever thread visits the slot next. */
static void cross(struct blk *b, uint64_t *s) {
  struct blk *m = ts_malloc(sizeof *m);
  if (!m) {
    atomic_fetch_add(&alloc_failures, 1);
    return;
  }
  *m = *b;
  b->p = NULL;
  b->n = 0;
  struct blk *old = atomic_exchange(&shared[xs(s) % NSHARED], m);
  atomic_fetch_add_explicit(&n_cross, 1, memory_order_relaxed);
  if (old) {
    /* Adopt it instead of freeing it at once, now and then. */
    if (!b->p && (xs(s) & 1)) {
      if (old->p && !ts_test_check(old->p, old->n)) report("contents damaged in exchange", old->p, old->n);
      *b = *old;
    } else {
      release(old);
    }
    free(old);
  }
}

struct slot {
  pthread_t th;
  int running;
  atomic_int done;
  uint64_t seed;
};

static void *worker(void *arg) {
  struct slot *sl = arg;
  uint64_t s = sl->seed;
  struct blk *local = calloc(LOCAL, sizeof *local);
  if (!local) {
    atomic_fetch_add(&alloc_failures, 1);
    atomic_store(&sl->done, 1);
    return NULL;
  }
  long life = 5000 + (long)(xs(&s) % 40000);
  long ops = 0;
  for (; ops < life; ops++) {
    if ((ops & 255) == 0 && now() > deadline) break;
    struct blk *b = &local[xs(&s) % LOCAL];
    unsigned op = (unsigned)(xs(&s) % 100);
    if (op < 60) {
      release(b);
      acquire(b, &s);
    } else if (op < 70) {
      regrow(b, &s);
    } else if (op < 82) {
      if (!b->p) acquire(b, &s);
      cross(b, &s);
    } else {
      release(b);
    }
  }
  /* Exit leaving blocks behind: half freed here, half left to others. */
  for (int i = 0; i < LOCAL; i++) {
    if (!local[i].p) continue;
    if (i & 1) release(&local[i]);
    else cross(&local[i], &s);
    if (local[i].p) release(&local[i]);
  }
  free(local);
  atomic_fetch_add(&total_ops, ops);
  atomic_store(&sl->done, 1);
  return NULL;
}

TS_TEST(stress) {
  double seconds = 12;
  const char *env = getenv("TS_STRESS_SECONDS");
  if (env && atof(env) > 0) seconds = atof(env);
  double start = now();
  deadline = start + seconds;
  static struct slot slots[NTHREADS];
  long started = 0;
  uint64_t seed = 0x5DEECE66Dull ^ (uint64_t)time(NULL);
  const char *seed_env = getenv("TS_STRESS_SEED");   /* to replay a run */
  if (seed_env && *seed_env) seed = strtoull(seed_env, NULL, 0);
  if (!seed) seed = 1;
  printf("  seed %llu, %.0f s, %d threads at a time\n", (unsigned long long)seed, seconds, NTHREADS);
  fflush(stdout);
  for (;;) {
    double t = now();
    int any_running = 0;
    for (int i = 0; i < NTHREADS; i++) {
      struct slot *sl = &slots[i];
      if (sl->running && atomic_load(&sl->done)) {
        pthread_join(sl->th, NULL);
        sl->running = 0;
      }
      if (!sl->running && t < deadline) {
        sl->seed = xs(&seed) | 1;
        atomic_store(&sl->done, 0);
        int rc = pthread_create(&sl->th, NULL, worker, sl);
        expect_eq(rc, 0);
        if (rc == 0) {
          sl->running = 1;
          started++;
        }
      }
      any_running |= sl->running;
    }
    if (!any_running && t >= deadline) break;
    /* A thread that is far past the deadline is stuck. */
    assert_true(t < deadline + 120, "threads did not finish 120 s after the deadline");
    usleep(2000);
  }
  for (int i = 0; i < NSHARED; i++) {
    struct blk *m = atomic_exchange(&shared[i], NULL);
    if (m) {
      release(m);
      free(m);
    }
  }
  printf("  %.1f s: %ld threads, %ld ops (%ld realloc, %ld cross-thread, %ld calloc, %ld aligned)\n",
         now() - start, started, atomic_load(&total_ops), atomic_load(&n_realloc), atomic_load(&n_cross),
         atomic_load(&n_calloc), atomic_load(&n_aligned));
  expect_eq(atomic_load(&errors), 0);
  expect_eq(atomic_load(&alloc_failures), 0);
  expect_true(started > NTHREADS, "no thread churn happened");
}

int main(void) {
  ts_run(stress);
  return ts_test_done();
}
