/* SPDX-License-Identifier: MIT */
/*
 * purge.c: returning free pages to the OS, on a deadline and under a cap.
 *
 * What can be returned: dirty pages, the free pages of chunks that may
 * still be resident (chunk.c keeps them in dirty_map), and the pages of
 * empty slabs that bins keep as spares (released by the purger's tick).
 * Purging is madvise(MADV_DONTNEED) over maximal ranges of dirty pages:
 * RSS drops at once (unlike MADV_FREE, which the kernel reclaims only under
 * pressure, and which operators and OOM killers still see as resident),
 * and, since it changes no protection, it never splits a mapping: tessera's
 * mappings stay one per chunk or huge block (fewer when neighbours merge).
 *
 * The deadline (decay_ms): the purger thread ticks every decay_ms / 2.  A
 * tick purges the dirty pages that were not freed since the previous tick
 * (chunk.c: young_map), then ages the rest; so a page is purged between
 * decay_ms / 2 and decay_ms after it was freed, with no call from the
 * program.  The thread starts at the first free that leaves dirty pages,
 * from a point where the caller holds none of tessera's locks, and naps
 * on a condition variable (at most 8 ticks) after two ticks with nothing
 * to do.
 *
 * The cap (dirty_max): when a free leaves an arena more dirty pages than
 * its cap (a share of its active pages, at least TS_DIRTY_MIN_PAGES, or a
 * byte count), the freeing thread purges the arena's old dirty pages at
 * once, and then, if it is still above 3/4 of the cap, young ones, the
 * longest ranges first, until it is not (purge_young_to).  The default
 * cap (a share) is soft: an arena may stay above it for TS_CAP_GRACE_NS,
 * up to TS_CAP_SOFT_FACTOR times it, so that a burst of frees the program
 * allocates again at once (threads that end and others that start) is
 * not purged and faulted in again.  The free that passes the cap asks the
 * purger thread to look again when the grace has run out; a later free
 * that finds it run out purges at once.  A cap given in bytes is hard, and
 * so is any cap without the purger thread (background_thread:false).
 *
 * Locking: purging a chunk needs its arena's lock; releasing spares takes
 * the bin lock and then the arena lock, the usual order.
 */
#include "internal.h"

#include <time.h>
#include <tessera.h>

/* The smallest cap, per arena: 32 MiB.  A steady program frees and reuses
 * pages of its holes all the time; on the server benchmark, caps of 1 to
 * 15 MiB per arena purged pages that were reused milliseconds later and
 * made it 2 to 6 times slower.  On the fragmentation suite's 4-thread
 * server, whose 1 MiB and 16-256 KiB blocks churn through about 80 MiB of
 * free space per arena, 16 MiB still purged 7 GB that was faulted in again
 * (busy phase 3.7 s against 1.8 to 2.0 s for the other allocators); 32 MiB
 * took it to 1.9 to 2.2 s at RSS/live 1.16 to 1.28 over several runs
 * (others 1.47 and up). */
#define TS_DIRTY_MIN_PAGES ((size_t)8192)

/* The soft cap's grace and ceiling.  On the speed suite's server, whose
 * warm-up threads free their working sets as they end, just before the
 * timed threads allocate theirs, each arena passed its 32 MiB cap by up to
 * half of it, for a few milliseconds; purging there cost 7 k page faults
 * (a third more) and 30 to 80% of the run time, and a grace of 10, 20 or
 * 50 ms took both back to what no cap gives.  50 ms cost the memory
 * suite's 4-thread server 7% of RSS in its busy phase and the cache
 * pattern up to 2%; 10 ms left them within their spread (ARCHITECTURE,
 * Returning memory). */
#define TS_CAP_GRACE_NS ((uint64_t)10 * 1000000u)
#define TS_CAP_SOFT_FACTOR 2u

/* How long the purger sleeps at most when it has nothing to do: 8 ticks
 * (4 s with the default decay_ms), one wake-up per nap in an idle program. */
#define TS_PURGER_NAP_TICKS 8u

enum { PURGER_NONE, PURGER_RUNNING, PURGER_FAILED };

static atomic_int purger_state;
static atomic_bool dirty_seen;
static pthread_mutex_t purger_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t purger_cond; /* ts_purge_init */
static atomic_bool purger_waiting; /* set by the purger, cleared under purger_lock */
static atomic_bool cap_grace_started; /* an arena passed its soft cap: the next kick tells the purger */
static atomic_bool cap_check_asked;   /* set under purger_lock: the purger looks at the caps */

static void purge_chunks(ts_arena_t *arena, enum ts_purge_which_e which) {
  for (ts_chunk_t *c = arena->chunks; c; c = c->next)
    if (c->dirty_pages) ts_chunk_purge(c, which, 1, SIZE_MAX);
}

/* A cap in bytes is taken as given; a share never gives less than
 * TS_DIRTY_MIN_PAGES. */
size_t ts_purge_cap_pages(const ts_arena_t *arena) {
  if (ts_opt.dirty_max_bytes) return (size_t)(ts_opt.dirty_max_bytes >> TS_PAGE_SHIFT);
  size_t cap = (arena->active_pages * ts_opt.dirty_max_share) >> 10;
  return cap > TS_DIRTY_MIN_PAGES ? cap : TS_DIRTY_MIN_PAGES;
}

/* A cap event leaves the arena at cap - cap / 2^TS_DIRTY_KEEP_SHIFT dirty
 * pages, not at none: a program whose free pages churn through more than
 * the cap (a FIFO cache, a server) reuses its young free pages within
 * milliseconds, and every page purged then is faulted in again.  Purging
 * every young page above half the cap (the first version) made the cap
 * fire again and again: the speed suite's server took 0.39 s against
 * 0.29 s now, the fragmentation suite's 4-thread server about twice as
 * long in its busy phase, at RSS/live 1.26 against 1.31 now
 * (ARCHITECTURE, Returning memory, has the runs). */
#define TS_DIRTY_KEEP_SHIFT 2

/* Purges young dirty pages of the arena until at most target are left:
 * the longest ranges first (fewest calls per page; the shortest first,
 * which large requests cannot reuse, changed the cache pattern's page
 * faults by 3%, within their spread), down to single pages. */
static void purge_young_to(ts_arena_t *arena, size_t target) {
  static const unsigned min_runs[] = {256, 64, 16, 4, 1};
  for (unsigned r = 0; r < sizeof min_runs / sizeof min_runs[0]; r++)
    for (ts_chunk_t *c = arena->chunks; c; c = c->next) {
      if (arena->dirty_pages <= target) return;
      if (c->dirty_pages) ts_chunk_purge(c, TS_PURGE_ALL, min_runs[r], arena->dirty_pages - target);
    }
}

/* A cap event: old dirty pages, then young ones down to 3/4 of the cap. */
static void purge_to_cap(ts_arena_t *arena, size_t cap) {
  arena->cap_over_ns = 0;
  purge_chunks(arena, TS_PURGE_OLD);
  purge_young_to(arena, cap - (cap >> TS_DIRTY_KEEP_SHIFT));
}

/* Whether the arena's cap may be passed for a grace: the default share,
 * with a purger thread to come back when the grace has run out (one that
 * could not be started makes it hard). */
static bool purge_cap_is_soft(void) {
  return !ts_opt.dirty_max_bytes && ts_opt.background_thread &&
         atomic_load_explicit(&purger_state, memory_order_relaxed) != PURGER_FAILED;
}

void ts_purge_after_free(ts_arena_t *arena) {
  if (!atomic_load_explicit(&dirty_seen, memory_order_relaxed))
    atomic_store_explicit(&dirty_seen, true, memory_order_relaxed);
  if (ts_opt.decay_ms == 0) {
    purge_chunks(arena, TS_PURGE_ALL);
    return;
  }
  size_t cap = ts_purge_cap_pages(arena);
  if (arena->dirty_pages <= cap) {
    arena->cap_over_ns = 0;
    return;
  }
  if (purge_cap_is_soft() && arena->dirty_pages <= cap * TS_CAP_SOFT_FACTOR) {
    uint64_t now = ts_os_now_ns();
    if (!arena->cap_over_ns) {
      arena->cap_over_ns = now;
      atomic_store_explicit(&cap_grace_started, true, memory_order_relaxed); /* read by ts_purge_kick */
      return;
    }
    if (now - arena->cap_over_ns < TS_CAP_GRACE_NS) return;
  }
  purge_to_cap(arena, cap);
}

/* The purger's look at the soft caps: an arena still above its cap once
 * its grace has run out is purged; one back under it is forgotten.
 * Returns when the earliest grace still running ends (0: none runs). */
static uint64_t purge_over_caps(void) {
  uint64_t next = 0;
  for (unsigned i = 0; i < ts_narenas; i++) {
    ts_arena_t *arena = &ts_arenas[i];
    pthread_mutex_lock(&arena->lock);
    if (arena->cap_over_ns) {
      size_t cap = ts_purge_cap_pages(arena);
      uint64_t end = arena->cap_over_ns + TS_CAP_GRACE_NS;
      if (arena->dirty_pages <= cap) arena->cap_over_ns = 0;
      else if (ts_os_now_ns() >= end) purge_to_cap(arena, cap);
      else if (!next || end < next) next = end;
    }
    pthread_mutex_unlock(&arena->lock);
  }
  return next;
}

/* Gives the pages of every bin's spare slab back to its arena, and purges
 * the pages of partly used slabs that hold only free objects: at a tick
 * (aged_only) those found free at the previous tick too, for ts_purge()
 * all of them. */
static void purge_release_spares(ts_arena_t *arena, bool aged_only) {
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    ts_bin_release_spare(arena, c);
    ts_bin_purge_pages(arena, c, aged_only);
  }
  ts_medium_purge(arena, aged_only);
}

/* Meshes every bin's sparse 1-page slabs (option mesh); the purger's. */
size_t ts_purge_mesh(void) {
  size_t n = 0;
  if (!ts_opt.mesh) return 0;
  for (unsigned i = 0; i < ts_narenas; i++)
    for (unsigned c = 0; c < TS_NCLASSES; c++) n += ts_bin_mesh(&ts_arenas[i], c);
  return n;
}

/* One tick: spares out, old dirty pages purged, young ones aged.  Returns
 * the dirty pages left. */
static size_t purge_tick(void) {
  size_t left = 0;
  for (unsigned i = 0; i < ts_narenas; i++) {
    ts_arena_t *arena = &ts_arenas[i];
    purge_release_spares(arena, true);
    pthread_mutex_lock(&arena->lock);
    purge_chunks(arena, TS_PURGE_OLD);
    for (ts_chunk_t *c = arena->chunks; c; c = c->next) ts_chunk_age(c);
    left += arena->dirty_pages;
    pthread_mutex_unlock(&arena->lock);
  }
  return left;
}

size_t ts_purge_dirty_pages(void) {
  size_t n = 0;
  for (unsigned i = 0; i < ts_narenas; i++) {
    pthread_mutex_lock(&ts_arenas[i].lock);
    n += ts_arenas[i].dirty_pages;
    pthread_mutex_unlock(&ts_arenas[i].lock);
  }
  return n;
}

/* A deadline on purger_cond's clock (CLOCK_MONOTONIC, set by
 * ts_purge_init) from a ts_os_now_ns() time. */
static struct timespec purger_deadline(uint64_t at_ns) {
  struct timespec ts = {(time_t)(at_ns / 1000000000u), (long)(at_ns % 1000000000u)};
  return ts;
}

/* Sleeps until the monotonic time until_ns, or until a free asks for a
 * look at the soft caps; returns whether one did (and takes the ask).  A
 * time already past returns false at once and leaves an ask for the next
 * call: a program that passes its cap every few milliseconds must not
 * hold off the tick. */
static bool purger_sleep(uint64_t until_ns) {
  if (ts_os_now_ns() >= until_ns) return false;
  struct timespec until = purger_deadline(until_ns);
  pthread_mutex_lock(&purger_lock);
  while (!atomic_load(&cap_check_asked))
    if (pthread_cond_timedwait(&purger_cond, &purger_lock, &until) != 0) break;
  bool asked = atomic_exchange(&cap_check_asked, false);
  pthread_mutex_unlock(&purger_lock);
  return asked;
}

/* The earlier of a pending cap check (0: none) and now + the grace. */
static uint64_t cap_check_after_grace(uint64_t pending) {
  uint64_t at = ts_os_now_ns() + TS_CAP_GRACE_NS;
  return pending && pending < at ? pending : at;
}

static void *purger_main(void *arg) {
  (void)arg;
  uint64_t tick_ms = ts_opt.decay_ms / 2 ? ts_opt.decay_ms / 2 : 1;
  bool trim_caches = ts_os_barrier_init();
  unsigned idle = 0;
  uint64_t next_tick = ts_os_now_ns() + tick_ms * 1000000u;
  uint64_t cap_check_at = 0; /* when to look at the soft caps; 0: no arena is over */
  for (;;) {
    uint64_t wake = cap_check_at && cap_check_at < next_tick ? cap_check_at : next_tick;
    if (purger_sleep(wake)) {
      /* a soft cap was passed: look again when its grace has run out */
      cap_check_at = cap_check_after_grace(cap_check_at);
      continue;
    }
    uint64_t now = ts_os_now_ns();
    if (cap_check_at && now >= cap_check_at) cap_check_at = purge_over_caps();
    if (now < next_tick) continue;
    next_tick = now + tick_ms * 1000000u;
    cap_check_at = purge_over_caps(); /* every arena looked at: the graces still running */
    bool caches_busy = trim_caches && ts_tcache_trim_idle();
    size_t meshed = ts_purge_mesh();
    ts_stats_tick();
    idle = purge_tick() || caches_busy || meshed ? 0 : idle + 1;
    /* A grace started by this thread's own frees (a cache trimmed, a
     * slab released) has no kick to announce it. */
    if (atomic_exchange(&cap_grace_started, false)) cap_check_at = cap_check_after_grace(cap_check_at);
    if (idle < 2 || cap_check_at) continue;
    /* Nothing to do: sleep until a free leaves dirty pages, or at most
     * TS_PURGER_NAP_TICKS ticks: a free that lands in a thread's cache
     * wakes nobody (the fast path makes no call), and an idle thread's
     * cache must still be trimmed.  The flag is raised before the last
     * look at the arenas, and a free adds its dirty pages before it reads
     * the flag, so no wake-up is lost. */
    atomic_store(&purger_waiting, true);
    if (ts_purge_dirty_pages()) {
      atomic_store(&purger_waiting, false);
      continue;
    }
    struct timespec until = purger_deadline(ts_os_now_ns() + tick_ms * TS_PURGER_NAP_TICKS * 1000000u);
    pthread_mutex_lock(&purger_lock);
    while (atomic_load(&purger_waiting))
      if (pthread_cond_timedwait(&purger_cond, &purger_lock, &until) != 0) break;
    atomic_store(&purger_waiting, false);
    pthread_mutex_unlock(&purger_lock);
    idle = 0;
    next_tick = ts_os_now_ns() + tick_ms * 1000000u;
  }
  return NULL;
}

static void purge_start(void) {
  int expected = PURGER_NONE;
  if (!atomic_compare_exchange_strong(&purger_state, &expected, PURGER_RUNNING)) return;
  if (!ts_os_thread_start(purger_main)) atomic_store(&purger_state, PURGER_FAILED);
}

void ts_purge_kick(void) {
  if (TS_UNLIKELY(ts_opt.stats_interval_ms)) ts_stats_writer_kick();
  if (!ts_opt.background_thread || ts_opt.decay_ms == 0) return;
  if (!atomic_load_explicit(&dirty_seen, memory_order_relaxed)) return;
  int st = atomic_load_explicit(&purger_state, memory_order_relaxed);
  if (st == PURGER_NONE) purge_start(); /* it may take a cap check at once (below) */
  else if (st != PURGER_RUNNING) return;
  bool cap = atomic_load_explicit(&cap_grace_started, memory_order_relaxed) &&
             atomic_exchange(&cap_grace_started, false);
  if (!cap && (st == PURGER_NONE || !atomic_load(&purger_waiting))) return;
  pthread_mutex_lock(&purger_lock);
  if (cap) atomic_store(&cap_check_asked, true);
  if (cap || atomic_load(&purger_waiting)) {
    atomic_store(&purger_waiting, false);
    pthread_cond_signal(&purger_cond);
  }
  pthread_mutex_unlock(&purger_lock);
}

/* purger_cond waits on CLOCK_MONOTONIC, the clock of ts_os_now_ns(), so
 * that a change of the wall clock neither delays nor hurries a tick.
 * Called while one thread runs: at initialisation and in a fork's child. */
void ts_purge_init(void) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  pthread_cond_init(&purger_cond, &attr);
  pthread_condattr_destroy(&attr);
}

/* The child of a fork has no purger thread: the next free starts one.  An
 * arena the parent left within a grace is looked at by the new purger. */
void ts_purge_postfork_child(void) {
  atomic_store(&purger_state, PURGER_NONE);
  pthread_mutex_init(&purger_lock, NULL);
  ts_purge_init();
  atomic_store(&purger_waiting, false);
  atomic_store(&cap_check_asked, false);
  atomic_store(&cap_grace_started, true);
}

size_t ts_purge(void) {
  if (!ts_is_ready()) return 0;
  size_t before = ts_pages_returned;
  if (ts_tcache.state == TS_TCACHE_ACTIVE) {
    ts_tcache_t *tc = ts_tcache_claim();
    if (tc) {
      ts_tcache_flush_all(tc);
      ts_tcache_leave(tc);
    }
  }
  for (unsigned i = 0; i < ts_narenas; i++) {
    purge_release_spares(&ts_arenas[i], false);
    pthread_mutex_lock(&ts_arenas[i].lock);
    purge_chunks(&ts_arenas[i], TS_PURGE_ALL);
    ts_arenas[i].cap_over_ns = 0; /* no dirty page left: no grace runs */
    pthread_mutex_unlock(&ts_arenas[i].lock);
  }
  return (ts_pages_returned - before) << TS_PAGE_SHIFT;
}
