/* SPDX-License-Identifier: MIT */
/*
 * api/malloc.c: conformance of the malloc family, through the ts_ names and
 * through the unprefixed names that libtessera.so exports.  The expected
 * behaviour is glibc's (see include/tessera.h).
 *
 * Built with -fno-builtin so that the compiler neither folds nor elides
 * allocator calls (e.g. assumes malloc(SIZE_MAX) != NULL).
 */
#include "test.h"
#include "tessera.h"

#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)

static size_t page_size;

/* A byte pattern that depends on a seed and the offset only, so that it can
 * be checked after realloc moved the block. */
static unsigned char pat(uint32_t seed, size_t i) {
  uint32_t x = (uint32_t)i * 2654435761u ^ seed;
  x ^= x >> 15;
  x *= 0x2c1b3c6du;
  x ^= x >> 12;
  return (unsigned char)x;
}

static void pat_fill(void *p, size_t from, size_t to, uint32_t seed) {
  unsigned char *b = p;
  for (size_t i = from; i < to; i++) b[i] = pat(seed, i);
}

/* Index of the first byte that differs from the pattern, or SIZE_MAX. */
static size_t pat_check(const void *p, size_t n, uint32_t seed) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i] != pat(seed, i)) return i;
  return SIZE_MAX;
}

static int all_zero(const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++)
    if (b[i]) return 0;
  return 1;
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  return rng_state = x;
}

/* The sizes 0..100000 that the alignment test walks: every size up to 1100,
 * the neighbourhood of each power of two, and a geometric sample. */
static size_t sample_sizes(size_t *out, size_t cap) {
  size_t n = 0;
  for (size_t s = 0; s <= 1100 && n < cap; s++) out[n++] = s;
  for (size_t p2 = 2048; p2 <= 65536 * 2; p2 *= 2)
    for (size_t s = p2 - 17; s <= p2 + 17 && s <= 100000 && n < cap; s++) out[n++] = s;
  for (size_t s = 1101; s <= 100000 && n < cap; s += s / 41 + 1) out[n++] = s;
  if (n < cap) out[n++] = 100000;
  return n;
}

/* The huge sizes that no allocator can satisfy. */
static const size_t huge_sizes[] = {
  SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 15, SIZE_MAX - 16, SIZE_MAX - 4095, SIZE_MAX - 4096,
  SIZE_MAX - 2 * 1024 * 1024, SIZE_MAX - 64 * 1024 * 1024, SIZE_MAX / 2 + 1, SIZE_MAX / 2,
  (size_t)PTRDIFF_MAX + 1, (size_t)PTRDIFF_MAX, (size_t)1 << 62, ((size_t)1 << 62) + 12345,
};
#define N_HUGE (sizeof huge_sizes / sizeof huge_sizes[0])

/* ---------------------------------------------------------------------- */

TS_TEST(alignment_all_sizes) {
  static size_t sizes[4000];
  size_t ns = sample_sizes(sizes, sizeof sizes / sizeof sizes[0]);
  for (size_t k = 0; k < ns; k++) {
    size_t n = sizes[k];
    void *p[4];
    for (int j = 0; j < 4; j++) {
      p[j] = ts_malloc(n);
      assert_true(p[j] != NULL, "ts_malloc(%zu) failed", n);
      expect_ptr_aligned(p[j], TS_MIN_ALIGN);
      expect_ptr_aligned(p[j], 16);
      size_t u = ts_malloc_usable_size(p[j]);
      expect_true(u >= n, "usable %zu < %zu", u, n);
      memset(p[j], 0x30 + j, u);
    }
    /* No two live blocks overlap: each still holds its own byte. */
    for (int j = 0; j < 4; j++) {
      size_t u = ts_malloc_usable_size(p[j]);
      const unsigned char *b = p[j];
      if (u) {
        expect_true(b[0] == 0x30 + j && b[u - 1] == 0x30 + j, "size %zu: block %d was overwritten", n, j);
      }
      for (int i = 0; i < j; i++) expect_true(p[i] != p[j], "size %zu: same pointer twice", n);
    }
    for (int j = 0; j < 4; j++) ts_free(p[j]);
    if (ts_test_failures > 20) return;
  }
}

TS_TEST(malloc_zero_unique) {
  enum { N = 2000 };
  static void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = ts_malloc(0);
    assert_true(p[i] != NULL, "ts_malloc(0) returned NULL at %d", i);
    expect_ptr_aligned(p[i], TS_MIN_ALIGN);
  }
  /* All distinct: sort and compare neighbours. */
  for (int i = 1; i < N; i++) {
    void *v = p[i];
    int j = i - 1;
    while (j >= 0 && (uintptr_t)p[j] > (uintptr_t)v) { p[j + 1] = p[j]; j--; }
    p[j + 1] = v;
  }
  for (int i = 1; i < N; i++) expect_true(p[i] != p[i - 1], "ts_malloc(0) gave %p twice", p[i]);
  for (int i = 0; i < N; i++) ts_free(p[i]);
  /* The same through the unprefixed name and calloc. */
  void *a = malloc(0), *b = malloc(0), *c = ts_calloc(0, 0), *d = ts_calloc(0, 16), *e = ts_calloc(16, 0);
  expect_true(a && b && c && d && e, "zero-size allocation returned NULL");
  expect_true(a != b, "malloc(0) not unique");
  free(a); free(b); ts_free(c); ts_free(d); ts_free(e);
}

TS_TEST(usable_size_writable) {
  expect_eq(ts_malloc_usable_size(NULL), 0);
  enum { N = 20000 };
  static void *p[N];
  static size_t us[N];
  for (int i = 0; i < N; i++) {
    uint64_t r = rnd();
    size_t n = (r & 7) == 0 ? (size_t)(r >> 8) % (256 * KiB) : (size_t)(r >> 8) % 600;
    if ((r & 1023) == 5) n = (size_t)(r >> 12) % (4 * MiB);
    p[i] = ts_malloc(n);
    assert_true(p[i] != NULL, "ts_malloc(%zu)", n);
    us[i] = ts_malloc_usable_size(p[i]);
    expect_true(us[i] >= n, "usable %zu < %zu", us[i], n);
    ts_test_fill(p[i], us[i]);
  }
  int bad = 0;
  for (int i = 0; i < N; i++) {
    if (!ts_test_check(p[i], us[i])) bad++;
    expect_eq(ts_malloc_usable_size(p[i]), us[i]);
    if (ts_test_failures > 20) break;
  }
  expect_eq(bad, 0);
  /* Free in a scrambled order. */
  for (int i = 0; i < N; i++) {
    int j = (int)(rnd() % N);
    void *t = p[i]; p[i] = p[j]; p[j] = t;
  }
  for (int i = 0; i < N; i++) ts_free(p[i]);
}

TS_TEST(calloc_zeroes) {
  static const size_t sizes[] = {1, 7, 8, 16, 24, 100, 1000, 4096, 5000, 16384, 40000,
                                 100000, 300000, 1 * 1024 * 1024 + 17, 3 * 1024 * 1024};
  enum { BATCH = 32 };
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    int rounds = n > 500000 ? 8 : 64;
    for (int r = 0; r < rounds; r++) {
      /* Dirty a block of the same size, free it, calloc again. */
      void *d = ts_malloc(n);
      assert_true(d != NULL);
      memset(d, 0xA5, ts_malloc_usable_size(d));
      ts_free(d);
      unsigned char *c = (r & 1) ? ts_calloc(1, n) : ts_calloc(n, 1);
      assert_true(c != NULL, "ts_calloc(%zu)", n);
      expect_true(all_zero(c, n), "calloc(%zu) not zeroed after reuse (round %d)", n, r);
      ts_free(c);
    }
    /* A batch of dirty blocks freed together, then a batch of callocs. */
    int batch = n > 500000 ? 4 : BATCH;
    void *b[BATCH];
    for (int i = 0; i < batch; i++) {
      b[i] = malloc(n);
      assert_true(b[i] != NULL);
      memset(b[i], 0x5A, malloc_usable_size(b[i]));
    }
    for (int i = 0; i < batch; i++) free(b[i]);
    for (int i = 0; i < batch; i++) {
      b[i] = (i & 1) ? calloc(n, 1) : ts_calloc(1, n);
      assert_true(b[i] != NULL);
      expect_true(all_zero(b[i], n), "calloc(%zu) batch block %d not zeroed", n, i);
    }
    for (int i = 0; i < batch; i++) ts_free(b[i]);
    /* calloc(count, size) with count > 1. */
    void *m = ts_calloc(3, n);
    assert_true(m != NULL);
    expect_true(all_zero(m, 3 * n), "calloc(3, %zu) not zeroed", n);
    expect_true(ts_malloc_usable_size(m) >= 3 * n);
    ts_free(m);
    if (ts_test_failures > 20) return;
  }
}

TS_TEST(calloc_overflow) {
  static const size_t pairs[][2] = {
    {SIZE_MAX, 2}, {2, SIZE_MAX}, {SIZE_MAX / 2 + 1, 2}, {(size_t)1 << 32, (size_t)1 << 32},
    {SIZE_MAX, SIZE_MAX}, {SIZE_MAX / 16 + 1, 16}, {16, SIZE_MAX / 16 + 1}, {3, SIZE_MAX / 3 + 1},
    {SIZE_MAX / 4, 3}, {1, SIZE_MAX}, {SIZE_MAX, 1}, {(size_t)1 << 31, (size_t)1 << 33},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    void *p = ts_calloc(pairs[i][0], pairs[i][1]);
    expect_true(p == NULL, "ts_calloc(%zu, %zu) succeeded", pairs[i][0], pairs[i][1]);
    expect_eq(errno, ENOMEM);
    if (p) ts_free(p);
    errno = 0;
    volatile size_t a = pairs[i][0], b = pairs[i][1];
    p = calloc(a, b);
    expect_true(p == NULL, "calloc(%zu, %zu) succeeded", pairs[i][0], pairs[i][1]);
    expect_eq(errno, ENOMEM);
    if (p) free(p);
  }
}

TS_TEST(huge_sizes_fail) {
  size_t pg = page_size;
  for (size_t i = 0; i < N_HUGE; i++) {
    size_t n = huge_sizes[i];
    void *p;
    errno = 0; p = ts_malloc(n);
    expect_true(p == NULL, "ts_malloc(%zu)", n); expect_eq(errno, ENOMEM);
    errno = 0; p = ts_realloc(NULL, n);
    expect_true(p == NULL, "ts_realloc(NULL, %zu)", n); expect_eq(errno, ENOMEM);
    errno = 0; p = ts_aligned_alloc(64, n);
    expect_true(p == NULL, "ts_aligned_alloc(64, %zu)", n); expect_eq(errno, ENOMEM);
    errno = 0; p = ts_aligned_alloc(pg, n);
    expect_true(p == NULL, "ts_aligned_alloc(page, %zu)", n); expect_eq(errno, ENOMEM);
    errno = 0; p = ts_aligned_alloc(2 * MiB, n);
    expect_true(p == NULL, "ts_aligned_alloc(2 MiB, %zu)", n); expect_eq(errno, ENOMEM);
    errno = 0; p = ts_memalign(256, n);
    expect_true(p == NULL, "ts_memalign(256, %zu)", n); expect_eq(errno, ENOMEM);
    errno = 0; p = ts_valloc(n);
    expect_true(p == NULL, "ts_valloc(%zu)", n); expect_eq(errno, ENOMEM);
    errno = 0; p = ts_pvalloc(n);
    expect_true(p == NULL, "ts_pvalloc(%zu)", n); expect_eq(errno, ENOMEM);
    void *out = (void *)&out;
    int rc = ts_posix_memalign(&out, 4096, n);
    expect_eq(rc, ENOMEM);
    expect_true(out == (void *)&out || out == NULL, "posix_memalign changed *out to %p on failure", out);
    out = (void *)&out;
    rc = ts_posix_memalign(&out, 16, n);
    expect_eq(rc, ENOMEM);
    expect_true(out == (void *)&out || out == NULL, "posix_memalign changed *out to %p on failure", out);

    /* realloc of a live block to a huge size fails and leaves it intact. */
    for (size_t k = 0; k < 3; k++) {
      size_t small = k == 0 ? 100 : k == 1 ? 50000 : 3 * MiB;
      unsigned char *q = ts_malloc(small);
      assert_true(q != NULL);
      pat_fill(q, 0, small, (uint32_t)(i * 7 + k));
      errno = 0;
      void *r = ts_realloc(q, n);
      expect_true(r == NULL, "ts_realloc(%zu bytes, %zu)", small, n);
      expect_eq(errno, ENOMEM);
      expect_eq(pat_check(q, small, (uint32_t)(i * 7 + k)), SIZE_MAX);
      ts_free(q);
    }
    if (ts_test_failures > 20) return;
  }
  /* A huge power-of-two alignment cannot be satisfied either. */
  void *out = (void *)&out;
  int rc = ts_posix_memalign(&out, (size_t)1 << 63, 1);
  expect_true(rc == ENOMEM || rc == EINVAL, "posix_memalign(1<<63) gave %d", rc);
  expect_true(out == (void *)&out || out == NULL);
  errno = 0;
  void *p = ts_aligned_alloc((size_t)1 << 62, 16);
  expect_true(p == NULL);
  expect_true(errno == ENOMEM || errno == EINVAL, "errno %d", errno);
}

TS_TEST(realloc_null_and_zero) {
  static const size_t sizes[] = {0, 1, 100, 5000, 40000, 300000, 3 * 1024 * 1024};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    unsigned char *p = ts_realloc(NULL, n);
    assert_true(p != NULL, "ts_realloc(NULL, %zu)", n);
    expect_ptr_aligned(p, TS_MIN_ALIGN);
    expect_true(ts_malloc_usable_size(p) >= n);
    memset(p, 0x77, n);
    ts_free(p);
  }
  /* realloc(p, 0): glibc frees p and returns NULL; a non-NULL result must be
   * a freeable block.  Done many times to catch a leak or a double free. */
  for (int i = 0; i < 2000; i++) {
    size_t n = (i % 3 == 0) ? 40 : (i % 3 == 1) ? 7000 : 200000;
    void *p = ts_malloc(n);
    assert_true(p != NULL);
    memset(p, 1, n);
    void *r = ts_realloc(p, 0);
    if (r) {
      expect_ptr_aligned(r, TS_MIN_ALIGN);
      ts_free(r);
    }
    p = malloc(n);
    assert_true(p != NULL);
    r = realloc(p, 0);
    if (r) free(r);
  }
}

static void realloc_pair(size_t from, size_t to, uint32_t seed) {
  unsigned char *p = ts_malloc(from);
  assert_true(p != NULL, "ts_malloc(%zu)", from);
  pat_fill(p, 0, from, seed);
  unsigned char *q = ts_realloc(p, to);
  assert_true(q != NULL, "ts_realloc(%zu -> %zu)", from, to);
  expect_ptr_aligned(q, TS_MIN_ALIGN);
  expect_true(ts_malloc_usable_size(q) >= to);
  size_t keep = from < to ? from : to;
  size_t bad = pat_check(q, keep, seed);
  expect_true(bad == SIZE_MAX, "realloc %zu -> %zu lost byte %zu", from, to, bad);
  memset(q, 0xEE, to);   /* the whole new size is writable */
  ts_free(q);
}

TS_TEST(realloc_preserves) {
  static const size_t sizes[] = {1, 100, 5000, 40000, 300000, 3 * 1024 * 1024, 20 * 1024 * 1024};
  enum { NS = sizeof sizes / sizeof sizes[0] };
  for (int i = 0; i < NS; i++)
    for (int j = 0; j < NS; j++) {
      realloc_pair(sizes[i], sizes[j], (uint32_t)(i * 31 + j));
      realloc_pair(sizes[i] + 13, sizes[j] + 3, (uint32_t)(i * 37 + j));
    }
  /* One block up the ladder and back down. */
  size_t cur = sizes[0];
  unsigned char *p = ts_malloc(cur);
  assert_true(p != NULL);
  pat_fill(p, 0, cur, 99);
  for (int step = 1; step < 2 * NS - 1; step++) {
    size_t next = step < NS ? sizes[step] : sizes[2 * NS - 2 - step];
    unsigned char *q = ts_realloc(p, next);
    assert_true(q != NULL, "ts_realloc(%zu -> %zu)", cur, next);
    size_t keep = cur < next ? cur : next;
    expect_eq(pat_check(q, keep, 99), SIZE_MAX);
    pat_fill(q, keep, next, 99);
    p = q;
    cur = next;
  }
  ts_free(p);
  /* Growing within the usable size and to the same size keeps the data. */
  p = ts_malloc(100);
  assert_true(p != NULL);
  size_t u = ts_malloc_usable_size(p);
  pat_fill(p, 0, u, 5);
  unsigned char *q = ts_realloc(p, u);
  assert_true(q != NULL);
  expect_eq(pat_check(q, u, 5), SIZE_MAX);
  p = ts_realloc(q, u);
  assert_true(p != NULL);
  expect_eq(pat_check(p, u, 5), SIZE_MAX);
  ts_free(p);
}

TS_TEST(realloc_random_walk) {
  enum { NB = 16, STEPS = 400 };
  unsigned char *p[NB];
  size_t n[NB];
  for (int b = 0; b < NB; b++) {
    n[b] = (size_t)(rnd() % 2000);
    p[b] = ts_malloc(n[b]);
    assert_true(p[b] != NULL);
    pat_fill(p[b], 0, n[b], (uint32_t)b);
  }
  for (int s = 0; s < STEPS; s++) {
    int b = (int)(rnd() % NB);
    uint64_t r = rnd();
    size_t to;
    switch (r & 7) {
      case 0: to = (size_t)(r >> 8) % (1 * MiB); break;
      case 1: to = n[b] + (size_t)(r >> 8) % 64; break;
      case 2: to = n[b] / 2; break;
      case 3: to = n[b] * 2 + 1; break;
      default: to = (size_t)(r >> 8) % 4096; break;
    }
    if (to > 8 * MiB) to = 8 * MiB;
    unsigned char *q = (r & 0x100) ? ts_realloc(p[b], to) : realloc(p[b], to);
    if (to == 0 && q == NULL) {   /* glibc: freed */
      p[b] = ts_malloc(0);
      assert_true(p[b] != NULL);
      n[b] = 0;
      continue;
    }
    assert_true(q != NULL, "realloc(%zu -> %zu)", n[b], to);
    size_t keep = n[b] < to ? n[b] : to;
    size_t bad = pat_check(q, keep, (uint32_t)b);
    expect_true(bad == SIZE_MAX, "step %d: realloc %zu -> %zu lost byte %zu", s, n[b], to, bad);
    pat_fill(q, keep, to, (uint32_t)b);
    p[b] = q;
    n[b] = to;
    if (ts_test_failures > 10) break;
  }
  for (int b = 0; b < NB; b++) {
    expect_eq(pat_check(p[b], n[b], (uint32_t)b), SIZE_MAX);
    ts_free(p[b]);
  }
}

TS_TEST(reallocarray_overflow) {
  unsigned char *p = ts_reallocarray(NULL, 10, 10);
  assert_true(p != NULL);
  expect_true(ts_malloc_usable_size(p) >= 100);
  pat_fill(p, 0, 100, 3);
  unsigned char *q = ts_reallocarray(p, 1000, 10);
  assert_true(q != NULL);
  expect_true(ts_malloc_usable_size(q) >= 10000);
  expect_eq(pat_check(q, 100, 3), SIZE_MAX);
  pat_fill(q, 0, 10000, 4);
  p = q;
  static const size_t pairs[][2] = {
    {SIZE_MAX / 2, 3}, {(size_t)1 << 32, (size_t)1 << 32}, {SIZE_MAX, SIZE_MAX},
    {2, SIZE_MAX / 2 + 1}, {SIZE_MAX / 8 + 1, 8}, {SIZE_MAX, 2},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    errno = 0;
    q = ts_reallocarray(p, pairs[i][0], pairs[i][1]);
    expect_true(q == NULL, "ts_reallocarray(p, %zu, %zu) succeeded", pairs[i][0], pairs[i][1]);
    expect_eq(errno, ENOMEM);
    expect_eq(pat_check(p, 10000, 4), SIZE_MAX);
    errno = 0;
    /* Through a volatile pointer: gcc would flag the later use of p,
     * not knowing that a failed reallocarray leaves it alive. */
    void *(*volatile ra)(void *, size_t, size_t) = reallocarray;
    q = ra(p, pairs[i][0], pairs[i][1]);
    expect_true(q == NULL, "reallocarray(p, %zu, %zu) succeeded", pairs[i][0], pairs[i][1]);
    expect_eq(errno, ENOMEM);
    expect_eq(pat_check(p, 10000, 4), SIZE_MAX);
    errno = 0;
    q = ts_reallocarray(NULL, pairs[i][0], pairs[i][1]);
    expect_true(q == NULL);
    expect_eq(errno, ENOMEM);
  }
  /* Shrinking through reallocarray. */
  q = ts_reallocarray(p, 25, 4);
  assert_true(q != NULL);
  expect_eq(pat_check(q, 100, 4), SIZE_MAX);
  ts_free(q);
}

TS_TEST(posix_memalign_bad_alignment) {
  static const size_t bad[] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 12, 24, 40, 48, 96, 100, 4095, 4097,
                               3 * 4096, SIZE_MAX, SIZE_MAX - 7, ((size_t)1 << 63) + 8};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    void *sentinel = (void *)(uintptr_t)0x1234560;
    void *out = sentinel;
    int rc = ts_posix_memalign(&out, bad[i], 64);
    expect_true(rc == EINVAL, "ts_posix_memalign(align %zu) returned %d", bad[i], rc);
    expect_true(out == sentinel, "ts_posix_memalign(align %zu) changed *out", bad[i]);
    out = sentinel;
    volatile size_t a = bad[i];
    rc = posix_memalign(&out, a, 64);
    expect_true(rc == EINVAL, "posix_memalign(align %zu) returned %d", bad[i], rc);
    expect_true(out == sentinel, "posix_memalign(align %zu) changed *out", bad[i]);
  }
  /* sizeof(void *) itself is a valid alignment. */
  void *out = NULL;
  expect_eq(ts_posix_memalign(&out, sizeof(void *), 100), 0);
  expect_true(out != NULL);
  expect_ptr_aligned(out, TS_MIN_ALIGN);
  ts_free(out);
  /* Size 0 gives a unique, freeable block. */
  void *a = NULL, *b = NULL;
  expect_eq(ts_posix_memalign(&a, 64, 0), 0);
  expect_eq(ts_posix_memalign(&b, 64, 0), 0);
  expect_true(a != NULL && b != NULL && a != b);
  ts_free(a);
  ts_free(b);
}

static void check_aligned_block(void *p, size_t al, size_t n, const char *fn) {
  expect_true(p != NULL, "%s(%zu, %zu) failed", fn, al, n);
  if (!p) return;
  expect_true((uintptr_t)p % al == 0, "%s(%zu, %zu) = %p misaligned", fn, al, n, p);
  expect_ptr_aligned(p, TS_MIN_ALIGN);
  size_t u = ts_malloc_usable_size(p);
  expect_true(u >= n, "%s(%zu, %zu): usable %zu", fn, al, n, u);
  memset(p, 0xC3, u);
}

TS_TEST(aligned_alignments) {
  for (size_t al = 16; al <= 8 * MiB; al *= 2) {
    const size_t sizes[] = {0, 1, 7, 16, 100, al - 1, al, al + 1, 3 * al + 5, 5000, 100000, MiB + 3};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      size_t n = sizes[k];
      void *p = NULL;
      int rc = ts_posix_memalign(&p, al, n);
      expect_eq(rc, 0);
      check_aligned_block(p, al, n, "ts_posix_memalign");
      void *q = ts_aligned_alloc(al, n);
      check_aligned_block(q, al, n, "ts_aligned_alloc");
      void *r = ts_memalign(al, n);
      check_aligned_block(r, al, n, "ts_memalign");
      expect_true(p != q && q != r && p != r);
      ts_free(p);
      ts_free(q);
      ts_free(r);
    }
    if (ts_test_failures > 20) return;
  }
  /* Alignments below the minimum are honoured with at least TS_MIN_ALIGN. */
  for (size_t al = 1; al < 16; al *= 2) {
    void *q = ts_aligned_alloc(al, 33);
    check_aligned_block(q, al, 33, "ts_aligned_alloc");
    void *r = ts_memalign(al, 33);
    check_aligned_block(r, al, 33, "ts_memalign");
    ts_free(q);
    ts_free(r);
  }
}

TS_TEST(aligned_many_live) {
  enum { N = 600 };
  static void *p[N];
  static size_t n[N], al[N];
  for (int i = 0; i < N; i++) {
    uint64_t r = rnd();
    al[i] = (size_t)16 << (r % 10);   /* 16 .. 8192 */
    n[i] = (size_t)(r >> 16) % (3 * al[i] + 200);
    switch (i % 3) {
      case 0: p[i] = ts_aligned_alloc(al[i], n[i]); break;
      case 1: p[i] = ts_memalign(al[i], n[i]); break;
      default: if (ts_posix_memalign(&p[i], al[i], n[i]) != 0) p[i] = NULL; break;
    }
    assert_true(p[i] != NULL, "aligned(%zu, %zu)", al[i], n[i]);
    expect_true((uintptr_t)p[i] % al[i] == 0, "%p not aligned to %zu", p[i], al[i]);
    ts_test_fill(p[i], n[i]);
  }
  int bad = 0;
  for (int i = 0; i < N; i++)
    if (!ts_test_check(p[i], n[i])) bad++;
  expect_eq(bad, 0);
  for (int i = 0; i < N; i++) {
    if (i % 3 == 0) ts_free_aligned_sized(p[i], al[i], n[i]);
    else ts_free(p[i]);
  }
}

TS_TEST(aligned_alloc_bad_alignment) {
  static const size_t bad[] = {0, 3, 5, 6, 12, 24, 48, 100, 4097, 3 * 4096, SIZE_MAX, ((size_t)1 << 63) + 16};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    void *p = ts_aligned_alloc(bad[i], 64);
    expect_true(p == NULL, "ts_aligned_alloc(%zu, 64) succeeded", bad[i]);
    expect_eq(errno, EINVAL);
    if (p) ts_free(p);
    errno = 0;
    volatile size_t a = bad[i];
    p = aligned_alloc(a, 64);
    expect_true(p == NULL, "aligned_alloc(%zu, 64) succeeded", bad[i]);
    expect_eq(errno, EINVAL);
    if (p) free(p);
  }
  /* memalign with a non-power-of-two: glibc rounds the alignment up to the
   * next power of two; failing with EINVAL is accepted too. */
  static const size_t odd[] = {24, 48, 100, 3000};
  for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
    size_t up = 1;
    while (up < odd[i]) up <<= 1;
    errno = 0;
    void *p = ts_memalign(odd[i], 200);
    if (p) {
      expect_true((uintptr_t)p % up == 0, "memalign(%zu) = %p not aligned to %zu", odd[i], p, up);
      memset(p, 1, 200);
      ts_free(p);
    } else {
      expect_eq(errno, EINVAL);
    }
  }
}

TS_TEST(valloc_pvalloc) {
  size_t pg = page_size;
  const size_t sizes[] = {0, 1, 100, pg - 1, pg, pg + 1, 3 * pg + 7, 100000, 3 * MiB + 1};
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t n = sizes[k];
    void *v = ts_valloc(n);
    assert_true(v != NULL, "ts_valloc(%zu)", n);
    expect_true((uintptr_t)v % pg == 0, "ts_valloc(%zu) = %p", n, v);
    expect_true(ts_malloc_usable_size(v) >= n);
    memset(v, 0x11, n);
    void *p = ts_pvalloc(n);
    assert_true(p != NULL, "ts_pvalloc(%zu)", n);
    expect_true((uintptr_t)p % pg == 0, "ts_pvalloc(%zu) = %p", n, p);
    size_t rounded = (n + pg - 1) / pg * pg;
    size_t u = ts_malloc_usable_size(p);
    expect_true(u >= rounded, "ts_pvalloc(%zu): usable %zu < %zu", n, u, rounded);
    memset(p, 0x22, u);
    void *v2 = valloc(n), *p2 = pvalloc(n);
    assert_true(v2 != NULL && p2 != NULL);
    expect_true((uintptr_t)v2 % pg == 0 && (uintptr_t)p2 % pg == 0);
    expect_true(malloc_usable_size(p2) >= rounded);
    memset(p2, 0x33, malloc_usable_size(p2));
    ts_free(v);
    ts_free(p);
    free(v2);
    free(p2);
  }
}

TS_TEST(free_null) {
  ts_free(NULL);
  free(NULL);
  ts_free_sized(NULL, 0);
  ts_free_sized(NULL, 123);
  ts_free_aligned_sized(NULL, 64, 0);
  ts_free_aligned_sized(NULL, 4096, 100);
  void *p = ts_realloc(NULL, 0);
  expect_true(p != NULL);
  ts_free(p);
}

TS_TEST(free_sized) {
  static size_t sizes[3000];
  size_t ns = sample_sizes(sizes, 2000);
  static const size_t big[] = {300000, MiB + 5, 3 * MiB, 20 * MiB};
  for (size_t k = 0; k < sizeof big / sizeof big[0]; k++) sizes[ns++] = big[k];
  enum { LIVE = 64 };
  void *live[LIVE] = {0};
  size_t live_n[LIVE] = {0};
  for (size_t k = 0; k < ns; k++) {
    size_t n = sizes[k];
    void *p = ts_malloc(n);
    assert_true(p != NULL);
    memset(p, 1, n);
    ts_free_sized(p, n);
    p = ts_calloc(n, 1);
    assert_true(p != NULL);
    ts_free_sized(p, n);
    if (n < 10 * MiB) {
      p = ts_calloc(3, n);
      assert_true(p != NULL);
      ts_free_sized(p, 3 * n);
    }
    p = ts_realloc(NULL, n / 2 + 1);
    assert_true(p != NULL);
    if (n > 0) {   /* realloc(p, 0) would free p */
      p = ts_realloc(p, n);
      assert_true(p != NULL);
      ts_free_sized(p, n);
    } else {
      ts_free_sized(p, 1);
    }
    /* Some blocks stay live for a while and are freed out of order. */
    int slot = (int)(rnd() % LIVE);
    if (live[slot]) ts_free_sized(live[slot], live_n[slot]);
    live[slot] = ts_malloc(n);
    assert_true(live[slot] != NULL);
    live_n[slot] = n;
  }
  for (int i = 0; i < LIVE; i++)
    if (live[i]) ts_free_sized(live[i], live_n[i]);
}

TS_TEST(free_aligned_sized) {
  for (size_t al = 16; al <= 1 * MiB; al *= 2) {
    const size_t sizes[] = {0, 1, 16, 100, al, al + 1, 2 * al, 4096, 70000};
    void *p[sizeof sizes / sizeof sizes[0]];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      p[k] = ts_aligned_alloc(al, sizes[k]);
      assert_true(p[k] != NULL, "ts_aligned_alloc(%zu, %zu)", al, sizes[k]);
      expect_true((uintptr_t)p[k] % al == 0);
      memset(p[k], 2, sizes[k]);
    }
    for (size_t k = sizeof sizes / sizeof sizes[0]; k-- > 0;) ts_free_aligned_sized(p[k], al, sizes[k]);
  }
}

/* ---- the unprefixed names ---- */

/* The object that defines `name` for this program: dlsym finds the real
 * definition even where &name would be a PLT stub in a non-PIE program. */
static const char *provider(const char *name) {
  Dl_info info;
  void *fn = dlsym(RTLD_DEFAULT, name);
  if (!fn || !dladdr(fn, &info) || !info.dli_fname) return "?";
  return info.dli_fname;
}

TS_TEST(unprefixed_resolve_to_tessera) {
  static const char *names[] = {"malloc", "free", "calloc", "realloc", "reallocarray", "posix_memalign",
                                "aligned_alloc", "memalign", "valloc", "pvalloc", "malloc_usable_size"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *lib = provider(names[i]);
    expect_true(strstr(lib, "libtessera") != NULL, "%s comes from %s", names[i], lib);
  }
}

TS_TEST(unprefixed_smoke) {
  for (size_t n = 0; n < 70000; n += n / 3 + 1) {
    unsigned char *p = malloc(n);
    assert_true(p != NULL, "malloc(%zu)", n);
    expect_ptr_aligned(p, 16);
    expect_true(malloc_usable_size(p) >= n);
    pat_fill(p, 0, n, 1);
    p = realloc(p, 2 * n + 1);
    assert_true(p != NULL);
    expect_eq(pat_check(p, n, 1), SIZE_MAX);
    free(p);
    p = calloc(n, 1);
    assert_true(p != NULL);
    expect_true(all_zero(p, n));
    free(p);
  }
  volatile size_t huge = SIZE_MAX;
  errno = 0;
  void *p = malloc(huge);
  expect_true(p == NULL);
  expect_eq(errno, ENOMEM);
  errno = 0;
  p = aligned_alloc(64, huge - 64);
  expect_true(p == NULL);
  expect_eq(errno, ENOMEM);
  void *out = NULL;
  expect_eq(posix_memalign(&out, 128, 1000), 0);
  expect_true(out != NULL && (uintptr_t)out % 128 == 0);
  free(out);
  p = aligned_alloc(4096, 5000);
  expect_true(p != NULL && (uintptr_t)p % 4096 == 0);
  free(p);
  p = memalign(256, 10);
  expect_true(p != NULL && (uintptr_t)p % 256 == 0);
  free(p);
  p = reallocarray(NULL, 100, 3);
  expect_true(p != NULL && malloc_usable_size(p) >= 300);
  free(p);
}

TS_TEST(cross_prefixed_unprefixed) {
  for (size_t n = 1; n < 4 * MiB; n = n * 3 + 5) {
    void *p = malloc(n);
    assert_true(p != NULL);
    expect_true(ts_malloc_usable_size(p) >= n);
    expect_eq(ts_malloc_usable_size(p), malloc_usable_size(p));
    ts_test_fill(p, n);
    expect_true(ts_test_check(p, n));
    ts_free(p);

    void *q = ts_malloc(n);
    assert_true(q != NULL);
    expect_true(malloc_usable_size(q) >= n);
    expect_eq(ts_malloc_usable_size(q), malloc_usable_size(q));
    free(q);

    p = malloc(n);
    assert_true(p != NULL);
    pat_fill(p, 0, n, 8);
    q = ts_realloc(p, n + 100);
    assert_true(q != NULL);
    expect_eq(pat_check(q, n, 8), SIZE_MAX);
    p = realloc(q, n / 2 + 1);
    assert_true(p != NULL);
    expect_eq(pat_check(p, n / 2 + 1, 8), SIZE_MAX);
    ts_free(p);
  }
  /* Memory that libc itself allocates goes through tessera too. */
  char *s = strdup("tessera");
  assert_true(s != NULL);
  expect_true(ts_malloc_usable_size(s) >= 8);
  ts_free(s);
  char *t = NULL;
  expect_true(asprintf(&t, "%s-%d-%0500d", "x", 42, 7) > 0);
  assert_true(t != NULL);
  expect_true(ts_malloc_usable_size(t) >= strlen(t) + 1);
  ts_free(t);
}

/* ---- the very first allocation of a process ---- */

/* Run by a re-executed copy of this program before anything else could
 * allocate: one allocation through `fn` of `n` bytes must be usable. */
static int first_allocation(const char *fn, size_t n) {
  void *p = NULL;
  if (!strcmp(fn, "ts_malloc")) p = ts_malloc(n);
  else if (!strcmp(fn, "malloc")) p = malloc(n);
  else if (!strcmp(fn, "ts_calloc")) p = ts_calloc(1, n);
  else if (!strcmp(fn, "ts_realloc")) p = ts_realloc(NULL, n);
  else if (!strcmp(fn, "ts_aligned_alloc")) p = ts_aligned_alloc(4096, n);
  else if (!strcmp(fn, "ts_posix_memalign")) { if (ts_posix_memalign(&p, 64, n)) p = NULL; }
  else return 10;
  if (!p) return 11;
  if ((uintptr_t)p % TS_MIN_ALIGN) return 12;
  size_t u = ts_malloc_usable_size(p);
  if (u < n) {
    fprintf(stderr, "first %s(%zu): usable size %zu\n", fn, n, u);
    return 13;
  }
  memset(p, 0x5A, u);
  /* A second block must not overlap the first. */
  unsigned char *q = ts_malloc(n);
  if (!q) return 14;
  memset(q, 0xA5, ts_malloc_usable_size(q));
  for (size_t i = 0; i < u; i++)
    if (((unsigned char *)p)[i] != 0x5A) return 15;
  ts_free(q);
  ts_free(p);
  return 0;
}

static char self_path[4096];

TS_TEST(first_allocation_in_process) {
  static const char *fns[] = {"ts_malloc", "malloc", "ts_calloc", "ts_realloc", "ts_aligned_alloc", "ts_posix_memalign"};
  static const size_t sizes[] = {1, 17, 100, 1000, 5000, 40000, 300000, 3 * 1024 * 1024};
  assert_true(self_path[0] != 0, "cannot find this program's path");
  for (size_t f = 0; f < sizeof fns / sizeof fns[0]; f++)
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      char arg[32];
      snprintf(arg, sizeof arg, "%zu", sizes[k]);
      fflush(stdout);
      pid_t pid = fork();
      assert_true(pid >= 0);
      if (pid == 0) {
        execl(self_path, self_path, "--first", fns[f], arg, (char *)NULL);
        _exit(127);
      }
      int st = 0;
      waitpid(pid, &st, 0);
      expect_true(WIFEXITED(st) && WEXITSTATUS(st) == 0, "first allocation %s(%zu): status 0x%x (exit %d)",
                  fns[f], sizes[k], st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--first")) return first_allocation(argv[2], strtoull(argv[3], NULL, 10));
  ssize_t len = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
  if (len > 0) self_path[len] = 0;
  page_size = (size_t)sysconf(_SC_PAGESIZE);
  ts_run(first_allocation_in_process);
  ts_run(alignment_all_sizes);
  ts_run(malloc_zero_unique);
  ts_run(usable_size_writable);
  ts_run(calloc_zeroes);
  ts_run(calloc_overflow);
  ts_run(huge_sizes_fail);
  ts_run(realloc_null_and_zero);
  ts_run(realloc_preserves);
  ts_run(realloc_random_walk);
  ts_run(reallocarray_overflow);
  ts_run(posix_memalign_bad_alignment);
  ts_run(aligned_alignments);
  ts_run(aligned_many_live);
  ts_run(aligned_alloc_bad_alignment);
  ts_run(valloc_pvalloc);
  ts_run(free_null);
  ts_run(free_sized);
  ts_run(free_aligned_sized);
  ts_run(unprefixed_resolve_to_tessera);
  ts_run(unprefixed_smoke);
  ts_run(cross_prefixed_unprefixed);
  return ts_test_done();
}
