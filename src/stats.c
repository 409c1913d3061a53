/* SPDX-License-Identifier: MIT */
/*
 * stats.c: the ledger (ts_stats_get) and its printing (ts_stats_print).
 *
 * Two sources, each exact in its own terms:
 *   - per-thread counters (types.h: ts_tstats_s), bumped by the fast paths
 *     with thread-local stores: objects handed out and taken back per
 *     class, requested bytes per arena (the slack of each small object is
 *     in its slab's side array, side.c; a large run's request in its span,
 *     a huge block's in its header), large bytes, calls;
 *   - the arenas' and bins' own counters, kept under their locks: pages in
 *     slabs and large runs, slots used, dirty pages; and a walk of every
 *     chunk for what the kernel has resident (mincore).
 * The ledger: allocated = live objects x class size + medium blocks' whole
 * granules + large + huge bytes;
 * rounding = allocated - requested; cached = what is out of the slabs and
 * runs but not held by callers (thread caches); slab_free = committed slab
 * and medium region pages minus their used slots and blocks; dirty; metadata = resident chunk headers,
 * side arrays, huge headers, the arenas and thread-cache structures and the
 * chunk map's resident pages.  committed is their sum.
 *
 * Locks: stats_lock (one snapshot at a time, and the peaks), then the
 * registry lock for the counters, released before the walk takes, one at
 * a time, each arena's lock, metadata lock and bin locks.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <tessera.h>
#include <unistd.h>

_Static_assert(TS_STATS_CLASSES == TS_NCLASSES, "one ts_stats_class_t per size class");
_Static_assert(TS_STATS_ARENAS == TS_ARENAS_MAX, "one ts_stats_arena_t per arena");

ts_tstats_t ts_stats_orphan;

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t peak_requested, peak_allocated, peak_resident;
static unsigned char mincore_vec[(TS_MAP_ENTRIES >> TS_PAGE_SHIFT) + 2]; /* stats_lock; sized for the chunk map */

static void peak_raise(_Atomic uint64_t *peak, uint64_t v) {
  uint64_t old = atomic_load_explicit(peak, memory_order_relaxed);
  while (v > old && !atomic_compare_exchange_weak_explicit(peak, &old, v, memory_order_relaxed, memory_order_relaxed)) {
  }
}

/* ---- accounting outside the inline fast paths ---- */

void ts_acct_call(enum ts_call_e call) {
  ts_tstats_t *st = ts_stats_here();
  ts_cnt_add(st == &ts_stats_orphan, &st->calls[call], 1);
}

/* A large run's request lives in its head span's first bitmap word, its
 * tag in the second (a large run has no bitmap). */
void ts_acct_large_alloc(ts_tstats_t *st, void *p, size_t n) {
  ts_chunk_t *c = ts_chunk_of(p);
  ts_span_t *s = &c->spans[ts_chunk_page_of(p)];
  bool shared = st == &ts_stats_orphan;
  s->map.word = n;
  ts_cnt_add(shared, &st->requested[c->arena->index], n);
  ts_cnt_add(shared, &st->nmalloc, 1);
  if (ts_opt.tags) {
    s->tag = ts_tag_current;
    ts_tag_account(ts_tag_current, (int64_t)n, true);
  }
}

void ts_acct_large_free(ts_tstats_t *st, ts_chunk_t *c, unsigned page) {
  ts_span_t *s = &c->spans[page];
  bool shared = st == &ts_stats_orphan;
  ts_cnt_add(shared, &st->requested[c->arena->index], (uint64_t)0 - s->map.word);
  ts_cnt_add(shared, &st->nfree, 1);
  if (ts_opt.tags) ts_tag_account((unsigned)s->tag, -(int64_t)s->map.word, false);
}

void ts_acct_large_resize(ts_tstats_t *st, void *p, size_t n) {
  ts_chunk_t *c = ts_chunk_of(p);
  ts_span_t *s = &c->spans[ts_chunk_page_of(p)];
  ts_cnt_add(st == &ts_stats_orphan, &st->requested[c->arena->index], n - s->map.word);
  if (ts_opt.tags) ts_tag_account((unsigned)s->tag, (int64_t)n - (int64_t)s->map.word, false);
  s->map.word = n;
}

void ts_acct_exact_alloc(ts_tstats_t *st, bool shared, void *p, unsigned cls, size_t n) {
  unsigned i;
  ts_side_t *s = ts_side_find(p, cls, &i);
  if (TS_UNLIKELY(!s)) return;
  ts_side_set_slack(s, i, (unsigned)(ts_class_size[cls] - n));
  ts_cnt_add(shared, &st->requested[s->aidx], n);
  if (ts_opt.tags) {
    ts_side_tags(s)[i] = ts_tag_current;
    ts_tag_account(ts_tag_current, (int64_t)n, true);
  }
}

void ts_acct_exact_free(ts_tstats_t *st, bool shared, void *p, unsigned cls) {
  unsigned i;
  ts_side_t *s = ts_side_find(p, cls, &i);
  if (TS_UNLIKELY(!s)) return; /* not an object: its slab reports it at flush */
  uint64_t n = ts_class_size[cls] - ts_side_slack(s, i);
  ts_cnt_add(shared, &st->requested[s->aidx], (uint64_t)0 - n);
  ts_cnt_add(shared, &st->calls[TS_CALL_REMOTE_FREE], s->aidx != st->aidx);
  if (ts_opt.tags) ts_tag_account(ts_side_tags(s)[i], -(int64_t)n, false);
}

/* The tag a block was charged to (option tags); p is a valid block. */
ts_tag_t ts_tag_of_block(const void *p) {
  if (ts_window_kind((uintptr_t)p) != TS_WINDOW_CHUNK) return (ts_tag_t)ts_huge_header(p)->tag;
  ts_chunk_t *c = ts_chunk_of(p);
  unsigned page = ts_chunk_page_of(p), code = ts_chunk_block_code(c, page);
  if (code == TS_PAGE_LARGE || code == TS_PAGE_CACHED) return (ts_tag_t)c->spans[page].tag;
  if (code >= TS_NCLASSES) return TS_TAG_NONE; /* mixed and medium pages: tags turn both off */
  unsigned i;
  ts_side_t *s = ts_side_find(p, code, &i);
  return s ? ts_side_tags(s)[i] : TS_TAG_NONE;
}

void ts_acct_small_resize(void *p, unsigned cls, size_t n) {
  unsigned i;
  ts_side_t *s = ts_side_find(p, cls, &i);
  if (TS_UNLIKELY(!s)) return;
  ts_tstats_t *st = ts_stats_here();
  uint64_t old_n = ts_class_size[cls] - ts_side_slack(s, i);
  ts_side_set_slack(s, i, (unsigned)(ts_class_size[cls] - n));
  ts_cnt_add(st == &ts_stats_orphan, &st->requested[s->aidx], n - old_n);
  if (ts_opt.tags) ts_tag_account(ts_side_tags(s)[i], (int64_t)n - (int64_t)old_n, false);
}

/* ---- the kernel's view ---- */

/* Resident pages of the pages [addr, addr + bytes) touches. */
static size_t resident_pages(void *addr, size_t bytes) {
  uintptr_t lo = (uintptr_t)addr & ~(uintptr_t)TS_PAGE_MASK;
  uintptr_t hi = ((uintptr_t)addr + bytes + TS_PAGE_MASK) & ~(uintptr_t)TS_PAGE_MASK;
  size_t n = 0;
  while (lo < hi) {
    size_t pages = (hi - lo) >> TS_PAGE_SHIFT;
    if (pages > sizeof mincore_vec) pages = sizeof mincore_vec;
    if (mincore((void *)lo, pages << TS_PAGE_SHIFT, mincore_vec) != 0) return n;
    for (size_t i = 0; i < pages; i++) n += mincore_vec[i] & 1;
    lo += pages << TS_PAGE_SHIFT;
  }
  return n;
}

/* Resident pages of a chunk, a page meshed into another slab left out: it
 * shows its group's physical page, counted once, at the group's slab. */
static size_t chunk_resident_pages(ts_chunk_t *c) {
  if (mincore(c, TS_CHUNK_SIZE, mincore_vec) != 0) return 0;
  size_t n = 0;
  if (!ts_opt.mesh || !ts_mesh_group_pages()) { /* no page is meshed: the codes need not be read */
    for (unsigned p = 0; p < TS_CHUNK_PAGES; p++) n += mincore_vec[p] & 1;
    return n;
  }
  const uint8_t *codes = ts_chunk_codes(c);
  for (unsigned p = 0; p < TS_CHUNK_PAGES; p++) n += (mincore_vec[p] & 1) && codes[p] != TS_PAGE_MESHED;
  return n;
}

static void add_resident(void *map, size_t bytes, void *arg) {
  *(uint64_t *)arg += (uint64_t)resident_pages(map, bytes) << TS_PAGE_SHIFT;
}

/* Reads a small /proc file into buf without allocating; returns its length. */
static size_t read_proc(const char *path, char *buf, size_t cap) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  size_t len = 0;
  for (;;) {
    ssize_t r = read(fd, buf + len, cap - 1 - len);
    if (r <= 0) break;
    len += (size_t)r;
    if (len == cap - 1) break;
  }
  close(fd);
  buf[len] = 0;
  return len;
}

static uint64_t parse_u64(const char *s) {
  uint64_t v = 0;
  while (*s == ' ' || *s == '\t') s++;
  while (*s >= '0' && *s <= '9') v = v * 10 + (uint64_t)(*s++ - '0');
  return v;
}

static void process_rss(uint64_t *rss, uint64_t *hwm) {
  char buf[4096];
  *rss = *hwm = 0;
  if (read_proc("/proc/self/statm", buf, sizeof buf)) {
    const char *s = strchr(buf, ' ');
    if (s) *rss = parse_u64(s + 1) << TS_PAGE_SHIFT;
  }
  if (read_proc("/proc/self/status", buf, sizeof buf)) {
    const char *s = strstr(buf, "VmHWM:");
    if (s) *hwm = parse_u64(s + 6) << 10;
  }
}

/* ---- the walk ---- */

typedef struct walk_s {
  uint64_t cls_slabs[TS_NCLASSES], cls_pages[TS_NCLASSES], cls_objects[TS_NCLASSES], cls_used[TS_NCLASSES];
  uint64_t cls_foreign[TS_NCLASSES], cls_hosted[TS_NCLASSES];
  uint64_t medium_bytes; /* medium blocks, whole granules */
  uint64_t large_bytes;  /* large runs out of the arenas, held or cached */
} walk_t;

/* One arena: its chunks under its lock (mappings, residency), then each
 * bin's counters under the bin's lock. */
static void walk_arena(ts_arena_t *a, walk_t *w, ts_stats_arena_t *as, bool resident) {
  pthread_mutex_lock(&a->lock);
  for (ts_chunk_t *c = a->chunks; c; c = c->next) {
    as->chunks++;
    as->mapped_bytes += TS_CHUNK_SIZE;
    if (resident) {
      as->resident_bytes += chunk_resident_pages(c) << TS_PAGE_SHIFT;
      as->metadata_bytes += resident_pages(c, (size_t)c->first_page << TS_PAGE_SHIFT) << TS_PAGE_SHIFT;
    } else {
      as->metadata_bytes += (size_t)c->first_page << TS_PAGE_SHIFT;
    }
  }
  as->dirty_bytes = (uint64_t)a->dirty_pages << TS_PAGE_SHIFT;
  pthread_mutex_unlock(&a->lock);
  uint64_t large = (uint64_t)atomic_load_explicit(&a->large_pages, memory_order_relaxed) << TS_PAGE_SHIFT;
  w->large_bytes += large;
  as->used_bytes += large;
  pthread_mutex_lock(&a->meta.lock);
  as->metadata_bytes += a->meta.touched_bytes;
  as->mapped_bytes += a->meta.mapped_bytes;
  as->resident_bytes += a->meta.touched_bytes;
  pthread_mutex_unlock(&a->meta.lock);
  /* a class's objects in use: in its own slabs, and placed in other
   * classes' slabs (mixed.c), whose pages are theirs */
  uint64_t slab_bytes = 0, small_used = 0;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    ts_bin_t *bin = &a->bins[c];
    pthread_mutex_lock(&bin->lock);
    uint64_t slabs = bin->slabs, objects = bin->objects, pages = bin->pages;
    uint64_t used = bin->objects - bin->free_objs - bin->covered, hosted = bin->hosted;
    uint64_t foreign = atomic_load_explicit(&a->foreign_objs[c], memory_order_relaxed);
    pthread_mutex_unlock(&bin->lock);
    w->cls_slabs[c] += slabs;
    w->cls_pages[c] += pages;
    w->cls_objects[c] += objects;
    w->cls_used[c] += used + foreign;
    w->cls_foreign[c] += foreign;
    w->cls_hosted[c] += hosted;
    small_used += (used + foreign) * ts_class_size[c];
    slab_bytes += pages << TS_PAGE_SHIFT;
  }
  as->used_bytes += small_used;
  /* medium regions: their pages not purged hold their blocks and free
   * granules, which count with the slabs' free slots */
  pthread_mutex_lock(&a->medium.lock);
  uint64_t medium_used = a->medium.used_bytes, medium_pages = a->medium.pages << TS_PAGE_SHIFT;
  pthread_mutex_unlock(&a->medium.lock);
  w->medium_bytes += medium_used;
  as->used_bytes += medium_used;
  as->slab_free_bytes += medium_pages > medium_used ? medium_pages - medium_used : 0;
  /* a foreign object counted before its slab's covered slot: only while
   * a fill or free runs during the snapshot */
  as->slab_free_bytes += slab_bytes > small_used ? slab_bytes - small_used : 0;
  as->threads = atomic_load_explicit(&a->xthreads, memory_order_relaxed);
  as->committed_bytes = as->used_bytes + as->slab_free_bytes + as->dirty_bytes + as->metadata_bytes;
}

static double share(uint64_t part, uint64_t whole) { return whole ? (double)part / (double)whole : 0.0; }

/* resident: ask the kernel (mincore) what is in memory; the purger's
 * ticks do not. */
static void stats_fill(ts_stats_t *out, walk_t *w, ts_tstats_t *sum, uint64_t *cached, bool resident) {
  memset(out, 0, sizeof *out);
  memset(w, 0, sizeof *w);
  out->version = TS_STATS_VERSION;
  out->requested_exact = ts_opt.stats_exact;
  uint64_t cached_large, cached_medium;
  ts_tcache_sum_stats(sum, cached, &cached_large, &cached_medium);
  unsigned narenas = ts_is_ready() ? ts_narenas : 0;
  out->narenas = narenas;
  uint64_t requested_counted = 0;
  for (unsigned i = 0; i < narenas; i++) {
    ts_stats_arena_t *as = &out->arenas[i];
    walk_arena(&ts_arenas[i], w, as, resident);
    /* threads are read one after another: a block allocated by one and
     * freed by another can be seen freed and not allocated */
    as->requested_bytes = (int64_t)sum->requested[i] < 0 ? 0 : sum->requested[i];
    requested_counted += as->requested_bytes;
    out->slab_free_bytes += as->slab_free_bytes;
    out->dirty_bytes += as->dirty_bytes;
    out->metadata_bytes += as->metadata_bytes;
    out->mapped_bytes += as->mapped_bytes;
    out->resident_bytes += as->resident_bytes;
  }
  /* out of the slabs = held by callers + in thread caches */
  uint64_t small_live = 0, small_cached = 0;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    ts_stats_class_t *cs = &out->classes[c];
    cs->size = ts_class_size[c];
    cs->slabs = w->cls_slabs[c];
    cs->slab_bytes = w->cls_pages[c] << TS_PAGE_SHIFT;
    cs->objects = w->cls_objects[c];
    cs->used = w->cls_used[c];
    cs->cached = cached[c] < cs->used ? cached[c] : cs->used;
    cs->live = cs->used - cs->cached;
    cs->foreign = w->cls_foreign[c] < cs->used ? w->cls_foreign[c] : cs->used;
    cs->hosted_bytes = w->cls_hosted[c];
    cs->utilisation = share((cs->used - cs->foreign) * cs->size + cs->hosted_bytes, cs->slab_bytes);
    small_live += cs->live * cs->size;
    small_cached += cs->cached * cs->size;
  }
  if (cached_large > w->large_bytes) cached_large = w->large_bytes;
  uint64_t large_live = w->large_bytes - cached_large;
  /* a huge block is its usable bytes and one header page: counted from the
   * block count, so that a block freed during the snapshot cannot make the
   * difference of two counters negative */
  uint64_t huge_usable = atomic_load_explicit(&ts_huge_usable_total, memory_order_relaxed);
  uint64_t huge_headers = atomic_load_explicit(&ts_huge_count, memory_order_relaxed) << TS_PAGE_SHIFT;
  uint64_t huge_mapped = huge_usable + huge_headers;
  out->large_bytes = large_live;
  if (cached_medium > w->medium_bytes) cached_medium = w->medium_bytes;
  uint64_t medium_live = w->medium_bytes - cached_medium;
  out->medium_bytes = medium_live;
  out->huge_bytes = huge_usable;
  out->allocated_bytes = small_live + medium_live + large_live + huge_usable;
  /* requested: large runs' and huge blocks' always; small objects' with
   * stats_exact, else counted at their class size */
  out->requested_bytes = requested_counted + atomic_load_explicit(&ts_huge_requested, memory_order_relaxed) +
                         (ts_opt.stats_exact ? 0 : small_live + medium_live);
  if (out->requested_bytes > out->allocated_bytes) out->requested_bytes = out->allocated_bytes;
  out->rounding_bytes = out->allocated_bytes - out->requested_bytes;
  out->cached_bytes = small_cached + cached_large + cached_medium;
  /* tessera's structures outside its mappings: the arenas, the thread
   * caches, the chunk map's touched pages; and the huge headers */
  uint64_t threads = 0;
  for (unsigned i = 0; i < narenas; i++) threads += out->arenas[i].threads;
  uint64_t fixed = (uint64_t)narenas * sizeof(ts_arena_t) + threads * sizeof(ts_tcache_t) +
                   (resident ? resident_pages((void *)ts_chunk_map, sizeof ts_chunk_map) << TS_PAGE_SHIFT : 0);
  out->metadata_bytes += fixed + huge_headers;
  out->mapped_bytes += huge_mapped;
  if (resident) ts_huge_each(add_resident, &out->resident_bytes);
  out->committed_bytes = out->requested_bytes + out->rounding_bytes + out->cached_bytes + out->slab_free_bytes +
                         out->dirty_bytes + out->metadata_bytes;
  if (resident) process_rss(&out->process_rss_bytes, &out->process_rss_peak_bytes);
  out->returned_bytes = atomic_load_explicit(&ts_pages_returned_total, memory_order_relaxed) << TS_PAGE_SHIFT;
  uint64_t over = out->committed_bytes - out->requested_bytes;
  out->frag_ratio = out->requested_bytes ? (double)out->committed_bytes / (double)out->requested_bytes : 0.0;
  out->rounding_share = share(out->rounding_bytes, over);
  out->cached_share = share(out->cached_bytes, over);
  out->slab_free_share = share(out->slab_free_bytes, over);
  out->dirty_share = share(out->dirty_bytes, over);
  out->metadata_share = share(out->metadata_bytes, over);
  out->nmalloc = sum->nmalloc +
                 atomic_load_explicit(&ts_huge_nmalloc, memory_order_relaxed);
  out->nfree = sum->nfree +
               atomic_load_explicit(&ts_huge_nfree, memory_order_relaxed);
  out->ncalloc = sum->calls[TS_CALL_CALLOC];
  out->nrealloc = sum->calls[TS_CALL_REALLOC];
  out->naligned = sum->calls[TS_CALL_ALIGNED];
  out->nremote_free = sum->calls[TS_CALL_REMOTE_FREE];
  out->nhuge = atomic_load_explicit(&ts_huge_count, memory_order_relaxed);
  peak_raise(&peak_requested, out->requested_bytes);
  peak_raise(&peak_allocated, out->allocated_bytes);
  if (resident) peak_raise(&peak_resident, out->resident_bytes);
  out->requested_peak_bytes = atomic_load_explicit(&peak_requested, memory_order_relaxed);
  out->allocated_peak_bytes = atomic_load_explicit(&peak_allocated, memory_order_relaxed);
  out->resident_peak_bytes = atomic_load_explicit(&peak_resident, memory_order_relaxed);
}

/* Scratch for snapshots, under stats_lock: kept off the caller's stack. */
static walk_t scratch_walk;
static ts_tstats_t scratch_sum;
static uint64_t scratch_cached[TS_NCLASSES];

int ts_stats_get(ts_stats_t *out) {
  if (!out) {
    errno = EINVAL;
    return -1;
  }
  pthread_mutex_lock(&stats_lock);
  stats_fill(out, &scratch_walk, &scratch_sum, scratch_cached, true);
  pthread_mutex_unlock(&stats_lock);
  return 0;
}

/* The purger's tick: a snapshot for the high-water marks (and the
 * periodic stats file, if asked for). */
void ts_stats_tick(void) {
  static ts_stats_t tick_stats; /* under stats_lock */
  pthread_mutex_lock(&stats_lock);
  stats_fill(&tick_stats, &scratch_walk, &scratch_sum, scratch_cached, false);
  pthread_mutex_unlock(&stats_lock);
}

void ts_stats_prefork(void) { pthread_mutex_lock(&stats_lock); }
void ts_stats_postfork_parent(void) { pthread_mutex_unlock(&stats_lock); }
void ts_stats_postfork_child(void) { pthread_mutex_init(&stats_lock, NULL); }
