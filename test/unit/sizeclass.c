/* SPDX-License-Identifier: MIT */
/* Unit test of sizeclass.c: the class table, size -> class, worst-case
 * waste computed by brute force over every size, and slab geometry. */
#include "internal.h"
#include "test.h"

TS_TEST(classes_are_increasing_multiples_of_16) {
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    expect_eq(ts_class_size[c] % 16, 0);
    if (c) expect_true(ts_class_size[c] > ts_class_size[c - 1], "class %u", c);
  }
  expect_eq(ts_class_size[TS_NCLASSES - 1], TS_SMALL_MAX);
}

TS_TEST(size_to_class_is_the_smallest_fit) {
  ts_sizeclass_init();
  for (size_t s = 0; s <= TS_SMALL_MAX; s++) {
    unsigned c = ts_size_to_class(s);
    assert_eq(c, ts_size_to_class_compute(s));
    assert_true(c < TS_NCLASSES, "size %zu", s);
    assert_true(ts_class_size[c] >= s, "size %zu class %u", s, c);
    if (c) assert_true(ts_class_size[c - 1] < s || s == 0, "size %zu not smallest (class %u)", s, c);
  }
}

/* Worst-case internal waste, (class - size) / size, over every size. */
TS_TEST(worst_case_waste_is_bounded) {
  double worst_above_128 = 0, worst_bytes_below = 0;
  for (size_t s = 1; s <= TS_SMALL_MAX; s++) {
    size_t got = ts_class_size[ts_size_to_class(s)];
    double w = (double)(got - s) / (double)s;
    if (s > 128 && w > worst_above_128) worst_above_128 = w;
    if (s <= 128 && (double)(got - s) > worst_bytes_below) worst_bytes_below = (double)(got - s);
  }
  /* Large runs round to pages: above 32 KiB a page is at most 1/8. */
  for (size_t s = TS_SMALL_MAX + 1; s <= TS_LARGE_MAX; s += 7) {
    size_t got = (s + TS_PAGE_MASK) & ~TS_PAGE_MASK;
    double w = (double)(got - s) / (double)s;
    if (w > worst_above_128) worst_above_128 = w;
  }
  printf("  worst waste above 128 B: %.4f; at or below 128 B: %.0f bytes\n", worst_above_128, worst_bytes_below);
  expect_true(worst_above_128 <= 0.125, "%f", worst_above_128);
  expect_true(worst_bytes_below <= 15, "%f", worst_bytes_below);
}

TS_TEST(slab_geometry) {
  ts_sizeclass_init();
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    size_t bytes = (size_t)ts_class_slab_pages[c] << TS_PAGE_SHIFT;
    expect_true(ts_class_slab_pages[c] >= 1 && ts_class_slab_pages[c] <= TS_SLAB_MAX_PAGES, "class %u", c);
    expect_eq(ts_class_slab_objs[c], bytes / ts_class_size[c]);
    expect_true(ts_class_slab_objs[c] >= 1 && ts_class_slab_objs[c] <= TS_SLAB_MAX_OBJS, "class %u", c);
    /* tail waste at most 1/64 of the slab, or the best 1..16 pages allow */
    size_t tail = bytes % ts_class_size[c];
    if (tail > bytes / 64) {
      for (unsigned p = 1; p <= TS_SLAB_MAX_PAGES; p++) {
        size_t b = (size_t)p << TS_PAGE_SHIFT;
        expect_true((double)(b % ts_class_size[c]) / b >= (double)tail / bytes - 1e-12, "class %u pages %u", c, p);
      }
    }
    /* the index multiply is exact for every object start and interior offset */
    for (size_t off = 0; off < bytes; off++) {
      unsigned i = (unsigned)((off * ts_class_div_mul[c]) >> 32);
      if (i != off / ts_class_size[c]) {
        expect_true(0, "class %u offset %zu: %u", c, off, i);
        break;
      }
    }
  }
}

int main(void) {
  ts_run(classes_are_increasing_multiples_of_16);
  ts_run(size_to_class_is_the_smallest_fit);
  ts_run(worst_case_waste_is_bounded);
  ts_run(slab_geometry);
  return ts_test_done();
}
