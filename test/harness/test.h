/* SPDX-License-Identifier: MIT */
/*
 * test.h: the tests' tiny harness.  A test file defines test functions with
 * TS_TEST(name) and lists them in main with ts_run(name).  expect_* records a
 * failure and goes on; assert_* records it and returns from the test.  The
 * program prints one line per test and closes with "N passed, N failed";
 * it exits 0 when nothing failed, 1 otherwise, and 77 (CTest's skip code)
 * when ts_skip() was called and nothing failed.
 */
#ifndef TS_TEST_H
#define TS_TEST_H

#include <stdio.h>
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

extern int ts_test_failures;     /* failures in the running test */
extern int ts_test_skipped;

void ts_test_report(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void ts_test_run(const char *name, void (*fn)(void));
int ts_test_done(void);          /* prints the closing line, returns the exit code */

#define TS_TEST(name) static void name(void)
#define ts_run(name) ts_test_run(#name, name)
#define ts_skip(...) do { ts_test_skipped = 1; printf("  skip: " __VA_ARGS__); printf("\n"); return; } while (0)

#define expect_true(c, ...) do { if (!(c)) ts_test_report(__FILE__, __LINE__, #c, "" __VA_ARGS__); } while (0)
#define assert_true(c, ...) do { if (!(c)) { ts_test_report(__FILE__, __LINE__, #c, "" __VA_ARGS__); return; } } while (0)
#define expect_eq(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) ts_test_report(__FILE__, __LINE__, #a " == " #b, "%lld != %lld", a_, b_); } while (0)
#define assert_eq(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) { ts_test_report(__FILE__, __LINE__, #a " == " #b, "%lld != %lld", a_, b_); return; } } while (0)
#define expect_ptr_aligned(p, al) expect_true(((uintptr_t)(p) % (al)) == 0, "%p not aligned to %zu", (void *)(p), (size_t)(al))

/* The process's resident bytes (/proc/self/statm) and its number of
 * mappings (lines of /proc/self/maps); 0 if unreadable. */
size_t ts_test_rss_bytes(void);
unsigned ts_test_mappings(void);

/* Runs fn(arg) with stderr captured into err (NUL-terminated, at most
 * cap - 1 bytes). */
void ts_test_capture_stderr(void (*fn)(void *), void *arg, char *err, size_t cap);

/* Fill/check a block with a pattern derived from its address and size. */
void ts_test_fill(void *p, size_t n);
int ts_test_check(const void *p, size_t n);   /* 1 when intact */

#ifdef __cplusplus
}
#endif

#endif
