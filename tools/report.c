/* SPDX-License-Identifier: MIT */
/*
 * report.c: the --report of `tessera run`.  An SVG line chart of memory
 * over time (x: seconds since the program started; y: MiB) with the
 * ledger's requested, allocated, committed and resident bytes of the program's own
 * process and the RSS the tool sampled, drawn with axes, ticks, grid,
 * legend and a title naming the program; or an HTML page with that SVG
 * inline, the summary tables, and a small script that checks after load
 * that the chart has its lines and then sets
 * document.body.dataset.rendered = "ok" (for headless browser tests).
 * Both are self-contained: no fonts, scripts or styles from elsewhere.
 *
 * Each series is one <polyline class="series" data-series="NAME">; the
 * root <svg id="tessera-chart"> says in data-series how many there are.
 * A series longer than two points per pixel column is thinned to the
 * lowest and highest value of each column, so peaks survive.
 */
#include "tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <tessera.h>

#define W 960
#define H 540
#define PLOT_L 76.0
#define PLOT_R (W - 28.0)
#define PLOT_T 86.0
#define PLOT_B (H - 58.0)

typedef struct point_s {
  double t, v;                  /* seconds, MiB */
} point_t;

typedef struct series_s {
  const char *name, *label, *color;
  point_t *pts;
  size_t n;
} series_t;

int report_kind(const char *path) {
  size_t n = strlen(path);
  if (n > 4 && strcmp(path + n - 4, ".svg") == 0) return 1;
  if (n > 5 && strcmp(path + n - 5, ".html") == 0) return 2;
  if (n > 4 && strcmp(path + n - 4, ".htm") == 0) return 2;
  return 0;
}

/* A step of 1, 2 or 5 times a power of ten giving about target ticks. */
static double nice_step(double range, int target) {
  double raw = range > 0 ? range / target : 1.0, p = 1.0;
  while (p * 10 <= raw) p *= 10;
  while (p > raw) p /= 10;
  double m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/* Decimals that show a multiple of step exactly enough. */
static int decimals(double step) {
  int d = 0;
  for (double s = step; s < 0.999 && d < 6; s *= 10) d++;
  return d;
}

/* The smallest multiple of step at or above v (v >= 0). */
static double ceil_to(double v, double step) {
  double k = (double)(long long)(v / step);
  if (k * step < v - step * 1e-9) k += 1;
  return k < 1 ? step : k * step;
}

/* requested, allocated, committed, resident, and the sampled RSS */
#define TS_CHART_SERIES 5

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

/* The chart's series (empty ones left out); returns how many, each pts
 * to free. */
static size_t build_series(const run_result_t *r, series_t out[TS_CHART_SERIES]) {
  size_t n = 0;
  if (r->kind == ALLOC_TESSERA && r->has_main && r->main.count) {
    static const char *names[4] = {"requested", "allocated", "committed", "resident"};
    static const char *labels[4] = {"requested (ledger)", "allocated (ledger)", "committed (ledger)",
                                    "resident (ledger, mincore)"};
    static const char *colors[4] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"};
    for (int k = 0; k < 4; k++) {
      point_t *pts = malloc(r->main.count * sizeof *pts);
      if (!pts) break;
      for (size_t i = 0; i < r->main.count; i++) {
        const snap_t *s = &r->main.points[i];
        pts[i].t = s->time_ms > r->start_wall_ms ? (double)(s->time_ms - r->start_wall_ms) / 1000.0 : 0.0;
        pts[i].v = mib(k == 0   ? s->requested_bytes
                       : k == 1 ? s->allocated_bytes
                       : k == 2 ? s->committed_bytes
                                : s->resident_bytes);
      }
      out[n++] = (series_t){names[k], labels[k], colors[k], pts, r->main.count};
    }
  }
  if (r->nrss) {
    point_t *pts = malloc(r->nrss * sizeof *pts);
    if (pts) {
      for (size_t i = 0; i < r->nrss; i++) pts[i] = (point_t){r->rss[i].t_s, mib(r->rss[i].rss_bytes)};
      out[n++] = (series_t){"rss", "RSS (sampled by the tool)", "#d62728", pts, r->nrss};
    }
  }
  return n;
}

static void text_at(FILE *f, double x, double y, const char *anchor, const char *extra, const char *s) {
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s>", x, y, anchor, extra);
  put_escaped(f, s);
  fputs("</text>\n", f);
}

static void write_polyline(FILE *f, const series_t *s, double tmax, double vmax) {
  double xs = (PLOT_R - PLOT_L) / tmax, ys = (PLOT_B - PLOT_T) / vmax;
  fprintf(f, "<polyline class=\"series\" data-series=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" "
             "stroke-linejoin=\"round\" stroke-linecap=\"round\" points=\"",
          s->name, s->color, strcmp(s->name, "rss") == 0 ? "2.5" : "2");
  size_t columns = (size_t)(PLOT_R - PLOT_L);
  size_t emitted = 0;
  if (s->n <= 2 * columns) {
    for (size_t i = 0; i < s->n; i++, emitted++)
      fprintf(f, "%s%.1f,%.1f", i ? " " : "", PLOT_L + s->pts[i].t * xs, PLOT_B - s->pts[i].v * ys);
  } else {
    /* per pixel column: its lowest and highest point, in time order */
    size_t i = 0;
    while (i < s->n) {
      long col = (long)(s->pts[i].t * xs);
      size_t lo = i, hi = i;
      for (; i < s->n && (long)(s->pts[i].t * xs) == col; i++) {
        if (s->pts[i].v < s->pts[lo].v) lo = i;
        if (s->pts[i].v > s->pts[hi].v) hi = i;
      }
      size_t a = lo < hi ? lo : hi, b = lo < hi ? hi : lo;
      fprintf(f, "%s%.1f,%.1f", emitted++ ? " " : "", PLOT_L + s->pts[a].t * xs, PLOT_B - s->pts[a].v * ys);
      if (b != a) fprintf(f, " %.1f,%.1f", PLOT_L + s->pts[b].t * xs, PLOT_B - s->pts[b].v * ys), emitted++;
    }
  }
  if (emitted == 1) /* one point: draw it as a dot (a round-capped line of length 0) */
    fprintf(f, " %.1f,%.1f", PLOT_L + s->pts[0].t * xs, PLOT_B - s->pts[0].v * ys);
  fputs("\"/>\n", f);
}

/* The <svg> element; standalone adds the XML declaration. */
static void write_svg(FILE *f, const run_result_t *r, bool standalone) {
  series_t series[TS_CHART_SERIES];
  size_t ns = build_series(r, series);
  double tmax = r->duration_s, vmax = 0;
  for (size_t k = 0; k < ns; k++)
    for (size_t i = 0; i < series[k].n; i++) {
      if (series[k].pts[i].t > tmax) tmax = series[k].pts[i].t;
      if (series[k].pts[i].v > vmax) vmax = series[k].pts[i].v;
    }
  double xstep = nice_step(tmax > 0 ? tmax : 1.0, 10), ystep = nice_step(vmax > 0 ? vmax : 1.0, 8);
  tmax = ceil_to(tmax > 0 ? tmax : xstep, xstep);
  vmax = ceil_to(vmax > 0 ? vmax : ystep, ystep);
  int xd = decimals(xstep), yd = decimals(ystep);

  char cmd[160], title[220], sub[PATH_MAX + 200], tick[48];
  fmt_command(cmd, sizeof cmd, r->opt->argv);
  snprintf(title, sizeof title, "Memory of %s", cmd);
  const char *alloc = r->kind == ALLOC_TESSERA ? "tessera" : r->kind == ALLOC_GLIBC ? "glibc" : r->lib;
  const char *note = "";
  if (r->kind != ALLOC_TESSERA) note = " (RSS only)";
  else if (r->has_main && r->main.has_last && !r->main.last.requested_exact) note = " (requested not exact: --fast)";
  snprintf(sub, sizeof sub, "allocator %s%s; %.2f s; sampled every %u ms; %s %d", alloc, note, r->duration_s,
           r->opt->interval_ms, r->signal ? "killed by signal" : "exit status", r->signal ? r->signal : r->exit_code);

  if (standalone) fputs("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n", f);
  fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"tessera-chart\" width=\"%d\" height=\"%d\" "
             "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\" data-series=\"%zu\">\n",
          W, H, W, H, ns);
  fputs("<title>", f);
  put_escaped(f, title);
  fputs("</title>\n", f);
  fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, H);
  text_at(f, W / 2.0, 24, "middle", " font-size=\"16\" font-weight=\"bold\"", title);
  text_at(f, W / 2.0, 43, "middle", " fill=\"#555555\"", sub);

  /* legend */
  double lx = PLOT_L;
  for (size_t k = 0; k < ns; k++) {
    fprintf(f, "<line x1=\"%.1f\" y1=\"64\" x2=\"%.1f\" y2=\"64\" stroke=\"%s\" stroke-width=\"3\"/>\n", lx, lx + 22,
            series[k].color);
    text_at(f, lx + 28, 68, "start", "", series[k].label);
    lx += 28 + 7.0 * (double)strlen(series[k].label) + 24;
  }
  if (!ns)
    text_at(f, W / 2.0, (PLOT_T + PLOT_B) / 2, "middle", " fill=\"#555555\"",
            "no data: the program ended before the first sample");

  /* grid, ticks and labels */
  fputs("<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n", f);
  for (double y = ystep; y <= vmax + ystep * 1e-9; y += ystep) {
    double py = PLOT_B - y * (PLOT_B - PLOT_T) / vmax;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PLOT_L, py, PLOT_R, py);
  }
  for (double x = xstep; x <= tmax + xstep * 1e-9; x += xstep) {
    double px = PLOT_L + x * (PLOT_R - PLOT_L) / tmax;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px, PLOT_T, px, PLOT_B);
  }
  fputs("</g>\n<g stroke=\"#333333\" stroke-width=\"1\">\n", f);
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PLOT_L, PLOT_B, PLOT_R, PLOT_B);
  fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PLOT_L, PLOT_T, PLOT_L, PLOT_B);
  for (double y = 0; y <= vmax + ystep * 1e-9; y += ystep) {
    double py = PLOT_B - y * (PLOT_B - PLOT_T) / vmax;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", PLOT_L - 5, py, PLOT_L, py);
  }
  for (double x = 0; x <= tmax + xstep * 1e-9; x += xstep) {
    double px = PLOT_L + x * (PLOT_R - PLOT_L) / tmax;
    fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>\n", px, PLOT_B, px, PLOT_B + 5);
  }
  fputs("</g>\n<g class=\"ticks\" fill=\"#333333\">\n", f);
  for (double y = 0; y <= vmax + ystep * 1e-9; y += ystep) {
    snprintf(tick, sizeof tick, "%.*f", yd, y);
    text_at(f, PLOT_L - 8, PLOT_B - y * (PLOT_B - PLOT_T) / vmax + 4, "end", "", tick);
  }
  for (double x = 0; x <= tmax + xstep * 1e-9; x += xstep) {
    snprintf(tick, sizeof tick, "%.*f", xd, x);
    text_at(f, PLOT_L + x * (PLOT_R - PLOT_L) / tmax, PLOT_B + 19, "middle", "", tick);
  }
  fputs("</g>\n", f);
  text_at(f, (PLOT_L + PLOT_R) / 2, H - 14, "middle", "", "seconds since start");
  fprintf(f, "<text x=\"18\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 18 %.1f)\">MiB</text>\n",
          (PLOT_T + PLOT_B) / 2, (PLOT_T + PLOT_B) / 2);

  for (size_t k = 0; k < ns; k++) {
    write_polyline(f, &series[k], tmax, vmax);
    free(series[k].pts);
  }
  fputs("</svg>\n", f);
}

static const char page_style[] =
    "body { font-family: sans-serif; margin: 24px; color: #222222; background: #ffffff; }\n"
    "h1 { font-size: 20px; margin: 0 0 12px; }\n"
    "svg { max-width: 100%; height: auto; border: 1px solid #dddddd; }\n"
    "table { border-collapse: collapse; margin: 16px 0; font-size: 14px; }\n"
    "caption { text-align: left; font-weight: bold; padding: 4px 0; }\n"
    "th, td { border: 1px solid #cccccc; padding: 4px 8px; text-align: left; vertical-align: top; }\n"
    "#classes td, #tags td { text-align: right; }\n"
    "#tags td:first-child { text-align: left; }\n"
    "footer { color: #777777; font-size: 12px; }\n";

/* Runs after load: the chart must have as many polylines as it announces,
 * each with points, and a box with an area. */
static const char page_script[] =
    "(function () {\n"
    "  function check() {\n"
    "    var svg = document.getElementById(\"tessera-chart\");\n"
    "    var lines = svg ? svg.querySelectorAll(\"polyline.series\") : [];\n"
    "    var ok = !!svg && lines.length === Number(svg.getAttribute(\"data-series\"));\n"
    "    for (var i = 0; ok && i < lines.length; i++) ok = lines[i].points.numberOfItems >= 2;\n"
    "    if (ok) { var box = svg.getBBox(); ok = box.width > 0 && box.height > 0; }\n"
    "    document.body.dataset.rendered = ok ? \"ok\" : \"failed\";\n"
    "  }\n"
    "  if (document.readyState === \"complete\") check(); else window.addEventListener(\"load\", check);\n"
    "})();\n";

static void write_html(FILE *f, const run_result_t *r) {
  char cmd[400];
  fmt_command(cmd, sizeof cmd, r->opt->argv);
  fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>tessera run: ", f);
  put_escaped(f, cmd);
  fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<h1>tessera run: ", page_style);
  put_escaped(f, cmd);
  fputs("</h1>\n", f);
  write_svg(f, r, false);
  summary_print_html(f, r);
  fprintf(f, "<footer>Written by tessera %s (tessera run --report).</footer>\n", TESSERA_VERSION);
  fprintf(f, "<script>\n%s</script>\n</body>\n</html>\n", page_script);
}

int report_write(const char *path, const run_result_t *r, char *why, size_t whylen) {
  int kind = report_kind(path);
  if (!kind) {
    snprintf(why, whylen, "the file name must end in .svg or .html");
    return -1;
  }
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(why, whylen, "cannot create it: %s", strerror(errno));
    return -1;
  }
  if (kind == 1) write_svg(f, r, true);
  else write_html(f, r);
  bool bad = ferror(f) != 0;
  if (fclose(f) != 0 || bad) {
    snprintf(why, whylen, "cannot write it: %s", strerror(errno ? errno : EIO));
    return -1;
  }
  return 0;
}
