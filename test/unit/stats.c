/* SPDX-License-Identifier: MIT */
/* Unit test of stats.c and side.c, the ledger: after randomized workloads
 * (every allocation call, sizes from 0 bytes to huge, cross-thread frees,
 * threads that exit holding blocks, fork) requested_bytes equals the
 * test's own count of live bytes, the parts add up to committed_bytes, the
 * per-class and per-arena figures agree with the totals, and committed
 * bytes reconcile with what the kernel reports (smaps_rollup Rss). */
#include "internal.h"
#include "tessera.h"
#include "test.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define TS_RSS_CHECKS 0 /* RSS includes the sanitizer's shadow memory */
#else
#define TS_RSS_CHECKS 1
#endif

static ts_stats_t st;

static uint64_t parts(const ts_stats_t *s) {
  return s->requested_bytes + s->rounding_bytes + s->cached_bytes + s->slab_free_bytes + s->dirty_bytes +
         s->metadata_bytes;
}

/* The identities every snapshot of a quiet process satisfies; live is
 * the test's own count of the bytes it holds.  Without stats_exact small
 * blocks count at their class size. */
static void check_ledger(const ts_stats_t *s, uint64_t live) {
  expect_eq(s->version, TS_STATS_VERSION);
  expect_eq(s->requested_exact, ts_opt.stats_exact);
  if (s->requested_exact) expect_eq(s->requested_bytes, live);
  else expect_true(s->requested_bytes >= live, "requested %llu < live %llu", (unsigned long long)s->requested_bytes,
                   (unsigned long long)live);
  expect_eq(parts(s), s->committed_bytes);
  expect_eq(s->allocated_bytes, s->requested_bytes + s->rounding_bytes);
  uint64_t arenas = 0, used = 0, slab_free = 0, dirty = 0;
  for (unsigned i = 0; i < s->narenas; i++) {
    const ts_stats_arena_t *a = &s->arenas[i];
    arenas += a->requested_bytes;
    used += a->used_bytes;
    slab_free += a->slab_free_bytes;
    dirty += a->dirty_bytes;
    expect_eq(a->committed_bytes, a->used_bytes + a->slab_free_bytes + a->dirty_bytes + a->metadata_bytes);
    expect_true(a->resident_bytes <= a->mapped_bytes);
  }
  /* huge blocks belong to no arena, and ask for at most their usable
   * bytes; without stats_exact an arena's requested bytes are its large
   * blocks' only */
  if (s->requested_exact) {
    expect_true(arenas <= s->requested_bytes && s->requested_bytes - arenas <= s->huge_bytes);
    if (!s->huge_bytes) expect_eq(arenas, s->requested_bytes);
  } else {
    expect_true(arenas <= s->large_bytes);
  }
  expect_eq(slab_free, s->slab_free_bytes);
  expect_eq(dirty, s->dirty_bytes);
  uint64_t small_live = 0, small_used = 0, cached = 0;
  uint64_t foreign_bytes = 0, hosted_bytes = 0;
  for (unsigned c = 0; c < TS_STATS_CLASSES; c++) {
    const ts_stats_class_t *k = &s->classes[c];
    expect_eq(k->live + k->cached, k->used);
    /* objects of the class in its own slabs fit in its slots; with the
     * objects of other classes they host, in its slab bytes */
    expect_true(k->foreign <= k->used);
    expect_true(k->used - k->foreign <= k->objects, "class %u: used %llu foreign %llu objects %llu", c,
                (unsigned long long)k->used, (unsigned long long)k->foreign, (unsigned long long)k->objects);
    expect_true(k->slab_bytes >= (k->used - k->foreign) * k->size + k->hosted_bytes);
    foreign_bytes += k->foreign * k->size;
    hosted_bytes += k->hosted_bytes;
    small_live += k->live * k->size;
    small_used += k->used * k->size;
    cached += k->cached * k->size;
  }
  expect_eq(foreign_bytes, hosted_bytes); /* every object placed in another class's slab is hosted there */
  expect_eq(s->allocated_bytes, small_live + s->medium_bytes + s->large_bytes + s->huge_bytes);
  /* what is out of the slabs and runs is held by callers or caches */
  expect_eq(used, small_used + s->medium_bytes + s->large_bytes + (s->cached_bytes - cached));
  expect_true(s->nmalloc >= s->nfree);
}

static bool map_bit(const uint64_t *m, unsigned g) { return (m[g >> 6] >> (g & 63)) & 1; }

/* A mixed slab's covered slots, the bytes of the objects of other classes
 * it hosts, and those objects by class (foreign[]), from its maps. */
static void count_mixed(ts_chunk_t *c, const ts_span_t *s, const ts_mixed_t *m, uint64_t *covered,
                        uint64_t *hosted, uint64_t *foreign) {
  static uint64_t used[TS_MIXED_WORDS(TS_SLAB_MAX_PAGES)], ends[TS_MIXED_WORDS(TS_SLAB_MAX_PAGES)];
  ts_mixed_maps(c, s, used, ends);
  unsigned k = ts_class_size[s->cls] / 16, nbits = TS_MIXED_WORDS(s->npages) * 64, nforeign = 0;
  for (unsigned i = 0; i < ts_slab_nobjs(s); i++) {
    bool any = false;
    for (unsigned g = i * k; g < (i + 1) * k; g++) any |= map_bit(used, g);
    if (any) {
      expect_true(!map_bit(ts_slab_freemap(s), i), "a covered slot is not free");
      (*covered)++;
    }
  }
  for (unsigned g = 0; g < nbits;) {
    if (!map_bit(used, g)) {
      g++;
      continue;
    }
    unsigned e = g;
    while (!map_bit(ends, e)) expect_true(map_bit(used, ++e), "an object's granules are used up to its end");
    unsigned size = (e - g + 1) * 16, cls = ts_size_to_class_compute(size);
    expect_eq(ts_class_size[cls], size);
    foreign[cls]++;
    *hosted += size;
    nforeign++;
    g = e + 1;
  }
  expect_true(nforeign > 0, "a slab whose pages are mixed hosts an object");
  (void)m;
}

/* A medium region's record against its maps: its blocks' bytes into
 * *used_bytes, its pages not purged into *pages, its free bytes into *free. */
static void count_region(ts_chunk_t *c, unsigned head, uint64_t *used_bytes, uint64_t *pages, uint64_t *free) {
  uint64_t block_bytes = 0; /* this region's blocks, from their ends */
  const ts_medium_region_t *r = ts_medium_region(c, head);
  unsigned used = 0, nblocks = 0, longest = 0, run = 0;
  for (unsigned g = 0; g < TS_MEDIUM_GRANULES; g++) {
    bool u = map_bit(r->used, g);
    used += u;
    run = u ? 0 : run + 1;
    if (run > longest) longest = run;
    if (map_bit(r->ends, g)) expect_true(u, "region %p: an end outside a block", ts_chunk_page_addr(c, head));
  }
  for (unsigned g = 0; g < TS_MEDIUM_GRANULES;) {
    if (!map_bit(r->used, g)) {
      g++;
      continue;
    }
    unsigned e = g;
    while (!map_bit(r->ends, e)) expect_true(map_bit(r->used, ++e), "a block's granules are used up to its end");
    size_t size = (size_t)(e - g + 1) << TS_MEDIUM_GRANULE_SHIFT;
    expect_true(size > TS_MEDIUM_MIN_SIZE - (1u << TS_MEDIUM_GRANULE_SHIFT) && size <= TS_MEDIUM_MAX_SIZE,
                "block of %zu bytes", size);
    *used_bytes += size;
    block_bytes += size;
    nblocks++;
    g = e + 1;
  }
  for (unsigned p = 0; p < TS_MEDIUM_REGION_PAGES; p++) {
    expect_eq(c->page_head[head + p], head);
    expect_eq(ts_chunk_codes(c)[head + p], TS_PAGE_MEDIUM);
    if ((r->purged[p >> 6] >> (p & 63)) & 1) /* a purged page holds no block */
      for (unsigned g = p * TS_MEDIUM_PAGE_GRANULES; g < (p + 1) * TS_MEDIUM_PAGE_GRANULES; g++)
        expect_true(!map_bit(r->used, g), "a block on purged page %u", p);
  }
  expect_eq((uint64_t)used << TS_MEDIUM_GRANULE_SHIFT, block_bytes); /* used granules are blocks' */
  expect_eq(r->best[1], longest);
  for (unsigned i = 1; i < 2 * TS_MEDIUM_WORDS; i++) { /* each node of the summary against the map */
    unsigned depth = 31 - (unsigned)__builtin_clz(i), len = TS_MEDIUM_GRANULES >> depth;
    unsigned lo = (i - (1u << depth)) * len, pre = 0, suf = 0, best = 0;
    while (pre < len && !map_bit(r->used, lo + pre)) pre++;
    while (suf < len && !map_bit(r->used, lo + len - 1 - suf)) suf++;
    for (unsigned g = lo, n = 0; g < lo + len; g++) {
      n = map_bit(r->used, g) ? 0 : n + 1;
      if (n > best) best = n;
    }
    expect_true(r->pre[i] == pre && r->suf[i] == suf && r->best[i] == best,
                "summary node %u: %u %u %u, the map says %u %u %u", i, r->pre[i], r->suf[i], r->best[i], pre, suf, best);
  }
  expect_eq(r->nblocks, nblocks);
  *pages += TS_MEDIUM_REGION_PAGES;
  for (unsigned w = 0; w < TS_MEDIUM_MASK_WORDS; w++) *pages -= (unsigned)__builtin_popcountll(r->purged[w]);
  *free += (uint64_t)(TS_MEDIUM_GRANULES - used) << TS_MEDIUM_GRANULE_SHIFT;
}

/* The bins' counters against a walk of every slab, with every bin and
 * arena lock held (as fork holds them), so that the purger cannot purge
 * slab pages meanwhile.  Not under TSan: its deadlock detector follows at
 * most 64 held locks. */
static void check_bins_against_slabs(void) {
  static uint64_t slabs[TS_NCLASSES], objects[TS_NCLASSES], free_objs[TS_NCLASSES], pages[TS_NCLASSES];
  static uint64_t covered[TS_NCLASSES], hosted[TS_NCLASSES], foreign[TS_NCLASSES];
  if (!TS_RSS_CHECKS) return;
  ts_arena_prefork();
  for (unsigned i = 0; i < ts_narenas; i++) {
    ts_arena_t *a = &ts_arenas[i];
    memset(slabs, 0, sizeof slabs), memset(objects, 0, sizeof objects);
    memset(free_objs, 0, sizeof free_objs), memset(pages, 0, sizeof pages);
    memset(covered, 0, sizeof covered), memset(hosted, 0, sizeof hosted), memset(foreign, 0, sizeof foreign);
    size_t large = 0;
    uint64_t mpages = 0, mfree = 0, mused = 0, mregions = 0;
    for (ts_chunk_t *c = a->chunks; c; c = c->next) {
      uint8_t *codes = ts_chunk_codes(c);
      for (unsigned p = c->first_page; p < TS_CHUNK_PAGES;) {
        const ts_span_t *s = &c->spans[p];
        if ((c->free_map[p >> 6] >> (p & 63)) & 1 || codes[p] == TS_PAGE_MESHED) {
          p++;
        } else if (codes[p] == TS_PAGE_LARGE || codes[p] == TS_PAGE_CACHED) {
          large += s->npages;
          p += s->npages;
        } else if (codes[p] == TS_PAGE_MEDIUM) {
          expect_eq(s->npages, TS_MEDIUM_REGION_PAGES);
          count_region(c, p, &mused, &mpages, &mfree);
          mregions++;
          p += TS_MEDIUM_REGION_PAGES;
        } else {
          const ts_mixed_t *m = ts_chunk_mixed(c, p);
          expect_true(s->is_slab && (codes[p] == TS_PAGE_MIXED ? m != NULL : codes[p] < TS_NCLASSES),
                      "page %u of chunk %p: code %u", p, (void *)c, codes[p]);
          /* stats_exact: every page of a slab names its side array, in the
           * storage mixed records share, and no slab has a record */
          if (ts_opt.stats_exact) {
            expect_true(!c->has_mixed && codes[p] != TS_PAGE_MIXED, "chunk %p under stats_exact has a mixed slab", (void *)c);
            for (unsigned q = p; q < p + s->npages; q++)
              expect_true(ts_chunk_sides(c)[q] != NULL, "page %u of chunk %p: no side array", q, (void *)c);
          }
          unsigned k = s->cls;
          if (codes[p] == TS_PAGE_MIXED) {
            count_mixed(c, s, m, &covered[k], &hosted[k], foreign);
          } else if (m) { /* a record kept after its last placed object left: empty maps */
            static uint64_t used[TS_MIXED_WORDS(TS_SLAB_MAX_PAGES)], ends[TS_MIXED_WORDS(TS_SLAB_MAX_PAGES)];
            ts_mixed_maps(c, s, used, ends);
            for (unsigned w = 0; w < TS_MIXED_WORDS(s->npages); w++)
              expect_true(used[w] == 0 && ends[w] == 0, "slab at page %u is not mixed but its maps hold objects", p);
          }
          slabs[k]++;
          objects[k] += ts_slab_nobjs(s);
          free_objs[k] += s->nfree;
          pages[k] += s->npages - (unsigned)__builtin_popcount(ts_slab_purged(s));
          p += s->npages;
        }
      }
    }
    expect_eq(large, atomic_load(&a->large_pages));
    expect_eq(mpages, a->medium.pages);
    /* the free granules are what the regions hold beyond their blocks */
    expect_eq(mfree, (uint64_t)a->medium.nregions * (TS_MEDIUM_GRANULES << TS_MEDIUM_GRANULE_SHIFT) -
                         a->medium.used_bytes);
    expect_eq(mregions, a->medium.nregions); /* and each region's block count: count_region */
    expect_eq(mused, a->medium.used_bytes);
    for (unsigned k = 0; k < TS_NCLASSES; k++) {
      expect_eq(slabs[k], a->bins[k].slabs);
      expect_eq(objects[k], a->bins[k].objects);
      expect_eq(free_objs[k], a->bins[k].free_objs);
      expect_eq(pages[k], a->bins[k].pages);
      expect_eq(covered[k], a->bins[k].covered);
      expect_eq(hosted[k], a->bins[k].hosted);
      expect_eq(foreign[k], atomic_load(&a->foreign_objs[k]));
    }
  }
  ts_arena_postfork_parent();
}

enum { NBLOCKS = 20000 };
static void *blk[NBLOCKS];
static size_t blk_n[NBLOCKS];

/* A size from 0 bytes to 3 MiB, mostly small: about 200 MiB live over
 * NBLOCKS blocks. */
static size_t random_size(void) {
  int r = rand() % 1000;
  if (r < 700) return (size_t)(rand() % 300);
  if (r < 900) return (size_t)(rand() % 32768);
  if (r < 997) return 32768 + (size_t)(rand() % (256 << 10));
  return (2 << 20) + (size_t)(rand() % (1 << 20));
}

/* One random step on slot i; returns the change of live bytes. */
static int64_t step(unsigned i) {
  int64_t d = -(int64_t)blk_n[i];
  size_t n = random_size();
  int op = rand() % 6;
  if (blk[i] && op == 0) {
    void *q = ts_realloc(blk[i], n); /* realloc(p, 0) frees p and returns NULL */
    if (!q && n) return 0;
    blk[i] = q;
  } else {
    ts_free(blk[i]);
    blk[i] = NULL;
    if (op == 1) {
      blk[i] = ts_calloc(1, n);
    } else if (op == 2) {
      size_t al = (size_t)16 << (rand() % 9);
      blk[i] = ts_aligned_alloc(al, (n + al - 1) / al * al);
      n = (n + al - 1) / al * al;
    } else if (op == 3) {
      blk[i] = NULL;
      n = 0;
    } else {
      blk[i] = ts_malloc(n);
    }
  }
  if (blk[i]) memset(blk[i], 0x5A, n);
  blk_n[i] = blk[i] ? n : 0;
  return d + (int64_t)blk_n[i];
}

static void free_all(void) {
  for (unsigned i = 0; i < NBLOCKS; i++) {
    ts_free(blk[i]);
    blk[i] = NULL;
    blk_n[i] = 0;
  }
}

TS_TEST(requested_is_exact_after_random_workload) {
  ts_stats_get(&st);
  uint64_t base = st.requested_bytes; /* the harness's own blocks */
  uint64_t live = 0;
  srand(7);
  for (int round = 0; round < 6; round++) {
    for (int k = 0; k < 40000; k++) live += (uint64_t)step((unsigned)rand() % NBLOCKS);
    assert_eq(ts_stats_get(&st), 0);
    check_ledger(&st, base + live);
    check_bins_against_slabs();
    expect_true(st.requested_peak_bytes >= st.requested_bytes);
    expect_true(st.allocated_peak_bytes >= st.allocated_bytes);
  }
  free_all();
  ts_purge();
  ts_stats_get(&st);
  check_ledger(&st, base);
  check_bins_against_slabs();
  expect_eq(st.cached_bytes, 0); /* ts_purge flushed this thread's cache; no other thread has one */
  expect_eq(st.dirty_bytes, 0);
  expect_true(st.returned_bytes > 0);
}

TS_TEST(small_realloc_in_place_updates_the_request) {
  if (!ts_opt.stats_exact) ts_skip("small requests are kept with stats_exact only");
  ts_stats_get(&st);
  uint64_t base = st.requested_bytes;
  char *p = ts_malloc(100);
  ts_stats_get(&st);
  expect_eq(st.requested_bytes, base + 100);
  assert_true(ts_realloc(p, 110) == p); /* same class: 112 */
  ts_stats_get(&st);
  expect_eq(st.requested_bytes, base + 110);
  expect_eq(st.nrealloc >= 1, 1);
  ts_free(p);
  ts_stats_get(&st);
  expect_eq(st.requested_bytes, base);
}

/* ---- threads ---- */

enum { NTHREADS = 4, PER_THREAD = 5000 };
static void *handoff[NTHREADS][PER_THREAD];
static size_t handoff_n[NTHREADS][PER_THREAD];
static pthread_barrier_t barrier;

static void *worker(void *arg) {
  unsigned t = (unsigned)(uintptr_t)arg;
  unsigned seed = t + 1;
  for (int i = 0; i < PER_THREAD; i++) {
    size_t n = (size_t)(rand_r(&seed) % 5000);
    handoff[t][i] = ts_malloc(n);
    handoff_n[t][i] = n;
    memset(handoff[t][i], (int)t, n);
  }
  pthread_barrier_wait(&barrier);
  /* free half of the next thread's blocks: cross-thread frees */
  unsigned o = (t + 1) % NTHREADS;
  for (int i = 0; i < PER_THREAD; i += 2) {
    ts_free(handoff[o][i]);
    handoff[o][i] = NULL;
  }
  return NULL;
}

TS_TEST(cross_thread_frees_and_exited_threads_net_out) {
  ts_stats_get(&st);
  uint64_t base = st.requested_bytes;
  pthread_barrier_init(&barrier, NULL, NTHREADS);
  pthread_t th[NTHREADS];
  for (unsigned t = 0; t < NTHREADS; t++) pthread_create(&th[t], NULL, worker, (void *)(uintptr_t)t);
  for (unsigned t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
  pthread_barrier_destroy(&barrier);
  uint64_t live = 0;
  for (unsigned t = 0; t < NTHREADS; t++)
    for (int i = 0; i < PER_THREAD; i++)
      if (handoff[t][i]) live += handoff_n[t][i];
  ts_stats_get(&st);
  /* the workers exited holding blocks: their counters live on */
  check_ledger(&st, base + live);
  for (unsigned t = 0; t < NTHREADS; t++)
    for (int i = 0; i < PER_THREAD; i++) ts_free(handoff[t][i]);
  ts_stats_get(&st);
  check_ledger(&st, base);
}

TS_TEST(fork_child_keeps_the_ledger) {
  /* fork takes every lock of every arena: more than TSan's deadlock
   * detector can track (64) */
  if (!TS_RSS_CHECKS) ts_skip("fork under ThreadSanitizer");
  void *p = ts_malloc(12345);
  uint64_t size = ts_opt.stats_exact ? 12345 : ts_malloc_usable_size(p);
  ts_stats_get(&st);
  uint64_t before = st.requested_bytes;
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    ts_stats_t cs;
    ts_stats_get(&cs);
    int ok = cs.requested_bytes == before;
    ts_free(p);
    ts_stats_get(&cs);
    ok = ok && cs.requested_bytes == before - size;
    _exit(ok ? 0 : 1);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child's ledger differed");
  ts_free(p);
}

/* ---- concurrency (bugs found in review) ---- */

static atomic_int churn_stop;

/* Huge blocks allocated, resized in place and freed, and small blocks
 * freed by another thread than the allocating one. */
static void *churn(void *arg) {
  unsigned seed = (unsigned)(uintptr_t)arg;
  void *small[64] = {0};
  while (!atomic_load(&churn_stop)) {
    char *h = ts_malloc((size_t)8 << 20);
    h[0] = 1;
    h = ts_realloc(h, (size_t)5 << 20); /* shrinks in place */
    h = ts_realloc(h, (size_t)9 << 20);
    ts_free(h);
    unsigned i = (unsigned)rand_r(&seed) % 64;
    ts_free(small[i]);
    small[i] = ts_malloc((size_t)(rand_r(&seed) % 4000));
    void *q = ts_aligned_alloc((size_t)4 << 20, 100);
    ts_free(q);
  }
  for (unsigned i = 0; i < 64; i++) ts_free(small[i]);
  return NULL;
}

TS_TEST(snapshots_while_threads_allocate_stay_sane) {
  pthread_t th[2];
  atomic_store(&churn_stop, 0);
  for (unsigned t = 0; t < 2; t++) pthread_create(&th[t], NULL, churn, (void *)(uintptr_t)(t + 1));
  /* a block freed during a snapshot once made metadata (huge headers) and
   * an arena's requested bytes wrap below zero */
  const uint64_t absurd = (uint64_t)1 << 50;
  for (int k = 0; k < 3000; k++) {
    ts_stats_get(&st);
    assert_true(st.metadata_bytes < absurd && st.committed_bytes < absurd && st.requested_bytes < absurd,
                "snapshot %d: metadata %llu committed %llu requested %llu", k,
                (unsigned long long)st.metadata_bytes, (unsigned long long)st.committed_bytes,
                (unsigned long long)st.requested_bytes);
    for (unsigned i = 0; i < st.narenas; i++)
      assert_true(st.arenas[i].requested_bytes < absurd, "arena %u requested %llu", i,
                  (unsigned long long)st.arenas[i].requested_bytes);
  }
  atomic_store(&churn_stop, 1);
  for (unsigned t = 0; t < 2; t++) pthread_join(th[t], NULL);
}

TS_TEST(aligned_huge_blocks_count_their_request) {
  if (!ts_opt.stats_exact) ts_skip("small requests are kept with stats_exact only");
  ts_stats_get(&st);
  uint64_t base = st.requested_bytes;
  void *p = ts_aligned_alloc((size_t)4 << 20, 100);
  void *q = ts_aligned_alloc(8192, 0);
  ts_stats_get(&st);
  expect_eq(st.requested_bytes - base, 100);
  ts_free(p);
  ts_free(q);
  ts_stats_get(&st);
  expect_eq(st.requested_bytes, base);
}

static void *snapshot_loop(void *arg) {
  (void)arg;
  static ts_stats_t s;
  while (!atomic_load(&churn_stop)) ts_stats_get(&s);
  return NULL;
}

static int print_fd;
static void *print_to_pipe(void *arg) {
  (void)arg;
  FILE *f = fdopen(print_fd, "w");
  ts_stats_print(f, TS_STATS_TEXT); /* blocks: nobody reads the pipe yet */
  fclose(f);
  return NULL;
}

TS_TEST(fork_while_another_thread_takes_snapshots_or_prints) {
  if (!TS_RSS_CHECKS) ts_skip("fork under ThreadSanitizer");
  alarm(60); /* a deadlock fails the test instead of hanging it */
  void *big = ts_malloc((size_t)6 << 20); /* a huge block: the snapshot walks the huge list */
  atomic_store(&churn_stop, 0);
  pthread_t th;
  pthread_create(&th, NULL, snapshot_loop, NULL);
  for (int k = 0; k < 200; k++) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(0);
    waitpid(pid, NULL, 0);
  }
  atomic_store(&churn_stop, 1);
  pthread_join(th, NULL);
  /* a printer blocked on a full pipe must not block fork */
  int fds[2];
  assert_true(pipe(fds) == 0);
  fcntl(fds[1], F_SETPIPE_SZ, 4096);
  print_fd = fds[1];
  pthread_create(&th, NULL, print_to_pipe, NULL);
  usleep(200000);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) _exit(0);
  waitpid(pid, NULL, 0);
  char buf[4096];
  while (read(fds[0], buf, sizeof buf) > 0) {
  }
  pthread_join(th, NULL);
  close(fds[0]);
  alarm(0);
  ts_free(big);
}

/* ---- the kernel's view ---- */

static uint64_t smaps_rss(void) {
  FILE *f = fopen("/proc/self/smaps_rollup", "r");
  if (!f) return 0;
  char line[256];
  uint64_t kb = 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "Rss: %lu kB", &kb) == 1) break;
  fclose(f);
  return kb << 10;
}

TS_TEST(committed_reconciles_with_smaps_rss) {
  if (!TS_RSS_CHECKS) ts_skip("RSS includes ThreadSanitizer's shadow memory");
  ts_purge();
  ts_stats_get(&st);
  uint64_t rss0 = smaps_rss(), committed0 = st.committed_bytes;
  assert_true(rss0 > 0, "no smaps_rollup");
  srand(11);
  uint64_t live = 0;
  for (int k = 0; k < 200000; k++) live += (uint64_t)step((unsigned)rand() % NBLOCKS);
  for (int pass = 0; pass < 2; pass++) {
    ts_purge();
    ts_stats_get(&st);
    uint64_t rss = smaps_rss();
    int64_t kernel = (int64_t)rss - (int64_t)rss0, ledger = (int64_t)st.committed_bytes - (int64_t)committed0;
    int64_t diff = kernel > ledger ? kernel - ledger : ledger - kernel;
    int64_t tol = (int64_t)st.committed_bytes / 50 + (1 << 20);
    expect_true(diff <= tol, "pass %d: kernel +%lld, ledger +%lld, tolerance %lld (live %llu)", pass,
                (long long)kernel, (long long)ledger, (long long)tol, (unsigned long long)live);
    /* tessera's mappings: what mincore says against what the ledger holds */
    expect_true(st.resident_bytes <= st.committed_bytes + (1 << 20));
    free_all(); /* second pass: after everything is freed */
    live = 0;
  }
}

int main(void) {
  ts_run(requested_is_exact_after_random_workload);
  ts_run(small_realloc_in_place_updates_the_request);
  ts_run(cross_thread_frees_and_exited_threads_net_out);
  ts_run(fork_child_keeps_the_ledger);
  ts_run(snapshots_while_threads_allocate_stay_sane);
  ts_run(aligned_huge_blocks_count_their_request);
  ts_run(fork_while_another_thread_takes_snapshots_or_prints);
  ts_run(committed_reconciles_with_smaps_rss);
  return ts_test_done();
}
