/* SPDX-License-Identifier: MIT */
/*
 * run.c: `tessera run`.  Finds libtessera.so, makes a temporary directory
 * for the snapshots, forks, and in the child sets LD_PRELOAD and
 * TESSERA_CONF and execs the program.  The parent then loops until the
 * child ends: waitpid(WNOHANG), a sample of the child's VmRSS from
 * /proc/PID/status when one is due, nanosleep until the next.  A SIGCHLD
 * handler (installed without SA_RESTART) cuts the sleep short when the
 * child exits; a sleep lasts at most 50 ms, so that a child that exits
 * between waitpid and nanosleep (when the signal comes too early to cut
 * it) is noticed within 50 ms whatever the interval.  SIGINT, SIGTERM
 * and SIGHUP are passed on to the child, except
 * those the kernel sent to the whole foreground process group (a key
 * typed at the terminal), which the child has received already.
 *
 * After the child: the snapshot files are read (the child's own pid and
 * the others its descendants left), the summary printed, the report and
 * JSON copy written, and the temporary directory removed.
 */
#include "tool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TS_TOOL_BIN_TO_LIB
#define TS_TOOL_BIN_TO_LIB "../lib"
#endif
#ifndef TS_TOOL_MULTIARCH
#define TS_TOOL_MULTIARCH ""
#endif

static volatile sig_atomic_t child_pid; /* 0 until forked, and again once reaped */

static void on_forwarded_signal(int sig, siginfo_t *si, void *ctx) {
  (void)ctx;
  pid_t pid = (pid_t)child_pid;
  if (pid <= 0) return;
  if (si && si->si_code == SI_KERNEL) return; /* the terminal's: the child's process group has it */
  int saved = errno;
  kill(pid, sig);
  errno = saved;
}

static void on_sigchld(int sig) { (void)sig; } /* only to interrupt nanosleep */

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP};

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- finding the library ---- */

static bool readable_file(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, R_OK) == 0;
}

/* path made absolute into out: its directory resolved (no "..", no
 * symbolic links), its file name kept (libtessera.so stays itself rather
 * than the versioned file it links to). */
static bool absolute_path(const char *path, char out[PATH_MAX]) {
  char dir[PATH_MAX];
  const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
  size_t dlen = slash ? (size_t)(slash - path) : 0;
  if (dlen >= sizeof dir) return false;
  if (slash && dlen == 0) dlen = 1; /* "/name" */
  memcpy(dir, slash ? path : ".", slash ? dlen : 1);
  dir[slash ? dlen : 1] = 0;
  char real[PATH_MAX];
  if (!realpath(dir, real)) return false;
  int n = snprintf(out, PATH_MAX, "%s/%s", strcmp(real, "/") == 0 ? "" : real, name);
  return n > 0 && n < PATH_MAX;
}

/* Fills r->lib with the absolute path of libtessera.so; false after
 * printing which paths were tried. */
static bool find_libtessera(run_result_t *r) {
  const char *env = getenv("TESSERA_LIB");
  if (env && *env) {
    if (readable_file(env) && absolute_path(env, r->lib)) return true;
    fprintf(stderr, "tessera: TESSERA_LIB=%s: no such library (not a readable file)\n", env);
    return false;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    fprintf(stderr, "tessera: cannot find this tool's directory (readlink /proc/self/exe: %s); set TESSERA_LIB\n",
            strerror(errno));
    return false;
  }
  exe[n] = 0;
  char *slash = strrchr(exe, '/');
  if (slash) *slash = 0;
  const char *rel[4] = {".", "../lib", NULL, NULL};
  char multiarch[64] = "";
  size_t nrel = 2;
  if (TS_TOOL_MULTIARCH[0]) {
    snprintf(multiarch, sizeof multiarch, "../lib/%s", TS_TOOL_MULTIARCH);
    rel[nrel++] = multiarch;
  }
  if (strcmp(TS_TOOL_BIN_TO_LIB, "../lib") != 0 && strcmp(TS_TOOL_BIN_TO_LIB, multiarch) != 0)
    rel[nrel++] = TS_TOOL_BIN_TO_LIB;
  char tried[4][PATH_MAX + 32];
  for (size_t i = 0; i < nrel; i++) {
    if (strcmp(rel[i], ".") == 0) snprintf(tried[i], sizeof tried[i], "%s/libtessera.so", exe);
    else snprintf(tried[i], sizeof tried[i], "%s/%s/libtessera.so", exe, rel[i]);
    if (readable_file(tried[i]) && absolute_path(tried[i], r->lib)) return true;
  }
  fprintf(stderr, "tessera: cannot find libtessera.so; tried:\n");
  for (size_t i = 0; i < nrel; i++) fprintf(stderr, "  %s\n", tried[i]);
  fprintf(stderr, "set TESSERA_LIB to its path, or use --allocator PATH.so\n");
  return false;
}

/* ---- the temporary directory ---- */

static bool make_tmpdir(char dir[PATH_MAX]) {
  const char *base = getenv("TMPDIR");
  /* the path goes into TESSERA_CONF, where a comma would end it */
  if (!base || !*base || strchr(base, ',') || strlen(base) > 1000) base = "/tmp";
  snprintf(dir, PATH_MAX, "%s/tessera-run.XXXXXX", base);
  if (mkdtemp(dir)) return true;
  fprintf(stderr, "tessera: cannot make a temporary directory in %s: %s\n", base, strerror(errno));
  return false;
}

static void remove_tmpdir(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char path[PATH_MAX + 256];
    while ((e = readdir(d))) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  if (rmdir(dir) != 0) fprintf(stderr, "tessera: cannot remove %s: %s\n", dir, strerror(errno));
}

/* ---- sampling ---- */

/* The child's VmRSS in bytes; false when it has none (exited). */
static bool sample_rss(pid_t pid, uint64_t *out) {
  char path[64], buf[4096];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  size_t n = 0;
  ssize_t got;
  while (n < sizeof buf - 1 && ((got = read(fd, buf + n, sizeof buf - 1 - n)) > 0 || (got < 0 && errno == EINTR)))
    if (got > 0) n += (size_t)got;
  close(fd);
  buf[n] = 0;
  const char *line = strstr(buf, "\nVmRSS:");
  if (!line) return false;
  unsigned long long kb = strtoull(line + 7, NULL, 10);
  *out = (uint64_t)kb * 1024u;
  return true;
}

static bool add_sample(run_result_t *r, size_t *cap, double t, uint64_t rss) {
  if (r->nrss == *cap) {
    size_t ncap = *cap ? *cap * 2 : 256;
    rss_sample_t *s = realloc(r->rss, ncap * sizeof *s);
    if (!s) return false;
    r->rss = s;
    *cap = ncap;
  }
  r->rss[r->nrss++] = (rss_sample_t){t, rss};
  return true;
}

/* ---- the snapshots ---- */

/* Reads every ts.PID.jsonl of dir: the child's into r->main, the rest
 * counted in r->others. */
static void collect_snapshots(run_result_t *r, const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    unsigned long long pid;
    int used = 0;
    if (sscanf(e->d_name, "ts.%llu.jsonl%n", &pid, &used) != 1 || e->d_name[used] != 0) continue;
    char path[PATH_MAX + 256], why[256];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if ((pid_t)pid == r->pid) {
      if (snap_series_load(path, &r->main, why, sizeof why) == 0) r->has_main = r->main.count > 0 || r->main.bad_lines;
      else fprintf(stderr, "tessera: %s: %s\n", path, why);
      continue;
    }
    snap_series_t other;
    if (snap_series_load(path, &other, why, sizeof why) != 0) continue;
    r->others++;
    uint64_t peak = 0;
    for (size_t i = 0; i < other.count; i++)
      if (other.points[i].requested_peak_bytes > peak) peak = other.points[i].requested_peak_bytes;
    if (r->others == 1 || peak > r->other_max_peak) r->other_max_peak = peak, r->other_max_pid = pid;
    snap_series_free(&other);
  }
  closedir(d);
}

static bool copy_file(const char *from, const char *to) {
  size_t len = 0;
  char why[256];
  char *text = from ? snap_read_text(from, &len, why, sizeof why) : NULL;
  if (from && !text) {
    fprintf(stderr, "tessera: --json: %s: %s\n", from, why);
    return false;
  }
  FILE *f = fopen(to, "w");
  bool ok = f && fwrite(text ? text : "", 1, len, f) == len;
  if (f && fclose(f) != 0) ok = false;
  if (!ok) fprintf(stderr, "tessera: --json: cannot write %s: %s\n", to, strerror(errno));
  free(text);
  return ok;
}

/* ---- the run ---- */

/* The child: environment, then exec; failures go to the parent through
 * err_fd (close-on-exec, so a successful exec closes it unwritten). */
static void child_exec(const run_result_t *r, const char *preload, const char *conf, int err_fd,
                       const sigset_t *mask) {
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) signal(forwarded[i], SIG_DFL);
  signal(SIGCHLD, SIG_DFL);
  sigprocmask(SIG_SETMASK, mask, NULL);
  if ((preload && setenv("LD_PRELOAD", preload, 1) != 0) || (conf && setenv("TESSERA_CONF", conf, 1) != 0)) {
    int e = errno;
    (void)!write(err_fd, &e, sizeof e);
    _exit(TOOL_EXIT_FAILED);
  }
  execvp(r->opt->argv[0], r->opt->argv);
  int e = errno;
  (void)!write(err_fd, &e, sizeof e);
  _exit(e == ENOENT ? TOOL_EXIT_NOT_FOUND : TOOL_EXIT_CANNOT_RUN);
}

/* Builds LD_PRELOAD and TESSERA_CONF for the child (NULL: leave as is). */
static bool child_env(const run_result_t *r, const char *dir, char **preload, char **conf) {
  *preload = NULL, *conf = NULL;
  if (r->kind == ALLOC_GLIBC) return true;
  const char *old = getenv("LD_PRELOAD");
  size_t n = strlen(r->lib) + (old ? strlen(old) : 0) + 2;
  if (!(*preload = malloc(n))) return false;
  snprintf(*preload, n, "%s%s%s", r->lib, old && *old ? ":" : "", old && *old ? old : "");
  if (r->kind != ALLOC_TESSERA) return true;
  const char *user = getenv("TESSERA_CONF");
  n = strlen(dir) + (user ? strlen(user) : 0) + 160;
  if (!(*conf = malloc(n))) return false;
  snprintf(*conf, n, "%sstats_interval_ms:%u,stats_print:json,stats_file:%s/ts.%%p.jsonl%s%s",
           r->opt->fast ? "" : "stats_exact:true,", r->opt->interval_ms, dir, user && *user ? "," : "",
           user && *user ? user : "");
  if (user && (strstr(user, "stats_file") || strstr(user, "stats_print")))
    fprintf(stderr, "tessera: note: your TESSERA_CONF sets stats_file or stats_print, which override the tool's: "
                    "the summary may find no snapshots\n");
  return true;
}

/* Forks and execs the program, samples it until it ends; returns false
 * (after a message) when it could not be started, with r->exit_code set. */
static bool supervise(run_result_t *r, const char *preload, const char *conf) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_forwarded_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaction(forwarded[i], &sa, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld; /* no SA_RESTART: it must interrupt nanosleep */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, NULL);

  int errpipe[2];
  if (pipe2(errpipe, O_CLOEXEC) != 0) {
    fprintf(stderr, "tessera: pipe: %s\n", strerror(errno));
    r->exit_code = TOOL_EXIT_FAILED;
    return false;
  }
  sigset_t block, old;
  sigemptyset(&block);
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) sigaddset(&block, forwarded[i]);
  sigprocmask(SIG_BLOCK, &block, &old);
  fflush(NULL);
  double t0 = mono_now();
  r->start_wall_ms = wall_ms();
  pid_t pid = fork();
  if (pid == 0) child_exec(r, preload, conf, errpipe[1], &old);
  int fork_errno = errno;
  if (pid > 0) child_pid = pid;
  sigprocmask(SIG_SETMASK, &old, NULL);
  close(errpipe[1]);
  if (pid < 0) {
    close(errpipe[0]);
    fprintf(stderr, "tessera: fork: %s\n", strerror(fork_errno));
    r->exit_code = TOOL_EXIT_FAILED;
    return false;
  }
  r->pid = pid;

  /* Wait for the exec: EOF means it happened. */
  int child_errno = 0;
  ssize_t got;
  while ((got = read(errpipe[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
  }
  close(errpipe[0]);
  int status = 0;
  if (got == (ssize_t)sizeof child_errno) {
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    child_pid = 0;
    fprintf(stderr, "tessera: cannot run %s: %s\n", r->opt->argv[0], strerror(child_errno));
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : TOOL_EXIT_FAILED;
    return false;
  }

  size_t cap = 0;
  double interval = r->opt->interval_ms / 1000.0, next = mono_now();
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) {
      fprintf(stderr, "tessera: waitpid: %s\n", strerror(errno));
      status = 0;
      break;
    }
    double now = mono_now();
    if (now >= next) {
      uint64_t rss;
      if (sample_rss(pid, &rss) && !add_sample(r, &cap, now - t0, rss)) {
        fprintf(stderr, "tessera: out of memory for RSS samples; sampling stops\n");
        next = 1e300;
      }
      next += interval;
      if (next <= now) next = now + interval;
    }
    double wait = next - now;
    if (wait > 0.05) wait = 0.05; /* bounds the delay of the race above */
    struct timespec ts = {(time_t)wait, (long)((wait - (double)(time_t)wait) * 1e9)};
    nanosleep(&ts, NULL); /* SIGCHLD or a forwarded signal cuts it short */
  }
  child_pid = 0;
  r->duration_s = mono_now() - t0;
  if (WIFSIGNALED(status)) {
    r->signal = WTERMSIG(status);
    r->exit_code = 128 + r->signal;
  } else {
    r->exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : TOOL_EXIT_FAILED;
  }
  return true;
}

int run_command(const run_options_t *o) {
  run_result_t *r = calloc(1, sizeof *r);
  if (!r) {
    fprintf(stderr, "tessera: out of memory\n");
    return TOOL_EXIT_FAILED;
  }
  r->opt = o;
  if (strcmp(o->allocator, "tessera") == 0) {
    r->kind = ALLOC_TESSERA;
    if (!find_libtessera(r)) {
      free(r);
      return TOOL_EXIT_FAILED;
    }
  } else if (strcmp(o->allocator, "glibc") == 0) {
    r->kind = ALLOC_GLIBC;
  } else {
    r->kind = ALLOC_OTHER;
    if (!readable_file(o->allocator) || !absolute_path(o->allocator, r->lib)) {
      fprintf(stderr, "tessera: --allocator %s: no such library (give tessera, glibc or the path of a .so)\n",
              o->allocator);
      free(r);
      return TOOL_EXIT_FAILED;
    }
  }

  char dir[PATH_MAX] = "";
  if (r->kind == ALLOC_TESSERA && !make_tmpdir(dir)) {
    free(r);
    return TOOL_EXIT_FAILED;
  }
  char *preload, *conf;
  int code;
  if (!child_env(r, dir, &preload, &conf)) {
    fprintf(stderr, "tessera: out of memory\n");
    code = TOOL_EXIT_FAILED;
  } else if (!supervise(r, preload, conf)) {
    code = r->exit_code;
  } else {
    code = r->exit_code;
    if (r->kind == ALLOC_TESSERA) collect_snapshots(r, dir);
    summary_print_text(stderr, r);
    if (o->json && r->kind == ALLOC_TESSERA) {
      char path[PATH_MAX + 64];
      snprintf(path, sizeof path, "%s/ts.%d.jsonl", dir, (int)r->pid);
      if (!r->has_main) fprintf(stderr, "tessera: --json: the program left no snapshots; %s is empty\n", o->json);
      if (!copy_file(r->has_main ? path : NULL, o->json) && code == 0) code = TOOL_EXIT_FAILED;
    } else if (o->json) {
      fprintf(stderr, "tessera: --json: no snapshots under --allocator %s (only tessera writes them)\n", o->allocator);
    }
    char why[512];
    if (o->report && report_write(o->report, r, why, sizeof why) != 0) {
      fprintf(stderr, "tessera: --report %s: %s\n", o->report, why);
      if (code == 0) code = TOOL_EXIT_FAILED;
    }
  }
  if (dir[0]) remove_tmpdir(dir);
  free(preload);
  free(conf);
  free(r->rss);
  snap_series_free(&r->main);
  free(r);
  return code;
}
