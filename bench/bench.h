/* bench.h: helpers shared by the tessera benchmark programs (header only).
 *
 * A monotonic clock, a fixed-seed PRNG, the BENCH_SCALE knob, stamping and
 * checking of heap blocks, thread pinning, and the one-line machine-readable
 * report.  The programs call plain malloc/free; the allocator under test is
 * chosen with LD_PRELOAD by bench/run.sh and bench/demo.sh.  Includers define
 * _GNU_SOURCE first (for clock_gettime and sched_setaffinity). */
#ifndef TS_BENCH_H
#define TS_BENCH_H

#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- clock ---- */

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- PRNG: splitmix64, small and good enough for picking sizes ---- */

typedef struct {
    uint64_t state;
} bench_rng;

static inline bench_rng bench_rng_seed(uint64_t seed)
{
    bench_rng r = { seed };
    return r;
}

static inline uint64_t bench_rng_next(bench_rng *r)
{
    uint64_t z = (r->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, n), n < 2^32 (multiply-shift, no division). */
static inline uint32_t bench_rng_below(bench_rng *r, uint32_t n)
{
    return (uint32_t)(((bench_rng_next(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform in [lo, hi], both inclusive. */
static inline size_t bench_rng_range(bench_rng *r, size_t lo, size_t hi)
{
    return lo + bench_rng_below(r, (uint32_t)(hi - lo + 1));
}

/* ---- failure ---- */

#define bench_fail(...)                                                   \
    do {                                                                  \
        fprintf(stderr, "bench: FAILED: " __VA_ARGS__);                   \
        fputc('\n', stderr);                                              \
        exit(1);                                                          \
    } while (0)

/* ---- BENCH_SCALE: multiplies every iteration count (default 1) ---- */

static inline double bench_scale(void)
{
    const char *s = getenv("BENCH_SCALE");
    if (s == NULL || *s == '\0')
        return 1.0;
    char *end;
    double v = strtod(s, &end);
    if (*end != '\0' || !(v > 0.0) || v > 1e6) {
        fprintf(stderr, "bench: BENCH_SCALE must be a positive number, got '%s'\n", s);
        exit(2);
    }
    return v;
}

static inline uint64_t bench_scaled(uint64_t base)
{
    double v = (double)base * bench_scale();
    return v < 1.0 ? 1 : (uint64_t)v;
}

static inline void *bench_xmalloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL)
        bench_fail("malloc(%zu) returned NULL", size);
    return p;
}

/* ---- thread pinning (opt-in: BENCH_PIN=1) ----
 * With BENCH_PIN=1 the two-thread workloads pin worker i to the i-th CPU the
 * process may use.  Left to the scheduler, on a small machine the two threads
 * sometimes share one CPU and sometimes run truly in parallel, and
 * cross-thread frees cost very different amounts in the two cases, so times
 * can be bimodal; pinning measures the parallel case consistently on a quiet
 * machine.  It is off by default because on a busy machine a pinned thread
 * cannot move away from a loaded CPU, which is far worse.  Does nothing with
 * fewer than two usable CPUs. */

static inline void bench_pin_self(int index)
{
    const char *env = getenv("BENCH_PIN");
    if (env == NULL || strcmp(env, "1") != 0)
        return;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || CPU_COUNT(&allowed) < 2)
        return;
    int skip = index % CPU_COUNT(&allowed);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed) || skip-- > 0)
            continue;
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(cpu, &one);
        sched_setaffinity(0, sizeof one, &one); /* best effort */
        return;
    }
}

/* ---- block stamps ----
 * Every block is at least BENCH_MIN_BLOCK bytes.  A stamp writes a 64-bit tag
 * at offset 0, the 32-bit size at offset 8, and a check byte derived from both
 * into the last byte.  Blocks of a page or more also get one byte written per
 * 4 KiB so their pages are really touched, as a program filling a buffer would.
 * Checking reads the header and the last byte back. */

#define BENCH_MIN_BLOCK 16

static inline unsigned char bench_tail_byte(uint64_t tag, uint32_t size)
{
    uint64_t x = tag * 0xD6E8FEB86659FD93ull + size;
    x ^= x >> 32;
    x ^= x >> 16;
    return (unsigned char)(x ^ (x >> 8));
}

static inline void bench_stamp(void *p, size_t size, uint64_t tag)
{
    unsigned char *b = p;
    uint32_t sz = (uint32_t)size;
    memcpy(b, &tag, sizeof tag);
    memcpy(b + 8, &sz, sizeof sz);
    for (size_t off = 4096; off + 1 < size; off += 4096)
        b[off] = (unsigned char)(off >> 12);
    b[size - 1] = bench_tail_byte(tag, sz);
}

/* Reads the stamp; returns 1 if it is self-consistent (size sane, check byte
 * right), filling *tag and *size.  Use when the reader does not know them. */
static inline int bench_read_stamp(const void *p, uint64_t *tag, size_t *size)
{
    const unsigned char *b = p;
    uint32_t sz;
    memcpy(tag, b, sizeof *tag);
    memcpy(&sz, b + 8, sizeof sz);
    *size = sz;
    if (sz < BENCH_MIN_BLOCK || sz > (64u << 20))
        return 0;
    return b[sz - 1] == bench_tail_byte(*tag, sz);
}

/* Checks that p carries exactly the stamp (tag, size); exits on mismatch. */
static inline void bench_check(const void *p, size_t size, uint64_t tag, const char *what)
{
    uint64_t t;
    size_t s;
    if (!bench_read_stamp(p, &t, &s) || t != tag || s != size)
        bench_fail("%s: block %p corrupted (want tag %llu size %zu, found tag %llu size %zu)",
                   what, p, (unsigned long long)tag, size, (unsigned long long)t, s);
}

/* ---- report ---- */

/* Peak resident set size in KiB: VmHWM from /proc/self/status. */
static inline long bench_peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kib = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

/* Which malloc is mapped into the process, from /proc/self/maps: guards
 * against an LD_PRELOAD that silently failed. */
static inline const char *bench_allocator_name(void)
{
    static const char *const known[][2] = {
        { "libtessera_nostats", "tessera-nostats" },
        { "libtessera", "tessera" },
        { "libjemalloc", "jemalloc" },
        { "libmimalloc", "mimalloc" },
        { "libtcmalloc", "tcmalloc" },
    };
    const char *found = "glibc";
    FILE *f = fopen("/proc/self/maps", "r");
    if (f == NULL)
        return "unknown";
    char line[4096];
    while (fgets(line, sizeof line, f) != NULL) {
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strstr(line, known[i][0]) != NULL) {
                found = known[i][1];
                break;
            }
    }
    fclose(f);
    return found;
}

static inline void bench_report(const char *workload, double seconds)
{
    printf("workload=%s seconds=%.6f maxrss_kib=%ld alloc=%s\n", workload, seconds,
           bench_peak_rss_kib(), bench_allocator_name());
    fflush(stdout);
}

#endif
