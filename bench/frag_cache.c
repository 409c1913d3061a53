/* frag_cache: a FIFO cache under a byte budget whose entry sizes shift.
 *
 * One thread inserts entries into a cache of BUDGET_MIB MiB, evicting (and
 * checking) the oldest whenever the live bytes would exceed the budget, as a
 * stream broker's block cache does.  Each phase inserts CHURN budgets' worth
 * of entries with its own size mix:
 *
 *   small_heavy   80% 64..1024 B, 20% 1..64 KiB (log-uniform)
 *   large_heavy   10% 64..1024 B, 90% 64 KiB..1 MiB
 *   mixed         30% 64..1024 B, 70% 1 KiB..1 MiB
 *   small_again   as small_heavy, after the large entries have gone
 *
 * At each phase end the cache is full with that phase's mix, so RSS/live
 * shows what the churn, and the shift from the previous mix, left behind.
 * The worst moment of the phase is reported too: RSS is read after every
 * CHECK_EVERY bytes inserted and, while the cache is at least 90% full, the
 * reading with the highest RSS/live goes into the phase line as
 * worst_rss_bytes and worst_live_bytes (worst_t is its time).  Entries get a
 * word written in every page, as filled buffers would.  FRAG_SCALE scales the
 * budget.  Fixed seed. */
#define _GNU_SOURCE
#include "frag.h"

#define BUDGET_MIB 512
#define CHURN 4
#define CHECK_EVERY (2u << 20) /* inserted bytes between RSS readings */
#define SALT 0xCAC4E

struct mix {
    const char *phase;
    unsigned small_pct; /* share of 64..1024-byte entries */
    size_t lo, hi;      /* log-uniform range of the others */
};

static const struct mix mixes[] = {
    { "small_heavy", 80, 1 << 10, 64 << 10 },
    { "large_heavy", 10, 64 << 10, 1 << 20 },
    { "mixed", 30, 1 << 10, 1 << 20 },
    { "small_again", 80, 1 << 10, 64 << 10 },
};

/* The cache: a ring of entries, oldest at head. */
static struct frag_block *ring;
static size_t cap, head, count;
static uint64_t live;

static void evict_oldest(void)
{
    struct frag_block *e = &ring[head];
    live -= e->size;
    frag_block_free(e, SALT, 0);
    head = (head + 1) % cap;
    count--;
}

int main(void)
{
    frag_begin("frag_cache");
    uint64_t budget = frag_scaled((uint64_t)BUDGET_MIB << 20);
    /* The smallest mean entry (small_heavy) is about 3.5 KiB; a full ring
     * evicts too, so this bounds the count without costing much. */
    cap = (size_t)(budget / 1024) + 65536;
    ring = frag_meta_alloc(cap * sizeof *ring);
    bench_rng rng = bench_rng_seed(0x5EED2003);
    uint32_t serial = 0;

    for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; m++) {
        const struct mix *mx = &mixes[m];
        uint64_t inserted = 0, next_check = CHECK_EVERY;
        int64_t worst_rss = 0, worst_live = 0;
        double worst_t = 0;
        while (inserted < CHURN * budget) {
            size_t size = bench_rng_below(&rng, 100) < mx->small_pct
                              ? bench_rng_range(&rng, 64, 1024)
                              : frag_log_uniform(&rng, mx->lo, mx->hi);
            while (count > 0 && (live + size > budget || count == cap))
                evict_oldest();
            frag_block_new(&ring[(head + count) % cap], size, SALT, serial++, 0);
            count++;
            live += size;
            inserted += size;
            if (inserted >= next_check) {
                /* Compare RSS net of the (constant) bookkeeping; report it raw. */
                next_check = inserted + CHECK_EVERY;
                int64_t rss = frag_rss_bytes(), meta = atomic_load(&frag_meta_total);
                if (live * 10 >= budget * 9 &&
                    (worst_live == 0 || (double)(rss - meta) / (double)live >
                                            (double)(worst_rss - meta) / (double)worst_live)) {
                    worst_rss = rss;
                    worst_live = (int64_t)live;
                    worst_t = frag_elapsed();
                }
            }
        }
        char extra[128];
        snprintf(extra, sizeof extra, " worst_rss_bytes=%lld worst_live_bytes=%lld worst_t=%.3f",
                 (long long)worst_rss, (long long)worst_live, worst_t);
        frag_phase_with(mx->phase, extra);
    }

    while (count > 0)
        evict_oldest();
    frag_end();
    return 0;
}
