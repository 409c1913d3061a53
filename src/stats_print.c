/* SPDX-License-Identifier: MIT */
/*
 * stats_print.c: the ledger as text for people and as JSON for programs
 * (field names in docs/STATS.md, stable within a TS_STATS_VERSION), the
 * snapshot printed at exit (option stats_print) and the periodic snapshots
 * appended to a file (stats_interval_ms, stats_file) by a thread of ours.
 *
 * Formatting goes into a static buffer under print_lock with snprintf,
 * which allocates nothing for these formats; the bytes then go out with
 * one fwrite (ts_stats_print) or write (the exit and periodic snapshots,
 * which use no stdio at all).
 */
#include "internal.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <tessera.h>
#include <time.h>
#include <unistd.h>

#define TS_PRINT_BUF_BYTES ((size_t)96 << 10)

static pthread_mutex_t print_lock = PTHREAD_MUTEX_INITIALIZER;
static char print_buf[TS_PRINT_BUF_BYTES]; /* print_lock */
static ts_stats_t print_stats;              /* print_lock */
static ts_tag_stats_t print_tags[TS_TAGS_MAX]; /* print_lock */
static unsigned print_ntags;                /* print_lock; 0 without option tags */

typedef struct out_s {
  char *buf;
  size_t len, cap;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...) {
  if (o->len >= o->cap) return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
  va_end(ap);
  if (n > 0) o->len = o->len + (size_t)n < o->cap ? o->len + (size_t)n : o->cap;
}

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }
static unsigned long long ull(uint64_t v) { return (unsigned long long)v; }

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- text ---- */

static void text_row(out_t *o, const char *name, uint64_t bytes, uint64_t committed, const char *what) {
  put(o, "  %-12s %16llu %11.1f %6.1f%%  %s\n", name, ull(bytes), mib(bytes),
      committed ? 100.0 * (double)bytes / (double)committed : 0.0, what);
}

static void format_text(out_t *o, const ts_stats_t *s, int flags) {
  put(o, "tessera %s memory ledger, pid %d%s\n", TESSERA_VERSION, (int)getpid(),
      s->requested_exact ? "" : " (small and medium blocks' requests counted at their block size: TESSERA_CONF=stats_exact:true for exact)");
  put(o, "  %-12s %16s %11s %7s\n", "part", "bytes", "MiB", "share");
  text_row(o, "requested", s->requested_bytes, s->committed_bytes, "asked for by callers and still held");
  text_row(o, "rounding", s->rounding_bytes, s->committed_bytes, "size classes and page rounding (internal)");
  text_row(o, "cached", s->cached_bytes, s->committed_bytes, "in thread caches");
  text_row(o, "slab_free", s->slab_free_bytes, s->committed_bytes, "unused slots of slabs and medium regions (external)");
  text_row(o, "dirty", s->dirty_bytes, s->committed_bytes, "free pages not yet returned to the OS");
  text_row(o, "metadata", s->metadata_bytes, s->committed_bytes, "tessera's own structures");
  text_row(o, "committed", s->committed_bytes, s->committed_bytes, "the sum");
  put(o, "  allocated %.1f MiB (medium %.1f, large %.1f, huge %.1f); mapped %.1f MiB; resident %.1f MiB (mincore); "
         "returned to the OS %.1f MiB since start\n",
      mib(s->allocated_bytes), mib(s->medium_bytes), mib(s->large_bytes), mib(s->huge_bytes), mib(s->mapped_bytes),
      mib(s->resident_bytes), mib(s->returned_bytes));
  put(o, "  process RSS %.1f MiB (peak %.1f); peaks seen: requested %.1f MiB, allocated %.1f MiB, resident %.1f MiB\n",
      mib(s->process_rss_bytes), mib(s->process_rss_peak_bytes), mib(s->requested_peak_bytes),
      mib(s->allocated_peak_bytes), mib(s->resident_peak_bytes));
  put(o, "  fragmentation: committed/requested %.3f; of the rest: rounding %.1f%%, cached %.1f%%, slab_free %.1f%%, "
         "dirty %.1f%%, metadata %.1f%%\n",
      s->frag_ratio, 100 * s->rounding_share, 100 * s->cached_share, 100 * s->slab_free_share, 100 * s->dirty_share,
      100 * s->metadata_share);
  put(o, "  calls: %llu blocks allocated, %llu freed (%llu remote), %llu calloc, %llu realloc, %llu aligned; %llu huge live\n",
      ull(s->nmalloc), ull(s->nfree), ull(s->nremote_free), ull(s->ncalloc), ull(s->nrealloc), ull(s->naligned),
      ull(s->nhuge));
  if (!(flags & TS_STATS_NO_CLASSES)) {
    put(o, "size classes in use:\n  %6s %6s %10s %10s %10s %10s %10s %10s %8s\n", "size", "slabs", "slab KiB",
        "objects", "live", "cached", "foreign", "hosted KiB", "util");
    for (unsigned c = 0; c < TS_STATS_CLASSES; c++) {
      const ts_stats_class_t *k = &s->classes[c];
      if (!k->slabs && !k->used) continue;
      put(o, "  %6llu %6llu %10llu %10llu %10llu %10llu %10llu %10llu %7.1f%%\n", ull(k->size), ull(k->slabs),
          ull(k->slab_bytes >> 10), ull(k->objects), ull(k->live), ull(k->cached), ull(k->foreign),
          ull(k->hosted_bytes >> 10), 100 * k->utilisation);
    }
  }
  if (print_ntags) {
    put(o, "tags:\n  %-24s %14s %14s %12s\n", "tag", "requested", "peak", "allocations");
    for (unsigned t = 0; t < print_ntags; t++)
      put(o, "  %-24s %14llu %14llu %12llu\n", print_tags[t].name, ull(print_tags[t].requested_bytes),
          ull(print_tags[t].peak_bytes), ull(print_tags[t].allocations));
  }
  if (!(flags & TS_STATS_NO_ARENAS)) {
    put(o, "arenas (MiB):\n  %5s %10s %10s %10s %10s %10s %10s %10s %10s %6s %7s\n", "arena", "requested", "used",
        "slab_free", "dirty", "metadata", "committed", "mapped", "resident", "chunks", "threads");
    for (unsigned i = 0; i < s->narenas; i++) {
      const ts_stats_arena_t *a = &s->arenas[i];
      put(o, "  %5u %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %6llu %7llu\n", i, mib(a->requested_bytes),
          mib(a->used_bytes), mib(a->slab_free_bytes), mib(a->dirty_bytes), mib(a->metadata_bytes),
          mib(a->committed_bytes), mib(a->mapped_bytes), mib(a->resident_bytes), ull(a->chunks), ull(a->threads));
    }
  }
}

/* ---- JSON: one object on one line ---- */

#define J_U64(name, v) put(o, ",\"" name "\":%llu", ull(v))
#define J_DBL(name, v) put(o, ",\"" name "\":%.6g", (double)(v))

static void format_json(out_t *o, const ts_stats_t *s, int flags, bool final) {
  put(o, "{\"tessera\":\"%s\",\"stats_version\":%u,\"pid\":%d,\"time_ms\":%llu,\"final\":%s,\"requested_exact\":%s",
      TESSERA_VERSION, s->version, (int)getpid(), ull(now_ms()), final ? "true" : "false",
      s->requested_exact ? "true" : "false");
  J_U64("requested_bytes", s->requested_bytes);
  J_U64("rounding_bytes", s->rounding_bytes);
  J_U64("cached_bytes", s->cached_bytes);
  J_U64("slab_free_bytes", s->slab_free_bytes);
  J_U64("dirty_bytes", s->dirty_bytes);
  J_U64("metadata_bytes", s->metadata_bytes);
  J_U64("committed_bytes", s->committed_bytes);
  J_U64("allocated_bytes", s->allocated_bytes);
  J_U64("medium_bytes", s->medium_bytes);
  J_U64("large_bytes", s->large_bytes);
  J_U64("huge_bytes", s->huge_bytes);
  J_U64("mapped_bytes", s->mapped_bytes);
  J_U64("resident_bytes", s->resident_bytes);
  J_U64("process_rss_bytes", s->process_rss_bytes);
  J_U64("process_rss_peak_bytes", s->process_rss_peak_bytes);
  J_U64("returned_bytes", s->returned_bytes);
  J_U64("requested_peak_bytes", s->requested_peak_bytes);
  J_U64("allocated_peak_bytes", s->allocated_peak_bytes);
  J_U64("resident_peak_bytes", s->resident_peak_bytes);
  J_DBL("frag_ratio", s->frag_ratio);
  put(o, ",\"frag_shares\":{\"rounding\":%.6g,\"cached\":%.6g,\"slab_free\":%.6g,\"dirty\":%.6g,\"metadata\":%.6g}",
      s->rounding_share, s->cached_share, s->slab_free_share, s->dirty_share, s->metadata_share);
  put(o, ",\"calls\":{\"malloc\":%llu,\"free\":%llu,\"calloc\":%llu,\"realloc\":%llu,\"aligned\":%llu,\"remote_free\":%llu}",
      ull(s->nmalloc), ull(s->nfree), ull(s->ncalloc), ull(s->nrealloc), ull(s->naligned), ull(s->nremote_free));
  J_U64("huge_blocks", s->nhuge);
  put(o, ",\"tags_enabled\":%s", print_ntags ? "true" : "false");
  if (print_ntags) {
    put(o, ",\"tags\":[");
    for (unsigned t = 0; t < print_ntags; t++) {
      put(o, "%s{\"name\":\"", t ? "," : "");
      for (const char *c = print_tags[t].name; *c; c++) {
        if (*c == '"' || *c == '\\') put(o, "\\%c", *c);
        else if ((unsigned char)*c < 0x20) put(o, "\\u%04x", (unsigned)(unsigned char)*c);
        else put(o, "%c", *c);
      }
      put(o, "\",\"tag\":%u,\"requested_bytes\":%llu,\"peak_bytes\":%llu,\"allocations\":%llu}", t,
          ull(print_tags[t].requested_bytes), ull(print_tags[t].peak_bytes), ull(print_tags[t].allocations));
    }
    put(o, "]");
  }
  if (!(flags & TS_STATS_NO_CLASSES)) {
    put(o, ",\"classes\":[");
    bool first = true;
    for (unsigned c = 0; c < TS_STATS_CLASSES; c++) {
      const ts_stats_class_t *k = &s->classes[c];
      if (!k->slabs && !k->used) continue;
      put(o, "%s{\"size\":%llu,\"slabs\":%llu,\"slab_bytes\":%llu,\"objects\":%llu,\"used\":%llu,\"live\":%llu,"
             "\"cached\":%llu,\"utilisation\":%.6g,\"foreign\":%llu,\"hosted_bytes\":%llu}",
          first ? "" : ",", ull(k->size), ull(k->slabs), ull(k->slab_bytes), ull(k->objects), ull(k->used),
          ull(k->live), ull(k->cached), k->utilisation, ull(k->foreign), ull(k->hosted_bytes));
      first = false;
    }
    put(o, "]");
  }
  if (!(flags & TS_STATS_NO_ARENAS)) {
    put(o, ",\"arenas\":[");
    for (unsigned i = 0; i < s->narenas; i++) {
      const ts_stats_arena_t *a = &s->arenas[i];
      put(o, "%s{\"index\":%u,\"requested_bytes\":%llu,\"used_bytes\":%llu,\"slab_free_bytes\":%llu,"
             "\"dirty_bytes\":%llu,\"metadata_bytes\":%llu,\"committed_bytes\":%llu,\"mapped_bytes\":%llu,"
             "\"resident_bytes\":%llu,\"chunks\":%llu,\"threads\":%llu}",
          i ? "," : "", i, ull(a->requested_bytes), ull(a->used_bytes), ull(a->slab_free_bytes), ull(a->dirty_bytes),
          ull(a->metadata_bytes), ull(a->committed_bytes), ull(a->mapped_bytes), ull(a->resident_bytes),
          ull(a->chunks), ull(a->threads));
    }
    put(o, "]");
  }
  put(o, "}\n");
}

/* A snapshot formatted into print_buf (print_lock held); returns its length. */
static size_t format_snapshot(int flags, bool final) {
  out_t o = {print_buf, 0, sizeof print_buf};
  ts_stats_get(&print_stats);
  print_ntags = ts_opt.tags ? ts_tag_stats(print_tags, TS_TAGS_MAX) : 0;
  if (print_ntags > TS_TAGS_MAX) print_ntags = TS_TAGS_MAX;
  if (flags & TS_STATS_JSON) format_json(&o, &print_stats, flags, final);
  else format_text(&o, &print_stats, flags);
  return o.len;
}

int ts_stats_print(FILE *out, int flags) {
  if (!out) return -1;
  pthread_mutex_lock(&print_lock);
  size_t len = format_snapshot(flags, false);
  size_t put_len = fwrite(print_buf, 1, len, out);
  pthread_mutex_unlock(&print_lock);
  return put_len == len && fflush(out) == 0 ? 0 : -1;
}

/* ---- snapshots to a file: at exit and every stats_interval_ms ---- */

/* Opens stats_file (with %p expanded) for appending; -1 when unset or on error. */
static int stats_file_open(void) {
  if (!ts_opt.stats_file) return -1;
  char path[4200];
  size_t n = 0;
  for (size_t i = 0; i < ts_opt.stats_file_len && n < sizeof path - 24; i++) {
    if (ts_opt.stats_file[i] == '%' && i + 1 < ts_opt.stats_file_len && ts_opt.stats_file[i + 1] == 'p') {
      n += (size_t)snprintf(path + n, sizeof path - n, "%d", (int)getpid());
      i++;
    } else {
      path[n++] = ts_opt.stats_file[i];
    }
  }
  path[n] = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) ts_message("warning: stats_file: cannot open %s", path);
  return fd;
}

static void write_all(int fd, const char *buf, size_t len) {
  while (len) {
    ssize_t w = write(fd, buf, len);
    if (w <= 0) return;
    buf += w;
    len -= (size_t)w;
  }
}

static bool final_written; /* print_lock: the exit snapshot is out; no periodic one follows */

/* One snapshot to stats_file (or stderr when there is none). */
static void snapshot_to_file(int flags, bool final) {
  pthread_mutex_lock(&print_lock);
  if (final_written) {
    pthread_mutex_unlock(&print_lock);
    return;
  }
  final_written = final;
  int fd = stats_file_open();
  size_t len = format_snapshot(flags, final);
  write_all(fd >= 0 ? fd : 2, print_buf, len);
  if (fd >= 0) close(fd);
  pthread_mutex_unlock(&print_lock);
}

static _Atomic int writer_state; /* 0 none, 1 running */

static void *writer_main(void *arg) {
  (void)arg;
  for (;;) {
    uint64_t ms = ts_opt.stats_interval_ms;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
    snapshot_to_file(TS_STATS_JSON | TS_STATS_NO_ARENAS, false);
  }
  return NULL;
}

/* Starts the periodic writer on the first call that asks (from the slow
 * paths, like the purger), when stats_interval_ms is set. */
void ts_stats_writer_kick(void) {
  int expected = 0;
  if (atomic_load_explicit(&writer_state, memory_order_relaxed)) return;
  if (!atomic_compare_exchange_strong(&writer_state, &expected, 1)) return;
  if (!ts_os_thread_start(writer_main)) ts_message("warning: stats_interval_ms: no thread");
}

/* The child: no writer thread, and the print lock may have been held by a
 * thread that does not exist there (prefork does not take it). */
void ts_stats_writer_postfork_child(void) {
  atomic_store(&writer_state, 0);
  pthread_mutex_init(&print_lock, NULL);
}

/* At exit (and at dlclose of the library): option stats_print. */
__attribute__((destructor)) static void stats_at_exit(void) {
  if (!ts_opt.stats_print || !ts_is_ready()) return;
  snapshot_to_file(ts_opt.stats_print == 2 ? TS_STATS_JSON : TS_STATS_TEXT, true);
}
