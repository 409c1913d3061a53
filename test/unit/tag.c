/* SPDX-License-Identifier: MIT */
/* Unit test of tag.c (run with TESSERA_CONF=tags:true): blocks of every
 * size are charged to the allocating thread's current tag and credited
 * back to it when freed by another thread; the tags' bytes sum to the
 * ledger's requested bytes and each tag's to the test's own count; bad
 * input is refused with a message. */
#include "internal.h"
#include "tessera.h"
#include "test.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static ts_tag_stats_t tags[TS_TAGS_MAX];
static ts_stats_t st;

static uint64_t tag_bytes(ts_tag_t t) {
  unsigned n = ts_tag_stats(tags, TS_TAGS_MAX);
  return t < n ? tags[t].requested_bytes : 0;
}

/* The tags' live bytes against the ledger (no other thread allocates). */
static void check_sum(void) {
  unsigned n = ts_tag_stats(tags, TS_TAGS_MAX);
  uint64_t sum = 0;
  for (unsigned t = 0; t < n; t++) {
    sum += tags[t].requested_bytes;
    expect_true(tags[t].peak_bytes >= tags[t].requested_bytes, "tag %u", t);
  }
  ts_stats_get(&st);
  expect_eq(sum, st.requested_bytes);
}

TS_TEST(option_on) {
  ts_free(ts_malloc(1)); /* options are read at the first call */
  assert_true(ts_opt.tags && ts_opt.stats_exact, "run with TESSERA_CONF=tags:true");
}

TS_TEST(register_is_idempotent_and_names_are_kept) {
  ts_tag_t a = ts_tag_register("sessions");
  expect_true(a != TS_TAG_NONE);
  expect_eq(ts_tag_register("sessions"), a);
  ts_tag_t b = ts_tag_register("index");
  expect_true(b != a && b != TS_TAG_NONE);
  char longname[100];
  memset(longname, 'x', sizeof longname - 1);
  longname[sizeof longname - 1] = 0;
  ts_tag_t l = ts_tag_register(longname);
  ts_tag_stats(tags, TS_TAGS_MAX);
  expect_eq(strlen(tags[l].name), TS_TAG_NAME_MAX - 1);
  expect_eq(strcmp(tags[0].name, "untagged"), 0);
  expect_eq(strcmp(tags[a].name, "sessions"), 0);
}

enum { N = 3000 };
static void *blk[N];
static size_t blk_n[N];
static ts_tag_t blk_tag[N];

static size_t some_size(unsigned i) {
  switch (i % 10) {
  case 0: return 40000 + i;              /* large */
  case 1: return (size_t)(3 << 20) + i;  /* huge, one in ten... */
  default: return (size_t)(i * 7 % 2000);
  }
}

static void *free_evens(void *arg) {
  (void)arg;
  for (unsigned i = 0; i < N; i += 2) {
    ts_free(blk[i]);
    blk[i] = NULL;
  }
  return NULL;
}

TS_TEST(frees_credit_the_allocating_tag_from_any_thread) {
  ts_tag_t a = ts_tag_register("alpha"), b = ts_tag_register("beta");
  uint64_t a0 = tag_bytes(a), b0 = tag_bytes(b), own[2] = {0, 0};
  for (unsigned i = 0; i < N; i++) {
    if (i % 10 == 1 && i % 20 != 1) { /* half as many huge blocks */
      blk[i] = NULL;
      blk_n[i] = 0;
      continue;
    }
    ts_tag_t t = i % 3 ? a : b;
    blk_tag[i] = t;
    blk_n[i] = some_size(i);
    if (i % 5 == 0) {
      blk[i] = ts_malloc_tagged(blk_n[i], t);
    } else {
      ts_tag_t prev = ts_tag_push(t);
      blk[i] = ts_malloc(blk_n[i]);
      ts_tag_pop(prev);
    }
    assert_true(blk[i] != NULL);
    own[t == a ? 0 : 1] += blk_n[i];
  }
  expect_eq(ts_tag_get(), TS_TAG_NONE);
  expect_eq(tag_bytes(a) - a0, own[0]);
  expect_eq(tag_bytes(b) - b0, own[1]);
  check_sum();
  /* another thread frees half: credited to the tags that allocated */
  for (unsigned i = 0; i < N; i += 2) own[blk_tag[i] == a ? 0 : 1] -= blk_n[i];
  pthread_t th;
  pthread_create(&th, NULL, free_evens, NULL);
  pthread_join(th, NULL);
  expect_eq(tag_bytes(a) - a0, own[0]);
  expect_eq(tag_bytes(b) - b0, own[1]);
  check_sum();
  /* realloc keeps the tag and follows the size, at every size */
  for (unsigned i = 1; i < N; i += 2) {
    if (!blk[i]) continue;
    size_t n = some_size(i + 3);
    void *q = ts_realloc(blk[i], n);
    assert_true(q != NULL);
    own[blk_tag[i] == a ? 0 : 1] += n - blk_n[i];
    blk[i] = q;
    blk_n[i] = n;
  }
  expect_eq(tag_bytes(a) - a0, own[0]);
  expect_eq(tag_bytes(b) - b0, own[1]);
  check_sum();
  for (unsigned i = 0; i < N; i++) ts_free(blk[i]);
  expect_eq(tag_bytes(a), a0);
  expect_eq(tag_bytes(b), b0);
  ts_tag_stats(tags, TS_TAGS_MAX);
  expect_true(tags[a].allocations >= N / 2);
  check_sum();
}

static int bad_errno[3];
static ts_tag_t bad_result[3];
static void bad_calls(void *arg) {
  (void)arg;
  errno = 0;
  bad_result[0] = ts_tag_register("");
  bad_errno[0] = errno;
  errno = 0;
  bad_result[1] = ts_tag_register(NULL);
  bad_errno[1] = errno;
  errno = 0;
  bad_result[2] = ts_tag_set(TS_TAGS_MAX - 1);
  bad_errno[2] = errno;
}

TS_TEST(bad_input_is_refused_with_a_message) {
  char err[1024];
  ts_test_capture_stderr(bad_calls, NULL, err, sizeof err);
  expect_eq(bad_result[0], TS_TAG_NONE);
  expect_eq(bad_errno[0], EINVAL);
  expect_eq(bad_result[1], TS_TAG_NONE);
  expect_eq(bad_errno[1], EINVAL);
  expect_eq(bad_errno[2], EINVAL);
  expect_eq(ts_tag_get(), TS_TAG_NONE);
  expect_true(strstr(err, "ts_tag_register(): a tag needs a name") != NULL, "%s", err);
  expect_true(strstr(err, "ts_tag_set(): no tag 255") != NULL, "%s", err);
}

static void fill_table(void *arg) {
  (void)arg;
  char name[32];
  for (unsigned i = 0; i < TS_TAGS_MAX + 5; i++) {
    snprintf(name, sizeof name, "filler-%u", i);
    ts_tag_register(name);
  }
}

TS_TEST(a_full_table_refuses_new_tags) {
  char err[4096];
  ts_test_capture_stderr(fill_table, NULL, err, sizeof err);
  expect_eq(ts_tag_stats(NULL, 0), TS_TAGS_MAX);
  errno = 0;
  ts_test_capture_stderr(bad_calls, NULL, err, sizeof err); /* keep stderr quiet */
  expect_eq(ts_tag_register("one too many"), TS_TAG_NONE);
  expect_eq(errno, ENOSPC);
  expect_true(ts_tag_register("alpha") != TS_TAG_NONE); /* an existing name still resolves */
}

int main(void) {
  ts_run(option_on);
  ts_run(register_is_idempotent_and_names_are_kept);
  ts_run(frees_credit_the_allocating_tag_from_any_thread);
  ts_run(bad_input_is_refused_with_a_message);
  ts_run(a_full_table_refuses_new_tags);
  return ts_test_done();
}
