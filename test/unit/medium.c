/* SPDX-License-Identifier: MIT */
/* Unit test of medium.c: blocks of 4 to 64 KiB in regions of 256-byte
 * granules.  Run with TESSERA_CONF=medium:true (CMakeLists): sizes round to
 * granules, neighbours coalesce so that space freed by one size serves
 * another, realloc grows and shrinks in place, free pages inside regions
 * go back to the OS, bad frees are reported, and threads that free each
 * other's blocks keep every block's contents. */
#include "internal.h"
#include "tessera.h"
#include "test.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define GRANULE ((size_t)1 << TS_MEDIUM_GRANULE_SHIFT)

static size_t granules_of(size_t n) { return (n + GRANULE - 1) / GRANULE * GRANULE; }

static bool in_region(const void *p) {
  ts_chunk_t *c = ts_chunk_of(p);
  return ts_window_kind((uintptr_t)p) == TS_WINDOW_CHUNK && ts_chunk_code(c, ts_chunk_page_of(p)) == TS_PAGE_MEDIUM;
}

TS_TEST(sizes_round_to_granules) {
  ts_free(ts_malloc(1)); /* options are read at the first call */
  assert_true(ts_opt.medium == TS_MEDIUM_ON, "run with TESSERA_CONF=medium:true (CMakeLists)");
  static const size_t sizes[] = {4096, 4097, 4352, 5000, 16384, 32767, 32768, 32769, 40000, 65535, 65536, 65537};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    void *p = ts_malloc(n);
    assert_true(p != NULL);
    bool medium = n > TS_MEDIUM_MIN_SIZE && n <= TS_MEDIUM_MAX_SIZE;
    expect_eq(in_region(p), medium);
    if (medium) {
      expect_eq(ts_malloc_usable_size(p), granules_of(n));
      expect_ptr_aligned(p, GRANULE);
    }
    ts_test_fill(p, n);
    expect_true(ts_test_check(p, n));
    ts_free(p);
  }
  /* an alignment up to a granule stays medium, a larger one does not */
  void *a = ts_aligned_alloc(256, 9000), *b = ts_aligned_alloc(4096, 9000);
  expect_true(in_region(a) && !in_region(b));
  expect_ptr_aligned(b, 4096);
  ts_free(a);
  ts_free(b);
  ts_purge();
}

/* Three neighbours; the first two freed make one hole that a block of
 * their joint size fills, at the first one's address.  Earlier tests left
 * holes: blocks are taken until three lie side by side. */
TS_TEST(freed_neighbours_serve_a_larger_size) {
  ts_purge();
  enum { TRIES = 200 };
  static void *kept[3 * TRIES];
  unsigned nkept = 0;
  void *x = NULL, *y = NULL, *z = NULL;
  for (int t = 0; t < TRIES; t++) {
    x = ts_malloc(6000), y = ts_malloc(10000), z = ts_malloc(5000);
    assert_true(x && y && z);
    if ((char *)y == (char *)x + granules_of(6000) && (char *)z == (char *)y + granules_of(10000)) break;
    kept[nkept++] = x, kept[nkept++] = y, kept[nkept++] = z;
    x = NULL;
  }
  assert_true(x != NULL, "no three consecutive blocks in %d tries", TRIES);
  ts_free(x);
  ts_free(y);
  ts_purge(); /* the thread's gathered frees go back */
  /* first fit: holes below may take the first blocks of the joint size;
   * the joint hole must come before long */
  static void *w[TRIES];
  int found = -1, nw = 0;
  while (nw < TRIES && found < 0) {
    w[nw] = ts_malloc(granules_of(6000) + granules_of(10000));
    if (w[nw++] == x) found = nw - 1;
  }
  expect_true(found >= 0, "the joint hole at %p was never used", x);
  for (int i = 0; i < nw; i++) ts_free(w[i]);
  for (unsigned i = 0; i < nkept; i++) ts_free(kept[i]);
  ts_free(z);
  ts_purge();
}

TS_TEST(realloc_grows_and_shrinks_in_place) {
  ts_purge();
  char *p = ts_malloc(8000);
  void *next = ts_malloc(5000); /* after p: p cannot grow past it */
  assert_true(p && next);
  ts_test_fill(p, 8000);
  char *q = ts_realloc(p, 6000); /* shrinks in place */
  expect_true(q == p);
  expect_eq(ts_malloc_usable_size(q), granules_of(6000));
  memset(q, 0x5C, 6000);
  q = ts_realloc(q, 8192); /* grows back into its own freed tail */
  expect_true(q == p);
  for (size_t i = 0; i < 6000; i++)
    if ((unsigned char)q[i] != 0x5C) {
      expect_true(0, "byte %zu lost in place", i);
      break;
    }
  q = ts_realloc(q, 8192 + 5000 + 4096); /* the neighbour is in the way: moves */
  expect_true(q != p);
  for (size_t i = 0; i < 6000; i++)
    if ((unsigned char)q[i] != 0x5C) {
      expect_true(0, "byte %zu lost in the move", i);
      break;
    }
  ts_free(q);
  ts_free(next);
  ts_purge();
}

/* Free pages inside a region go back: a region filled with 16 KiB blocks,
 * all but the first freed, then ts_purge(). */
TS_TEST(free_pages_in_regions_are_purged) {
  ts_purge();
  enum { N = 60 };
  void *b[N];
  for (int i = 0; i < N; i++) {
    assert_true((b[i] = ts_malloc(16384)) != NULL);
    memset(b[i], 0x77, 16384);
  }
  ts_arena_t *arena = ts_chunk_of(b[0])->arena;
  for (int i = 1; i < N; i++) ts_free(b[i]);
  size_t returned = ts_purge();
  pthread_mutex_lock(&arena->medium.lock);
  uint64_t pages = arena->medium.pages, used = arena->medium.used_bytes;
  pthread_mutex_unlock(&arena->medium.lock);
  printf("  returned %zu KiB; regions keep %llu pages for %llu bytes of blocks\n", returned >> 10,
         (unsigned long long)pages, (unsigned long long)used);
  expect_true(returned >= (size_t)(N - 2) * 16384, "returned only %zu bytes", returned);
  expect_true(pages * TS_PAGE_SIZE <= used + 2 * TS_PAGE_SIZE, "%llu pages kept", (unsigned long long)pages);
  for (size_t i = 0; i < 16384; i++)
    if (((unsigned char *)b[0])[i] != 0x77) {
      expect_true(0, "byte %zu of the live block changed", i);
      break;
    }
  ts_free(b[0]);
  ts_purge();
}

/* A region's record lies in the spans of its pages; when the region goes
 * back to its arena those spans must read as unused, or a slab made there
 * later takes a stale field for its own (python3 with PYTHONMALLOC=malloc
 * crashed in bin_unmesh: a slab's mesh group was a byte of an old record). */
TS_TEST(a_freed_region_leaves_clean_spans) {
  ts_purge();
  enum { N = 64 }; /* 2 MiB of 32 KiB blocks: two regions or more */
  static void *b[N];
  for (int i = 0; i < N; i++) assert_true((b[i] = ts_malloc(32768)) != NULL);
  ts_chunk_t *c = ts_chunk_of(b[N - 1]);
  unsigned head = c->page_head[ts_chunk_page_of(b[N - 1])];
  for (int i = 0; i < N; i++) ts_free(b[i]);
  ts_purge(); /* the gathered frees go back, the empty regions too */
  assert_true(ts_chunk_code(c, head) != TS_PAGE_MEDIUM, "the region at page %u is still there", head);
  const unsigned char *bytes = (const unsigned char *)&c->spans[head + 1];
  size_t dirty_bytes = 0;
  for (size_t i = 0; i < sizeof(ts_medium_region_t); i++) dirty_bytes += bytes[i] != 0;
  expect_eq(dirty_bytes, 0);
  for (unsigned p = head + 1; p < head + TS_MEDIUM_REGION_PAGES; p++) expect_eq(c->mesh_group[p], 0);
  /* small blocks over those pages, freed through their slabs */
  static void *s[4096];
  for (int i = 0; i < 4096; i++) assert_true((s[i] = ts_malloc(16 + (size_t)(i % 64) * 16)) != NULL);
  for (int i = 0; i < 4096; i++) ts_free(s[i]);
  ts_purge();
}

/* ---- bad frees, each in a child ---- */

static int dies_with(void (*fn)(void *), void *arg, const char *msg) {
  int fds[2];
  if (pipe(fds) != 0) return 0;
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(SIGABRT, SIG_DFL);
    dup2(fds[1], 2);
    fn(arg);
    _exit(0);
  }
  close(fds[1]);
  char err[1024];
  size_t len = 0;
  ssize_t r;
  while ((r = read(fds[0], err + len, sizeof err - 1 - len)) > 0) len += (size_t)r;
  err[len] = 0;
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  bool ok = WIFSIGNALED(st) && strstr(err, msg) != NULL;
  if (!ok) printf("  child said: %s\n", err);
  return ok;
}

static void free_inside(void *arg) {
  (void)arg;
  char *p = ts_malloc(10000);
  ts_free(p + GRANULE);
  ts_purge();
}

static void free_twice(void *arg) {
  (void)arg;
  void *p = ts_malloc(10000);
  ts_free(p);
  ts_free(p);
}

static void free_twice_later(void *arg) {
  (void)arg;
  void *p = ts_malloc(10000);
  ts_free(p);
  ts_purge(); /* given back to its region */
  ts_free(p);
  ts_purge();
}

TS_TEST(bad_frees_are_reported) {
#if defined(__SANITIZE_THREAD__)
  /* fork takes every bin lock: more than ThreadSanitizer's deadlock
   * detector follows (64) */
  ts_skip("fork under ThreadSanitizer");
#endif
  expect_true(dies_with(free_inside, NULL, "tessera: free(): invalid pointer"));
  expect_true(dies_with(free_twice, NULL, "tessera: free(): double free of"));
  expect_true(dies_with(free_twice_later, NULL, "tessera: free(): invalid pointer"));
}

/* ---- threads that free each other's blocks ---- */

enum { NTHREADS = 4, ROUNDS = 20000, SLOTS = 64 };
static void *_Atomic exchange[SLOTS];
static _Atomic int bad;

static size_t size_of_seed(unsigned s) { return 4097 + (s * 2654435761u) % (60 * 1024); }

static void *churn(void *arg) {
  unsigned s = (unsigned)(uintptr_t)arg;
  for (int r = 0; r < ROUNDS; r++) {
    s = s * 1103515245u + 12345u;
    size_t n = size_of_seed(s);
    unsigned char *p = ts_malloc(n);
    if (!p) {
      atomic_fetch_add(&bad, 1);
      break;
    }
    ((size_t *)(void *)p)[0] = n;
    memset(p + sizeof(size_t), (int)(n & 0xFF), n - sizeof(size_t));
    unsigned char *q = atomic_exchange(&exchange[(s >> 8) % SLOTS], p);
    if (q) { /* another thread's block, most of the time */
      size_t m = ((size_t *)(void *)q)[0];
      for (size_t i = sizeof(size_t); i < m; i += 97)
        if (q[i] != (unsigned char)(m & 0xFF)) {
          atomic_fetch_add(&bad, 1);
          break;
        }
      ts_free(q);
    }
  }
  return NULL;
}

TS_TEST(threads_free_each_others_blocks) {
  pthread_t t[NTHREADS];
  for (int i = 0; i < NTHREADS; i++) pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i * 7919 + 1));
  for (int i = 0; i < NTHREADS; i++) pthread_join(t[i], NULL);
  expect_eq(atomic_load(&bad), 0);
  for (int i = 0; i < SLOTS; i++) ts_free(atomic_exchange(&exchange[i], NULL));
  ts_purge();
  for (unsigned a = 0; a < ts_narenas; a++) {
    pthread_mutex_lock(&ts_arenas[a].medium.lock);
    uint64_t n = ts_arenas[a].medium.used_bytes; /* no block left */
    pthread_mutex_unlock(&ts_arenas[a].medium.lock);
    expect_eq(n, 0);
  }
}

int main(void) {
  ts_run(sizes_round_to_granules);
  ts_run(freed_neighbours_serve_a_larger_size);
  ts_run(realloc_grows_and_shrinks_in_place);
  ts_run(free_pages_in_regions_are_purged);
  ts_run(a_freed_region_leaves_clean_spans);
  ts_run(bad_frees_are_reported);
  ts_run(threads_free_each_others_blocks);
  return ts_test_done();
}
