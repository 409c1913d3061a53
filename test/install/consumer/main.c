/* SPDX-License-Identifier: MIT */
/*
 * consumer/main.c: a program built against an installed tessera, the way a
 * user would build one.  It uses the ts_ API, and (unless TS_STATIC_ONLY,
 * for the static library, which exports only ts_ names) the malloc that
 * libtessera.so exports.  Prints "ok" when everything worked.
 */
#include <tessera.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef TS_STATIC_ONLY
#include <malloc.h>
#endif

int main(void) {
  if (strcmp(ts_version(), TESSERA_VERSION) != 0) {
    fprintf(stderr, "header says %s, library says %s\n", TESSERA_VERSION, ts_version());
    return 1;
  }
  char *p = ts_malloc(100);
  if (!p || (uintptr_t)p % TS_MIN_ALIGN) return 2;
  memset(p, 'x', 100);
  if (ts_malloc_usable_size(p) < 100) return 3;
  p = ts_realloc(p, 100000);
  if (!p || p[99] != 'x') return 4;
  ts_free(p);
  void *a = ts_aligned_alloc(4096, 10);
  if (!a || (uintptr_t)a % 4096) return 5;
  ts_free(a);
#ifndef TS_STATIC_ONLY
  /* The shared library's malloc is tessera's: both sides see one heap. */
  char *q = malloc(1000);
  if (!q) return 6;
  memset(q, 'y', 1000);
  if (ts_malloc_usable_size(q) < 1000 || malloc_usable_size(q) != ts_malloc_usable_size(q)) return 7;
  ts_free(q);
  q = ts_malloc(50);
  if (!q) return 8;
  free(q);
#endif
  printf("ok %s\n", ts_version());
  return 0;
}
