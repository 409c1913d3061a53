/* frag_twowaves: short-lived wave, long-lived survivors in between.
 *
 * One thread allocates wave A: WAVE_A_MIB MiB of blocks of 64..4096 bytes
 * (log-uniform).  Interleaved with it, after each A block with probability
 * B_PER_MILLE/1000, it allocates a wave-B block from the same size mix: those
 * stay, about a tenth of A's bytes.  Then every A block is freed (checked
 * first), and the program sleeps IDLE_S seconds making no allocator calls.
 * The B blocks are spread over every page A used, so an allocator can give
 * back only the pages between them: RSS/live after the idle is the number to
 * watch.
 *
 * Then it reads every B block once (checking it), as a program that goes
 * on using them would: after_touch.
 *
 * Phases: after_waves, after_free_a, after_idle, after_touch.  FRAG_SCALE
 * scales A's volume.  Fixed seed.  bench_frag_twowaves20 is this program
 * with B_PER_MILLE 200, the proportion behind issue 3's baseline (glibc
 * 6.0): an allocator that gives nothing back keeps (A + B) / B = 6 (at
 * 100: 11) times the live bytes.
 *
 * What no allocator that leaves objects in place can beat: a page stays
 * while any B block lies on it.  With every block packed at its exact size
 * and none crossing a page boundary, the pages kept per live byte, summed
 * over the size mix, come to 2.88 at 100 per mille and 2.45 at 200
 * (docs/ARCHITECTURE.md, Returning memory). */
#define _GNU_SOURCE
#include "frag.h"

#define WAVE_A_MIB 400
#define BLOCK_MIN 64
#define BLOCK_MAX 4096
#ifndef B_PER_MILLE
#define B_PER_MILLE 100 /* bench_frag_twowaves20: 200 (bench/CMakeLists.txt) */
#endif
#ifndef FRAG_NAME
#define FRAG_NAME "frag_twowaves"
#endif
#define IDLE_S 2.0
#define SALT_A 0xA
#define SALT_B 0xB

int main(void)
{
    frag_begin(FRAG_NAME);
    uint64_t a_bytes = frag_scaled((uint64_t)WAVE_A_MIB << 20);

    /* Expected block size of the log-uniform mix, for sizing the tables. */
    double mean = (BLOCK_MAX - BLOCK_MIN) / log((double)BLOCK_MAX / BLOCK_MIN);
    size_t cap_a = (size_t)((double)a_bytes / mean * 1.2) + 4096;
    size_t cap_b = cap_a * B_PER_MILLE / 1000 * 3 / 2 + 4096;
    struct frag_block *a = frag_meta_alloc(cap_a * sizeof *a);
    struct frag_block *b = frag_meta_alloc(cap_b * sizeof *b);
    size_t n_a = 0, n_b = 0;
    uint32_t serial = 0;
    bench_rng rng = bench_rng_seed(0x5EED2001);

    uint64_t done = 0;
    while (done < a_bytes) {
        if (n_a == cap_a)
            bench_fail(FRAG_NAME ": table A full (%zu)", cap_a);
        size_t size = frag_log_uniform(&rng, BLOCK_MIN, BLOCK_MAX);
        frag_block_new(&a[n_a++], size, SALT_A, serial++, 0);
        done += size;
        if (bench_rng_below(&rng, 1000) < B_PER_MILLE) {
            if (n_b == cap_b)
                bench_fail(FRAG_NAME ": table B full (%zu)", cap_b);
            frag_block_new(&b[n_b++], frag_log_uniform(&rng, BLOCK_MIN, BLOCK_MAX), SALT_B,
                           serial++, 0);
        }
    }
    frag_phase("after_waves");

    for (size_t i = 0; i < n_a; i++)
        frag_block_free(&a[i], SALT_A, 0);
    frag_phase("after_free_a");

    frag_idle(IDLE_S);
    frag_phase("after_idle");

    for (size_t i = 0; i < n_b; i++)
        frag_block_check(&b[i], SALT_B);
    frag_phase("after_touch");

    for (size_t i = 0; i < n_b; i++)
        frag_block_free(&b[i], SALT_B, 0);
    frag_end();
    return 0;
}
