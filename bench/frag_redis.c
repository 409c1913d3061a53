/* frag_redis: a key-value store whose value sizes drift.
 *
 * One thread fills a table with FILL_MIB MiB of blocks of 16..512 bytes
 * (uniform: keys and values of a cache), deletes a random half, then inserts
 * blocks twice as large (32..1024 bytes) until the live bytes are back where
 * they were.  Then it deletes a random half of everything again and refills,
 * this time with small blocks (16..64 bytes), to the same live bytes.  The
 * freed holes suit the new sizes badly, so RSS/live after each refill shows
 * how well an allocator reuses memory freed for other sizes.  Every block is
 * checked before it is freed.
 *
 * Phases: filled, after_delete, refilled_larger, after_delete2,
 * refilled_small.  FRAG_SCALE scales the volume.  Fixed seed. */
#define _GNU_SOURCE
#include "frag.h"

#define FILL_MIB 300
#define SALT 0x4ED1

static struct frag_block *table;
static size_t n_live, cap;
static uint32_t serial;
static uint64_t live;

/* Inserts blocks of lo..hi bytes (uniform) until at least target bytes are live. */
static void fill_to(bench_rng *rng, uint64_t target, size_t lo, size_t hi)
{
    while (live < target) {
        if (n_live == cap)
            bench_fail("frag_redis: table full (%zu)", cap);
        size_t size = bench_rng_range(rng, lo, hi);
        frag_block_new(&table[n_live++], size, SALT, serial++, 0);
        live += size;
    }
}

/* Frees each block with probability 1/2 and packs the survivors. */
static void delete_half(bench_rng *rng)
{
    size_t kept = 0;
    for (size_t i = 0; i < n_live; i++) {
        if (bench_rng_next(rng) & 1) {
            live -= table[i].size;
            frag_block_free(&table[i], SALT, 0);
        } else {
            table[kept++] = table[i];
        }
    }
    n_live = kept;
}

int main(void)
{
    frag_begin("frag_redis");
    uint64_t target = frag_scaled((uint64_t)FILL_MIB << 20);

    /* Most entries exist at the end: about a quarter of the first fill and
     * an eighth of the second survive, next to half the target in 40-byte
     * (average) blocks. */
    cap = (size_t)((double)target / 264 * 0.4 + (double)target / 528 * 0.2 +
                   (double)target / 2 / 40 * 1.1) + 65536;
    table = frag_meta_alloc(cap * sizeof *table);
    bench_rng rng = bench_rng_seed(0x5EED2002);

    fill_to(&rng, target, 16, 512);
    frag_phase("filled");
    delete_half(&rng);
    frag_phase("after_delete");
    fill_to(&rng, target, 32, 1024);
    frag_phase("refilled_larger");
    delete_half(&rng);
    frag_phase("after_delete2");
    fill_to(&rng, target, 16, 64);
    frag_phase("refilled_small");

    for (size_t i = 0; i < n_live; i++)
        frag_block_free(&table[i], SALT, 0);
    frag_end();
    return 0;
}
