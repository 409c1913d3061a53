/* SPDX-License-Identifier: MIT */
/*
 * tcache.c: per-thread caches of free objects, one LIFO list per size
 * class, in front of the arenas' bins.
 *
 * The cache lives in static TLS (ts_tcache, initial-exec model), so the
 * fast paths in alloc.c are TLS-relative loads and stores: no lock, no
 * atomic read-modify-write, no call.  A bin's list is linked through the first
 * word of its free objects (types.h: ts_tbin_s).
 *
 * Bounds: a class caches at most ts_tcache_cap_of(cls) objects: 32 KiB
 * worth, between TS_TCACHE_MIN_SLOTS and TS_TCACHE_MAX_SLOTS objects; none
 * of a class above 4 KiB while the thread is on medium blocks (Lifetimes,
 * below).  An
 * empty bin is refilled with half its capacity in one bin lock; a full one
 * flushes its older half.  Frees of another thread's objects land in the
 * freeing thread's cache like any other (no atomic at all) and reach the
 * owning arena's bin in batches, one lock per arena met, on flush.
 *
 * Large runs of up to 256 KiB are cached too, per page count, at most
 * 512 KiB per thread (types.h); a cached run stays allocated in its arena
 * with the page code TS_PAGE_CACHED, so freeing it twice is caught.
 *
 * Trimming: at most every TS_TCACHE_GC_MS, a refill or flush trims the
 * bins that did not run empty since the last trim to half their content,
 * so a cache's idle classes give their objects back.  A thread that stops
 * calling the allocator runs none of that, so the purger thread trims it
 * on its own clock (ts_tcache_trim_idle): a cache found unchanged over a
 * whole tick (decay_ms / 2) is flushed entirely, by the protocol in
 * types.h (ts_tcache_s) that costs the owner two plain stores and a load
 * per call.  Every live cache is on a registry for this, under
 * registry_lock, which the purger holds for a whole sweep; a thread leaves
 * it at exit before flushing.  At thread exit a
 * pthread key destructor flushes everything and unbinds the thread from its
 * arena; allocations made after that (by later TLS destructors) go straight
 * to the arena.
 *
 * The registry is a table of (cache, thread id, arena) outside the caches, not a
 * list linked through them: a thread whose first allocation comes in the
 * last round of thread-specific-data destructors, after the round passed
 * this library's key, sets its key too late for the destructor to run, and
 * its cache stays registered when the thread is gone.  Its TLS may then be
 * unmapped, or re-initialised for a new thread that gets the same stack;
 * links kept in it broke the list (a cycle: stats and the purger hung).  A
 * walk therefore drops, without touching them, the entries whose thread
 * the kernel no longer knows (registry_prune), and an entry whose cache
 * address a new thread registers again is that thread's from then on.  The
 * lost cache's objects stay allocated (at most a cache's capacity per such
 * thread), counted in lost_caches.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Every bin empty with capacity 0: a fast path that reaches it falls
 * through to the slow path.  Never written. */
const ts_tbin_t ts_tcache_trap[TS_NCLASSES];

/* fast_bins starts at the trap too: a walker that puts bins_ptr back to
 * fast_bins on a cache not yet set up (or on a new thread's TLS at a dead
 * entry's address) stores the trap. */
__thread ts_tcache_t ts_tcache __attribute__((tls_model("initial-exec"))) = {
    .bins_ptr = (ts_tbin_t *)ts_tcache_trap, .fast_bins = (ts_tbin_t *)ts_tcache_trap};

static ts_tbin_t *trap_bins(void) { return (ts_tbin_t *)ts_tcache_trap; }

/* The same for a thread whose every call must take the slow path (option
 * stats_exact): a different address, so that the purger's trap is told
 * apart from it. */
const ts_tbin_t ts_tcache_slow_trap[TS_NCLASSES];

static size_t large_bytes_of(const ts_tcache_t *tc) { return tc->large_bytes; }
static void large_bytes_add(ts_tcache_t *tc, size_t d) { TS_SW_ADD(tc->large_bytes, d); }

#define TS_TCACHE_CLASS_BYTES ((size_t)32 << 10)
#define TS_TCACHE_MIN_SLOTS 4u
#define TS_TCACHE_MAX_SLOTS 256u
#define TS_TCACHE_GC_MS 100u

extern pthread_key_t ts_tcache_key;

uint32_t ts_tcache_cap_of(unsigned cls) {
  size_t n = TS_TCACHE_CLASS_BYTES / ts_class_size[cls];
  if (n < TS_TCACHE_MIN_SLOTS) n = TS_TCACHE_MIN_SLOTS;
  if (n > TS_TCACHE_MAX_SLOTS) n = TS_TCACHE_MAX_SLOTS;
  return (uint32_t)n;
}

typedef struct {
  ts_tcache_t *tc;
  ts_arena_t *arena; /* its binding, released if the thread is found gone */
  int32_t tid;
} registry_entry_t;

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static registry_entry_t *registry; /* registry_n entries of registry_cap, mapped */
static size_t registry_n, registry_cap;
static uint64_t lost_caches;        /* entries dropped because their thread was gone */

uint64_t ts_tcache_lost(void) {
  pthread_mutex_lock(&registry_lock);
  uint64_t n = lost_caches;
  pthread_mutex_unlock(&registry_lock);
  return n;
}

/* Whether the kernel still knows thread tid of this process. */
static bool thread_alive(int32_t tid) {
  if (tid == ts_tcache.tid) return true;
  int saved = errno;
  bool gone = syscall(SYS_tgkill, (long)getpid(), (long)tid, 0L) != 0 && errno == ESRCH;
  errno = saved;
  return !gone;
}

/* Drops the entries of threads that exited without their destructor
 * (above); registry_lock held. */
static void registry_prune(void) {
  for (size_t i = 0; i < registry_n;) {
    if (thread_alive(registry[i].tid)) {
      i++;
      continue;
    }
    ts_arena_release(registry[i].arena);
    registry[i] = registry[--registry_n];
    lost_caches++;
  }
}

/* The index of tc's entry, or registry_n; registry_lock held. */
static size_t registry_find(const ts_tcache_t *tc) {
  size_t i = 0;
  while (i < registry_n && registry[i].tc != tc) i++;
  return i;
}

/* Enters tc; false when the table cannot grow (then the thread has no
 * cache). */
static bool registry_add(ts_tcache_t *tc) {
  pthread_mutex_lock(&registry_lock);
  size_t i = registry_find(tc);
  if (i < registry_n) { /* the TLS of a thread gone without its destructor */
    ts_arena_release(registry[i].arena);
    registry[i].arena = tc->arena;
    registry[i].tid = tc->tid;
    lost_caches++;
    pthread_mutex_unlock(&registry_lock);
    return true;
  }
  if (registry_n == registry_cap) {
    size_t cap = registry_cap ? 2 * registry_cap : 256;
    int saved = errno; /* a malloc that goes on without a cache succeeds */
    registry_entry_t *t = ts_os_map(cap * sizeof *t);
    errno = saved;
    if (!t) {
      pthread_mutex_unlock(&registry_lock);
      return false;
    }
    if (registry_n) memcpy(t, registry, registry_n * sizeof *t);
    if (registry) ts_os_unmap(registry, registry_cap * sizeof *t);
    registry = t;
    registry_cap = cap;
  }
  registry[registry_n].tc = tc;
  registry[registry_n].arena = tc->arena;
  registry[registry_n].tid = tc->tid;
  registry_n++;
  pthread_mutex_unlock(&registry_lock);
  return true;
}

/* Adds the counters of `from` to `to` (relaxed loads; to is shared). */
static void stats_add(ts_tstats_t *to, ts_tstats_t *from) {
  uint64_t *t = (uint64_t *)to, *f = (uint64_t *)from;
  for (size_t i = 0; i < offsetof(ts_tstats_t, aidx) / sizeof(uint64_t); i++) TS_SHARED_ADD(t[i], TS_SW_LOAD(f[i]));
}

/* The sum of every thread's counters, the exited ones' included, into
 * *sum, and what the caches hold into cached[] (objects per class) and
 * *cached_large (bytes); all zeroed first.  The caches' counts are read
 * while their threads may be using them: exact when they are not.
 * *cached_medium: bytes of medium blocks freed and not yet given back. */
void ts_tcache_sum_stats(ts_tstats_t *sum, uint64_t *cached, uint64_t *cached_large, uint64_t *cached_medium) {
  memset(sum, 0, sizeof *sum);
  memset(cached, 0, TS_NCLASSES * sizeof *cached);
  *cached_large = 0;
  *cached_medium = 0;
  pthread_mutex_lock(&registry_lock);
  registry_prune();
  for (size_t i = 0; i < registry_n; i++) {
    ts_tcache_t *tc = registry[i].tc;
    stats_add(sum, &tc->stats);
    for (unsigned c = 0; c < TS_NCLASSES; c++) cached[c] += TS_SW_LOAD(tc->bins[c].count);
    *cached_large += TS_SW_LOAD(tc->large_bytes);
    *cached_medium += TS_SW_LOAD(tc->medium_pending_bytes);
  }
  stats_add(sum, &ts_stats_orphan);
  pthread_mutex_unlock(&registry_lock);
}

/* An exiting thread's counters join the orphans' (under the registry
 * lock, so that a sum sees them exactly once). */
static void registry_remove(ts_tcache_t *tc) {
  pthread_mutex_lock(&registry_lock);
  stats_add(&ts_stats_orphan, &tc->stats);
  size_t i = registry_find(tc);
  if (i < registry_n) registry[i] = registry[--registry_n];
  pthread_mutex_unlock(&registry_lock);
}

/* The calling thread's cache, entered (internal.h: ts_tcache_enter), or
 * NULL when it has none.  Waits while the purger works on it. */
ts_tcache_t *ts_tcache_claim(void) {
  ts_tcache_t *tc = ts_thread_tcache();
  if (!tc) return NULL;
  for (;;) {
    ts_tcache_enter(tc);
    if (ts_tcache_bins(tc) == tc->fast_bins) return tc;
    ts_tcache_leave(tc);
    while (ts_tcache_bins(tc) != tc->fast_bins) sched_yield();
  }
}

static void tcache_medium_mode(ts_tcache_t *tc, bool on, bool caps);

void ts_tcache_setup(ts_tcache_t *tc) {
  tc->arena = ts_arena_choose();
  tc->stats.aidx = tc->arena->index;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    tc->bins[c].head = NULL;
    ts_tbin_set_count(&tc->bins[c], 0);
    tc->bins[c].cap = ts_tcache_cap_of(c);
    tc->used[c] = 0;
  }
  for (unsigned n = 0; n <= TS_TCACHE_LARGE_PAGES; n++) tc->large[n] = NULL;
  TS_SW_SET(tc->large_bytes, 0);
  tc->large_used = false;
  TS_SW_SET(tc->medium_npending, 0);
  TS_SW_SET(tc->medium_pending_bytes, 0);
  tc->life_caps_zero = false;
  tc->life_backoff = tc->life_hold = 0;
  if (ts_medium_auto()) tcache_medium_mode(tc, true, false);
  tc->last_gc_ns = ts_os_now_ns();
  tc->idle_sig = 0;
  /* Without the key the thread-exit destructor would not run: then the
   * thread has no cache at all (and stays off the registry).  Meanwhile
   * the cache counts as torn down, so that an allocation made by
   * pthread_setspecific itself goes to the arena. */
  tc->state = TS_TCACHE_DEAD;
  tc->tid = (int32_t)syscall(SYS_gettid);
  /* before registry_add: a purger sweep ends by storing fast_bins */
  tc->fast_bins = ts_opt.stats_exact ? (ts_tbin_t *)ts_tcache_slow_trap : tc->bins;
  if (pthread_setspecific(ts_tcache_key, tc) != 0 || !registry_add(tc)) {
    ts_arena_release(tc->arena);
    return;
  }
  atomic_store_explicit(&tc->bins_ptr, tc->fast_bins, memory_order_release);
  tc->state = TS_TCACHE_ACTIVE;
}

/* Flushes the oldest objects of a bin (the end of its list) until keep
 * are left. */
void ts_tcache_flush_bin(ts_tcache_t *tc, unsigned cls, unsigned keep) {
  ts_tbin_t *b = &tc->bins[cls];
  if (ts_tbin_count(b) <= keep) return;
  void *batch[TS_TCACHE_MAX_SLOTS];
  void **link = &b->head;
  for (unsigned i = 0; i < keep; i++) link = (void **)*link;
  void *p = *link;
  *link = NULL;
  unsigned n = 0;
  while (p) {
    batch[n++] = p;
    p = *(void **)p;
  }
  ts_tbin_set_count(b, keep);
  ts_bin_flush(cls, batch, n);
}

/* ---- Large runs ---- */

void *ts_tcache_large_pop(ts_tcache_t *tc, unsigned npages) {
  void *p = tc->large[npages];
  if (!p) return NULL;
  tc->large[npages] = *(void **)p;
  large_bytes_add(tc, 0 - ((size_t)npages << TS_PAGE_SHIFT));
  tc->large_used = true;
  ts_chunk_t *chunk = ts_chunk_of(p);
  ts_chunk_codes(chunk)[ts_chunk_page_of(p)] = TS_PAGE_LARGE;
  return p;
}

bool ts_tcache_large_push(ts_tcache_t *tc, void *p, unsigned npages) {
  size_t bytes = (size_t)npages << TS_PAGE_SHIFT;
  if (npages > TS_TCACHE_LARGE_PAGES || large_bytes_of(tc) + bytes > TS_TCACHE_LARGE_BYTES) return false;
  /* the run stays allocated in its arena; its code says it is cached, so a
   * second free of it is caught */
  ts_chunk_codes(ts_chunk_of(p))[ts_chunk_page_of(p)] = TS_PAGE_CACHED;
  *(void **)p = tc->large[npages];
  tc->large[npages] = p;
  large_bytes_add(tc, bytes);
  return true;
}

static void tcache_flush_large(ts_tcache_t *tc) {
  for (unsigned n = 0; n <= TS_TCACHE_LARGE_PAGES; n++) {
    while (tc->large[n]) {
      void *p = tc->large[n];
      tc->large[n] = *(void **)p;
      ts_chunk_t *chunk = ts_chunk_of(p);
      unsigned page = ts_chunk_page_of(p);
      ts_chunk_codes(chunk)[page] = TS_PAGE_LARGE;
      ts_arena_run_free(chunk, page);
    }
  }
  TS_SW_SET(tc->large_bytes, 0);
}

void ts_tcache_flush_medium(ts_tcache_t *tc) {
  if (!tc->medium_npending) return;
  ts_medium_free_many(tc->medium_pending, tc->medium_npending, "free");
  TS_SW_SET(tc->medium_npending, 0);
  TS_SW_SET(tc->medium_pending_bytes, 0);
}

void ts_tcache_flush_all(ts_tcache_t *tc) {
  for (unsigned c = 0; c < TS_NCLASSES; c++) ts_tcache_flush_bin(tc, c, 0);
  tcache_flush_large(tc);
  ts_tcache_flush_medium(tc);
}

void ts_tcache_gc(ts_tcache_t *tc) {
  uint64_t now = ts_os_now_ns();
  if (now - tc->last_gc_ns < (uint64_t)TS_TCACHE_GC_MS * 1000000u) return;
  tc->last_gc_ns = now;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    if (!tc->used[c]) ts_tcache_flush_bin(tc, c, ts_tbin_count(&tc->bins[c]) / 2);
    tc->used[c] = 0;
  }
  if (!tc->large_used) tcache_flush_large(tc);
  tc->large_used = false;
}

/* Refills an empty bin and returns one object of it, or NULL.  Objects are
 * linked in the order the bin gave them (bin.c: lone slots first while its
 * slabs have holes, then each slab's lowest address first). */
void *ts_tcache_refill(ts_tcache_t *tc, unsigned cls) {
  ts_tbin_t *b = &tc->bins[cls];
  void *batch[TS_TCACHE_MAX_SLOTS];
  tc->used[cls] = 1;
  unsigned want = b->cap / 2;
  if (want == 0) want = 1;
  unsigned n = ts_bin_fill(tc->arena, cls, batch, want);
  ts_tcache_gc(tc);
  if (!n) return NULL;
  for (unsigned i = n - 1; i > 0; i--) ts_tcache_push(b, batch[i]);
  return batch[0];
}

/* ---- Lifetimes (option medium:auto) ----
 *
 * Blocks of 4 to 64 KiB are packed best in medium regions (first fit,
 * coalescing: no class wanders, no page rounding) and served fastest by
 * slabs and page runs through this cache (a freed block goes straight to
 * the next request of its class, warm).  Which matters depends on how long
 * the blocks live: a request's buffers, freed within a few allocations,
 * cost the medium heap a lock and a cold block each and leave no
 * fragmentation in slabs worth the name; a cache's entries, living for
 * thousands, fragment slabs by class and are what regions pack.  So each
 * thread watches its own: life_ring holds the last TS_LIFE_RING blocks it
 * allocated of those it samples (every medium block; page runs of 32 to
 * 64 KiB, which take the slow path anyway, while slab objects take the fast
 * path and are not watched), and each free of a sampled block is young
 * when the block is still in the ring.  Every TS_LIFE_WINDOW such frees,
 * fewer than a quarter young puts the thread on medium blocks, more than
 * half on slabs and page runs (between: no change, so that a mix near a
 * threshold does not flip at every window).  After a switch the next one
 * waits 1, 2, 4 ... up to TS_LIFE_BACKOFF_MAX windows, until a window
 * confirms the mode: a thread whose sampled population changes with the
 * mode (long-lived blocks above 32 KiB, short-lived ones below, the only
 * ones sampled on medium blocks) cannot flip at every window.  A thread
 * starts on medium blocks: a cache filling up frees nothing for a long
 * time, and a server thread's first requests settle it within
 * TS_LIFE_WINDOW frees.  A thread that never frees blocks of its own (a
 * producer) stays there: a filling cache looks the same.  Frees
 * of blocks of another arena, which another thread allocated, are left out:
 * a thread that frees what others made would otherwise count them old in
 * bursts (a peer's hand-offs drained at once) and take medium blocks for
 * its own short-lived ones.  Caller: entered. */

/* The thread's requests of 4 to 64 KiB become medium blocks (on) or not.
 * With caps (a decision), its bins of those classes are flushed and get
 * capacity 0 on medium blocks (so that the fast paths send those sizes on)
 * and their capacity back off them; a new thread starts on medium blocks
 * with its capacities kept until its first decision, so that one that only
 * frees what others made caches their slab objects as any thread does. */
static void tcache_medium_mode(ts_tcache_t *tc, bool on, bool caps) {
  tc->medium_mode = on;
  if (!caps || tc->life_caps_zero == on) return;
  tc->life_caps_zero = on;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    if (ts_class_size[c] <= TS_MEDIUM_MIN_SIZE) continue;
    if (on) {
      ts_tcache_flush_bin(tc, c, 0);
      tc->bins[c].cap = 0;
    } else {
      tc->bins[c].cap = ts_tcache_cap_of(c);
    }
  }
}

void ts_tcache_life_born(ts_tcache_t *tc, void *p) { tc->life_ring[tc->life_pos++ % TS_LIFE_RING] = p; }

void ts_tcache_life_died(ts_tcache_t *tc, void *p) {
  if (ts_chunk_of(p)->arena != tc->arena) return; /* another thread's, most likely: no news of this one's */
  for (unsigned i = 0; i < TS_LIFE_RING; i++)
    if (tc->life_ring[i] == p) {
      tc->life_ring[i] = NULL;
      tc->life_young++;
      break;
    }
  if (++tc->life_frees < TS_LIFE_WINDOW) return;
  bool on = tc->medium_mode;
  if (tc->life_young * 4 < TS_LIFE_WINDOW) on = true;
  else if (tc->life_young * 2 > TS_LIFE_WINDOW) on = false;
  tc->life_frees = tc->life_young = 0;
  if (on == tc->medium_mode) { /* confirmed */
    tc->life_backoff = tc->life_hold = 0;
    tcache_medium_mode(tc, on, true);
  } else if (tc->life_hold) { /* switched lately: wait */
    tc->life_hold--;
  } else {
    tc->life_backoff = tc->life_backoff ? 2 * tc->life_backoff : 1;
    if (tc->life_backoff > TS_LIFE_BACKOFF_MAX) tc->life_backoff = TS_LIFE_BACKOFF_MAX;
    tc->life_hold = tc->life_backoff;
    tcache_medium_mode(tc, on, true);
  }
}

/* ---- Trimming idle caches, from the purger thread ---- */

/* A digest of what the cache holds: 0 when it holds nothing. */
static uint64_t tcache_signature(const ts_tcache_t *tc) {
  uint64_t sig = 0, held = 0;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    sig = (sig ^ (uintptr_t)tc->bins[c].head ^ ts_tbin_count(&tc->bins[c])) * 0x100000001b3ull;
    held |= ts_tbin_count(&tc->bins[c]);
  }
  for (unsigned n = 0; n <= TS_TCACHE_LARGE_PAGES; n++) sig = (sig ^ (uintptr_t)tc->large[n]) * 0x100000001b3ull;
  held |= large_bytes_of(tc);
  sig = (sig ^ tc->medium_npending ^ (uintptr_t)tc->medium_pending[0]) * 0x100000001b3ull;
  held |= tc->medium_npending;
  return held ? sig | 1 : 0;
}

/* Every cache that holds objects and is not in use now, with the same
 * content (tcache_signature) as at the previous call, is flushed; returns
 * true if some cache holds objects and was in use or changed, so that the
 * purger keeps ticking. */
bool ts_tcache_trim_idle(void) {
  bool busy = false;
  pthread_mutex_lock(&registry_lock);
  registry_prune();
  for (size_t i = 0; i < registry_n; i++)
    atomic_store_explicit(&registry[i].tc->bins_ptr, trap_bins(), memory_order_relaxed);
  ts_os_barrier();
  for (size_t i = 0; i < registry_n; i++) {
    ts_tcache_t *tc = registry[i].tc;
    if (atomic_load_explicit(&tc->in_op, memory_order_acquire)) {
      busy = true;
    } else {
      uint64_t sig = tcache_signature(tc);
      if (sig != 0 && sig == tc->idle_sig) {
        ts_tcache_flush_all(tc);
        sig = 0;
      } else if (sig != 0) {
        busy = true;
      }
      tc->idle_sig = sig;
    }
    atomic_store_explicit(&tc->bins_ptr, tc->fast_bins, memory_order_release);
  }
  pthread_mutex_unlock(&registry_lock);
  return busy;
}

/* Bytes of objects and runs the cache holds, read under the registry lock
 * (so not during a purger sweep); exact when its thread is not using it. */
size_t ts_tcache_held_bytes(const ts_tcache_t *tc) {
  size_t bytes = 0;
  pthread_mutex_lock(&registry_lock);
  for (unsigned c = 0; c < TS_NCLASSES; c++) bytes += (size_t)ts_tbin_count(&tc->bins[c]) * ts_class_size[c];
  bytes += large_bytes_of(tc) + tc->medium_pending_bytes;
  pthread_mutex_unlock(&registry_lock);
  return bytes;
}

/* Fork: the purger may be in a sweep; the child keeps only its own cache. */
/* (the parent prunes first: the child cannot tell its parent's threads
 * apart, and reads every cache left on the table) */
void ts_tcache_prefork(void) {
  pthread_mutex_lock(&registry_lock);
  registry_prune();
}
void ts_tcache_postfork_parent(void) { pthread_mutex_unlock(&registry_lock); }
void ts_tcache_postfork_child(void) {
  pthread_mutex_init(&registry_lock, NULL);
  /* the other threads are gone, the blocks they allocated are not */
  size_t kept = 0;
  for (size_t i = 0; i < registry_n; i++) {
    if (registry[i].tc != &ts_tcache) stats_add(&ts_stats_orphan, &registry[i].tc->stats);
    else if (ts_tcache.state == TS_TCACHE_ACTIVE) registry[kept++] = registry[i];
  }
  registry_n = kept;
  if (kept) registry[0].tid = ts_tcache.tid = (int32_t)syscall(SYS_gettid);
}

void ts_tcache_teardown(ts_tcache_t *tc) {
  if (tc->state != TS_TCACHE_ACTIVE) return;
  registry_remove(tc);
  atomic_store_explicit(&tc->bins_ptr, trap_bins(), memory_order_relaxed);
  ts_tcache_flush_all(tc);
  ts_arena_release(tc->arena);
  tc->state = TS_TCACHE_DEAD;
  ts_purge_kick();
}
