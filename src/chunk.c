/* SPDX-License-Identifier: MIT */
/*
 * chunk.c: the chunk map and the page runs inside a chunk.
 *
 * The chunk map has one byte per 4 MiB window of the address space saying
 * whether the window is a tessera chunk, the start of a huge mapping, or
 * not ours (types.h: ts_window_kind_e).  free() reads it first, so a
 * pointer from elsewhere is caught by the lookup it needs anyway.  Entries
 * change only when a chunk or huge mapping is created or destroyed, by the
 * thread that owns the window.
 *
 * Inside a chunk, free pages are the set bits of free_map (run.c indexes
 * them as free runs).  dirty_map marks the free pages that may still be
 * resident (freed and not yet purged), young_map those freed since the
 * purger's last tick (purge.c); dirty and young are subsets of free, and
 * a page going into use leaves all three.  The caller holds the owning arena's lock for
 * everything but ts_window_*.
 */
#include "internal.h"

#include <string.h>

_Atomic uint8_t ts_chunk_map[TS_MAP_ENTRIES];
uint64_t ts_secret;

void ts_window_set(uintptr_t addr, unsigned kind) {
  atomic_store_explicit(&ts_chunk_map[addr >> TS_CHUNK_SHIFT], (uint8_t)kind, memory_order_release);
}

/* Sets or clears bits [start, start + n) of a page bitmap, a word at a time. */
static void chunk_bits_set(uint64_t *map, unsigned start, unsigned n) {
  while (n) {
    unsigned bit = start & 63, take = 64 - bit < n ? 64 - bit : n;
    uint64_t mask = (take == 64 ? ~0ull : ((1ull << take) - 1)) << bit;
    map[start >> 6] |= mask;
    start += take, n -= take;
  }
}

/* Clears bits [start, start + n); returns how many were set. */
static unsigned chunk_bits_clear(uint64_t *map, unsigned start, unsigned n) {
  unsigned was_set = 0;
  while (n) {
    unsigned bit = start & 63, take = 64 - bit < n ? 64 - bit : n;
    uint64_t mask = (take == 64 ? ~0ull : ((1ull << take) - 1)) << bit;
    was_set += (unsigned)__builtin_popcountll(map[start >> 6] & mask);
    map[start >> 6] &= ~mask;
    start += take, n -= take;
  }
  return was_set;
}

/* Pages the chunk header occupies. */
#define TS_CHUNK_HEADER_PAGES ((sizeof(ts_chunk_t) + TS_PAGE_SIZE - 1) >> TS_PAGE_SHIFT)

ts_chunk_t *ts_chunk_new(ts_arena_t *arena) {
  ts_chunk_t *c = ts_os_map_aligned(TS_CHUNK_SIZE, TS_CHUNK_SIZE, 0);
  if (!c) return NULL;
  /* Fresh mappings are zero: set only what is not. */
  c->cookie = TS_CHUNK_MAGIC ^ ts_secret;
  c->arena = arena;
  c->first_page = (uint32_t)TS_CHUNK_HEADER_PAGES;
  memset(c->page_code_area, TS_PAGE_NOBLOCK, sizeof c->page_code_area);
  memset(ts_chunk_codes(c), TS_PAGE_META, TS_CHUNK_HEADER_PAGES);
  chunk_bits_set(c->free_map, c->first_page, TS_CHUNK_PAGES - c->first_page);
  c->free_pages = (uint32_t)(TS_CHUNK_PAGES - c->first_page);
  ts_window_set((uintptr_t)c, TS_WINDOW_CHUNK);
  return c;
}

__thread size_t ts_pages_returned;
_Atomic uint64_t ts_pages_returned_total;

void ts_chunk_delete(ts_chunk_t *chunk) {
  chunk->arena->dirty_pages -= chunk->dirty_pages;
  ts_pages_returned += chunk->dirty_pages + chunk->first_page;
  atomic_fetch_add_explicit(&ts_pages_returned_total, chunk->dirty_pages + chunk->first_page, memory_order_relaxed);
  ts_window_set((uintptr_t)chunk, TS_WINDOW_NONE);
  chunk->cookie = 0;
  ts_os_unmap(chunk, TS_CHUNK_SIZE);
}

bool ts_chunk_is_empty(const ts_chunk_t *chunk) {
  return chunk->free_pages == TS_CHUNK_PAGES - chunk->first_page;
}

/* Pages going into use stop being dirty (they are active now). */
void ts_chunk_mark_used(ts_chunk_t *chunk, unsigned head, unsigned npages) {
  chunk_bits_clear(chunk->free_map, head, npages);
  unsigned dirty = chunk_bits_clear(chunk->dirty_map, head, npages);
  chunk_bits_clear(chunk->young_map, head, npages);
  chunk->free_pages -= npages;
  chunk->dirty_pages -= dirty;
  chunk->arena->dirty_pages -= dirty;
  chunk->arena->active_pages += npages;
}

/* Freed pages are dirty and young: resident until purged, and freed since
 * the purger's last tick; except page head + i for each bit i set in
 * purged (bit i % 64 of word i / 64; NULL: none), which was purged while
 * in use (a slab's bits in the chunk's purged_map, a medium region's purged mask) and is
 * free but not resident. */
void ts_chunk_mark_free(ts_chunk_t *chunk, unsigned head, unsigned npages, const uint64_t *purged) {
  chunk_bits_set(chunk->free_map, head, npages);
  chunk_bits_set(chunk->dirty_map, head, npages);
  chunk_bits_set(chunk->young_map, head, npages);
  unsigned clean = 0;
  for (unsigned i = 0; purged && (i = ts_bits_next(purged, i, npages, true)) < npages; i++) {
    clean += chunk_bits_clear(chunk->dirty_map, head + i, 1);
    chunk_bits_clear(chunk->young_map, head + i, 1);
  }
  memset(ts_chunk_codes(chunk) + head, TS_PAGE_NOBLOCK, npages);
  chunk->free_pages += npages;
  chunk->dirty_pages += npages - clean;
  chunk->arena->dirty_pages += npages - clean;
  chunk->arena->active_pages -= npages;
}

/* Returns the dirty pages of the chunk selected by which to the kernel, a
 * maximal range per madvise call, counting them in ts_pages_returned.
 * Only ranges of at least min_run pages are purged, lowest first, until
 * at least max_pages pages are (a range is purged whole); returns the
 * pages purged. */
size_t ts_chunk_purge(ts_chunk_t *chunk, enum ts_purge_which_e which, unsigned min_run, size_t max_pages) {
  unsigned p = chunk->first_page;
  size_t purged = 0;
  while (p < TS_CHUNK_PAGES && purged < max_pages) {
    uint64_t w = chunk->dirty_map[p >> 6];
    if (which == TS_PURGE_OLD) w &= ~chunk->young_map[p >> 6];
    w &= ~0ull << (p & 63);
    if (!w) {
      p = (p & ~63u) + 64;
      continue;
    }
    unsigned start = (p & ~63u) + (unsigned)__builtin_ctzll(w);
    unsigned end = start;
    while (end < TS_CHUNK_PAGES) {
      uint64_t bit = 1ull << (end & 63);
      uint64_t dw = chunk->dirty_map[end >> 6];
      if (which == TS_PURGE_OLD) dw &= ~chunk->young_map[end >> 6];
      if (!(dw & bit)) break;
      end++;
    }
    if (end - start < min_run) {
      p = end;
      continue;
    }
    ts_os_purge(ts_chunk_page_addr(chunk, start), (size_t)(end - start) << TS_PAGE_SHIFT);
    unsigned n = chunk_bits_clear(chunk->dirty_map, start, end - start);
    chunk_bits_clear(chunk->young_map, start, end - start);
    chunk->dirty_pages -= n;
    chunk->arena->dirty_pages -= n;
    ts_pages_returned += n;
    atomic_fetch_add_explicit(&ts_pages_returned_total, n, memory_order_relaxed);
    ts_run_recheck(chunk->arena, chunk, start); /* the run holding them may be clean now */
    purged += n;
    p = end;
  }
  return purged;
}

/* The purger's tick: what was young is old now. */
void ts_chunk_age(ts_chunk_t *chunk) { memset(chunk->young_map, 0, sizeof chunk->young_map); }
