/* frag_realloc: many buffers grown by realloc in small steps, then freed.
 *
 * One thread grows BUFFERS buffers round-robin: each turn appends 1..512
 * bytes to a buffer with realloc and writes them, as a program appending
 * to many strings or logs at once does, until each reaches its target size
 * (95% 64..256 KiB, 5% 256 KiB..4 MiB, log-uniform; about 390 MiB in all).
 * After every realloc the start and the old end of the buffer are checked;
 * before it is freed the whole buffer is.  Then everything is freed and the
 * program sleeps IDLE_S seconds making no allocator calls.
 *
 * Phases: start (before the first malloc), grown, after_free,
 * after_free_idle.  frag.sh reports RSS/live when grown and the RSS still
 * resident after the idle beyond the RSS at start.  FRAG_SCALE scales the
 * number of buffers.  Fixed seed. */
#define _GNU_SOURCE
#include "frag.h"

#define BUFFERS 2000
#define STEP_MAX 512
#define IDLE_S 1.5

struct buffer {
    unsigned char *p;
    size_t len, target;
};

/* The content of byte j of buffer i: depends on both, so a copy to the
 * wrong offset or from the wrong buffer shows. */
static inline unsigned char content(size_t i, size_t j)
{
    return (unsigned char)((j ^ (j >> 8) ^ (j >> 16)) + i * 131u);
}

static void check_range(const struct buffer *b, size_t i, size_t from, size_t to)
{
    for (size_t j = from; j < to; j++)
        if (b->p[j] != content(i, j))
            bench_fail("frag_realloc: buffer %zu (%p, %zu bytes) wrong at byte %zu", i,
                       (void *)b->p, b->len, j);
}

int main(void)
{
    frag_begin("frag_realloc");
    size_t n = (size_t)frag_scaled(BUFFERS);
    struct buffer *bufs = frag_meta_alloc(n * sizeof *bufs);
    bench_rng rng = bench_rng_seed(0x5EED2004);
    for (size_t i = 0; i < n; i++)
        bufs[i].target = bench_rng_below(&rng, 100) < 95
                             ? frag_log_uniform(&rng, 64 << 10, 256 << 10)
                             : frag_log_uniform(&rng, 256 << 10, 4 << 20);
    frag_phase("start");

    size_t growing = n;
    while (growing > 0) {
        growing = 0;
        for (size_t i = 0; i < n; i++) {
            struct buffer *b = &bufs[i];
            if (b->len == b->target)
                continue;
            size_t step = bench_rng_range(&rng, 1, STEP_MAX);
            if (step > b->target - b->len)
                step = b->target - b->len;
            size_t old = b->len;
            unsigned char *p = realloc(b->p, old + step);
            if (p == NULL)
                bench_fail("frag_realloc: realloc(%zu) returned NULL", old + step);
            b->p = p;
            frag_live_add(0, (int64_t)step);
            check_range(b, i, 0, old < 8 ? old : 8);
            if (old > 8)
                check_range(b, i, old - 1, old);
            for (size_t j = old; j < old + step; j++)
                p[j] = content(i, j);
            b->len = old + step;
            if (b->len < b->target)
                growing++;
        }
    }
    frag_phase("grown");

    for (size_t i = 0; i < n; i++) {
        check_range(&bufs[i], i, 0, bufs[i].len);
        free(bufs[i].p);
        frag_live_add(0, -(int64_t)bufs[i].len);
        bufs[i].p = NULL;
    }
    frag_phase("after_free");
    frag_idle(IDLE_S);
    frag_phase("after_free_idle");
    frag_end();
    return 0;
}
