/* SPDX-License-Identifier: MIT */
/*
 * api/fork.c: fork() from a process whose other threads are hammering the
 * allocator.  Each child must be able to allocate and free freely (small,
 * large and huge blocks), free blocks that the parent's threads allocated
 * before the fork, start threads of its own and fork again; it exits 0.
 * A child that hangs is killed by its alarm() and reported.
 */
#include "test.h"
#include "tessera.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

struct blk {
  void *p;
  size_t n;
};

static uint64_t xs(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  return *s = x;
}

static size_t pick_size(uint64_t *s, int allow_huge) {
  uint64_t r = xs(s);
  unsigned k = (unsigned)(r % 1000);
  if (k < 800) return (size_t)(r >> 16) % 256;
  if (k < 960) return 256 + (size_t)(r >> 16) % (32 * KiB);
  if (k < 998 || !allow_huge) return 32 * KiB + (size_t)(r >> 16) % (96 * KiB);
  return (k & 1 ? 3 : 9) * MiB + (size_t)(r >> 16) % 4096;
}

/* Allocates with one of several entry points; returns 0 on failure. */
static int make(struct blk *b, uint64_t *s, int allow_huge) {
  size_t n = pick_size(s, allow_huge);
  void *p = NULL;
  switch (xs(s) % 5) {
    case 0: p = ts_calloc(1, n); break;
    case 1: if (ts_posix_memalign(&p, 64, n) != 0) p = NULL; break;
    case 2: p = ts_malloc(n); break;
    default: p = malloc(n); break;
  }
  if (!p) { b->p = NULL; b->n = 0; return 0; }
  ts_test_fill(p, n);
  b->p = p;
  b->n = n;
  return 1;
}

/* Checks and frees; returns 0 when the contents were damaged. */
static int drop(struct blk *b) {
  int ok = 1;
  if (!b->p) return 1;
  if (!ts_test_check(b->p, b->n)) ok = 0;
  if (b->n & 1) free(b->p);
  else ts_free(b->p);
  b->p = NULL;
  return ok;
}

/* Replaces a block through realloc; returns 0 on damage or failure. */
static int regrow(struct blk *b, uint64_t *s) {
  if (!b->p) return 1;
  if (!ts_test_check(b->p, b->n)) return 0;
  size_t n = pick_size(s, 0) + 1;   /* realloc to 0 would free the block */
  void *q = ts_realloc(b->p, n);
  if (!q) return 0;
  ts_test_fill(q, n);
  b->p = q;
  b->n = n;
  return 1;
}

enum { NSHARED = 64, LOCAL = 48 };
static _Atomic(struct blk *) shared[NSHARED];

/* ops operations (or until *stop) of mixed traffic; returns the error count. */
static long traffic(uint64_t *s, long ops, atomic_int *stop, int allow_huge) {
  struct blk local[LOCAL];
  memset(local, 0, sizeof local);
  long err = 0;
  for (long i = 0; (ops < 0 || i < ops) && !(stop && atomic_load_explicit(stop, memory_order_relaxed)); i++) {
    int j = (int)(xs(s) % LOCAL);
    uint64_t op = xs(s) % 16;
    if (op < 11) {
      if (!drop(&local[j])) err++;
      if (!make(&local[j], s, allow_huge)) err++;
    } else if (op < 13) {
      if (!regrow(&local[j], s)) err++;
    } else {
      /* Pass a block to whoever visits this slot next. */
      struct blk *m = ts_malloc(sizeof *m);
      if (!m) { err++; continue; }
      *m = local[j];
      local[j].p = NULL;
      struct blk *old = atomic_exchange(&shared[xs(s) % NSHARED], m);
      if (old) {
        if (!drop(old)) err++;
        free(old);
      }
    }
  }
  for (int j = 0; j < LOCAL; j++)
    if (!drop(&local[j])) err++;
  return err;
}

static atomic_int stop_workers;
static atomic_int pause_workers;   /* set while a child runs, to leave it the CPU */
static atomic_long worker_errors;

static void *worker(void *arg) {
  uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)((intptr_t)arg + 1);
  while (!atomic_load(&stop_workers)) {
    atomic_fetch_add(&worker_errors, traffic(&s, 500, &stop_workers, 0));
    while (atomic_load(&pause_workers) && !atomic_load(&stop_workers)) usleep(1000);
  }
  return NULL;
}

/* Blocks the main thread allocated before any fork. */
enum { NPRE = 300 };
static struct blk pre[NPRE];

static void *child_thread(void *arg) {
  uint64_t s = (uint64_t)(uintptr_t)arg * 0xD1B54A32D192ED03ull + 11;
  return (void *)(intptr_t)traffic(&s, 3000, NULL, 0);
}

/* Waits up to `seconds` for pid; kills it when it does not finish. */
static int wait_child(pid_t pid, int seconds, int *status) {
  for (long i = 0; i < (long)seconds * 200; i++) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return 1;
    if (r < 0 && errno != EINTR) return -1;
    usleep(5000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, status, 0);
  return 0;
}

static void describe(const char *who, int st) {
  if (WIFEXITED(st)) printf("  %s exited with %d\n", who, WEXITSTATUS(st));
  else if (WIFSIGNALED(st)) printf("  %s killed by signal %d (%s)\n", who, WTERMSIG(st), strsignal(WTERMSIG(st)));
}

/* Everything a child does; returns its exit code. */
static int child_main(int iter, int check_pre) {
  alarm(30);   /* a deadlock in the allocator must not hang the test */
  long err = 0;
  uint64_t s = 0x94D049BB133111EBull * (uint64_t)(iter + 1);
  /* The parent's blocks are all there; free them here. */
  if (check_pre)
    for (int i = 0; i < NPRE; i++)
      if (!drop(&pre[i])) { err++; fprintf(stderr, "child %d: pre-fork block %d damaged\n", iter, i); }
  /* Blocks other threads of the parent passed around are usable too. */
  for (int i = 0; i < NSHARED; i++) {
    struct blk *m = atomic_exchange(&shared[i], NULL);
    if (m) {
      if (!drop(m)) { err++; fprintf(stderr, "child %d: shared block damaged\n", iter); }
      ts_free(m);
    }
  }
  err += traffic(&s, 10000, NULL, 1);
  /* Huge blocks, explicitly. */
  static const size_t huge[] = {3 * MiB, 20 * MiB + 5, 64 * MiB};
  for (size_t k = 0; k < sizeof huge / sizeof huge[0]; k++) {
    struct blk b = {ts_malloc(huge[k]), huge[k]};
    if (!b.p) { err++; continue; }
    ts_test_fill(b.p, b.n);
    if (!drop(&b)) err++;
  }
  /* Threads started after the fork. */
  pthread_t t[2];
  int nt = 0;
  for (int i = 0; i < 2; i++)
    if (pthread_create(&t[nt], NULL, child_thread, (void *)(intptr_t)(iter * 2 + i + 1)) == 0) nt++;
    else err++;
  for (int i = 0; i < nt; i++) {
    void *r;
    pthread_join(t[i], &r);
    err += (long)(intptr_t)r;
  }
  /* Now and then a grandchild. */
  if (iter % 5 == 0) {
    fflush(stdout);
    fflush(stderr);
    pid_t g = fork();
    if (g == 0) {
      alarm(20);
      uint64_t gs = s ^ 0xABCDEF;
      _exit(traffic(&gs, 5000, NULL, 1) ? 1 : 0);
    }
    int st = 0;
    if (g < 0 || wait_child(g, 40, &st) != 1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "child %d: grandchild failed (status 0x%x)\n", iter, st);
      err++;
    }
  }
  if (err) fprintf(stderr, "child %d: %ld errors\n", iter, err);
  return err ? 1 : 0;
}

static void make_pre(void) {
  uint64_t s = 12345;
  for (int i = 0; i < NPRE; i++) {
    if (!make(&pre[i], &s, 1)) pre[i].p = NULL;
  }
}

static void free_pre(void) {
  int bad = 0;
  for (int i = 0; i < NPRE; i++)
    if (!drop(&pre[i])) bad++;
  expect_eq(bad, 0);
}

static int fork_and_check(int iter, int check_pre) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) exit(child_main(iter, check_pre));
  atomic_store(&pause_workers, 1);
  int st = 0;
  int r = wait_child(pid, 60, &st);
  atomic_store(&pause_workers, 0);
  if (r != 1) {
    printf("  child %d did not finish (killed)\n", iter);
    return 0;
  }
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    char who[32];
    snprintf(who, sizeof who, "child %d", iter);
    describe(who, st);
    return 0;
  }
  return 1;
}

static void drain_shared(void) {
  for (int i = 0; i < NSHARED; i++) {
    struct blk *m = atomic_exchange(&shared[i], NULL);
    if (m) {
      expect_true(drop(m), "shared block damaged");
      free(m);
    }
  }
}

enum { NWORK = 4, NFORK = 20 };

TS_TEST(fork_while_threads_hammer) {
  make_pre();
  atomic_store(&stop_workers, 0);
  atomic_store(&worker_errors, 0);
  pthread_t w[NWORK];
  for (int i = 0; i < NWORK; i++) assert_eq(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)i), 0);
  int good = 0;
  for (int i = 0; i < NFORK; i++) {
    usleep(20000);   /* let the workers get going */
    int r = fork_and_check(i, 1);
    expect_true(r == 1, "fork %d failed", i);
    good += r == 1;
    /* The parent itself keeps allocating between forks. */
    uint64_t s = (uint64_t)i + 77;
    expect_eq(traffic(&s, 2000, NULL, 0), 0);
  }
  atomic_store(&stop_workers, 1);
  for (int i = 0; i < NWORK; i++) pthread_join(w[i], NULL);
  expect_eq(good, NFORK);
  expect_eq(atomic_load(&worker_errors), 0);
  drain_shared();
  free_pre();
}

struct forker_result {
  int good;
};

static void *forker(void *arg) {
  struct forker_result *res = arg;
  for (int i = 0; i < 6; i++) {
    usleep(10000);
    res->good += fork_and_check(100 + i, 0) == 1;
  }
  return NULL;
}

TS_TEST(fork_from_other_thread) {
  atomic_store(&stop_workers, 0);
  atomic_store(&worker_errors, 0);
  pthread_t w[NWORK], f;
  for (int i = 0; i < NWORK; i++) assert_eq(pthread_create(&w[i], NULL, worker, (void *)(intptr_t)(i + 10)), 0);
  struct forker_result res = {0};
  assert_eq(pthread_create(&f, NULL, forker, &res), 0);
  /* The main thread hammers too while another thread forks. */
  uint64_t s = 4242;
  long err = 0;
  for (int k = 0; k < 20; k++) err += traffic(&s, 1000, NULL, 0);
  pthread_join(f, NULL);
  atomic_store(&stop_workers, 1);
  for (int i = 0; i < NWORK; i++) pthread_join(w[i], NULL);
  expect_eq(err, 0);
  expect_eq(res.good, 6);
  expect_eq(atomic_load(&worker_errors), 0);
  drain_shared();
}

int main(void) {
  ts_run(fork_while_threads_hammer);
  ts_run(fork_from_other_thread);
  return ts_test_done();
}
