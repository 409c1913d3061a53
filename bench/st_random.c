/* st_random: single-thread small-object allocation speed, random lifetimes.
 *
 * A working set of SLOTS blocks (16..512 bytes) is filled, then each step
 * picks a random slot, checks and frees its block, and mallocs a new block of
 * a random size into it, so frees land all over the heap.  Finally everything
 * is freed.  Fixed seed; BENCH_SCALE scales the number of steps. */
#define _GNU_SOURCE
#include "bench.h"

#define SLOTS 20000
#define STEPS_BASE 6000000
#define BLOCK_MIN 16
#define BLOCK_MAX 512

struct slot {
    void *p;
    uint32_t size;
};

static struct slot slots[SLOTS];

static void run(uint64_t steps)
{
    bench_rng rng = bench_rng_seed(0x5EED0002);
    uint64_t tag = 0;
    for (size_t i = 0; i < SLOTS; i++) {
        size_t size = bench_rng_range(&rng, BLOCK_MIN, BLOCK_MAX);
        slots[i].p = bench_xmalloc(size);
        slots[i].size = (uint32_t)size;
        bench_stamp(slots[i].p, size, i);
    }
    for (uint64_t s = 0; s < steps; s++) {
        struct slot *sl = &slots[bench_rng_below(&rng, SLOTS)];
        uint64_t old_tag;
        size_t old_size;
        if (!bench_read_stamp(sl->p, &old_tag, &old_size) || old_size != sl->size)
            bench_fail("st_random: block %p corrupted", sl->p);
        free(sl->p);
        size_t size = bench_rng_range(&rng, BLOCK_MIN, BLOCK_MAX);
        sl->p = bench_xmalloc(size);
        sl->size = (uint32_t)size;
        bench_stamp(sl->p, size, SLOTS + tag++);
    }
    for (size_t i = 0; i < SLOTS; i++) {
        uint64_t t;
        size_t size;
        if (!bench_read_stamp(slots[i].p, &t, &size) || size != slots[i].size)
            bench_fail("st_random: block %p corrupted", slots[i].p);
        free(slots[i].p);
    }
}

int main(void)
{
    uint64_t steps = bench_scaled(STEPS_BASE);
    run(steps); /* warm-up: same workload untimed, touches the footprint */
    double t0 = bench_now();
    run(steps);
    double t1 = bench_now();
    bench_report("st_random", t1 - t0);
    return 0;
}
