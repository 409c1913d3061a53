/* frag.h: helpers shared by the fragmentation / memory-return benchmarks
 * (frag_*.c, run by bench/frag.sh).  Header only; builds on bench.h.
 *
 * Each program keeps an exact count of its live bytes (the sum of the sizes
 * it asked malloc/realloc for and has not freed yet), reports at the end of
 * every named phase one line
 *
 *   phase=NAME live_bytes=N rss_bytes=N pss_bytes=N peak_rss_bytes=N meta_bytes=N t=SECONDS
 *
 * (a program may add key=value fields before t=), and at exit the samples a
 * background thread took about every 50 ms, then a closing line naming the
 * allocator found mapped in the process:
 *
 *   sample t=SECONDS rss_bytes=N live_bytes=N meta_bytes=N
 *   done prog=NAME alloc=ALLOCATOR seconds=N samples=N
 *
 * rss_bytes is resident pages * page size from /proc/self/statm, pss_bytes
 * Pss from /proc/self/smaps_rollup (the same but a physical page counts
 * once however many addresses show it), the peak is VmHWM from
 * /proc/self/status, t counts from frag_begin().  meta_bytes is the
 * program's own bookkeeping (arrays of block pointers and sizes): it is
 * mmapped directly, never taken from the allocator under test, populated up
 * front and so wholly resident; frag.sh subtracts it from rss_bytes when it
 * computes RSS/live.
 *
 * Nothing here calls malloc after frag_begin() (the sampler, the phase lines
 * and the /proc readers use only system calls, snprintf and static buffers),
 * so an idle phase really makes no allocator calls.  The exception is
 * frag_end(), which runs when the workload is over.
 *
 * Includers define _GNU_SOURCE first. */
#ifndef TS_BENCH_FRAG_H
#define TS_BENCH_FRAG_H

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"
#include "tessera.h" /* ts_stats_t only: tessera is found at run time, if preloaded */

/* ---- FRAG_SCALE: multiplies every byte volume (default 1) ---- */

static inline double frag_scale(void)
{
    const char *s = getenv("FRAG_SCALE");
    if (s == NULL || *s == '\0')
        return 1.0;
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || !(v > 0.0) || v > 64.0) {
        fprintf(stderr, "frag: FRAG_SCALE must be a number in (0, 64], got '%s'\n", s);
        exit(2);
    }
    return v;
}

static inline uint64_t frag_scaled(uint64_t base)
{
    double v = (double)base * frag_scale();
    return v < 1.0 ? 1 : (uint64_t)v;
}

/* ---- sizes ---- */

/* Uniform in [0, 1). */
static inline double frag_unit(bench_rng *r)
{
    return (double)(bench_rng_next(r) >> 11) * 0x1p-53;
}

/* Log-uniform in [lo, hi]: every doubling of size is equally likely. */
static inline size_t frag_log_uniform(bench_rng *r, size_t lo, size_t hi)
{
    double v = (double)lo * exp(frag_unit(r) * log((double)hi / (double)lo));
    size_t s = (size_t)v;
    return s < lo ? lo : s > hi ? hi : s;
}

/* ---- exact live-byte count: one counter per thread ----
 * Only the owning thread writes its slot (a relaxed load and store, no locked
 * instruction); a block freed by another thread than the one that allocated
 * it is subtracted from the freeing thread's slot, so a slot can go negative.
 * The sum is exact whenever no thread is between malloc and the update. */

#define FRAG_MAX_THREADS 16

struct frag_counter {
    alignas(64) _Atomic int64_t v;
};

static struct frag_counter frag_live_slots[FRAG_MAX_THREADS];

static inline void frag_live_add(int slot, int64_t delta)
{
    _Atomic int64_t *c = &frag_live_slots[slot].v;
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + delta,
                          memory_order_relaxed);
}

static inline int64_t frag_live_total(void)
{
    int64_t sum = 0;
    for (int i = 0; i < FRAG_MAX_THREADS; i++)
        sum += atomic_load_explicit(&frag_live_slots[i].v, memory_order_relaxed);
    return sum;
}

/* ---- bookkeeping memory, outside the allocator under test ---- */

static _Atomic int64_t frag_meta_total;

static inline size_t frag_page_round(size_t bytes)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (bytes + page - 1) / page * page;
}

/* Zeroed, populated (hence resident) memory for the program's own tables. */
static inline void *frag_meta_alloc(size_t bytes)
{
    size_t len = frag_page_round(bytes ? bytes : 1);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    if (p == MAP_FAILED)
        bench_fail("mmap(%zu) for bookkeeping failed", len);
    atomic_fetch_add(&frag_meta_total, (int64_t)len);
    return p;
}

static inline void frag_meta_free(void *p, size_t bytes)
{
    size_t len = frag_page_round(bytes ? bytes : 1);
    munmap(p, len);
    atomic_fetch_sub(&frag_meta_total, (int64_t)len);
}

/* ---- /proc readers (no stdio, no malloc) ---- */

/* Reads a small /proc file into buf (NUL-terminated); returns its length or -1. */
static inline ssize_t frag_read_proc(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return (ssize_t)len;
}

static long frag_page_size;

/* Resident set size in bytes: second field of /proc/self/statm, in pages. */
static inline int64_t frag_rss_bytes(void)
{
    char buf[128];
    if (frag_read_proc("/proc/self/statm", buf, sizeof buf) <= 0)
        return -1;
    char *p = buf;
    strtoll(p, &p, 10); /* size */
    long long pages = strtoll(p, NULL, 10);
    return (int64_t)pages * frag_page_size;
}

/* Peak resident set size in bytes: VmHWM (kB) from /proc/self/status. */
static inline int64_t frag_peak_rss_bytes(void)
{
    char buf[8192];
    if (frag_read_proc("/proc/self/status", buf, sizeof buf) <= 0)
        return -1;
    const char *line = strstr(buf, "\nVmHWM:");
    if (line == NULL)
        return -1;
    return (int64_t)strtoll(line + 7, NULL, 10) * 1024;
}

/* A field ("\nPss:", "\nRss:") of /proc/self/smaps_rollup in bytes, -1 if
 * unreadable. */
static inline int64_t frag_smaps_rollup_bytes(const char *field)
{
    char buf[4096];
    if (frag_read_proc("/proc/self/smaps_rollup", buf, sizeof buf) <= 0)
        return -1;
    const char *line = strstr(buf, field);
    if (line == NULL)
        return -1;
    return (int64_t)strtoll(line + strlen(field), NULL, 10) * 1024;
}

/* Proportional set size: unlike RSS it counts a physical page once however
 * many addresses of the process show it (tessera's meshing maps one page at
 * several). */
static inline int64_t frag_pss_bytes(void)
{
    return frag_smaps_rollup_bytes("\nPss:");
}

static inline int64_t frag_smaps_rss_bytes(void)
{
    return frag_smaps_rollup_bytes("\nRss:");
}

/* ---- clock and output ---- */

static double frag_t0;
static const char *frag_prog;

static inline double frag_elapsed(void)
{
    return bench_now() - frag_t0;
}

static inline void frag_write_all(const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(STDOUT_FILENO, s, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        s += n;
        len -= (size_t)n;
    }
}

/* printf-like, straight to file descriptor 1 through a stack buffer: stdio
 * would malloc its buffer on first use. */
__attribute__((format(printf, 1, 2))) static inline void frag_say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    frag_write_all(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

/* Sleeps for the given time with no allocator calls. */
static inline void frag_idle(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- sampler thread ---- */

#define FRAG_SAMPLE_NS 50000000L /* 50 ms */
#define FRAG_MAX_SAMPLES 8192    /* 409 s at 50 ms; later samples are dropped */

struct frag_sample {
    double t;
    int64_t rss, live, meta;
};

static struct frag_sample frag_samples[FRAG_MAX_SAMPLES];
static size_t frag_n_samples; /* written by the sampler, read after join */
static atomic_int frag_sampler_stop;
static pthread_t frag_sampler_tid;

static void *frag_sampler_main(void *arg)
{
    (void)arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    while (!atomic_load_explicit(&frag_sampler_stop, memory_order_acquire)) {
        if (frag_n_samples < FRAG_MAX_SAMPLES) {
            struct frag_sample *s = &frag_samples[frag_n_samples];
            s->t = frag_elapsed();
            s->rss = frag_rss_bytes();
            s->live = frag_live_total();
            s->meta = atomic_load(&frag_meta_total);
            frag_n_samples++;
        }
        next.tv_nsec += FRAG_SAMPLE_NS;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
    }
    return NULL;
}

/* ---- the ledger's reconciliation (tessera only, FRAG_RECONCILE=1) ----
 * With FRAG_RECONCILE=1 in the environment and tessera preloaded (found
 * with dlsym: the programs link no allocator) the program records
 * tessera's committed bytes and the kernel's Rss at frag_begin(), and at
 * the end of every phase calls ts_purge() and compares what the ledger
 * says was committed since then with what the kernel's Rss grew by, less
 * the program's own bookkeeping (meta_bytes).  The purges change what
 * later phases measure, so frag.sh makes these runs apart from the
 * comparison runs.
 *
 *   reconcile phase=NAME committed_bytes=N ledger_delta_bytes=N
 *             kernel_delta_bytes=N resident_bytes=N tolerance_bytes=N ok=0|1
 *
 * The tolerance is the one docs/STATS.md states: 2% of committed + 1 MiB.
 *
 * With FRAG_LEDGER set (any value) and tessera preloaded, every phase also
 * prints tessera's ledger as text on stderr (ts_stats_print), to see where
 * a phase's memory sits: by cause, by size class, by arena. */
typedef int (*frag_stats_get_fn)(ts_stats_t *);
typedef size_t (*frag_purge_fn)(void);
static frag_stats_get_fn frag_stats_get;
static frag_purge_fn frag_purge;
static int64_t frag_rss_at_begin, frag_committed_at_begin;

static inline void frag_reconcile_begin(void)
{
    const char *on = getenv("FRAG_RECONCILE");
    if (!on || strcmp(on, "1") != 0)
        return;
    frag_stats_get = (frag_stats_get_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "ts_stats_get");
    frag_purge = (frag_purge_fn)(uintptr_t)dlsym(RTLD_DEFAULT, "ts_purge");
    if (!frag_stats_get || !frag_purge)
        return;
    static ts_stats_t st;
    frag_purge();
    frag_stats_get(&st);
    frag_committed_at_begin = (int64_t)st.committed_bytes;
    frag_rss_at_begin = frag_smaps_rss_bytes();
}

/* At the end of every phase, with FRAG_RECONCILE=1 (it purges). */
static inline void frag_reconcile(const char *phase)
{
    if (!frag_stats_get || !frag_purge)
        return;
    static ts_stats_t st;
    frag_purge();
    frag_stats_get(&st);
    int64_t kernel = frag_smaps_rss_bytes() - (int64_t)atomic_load(&frag_meta_total) - frag_rss_at_begin;
    int64_t ledger = (int64_t)st.committed_bytes - frag_committed_at_begin;
    int64_t diff = kernel > ledger ? kernel - ledger : ledger - kernel;
    int64_t tol = (int64_t)st.committed_bytes / 50 + (1 << 20);
    frag_say("reconcile phase=%s committed_bytes=%lld ledger_delta_bytes=%lld kernel_delta_bytes=%lld "
             "resident_bytes=%lld tolerance_bytes=%lld ok=%d\n",
             phase, (long long)st.committed_bytes, (long long)ledger, (long long)kernel, (long long)st.resident_bytes,
             (long long)tol, diff <= tol);
}

/* ---- program structure ---- */

/* Call first: starts the clock and the sampler, prints a header line. */
static inline void frag_begin(const char *prog)
{
    frag_prog = prog;
    frag_page_size = sysconf(_SC_PAGESIZE);
    frag_reconcile_begin();
    frag_t0 = bench_now();
    atomic_init(&frag_sampler_stop, 0);
    if (pthread_create(&frag_sampler_tid, NULL, frag_sampler_main, NULL) != 0)
        bench_fail("%s: cannot start the sampler thread", prog);
    frag_say("frag prog=%s scale=%g page_bytes=%ld\n", prog, frag_scale(), frag_page_size);
}

/* Reports the end of a phase.  Call when no thread is allocating, so that
 * live_bytes is exact.  extra ("" or " key=value ...") goes before t=. */
static inline void frag_phase_with(const char *name, const char *extra)
{
    int64_t rss = frag_rss_bytes();
    int64_t peak = frag_peak_rss_bytes();
    int64_t pss = frag_pss_bytes();
    frag_say("phase=%s live_bytes=%lld rss_bytes=%lld pss_bytes=%lld peak_rss_bytes=%lld meta_bytes=%lld%s t=%.3f\n",
             name, (long long)frag_live_total(), (long long)rss, (long long)pss, (long long)peak,
             (long long)atomic_load(&frag_meta_total), extra, frag_elapsed());
    frag_reconcile(name);
    if (getenv("FRAG_LEDGER")) {
        void (*print)(FILE *, int) = (void (*)(FILE *, int))(uintptr_t)dlsym(RTLD_DEFAULT, "ts_stats_print");
        if (print)
            print(stderr, TS_STATS_TEXT);
    }
}

static inline void frag_phase(const char *name)
{
    frag_phase_with(name, "");
}

/* Call last: stops the sampler, dumps the samples and a closing line that
 * names the allocator actually mapped (so a failed LD_PRELOAD shows). */
static inline void frag_end(void)
{
    double seconds = frag_elapsed();
    if (frag_live_total() != 0)
        bench_fail("%s: %lld bytes still counted live at the end", frag_prog,
                   (long long)frag_live_total());
    atomic_store_explicit(&frag_sampler_stop, 1, memory_order_release);
    pthread_join(frag_sampler_tid, NULL);
    static char out[1 << 16];
    size_t used = 0;
    for (size_t i = 0; i < frag_n_samples; i++) {
        const struct frag_sample *s = &frag_samples[i];
        if (used + 160 > sizeof out) {
            frag_write_all(out, used);
            used = 0;
        }
        int n = snprintf(out + used, sizeof out - used,
                         "sample t=%.3f rss_bytes=%lld live_bytes=%lld meta_bytes=%lld\n", s->t,
                         (long long)s->rss, (long long)s->live, (long long)s->meta);
        if (n > 0)
            used += (size_t)n;
    }
    frag_write_all(out, used);
    frag_say("done prog=%s alloc=%s seconds=%.3f samples=%zu\n", frag_prog, bench_allocator_name(),
             seconds, frag_n_samples);
}

/* ---- block stamps ----
 * A block of at least FRAG_MIN_BLOCK bytes gets a 16-byte header (64-bit tag,
 * 32-bit size, 32-bit check of both), a check word at every 4 KiB from its
 * start (so every page it spans is written, as a program filling it would)
 * and a check byte at its very end.  frag_verify reads all of them back. */

#define FRAG_MIN_BLOCK 16

static inline uint64_t frag_mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7FB5D329728EA185ull;
    x ^= x >> 27;
    x *= 0x81DADEF4BC2DD44Dull;
    return x ^ (x >> 33);
}

static inline void frag_stamp(void *p, size_t size, uint64_t tag)
{
    unsigned char *b = p;
    uint32_t sz = (uint32_t)size;
    uint32_t hc = (uint32_t)frag_mix(tag ^ ((uint64_t)sz << 20));
    memcpy(b, &tag, 8);
    memcpy(b + 8, &sz, 4);
    memcpy(b + 12, &hc, 4);
    for (size_t off = 4096; off + 8 < size; off += 4096) {
        uint64_t w = frag_mix(tag + off);
        memcpy(b + off, &w, 8);
    }
    if (size > 16)
        b[size - 1] = (unsigned char)(hc >> 8);
}

/* Reads a stamp without knowing it: 1 if header, page words and tail byte are
 * all consistent, with *tag and *size filled in. */
static inline int frag_read_stamp(const void *p, uint64_t *tag, size_t *size)
{
    const unsigned char *b = p;
    uint32_t sz, hc;
    memcpy(tag, b, 8);
    memcpy(&sz, b + 8, 4);
    memcpy(&hc, b + 12, 4);
    *size = sz;
    if (sz < FRAG_MIN_BLOCK || hc != (uint32_t)frag_mix(*tag ^ ((uint64_t)sz << 20)))
        return 0;
    for (size_t off = 4096; off + 8 < sz; off += 4096) {
        uint64_t w;
        memcpy(&w, b + off, 8);
        if (w != frag_mix(*tag + off))
            return 0;
    }
    return sz == 16 || b[sz - 1] == (unsigned char)(hc >> 8);
}

static inline void frag_verify(const void *p, size_t size, uint64_t tag, const char *what)
{
    uint64_t t;
    size_t s;
    if (!frag_read_stamp(p, &t, &s) || t != tag || s != size)
        bench_fail("%s: block %p corrupted (want tag %llx size %zu, found tag %llx size %zu)",
                   what, p, (unsigned long long)tag, size, (unsigned long long)t, s);
}

static inline void *frag_xmalloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL)
        bench_fail("%s: malloc(%zu) returned NULL", frag_prog, size);
    return p;
}

/* ---- tables of blocks ----
 * One entry per live block, in bookkeeping memory (frag_meta_alloc).  The
 * block's tag is its table's salt in the top 32 bits and a serial number
 * unique within the program run in the low 32. */

struct frag_block {
    void *p;
    uint32_t size;
    uint32_t serial;
};

static inline uint64_t frag_block_tag(uint32_t salt, const struct frag_block *b)
{
    return ((uint64_t)salt << 32) | b->serial;
}

/* mallocs and stamps a block of the given size into *b, counting it live in
 * the given counter slot. */
static inline void frag_block_new(struct frag_block *b, size_t size, uint32_t salt,
                                  uint32_t serial, int slot)
{
    b->p = frag_xmalloc(size);
    b->size = (uint32_t)size;
    b->serial = serial;
    frag_stamp(b->p, size, frag_block_tag(salt, b));
    frag_live_add(slot, (int64_t)size);
}

/* Checks *b's contents: reads every byte, as a program using it would. */
static inline void frag_block_check(const struct frag_block *b, uint32_t salt)
{
    frag_verify(b->p, b->size, frag_block_tag(salt, b), frag_prog);
}

/* Checks and frees *b, uncounting it. */
static inline void frag_block_free(struct frag_block *b, uint32_t salt, int slot)
{
    frag_verify(b->p, b->size, frag_block_tag(salt, b), frag_prog);
    free(b->p);
    frag_live_add(slot, -(int64_t)b->size);
    b->p = NULL;
}

#endif
