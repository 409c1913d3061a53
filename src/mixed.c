/* SPDX-License-Identifier: MIT */
/*
 * mixed.c: objects of one class placed in the free space of another
 * class's slab, so that memory freed by objects of some sizes serves
 * objects of other sizes (what a coalescing heap does, and slabs alone do
 * not: docs/ARCHITECTURE.md, Mixed slabs).
 *
 * When: a bin that has no free slot left would take a new slab, and its
 * arena's slabs have holes (free bytes in resident slab pages above 1/16
 * of them and 4 MiB, ts_mixed_holes).  Then objects of up to
 * TS_MIXED_MAX_SIZE go into runs of free granules (16 bytes) of other
 * bins' slabs of classes up to that size, at any granule: an aligned
 * request that would get such an object gets one of its class's own
 * slots instead (alloc.c, alloc_class_aligned).  While a heap only grows
 * it has no holes, and classes keep to their own slabs.  A bin with holes
 * refills from its lone free slots first (bin.c), which leaves runs of
 * free slots here.
 *
 * A slab that hosts such "foreign" objects has granule maps (types.h:
 * ts_mixed_s: a record in chunk->mixed[head], kept until the slab's run is
 * freed, and the spans of its later pages) and the page code
 * TS_PAGE_MIXED on all its pages, so the free fast path sends its blocks
 * to the slow path, which classifies them with no lock
 * (ts_mixed_class_nolock: a live block's own bits are stable) and caches
 * them as usual.  A flush gives a foreign object back under its slab's
 * bin lock (ts_mixed_put).  Slots that foreign objects cover are neither
 * free nor in use by the class; when the last foreign object leaves a
 * slot it is free again, and when the last leaves the slab, its pages get
 * their class's code back.  Foreign objects are counted per class in
 * arena->foreign_objs, their bytes and covered slots in the hosting bin
 * (`hosted`, `covered`): the ledger's.
 *
 * Locks: a fill holds its own bin's lock and only tries the others'
 * (pthread_mutex_trylock), so no order between bins is needed; frees and
 * flushes hold one bin lock at a time.  Map words and page codes that
 * lock-free readers may see change are relaxed atomics.  Records come from
 * the arena's metadata blocks (side.c), whose lock is a leaf.
 *
 * Off with option stats_exact: its side arrays keep a slack per slot.
 */
#include "internal.h"

#include <string.h>

/* Slabs a fill may try to place objects in before it gives up and takes
 * a new slab (slabs skipped by their `room` do not count). */
#define TS_MIXED_SCAN_SLABS 256
/* "Holes": free bytes in slab pages above 1/2^TS_MIXED_HOLES_SHIFT of
 * them and above TS_MIXED_HOLES_MIN: a small heap's spare and partly used
 * slabs are no fragmentation worth mixing classes for. */
#define TS_MIXED_HOLES_SHIFT 4
#define TS_MIXED_HOLES_MIN ((uint64_t)4 << 20)

/* ---- bitmaps ---- */

static bool bit_get(const uint64_t *m, unsigned i) { return (m[i >> 6] >> (i & 63)) & 1; }

/* Sets (or clears) bits lo .. lo + n - 1 (n > 0).  Inline, with a
 * one-word case first: a fill of 32 slabs' maps makes a few million of
 * these calls on the redis-like refill, almost all inside one word. */
static inline __attribute__((always_inline)) void bits_fill(uint64_t *m, unsigned lo, unsigned n, bool set) {
  if ((lo & 63) + n <= 64) {
    uint64_t mask = (n == 64 ? ~0ull : ((1ull << n) - 1)) << (lo & 63);
    if (set) m[lo >> 6] |= mask;
    else m[lo >> 6] &= ~mask;
    return;
  }
  while (n) {
    unsigned w = lo >> 6, b = lo & 63, k = 64 - b < n ? 64 - b : n;
    uint64_t mask = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
    if (set) m[w] |= mask;
    else m[w] &= ~mask;
    lo += k, n -= k;
  }
}

static bool bits_any(const uint64_t *m, unsigned lo, unsigned n) {
  while (n) {
    unsigned w = lo >> 6, b = lo & 63, k = 64 - b < n ? 64 - b : n;
    uint64_t mask = (k == 64 ? ~0ull : ((1ull << k) - 1)) << b;
    if (m[w] & mask) return true;
    lo += k, n -= k;
  }
  return false;
}

/* ---- the maps of a slab ---- */

/* A working copy of a slab's maps (types.h: ts_mixed_s), contiguous. */
#define TS_MIXED_MAX_WORDS TS_MIXED_WORDS(TS_SLAB_MAX_PAGES)
typedef struct {
  uint64_t used[TS_MIXED_MAX_WORDS], ends[TS_MIXED_MAX_WORDS];
} maps_t;

static unsigned slab_head(ts_chunk_t *chunk, const ts_span_t *s) { return (unsigned)(s - chunk->spans); }
static unsigned granules_of(unsigned cls) { return ts_class_size[cls] >> TS_GRANULE_SHIFT; }

/* The 4 words of page pg's used map: the record's for the head page, the
 * page's span for a later one (types.h: ts_mixed_s). */
static uint64_t *used_words(ts_chunk_t *chunk, const ts_span_t *s, ts_mixed_t *m, unsigned pg) {
  return pg ? (uint64_t *)(void *)&chunk->spans[slab_head(chunk, s) + pg] : m->used0;
}

/* Map words are written under the bin lock and read by frees without it
 * (ts_mixed_own_class): relaxed atomics, plain moves. */
static void maps_load(ts_chunk_t *chunk, const ts_span_t *s, ts_mixed_t *m, maps_t *x) {
  for (unsigned pg = 0; pg < s->npages; pg++) {
    uint64_t *w = used_words(chunk, s, m, pg);
    for (unsigned i = 0; i < 4; i++) {
      x->used[pg * 4 + i] = __atomic_load_n(&w[i], __ATOMIC_RELAXED);
      x->ends[pg * 4 + i] = __atomic_load_n(&m->ends[pg * 4 + i], __ATOMIC_RELAXED);
    }
  }
}

static void maps_store(ts_chunk_t *chunk, const ts_span_t *s, ts_mixed_t *m, const maps_t *x) {
  for (unsigned pg = 0; pg < s->npages; pg++) {
    uint64_t *w = used_words(chunk, s, m, pg);
    for (unsigned i = 0; i < 4; i++) {
      __atomic_store_n(&w[i], x->used[pg * 4 + i], __ATOMIC_RELAXED);
      __atomic_store_n(&m->ends[pg * 4 + i], x->ends[pg * 4 + i], __ATOMIC_RELAXED);
    }
  }
}

void ts_mixed_maps(ts_chunk_t *chunk, const ts_span_t *s, uint64_t *used, uint64_t *ends) {
  maps_t x;
  maps_load(chunk, s, ts_chunk_mixed(chunk, slab_head(chunk, s)), &x);
  memcpy(used, x.used, TS_MIXED_WORDS(s->npages) * sizeof(uint64_t));
  memcpy(ends, x.ends, TS_MIXED_WORDS(s->npages) * sizeof(uint64_t));
}

/* In place, word by word: word w (granules 64w .. 64w + 63) of map
 * `which` (0: used, 1: ends).  Frees and the checks of a slab's own
 * objects touch a word or two this way instead of copying the maps. */
enum { MAP_USED = 0, MAP_ENDS = 1 };
static uint64_t *map_word(ts_chunk_t *chunk, const ts_span_t *s, ts_mixed_t *m, unsigned which, unsigned w) {
  return which == MAP_USED ? used_words(chunk, s, m, w / 4) + w % 4 : &m->ends[w];
}
static uint64_t range_mask(unsigned b, unsigned k) { return (k == 64 ? ~0ull : ((1ull << k) - 1)) << b; }

static bool map_any(ts_chunk_t *chunk, const ts_span_t *s, ts_mixed_t *m, unsigned which, unsigned lo, unsigned n) {
  while (n) {
    unsigned b = lo & 63, k = 64 - b < n ? 64 - b : n;
    if (__atomic_load_n(map_word(chunk, s, m, which, lo >> 6), __ATOMIC_RELAXED) & range_mask(b, k)) return true;
    lo += k, n -= k;
  }
  return false;
}

static bool map_bit(ts_chunk_t *chunk, const ts_span_t *s, ts_mixed_t *m, unsigned which, unsigned g) {
  return (__atomic_load_n(map_word(chunk, s, m, which, g >> 6), __ATOMIC_RELAXED) >> (g & 63)) & 1;
}

/* Whether the slab hosts any placed object: its ends maps, contiguous in
 * the record. */
static bool ends_any(ts_mixed_t *m, unsigned npages) {
  for (unsigned w = 0; w < 4 * npages; w++)
    if (__atomic_load_n(&m->ends[w], __ATOMIC_RELAXED)) return true;
  return false;
}

/* Under the bin lock: the only writer. */
static inline __attribute__((always_inline)) void map_fill(ts_chunk_t *chunk, const ts_span_t *s, ts_mixed_t *m,
                                                           unsigned which, unsigned lo, unsigned n, bool set) {
  while (n) {
    unsigned b = lo & 63, k = 64 - b < n ? 64 - b : n;
    uint64_t *w = map_word(chunk, s, m, which, lo >> 6), v = __atomic_load_n(w, __ATOMIC_RELAXED);
    __atomic_store_n(w, set ? v | range_mask(b, k) : v & ~range_mask(b, k), __ATOMIC_RELAXED);
    lo += k, n -= k;
  }
}

/* The first set bit of map `which` at or after i, or nbits. */
static unsigned map_next(ts_chunk_t *chunk, const ts_span_t *s, ts_mixed_t *m, unsigned which, unsigned i,
                         unsigned nbits) {
  while (i < nbits) {
    uint64_t v = __atomic_load_n(map_word(chunk, s, m, which, i >> 6), __ATOMIC_RELAXED) & (~0ull << (i & 63));
    if (v) {
      unsigned j = (i & ~63u) + (unsigned)__builtin_ctzll(v);
      return j < nbits ? j : nbits;
    }
    i = (i & ~63u) + 64;
  }
  return nbits;
}


bool ts_mixed_slot_covered(ts_chunk_t *chunk, const ts_span_t *s, unsigned i) {
  ts_mixed_t *m = ts_chunk_mixed(chunk, slab_head(chunk, s));
  unsigned k = granules_of(s->cls);
  return m && map_any(chunk, s, m, MAP_USED, i * k, k);
}

bool ts_mixed_page_used(ts_chunk_t *chunk, const ts_span_t *s, unsigned pg) {
  ts_mixed_t *m = ts_chunk_mixed(chunk, slab_head(chunk, s));
  return m && map_any(chunk, s, m, MAP_USED, pg * (unsigned)TS_PAGE_GRANULES, (unsigned)TS_PAGE_GRANULES);
}

/* The granules of slab s free for a foreign object: free slots, the
 * granules of covered slots and of the tail that no foreign object uses
 * (x: the slab's maps, NULL when it has none). */
static void slab_avail(const ts_span_t *s, const maps_t *x, uint64_t *avail) {
  unsigned k = granules_of(s->cls), nbits = s->npages * (unsigned)TS_PAGE_GRANULES, nw = nbits / 64;
  /* every granule no placed object uses, then less the slots in use by
   * the slab's own objects (bit clear, no placed granule) */
  for (unsigned w = 0; w < nw; w++) avail[w] = x ? ~x->used[w] : ~0ull;
  const uint64_t *map = ts_slab_freemap(s);
  unsigned nobjs = ts_slab_nobjs(s);
  for (unsigned wi = 0; wi * 64 < nobjs; wi++) {
    uint64_t in_use = ~map[wi];
    if (wi * 64 + 64 > nobjs) in_use &= (1ull << (nobjs - wi * 64)) - 1;
    while (in_use) {
      unsigned i = wi * 64 + (unsigned)__builtin_ctzll(in_use);
      in_use &= in_use - 1;
      if (!x || !bits_any(x->used, i * k, k)) bits_fill(avail, i * k, k, false);
    }
  }
}

/* The slab's record, made on its first foreign object and kept until the
 * slab's run is freed (ts_mixed_forget), so that a free may read it with
 * no lock.  The slab's pages take the code TS_PAGE_MIXED while it hosts
 * anything.  NULL when out of memory. */
static ts_mixed_t *slab_maps(ts_chunk_t *chunk, ts_span_t *s) {
  unsigned head = slab_head(chunk, s);
  ts_mixed_t *m = ts_chunk_mixed(chunk, head);
  if (!m) {
    __atomic_store_n(&chunk->has_mixed, 1u, __ATOMIC_RELAXED);
    if (!(m = ts_meta_alloc(&chunk->arena->meta, TS_MIXED_RECORD_BYTES(s->npages)))) return NULL;
    memset(m, 0, TS_MIXED_RECORD_BYTES(s->npages));
    for (unsigned pg = 1; pg < s->npages; pg++) memset(used_words(chunk, s, m, pg), 0, 4 * sizeof(uint64_t));
    __atomic_store_n(&chunk->mixed[head], m, __ATOMIC_RELEASE);
  }
  if (ts_chunk_code(chunk, head) != TS_PAGE_MIXED)
    for (unsigned p = head; p < head + s->npages; p++) ts_chunk_set_code(chunk, p, TS_PAGE_MIXED);
  return m;
}

/* The last foreign object left: the pages get their class's code back. */
static void slab_maps_idle(ts_chunk_t *chunk, ts_span_t *s) {
  unsigned head = slab_head(chunk, s);
  for (unsigned p = head; p < head + s->npages; p++) ts_chunk_set_code(chunk, p, s->cls);
}

void ts_mixed_forget(ts_chunk_t *chunk, unsigned head) {
  ts_mixed_t *m = ts_chunk_mixed(chunk, head);
  if (!m) return;
  chunk->mixed[head] = NULL;
  ts_meta_free(&chunk->arena->meta, m, TS_MIXED_RECORD_BYTES(chunk->spans[head].npages));
}

/* What the maps m of slab s say of p: the class of the placed object it
 * starts, FOREIGN_NONE when no placed object uses its granule (then it can
 * only be one of the slab's own), FOREIGN_BAD when p lies inside a placed
 * object (or the maps are not a placed object's). */
enum { FOREIGN_NONE = -1, FOREIGN_BAD = -2 };
static int foreign_class(ts_chunk_t *chunk, const ts_span_t *s, ts_mixed_t *m, const void *p) {
  size_t off = (size_t)((const char *)p - (char *)ts_slab_base(chunk, s));
  unsigned g = (unsigned)(off >> TS_GRANULE_SHIFT), nbits = s->npages * (unsigned)TS_PAGE_GRANULES;
  if (off & ((1u << TS_GRANULE_SHIFT) - 1)) return FOREIGN_NONE; /* its slot reports it at flush */
  if (!m || g >= nbits || !map_bit(chunk, s, m, MAP_USED, g)) return FOREIGN_NONE;
  if (g > 0 && map_bit(chunk, s, m, MAP_USED, g - 1) && !map_bit(chunk, s, m, MAP_ENDS, g - 1)) return FOREIGN_BAD;
  unsigned end = map_next(chunk, s, m, MAP_ENDS, g, nbits);
  size_t size = (size_t)(end - g + 1) << TS_GRANULE_SHIFT;
  if (end == nbits || size > TS_MIXED_MAX_SIZE) return FOREIGN_BAD;
  return (int)ts_size_to_class_compute(size);
}

/* With no lock, for a live block p: its own bits do not change until it
 * is freed (a placed object's granules and end; a slot of the slab's own
 * class in use has no placed granule), whatever happens around it. */
unsigned ts_mixed_class_nolock(ts_chunk_t *chunk, const void *p) {
  ts_span_t *s = &chunk->spans[chunk->page_head[ts_chunk_page_of(p)]];
  ts_mixed_t *m = __atomic_load_n(&chunk->mixed[slab_head(chunk, s)], __ATOMIC_ACQUIRE);
  size_t off = (size_t)((const char *)p - (char *)ts_slab_base(chunk, s));
  if (s->cls >= TS_NCLASSES || !s->is_slab || off >= (size_t)s->npages << TS_PAGE_SHIFT) return TS_PAGE_MIXED;
  int cls = foreign_class(chunk, s, m, p);
  if (cls == FOREIGN_NONE) return s->cls; /* the slab's own: checked at its flush */
  return cls == FOREIGN_BAD ? TS_PAGE_MIXED : (unsigned)cls;
}

/* Places up to want objects of class cls in slab s (of bin `bin`, whose
 * lock the caller holds); returns how many.  With snug, only where an
 * object leaves no free granule after it in its run, or room for another
 * of its size. */
static unsigned slab_place(ts_arena_t *arena, ts_bin_t *bin, ts_chunk_t *chunk, ts_span_t *s, unsigned cls,
                           void **out, unsigned want, bool snug, bool *fits_left_out) {
  uint64_t avail[TS_MIXED_MAX_WORDS];
  maps_t x;
  ts_mixed_t *m = ts_chunk_mixed(chunk, slab_head(chunk, s));
  if (m) maps_load(chunk, s, m, &x);
  else memset(&x, 0, sizeof x);
  slab_avail(s, m ? &x : NULL, avail);
  unsigned kf = granules_of(cls), ks = granules_of(s->cls);
  unsigned nbits = s->npages * (unsigned)TS_PAGE_GRANULES, n = 0, g = 0, nobjs = ts_slab_nobjs(s);
  bool fits_left = false; /* a run that fits is left: passed over (snug), or no memory for the record */
  uint64_t *map = ts_slab_freemap(s);
  uint32_t pages = 0; /* the slab's pages the placed objects lie on */
  char *base = ts_slab_base(chunk, s);
  while (n < want) {
    g = ts_bits_next(avail, g, nbits, true);
    if (g + kf > nbits) break;
    unsigned gap = ts_bits_next(avail, g, nbits, false);
    if (gap < g + kf) {
      g = gap;
      continue;
    }
    if (snug && gap != g + kf && gap < g + 2 * kf) { /* it would leave a sliver */
      fits_left = true;
      g = gap;
      continue;
    }
    /* the first object placed: a record if the slab has none, and the
     * code that sends its frees here if it hosted nothing */
    if (n == 0 && !(m = slab_maps(chunk, s))) {
      fits_left = true;
      break;
    }
    bits_fill(avail, g, kf, false);
    bits_fill(x.used, g, kf, true);
    bits_fill(x.ends, g + kf - 1, 1, true);
    for (unsigned i = g / ks; i <= (g + kf - 1) / ks && i < nobjs; i++) {
      if (!bit_get(map, i)) continue; /* covered already */
      map[i >> 6] &= ~(1ull << (i & 63));
      s->nfree--;
      TS_SW_ADD(bin->free_objs, (uint64_t)-1);
      TS_SW_ADD(bin->covered, 1);
    }
    for (unsigned pg = g / TS_PAGE_GRANULES; pg <= (g + kf - 1) / TS_PAGE_GRANULES; pg++) pages |= 1u << pg;
    out[n++] = base + ((size_t)g << TS_GRANULE_SHIFT);
    g += kf;
  }
  if (n < want && !fits_left && kf < s->room) s->room = (uint8_t)kf; /* skipped by the next fills of kf or more */
  *fits_left_out |= fits_left;
  if (n) {
    TS_SW_ADD(bin->pages, ts_slab_pages_in_use(s, pages));
    maps_store(chunk, s, m, &x);
    TS_SW_ADD(bin->hosted, (uint64_t)n * ts_class_size[cls]);
    atomic_fetch_add_explicit(&arena->foreign_objs[cls], n, memory_order_relaxed);
    ts_bin_settle(bin, chunk, s);
  }
  return n;
}

bool ts_mixed_holes(ts_arena_t *arena) {
  uint64_t slab = 0, used = 0;
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    ts_bin_t *b = &arena->bins[c];
    uint64_t own = TS_SW_LOAD(b->objects) - TS_SW_LOAD(b->free_objs) - TS_SW_LOAD(b->covered);
    uint64_t foreign = atomic_load_explicit(&arena->foreign_objs[c], memory_order_relaxed);
    slab += TS_SW_LOAD(b->pages) << TS_PAGE_SHIFT;
    used += (own + foreign) * ts_class_size[c];
  }
  return slab > used && slab - used > slab >> TS_MIXED_HOLES_SHIFT && slab - used > TS_MIXED_HOLES_MIN;
}

/* Host classes are tried from those whose slots are a quarter of the
 * object up (smaller slots would need many free neighbours), in two
 * passes: a snug one over the first TS_MIXED_SNUG_SLABS slabs, which
 * takes only runs an object fills or leaves room for another of its size
 * in, so that it leaves no sliver of free granules too small for it;
 * then one that takes any run that fits (docs/ARCHITECTURE.md, Mixed
 * slabs: redis-like refill 1.174 -> 1.168).
 * A slab with no room for objects of some size is skipped for that size
 * and larger until it gains free space (span->room), and so is a bin none
 * of whose slabs had room (bin->room): fills that find nothing do not look
 * at the same slabs again until something is freed there. */
unsigned ts_mixed_fill(ts_arena_t *arena, unsigned cls, void **out, unsigned want) {
  unsigned n = 0, kf = granules_of(cls);
  unsigned first = ts_size_to_class_compute((ts_class_size[cls] + 3) / 4);
  for (unsigned pass = 0; pass < 2 && n < want; pass++) {
    bool snug = pass == 0;
    unsigned tries = snug ? TS_MIXED_SNUG_SLABS : TS_MIXED_SCAN_SLABS;
    for (unsigned c = first; c < TS_NCLASSES && ts_class_size[c] <= TS_MIXED_MAX_SIZE && n < want && tries; c++) {
      ts_bin_t *bin = &arena->bins[c];
      if (c == cls || kf >= TS_SW_LOAD(bin->room)) continue; /* a racy peek: only a hint */
      if (pthread_mutex_trylock(&bin->lock) != 0) continue;
      bool walked = true, fits_left = false;
      for (unsigned l = 0; l < TS_BIN_LISTS && n < want; l++) {
        for (ts_span_t *s = bin->lists[l], *next; s && n < want; s = next) {
          next = s->next; /* placing relists s, not next */
          if (kf >= s->room || (ts_opt.mesh && *ts_slab_mesh(s))) continue;
          if (!tries) {
            walked = false;
            break;
          }
          tries--;
          n += slab_place(arena, bin, ts_chunk_of(s), s, cls, out + n, want - n, snug, &fits_left);
        }
      }
      /* no slab of the bin has a run that fits (none passed over) */
      if (walked && !fits_left && n < want && kf < bin->room) TS_SW_SET(bin->room, (uint8_t)kf);
      pthread_mutex_unlock(&bin->lock);
    }
  }
  return n;
}


void ts_mixed_put(ts_bin_t *bin, ts_chunk_t *chunk, ts_span_t *s, void *p, const char *fn) {
  ts_mixed_t *m = chunk->mixed[slab_head(chunk, s)];
  int cls = foreign_class(chunk, s, m, p);
  if (cls < 0) {
    pthread_mutex_unlock(&bin->lock);
    ts_fatal("%s(): invalid pointer %p (not a block of the slab of size %u it lies in)", fn, p,
             (unsigned)ts_class_size[s->cls]);
  }
  unsigned g = (unsigned)(((char *)p - (char *)ts_slab_base(chunk, s)) >> TS_GRANULE_SHIFT);
  unsigned kf = granules_of((unsigned)cls), ks = granules_of(s->cls);
  map_fill(chunk, s, m, MAP_USED, g, kf, false);
  map_fill(chunk, s, m, MAP_ENDS, g + kf - 1, 1, false);
  uint64_t *map = ts_slab_freemap(s);
  for (unsigned i = g / ks; i <= (g + kf - 1) / ks && i < ts_slab_nobjs(s); i++) {
    if (map_any(chunk, s, m, MAP_USED, i * ks, ks)) continue; /* still covered by another */
    map[i >> 6] |= 1ull << (i & 63);
    s->nfree++;
    TS_SW_ADD(bin->free_objs, 1);
    TS_SW_ADD(bin->covered, (uint64_t)-1);
  }
  atomic_fetch_sub_explicit(&chunk->arena->foreign_objs[cls], 1, memory_order_relaxed);
  TS_SW_ADD(bin->hosted, (uint64_t)0 - ts_class_size[cls]);
  s->room = TS_ROOM_UNKNOWN;
  TS_SW_SET(bin->room, TS_ROOM_UNKNOWN);
  if (!ends_any(m, s->npages)) slab_maps_idle(chunk, s);
  ts_bin_settle(bin, chunk, s);
}

/* The slab a pointer on a mixed page lies in, with its bin locked; the
 * page may have stopped being mixed meanwhile. */
static ts_span_t *lock_slab(ts_chunk_t *chunk, const void *p, ts_bin_t **bin_out, const char *fn) {
  unsigned page = ts_chunk_page_of(p);
  ts_span_t *s = &chunk->spans[chunk->page_head[page]];
  unsigned cls = s->cls;
  if (cls >= TS_NCLASSES) ts_fatal("%s(): invalid pointer %p", fn, p);
  ts_bin_t *bin = &chunk->arena->bins[cls];
  pthread_mutex_lock(&bin->lock);
  unsigned code = ts_chunk_code(chunk, page);
  if (TS_UNLIKELY(!s->is_slab || s->cls != cls || (code != TS_PAGE_MIXED && code != cls))) {
    pthread_mutex_unlock(&bin->lock);
    ts_fatal("%s(): invalid pointer %p", fn, p);
  }
  *bin_out = bin;
  return s;
}

void ts_mixed_free(ts_chunk_t *chunk, void *p, const char *fn) {
  ts_bin_t *bin;
  ts_span_t *s = lock_slab(chunk, p, &bin, fn);
  int cls = foreign_class(chunk, s, chunk->mixed[slab_head(chunk, s)], p);
  if (cls == FOREIGN_BAD) {
    pthread_mutex_unlock(&bin->lock);
    ts_fatal("%s(): invalid pointer %p (inside a block placed in a slab of size %u)", fn, p,
             (unsigned)ts_class_size[s->cls]);
  }
  ts_tstats_t *st = ts_stats_here();
  ts_acct_small_free(st, st == &ts_stats_orphan, p, cls < 0 ? s->cls : (unsigned)cls);
  if (cls >= 0) ts_mixed_put(bin, chunk, s, p, fn);
  else ts_bin_put(bin, chunk, p);
  pthread_mutex_unlock(&bin->lock);
  ts_purge_kick();
}

unsigned ts_mixed_class_of(ts_chunk_t *chunk, const void *p, const char *fn) {
  ts_bin_t *bin;
  ts_span_t *s = lock_slab(chunk, p, &bin, fn);
  int cls = foreign_class(chunk, s, chunk->mixed[slab_head(chunk, s)], p);
  unsigned r = cls < 0 ? s->cls : (unsigned)cls;
  if (cls < 0) { /* one of the slab's own: it must start a slot in use */
    size_t off = (size_t)((const char *)p - (char *)ts_slab_base(chunk, s)), size = ts_class_size[s->cls];
    unsigned i = (unsigned)(off / size);
    if (off % size || i >= ts_slab_nobjs(s) || bit_get(ts_slab_freemap(s), i) || ts_mixed_slot_covered(chunk, s, i)) {
      pthread_mutex_unlock(&bin->lock);
      ts_fatal("%s(): invalid pointer %p", fn, p);
    }
  }
  pthread_mutex_unlock(&bin->lock);
  return r;
}
