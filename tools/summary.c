/* SPDX-License-Identifier: MIT */
/*
 * summary.c: what the tool prints.  The run summary is built once as
 * label/value rows (summary_rows) plus the top size classes and tags of
 * the final snapshot, then printed as text (stderr) or as HTML tables
 * (report.c's page).  `tessera stats` prints one snapshot in the shape of
 * the library's own text format (src/stats_print.c, format_text), with
 * the tags added.  Everything that reaches SVG or HTML passes through
 * put_escaped; text for the terminal has its control characters replaced.
 */
#include "tool.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }
static unsigned long long ull(uint64_t v) { return (unsigned long long)v; }

/* ---- formatting ---- */

const char *fmt_size(char buf[32], uint64_t bytes) {
  if (bytes < 1024) snprintf(buf, 32, "%llu B", ull(bytes));
  else if (bytes < ((uint64_t)1 << 20)) snprintf(buf, 32, "%.1f KiB", (double)bytes / 1024.0);
  else if (bytes < ((uint64_t)10 << 30)) snprintf(buf, 32, "%.1f MiB", mib(bytes));
  else snprintf(buf, 32, "%.2f GiB", (double)bytes / (1024.0 * 1024.0 * 1024.0));
  return buf;
}

static bool plain_arg(const char *a) {
  if (!*a) return false;
  for (; *a; a++) {
    unsigned char c = (unsigned char)*a;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("_./:=+,@%^-", c) ||
          c >= 0x80))
      return false;
  }
  return true;
}

/* Appends s to buf (length *len, size n), dropping what does not fit. */
static void append(char *buf, size_t n, size_t *len, const char *s, size_t slen) {
  if (*len + slen + 1 > n) slen = n - 1 - *len;
  memcpy(buf + *len, s, slen);
  *len += slen;
  buf[*len] = 0;
}

void fmt_command(char *buf, size_t n, char *const argv[]) {
  size_t len = 0;
  bool full = false;
  buf[0] = 0;
  for (size_t i = 0; argv[i] && !full; i++) {
    if (i) append(buf, n, &len, " ", 1);
    const char *a = argv[i];
    if (plain_arg(a)) {
      append(buf, n, &len, a, strlen(a));
    } else if (!*a) {
      append(buf, n, &len, "''", 2);
    } else {
      /* single quotes, with each ' as \' outside them */
      bool open = false;
      for (; *a; a++) {
        if (*a == '\'') {
          if (open) append(buf, n, &len, "'", 1);
          append(buf, n, &len, "\\'", 2);
          open = false;
        } else {
          if (!open) append(buf, n, &len, "'", 1);
          append(buf, n, &len, a, 1);
          open = true;
        }
      }
      if (open) append(buf, n, &len, "'", 1);
    }
    full = len + 1 >= n;
  }
  if (full && n > 4) {
    /* cut: end with "..." on a UTF-8 character boundary */
    size_t cut = n - 4;
    while (cut > 0 && ((unsigned char)buf[cut] & 0xc0) == 0x80) cut--;
    memcpy(buf + cut, "...", 4);
  }
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not
 * one (bad lead byte, missing continuation, overlong, surrogate, beyond
 * U+10FFFF, or U+FFFE/U+FFFF, which XML does not allow). */
static size_t utf8_len(const unsigned char *s) {
  unsigned c = s[0];
  unsigned long cp;
  size_t n;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
  else return 0;
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff) return 0;
  return n;
}

void put_escaped(FILE *out, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char c = *p;
    if (c == '&') fputs("&amp;", out);
    else if (c == '<') fputs("&lt;", out);
    else if (c == '>') fputs("&gt;", out);
    else if (c == '"') fputs("&quot;", out);
    else if (c == '\'') fputs("&#39;", out);
    else if (c == '\t' || c == '\n') fputc(' ', out);
    else if (c < 0x20 || c == 0x7f) fputs("\xef\xbf\xbd", out);
    else if (c < 0x80) fputc(c, out);
    else {
      size_t n = utf8_len(p);
      if (!n) {
        fputs("\xef\xbf\xbd", out);
        p++;
        continue;
      }
      fwrite(p, 1, n, out);
      p += n;
      continue;
    }
    p++;
  }
}

/* s for a terminal: control characters become '?'. */
static void put_plain(FILE *out, const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

/* ---- the run summary ---- */

static void row(summary_row_t rows[], size_t *n, const char *label, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void row(summary_row_t rows[], size_t *n, const char *label, const char *fmt, ...) {
  if (*n >= SUMMARY_MAX_ROWS) return;
  summary_row_t *r = &rows[(*n)++];
  snprintf(r->label, sizeof r->label, "%s", label);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->value, sizeof r->value, fmt, ap);
  va_end(ap);
}

static double pct(uint64_t part, uint64_t whole) { return whole ? 100.0 * (double)part / (double)whole : 0.0; }

size_t summary_rows(const run_result_t *r, summary_row_t rows[SUMMARY_MAX_ROWS]) {
  size_t n = 0;
  char cmd[400], a[32], b[32], c[32];
  fmt_command(cmd, sizeof cmd, r->opt->argv);
  row(rows, &n, "program", "%s", cmd);
  if (r->kind == ALLOC_TESSERA) row(rows, &n, "allocator", "tessera (%s)", r->lib);
  else if (r->kind == ALLOC_GLIBC) row(rows, &n, "allocator", "glibc (no preload): RSS only");
  else row(rows, &n, "allocator", "%s (preloaded): RSS only", r->lib);
  if (r->signal)
    row(rows, &n, "exit", "killed by signal %d (%s): exit code %d", r->signal, strsignal(r->signal), r->exit_code);
  else row(rows, &n, "exit", "status %d", r->exit_code);
  row(rows, &n, "duration", "%.2f s", r->duration_s);
  if (r->nrss) {
    uint64_t peak = 0;
    double area = 0.0; /* byte-seconds: the time-weighted mean says what a run held, not only at its peak */
    for (size_t i = 0; i < r->nrss; i++) {
      if (r->rss[i].rss_bytes > peak) peak = r->rss[i].rss_bytes;
      if (i) area += (r->rss[i].t_s - r->rss[i - 1].t_s) * (double)r->rss[i - 1].rss_bytes;
    }
    double span = r->nrss > 1 ? r->rss[r->nrss - 1].t_s - r->rss[0].t_s : 0.0;
    uint64_t mean = span > 0 ? (uint64_t)(area / span) : r->rss[0].rss_bytes;
    row(rows, &n, "RSS", "peak %s, mean %s, final %s (%zu sample%s, every %u ms)", fmt_size(a, peak),
        fmt_size(c, mean), fmt_size(b, r->rss[r->nrss - 1].rss_bytes), r->nrss, r->nrss == 1 ? "" : "s",
        r->opt->interval_ms);
  } else {
    row(rows, &n, "RSS", "no sample: the program ended before the first one");
  }
  if (r->kind != ALLOC_TESSERA) return n;

  char others[200] = "no other process left snapshots";
  if (r->others)
    snprintf(others, sizeof others,
             "%zu other process%s (forked or started by it) left snapshots; largest: pid %llu, requested peak %s",
             r->others, r->others == 1 ? "" : "es", ull(r->other_max_pid), fmt_size(a, r->other_max_peak));
  if (!r->has_main || !r->main.has_last) {
    row(rows, &n, "ledger",
        "no snapshot from pid %d: the program made no allocation, or exited before the first snapshot, or did "
        "not load libtessera.so (a static or setuid program?); %s",
        (int)r->pid, others);
    if (r->main.bad_lines)
      row(rows, &n, "warning", "%zu snapshot line%s did not decode: %s", r->main.bad_lines,
          r->main.bad_lines == 1 ? "" : "s", r->main.first_bad);
    return n;
  }
  const snap_t *s = &r->main.last;
  double at = s->time_ms >= r->start_wall_ms ? (double)(s->time_ms - r->start_wall_ms) / 1000.0 : 0.0;
  row(rows, &n, "ledger", "pid %d: %s at %.2f s (%zu snapshot%s); %s", (int)r->pid,
      s->final ? "final snapshot" : "no final snapshot (killed, or ended by _exit or exec), the last one", at,
      r->main.count, r->main.count == 1 ? "" : "s", others);
  row(rows, &n, "resident", "peak %s, final %s (tessera's mappings in memory)", fmt_size(a, s->resident_peak_bytes),
      fmt_size(b, s->resident_bytes));
  row(rows, &n, "requested", "%s, peak %s (%s)", fmt_size(a, s->requested_bytes),
      fmt_size(b, s->requested_peak_bytes),
      s->requested_exact ? "exact" : "not exact: small blocks count at their size class (--fast)");
  row(rows, &n, "allocated", "%s, peak %s", fmt_size(a, s->allocated_bytes), fmt_size(b, s->allocated_peak_bytes));
  row(rows, &n, "committed", "%s", fmt_size(a, s->committed_bytes));
  if (s->requested_bytes && s->requested_bytes * 100 >= s->committed_bytes)
    row(rows, &n, "fragmentation", "%.3f (committed / requested)", s->frag_ratio);
  else if (s->requested_bytes)
    row(rows, &n, "fragmentation", "not meaningful at the end: %s requested of %s committed (see the moment the "
        "program held most)", fmt_size(a, s->requested_bytes), fmt_size(b, s->committed_bytes));
  else row(rows, &n, "fragmentation", "none to measure: nothing requested at the end");
  uint64_t over = s->committed_bytes > s->requested_bytes ? s->committed_bytes - s->requested_bytes : 0;
  row(rows, &n, "beyond requested",
      "%s: rounding %.1f%%, cached %.1f%%, slab_free %.1f%%, dirty %.1f%%, metadata %.1f%%", fmt_size(c, over),
      pct(s->rounding_bytes, over), pct(s->cached_bytes, over), pct(s->slab_free_bytes, over),
      pct(s->dirty_bytes, over), pct(s->metadata_bytes, over));
  /* the moment the program held most: the ledger then */
  const snap_t *busiest = NULL;
  for (size_t i = 0; i < r->main.count; i++)
    if (!busiest || r->main.points[i].requested_bytes > busiest->requested_bytes) busiest = &r->main.points[i];
  if (busiest && busiest->requested_bytes) {
    uint64_t bover = busiest->committed_bytes > busiest->requested_bytes
                         ? busiest->committed_bytes - busiest->requested_bytes
                         : 0;
    double bat = busiest->time_ms >= r->start_wall_ms ? (double)(busiest->time_ms - r->start_wall_ms) / 1000.0 : 0.0;
    row(rows, &n, "at most requested",
        "%.2f s: requested %s, committed %s (%.3f); beyond: rounding %.1f%%, cached %.1f%%, slab_free %.1f%%, "
        "dirty %.1f%%, metadata %.1f%%",
        bat, fmt_size(a, busiest->requested_bytes), fmt_size(b, busiest->committed_bytes), busiest->frag_ratio,
        pct(busiest->rounding_bytes, bover), pct(busiest->cached_bytes, bover), pct(busiest->slab_free_bytes, bover),
        pct(busiest->dirty_bytes, bover), pct(busiest->metadata_bytes, bover));
  }
  if (r->main.bad_lines)
    row(rows, &n, "warning", "%zu snapshot line%s did not decode: %s", r->main.bad_lines,
        r->main.bad_lines == 1 ? "" : "s", r->main.first_bad);
  return n;
}

/* The indices of the (up to) max entries with the largest keys, largest
 * first, ties in their order (insertion into a short sorted list); with
 * skip_zero, entries whose key is 0 are left out. */
static size_t top_k(const snap_t *s, size_t count, uint64_t (*key)(const snap_t *, size_t), bool skip_zero,
                    size_t out[], size_t max) {
  size_t k = 0;
  for (size_t i = 0; i < count; i++) {
    uint64_t v = key(s, i);
    if (skip_zero && !v) continue;
    size_t at = k < max ? k++ : max;
    for (; at > 0 && key(s, out[at - 1]) < v; at--)
      if (at < max) out[at] = out[at - 1];
    if (at < max) out[at] = i;
  }
  return k;
}

static uint64_t class_key(const snap_t *s, size_t i) { return s->classes[i].slab_bytes; }
static uint64_t tag_key(const snap_t *s, size_t i) { return s->tags[i].requested_bytes; }

size_t top_classes(const snap_t *s, size_t out[SUMMARY_TOP]) {
  return top_k(s, s->nclasses, class_key, true, out, SUMMARY_TOP);
}

size_t top_tags(const snap_t *s, size_t out[], size_t max) { return top_k(s, s->ntags, tag_key, false, out, max); }

static const snap_t *final_snapshot(const run_result_t *r) {
  return r->kind == ALLOC_TESSERA && r->has_main && r->main.has_last ? &r->main.last : NULL;
}

void summary_print_text(FILE *out, const run_result_t *r) {
  summary_row_t rows[SUMMARY_MAX_ROWS];
  size_t n = summary_rows(r, rows);
  fprintf(out, "tessera run summary\n");
  for (size_t i = 0; i < n; i++) {
    fprintf(out, "  %-17s ", rows[i].label);
    put_plain(out, rows[i].value);
    fputc('\n', out);
  }
  const snap_t *s = final_snapshot(r);
  if (!s) return;
  size_t top[SUMMARY_TOP];
  size_t k = top_classes(s, top);
  if (k) {
    fprintf(out, "  top size classes by slab bytes:\n    %8s %7s %11s %10s %10s %10s %10s %11s %7s\n", "size",
            "slabs", "slab bytes", "objects", "live", "cached", "placed", "hosted", "util");
    for (size_t i = 0; i < k; i++) {
      const snap_class_t *c = &s->classes[top[i]];
      char b[32], h[32];
      fprintf(out, "    %8llu %7llu %11s %10llu %10llu %10llu %10llu %11s %6.1f%%\n", ull(c->size), ull(c->slabs),
              fmt_size(b, c->slab_bytes), ull(c->objects), ull(c->live), ull(c->cached), ull(c->foreign),
              fmt_size(h, c->hosted_bytes), 100.0 * c->utilisation);
    }
  }
  k = top_tags(s, top, SUMMARY_TOP);
  if (k) {
    fprintf(out, "  top tags by requested bytes:\n    %11s %11s %12s  %s\n", "requested", "peak", "allocations", "tag");
    for (size_t i = 0; i < k; i++) {
      const snap_tag_t *t = &s->tags[top[i]];
      char a[32], b[32];
      fprintf(out, "    %11s %11s %12llu  ", fmt_size(a, t->requested_bytes), fmt_size(b, t->peak_bytes),
              ull(t->allocations));
      put_plain(out, t->name);
      fputc('\n', out);
    }
  }
}

void summary_print_html(FILE *out, const run_result_t *r) {
  summary_row_t rows[SUMMARY_MAX_ROWS];
  size_t n = summary_rows(r, rows);
  fputs("<table id=\"summary\">\n<caption>Summary</caption>\n<tbody>\n", out);
  for (size_t i = 0; i < n; i++) {
    fputs("<tr><th scope=\"row\">", out);
    put_escaped(out, rows[i].label);
    fputs("</th><td>", out);
    put_escaped(out, rows[i].value);
    fputs("</td></tr>\n", out);
  }
  fputs("</tbody>\n</table>\n", out);
  const snap_t *s = final_snapshot(r);
  if (!s) return;
  size_t top[SUMMARY_TOP];
  size_t k = top_classes(s, top);
  if (k) {
    fputs("<table id=\"classes\">\n<caption>Top size classes by slab bytes</caption>\n<thead><tr><th>size</th>"
          "<th>slabs</th><th>slab bytes</th><th>objects</th><th>live</th><th>cached</th><th>placed elsewhere</th>"
          "<th>hosted</th><th>utilisation</th></tr>"
          "</thead>\n<tbody>\n",
          out);
    for (size_t i = 0; i < k; i++) {
      const snap_class_t *c = &s->classes[top[i]];
      char b[32], h[32];
      fprintf(out,
              "<tr><td>%llu</td><td>%llu</td><td>%s</td><td>%llu</td><td>%llu</td><td>%llu</td><td>%llu</td>"
              "<td>%s</td><td>%.1f%%</td></tr>\n",
              ull(c->size), ull(c->slabs), fmt_size(b, c->slab_bytes), ull(c->objects), ull(c->live), ull(c->cached),
              ull(c->foreign), fmt_size(h, c->hosted_bytes), 100.0 * c->utilisation);
    }
    fputs("</tbody>\n</table>\n", out);
  }
  k = top_tags(s, top, SUMMARY_TOP);
  if (k) {
    fputs("<table id=\"tags\">\n<caption>Top tags by requested bytes</caption>\n<thead><tr><th>tag</th>"
          "<th>requested</th><th>peak</th><th>allocations</th></tr></thead>\n<tbody>\n",
          out);
    for (size_t i = 0; i < k; i++) {
      const snap_tag_t *t = &s->tags[top[i]];
      fputs("<tr><td>", out);
      put_escaped(out, t->name);
      char a[32], b[32];
      fprintf(out, "</td><td>%s</td><td>%s</td><td>%llu</td></tr>\n", fmt_size(a, t->requested_bytes),
              fmt_size(b, t->peak_bytes), ull(t->allocations));
    }
    fputs("</tbody>\n</table>\n", out);
  }
}

/* ---- tessera stats ---- */

static void part_row(FILE *out, const char *name, uint64_t bytes, uint64_t committed, const char *what) {
  fprintf(out, "  %-12s %16llu %11.1f %6.1f%%  %s\n", name, ull(bytes), mib(bytes), pct(bytes, committed), what);
}

void stats_print_text(FILE *out, const snap_t *s) {
  char when[64] = "time unknown";
  time_t secs = (time_t)(s->time_ms / 1000);
  struct tm tm;
  if (s->time_ms && gmtime_r(&secs, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
  fputs("tessera ", out);
  put_plain(out, s->tessera);
  fprintf(out, " memory ledger, pid %llu, %s (%s snapshot, stats version %llu)\n", ull(s->pid), when,
          s->final ? "final" : "periodic", ull(s->stats_version));
  if (!s->requested_exact)
    fprintf(out, "  (small blocks' requests counted at class size: TESSERA_CONF=stats_exact:true for exact)\n");
  fprintf(out, "  %-12s %16s %11s %7s\n", "part", "bytes", "MiB", "share");
  part_row(out, "requested", s->requested_bytes, s->committed_bytes, "asked for by callers and still held");
  part_row(out, "rounding", s->rounding_bytes, s->committed_bytes, "size classes and page rounding (internal)");
  part_row(out, "cached", s->cached_bytes, s->committed_bytes, "in thread caches");
  part_row(out, "slab_free", s->slab_free_bytes, s->committed_bytes, "unused slots of slabs (external)");
  part_row(out, "dirty", s->dirty_bytes, s->committed_bytes, "free pages not yet returned to the OS");
  part_row(out, "metadata", s->metadata_bytes, s->committed_bytes, "tessera's own structures");
  part_row(out, "committed", s->committed_bytes, s->committed_bytes, "the sum");
  uint64_t sum = s->requested_bytes + s->rounding_bytes + s->cached_bytes + s->slab_free_bytes + s->dirty_bytes +
                 s->metadata_bytes;
  if (sum != s->committed_bytes)
    fprintf(out,
            "  (the parts add up to %llu bytes, not the committed %llu: the snapshot mixes moments of busy threads)\n",
            ull(sum), ull(s->committed_bytes));
  fprintf(out,
          "  allocated %.1f MiB (medium %.1f, large %.1f, huge %.1f); mapped %.1f MiB; resident %.1f MiB; returned to "
          "the OS %.1f MiB since start\n",
          mib(s->allocated_bytes), mib(s->medium_bytes), mib(s->large_bytes), mib(s->huge_bytes), mib(s->mapped_bytes),
          mib(s->resident_bytes), mib(s->returned_bytes));
  fprintf(out,
          "  process RSS %.1f MiB (peak %.1f); peaks seen: requested %.1f MiB, allocated %.1f MiB, resident %.1f MiB\n",
          mib(s->process_rss_bytes), mib(s->process_rss_peak_bytes), mib(s->requested_peak_bytes),
          mib(s->allocated_peak_bytes), mib(s->resident_peak_bytes));
  fprintf(out,
          "  fragmentation: committed/requested %.3f; of the rest: rounding %.1f%%, cached %.1f%%, slab_free %.1f%%, "
          "dirty %.1f%%, metadata %.1f%%\n",
          s->frag_ratio, 100 * s->share_rounding, 100 * s->share_cached, 100 * s->share_slab_free,
          100 * s->share_dirty, 100 * s->share_metadata);
  fprintf(out,
          "  calls: %llu blocks allocated, %llu freed (%llu remote), %llu calloc, %llu realloc, %llu aligned; "
          "%llu huge live\n",
          ull(s->calls_malloc), ull(s->calls_free), ull(s->calls_remote_free), ull(s->calls_calloc),
          ull(s->calls_realloc), ull(s->calls_aligned), ull(s->huge_blocks));
  if (s->nclasses) {
    fprintf(out, "size classes in use:\n  %6s %6s %10s %10s %10s %10s %10s %10s %8s\n", "size", "slabs", "slab KiB",
            "objects", "live", "cached", "foreign", "hosted KiB", "util");
    for (size_t i = 0; i < s->nclasses; i++) {
      const snap_class_t *k = &s->classes[i];
      fprintf(out, "  %6llu %6llu %10llu %10llu %10llu %10llu %10llu %10llu %7.1f%%\n", ull(k->size), ull(k->slabs),
              ull(k->slab_bytes >> 10), ull(k->objects), ull(k->live), ull(k->cached), ull(k->foreign),
              ull(k->hosted_bytes >> 10), 100 * k->utilisation);
    }
  } else if (!s->has_classes) {
    fprintf(out, "(no size classes in this snapshot)\n");
  }
  if (s->narenas) {
    fprintf(out, "arenas (MiB):\n  %5s %10s %10s %10s %10s %10s %10s %10s %10s %6s %7s\n", "arena", "requested",
            "used", "slab_free", "dirty", "metadata", "committed", "mapped", "resident", "chunks", "threads");
    for (size_t i = 0; i < s->narenas; i++) {
      const snap_arena_t *a = &s->arenas[i];
      fprintf(out, "  %5llu %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %10.1f %6llu %7llu\n", ull(a->index),
              mib(a->requested_bytes), mib(a->used_bytes), mib(a->slab_free_bytes), mib(a->dirty_bytes),
              mib(a->metadata_bytes), mib(a->committed_bytes), mib(a->mapped_bytes), mib(a->resident_bytes),
              ull(a->chunks), ull(a->threads));
    }
  } else if (!s->has_arenas) {
    fprintf(out, "(no arenas in this snapshot: periodic snapshots leave them out)\n");
  }
  if (s->ntags) {
    size_t *order = malloc(s->ntags * sizeof *order);
    if (order) {
      size_t k = top_tags(s, order, s->ntags);
      fprintf(out, "tags by requested bytes:\n  %16s %11s %16s %11s %12s  %s\n", "requested", "MiB", "peak", "MiB",
              "allocations", "tag");
      for (size_t i = 0; i < k; i++) {
        const snap_tag_t *t = &s->tags[order[i]];
        fprintf(out, "  %16llu %11.1f %16llu %11.1f %12llu  ", ull(t->requested_bytes), mib(t->requested_bytes),
                ull(t->peak_bytes), mib(t->peak_bytes), ull(t->allocations));
        put_plain(out, t->name);
        fputc('\n', out);
      }
      free(order);
    }
  }
}
