/* SPDX-License-Identifier: MIT */
/*
 * init.c: process start-up, per-thread set-up and teardown, and fork.
 *
 * The first allocation of the process runs ts_init_slow(), whichever thread
 * makes it and however early (before main, inside the dynamic loader).
 * Everything it needs is static (arenas, the chunk map) or comes from mmap;
 * it calls nothing that allocates until the arenas are usable, and the
 * calls that may allocate (pthread_atfork) come last: a nested allocation
 * from them is served from arena 0 without a thread cache.  Other threads
 * that arrive meanwhile wait for it.
 *
 * Fork: prefork takes every allocator lock, so that the child inherits a
 * consistent heap; the parent then releases them and the child re-creates
 * them.  The child's other threads are gone: their thread caches' objects
 * stay allocated (a bounded leak, as in jemalloc), and their arena bindings
 * are dropped.
 */
#include "internal.h"

#include <sched.h>

atomic_int ts_init_state;
pthread_key_t ts_tcache_key;
static pthread_t init_owner;

static void init_thread_exit(void *arg) { ts_tcache_teardown(arg); }

/* Locks in the order the allocator takes them (docs/ARCHITECTURE.md,
 * Locks): stats_lock is taken before the registry, bin, arena and huge
 * locks by a snapshot.  The print lock is not taken: a printer may hold it
 * across a blocking write, and the child re-creates it. */
static void init_prefork(void) {
  ts_stats_prefork();
  ts_tcache_prefork();
  ts_bin_prefork();
  ts_arena_prefork();
  ts_mesh_prefork();
  ts_huge_prefork();
  ts_tag_prefork();
}
static void init_postfork_parent(void) {
  ts_tag_postfork_parent();
  ts_huge_postfork_parent();
  ts_arena_postfork_parent();
  ts_bin_postfork_parent();
  ts_tcache_postfork_parent();
  ts_stats_postfork_parent();
}
static void init_postfork_child(void) {
  ts_arena_postfork_child();
  ts_bin_postfork_child();
  ts_tcache_postfork_child();
  ts_mesh_postfork_child();
  ts_purge_postfork_child();
  ts_stats_postfork_child();
  ts_stats_writer_postfork_child();
  ts_tag_postfork_child();
  ts_huge_postfork_child();
  if (ts_tcache.state == TS_TCACHE_ACTIVE)
    atomic_fetch_add_explicit(&ts_tcache.arena->xthreads, 1, memory_order_relaxed);
}

void ts_init_slow(void) {
  int expected = 0;
  if (atomic_compare_exchange_strong(&ts_init_state, &expected, 1)) {
    init_owner = pthread_self();
    ts_secret = ts_os_random();
    ts_options_init();
    ts_sizeclass_init();
    ts_purge_init();
    unsigned n = ts_os_ncpus();
    ts_narenas = n < TS_ARENAS_MAX ? n : TS_ARENAS_MAX;
    for (unsigned i = 0; i < ts_narenas; i++) ts_arena_init(&ts_arenas[i], i);
    pthread_key_create(&ts_tcache_key, init_thread_exit);
    pthread_atfork(init_prefork, init_postfork_parent, init_postfork_child);
    atomic_store_explicit(&ts_init_state, 2, memory_order_release);
    return;
  }
  if (expected == 1 && pthread_equal(init_owner, pthread_self())) return;
  while (!ts_is_ready()) sched_yield();
}

/* The arenas are usable once the initialising thread has set them up; a
 * nested allocation during set-up sees state 1 and its own thread id. */
static bool init_arenas_usable(void) {
  if (ts_is_ready()) return true;
  ts_init_slow();
  return ts_is_ready() || ts_narenas > 0;
}

ts_tcache_t *ts_thread_tcache(void) {
  ts_tcache_t *tc = &ts_tcache;
  if (TS_LIKELY(tc->state == TS_TCACHE_ACTIVE)) return tc;
  if (tc->state == TS_TCACHE_DEAD) return NULL;
  if (!ts_is_ready()) {
    ts_init_slow();
    if (!ts_is_ready()) return NULL;
  }
  ts_tcache_setup(tc);
  return tc->state == TS_TCACHE_ACTIVE ? tc : NULL;
}

ts_arena_t *ts_thread_arena(void) {
  ts_tcache_t *tc = ts_thread_tcache();
  if (tc) return tc->arena;
  if (!init_arenas_usable()) return NULL;
  return &ts_arenas[0];
}
