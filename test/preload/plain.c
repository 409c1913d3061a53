/* SPDX-License-Identifier: MIT */
/*
 * plain.c: an ordinary libc program, not linked with tessera, that
 * preload/plain runs with and without LD_PRELOAD=libtessera.so and whose
 * standard output must not change.  It uses the allocator the way programs
 * do: strdup, stdio (fopen, getline, open_memstream), qsort, asprintf,
 * realloc-grown arrays, and threads; it allocates in a constructor before
 * main, and dlopens a library (TS_TLSLIB) whose thread-local storage the
 * dynamic loader allocates with malloc from inside its TLS set-up.  On
 * standard error it names the library that provides malloc, for the script
 * to check.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t next(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 17;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint64_t fnv(const void *p, size_t n, uint64_t h) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}

/* A list of random words, sorted, hashed. */
struct job {
  int id;
  size_t words;
  uint64_t hash;
  size_t bytes;
};

static void *job_run(void *arg) {
  struct job *j = arg;
  uint64_t s = (uint64_t)j->id * 7919 + 1;
  size_t n = 0, cap = 4;
  char **v = malloc(cap * sizeof *v);
  if (!v) return NULL;
  for (int k = 0; k < 40000; k++) {
    char buf[64];
    int len = 1 + (int)(next(&s) % 40);
    for (int c = 0; c < len; c++) buf[c] = (char)('a' + next(&s) % 26);
    buf[len] = 0;
    if (n == cap) {
      cap *= 2;
      char **nv = realloc(v, cap * sizeof *v);
      if (!nv) return NULL;
      v = nv;
    }
    v[n++] = strdup(buf);
    /* drop some again */
    if (next(&s) % 4 == 0) {
      size_t victim = (size_t)(next(&s) % n);
      free(v[victim]);
      v[victim] = v[--n];
    }
  }
  qsort(v, n, sizeof *v, cmp_str);
  uint64_t h = 0xcbf29ce484222325ull;
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) {
    size_t l = strlen(v[i]);
    h = fnv(v[i], l + 1, h);
    bytes += l;
    free(v[i]);
  }
  free(v);
  j->words = n;
  j->hash = h;
  j->bytes = bytes;
  return NULL;
}

/* ---- before main ---- */
static char *early[64];
static uint64_t early_hash;

__attribute__((constructor)) static void allocate_before_main(void) {
  for (int i = 0; i < 64; i++) {
    size_t n = 1 + (size_t)i * 97;
    early[i] = malloc(n);
    if (!early[i]) abort();
    memset(early[i], 'a' + i % 26, n);
    early_hash = fnv(early[i], n, early_hash ? early_hash : 1469598103934665603ull);
  }
}

/* ---- dynamic TLS allocated by the loader ---- */
typedef unsigned (*tls_touch_fn)(unsigned);
static tls_touch_fn tls_touch;

static void *tls_thread(void *arg) {
  uintptr_t id = (uintptr_t)arg;
  unsigned h = 0;
  for (unsigned i = 0; i < 100; i++) h ^= tls_touch((unsigned)id + i);
  return (void *)(uintptr_t)h;
}

static int dynamic_tls(void) {
  const char *path = getenv("TS_TLSLIB");
  if (!path) {
    printf("dynamic tls: skipped\n");
    return 0;
  }
  void *lib = dlopen(path, RTLD_NOW);
  if (!lib) return fprintf(stderr, "dlopen %s: %s\n", path, dlerror()), 1;
  tls_touch = (tls_touch_fn)(uintptr_t)dlsym(lib, "tlslib_touch");
  if (!tls_touch) return 1;
  unsigned total = 0;
  for (int round = 0; round < 20; round++) {
    pthread_t t[4];
    for (uintptr_t i = 0; i < 4; i++) pthread_create(&t[i], NULL, tls_thread, (void *)(i + (uintptr_t)round * 4));
    for (int i = 0; i < 4; i++) {
      void *r;
      pthread_join(t[i], &r);
      total += (unsigned)(uintptr_t)r;
    }
  }
  printf("dynamic tls: %u\n", total);
  dlclose(lib);
  return 0;
}

int main(void) {
  printf("before main: hash %016llx\n", (unsigned long long)early_hash);
  for (int i = 0; i < 64; i++) free(early[i]);
  if (dynamic_tls() != 0) return 4;
  Dl_info info;
  void *fn = dlsym(RTLD_DEFAULT, "malloc");
  if (fn && dladdr(fn, &info) && info.dli_fname) fprintf(stderr, "malloc from: %s\n", info.dli_fname);

  /* threads */
  enum { NJ = 8 };
  struct job jobs[NJ];
  pthread_t t[NJ];
  for (int i = 0; i < NJ; i++) {
    jobs[i] = (struct job){.id = i};
    if (pthread_create(&t[i], NULL, job_run, &jobs[i]) != 0) return 2;
  }
  for (int i = 0; i < NJ; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < NJ; i++)
    printf("job %d: %zu words, %zu bytes, hash %016llx\n", jobs[i].id, jobs[i].words, jobs[i].bytes,
           (unsigned long long)jobs[i].hash);

  /* a file written with stdio and read back with getline */
  char path[] = "/tmp/tessera-plain-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return 3;
  close(fd);
  FILE *f = fopen(path, "w");
  if (!f) return 3;
  uint64_t s = 42;
  for (int i = 0; i < 20000; i++) {
    int len = (int)(next(&s) % 300);
    fprintf(f, "%d ", i);
    for (int c = 0; c < len; c++) fputc('A' + (int)(next(&s) % 26), f);
    fputc('\n', f);
  }
  fclose(f);
  f = fopen(path, "r");
  if (!f) return 3;
  char *line = NULL;
  size_t linecap = 0;
  ssize_t got;
  size_t lines = 0, longest = 0;
  uint64_t h = 0xcbf29ce484222325ull;
  char **keep = NULL;
  size_t nkeep = 0;
  while ((got = getline(&line, &linecap, f)) > 0) {
    lines++;
    if ((size_t)got > longest) longest = (size_t)got;
    h = fnv(line, (size_t)got, h);
    if (lines % 7 == 0) {
      char **nk = realloc(keep, (nkeep + 1) * sizeof *keep);
      if (!nk) return 4;
      keep = nk;
      keep[nkeep++] = strndup(line, (size_t)got > 20 ? 20 : (size_t)got);
    }
  }
  free(line);
  fclose(f);
  unlink(path);
  printf("file: %zu lines, longest %zu, hash %016llx\n", lines, longest, (unsigned long long)h);
  qsort(keep, nkeep, sizeof *keep, cmp_str);
  printf("kept %zu, first %.*s, last %.*s\n", nkeep, (int)strcspn(keep[0], "\n"), keep[0],
         (int)strcspn(keep[nkeep - 1], "\n"), keep[nkeep - 1]);
  for (size_t i = 0; i < nkeep; i++) free(keep[i]);
  free(keep);

  /* asprintf and open_memstream */
  char *msg = NULL;
  size_t msglen = 0;
  FILE *ms = open_memstream(&msg, &msglen);
  if (!ms) return 5;
  for (int i = 0; i < 5000; i++) {
    char *piece = NULL;
    if (asprintf(&piece, "<%d:%x:%s>", i, i * 2654435761u, i % 3 ? "odd" : "even") < 0) return 5;
    fputs(piece, ms);
    free(piece);
  }
  fclose(ms);
  printf("memstream: %zu bytes, hash %016llx\n", msglen, (unsigned long long)fnv(msg, msglen, 0xcbf29ce484222325ull));
  free(msg);

  /* calloc, large blocks, and aligned memory */
  size_t sizes[] = {1, 1000, 100000, 5u << 20};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    unsigned char *z = calloc(sizes[i], 1);
    if (!z) return 6;
    size_t nz = 0;
    for (size_t k = 0; k < sizes[i]; k++) nz += z[k] != 0;
    void *a = NULL;
    if (posix_memalign(&a, 4096, sizes[i]) != 0) return 6;
    printf("calloc %zu: %zu nonzero; posix_memalign aligned %d\n", sizes[i], nz, (int)((uintptr_t)a % 4096 == 0));
    free(a);
    free(z);
  }
  printf("done\n");
  return 0;
}
