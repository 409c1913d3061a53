/* SPDX-License-Identifier: MIT */
/*
 * medium.c: requests above TS_MEDIUM_MIN_SIZE up to TS_MEDIUM_MAX_SIZE
 * (option medium) as blocks of 256-byte granules in regions, first fit,
 * free neighbours coalescing.
 *
 * A region is a page run of TS_MEDIUM_REGION_PAGES pages whose pages all
 * carry the code TS_PAGE_MEDIUM and name the region's head in page_head.
 * Its record (types.h: ts_medium_region_s, the invariants) lies in the
 * spans of its later pages.  A block is the request rounded up to whole
 * granules, at the lowest granule of the first region (lowest slot) whose
 * longest free run holds it, found down a summary tree of the region's
 * used map (types.h).  Freeing clears its granules, which merge
 * with the free ones around them at once: there is no slot structure, so
 * space freed by one size serves any other.  No thread cache hands a
 * freed block out again (one cached block per class undid the packing:
 * ARCHITECTURE, Medium regions); a thread only gathers its frees
 * (TS_MEDIUM_PENDING, tcache.c) and gives them back under one lock.
 * Why: slabs leave each class's free slots to that class alone, and a
 * class with a few hundred blocks wanders by about the square root of
 * that as a mix churns; page runs round 32 to 64 KiB blocks to pages.
 * The model (bench/sim_medium.c) puts the cache pattern's floor at 1.020
 * with this layout for 4 to 64 KiB against 1.050 with slabs.
 *
 * A region with no block is kept as the arena's empty region if there is
 * none; a second one goes back to the arena.  Pages of a region that hold
 * no granule of a block age a tick and are then purged (as slab pages
 * are); a block placed on a purged page makes it resident again.
 *
 * Locking: the arena's medium lock guards its regions' records, the table
 * and the counters; it is taken before the arena lock (as a bin lock is).
 * The maps' words are read and written as relaxed atomics: a free reads
 * its block's own bits with no lock (ts_medium_usable).
 */
#include "internal.h"

#include <string.h>

_Static_assert(sizeof(ts_medium_region_t) <= (TS_MEDIUM_REGION_PAGES - 1) * sizeof(ts_span_t),
               "a region's record fits the spans of its later pages");
_Static_assert(TS_MEDIUM_GRANULES <= UINT16_MAX, "granule counts fit 16 bits");
_Static_assert(TS_MEDIUM_REGION_PAGES % 64 == 0, "a region's pages fill the words of its masks");
_Static_assert(TS_MEDIUM_PAGE_GRANULES == 16, "a used-map word holds 4 pages (region_purge)");

#define TS_MEDIUM_NONE UINT32_MAX

ts_medium_region_t *ts_medium_region(ts_chunk_t *chunk, unsigned head) {
  return (ts_medium_region_t *)(void *)&chunk->spans[head + 1];
}

static uint64_t word_load(const uint64_t *w) { return __atomic_load_n(w, __ATOMIC_RELAXED); }
static void word_store(uint64_t *w, uint64_t v) { __atomic_store_n(w, v, __ATOMIC_RELAXED); }

/* The lock spins a while before it sleeps: its holders stay for a
 * fraction of a microsecond, and a thread freeing another's blocks meets
 * their owner often. */
static void medium_lock_init(pthread_mutex_t *lock) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
  pthread_mutex_init(lock, &attr);
  pthread_mutexattr_destroy(&attr);
}

void ts_medium_init(ts_medium_t *m) {
  medium_lock_init(&m->lock);
  m->regions = NULL;
  m->tree = NULL;
  m->nslots = 0;
  m->nregions = 0;
  m->empty_slot = TS_MEDIUM_NONE;
  m->pages = 0;
  m->used_bytes = 0;
}

/* ---- granule maps ---- */

/* Sets (or clears) bits [from, to) of map. */
static void bits_assign(uint64_t *map, unsigned from, unsigned to, bool set) {
  while (from < to) {
    unsigned w = from >> 6, lo = from & 63, n = to - from < 64 - lo ? to - from : 64 - lo;
    uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << lo;
    word_store(&map[w], set ? map[w] | mask : map[w] & ~mask);
    from += n;
  }
}

/* The summary tree over a region's used map (types.h): a word's free
 * bits give its leaf; a node joins its children's. */

static unsigned ones_low(uint64_t f) { return f == ~0ull ? 64 : (unsigned)__builtin_ctzll(~f); }
static unsigned ones_high(uint64_t f) { return f == ~0ull ? 64 : (unsigned)__builtin_clzll(~f); }

/* The longest run of set bits of f (a word holds a few runs). */
static unsigned word_best(uint64_t f) {
  unsigned best = 0;
  while (f) {
    unsigned at = (unsigned)__builtin_ctzll(f), len = ones_low(f >> at);
    if (len > best) best = len;
    if (at + len >= 64) break;
    f &= ~0ull << (at + len);
  }
  return best;
}

/* Node i from its children; len: the granules it covers. */
static void summary_pull(ts_medium_region_t *r, unsigned i, unsigned len) {
  unsigned l = 2 * i, h = len / 2;
  r->pre[i] = (uint16_t)(r->pre[l] == h ? h + r->pre[l + 1] : r->pre[l]);
  r->suf[i] = (uint16_t)(r->suf[l + 1] == h ? h + r->suf[l] : r->suf[l + 1]);
  unsigned best = r->best[l] > r->best[l + 1] ? r->best[l] : r->best[l + 1];
  unsigned across = (unsigned)r->suf[l] + r->pre[l + 1];
  r->best[i] = (uint16_t)(across > best ? across : best);
}

/* Words w0 .. w1 of the used map changed: their leaves and the nodes above. */
static void summary_update(ts_medium_region_t *r, unsigned w0, unsigned w1) {
  for (unsigned w = w0; w <= w1; w++) {
    uint64_t f = ~word_load(&r->used[w]);
    unsigned i = TS_MEDIUM_WORDS + w;
    r->pre[i] = (uint16_t)ones_low(f);
    r->suf[i] = (uint16_t)ones_high(f);
    r->best[i] = (uint16_t)(f == ~0ull ? 64 : word_best(f));
  }
  unsigned len = 128;
  for (unsigned lo = (TS_MEDIUM_WORDS + w0) >> 1, hi = (TS_MEDIUM_WORDS + w1) >> 1; lo; lo >>= 1, hi >>= 1, len *= 2)
    for (unsigned i = lo; i <= hi; i++) summary_pull(r, i, len);
}

/* A region with every granule free. */
static void summary_init(ts_medium_region_t *r) {
  for (unsigned i = 1; i < 2 * TS_MEDIUM_WORDS; i++) {
    unsigned len = TS_MEDIUM_GRANULES >> (31 - __builtin_clz(i));
    r->pre[i] = r->suf[i] = r->best[i] = (uint16_t)len;
  }
}

/* Bits i of f that start k free bits inside the word (k <= 64). */
static uint64_t word_runs_of(uint64_t f, unsigned k) {
  unsigned have = 1; /* bit i of f: bits i .. i + have - 1 are free */
  while (have < k) {
    unsigned step = have < k - have ? have : k - have;
    f &= f >> step;
    have += step;
  }
  return f;
}

/* The lowest granule starting a free run of k, or TS_MEDIUM_GRANULES:
 * down the tree, left while the left child holds such a run, stopping
 * where one crosses from the left child into the right. */
static unsigned region_first_fit(const ts_medium_region_t *r, unsigned k) {
  if (r->best[1] < k) return TS_MEDIUM_GRANULES;
  unsigned i = 1, lo = 0, len = TS_MEDIUM_GRANULES;
  while (i < TS_MEDIUM_WORDS) {
    unsigned l = 2 * i, h = len / 2;
    if (r->best[l] >= k) {
      i = l;
    } else if ((unsigned)r->suf[l] + r->pre[l + 1] >= k) {
      return lo + h - r->suf[l];
    } else {
      i = l + 1;
      lo += h;
    }
    len = h;
  }
  /* inside word i - TS_MEDIUM_WORDS (k <= 64 here) */
  uint64_t starts = word_runs_of(~word_load(&r->used[i - TS_MEDIUM_WORDS]), k);
  return lo + (unsigned)__builtin_ctzll(starts);
}

static bool bit_at(const uint64_t *map, unsigned g) { return (word_load(&map[g >> 6]) >> (g & 63)) & 1; }

/* Whether a block starts at granule g. */
static bool region_block_starts(const ts_medium_region_t *r, unsigned g) {
  return bit_at(r->used, g) && (g == 0 || !bit_at(r->used, g - 1) || bit_at(r->ends, g - 1));
}

/* ---- the region table ---- */

static void tree_set(ts_medium_t *m, uint32_t slot, unsigned longest) {
  uint32_t i = m->nslots + slot;
  m->tree[i] = (uint16_t)longest;
  for (i >>= 1; i; i >>= 1) m->tree[i] = m->tree[2 * i] > m->tree[2 * i + 1] ? m->tree[2 * i] : m->tree[2 * i + 1];
}

/* The lowest slot whose longest free run is at least k, or TS_MEDIUM_NONE. */
static uint32_t tree_find(const ts_medium_t *m, unsigned k) {
  if (!m->nslots || m->tree[1] < k) return TS_MEDIUM_NONE;
  uint32_t i = 1;
  while (i < m->nslots) {
    i *= 2;
    if (m->tree[i] < k) i++;
  }
  return i - m->nslots;
}

/* Doubles the table (at first: 64 slots).  The old arrays are unmapped: a
 * free reads no table. */
static bool table_grow(ts_medium_t *m) {
  uint32_t n = m->nslots ? 2 * m->nslots : 64;
  size_t rbytes = n * sizeof(ts_span_t *), tbytes = 2 * n * sizeof(uint16_t);
  ts_span_t **regions = ts_os_map(rbytes);
  uint16_t *tree = regions ? ts_os_map(tbytes) : NULL;
  if (!tree) {
    if (regions) ts_os_unmap(regions, rbytes);
    return false;
  }
  if (m->nslots) {
    memcpy(regions, m->regions, m->nslots * sizeof(ts_span_t *));
    ts_os_unmap(m->regions, m->nslots * sizeof(ts_span_t *));
    ts_os_unmap(m->tree, 2 * m->nslots * sizeof(uint16_t));
  }
  m->regions = regions;
  m->tree = tree; /* zero: no room anywhere, set again below */
  uint32_t old = m->nslots;
  m->nslots = n;
  for (uint32_t s = 0; s < old; s++)
    if (m->regions[s]) {
      ts_chunk_t *c = ts_chunk_of(m->regions[s]);
      tree_set(m, s, ts_medium_region(c, (unsigned)(m->regions[s] - c->spans))->best[1]);
    }
  return true;
}

/* A new region in the lowest free slot; NULL when out of memory. */
static ts_medium_region_t *region_new(ts_arena_t *arena, ts_chunk_t **chunk_out, unsigned *head_out) {
  ts_medium_t *m = &arena->medium;
  if (m->nregions == m->nslots && !table_grow(m)) return NULL;
  uint32_t slot = 0;
  while (m->regions[slot]) slot++;
  ts_span_t *s;
  void *base = ts_arena_run_alloc(arena, TS_MEDIUM_REGION_PAGES, 1, &s);
  if (!base) return NULL;
  ts_chunk_t *chunk = ts_chunk_of(base);
  unsigned head = (unsigned)(s - chunk->spans);
  ts_medium_region_t *r = ts_medium_region(chunk, head);
  memset(r, 0, sizeof *r);
  r->slot = slot;
  summary_init(r);
  for (unsigned p = head; p < head + TS_MEDIUM_REGION_PAGES; p++) {
    chunk->page_head[p] = (uint16_t)head;
    ts_chunk_set_code(chunk, p, TS_PAGE_MEDIUM);
  }
  m->regions[slot] = s;
  m->nregions++;
  m->pages += TS_MEDIUM_REGION_PAGES;
  tree_set(m, slot, r->best[1]);
  *chunk_out = chunk;
  *head_out = head;
  return r;
}

/* Gives an empty region's run back to its arena. */
static void region_delete(ts_medium_t *m, ts_chunk_t *chunk, unsigned head) {
  ts_medium_region_t *r = ts_medium_region(chunk, head);
  m->regions[r->slot] = NULL;
  tree_set(m, r->slot, 0);
  m->nregions--;
  /* the pages purged inside go back free but not dirty, as a slab's do */
  uint64_t purged[TS_MEDIUM_MASK_WORDS];
  memcpy(purged, r->purged, sizeof purged);
  m->pages -= TS_MEDIUM_REGION_PAGES;
  for (unsigned w = 0; w < TS_MEDIUM_MASK_WORDS; w++) m->pages += (unsigned)__builtin_popcountll(purged[w]);
  /* the record lay in spans a slab or a free run will use: they must read
   * as never used (a slab's mesh group, above all) */
  memset(r, 0, sizeof *r);
  ts_arena_run_free_purged(chunk, head, purged);
}

/* ---- blocks ---- */

/* The used map of r changed in granules [g, g + k): its summary, and the
 * table's tree if its longest free run did. */
static void region_changed(ts_medium_t *m, ts_medium_region_t *r, unsigned g, unsigned k) {
  summary_update(r, g >> 6, (g + k - 1) >> 6);
  if (m->tree[m->nslots + r->slot] != r->best[1]) tree_set(m, r->slot, r->best[1]);
}


/* Places a block of k granules at g of r: maps, counters, and the purged
 * and aged marks of the pages it lies on. */
static void region_take(ts_medium_t *m, ts_medium_region_t *r, unsigned g, unsigned k) {
  bits_assign(r->used, g, g + k, true);
  bits_assign(r->ends, g + k - 1, g + k, true);
  region_changed(m, r, g, k);
  r->nblocks++;
  m->used_bytes += (uint64_t)k << TS_MEDIUM_GRANULE_SHIFT;
  unsigned first = g / TS_MEDIUM_PAGE_GRANULES, last = (g + k - 1) / TS_MEDIUM_PAGE_GRANULES;
  for (unsigned p = first; p <= last; p++) {
    uint64_t bit = 1ull << (p & 63);
    m->pages += (r->purged[p >> 6] & bit) != 0;
    r->purged[p >> 6] &= ~bit;
    r->aged[p >> 6] &= ~bit;
  }
}

/* The region holding p and p's granule, or NULL when p cannot start a
 * block (not in a region, not on a granule); reads no map. */
static ts_medium_region_t *region_of(ts_chunk_t *chunk, const void *p, unsigned *head_out, unsigned *g_out) {
  unsigned page = ts_chunk_page_of(p);
  unsigned head = chunk->page_head[page];
  if (head > page || page - head >= TS_MEDIUM_REGION_PAGES || ts_chunk_code(chunk, head) != TS_PAGE_MEDIUM)
    return NULL;
  size_t off = (size_t)((const char *)p - (const char *)ts_chunk_page_addr(chunk, head));
  if (off & ((1u << TS_MEDIUM_GRANULE_SHIFT) - 1)) return NULL;
  *head_out = head;
  *g_out = (unsigned)(off >> TS_MEDIUM_GRANULE_SHIFT);
  return ts_medium_region(chunk, head);
}

/* Granules of the block starting at g, or 0 if none starts there. */
static unsigned block_granules(const ts_medium_region_t *r, unsigned g) {
  if (!region_block_starts(r, g)) return 0;
  unsigned end = ts_bits_next(r->ends, g, TS_MEDIUM_GRANULES, true);
  return end < TS_MEDIUM_GRANULES ? end - g + 1 : 0;
}

void *ts_medium_alloc(ts_arena_t *arena, size_t size) {
  ts_medium_t *m = &arena->medium;
  unsigned k = (unsigned)((size + (1u << TS_MEDIUM_GRANULE_SHIFT) - 1) >> TS_MEDIUM_GRANULE_SHIFT);
  void *p = NULL;
  pthread_mutex_lock(&m->lock);
  ts_chunk_t *chunk;
  unsigned head;
  ts_medium_region_t *r;
  uint32_t slot = tree_find(m, k);
  if (slot != TS_MEDIUM_NONE) { /* its longest run is exact: the search finds room */
    chunk = ts_chunk_of(m->regions[slot]);
    head = (unsigned)(m->regions[slot] - chunk->spans);
    r = ts_medium_region(chunk, head);
  } else {
    r = region_new(arena, &chunk, &head);
  }
  if (r) {
    unsigned g = region_first_fit(r, k);
    if (r->slot == m->empty_slot) m->empty_slot = TS_MEDIUM_NONE;
    region_take(m, r, g, k);
    p = (char *)ts_chunk_page_addr(chunk, head) + ((size_t)g << TS_MEDIUM_GRANULE_SHIFT);
  }
  pthread_mutex_unlock(&m->lock);
  return p;
}

/* With no lock: only the block's own bits are read (its used granules and
 * its end), which do not change while it is live; its neighbours' may, so
 * whether g starts a block is not known here (a pointer inside a block
 * reads as its tail: the free that gives it back finds it out, under the
 * lock). */
size_t ts_medium_usable(ts_chunk_t *chunk, const void *p) {
  unsigned head, g;
  const ts_medium_region_t *r = region_of(chunk, p, &head, &g);
  if (!r || !bit_at(r->used, g)) return 0;
  unsigned end = ts_bits_next(r->ends, g, TS_MEDIUM_GRANULES, true);
  return end < TS_MEDIUM_GRANULES ? (size_t)(end - g + 1) << TS_MEDIUM_GRANULE_SHIFT : 0;
}

/* Clears granules [g, g + k) of a block of r, the end of the block at
 * g + k - 1 (whole: g is its start; a tail: the block keeps [.., g)). */
static void region_release(ts_medium_t *m, ts_medium_region_t *r, unsigned g, unsigned k) {
  bits_assign(r->used, g, g + k, false);
  bits_assign(r->ends, g + k - 1, g + k, false);
  region_changed(m, r, g, k);
  m->used_bytes -= (uint64_t)k << TS_MEDIUM_GRANULE_SHIFT;
}

/* Gives the block at p back to its region; the medium lock held. */
static void medium_put(ts_medium_t *m, ts_chunk_t *chunk, void *p, const char *fn) {
  unsigned head, g, k = 0;
  ts_medium_region_t *r = region_of(chunk, p, &head, &g);
  if (TS_UNLIKELY(!r || !(k = block_granules(r, g)))) {
    pthread_mutex_unlock(&m->lock);
    ts_fatal("%s(): invalid pointer %p (not a block in a medium region, or freed twice)", fn, p);
  }
  region_release(m, r, g, k);
  r->nblocks--;
  if (r->nblocks == 0 && m->empty_slot != TS_MEDIUM_NONE) {
    region_delete(m, chunk, head);
  } else if (r->nblocks == 0) {
    m->empty_slot = r->slot;
  }
}

void ts_medium_free_many(void **ptrs, unsigned n, const char *fn) {
  while (n) {
    ts_arena_t *arena = ts_chunk_of(ptrs[0])->arena;
    ts_medium_t *m = &arena->medium;
    unsigned rest = 0;
    pthread_mutex_lock(&m->lock);
    for (unsigned i = 0; i < n; i++) {
      ts_chunk_t *chunk = ts_chunk_of(ptrs[i]);
      if (chunk->arena != arena) ptrs[rest++] = ptrs[i];
      else medium_put(m, chunk, ptrs[i], fn);
    }
    pthread_mutex_unlock(&m->lock);
    n = rest;
  }
}

bool ts_medium_resize(ts_chunk_t *chunk, void *p, size_t size) {
  ts_medium_t *m = &chunk->arena->medium;
  unsigned head, g, k = (unsigned)((size + (1u << TS_MEDIUM_GRANULE_SHIFT) - 1) >> TS_MEDIUM_GRANULE_SHIFT), old;
  bool ok = false;
  pthread_mutex_lock(&m->lock);
  ts_medium_region_t *r = region_of(chunk, p, &head, &g);
  if (r && (old = block_granules(r, g)) != 0) {
    if (k == old) {
      ok = true;
    } else if (k < old) { /* the tail goes back */
      region_release(m, r, g + k, old - k);
      bits_assign(r->ends, g + k - 1, g + k, true);
      ok = true;
    } else if (g + k <= TS_MEDIUM_GRANULES &&
               ts_bits_next(r->used, g + old, g + k, true) == g + k) { /* the granules after it are free */
      bits_assign(r->ends, g + old - 1, g + old, false);
      region_take(m, r, g + old, k - old);
      r->nblocks--; /* region_take counted a block */
      ok = true;
    }
  }
  pthread_mutex_unlock(&m->lock);
  return ok;
}

/* ---- purging ---- */

/* Purges the pages of r that hold no block: with aged_only those the
 * previous call found free too; returns the pages purged. */
static size_t region_purge(ts_medium_t *m, ts_chunk_t *chunk, unsigned head, bool aged_only) {
  ts_medium_region_t *r = ts_medium_region(chunk, head);
  char *base = ts_chunk_page_addr(chunk, head);
  size_t purged = 0;
  for (unsigned pw = 0; pw < TS_MEDIUM_MASK_WORDS; pw++) {
    /* the 64 pages of mask word pw: a used-map word holds 4 of them */
    uint64_t free_pages = 0;
    for (unsigned w = 0; w < 16; w++) {
      uint64_t used = word_load(&r->used[pw * 16 + w]);
      for (unsigned q = 0; q < 4; q++)
        if (!((used >> (q * TS_MEDIUM_PAGE_GRANULES)) & 0xFFFFu)) free_pages |= 1ull << (w * 4 + q);
    }
    uint64_t take = free_pages & ~r->purged[pw];
    if (aged_only) {
      uint64_t young = take & ~r->aged[pw];
      r->aged[pw] = young;
      take &= ~young;
    } else {
      r->aged[pw] = 0;
    }
    while (take) {
      unsigned first = (unsigned)__builtin_ctzll(take), len = ones_low(take >> first);
      ts_os_purge(base + ((size_t)(pw * 64 + first) << TS_PAGE_SHIFT), (size_t)len << TS_PAGE_SHIFT);
      uint64_t mask = (len == 64 ? ~0ull : ((1ull << len) - 1)) << first;
      r->purged[pw] |= mask;
      take &= ~mask;
      purged += len;
    }
  }
  m->pages -= purged;
  ts_pages_returned += purged;
  atomic_fetch_add_explicit(&ts_pages_returned_total, purged, memory_order_relaxed);
  return purged;
}

size_t ts_medium_purge(ts_arena_t *arena, bool aged_only) {
  ts_medium_t *m = &arena->medium;
  size_t purged = 0;
  pthread_mutex_lock(&m->lock);
  if (m->empty_slot != TS_MEDIUM_NONE) { /* the empty region goes back to the arena */
    ts_span_t *s = m->regions[m->empty_slot];
    ts_chunk_t *chunk = ts_chunk_of(s);
    m->empty_slot = TS_MEDIUM_NONE;
    region_delete(m, chunk, (unsigned)(s - chunk->spans));
  }
  for (uint32_t slot = 0; slot < m->nslots; slot++) {
    ts_span_t *s = m->regions[slot];
    if (!s) continue;
    ts_chunk_t *chunk = ts_chunk_of(s);
    purged += region_purge(m, chunk, (unsigned)(s - chunk->spans), aged_only);
  }
  pthread_mutex_unlock(&m->lock);
  return purged;
}

void ts_medium_prefork(ts_arena_t *arena) { pthread_mutex_lock(&arena->medium.lock); }
void ts_medium_postfork_parent(ts_arena_t *arena) { pthread_mutex_unlock(&arena->medium.lock); }
void ts_medium_postfork_child(ts_arena_t *arena) { medium_lock_init(&arena->medium.lock); }
