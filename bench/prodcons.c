/* prodcons: cross-thread frees.
 *
 * A producer thread mallocs small blocks (16..256 bytes), stamps a sequence
 * number into each, and passes them in batches through a lock-free
 * single-producer single-consumer ring to a consumer thread, which checks the
 * stamp (and the FIFO order) and frees the block.  Every block is therefore
 * freed by a thread other than the one that allocated it.  BENCH_PIN=1 pins
 * the two threads to different CPUs (see bench_pin_self).  Fixed seed;
 * BENCH_SCALE scales the number of blocks. */
#define _GNU_SOURCE
#include <pthread.h>

#include "bench.h"
#include "ring.h"

#define ITEMS_BASE 2000000
#define BATCH 32
#define BLOCK_MIN 16
#define BLOCK_MAX 256

static struct ring ring;
static uint64_t n_items;

static void *producer(void *arg)
{
    (void)arg;
    bench_pin_self(0);
    bench_rng rng = bench_rng_seed(0x5EED0003);
    void *batch[BATCH];
    unsigned spins = 0;
    for (uint64_t i = 0; i < n_items;) {
        size_t n = 0;
        for (; n < BATCH && i < n_items; n++, i++) {
            size_t size = bench_rng_range(&rng, BLOCK_MIN, BLOCK_MAX);
            batch[n] = bench_xmalloc(size);
            bench_stamp(batch[n], size, i);
        }
        while (!ring_has_room(&ring, n))
            ring_backoff(&spins);
        ring_push_n(&ring, batch, n);
    }
    return NULL;
}

struct consumer_state {
    uint64_t expect; /* sequence number of the next block */
};

static void consume(void *p, void *arg)
{
    struct consumer_state *st = arg;
    uint64_t tag;
    size_t size;
    if (!bench_read_stamp(p, &tag, &size) || tag != st->expect)
        bench_fail("prodcons: block %p corrupted or out of order (want seq %llu)", p,
                   (unsigned long long)st->expect);
    st->expect++;
    free(p);
}

static void *consumer(void *arg)
{
    struct consumer_state *st = arg;
    bench_pin_self(1);
    unsigned spins = 0;
    while (st->expect < n_items) {
        if (ring_drain(&ring, consume, st) == 0)
            ring_backoff(&spins);
    }
    return NULL;
}

static void run(void)
{
    pthread_t prod, cons;
    struct consumer_state st = { 0 };
    ring_init(&ring);
    if (pthread_create(&cons, NULL, consumer, &st) != 0 ||
        pthread_create(&prod, NULL, producer, NULL) != 0)
        bench_fail("prodcons: pthread_create");
    pthread_join(prod, NULL);
    pthread_join(cons, NULL);
    if (st.expect != n_items)
        bench_fail("prodcons: consumed %llu of %llu blocks", (unsigned long long)st.expect,
                   (unsigned long long)n_items);
}

int main(void)
{
    n_items = bench_scaled(ITEMS_BASE);
    run(); /* warm-up: same workload untimed, touches the footprint */
    double t0 = bench_now();
    run();
    double t1 = bench_now();
    bench_report("prodcons", t1 - t0);
    return 0;
}
