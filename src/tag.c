/* SPDX-License-Identifier: MIT */
/*
 * tag.c: tags, names for what a program allocates (AutoMQ's per-type
 * metric, ASMalloc's per-site accounting), and the bytes each holds.
 *
 * A tag is an index into a fixed table of TS_TAGS_MAX names; 0 is
 * "untagged".  Each thread has a current tag (ts_tag_current, set by
 * ts_tag_set); with option tags every block allocated is charged to the
 * current tag, which is kept with the block (a small object's in its
 * slab's side array next to its slack, a large run's in its span, a huge
 * block's in its header), so that the free credits the tag that
 * allocated it, whichever thread frees it.  Counters are atomics: with
 * tags on every call takes the slow path anyway (like stats_exact, which
 * tags imply).  Without the option the table and ts_tag_set work but
 * nothing is charged.
 *
 * Invariants (option tags, a quiet process): the tags' live bytes sum to
 * the ledger's requested_bytes; peak >= live.
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <tessera.h>

_Static_assert(TS_TAGS_MAX <= 65536, "a tag fits in the 16 bits kept per block");

typedef struct tag_s {
  char name[TS_TAG_NAME_MAX];
  _Atomic uint64_t live;   /* requested bytes held */
  _Atomic uint64_t peak;
  _Atomic uint64_t count;  /* blocks allocated since start */
} tag_t;

static tag_t tags[TS_TAGS_MAX] = {{.name = "untagged"}};
static _Atomic unsigned ntags = 1;
static pthread_mutex_t tag_lock = PTHREAD_MUTEX_INITIALIZER;

__thread ts_tag_t ts_tag_current __attribute__((tls_model("initial-exec")));

ts_tag_t ts_tag_register(const char *name) {
  if (!name || !*name) {
    ts_message("ts_tag_register(): a tag needs a name (got %s)", name ? "\"\"" : "NULL");
    errno = EINVAL;
    return TS_TAG_NONE;
  }
  size_t len = strnlen(name, TS_TAG_NAME_MAX);
  if (len >= TS_TAG_NAME_MAX) len = TS_TAG_NAME_MAX - 1;
  pthread_mutex_lock(&tag_lock);
  unsigned n = atomic_load_explicit(&ntags, memory_order_relaxed);
  for (unsigned t = 1; t < n; t++) {
    if (strncmp(tags[t].name, name, len) == 0 && tags[t].name[len] == 0) {
      pthread_mutex_unlock(&tag_lock);
      return (ts_tag_t)t;
    }
  }
  if (n == TS_TAGS_MAX) {
    pthread_mutex_unlock(&tag_lock);
    ts_message("ts_tag_register(): no room for tag \"%s\": all %u tags are taken", name, (unsigned)TS_TAGS_MAX - 1);
    errno = ENOSPC;
    return TS_TAG_NONE;
  }
  memcpy(tags[n].name, name, len);
  tags[n].name[len] = 0;
  atomic_store_explicit(&ntags, n + 1, memory_order_release);
  pthread_mutex_unlock(&tag_lock);
  return (ts_tag_t)n;
}

ts_tag_t ts_tag_set(ts_tag_t tag) {
  ts_tag_t prev = ts_tag_current;
  if (tag >= atomic_load_explicit(&ntags, memory_order_acquire)) {
    ts_message("ts_tag_set(): no tag %u (ts_tag_register gives tags); the current tag stays %u", (unsigned)tag,
               (unsigned)prev);
    errno = EINVAL;
    return prev;
  }
  ts_tag_current = tag;
  return prev;
}

ts_tag_t ts_tag_get(void) { return ts_tag_current; }

void *ts_malloc_tagged(size_t size, ts_tag_t tag) {
  ts_tag_t prev = ts_tag_set(tag);
  void *p = ts_malloc(size);
  int saved = errno;
  ts_tag_current = prev;
  errno = saved;
  return p;
}

/* Charges (bytes > 0) or credits a tag; counts an allocation if asked. */
void ts_tag_account(unsigned tag, int64_t bytes, bool allocation) {
  tag_t *t = &tags[tag < TS_TAGS_MAX ? tag : 0];
  uint64_t live = atomic_fetch_add_explicit(&t->live, (uint64_t)bytes, memory_order_relaxed) + (uint64_t)bytes;
  if (allocation) atomic_fetch_add_explicit(&t->count, 1, memory_order_relaxed);
  if (bytes > 0) {
    uint64_t peak = atomic_load_explicit(&t->peak, memory_order_relaxed);
    while (live > peak &&
           !atomic_compare_exchange_weak_explicit(&t->peak, &peak, live, memory_order_relaxed, memory_order_relaxed)) {
    }
  }
}

unsigned ts_tag_stats(ts_tag_stats_t *out, unsigned max) {
  unsigned n = atomic_load_explicit(&ntags, memory_order_acquire);
  for (unsigned t = 0; t < n && t < max && out; t++) {
    memcpy(out[t].name, tags[t].name, TS_TAG_NAME_MAX);
    out[t].tag = (ts_tag_t)t;
    out[t].requested_bytes = atomic_load_explicit(&tags[t].live, memory_order_relaxed);
    out[t].peak_bytes = atomic_load_explicit(&tags[t].peak, memory_order_relaxed);
    out[t].allocations = atomic_load_explicit(&tags[t].count, memory_order_relaxed);
  }
  return n;
}

void ts_tag_prefork(void) { pthread_mutex_lock(&tag_lock); }
void ts_tag_postfork_parent(void) { pthread_mutex_unlock(&tag_lock); }
void ts_tag_postfork_child(void) { pthread_mutex_init(&tag_lock, NULL); }
