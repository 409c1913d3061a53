/* SPDX-License-Identifier: MIT */
/*
 * api/invalid_free.c: death tests.  Freeing a pointer that tessera never
 * handed out, and that lies outside its memory, must print
 * "tessera: free(): invalid pointer 0x..." on stderr and abort; so must a
 * pointer into the middle of a block, a double free (at once, or after the
 * block went back to its slab), and the other functions name themselves.  Each case
 * runs in a forked child whose stderr goes to a pipe.
 */
#include "test.h"
#include "tessera.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <malloc.h>
#include <unistd.h>

#define EXPECTED "tessera: free(): invalid pointer 0x"

/* Hides where a pointer came from, so that the compiler does not reject
 * free() of a stack or global address at build time. */
static void *volatile laundry;
static void *launder(void *p) {
  laundry = p;
  return laundry;
}

static void call_free(void *p) { free(launder(p)); }
static void call_ts_free(void *p) { ts_free(launder(p)); }

static char global_buf[256] __attribute__((aligned(64)));

struct death {
  int exited;        /* child returned normally (the free did not abort) */
  int sig;           /* terminating signal, or 0 */
  int timed_out;
  char err[4096];    /* what the child wrote to stderr */
};

/* Runs fn(arg) in a child with stderr on a pipe; collects the outcome. */
static int run_death(void (*fn)(void *), void *arg, struct death *d) {
  memset(d, 0, sizeof *d);
  int fds[2];
  if (pipe(fds) != 0) return -1;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);   /* no core files from the abort */
    signal(SIGABRT, SIG_DFL);
    alarm(10);
    close(fds[0]);
    dup2(fds[1], 2);
    close(fds[1]);
    fn(arg);
    _exit(0);   /* the free returned: that is a failure */
  }
  close(fds[1]);
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fds[0], d->err + len, sizeof d->err - 1 - len);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    len += (size_t)r;
    if (len == sizeof d->err - 1) break;
  }
  d->err[len] = 0;
  close(fds[0]);
  int st = 0;
  int waited = 0;
  for (int i = 0; i < 3000; i++) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) { waited = 1; break; }
    usleep(5000);
  }
  if (!waited) {
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    d->timed_out = 1;
  }
  if (WIFEXITED(st)) d->exited = 1;
  if (WIFSIGNALED(st)) d->sig = WTERMSIG(st);
  return 0;
}

/* Expects death by SIGABRT with a message that starts with expected and
 * names the pointer p right after it. */
static void expect_death_naming(void (*fn)(void *), void *arg, void *p, const char *expected, const char *what) {
  struct death d;
  if (run_death(fn, arg, &d) != 0) {
    expect_true(0, "%s: could not fork", what);
    return;
  }
  expect_true(!d.timed_out, "%s: child hung", what);
  expect_true(!d.exited, "%s: free() returned instead of aborting", what);
  expect_true(d.sig == SIGABRT, "%s: child died by signal %d (%s), not SIGABRT", what, d.sig,
              d.sig ? strsignal(d.sig) : "none");
  const char *m = strstr(d.err, expected);
  expect_true(m != NULL, "%s: stderr lacks \"%s\"; it was: \"%s\"", what, expected, d.err);
  if (m) {
    unsigned long long addr = strtoull(m + strlen(expected), NULL, 16);
    if (p) expect_true(addr == (unsigned long long)(uintptr_t)p, "%s: message names 0x%llx, not %p", what, addr, p);
  }
}

static void expect_invalid_free(void (*fn)(void *), void *p, const char *what) {
  expect_death_naming(fn, p, p, EXPECTED, what);
}

/* ---- misuse of tessera's own blocks ---- */

enum { CHURN = 1000 };
static void *churn_blocks[CHURN];

/* Frees enough blocks of p's size to push everything cached before them
 * out of the thread cache, to the slabs, where the checks are. */
static void churn(size_t size) {
  for (int i = 0; i < CHURN; i++) churn_blocks[i] = malloc(size);
  for (int i = 0; i < CHURN; i++) free(churn_blocks[i]);
}

static void double_free_now(void *p) {
  free(p);
  free(launder(p));
}

static void double_free_later(void *p) {
  free(p);
  churn(64);       /* p reaches its slab */
  free(launder(p)); /* p is cached again, not at the top */
  churn(64);       /* and reaches its slab a second time */
}

static void interior_small(void *p) {
  free(launder((char *)p + 16));
  churn(64);
}

static void interior_large(void *p) { free(launder((char *)p + 4096)); }

static void double_free_large(void *p) {
  free(p);          /* kept in the thread's cache of large runs */
  free(launder(p)); /* caught: the run is marked cached */
}

static void realloc_stack(void *p) { (void)!realloc(launder(p), 10); }

static void usable_size_global(void *p) { (void)malloc_usable_size(launder(p)); }

static void free_sized_too_big(void *p) { ts_free_sized(p, 100000); }

TS_TEST(double_free_is_reported) {
  void *p = malloc(64);
  assert_true(p != NULL);
  expect_death_naming(double_free_now, p, p, "tessera: free(): double free of 0x", "double free at once");
  expect_death_naming(double_free_later, p, p, "tessera: free(): double free of 0x", "double free after a flush");
  free(p);
  void *big = malloc(100000);
  assert_true(big != NULL);
  expect_death_naming(double_free_large, big, big, "tessera: free(): double free of 0x", "double free of a large block");
  free(big);
}

TS_TEST(interior_pointers_are_reported) {
  char *small = malloc(64), *large = malloc(100000), *huge = malloc(8 << 20);
  assert_true(small && large && huge);
  expect_death_naming(interior_small, small, small + 16, "tessera: free(): invalid pointer 0x", "small + 16");
  expect_death_naming(interior_large, large, large + 4096, "tessera: free(): invalid pointer 0x", "large + 4096");
  expect_death_naming(interior_large, huge, huge + 4096, "tessera: free(): invalid pointer 0x", "huge + 4096");
  free(small);
  free(large);
  free(huge);
}

TS_TEST(other_functions_name_themselves) {
  char buf[64] __attribute__((aligned(16)));
  expect_death_naming(realloc_stack, buf, buf, "tessera: realloc(): invalid pointer 0x", "realloc(stack)");
  expect_death_naming(usable_size_global, global_buf, global_buf,
                      "tessera: malloc_usable_size(): invalid pointer 0x", "malloc_usable_size(global)");
  void *p = malloc(100);
  assert_true(p != NULL);
  expect_death_naming(free_sized_too_big, p, NULL, "tessera: free_sized(): size 100000", "free_sized(p, too big)");
  free(p);
}

TS_TEST(free_null_is_noop) {
  free(NULL);
  ts_free(NULL);
  void *p = ts_malloc(10);
  expect_true(p != NULL);
  free(NULL);
  ts_free(p);
}

TS_TEST(invalid_stack_pointer) {
  char buf[128] __attribute__((aligned(16)));
  memset(buf, 0, sizeof buf);
  expect_invalid_free(call_free, buf, "free(stack)");
  expect_invalid_free(call_free, buf + 64, "free(stack + 64)");
  expect_invalid_free(call_ts_free, buf + 16, "ts_free(stack + 16)");
}

TS_TEST(invalid_global_pointer) {
  expect_invalid_free(call_free, global_buf, "free(global)");
  expect_invalid_free(call_free, global_buf + 128, "free(global + 128)");
  expect_invalid_free(call_ts_free, global_buf + 32, "ts_free(global + 32)");
}

TS_TEST(invalid_mmap_pointer) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  char *m = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(m != MAP_FAILED);
  /* A guard page in front, so that reading before the pointer faults. */
  munmap(m, pg);
  expect_invalid_free(call_free, m + pg, "free(mmap page)");
  expect_invalid_free(call_free, m + pg + 16, "free(mmap page + 16)");
  expect_invalid_free(call_ts_free, m + 2 * pg, "ts_free(mmap second page)");
  expect_invalid_free(call_free, m + 3 * pg + pg / 2, "free(mmap middle of page)");
  munmap(m + pg, 3 * pg);
}

TS_TEST(invalid_unmapped_pointer) {
  size_t pg = (size_t)sysconf(_SC_PAGESIZE);
  char *m = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert_true(m != MAP_FAILED);
  munmap(m, pg);
  /* Nothing is mapped there now: tessera must not read through it. */
  expect_invalid_free(call_free, m, "free(unmapped page)");
  expect_invalid_free(call_ts_free, m + 48, "ts_free(unmapped page + 48)");
}

TS_TEST(valid_free_survives) {
  /* The same machinery with a legitimate free: the child exits normally. */
  struct death d;
  void *p = ts_malloc(100);
  assert_true(p != NULL);
  assert_eq(run_death(call_free, p, &d), 0);
  expect_true(d.exited, "free of a valid block in the child did not return (signal %d)", d.sig);
  expect_true(d.err[0] == 0, "unexpected stderr: %s", d.err);
  ts_free(p);
}

int main(void) {
  ts_run(free_null_is_noop);
  ts_run(invalid_stack_pointer);
  ts_run(invalid_global_pointer);
  ts_run(invalid_mmap_pointer);
  ts_run(invalid_unmapped_pointer);
  ts_run(valid_free_survives);
  ts_run(double_free_is_reported);
  ts_run(interior_pointers_are_reported);
  ts_run(other_functions_name_themselves);
  return ts_test_done();
}
