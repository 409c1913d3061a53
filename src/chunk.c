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
 * Inside a chunk, free pages are the set bits of free_map; a run is any
 * sequence of used pages starting at a head page.  Splitting and merging
 * runs is implicit: freeing clears a run's pages back into the bitmap,
 * where they join their free neighbours, and the next search sees one
 * larger gap.  Searches are address-ordered first fit (lowest page index
 * first), which packs runs toward the chunk's start so that its top empties.
 * The caller holds the owning arena's lock for everything but ts_window_*.
 */
#include "internal.h"

#include <string.h>

_Atomic uint8_t ts_chunk_map[TS_MAP_ENTRIES];
uint64_t ts_secret;

void ts_window_set(uintptr_t addr, unsigned kind) {
  atomic_store_explicit(&ts_chunk_map[addr >> TS_CHUNK_SHIFT], (uint8_t)kind, memory_order_release);
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
  memset(c->page_cls, TS_PAGE_FREE, sizeof c->page_cls);
  memset(c->page_cls, TS_PAGE_META, TS_CHUNK_HEADER_PAGES);
  for (unsigned p = c->first_page; p < TS_CHUNK_PAGES; p++) c->free_map[p >> 6] |= 1ull << (p & 63);
  c->free_pages = (uint32_t)(TS_CHUNK_PAGES - c->first_page);
  ts_window_set((uintptr_t)c, TS_WINDOW_CHUNK);
  return c;
}

void ts_chunk_delete(ts_chunk_t *chunk) {
  ts_window_set((uintptr_t)chunk, TS_WINDOW_NONE);
  chunk->cookie = 0;
  ts_os_unmap(chunk, TS_CHUNK_SIZE);
}

bool ts_chunk_is_empty(const ts_chunk_t *chunk) {
  return chunk->free_pages == TS_CHUNK_PAGES - chunk->first_page;
}

/* Index of the first page >= from whose bit equals want, or TS_CHUNK_PAGES. */
static unsigned chunk_scan(const uint64_t *map, unsigned from, bool want) {
  while (from < TS_CHUNK_PAGES) {
    uint64_t w = map[from >> 6];
    if (!want) w = ~w;
    w &= ~0ull << (from & 63);
    if (w) return (from & ~63u) + (unsigned)__builtin_ctzll(w);
    from = (from & ~63u) + 64;
  }
  return TS_CHUNK_PAGES;
}

unsigned ts_chunk_find_run(const ts_chunk_t *chunk, unsigned npages, unsigned align_pages) {
  if (chunk->free_pages < npages) return 0;
  unsigned p = chunk->first_page;
  while (p < TS_CHUNK_PAGES) {
    unsigned start = chunk_scan(chunk->free_map, p, true);
    if (start >= TS_CHUNK_PAGES) return 0;
    unsigned end = chunk_scan(chunk->free_map, start, false);
    if (align_pages > 1) start = (start + align_pages - 1) & ~(align_pages - 1);
    if (start < end && end - start >= npages) return start;
    p = end;
  }
  return 0;
}

/* Free pages from page onward, at most limit of them. */
unsigned ts_chunk_free_after(const ts_chunk_t *chunk, unsigned page, unsigned limit) {
  if (page >= TS_CHUNK_PAGES) return 0;
  unsigned end = chunk_scan(chunk->free_map, page, false);
  unsigned n = end - page;
  return n < limit ? n : limit;
}

void ts_chunk_mark_used(ts_chunk_t *chunk, unsigned head, unsigned npages) {
  for (unsigned p = head; p < head + npages; p++) {
    chunk->free_map[p >> 6] &= ~(1ull << (p & 63));
    chunk->page_head[p] = (uint16_t)head;
  }
  chunk->free_pages -= npages;
}

void ts_chunk_mark_free(ts_chunk_t *chunk, unsigned head, unsigned npages) {
  for (unsigned p = head; p < head + npages; p++) {
    chunk->free_map[p >> 6] |= 1ull << (p & 63);
    chunk->page_cls[p] = TS_PAGE_FREE;
  }
  chunk->free_pages += npages;
}
