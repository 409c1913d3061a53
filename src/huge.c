/* SPDX-License-Identifier: MIT */
/*
 * huge.c: requests above TS_LARGE_MAX, each mapped on its own.
 *
 * Layout: one header page, then the user's bytes.  The user pointer is
 * aligned to TS_CHUNK_SIZE (or the requested alignment, if larger), so it
 * is the base of a chunk-map window that no other mapping can start in;
 * that window is marked TS_WINDOW_HUGE and the header is found at
 * p - TS_PAGE_SIZE.  Freeing unmaps the whole mapping, so huge blocks
 * never strand memory.  realloc grows in place with mremap when the
 * address space after the block is free, and otherwise moves the pages
 * (mremap to a new aligned place), never copying bytes.
 * No locks: a huge block is touched only by the thread that holds it.
 * The ledger's huge figures (stats.c) are atomic counters updated here,
 * and every block is on a list (under huge_lock) so that the ledger can ask
 * the kernel which of its pages are resident.
 */
#include "internal.h"

#include <errno.h>

static size_t huge_round(size_t size) { return (size + TS_PAGE_MASK) & ~TS_PAGE_MASK; }

_Atomic uint64_t ts_huge_requested, ts_huge_usable_total, ts_huge_count, ts_huge_nmalloc,
    ts_huge_nfree;

static pthread_mutex_t huge_lock = PTHREAD_MUTEX_INITIALIZER;
static ts_huge_t *huge_list;

static void huge_link(ts_huge_t *h) {
  pthread_mutex_lock(&huge_lock);
  h->prev = NULL;
  h->next = huge_list;
  if (huge_list) huge_list->prev = h;
  huge_list = h;
  pthread_mutex_unlock(&huge_lock);
}

static void huge_unlink(ts_huge_t *h) {
  pthread_mutex_lock(&huge_lock);
  if (h->prev) h->prev->next = h->next;
  else huge_list = h->next;
  if (h->next) h->next->prev = h->prev;
  pthread_mutex_unlock(&huge_lock);
}

/* A block's sizes change under huge_lock, which the ledger's walk holds. */
static void huge_set_size(ts_huge_t *h, size_t usable) {
  pthread_mutex_lock(&huge_lock);
  h->usable_bytes = usable;
  h->map_bytes = usable + TS_PAGE_SIZE;
  pthread_mutex_unlock(&huge_lock);
}

/* Calls fn(mapping, bytes) for every huge block, under huge_lock. */
void ts_huge_each(void (*fn)(void *map, size_t bytes, void *arg), void *arg) {
  pthread_mutex_lock(&huge_lock);
  for (ts_huge_t *h = huge_list; h; h = h->next) fn(h, h->map_bytes, arg);
  pthread_mutex_unlock(&huge_lock);
}

void ts_huge_prefork(void) { pthread_mutex_lock(&huge_lock); }
void ts_huge_postfork_parent(void) { pthread_mutex_unlock(&huge_lock); }
void ts_huge_postfork_child(void) { pthread_mutex_init(&huge_lock, NULL); }

/* The block's tag's bytes follow a new request size. */
static void huge_retag(const ts_huge_t *h, size_t size) {
  if (ts_opt.tags) ts_tag_account((unsigned)h->tag, (int64_t)size - (int64_t)h->requested_bytes, false);
}

/* Adds (sign 1) or removes (sign -1) a block's figures from the ledger. */
static void huge_count(const ts_huge_t *h, int sign) {
  uint64_t m = (uint64_t)(int64_t)sign;
  atomic_fetch_add_explicit(&ts_huge_requested, m * h->requested_bytes, memory_order_relaxed);
  atomic_fetch_add_explicit(&ts_huge_usable_total, m * h->usable_bytes, memory_order_relaxed);
  atomic_fetch_add_explicit(&ts_huge_count, m, memory_order_relaxed);
}

void *ts_huge_alloc(size_t size, size_t alignment, size_t requested) {
  size_t usable = huge_round(size);
  size_t align = alignment > TS_CHUNK_SIZE ? alignment : TS_CHUNK_SIZE;
  if (usable < size || usable + TS_PAGE_SIZE < usable) {
    errno = ENOMEM;
    return NULL;
  }
  char *base = ts_os_map_aligned(usable + TS_PAGE_SIZE, align, TS_PAGE_SIZE);
  if (!base) {
    errno = ENOMEM;
    return NULL;
  }
  ts_huge_t *h = (ts_huge_t *)base;
  h->cookie = TS_HUGE_MAGIC ^ ts_secret;
  h->map_bytes = usable + TS_PAGE_SIZE;
  h->usable_bytes = usable;
  h->requested_bytes = requested;
  h->tag = ts_tag_current;
  huge_link(h);
  huge_count(h, 1);
  atomic_fetch_add_explicit(&ts_huge_nmalloc, 1, memory_order_relaxed);
  if (ts_opt.tags) ts_tag_account(ts_tag_current, (int64_t)requested, true);
  char *user = base + TS_PAGE_SIZE;
  ts_window_set((uintptr_t)user, TS_WINDOW_HUGE);
  return user;
}

ts_huge_t *ts_huge_header(const void *p) {
  if ((uintptr_t)p & TS_CHUNK_MASK) return NULL;
  ts_huge_t *h = (ts_huge_t *)((uintptr_t)p - TS_PAGE_SIZE);
  if (h->cookie != (TS_HUGE_MAGIC ^ ts_secret)) return NULL;
  return h;
}

void ts_huge_free(void *p) {
  ts_huge_t *h = (ts_huge_t *)((uintptr_t)p - TS_PAGE_SIZE);
  size_t bytes = h->map_bytes;
  huge_unlink(h);
  huge_count(h, -1);
  atomic_fetch_add_explicit(&ts_huge_nfree, 1, memory_order_relaxed);
  if (ts_opt.tags) ts_tag_account((unsigned)h->tag, -(int64_t)h->requested_bytes, false);
  h->cookie = 0;
  ts_window_set((uintptr_t)p, TS_WINDOW_NONE);
  ts_os_unmap(h, bytes);
}

size_t ts_huge_usable(const void *p) {
  return ((const ts_huge_t *)((uintptr_t)p - TS_PAGE_SIZE))->usable_bytes;
}

void *ts_huge_realloc(void *p, size_t size) {
  ts_huge_t *h = (ts_huge_t *)((uintptr_t)p - TS_PAGE_SIZE);
  size_t usable = huge_round(size);
  if (usable < size) return NULL;
  if (usable == h->usable_bytes) {
    huge_retag(h, size);
    huge_count(h, -1);
    h->requested_bytes = size;
    huge_count(h, 1);
    return p;
  }
  if (usable < h->usable_bytes) {
    huge_retag(h, size);
    huge_count(h, -1);
    size_t old_usable = h->usable_bytes;
    huge_set_size(h, usable); /* the ledger's walk sees the smaller size before the tail goes */
    ts_os_unmap((char *)p + usable, old_usable - usable);
    h->requested_bytes = size;
    huge_count(h, 1);
    return p;
  }
  size_t new_map = usable + TS_PAGE_SIZE;
  if (ts_os_remap_inplace(h, h->map_bytes, new_map)) {
    huge_retag(h, size);
    huge_count(h, -1);
    huge_set_size(h, usable);
    h->requested_bytes = size;
    huge_count(h, 1);
    return p;
  }
  /* Reserve an aligned place, then move the pages there. */
  char *dest = ts_os_map_aligned(new_map, TS_CHUNK_SIZE, TS_PAGE_SIZE);
  if (!dest) return NULL;
  size_t old_map = h->map_bytes;
  huge_count(h, -1);
  huge_unlink(h);
  /* The old window is cleared while the old pages are still mapped: once
   * they move, another thread's mapping may take the address, and its
   * window mark must not be cleared after it is set. */
  ts_window_set((uintptr_t)p, TS_WINDOW_NONE);
  ts_huge_t *nh = ts_os_remap(h, old_map, new_map, dest);
  if (!nh) {
    ts_window_set((uintptr_t)p, TS_WINDOW_HUGE);
    huge_link(h);
    huge_count(h, 1);
    ts_os_unmap(dest, new_map);
    return NULL;
  }
  nh->usable_bytes = usable;
  nh->map_bytes = new_map;
  huge_link(nh);
  huge_retag(nh, size);
  nh->requested_bytes = size;
  huge_count(nh, 1);
  char *user = (char *)nh + TS_PAGE_SIZE;
  ts_window_set((uintptr_t)user, TS_WINDOW_HUGE);
  return user;
}
