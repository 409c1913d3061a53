/* SPDX-License-Identifier: MIT */
/* Unit test of slab.c: take and put, bookkeeping, double free and
 * interior pointers detected, lone free slots taken alone. */
#include "internal.h"
#include "test.h"

#include <string.h>

TS_TEST(take_put_bookkeeping) {
  ts_arena_t *arena = &ts_arenas[0];
  for (unsigned cls = 0; cls < TS_NCLASSES; cls += 7) {
    ts_span_t *s;
    void *base = ts_arena_run_alloc(arena, ts_class_slab_pages[cls], 1, &s);
    assert_true(base != NULL);
    ts_chunk_t *chunk = ts_chunk_of(base);
    unsigned head = (unsigned)(s - chunk->spans);
    ts_slab_init(chunk, head, cls);
    unsigned nobjs = ts_slab_nobjs(s);
    expect_eq(s->nfree, nobjs);
    static void *objs[TS_SLAB_MAX_OBJS + 8];
    unsigned n = ts_slab_take(chunk, s, objs, nobjs + 8);
    expect_eq(n, nobjs);
    expect_eq(s->nfree, 0);
    for (unsigned i = 0; i < n; i++) {
      expect_eq((char *)objs[i] - (char *)base, (size_t)i * ts_class_size[cls]);
      expect_eq(ts_chunk_codes(chunk)[ts_chunk_page_of(objs[i])], cls);
      expect_eq(chunk->page_head[ts_chunk_page_of(objs[i])], head);
    }
    /* put back every other one, then take: lowest first */
    for (unsigned i = 0; i < n; i += 2) expect_eq(ts_slab_put(chunk, s, objs[i]), (int)i);
    expect_eq(s->nfree, (n + 1) / 2);
    expect_eq(ts_slab_put(chunk, s, objs[0]), -2);                /* double free */
    if (ts_class_size[cls] > 16) expect_eq(ts_slab_put(chunk, s, (char *)objs[1] + 16), -1); /* interior */
    void *again;
    expect_eq(ts_slab_take(chunk, s, &again, 1), 1);
    expect_true(again == objs[0]);
    ts_arena_run_free(chunk, head);
  }
}

/* ts_slab_take_lone takes the free slots whose neighbours are both in use
 * (the slab's ends count as in use), across map words, and nothing else. */
TS_TEST(lone_slots_are_taken_alone) {
  unsigned cls = ts_size_to_class_compute(16); /* 256 objects: four map words */
  ts_span_t *s;
  void *base = ts_arena_run_alloc(&ts_arenas[0], ts_class_slab_pages[cls], 1, &s);
  assert_true(base != NULL);
  ts_chunk_t *chunk = ts_chunk_of(base);
  ts_slab_init(chunk, (unsigned)(s - chunk->spans), cls);
  unsigned nobjs = ts_slab_nobjs(s);
  assert_true(nobjs == 256, "class %u has %u objects", cls, nobjs);
  static void *objs[TS_SLAB_MAX_OBJS];
  expect_eq(ts_slab_take(chunk, s, objs, nobjs), nobjs);
  /* free: 0 (an end), 5, 7-8 (a pair), 63 and 64 apart (word edge: 63
   * alone, 64 too), 127-128 (a pair across words), 200, 255 (an end) */
  static const unsigned freed[] = {0, 5, 7, 8, 63, 65, 127, 128, 200, 255};
  static const unsigned lone[] = {0, 5, 63, 65, 200, 255};
  for (unsigned k = 0; k < sizeof freed / sizeof *freed; k++) expect_eq(ts_slab_put(chunk, s, objs[freed[k]]), (int)freed[k]);
  void *got[16];
  unsigned n = ts_slab_take_lone(chunk, s, got, 16);
  expect_eq(n, sizeof lone / sizeof *lone);
  for (unsigned k = 0; k < n; k++) expect_true(got[k] == objs[lone[k]], "lone take %u: %p", k, got[k]);
  expect_eq(s->nfree, 4);
  expect_eq(ts_slab_take_lone(chunk, s, got, 16), 0); /* the pairs stay */
  /* want is honoured */
  expect_eq(ts_slab_put(chunk, s, objs[100]), 100);
  expect_eq(ts_slab_put(chunk, s, objs[102]), 102);
  expect_eq(ts_slab_take_lone(chunk, s, got, 1), 1);
  expect_true(got[0] == objs[100]);
  expect_eq(s->nfree, 5);
  /* what is left comes out with a plain take, lowest first */
  expect_eq(ts_slab_take(chunk, s, got, 16), 5);
  expect_true(got[0] == objs[7] && got[1] == objs[8] && got[2] == objs[102] && got[3] == objs[127] &&
              got[4] == objs[128]);
  expect_eq(s->nfree, 0);
  ts_arena_run_free(chunk, (unsigned)(s - chunk->spans));
}

/* Pages of a multi-page slab on which every object is free are purged;
 * taking an object from such a page marks it in use again. */
TS_TEST(free_pages_inside_a_slab_are_purged) {
  unsigned cls = ts_size_to_class_compute(2560); /* 5 pages, 8 objects */
  assert_true(ts_class_slab_pages[cls] >= 2, "class %u pages %u", cls, ts_class_slab_pages[cls]);
  ts_span_t *s;
  void *base = ts_arena_run_alloc(&ts_arenas[0], ts_class_slab_pages[cls], 1, &s);
  assert_true(base != NULL);
  ts_chunk_t *chunk = ts_chunk_of(base);
  ts_slab_init(chunk, (unsigned)(s - chunk->spans), cls);
  static void *objs[TS_SLAB_MAX_OBJS];
  unsigned n = ts_slab_take(chunk, s, objs, ts_slab_nobjs(s));
  size_t size = ts_class_size[cls];
  for (unsigned i = 0; i < n; i++) memset(objs[i], 0x5A, size);
  /* nothing free: nothing to purge */
  expect_eq(ts_slab_purge_free_pages(chunk, s, false), 0);
  /* free the objects that touch the last page */
  unsigned last_page = s->npages - 1;
  for (unsigned i = 0; i < n; i++) {
    size_t off = (size_t)i * size;
    if ((off + size - 1) >> TS_PAGE_SHIFT >= last_page) expect_true(ts_slab_put(chunk, s, objs[i]) >= 0);
  }
  expect_eq(ts_slab_purge_free_pages(chunk, s, false), 1);
  expect_eq(ts_slab_purged(s), 1u << last_page);
  /* purged memory reads as zero; live objects are untouched */
  expect_eq(((unsigned char *)base)[(size_t)last_page << TS_PAGE_SHIFT], 0);
  expect_eq(((unsigned char *)objs[0])[0], 0x5A);
  /* a second purge finds nothing new */
  expect_eq(ts_slab_purge_free_pages(chunk, s, false), 0);
  /* taking the objects back clears the mark */
  unsigned again = ts_slab_take(chunk, s, objs, s->nfree);
  expect_true(again > 0);
  expect_eq(ts_slab_purged(s), 0);
  ts_arena_run_free(chunk, (unsigned)(s - chunk->spans));
}

/* At the purger's ticks (aged_only) a free page inside a slab is purged
 * only at the second tick that finds it free, with no object taken from
 * it in between: not the moment its last object is freed.  Taking an
 * object from an aged page makes it young again. */
TS_TEST(free_pages_inside_a_slab_age_before_a_tick_purges_them) {
  unsigned cls = ts_size_to_class_compute(2560); /* 5 pages, 8 objects */
  ts_span_t *s;
  void *base = ts_arena_run_alloc(&ts_arenas[0], ts_class_slab_pages[cls], 1, &s);
  assert_true(base != NULL);
  ts_chunk_t *chunk = ts_chunk_of(base);
  ts_slab_init(chunk, (unsigned)(s - chunk->spans), cls);
  static void *objs[TS_SLAB_MAX_OBJS];
  unsigned n = ts_slab_take(chunk, s, objs, ts_slab_nobjs(s));
  size_t size = ts_class_size[cls];
  for (unsigned i = 0; i < n; i++) memset(objs[i], 0x5A, size);
  unsigned last_page = s->npages - 1;
  unsigned freed[TS_SLAB_MAX_OBJS], nfreed = 0;
  for (unsigned i = 0; i < n; i++) {
    size_t off = (size_t)i * size;
    if ((off + size - 1) >> TS_PAGE_SHIFT >= last_page) {
      expect_true(ts_slab_put(chunk, s, objs[i]) >= 0);
      freed[nfreed++] = i;
    }
  }
  /* the first tick ages the page, the second purges it */
  expect_eq(ts_slab_purge_free_pages(chunk, s, true), 0);
  expect_eq(ts_slab_aged(s), 1u << last_page);
  expect_eq(ts_slab_purged(s), 0);
  expect_eq(((unsigned char *)base)[(size_t)last_page << TS_PAGE_SHIFT], 0x5A);
  /* an object taken from it and given back in between: young again */
  void *one;
  expect_eq(ts_slab_take(chunk, s, &one, 1), 1);
  expect_true(one == objs[freed[0]]);
  expect_eq(ts_slab_aged(s), 0);
  expect_true(ts_slab_put(chunk, s, one) >= 0);
  expect_eq(ts_slab_purge_free_pages(chunk, s, true), 0); /* aged again, not purged */
  expect_eq(ts_slab_aged(s), 1u << last_page);
  expect_eq(ts_slab_purge_free_pages(chunk, s, true), 1);
  expect_eq(ts_slab_purged(s), 1u << last_page);
  expect_eq(ts_slab_aged(s), 0);
  expect_eq(((unsigned char *)base)[(size_t)last_page << TS_PAGE_SHIFT], 0);
  ts_arena_run_free(chunk, (unsigned)(s - chunk->spans));
}

/* Page masks in a chunk's per-page bitmaps, for runs that cross a word
 * (purged_map, aged_map): each bit lands on its page, and its neighbours'
 * bits stay as they were. */
TS_TEST(page_masks_across_map_words) {
  uint64_t map[4] = {0, 0, ~0ull, 0};
  ts_pagebits_change(map, 60, 0xFFFF, true); /* pages 60 .. 75 */
  expect_eq(map[0], 0xFull << 60);
  expect_eq(map[1], 0xFFFull);
  expect_eq(ts_pagebits_get(map, 60, 16), 0xFFFF);
  expect_eq(ts_pagebits_get(map, 59, 3), 0x6);
  ts_pagebits_change(map, 62, 0x5, false); /* pages 62 and 64 */
  expect_eq(ts_pagebits_get(map, 60, 16), 0xFFFF & ~0x14u);
  expect_eq(map[0], 0xBull << 60);
  ts_pagebits_change(map, 128, 0x3, false); /* a whole word of others: two bits go */
  expect_eq(map[2], ~0x3ull);
  expect_eq(ts_pagebits_get(map, 120, 16), 0xFC00);
  ts_pagebits_change(map, 0, 0x1, true);
  expect_eq(map[0] & 1, 1);
}

int main(void) {
  ts_init_slow();
  ts_opt.background_thread = false; /* exact bin and arena states: no purger */
  ts_run(take_put_bookkeeping);
  ts_run(page_masks_across_map_words);
  ts_run(lone_slots_are_taken_alone);
  ts_run(free_pages_inside_a_slab_are_purged);
  ts_run(free_pages_inside_a_slab_age_before_a_tick_purges_them);
  return ts_test_done();
}
