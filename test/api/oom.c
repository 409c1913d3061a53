/* SPDX-License-Identifier: MIT */
/*
 * api/oom.c: running out of memory for real.  A child process lowers its
 * address-space limit (RLIMIT_AS) to a little above what it maps, then
 * allocates blocks of every kind (small classes whose bitmaps are in their
 * span or in a metadata piece, mixed, large, huge) until each kind fails.
 * Every failure must be NULL with errno ENOMEM (posix_memalign: the code),
 * never a crash or a message; realloc that fails must leave its block as
 * it was; every block allocated before must keep its contents; and once
 * the blocks are freed, allocation must work again under the same limit.
 *
 * Skipped under ThreadSanitizer, whose shadow mappings a limit on the
 * address space breaks.
 */
#include "tessera.h"
#include "test.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

#define MiB ((size_t)1 << 20)
/* Address space the child may map beyond what it has when it starts. */
#define HEADROOM (128 * MiB)

/* Three rounds, each until every size of it fails: small blocks (the
 * 16 to 48-byte classes keep their bitmaps in metadata pieces); after a
 * random half of them is freed, blocks of up to 1 KiB, which then go into
 * the holes of other classes' slabs (mixed slabs: their records are
 * metadata too); then medium, large and huge blocks. */
static const size_t small_sizes[] = {16, 32, 48, 64, 96, 200};
static const size_t mixed_sizes[] = {400, 700, 1000};
static const size_t big_sizes[] = {5000, 40000, 300000, 3 * MiB};
#define MAX_BLOCKS (1u << 22)

/* Kept out of the heap: the child must not need the allocator to track
 * what it allocated. */
static void *blocks[MAX_BLOCKS];
static uint32_t block_size[MAX_BLOCKS];
static uint32_t block_seed[MAX_BLOCKS];

static unsigned char fill_byte(size_t i, size_t k) { return (unsigned char)(i * 131 + k * 7 + 1); }

/* Writes the first and last bytes of every page and the ends: enough to
 * find a block that overlaps another, cheap for the large ones. */
static void fill(void *p, size_t n, size_t i) {
  unsigned char *b = p;
  for (size_t k = 0; k < n; k += 4096) b[k] = fill_byte(i, k);
  b[n - 1] = fill_byte(i, n - 1);
}
static int check(const void *p, size_t n, size_t i) {
  const unsigned char *b = p;
  for (size_t k = 0; k < n; k += 4096)
    if (b[k] != fill_byte(i, k)) return 0;
  return b[n - 1] == fill_byte(i, n - 1);
}

static void say(const char *msg) {
  ssize_t r = write(2, msg, strlen(msg));
  (void)r;
}

/* Allocates blocks of the sizes in turn (every third round by calloc)
 * into blocks[*n ...] until each size has failed in a row; returns 0, or
 * an exit code for the parent to report. */
static int fill_until_fail(const size_t *sz, size_t nsz, size_t *n, size_t *failures) {
  size_t failed_in_a_row = 0, before = *failures;
  for (size_t k = 0; failed_in_a_row < nsz; k++) {
    size_t size = sz[k % nsz];
    if (*n == MAX_BLOCKS) return 12; /* the limit did not hold */
    errno = 0;
    void *p = (k / nsz) % 3 == 1 ? calloc(1, size) : malloc(size);
    if (!p) {
      if (errno != ENOMEM) {
        say("oom: a failed allocation left errno other than ENOMEM\n");
        return 13;
      }
      ++*failures;
      failed_in_a_row++;
      continue;
    }
    failed_in_a_row = 0;
    fill(p, size, *n);
    blocks[*n] = p;
    block_size[*n] = (uint32_t)size;
    block_seed[*n] = (uint32_t)*n;
    ++*n;
  }
  return *failures - before >= nsz ? 0 : 23;
}

/* The child's work; returns its exit code (0: every check held). */
static int exhaust(void) {
  long vm_pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f || fscanf(f, "%ld", &vm_pages) != 1) return 10;
  fclose(f);
  struct rlimit lim = {(rlim_t)vm_pages * (rlim_t)sysconf(_SC_PAGESIZE) + HEADROOM, RLIM_INFINITY};
  lim.rlim_max = lim.rlim_cur;
  if (setrlimit(RLIMIT_AS, &lim) != 0) return 11;

  size_t n = 0, failures = 0;
  int rc;
  if ((rc = fill_until_fail(small_sizes, sizeof small_sizes / sizeof small_sizes[0], &n, &failures))) return rc;
  size_t kept = 0;
  for (size_t i = 0; i < n; i++) { /* a random half goes: holes in every small class */
    if ((i * 2654435761u >> 7) & 1) {
      free(blocks[i]);
      continue;
    }
    blocks[kept] = blocks[i];
    block_size[kept] = block_size[i];
    block_seed[kept++] = block_seed[i];
  }
  n = kept;
  if ((rc = fill_until_fail(mixed_sizes, sizeof mixed_sizes / sizeof mixed_sizes[0], &n, &failures))) return rc;
  ts_stats_t st;
  ts_stats_get(&st);
  uint64_t placed = 0;
  for (unsigned c = 0; c < TS_STATS_CLASSES; c++) placed += st.classes[c].foreign;
  if (placed < 1000) return 24; /* the holes took blocks of other classes */
  if ((rc = fill_until_fail(big_sizes, sizeof big_sizes / sizeof big_sizes[0], &n, &failures))) return rc;
  if (n < 100000) return 14;

  /* the other entry points fail the same way at a size nothing can serve */
  void *q = NULL;
  errno = 0;
  if (aligned_alloc(4096, 64 * MiB) != NULL || errno != ENOMEM) return 15;
  if (posix_memalign(&q, 64, 64 * MiB) != ENOMEM) return 16;
  errno = 0;
  if (realloc(blocks[0], 64 * MiB) != NULL || errno != ENOMEM) return 17;
  if (!check(blocks[0], block_size[0], block_seed[0])) return 18; /* realloc kept it */
  errno = 0;
  if (reallocarray(NULL, 64, MiB) != NULL || errno != ENOMEM) return 19;

  for (size_t i = 0; i < n; i++)
    if (!check(blocks[i], block_size[i], block_seed[i])) {
      say("oom: a block allocated before the failures changed\n");
      return 20;
    }
  for (size_t i = 0; i < n; i++) free(blocks[i]);
  ts_purge();

  /* everything freed: the same limit serves a tenth of it again */
  for (size_t i = 0; i < n / 10; i++) {
    size_t sz = block_size[i];
    if (!(blocks[i] = malloc(sz))) {
      say("oom: allocation failed again after everything was freed\n");
      return 21;
    }
    fill(blocks[i], sz, i);
  }
  for (size_t i = 0; i < n / 10; i++) {
    if (!check(blocks[i], block_size[i], i)) return 22;
    free(blocks[i]);
  }
  return 0;
}

TS_TEST(allocation_fails_cleanly_when_address_space_runs_out) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) _exit(exhaust());
  int st = 0;
  waitpid(pid, &st, 0);
  expect_true(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child: status 0x%x (exit %d, signal %d)", st,
              WIFEXITED(st) ? WEXITSTATUS(st) : -1, WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

int main(void) {
  if (UNDER_TSAN) {
    printf("  skip: ThreadSanitizer's shadow memory needs an unlimited address space\n");
    return 77;
  }
  ts_run(allocation_fails_cleanly_when_address_space_runs_out);
  return ts_test_done();
}
