/* SPDX-License-Identifier: MIT */
/* Unit test of slab.c: take and put, bookkeeping, double free and
 * interior pointers detected. */
#include "internal.h"
#include "test.h"

TS_TEST(take_put_bookkeeping) {
  ts_arena_t *arena = &ts_arenas[0];
  for (unsigned cls = 0; cls < TS_NCLASSES; cls += 7) {
    ts_span_t *s;
    void *base = ts_arena_run_alloc(arena, ts_class_slab_pages[cls], 1, &s);
    assert_true(base != NULL);
    ts_chunk_t *chunk = ts_chunk_of(base);
    unsigned head = (unsigned)(s - chunk->spans);
    ts_slab_init(chunk, head, cls);
    unsigned nobjs = s->nobjs;
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

int main(void) {
  ts_init_slow();
  ts_run(take_put_bookkeeping);
  return ts_test_done();
}
