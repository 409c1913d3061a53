/* SPDX-License-Identifier: MIT */
/*
 * fragprog.c: a plain libc program (not linked with tessera) that the
 * tools tests run under `tessera run`.  For about a second it makes a
 * pattern that fragments a heap: it fills 50 MiB with mixed small blocks,
 * frees nine in ten of them in random order (the survivors pin most of
 * the slabs), allocates 24 MiB of larger blocks that cannot reuse those
 * holes, and holds everything to the end.  A pause after each phase lets
 * the periodic snapshots see it.  Every block carries a byte pattern of
 * its own, checked before it is freed and at the end; a mismatch exits 1.
 *
 * Usage: fragprog [--quick] [ANY...]   (--quick: an eighth of the bytes and
 * shorter pauses; other arguments are ignored, so that tests can pass
 * names that need escaping).  Prints "fragprog: ok ..." and exits 0.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct block_s {
  unsigned char *p;
  size_t size;
} block_t;

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void) { /* xorshift64* */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1du;
}

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

static unsigned char pattern(size_t i) { return (unsigned char)(i * 131u + 7u); }

static void fill(block_t *b, size_t i) { memset(b->p, pattern(i), b->size); }

static void check(const block_t *b, size_t i, const char *phase) {
  unsigned char want = pattern(i);
  for (size_t k = 0; k < b->size; k++) {
    if (b->p[k] != want) {
      fprintf(stderr, "fragprog: %s: block %zu (%zu bytes) corrupted at byte %zu\n", phase, i, b->size, k);
      exit(1);
    }
  }
}

/* A small size: mostly 16..128 bytes, some up to 512. */
static size_t small_size(void) {
  uint64_t r = rng();
  return (r & 3) ? 16 + (size_t)(r >> 8) % 113 : 129 + (size_t)(r >> 8) % 384;
}

int main(int argc, char **argv) {
  int quick = argc > 1 && strcmp(argv[1], "--quick") == 0;
  size_t small_total = (size_t)(quick ? 6 : 50) << 20, large_total = (size_t)(quick ? 3 : 24) << 20;
  long hold = quick ? 60 : 250;

  size_t cap = 4096, n = 0, bytes = 0;
  block_t *small = malloc(cap * sizeof *small);
  if (!small) return fprintf(stderr, "fragprog: out of memory\n"), 1;
  while (bytes < small_total) {
    if (n == cap) {
      block_t *bigger = realloc(small, 2 * cap * sizeof *small);
      if (!bigger) return fprintf(stderr, "fragprog: out of memory\n"), 1;
      small = bigger;
      cap *= 2;
    }
    block_t *b = &small[n];
    b->size = small_size();
    if (!(b->p = malloc(b->size))) return fprintf(stderr, "fragprog: out of memory\n"), 1;
    fill(b, n);
    bytes += b->size;
    n++;
  }
  pause_ms(hold);

  /* free nine in ten, in random order */
  size_t *order = malloc(n * sizeof *order);
  if (!order) return fprintf(stderr, "fragprog: out of memory\n"), 1;
  for (size_t i = 0; i < n; i++) order[i] = i;
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)(rng() % i), t = order[i - 1];
    order[i - 1] = order[j];
    order[j] = t;
  }
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) {
    block_t *b = &small[order[i]];
    if (i % 10 == 0) {
      kept++;
      continue;
    }
    check(b, order[i], "before free");
    free(b->p);
    b->p = NULL;
  }
  free(order);
  pause_ms(hold);

  /* larger blocks: 1 KiB .. 64 KiB */
  size_t lcap = large_total / 1024 + 1, ln = 0; /* sizes are 1 KiB at least */
  block_t *large = malloc(lcap * sizeof *large);
  if (!large) return fprintf(stderr, "fragprog: out of memory\n"), 1;
  for (bytes = 0; bytes < large_total && ln < lcap; ln++) {
    block_t *b = &large[ln];
    b->size = 1024 + (size_t)(rng() % (63 * 1024));
    if (!(b->p = malloc(b->size))) return fprintf(stderr, "fragprog: out of memory\n"), 1;
    fill(b, n + ln);
    bytes += b->size;
  }
  pause_ms(hold + hold / 2);

  for (size_t i = 0; i < n; i++)
    if (small[i].p) check(&small[i], i, "at the end");
  for (size_t i = 0; i < ln; i++) check(&large[i], n + i, "at the end");
  /* everything is still held at exit, so that the final snapshot shows it */
  printf("fragprog: ok: %zu of %zu small blocks kept, %zu large blocks\n", kept, n, ln);
  return 0;
}
