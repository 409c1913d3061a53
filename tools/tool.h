/* SPDX-License-Identifier: MIT */
/*
 * tool.h: what the parts of the `tessera` command-line tool share.
 *
 *   tessera.c   main: the command line, --help, --version, `tessera stats`
 *   run.c       `tessera run`: finds the library, runs the program with it
 *               preloaded, samples its RSS, collects its snapshots
 *   summary.c   the run summary (text for stderr, tables for HTML) and the
 *               snapshot table of `tessera stats`; number formatting and
 *               escaping for SVG/HTML
 *   report.c    the SVG chart and the HTML page of --report
 *   snapshot.c  the allocator's JSON snapshots as structs (snapshot.h)
 *   json.c      the JSON reader (json.h)
 *
 * The tool is single-threaded and uses libc only.
 */
#ifndef TS_TOOL_H
#define TS_TOOL_H

#include "snapshot.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/* Exit codes of the tool itself (as timeout(1) and env(1) use them);
 * otherwise `tessera run` exits with the program's status. */
#define TOOL_EXIT_USAGE 2       /* bad command line */
#define TOOL_EXIT_FAILED 125    /* the tool could not do its part */
#define TOOL_EXIT_CANNOT_RUN 126
#define TOOL_EXIT_NOT_FOUND 127

/* ---- tessera run ---- */

typedef enum alloc_kind_e {
  ALLOC_TESSERA,                /* libtessera.so, with the ledger */
  ALLOC_GLIBC,                  /* no preload */
  ALLOC_OTHER,                  /* another library preloaded: RSS only */
} alloc_kind_e;

typedef struct run_options_s {
  unsigned interval_ms;         /* sampling and snapshot interval */
  const char *report;           /* FILE.html or FILE.svg, or NULL */
  const char *json;             /* where to copy the snapshots, or NULL */
  const char *allocator;        /* "tessera", "glibc" or a path */
  bool fast;                    /* leave out stats_exact:true */
  char **argv;                  /* the program and its arguments, NULL-terminated */
} run_options_t;

typedef struct rss_sample_s {
  double t_s;                   /* seconds since the program started */
  uint64_t rss_bytes;
} rss_sample_t;

typedef struct run_result_s {
  const run_options_t *opt;
  alloc_kind_e kind;
  char lib[PATH_MAX];           /* the preloaded library ("" for glibc) */
  pid_t pid;
  int exit_code;                /* the status, or 128 + the signal that killed it */
  int signal;                   /* that signal, or 0 */
  double duration_s;
  uint64_t start_wall_ms;       /* wall clock at the start, for snapshots' time_ms */
  rss_sample_t *rss;            /* the tool's own samples of VmRSS */
  size_t nrss;
  /* the ledger (kind == ALLOC_TESSERA) */
  bool has_main;                /* the program's own pid left a snapshot file */
  snap_series_t main;
  size_t others;                /* other processes (its children) that left snapshots */
  uint64_t other_max_pid, other_max_peak; /* the one of them with the largest requested peak */
} run_result_t;

/* Runs `tessera run` with parsed options; returns the exit code. */
int run_command(const run_options_t *o);

/* ---- summary.c ---- */

/* "512 B", "12.0 KiB", "48.1 MiB", "1.25 GiB" into buf. */
const char *fmt_size(char buf[32], uint64_t bytes);
/* The command line, arguments separated by spaces and quoted when they
 * hold anything but plain characters, cut to fit n bytes. */
void fmt_command(char *buf, size_t n, char *const argv[]);
/* Writes s escaped for XML/HTML text or attributes (& < > " '), with bytes
 * that are not valid UTF-8 or are control characters replaced by U+FFFD. */
void put_escaped(FILE *out, const char *s);

/* The run summary as label/value rows, for text and for HTML. */
typedef struct summary_row_s {
  char label[32];
  char value[400];
} summary_row_t;
#define SUMMARY_MAX_ROWS 24
size_t summary_rows(const run_result_t *r, summary_row_t rows[SUMMARY_MAX_ROWS]);

/* The k largest classes by slab_bytes / tags by requested_bytes of s, into
 * out (indices); returns how many. */
#define SUMMARY_TOP 5
size_t top_classes(const snap_t *s, size_t out[SUMMARY_TOP]);
size_t top_tags(const snap_t *s, size_t out[], size_t k);

void summary_print_text(FILE *out, const run_result_t *r);
void summary_print_html(FILE *out, const run_result_t *r);

/* The text table of one snapshot (`tessera stats`). */
void stats_print_text(FILE *out, const snap_t *s);

/* ---- report.c ---- */

/* Writes the chart (path ending in .svg) or the page (.html, .htm);
 * returns 0, or -1 with why filled. */
int report_write(const char *path, const run_result_t *r, char *why, size_t whylen);
/* 1 for an SVG path, 2 for an HTML path, 0 for neither. */
int report_kind(const char *path);

#endif /* TS_TOOL_H */
