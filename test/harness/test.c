/* SPDX-License-Identifier: MIT */
/* test.c: the harness behind test.h. */
#include "test.h"

#include <stdarg.h>
#include <string.h>
#include <unistd.h>

int ts_test_failures;
int ts_test_skipped;
static int passed, failed, skipped;

void ts_test_report(const char *file, int line, const char *expr, const char *fmt, ...) {
  va_list ap;
  ts_test_failures++;
  printf("  FAIL %s:%d: %s", file, line, expr);
  if (fmt && fmt[0]) {
    printf(": ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
  }
  printf("\n");
  fflush(stdout);
}

void ts_test_run(const char *name, void (*fn)(void)) {
  ts_test_failures = 0;
  ts_test_skipped = 0;
  fn();
  if (ts_test_failures) {
    failed++;
    printf("[FAIL] %s\n", name);
  } else if (ts_test_skipped) {
    skipped++;
    printf("[skip] %s\n", name);
  } else {
    passed++;
    printf("[ ok ] %s\n", name);
  }
  fflush(stdout);
}

int ts_test_done(void) {
  printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  if (failed) return 1;
  if (skipped && !passed) return 77;
  return 0;
}

static uint64_t pattern_seed(const void *p, size_t n) {
  uint64_t x = (uint64_t)(uintptr_t)p * 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
  return x ? x : 1;
}

/* One xorshift step per 8 bytes: cheap enough to fill megabytes. */
void ts_test_fill(void *p, size_t n) {
  uint64_t x = pattern_seed(p, n);
  unsigned char *b = p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    memcpy(b + i, &x, 8);
  }
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  for (; i < n; i++) b[i] = (unsigned char)(x >> (8 * (i & 7)));
}

int ts_test_check(const void *p, size_t n) {
  uint64_t x = pattern_seed(p, n);
  const unsigned char *b = p;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    if (memcmp(b + i, &x, 8) != 0) return 0;
  }
  x ^= x << 13; x ^= x >> 7; x ^= x << 17;
  for (; i < n; i++)
    if (b[i] != (unsigned char)(x >> (8 * (i & 7)))) return 0;
  return 1;
}

size_t ts_test_rss_bytes(void) {
  long pages = 0, resident = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  fclose(f);
  return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

unsigned ts_test_mappings(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  unsigned n = 0;
  int c;
  if (!f) return 0;
  while ((c = fgetc(f)) != EOF) n += c == '\n';
  fclose(f);
  return n;
}

void ts_test_capture_stderr(void (*fn)(void *), void *arg, char *err, size_t cap) {
  int fds[2], saved = dup(2);
  err[0] = 0;
  if (pipe(fds) != 0) return;
  fflush(stderr);
  dup2(fds[1], 2);
  fn(arg);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  close(fds[1]);
  ssize_t n = read(fds[0], err, cap - 1);
  err[n > 0 ? n : 0] = 0;
  close(fds[0]);
}
