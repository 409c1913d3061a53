/* st_lifo: single-thread small-object allocation speed, stack pattern.
 *
 * Each round allocates a batch of 16..256 blocks of 16..512 bytes (sizes and
 * batch lengths from a fixed-seed PRNG), stamps each one, then checks and
 * frees the batch in reverse order (LIFO), like a stack of temporaries.
 * Reports the time for all rounds; BENCH_SCALE scales the round count. */
#define _GNU_SOURCE
#include "bench.h"

#define ROUNDS_BASE 120000
#define BATCH_MIN 16
#define BATCH_MAX 256
#define BLOCK_MIN 16
#define BLOCK_MAX 512
#define TABLE_LEN 65536 /* power of two; precomputed sizes, reused cyclically */
#define LEN_TABLE_LEN 1024

static uint16_t sizes[TABLE_LEN];
static uint16_t batch_len[LEN_TABLE_LEN];

static void run(uint64_t rounds)
{
    void *blocks[BATCH_MAX];
    size_t next = 0;
    for (uint64_t r = 0; r < rounds; r++) {
        size_t n = batch_len[r & (LEN_TABLE_LEN - 1)];
        size_t first = next;
        for (size_t i = 0; i < n; i++) {
            size_t size = sizes[(first + i) & (TABLE_LEN - 1)];
            blocks[i] = bench_xmalloc(size);
            bench_stamp(blocks[i], size, r + i);
        }
        for (size_t i = n; i-- > 0;) {
            bench_check(blocks[i], sizes[(first + i) & (TABLE_LEN - 1)], r + i, "st_lifo");
            free(blocks[i]);
        }
        next = first + n;
    }
}

int main(void)
{
    bench_rng rng = bench_rng_seed(0x5EED0001);
    for (size_t i = 0; i < TABLE_LEN; i++)
        sizes[i] = (uint16_t)bench_rng_range(&rng, BLOCK_MIN, BLOCK_MAX);
    for (size_t i = 0; i < LEN_TABLE_LEN; i++)
        batch_len[i] = (uint16_t)bench_rng_range(&rng, BATCH_MIN, BATCH_MAX);

    uint64_t rounds = bench_scaled(ROUNDS_BASE);
    run(rounds); /* warm-up: same workload untimed, touches the footprint */
    double t0 = bench_now();
    run(rounds);
    double t1 = bench_now();
    bench_report("st_lifo", t1 - t0);
    return 0;
}
