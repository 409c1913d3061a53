/* SPDX-License-Identifier: MIT */
/*
 * fakeledger.c: a stand-in for libtessera.so (TESSERA_LIB=libtools_fakeledger.so)
 * that writes fixed snapshots where TESSERA_CONF's stats_file says, so that
 * tools/run can check what `tessera run` makes of things the real library
 * does not write yet or not on demand: tags (seven, of which the summary
 * shows the top five), more size classes than the top five, a line cut
 * short, and fields it does not know.  It replaces no function; its
 * constructor writes, when the program starts, a periodic snapshot, a
 * broken line and a final snapshot (its figures are made up but keep the
 * ledger's identities).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char part_fmt[] =
    "{\"tessera\":\"9.9.9\",\"stats_version\":2,\"pid\":%d,\"time_ms\":%llu,\"final\":%s,\"requested_exact\":true,"
    "\"requested_bytes\":%d,\"rounding_bytes\":1000,\"cached_bytes\":2000,\"slab_free_bytes\":3000,"
    "\"dirty_bytes\":4000,\"metadata_bytes\":5000,\"committed_bytes\":%d,\"allocated_bytes\":%d,"
    "\"large_bytes\":0,\"huge_bytes\":0,\"mapped_bytes\":1048576,\"resident_bytes\":65536,"
    "\"process_rss_bytes\":1048576,\"process_rss_peak_bytes\":1048576,\"returned_bytes\":0,"
    "\"requested_peak_bytes\":90000,\"allocated_peak_bytes\":91000,\"resident_peak_bytes\":65536,"
    "\"frag_ratio\":%.6g,\"frag_shares\":{\"rounding\":0.0667,\"cached\":0.133,\"slab_free\":0.2,\"dirty\":0.267,"
    "\"metadata\":0.333},\"calls\":{\"malloc\":10,\"free\":5,\"calloc\":0,\"realloc\":0,\"aligned\":0,"
    "\"remote_free\":0},\"huge_blocks\":0,\"a_field_from_the_future\":[{\"x\":null}]";

/* size classes: size, slabs (4 KiB each), object slots, live objects */
static const unsigned fake_classes[][4] = {{16, 1, 256, 10},  {32, 7, 896, 800}, {48, 3, 255, 20},  {64, 5, 320, 300},
                                           {80, 2, 102, 1},   {96, 6, 252, 250}, {112, 4, 144, 7}};

static void put_classes(FILE *f) {
  fputs(",\"classes\":[", f);
  for (size_t i = 0; i < sizeof fake_classes / sizeof fake_classes[0]; i++) {
    const unsigned *c = fake_classes[i];
    fprintf(f,
            "%s{\"size\":%u,\"slabs\":%u,\"slab_bytes\":%u,\"objects\":%u,\"used\":%u,\"live\":%u,\"cached\":0,"
            "\"utilisation\":%.4g,\"foreign\":0,\"hosted_bytes\":0}",
            i ? "," : "", c[0], c[1], c[1] * 4096, c[2], c[3], c[3], (double)c[3] * c[0] / (c[1] * 4096));
  }
  fputc(']', f);
}

static const char tail_final[] =
    ",\"arenas\":[{\"index\":0,\"requested_bytes\":60000,\"used_bytes\":61000,\"slab_free_bytes\":3000,"
    "\"dirty_bytes\":4000,\"metadata_bytes\":5000,\"committed_bytes\":73000,\"mapped_bytes\":1048576,"
    "\"resident_bytes\":65536,\"chunks\":1,\"threads\":1}],"
    "\"tags\":["
    "{\"name\":\"small\",\"requested_bytes\":100,\"peak_bytes\":100,\"allocations\":1},"
    "{\"name\":\"sessions\",\"requested_bytes\":50000,\"peak_bytes\":60000,\"allocations\":50},"
    "{\"name\":\"<script>alert(1)</script>\",\"requested_bytes\":40000,\"peak_bytes\":40000,\"allocations\":4},"
    "{\"name\":\"tiny\",\"requested_bytes\":10,\"peak_bytes\":10,\"allocations\":1},"
    "{\"name\":\"caf\\u00e9\",\"requested_bytes\":30000,\"peak_bytes\":35000,\"allocations\":3},"
    "{\"name\":\"index\",\"requested_bytes\":20000,\"peak_bytes\":20000,\"allocations\":2},"
    "{\"name\":\"log\",\"requested_bytes\":10000,\"peak_bytes\":12000,\"allocations\":9}]";

__attribute__((constructor)) static void fake_snapshots(void) {
  const char *conf = getenv("TESSERA_CONF"), *key = conf ? strstr(conf, "stats_file:") : NULL;
  if (!key) return;
  char pattern[4096], path[4200];
  key += strlen("stats_file:");
  size_t n = strcspn(key, ",");
  if (n >= sizeof pattern) return;
  memcpy(pattern, key, n);
  pattern[n] = 0;
  char *p = strstr(pattern, "%p");
  if (!p) return;
  *p = 0;
  snprintf(path, sizeof path, "%s%d%s", pattern, (int)getpid(), p + 2);
  FILE *f = fopen(path, "a");
  if (!f) return;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  unsigned long long ms = (unsigned long long)ts.tv_sec * 1000u + (unsigned long long)ts.tv_nsec / 1000000u;
  /* committed = requested + 15000, allocated = requested + 1000 */
  fprintf(f, part_fmt, (int)getpid(), ms, "false", 50000, 65000, 51000, 65000 / 50000.0);
  put_classes(f);
  fputs("}\n", f);
  fprintf(f, "{\"tessera\":\"9.9.9\",\"stats_version\":2,\"pid\":%d,\"time_ms\":%llu,\"fin\n", (int)getpid(), ms + 1);
  fprintf(f, part_fmt, (int)getpid(), ms + 2, "true", 60000, 75000, 61000, 75000 / 60000.0);
  put_classes(f);
  fprintf(f, "%s}\n", tail_final);
  fclose(f);
}
