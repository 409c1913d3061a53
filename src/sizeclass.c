/* SPDX-License-Identifier: MIT */
/*
 * sizeclass.c: the size-class table and each class's slab geometry.
 *
 * Classes: 16, 32, ..., 256 (16-byte steps), then for each doubling
 * (2^k, 2^(k+1)], k = 8..14, sixteen classes 2^k + i * 2^(k-4), i = 1..16,
 * ending at 32 KiB: 128 classes.  ts_size_to_class_compute() (internal.h)
 * computes the class from the size with one count-leading-zeros;
 * ts_size_to_class() looks every small size up in ts_class_lookup (2 KiB),
 * built from it here; the table below is the inverse.  Worst-case waste: a
 * request of 2^k + 1 bytes gets a class 2^(k-4) larger, less than 1/16 of
 * the request above 256 bytes; from 129 to 256 bytes the 16-byte steps
 * waste less than 1/8, at or below 128 bytes at most 15 bytes.
 * test/unit/sizeclass.c checks these by brute force.  Sixteen classes per
 * doubling instead of eight: rounding is most of the overhead of a heap of
 * fresh objects (two waves, after the waves: RSS/live 1.08 against glibc's
 * 1.02), and halving it costs 56 more bins per arena and cache.
 *
 * Slab geometry: a class's slab is the smallest run of 1..16 pages whose
 * tail (the bytes no whole object fits in) is at most 1/64 of the run;
 * failing that, the run with the smallest tail.  Objects in a slab sit at
 * base + i * size, and the index of a pointer is computed with a multiply
 * by ceil(2^32 / size) and a shift, exact for offsets below 2^32 / size,
 * which holds since slabs are at most 64 KiB and sizes at most 32 KiB.
 */
#include "internal.h"

#define TS_CLASS_ROW(k)                                                                          \
  (1u << (k)) + 1 * (1u << ((k)-4)), (1u << (k)) + 2 * (1u << ((k)-4)),                           \
      (1u << (k)) + 3 * (1u << ((k)-4)), (1u << (k)) + 4 * (1u << ((k)-4)),                       \
      (1u << (k)) + 5 * (1u << ((k)-4)), (1u << (k)) + 6 * (1u << ((k)-4)),                       \
      (1u << (k)) + 7 * (1u << ((k)-4)), (1u << (k)) + 8 * (1u << ((k)-4)),                       \
      (1u << (k)) + 9 * (1u << ((k)-4)), (1u << (k)) + 10 * (1u << ((k)-4)),                      \
      (1u << (k)) + 11 * (1u << ((k)-4)), (1u << (k)) + 12 * (1u << ((k)-4)),                     \
      (1u << (k)) + 13 * (1u << ((k)-4)), (1u << (k)) + 14 * (1u << ((k)-4)),                     \
      (1u << (k)) + 15 * (1u << ((k)-4)), (1u << (k)) + 16 * (1u << ((k)-4))

const uint32_t ts_class_size[TS_NCLASSES] = {
    16,  32,  48,  64,  80,  96,  112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
    TS_CLASS_ROW(8),  TS_CLASS_ROW(9),  TS_CLASS_ROW(10), TS_CLASS_ROW(11),
    TS_CLASS_ROW(12), TS_CLASS_ROW(13), TS_CLASS_ROW(14),
};

uint8_t ts_class_lookup[(TS_CLASS_LOOKUP_MAX >> 4) + 1];
uint16_t ts_class_slab_pages[TS_NCLASSES];
uint16_t ts_class_slab_objs[TS_NCLASSES];
uint32_t ts_class_div_mul[TS_NCLASSES];

/* Largest tail a slab may leave, as a fraction of the slab: 1/64. */
#define TS_SLAB_TAIL_SHIFT 6

void ts_sizeclass_init(void) {
  for (size_t g = 0; g <= (TS_CLASS_LOOKUP_MAX >> 4); g++) ts_class_lookup[g] = (uint8_t)ts_size_to_class_compute(g << 4);
  for (unsigned c = 0; c < TS_NCLASSES; c++) {
    size_t size = ts_class_size[c];
    unsigned best_pages = 0;
    size_t best_tail = (size_t)-1;
    for (unsigned pages = 1; pages <= TS_SLAB_MAX_PAGES; pages++) {
      size_t bytes = (size_t)pages << TS_PAGE_SHIFT;
      size_t objs = bytes / size;
      if (objs == 0 || objs > TS_SLAB_MAX_OBJS) continue;
      size_t tail = bytes % size;
      if (tail <= (bytes >> TS_SLAB_TAIL_SHIFT)) {
        best_pages = pages;
        break;
      }
      /* compare tails as fractions: tail/bytes < best_tail/best_bytes */
      if (best_pages == 0 ||
          tail * ((size_t)best_pages << TS_PAGE_SHIFT) < best_tail * bytes) {
        best_pages = pages;
        best_tail = tail;
      }
    }
    ts_class_slab_pages[c] = (uint16_t)best_pages;
    ts_class_slab_objs[c] = (uint16_t)(((size_t)best_pages << TS_PAGE_SHIFT) / size);
    ts_class_div_mul[c] = (uint32_t)(((1ull << 32) + size - 1) / size);
  }
}
