/* SPDX-License-Identifier: MIT */
/*
 * tessera.c: the `tessera` command line: the subcommands `run` (run.c) and
 * `stats`, --help and --version.  Usage errors print a short usage to
 * stderr and exit with status 2; `tessera stats` exits 1 on a file it
 * cannot read as a snapshot, naming the file and what is wrong.
 */
#include "tool.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <tessera.h>

static const char usage_text[] =
    "usage: tessera run [--interval MS] [--report FILE.html|FILE.svg] [--json FILE]\n"
    "                   [--allocator tessera|glibc|PATH.so] [--fast] -- PROGRAM [ARGS...]\n"
    "       tessera stats FILE\n"
    "       tessera --help | --version\n";

static const char help_text[] =
    "tessera: run a program under the tessera allocator and see where its memory goes.\n"
    "\n"
    "tessera run [OPTIONS] -- PROGRAM [ARGS...]\n"
    "  Runs PROGRAM with libtessera.so preloaded (LD_PRELOAD; entries already there\n"
    "  are kept after it) and the allocator's ledger switched on: a JSON snapshot\n"
    "  every interval and one at exit.  The tool samples the program's RSS\n"
    "  (/proc/PID/status) at the same interval, whatever the allocator.  When the\n"
    "  program ends it prints a summary to stderr (duration, peak and final RSS,\n"
    "  and from the ledger of the program's own process: resident, requested,\n"
    "  allocated and committed memory, fragmentation and its causes, the largest\n"
    "  size classes and tags), then exits with the program's status (128 + N when\n"
    "  it was killed by signal N).  SIGINT, SIGTERM and SIGHUP are passed on to it.\n"
    "\n"
    "  --interval MS      sampling and snapshot interval in milliseconds (default 100)\n"
    "  --report FILE      write a chart of memory over time: FILE.svg, a standalone\n"
    "                     SVG; FILE.html, a page with the chart and the summary\n"
    "  --json FILE        copy the program's snapshots (JSON lines) to FILE\n"
    "  --allocator A      tessera (default): libtessera.so, found through the\n"
    "                     environment variable TESSERA_LIB, else beside this tool\n"
    "                     (build directory), else in ../lib or ../lib/<multiarch>\n"
    "                     of its directory (installed);\n"
    "                     glibc: no preload, RSS only;\n"
    "                     PATH.so: preload that library instead, RSS only\n"
    "  --fast             do not ask for exact requested bytes (stats_exact:true).\n"
    "                     Exact counting sends every allocator call down the slow\n"
    "                     path: allocation-heavy programs run 1.2 to 4.8x slower.\n"
    "                     Without it, small blocks count at their size class.\n"
    "\n"
    "  The ledger's options go to the program in TESSERA_CONF, before any\n"
    "  TESSERA_CONF of yours (so that your keys win):\n"
    "    stats_exact:true,stats_interval_ms:MS,stats_print:json,stats_file:TMP/ts.%p.jsonl\n"
    "  Processes the program starts inherit them and leave snapshots too; the\n"
    "  summary counts them but reads only the program's own.\n"
    "\n"
    "tessera stats FILE\n"
    "  Prints a saved snapshot as a table: FILE holds one JSON object (from\n"
    "  stats_print:json or ts_stats_print) or JSON lines (the last line counts);\n"
    "  \"-\" reads standard input.  Exits 1 if FILE is not a snapshot.\n"
    "\n"
    "Exit status: the program's for `run`; 2 for a bad command line; 125 when\n"
    "the tool cannot do its part (no library, no temporary directory, or a report\n"
    "or JSON copy it cannot write after a program that succeeded), 126 when\n"
    "PROGRAM cannot be executed, 127 when it is not found.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "tessera: ");
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n%s(tessera --help explains more)\n", usage_text);
  return TOOL_EXIT_USAGE;
}

/* Reads the value of option name from "--name=V" or "--name V". */
static const char *option_value(int argc, char **argv, int *i, const char *name, bool *matched) {
  size_t n = strlen(name);
  const char *a = argv[*i];
  *matched = false;
  if (strncmp(a, name, n) != 0) return NULL;
  if (a[n] == '=') {
    *matched = true;
    return a + n + 1;
  }
  if (a[n] != 0) return NULL;
  *matched = true;
  if (*i + 1 >= argc) return NULL;
  return argv[++*i];
}

static int cmd_run(int argc, char **argv) {
  run_options_t o = {100, NULL, NULL, "tessera", false, NULL};
  int i = 2;
  for (; i < argc; i++) {
    const char *a = argv[i], *v;
    bool m;
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (a[0] != '-' || a[1] == 0) break; /* the program */
    if (strcmp(a, "--fast") == 0) {
      o.fast = true;
    } else if ((v = option_value(argc, argv, &i, "--interval", &m)) || m) {
      char *end;
      unsigned long ms = v ? strtoul(v, &end, 10) : 0;
      if (!v || !*v || *end || v[0] == '-' || ms < 1 || ms > 86400000)
        return usage_error("--interval needs a number of milliseconds from 1 to 86400000, not '%s'", v ? v : "");
      o.interval_ms = (unsigned)ms;
    } else if ((v = option_value(argc, argv, &i, "--report", &m)) || m) {
      if (!v || !*v) return usage_error("--report needs a file name");
      if (!report_kind(v)) return usage_error("--report: '%s' must end in .svg or .html", v);
      o.report = v;
    } else if ((v = option_value(argc, argv, &i, "--json", &m)) || m) {
      if (!v || !*v) return usage_error("--json needs a file name");
      o.json = v;
    } else if ((v = option_value(argc, argv, &i, "--allocator", &m)) || m) {
      if (!v || !*v) return usage_error("--allocator needs tessera, glibc or the path of a library");
      o.allocator = v;
    } else {
      return usage_error("run: unknown option '%s'", a);
    }
  }
  if (i >= argc) return usage_error("run: no program given (tessera run [OPTIONS] -- PROGRAM [ARGS...])");
  o.argv = argv + i;
  return run_command(&o);
}

static int cmd_stats(int argc, char **argv) {
  if (argc != 3) return usage_error("stats takes one file name");
  const char *path = argv[2];
  snap_t s;
  char why[400];
  if (snap_load_last(path, &s, why, sizeof why) != 0) {
    fprintf(stderr, "tessera stats: %s: %s\n", strcmp(path, "-") == 0 ? "standard input" : path, why);
    return 1;
  }
  stats_print_text(stdout, &s);
  snap_clear(&s);
  if (fflush(stdout) != 0) {
    fprintf(stderr, "tessera stats: cannot write the table\n");
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage_error("no command given");
  const char *cmd = argv[1];
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
    fputs(usage_text, stdout);
    fputs("\n", stdout);
    fputs(help_text, stdout);
    return 0;
  }
  if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
    printf("tessera %s\n", TESSERA_VERSION);
    return 0;
  }
  if (strcmp(cmd, "run") == 0) return cmd_run(argc, argv);
  if (strcmp(cmd, "stats") == 0) return cmd_stats(argc, argv);
  return usage_error("unknown command '%s'", cmd);
}
