/* SPDX-License-Identifier: MIT */
/*
 * slab.c: objects of one size class inside a run of pages.
 *
 * A slab's metadata is the span of its head page (types.h: ts_span_s): the
 * class, the free count, and a bitmap with a set bit per free object, in
 * the span for slabs of up to 64 objects, else in a piece of the arena's
 * metadata blocks.  The bitmap lives in metadata, never in the objects, so
 * a stray write into freed memory cannot corrupt it, and a second free of
 * the same object finds its bit already set and is reported.  Objects are taken
 * lowest index first, which keeps a slab's live objects packed at its start.
 * Objects of other classes may lie in a slab's free space (mixed.c): the
 * slots they cover have their bit clear.
 * The caller holds the lock of the bin that owns the slab.
 */
#include "internal.h"

#include <string.h>

#define TS_SLAB_EXT_BYTES (TS_SLAB_MAP_WORDS * sizeof(uint64_t))

bool ts_slab_init(ts_chunk_t *chunk, unsigned head, unsigned cls) {
  ts_span_t *s = &chunk->spans[head];
  uint64_t *map = &s->map.word;
  if (ts_slab_map_ext(cls) && !(map = ts_meta_alloc(&chunk->arena->meta, TS_SLAB_EXT_BYTES))) return false;
  if (!ts_side_attach(chunk, head, cls)) {
    if (map != &s->map.word) ts_meta_free(&chunk->arena->meta, map, TS_SLAB_EXT_BYTES);
    return false;
  }
  unsigned nobjs = ts_class_slab_objs[cls];
  if (map != &s->map.word) s->map.ext = map;
  s->is_slab = 1;
  s->cls = (uint8_t)cls;
  s->list = TS_BIN_NOLIST;
  s->nfree = (uint16_t)nobjs;
  s->room = TS_ROOM_UNKNOWN;
  s->next = s->prev = NULL; /* its pages' purged and aged bits are clear (ts_slab_fini) */
  memset(map, 0, (nobjs + 63) / 64 * sizeof(uint64_t));
  for (unsigned w = 0; w < nobjs / 64; w++) map[w] = ~0ull;
  if (nobjs % 64) map[nobjs / 64] = (1ull << (nobjs % 64)) - 1;
  for (unsigned p = head; p < head + s->npages; p++) {
    ts_chunk_codes(chunk)[p] = (uint8_t)cls;
    chunk->page_head[p] = (uint16_t)head;
  }
  return true;
}

/* Leaves the slab's pages' purged and aged bits clear for the next run
 * there (the chunk's bitmaps start zeroed). */
void ts_slab_fini(ts_chunk_t *chunk, ts_span_t *s) {
  uint32_t pages = (uint32_t)((1ull << s->npages) - 1);
  if (ts_slab_map_ext(s->cls)) ts_meta_free(&chunk->arena->meta, s->map.ext, TS_SLAB_EXT_BYTES);
  ts_slab_set_purged(s, pages, false);
  ts_slab_set_aged(s, pages, false);
}

unsigned ts_slab_pages_in_use(const ts_span_t *s, uint32_t mask) {
  uint32_t purged = ts_slab_purged(s) & mask, aged = ts_slab_aged(s) & mask;
  if (aged) ts_slab_set_aged(s, aged, false);
  if (purged) ts_slab_set_purged(s, purged, false); /* it faults back in, zeroed */
  return (unsigned)__builtin_popcount(purged);
}

/* Takes up to want of the free objects whose bits are set in pick (a
 * subset of the freemap), lowest first, into out; returns how many. */
static unsigned slab_take_from(ts_chunk_t *chunk, ts_span_t *slab, const uint64_t *pick, void **out, unsigned want) {
  char *base = ts_slab_base(chunk, slab);
  size_t size = ts_class_size[slab->cls];
  uint64_t *map = ts_slab_freemap(slab);
  unsigned n = 0;
  for (unsigned w = 0; w < ts_slab_map_words(slab) && n < want; w++) {
    uint64_t bits = pick[w], taken = 0;
    while (bits && n < want) {
      unsigned i = w * 64 + (unsigned)__builtin_ctzll(bits);
      taken |= bits & -bits;
      bits &= bits - 1;
      out[n++] = base + i * size;
    }
    map[w] &= ~taken;
  }
  slab->nfree = (uint16_t)(slab->nfree - n);
  if (n && (ts_slab_purged(slab) | ts_slab_aged(slab))) {
    uint32_t mask = 0; /* the pages these objects lie on */
    for (unsigned k = 0; k < n; k++) {
      size_t off = (size_t)((char *)out[k] - base);
      unsigned first = (unsigned)(off >> TS_PAGE_SHIFT), last = (unsigned)((off + size - 1) >> TS_PAGE_SHIFT);
      mask |= ((2u << last) - 1) & ~((1u << first) - 1);
    }
    ts_slab_pages_in_use(slab, mask);
  }
  return n;
}

/* Takes up to want free objects, lowest first, into out; returns how many. */
unsigned ts_slab_take(ts_chunk_t *chunk, ts_span_t *slab, void **out, unsigned want) {
  return slab_take_from(chunk, slab, ts_slab_freemap(slab), out, want);
}

/* Takes up to want of the slab's lone free objects: those whose
 * neighbours on both sides are in use (or covered, or past the slab's
 * ends).  A placed object of another class needs a run of free slots
 * (mixed.c), so these are the free slots only the class itself can use. */
unsigned ts_slab_take_lone(ts_chunk_t *chunk, ts_span_t *slab, void **out, unsigned want) {
  uint64_t lone[TS_SLAB_MAP_WORDS];
  const uint64_t *map = ts_slab_freemap(slab);
  unsigned nw = ts_slab_map_words(slab);
  for (unsigned w = 0; w < nw; w++) {
    uint64_t f = map[w];
    uint64_t below = (f << 1) | (w ? map[w - 1] >> 63 : 0);
    uint64_t above = (f >> 1) | (w + 1 < nw ? map[w + 1] << 63 : 0);
    lone[w] = f & ~below & ~above;
  }
  return slab_take_from(chunk, slab, lone, out, want);
}

/* Purges the pages of a multi-page slab on which every object is free;
 * returns the pages purged.  Bytes past the last object (the tail) count
 * as free.  With aged_only (the purger's ticks), only the pages the
 * previous call found free too, with no object taken from them since
 * (the chunk's aged_map); the others found free are aged for the next call.  A page
 * is then purged between one and two ticks after it became free, as free
 * runs are (chunk.c: young_map), not at once. */
size_t ts_slab_purge_free_pages(ts_chunk_t *chunk, ts_span_t *slab, bool aged_only) {
  uint32_t was_aged = ts_slab_aged(slab);
  if (slab->npages < 2 || slab->nfree == 0) {
    if (was_aged) ts_slab_set_aged(slab, was_aged, false);
    return 0;
  }
  char *base = ts_slab_base(chunk, slab);
  const uint64_t *map = ts_slab_freemap(slab);
  unsigned nobjs = ts_slab_nobjs(slab);
  size_t size = ts_class_size[slab->cls], purged = 0;
  uint32_t aged = 0, was_purged = ts_slab_purged(slab), now_purged = 0;
  unsigned run = 0; /* pages to purge that end at pg, purged with one call */
  for (unsigned pg = 0; pg <= slab->npages; pg++) {
    bool take = false;
    if (pg < slab->npages && !(was_purged & (1u << pg))) {
      size_t lo = (size_t)pg << TS_PAGE_SHIFT, hi = lo + TS_PAGE_SIZE;
      unsigned first = (unsigned)(lo / size), last = (unsigned)((hi - 1) / size);
      take = !ts_mixed_page_used(chunk, slab, pg); /* a foreign object may lie in the tail */
      for (unsigned i = first; i <= last && i < nobjs && take; i++)
        take = (map[i >> 6] >> (i & 63)) & 1;
    }
    if (take && aged_only && !(was_aged & (1u << pg))) {
      aged |= 1u << pg;
      take = false;
    }
    if (take) {
      now_purged |= 1u << pg;
      run++;
      continue;
    }
    if (run) ts_os_purge(base + ((size_t)(pg - run) << TS_PAGE_SHIFT), (size_t)run << TS_PAGE_SHIFT);
    purged += run;
    run = 0;
  }
  if (now_purged) ts_slab_set_purged(slab, now_purged, true);
  if (was_aged & ~aged) ts_slab_set_aged(slab, was_aged & ~aged, false);
  if (aged & ~was_aged) ts_slab_set_aged(slab, aged & ~was_aged, true);
  ts_pages_returned += purged;
  atomic_fetch_add_explicit(&ts_pages_returned_total, purged, memory_order_relaxed);
  return purged;
}

/* p may lie in the slab or, for a meshed 1-page slab, in a page meshed
 * into it (mesh.c): the offset in the page names the object. */
int ts_slab_put(ts_chunk_t *chunk, ts_span_t *slab, void *p) {
  char *base = ts_slab_base(chunk, slab);
  unsigned cls = slab->cls;
  size_t off = slab->npages == 1 ? ((uintptr_t)p & TS_PAGE_MASK) : (size_t)((char *)p - base);
  unsigned i = (unsigned)((off * ts_class_div_mul[cls]) >> 32);
  if (TS_UNLIKELY((size_t)i * ts_class_size[cls] != off || i >= ts_slab_nobjs(slab))) return -1;
  uint64_t bit = 1ull << (i & 63), *map = ts_slab_freemap(slab);
  if (TS_UNLIKELY(map[i >> 6] & bit)) return -2;
  if (TS_UNLIKELY(ts_chunk_mixed(chunk, (unsigned)(slab - chunk->spans)) != NULL) && ts_mixed_slot_covered(chunk, slab, i))
    return -1; /* objects of other classes lie there (mixed.c) */
  map[i >> 6] |= bit;
  slab->nfree++;
  slab->room = TS_ROOM_UNKNOWN;
  return (int)i;
}
