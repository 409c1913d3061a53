/* SPDX-License-Identifier: MIT */
/* Unit test of mesh.c: two pages of a chunk made to show one shared page
 * keep every object's contents, writes through either address are seen
 * through both, private copies are independent again, and no write is lost
 * when another thread writes to a page while it is copied and remapped. */
#include "internal.h"
#include "tessera.h"
#include "test.h"

#include <string.h>

enum { OBJ = 64, NOBJ = TS_PAGE_SIZE / OBJ };

static ts_chunk_t *chunk;

static char *page(unsigned k) { return ts_chunk_page_addr(chunk, chunk->first_page + k); }

static void fill(char *pg, unsigned parity, char tag) {
  for (unsigned i = parity; i < NOBJ; i += 2) memset(pg + i * OBJ, tag + (char)(i % 16), OBJ);
}

static bool same(const char *pg, unsigned parity, char tag) {
  for (unsigned i = parity; i < NOBJ; i += 2)
    for (unsigned b = 0; b < OBJ; b++)
      if (pg[i * OBJ + b] != (char)(tag + (char)(i % 16))) return false;
  return true;
}

static void odd_slots(uint64_t *used) {
  used[0] = 0xAAAAAAAAAAAAAAAAull;
  for (unsigned w = 1; w < TS_SLAB_MAP_WORDS; w++) used[w] = 0;
}

TS_TEST(merge_keeps_both_pages_objects) {
  char *a = page(0), *b = page(1);
  fill(a, 0, 'a');
  fill(b, 1, 'B');
  uint32_t f = ts_mesh_share(a);
  assert_true(f != UINT32_MAX, "no shared page");
  expect_true(same(a, 0, 'a'));
  uint64_t used[TS_SLAB_MAP_WORDS];
  odd_slots(used);
  ts_mesh_merge(a, f, b, used, OBJ, NOBJ);
  expect_eq(ts_mesh_shared_pages(), 1);
  /* both addresses show the union */
  expect_true(same(a, 0, 'a') && same(a, 1, 'B'));
  expect_true(same(b, 0, 'a') && same(b, 1, 'B'));
  /* one physical page: a write through b is seen through a */
  b[3 * OBJ] = 'x';
  expect_eq(a[3 * OBJ], 'x');
  b[3 * OBJ] = (char)('B' + 3);
  /* private copies are independent again */
  ts_mesh_privatize(b);
  b[5 * OBJ] = 'y';
  expect_true(a[5 * OBJ] != 'y');
  expect_true(same(b, 0, 'a'));
  ts_mesh_privatize(a);
  ts_mesh_release(f);
  expect_eq(ts_mesh_shared_pages(), 0);
  expect_true(same(a, 0, 'a') && same(a, 1, 'B'));
  ts_mesh_discard(a);
  ts_mesh_discard(b);
  expect_eq(a[0], 0);
  expect_eq(b[OBJ], 0);
}

/* A writer increments counters in the odd objects of page b while the main
 * thread meshes b into a and takes them apart again, over and over; every
 * increment must be there at the end. */
static atomic_bool writer_stop;
static uint64_t writer_done;

static void *writer(void *arg) {
  volatile uint64_t *slot = arg;
  uint64_t n = 0;
  while (!atomic_load_explicit(&writer_stop, memory_order_relaxed)) {
    for (unsigned i = 1; i < NOBJ; i += 2) slot[i * OBJ / 8]++;
    n++;
  }
  writer_done = n;
  return NULL;
}

TS_TEST(no_write_is_lost_while_remapping) {
  char *a = page(2), *b = page(3);
  memset(a, 0, TS_PAGE_SIZE);
  memset(b, 0, TS_PAGE_SIZE);
  fill(a, 0, 'a');
  pthread_t t;
  atomic_store(&writer_stop, false);
  assert_eq(pthread_create(&t, NULL, writer, b), 0);
  uint64_t used[TS_SLAB_MAP_WORDS];
  odd_slots(used);
  int rounds = 0;
  for (; rounds < 300; rounds++) {
    uint32_t f = ts_mesh_share(a);
    assert_true(f != UINT32_MAX);
    ts_mesh_merge(a, f, b, used, OBJ, NOBJ);
    ts_mesh_privatize(b);
    ts_mesh_privatize(a);
    ts_mesh_release(f);
  }
  atomic_store(&writer_stop, true);
  pthread_join(t, NULL);
  const uint64_t *slot = (const uint64_t *)b;
  unsigned wrong = 0;
  for (unsigned i = 1; i < NOBJ; i += 2)
    if (slot[i * OBJ / 8] != writer_done) wrong++;
  printf("  %d rounds, %llu passes of the writer, %u counters off\n", rounds, (unsigned long long)writer_done,
         wrong);
  expect_eq(wrong, 0);
  expect_true(same(a, 0, 'a'), "a's own objects changed");
  expect_eq(ts_mesh_shared_pages(), 0);
}

int main(void) {
  ts_free(ts_malloc(1));
  if (!ts_mesh_usable()) {
    printf("meshing unavailable (memfd_create or sigaction refused)\n");
    return 77;
  }
  chunk = ts_chunk_new(&ts_arenas[0]);
  if (!chunk) return 1;
  ts_run(merge_keeps_both_pages_objects);
  ts_run(no_write_is_lost_while_remapping);
  return ts_test_done();
}
