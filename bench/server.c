/* server: a two-thread request loop with mixed sizes and lifetimes.
 *
 * Each of two threads serves REQUESTS requests.  A request mallocs 4..16
 * objects: 90% of 16..1024 bytes, 9.9% of 1..64 KiB, 0.1% of 256 KiB..1 MiB
 * (big blocks get every page touched).  Each object either replaces a random
 * entry of the thread's long-lived working set (20%), is handed to the other
 * thread to free through a lock-free ring (10%), or is freed when the request
 * ends (70%).  Every block is checked before it is freed.  Measures mixed
 * allocation speed, cross-thread frees and, via maxrss, fragmentation.
 * BENCH_PIN=1 pins the threads to different CPUs (see bench_pin_self).
 * Fixed seeds; BENCH_SCALE scales the number of requests. */
#define _GNU_SOURCE
#include <pthread.h>

#include "bench.h"
#include "ring.h"

#define THREADS 2
#define REQUESTS_BASE 150000
#define WS_SLOTS 4096
#define OBJS_MIN 4
#define OBJS_MAX 16
#define KEEP_PCT 20
#define HANDOFF_PCT 10

struct obj {
    void *p;
    uint64_t tag;
    uint32_t size;
};

struct worker {
    int id;
    struct ring *in;  /* blocks other thread hands to this one */
    struct ring *out; /* blocks this thread hands to the other one */
    struct worker *peer;
    atomic_int done;  /* set once this thread stops pushing to out */
    uint64_t handed, received;
    struct obj ws[WS_SLOTS];
};

static struct ring rings[THREADS]; /* rings[i] carries blocks to worker i */
static struct worker workers[THREADS];
static uint64_t n_requests;

static size_t pick_size(bench_rng *rng)
{
    uint32_t r = bench_rng_below(rng, 10000);
    if (r < 9000)
        return bench_rng_range(rng, 16, 1024);
    if (r < 9990)
        return bench_rng_range(rng, 1024, 64 << 10);
    return bench_rng_range(rng, 256 << 10, 1 << 20);
}

static void check_and_free(const struct obj *o)
{
    bench_check(o->p, o->size, o->tag, "server");
    free(o->p);
}

/* ring_drain callback: a block the peer allocated; its stamp must be intact
 * and carry the peer's id. */
static void free_received(void *p, void *arg)
{
    struct worker *w = arg;
    uint64_t tag;
    size_t size;
    if (!bench_read_stamp(p, &tag, &size) || (int)(tag >> 56) != w->peer->id + 1)
        bench_fail("server: received block %p corrupted", p);
    w->received++;
    free(p);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    bench_pin_self(w->id);
    bench_rng rng = bench_rng_seed(0x5EED0100 + (uint64_t)w->id);
    uint64_t next_tag = ((uint64_t)w->id + 1) << 56;
    struct obj local[OBJS_MAX];

    for (uint64_t req = 0; req < n_requests; req++) {
        ring_drain(w->in, free_received, w);
        size_t n_objs = bench_rng_range(&rng, OBJS_MIN, OBJS_MAX);
        size_t n_local = 0;
        for (size_t i = 0; i < n_objs; i++) {
            struct obj o;
            o.size = (uint32_t)pick_size(&rng);
            o.tag = next_tag++;
            o.p = bench_xmalloc(o.size);
            bench_stamp(o.p, o.size, o.tag);
            uint32_t fate = bench_rng_below(&rng, 100);
            if (fate < KEEP_PCT) {
                struct obj *slot = &w->ws[bench_rng_below(&rng, WS_SLOTS)];
                if (slot->p != NULL)
                    check_and_free(slot);
                *slot = o;
            } else if (fate < KEEP_PCT + HANDOFF_PCT && ring_try_push(w->out, o.p)) {
                w->handed++;
            } else {
                local[n_local++] = o;
            }
        }
        for (size_t i = 0; i < n_local; i++)
            check_and_free(&local[i]);
    }

    /* Keep freeing what the peer sends until it is done too. */
    atomic_store_explicit(&w->done, 1, memory_order_release);
    unsigned spins = 0;
    for (;;) {
        int peer_done = atomic_load_explicit(&w->peer->done, memory_order_acquire);
        ring_drain(w->in, free_received, w);
        if (peer_done)
            break;
        ring_backoff(&spins);
    }
    for (size_t i = 0; i < WS_SLOTS; i++) {
        if (w->ws[i].p != NULL)
            check_and_free(&w->ws[i]);
        w->ws[i].p = NULL;
    }
    return NULL;
}

static void run(void)
{
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ring_init(&rings[i]);
        struct worker *w = &workers[i];
        w->id = i;
        w->in = &rings[i];
        w->out = &rings[(i + 1) % THREADS];
        w->peer = &workers[(i + 1) % THREADS];
        atomic_init(&w->done, 0);
        w->handed = w->received = 0;
        memset(w->ws, 0, sizeof w->ws);
    }
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&tid[i], NULL, worker_main, &workers[i]) != 0)
            bench_fail("server: pthread_create");
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);
    for (int i = 0; i < THREADS; i++)
        if (workers[i].handed != workers[(i + 1) % THREADS].received)
            bench_fail("server: thread %d handed %llu blocks, peer freed %llu", i,
                       (unsigned long long)workers[i].handed,
                       (unsigned long long)workers[(i + 1) % THREADS].received);
}

int main(void)
{
    n_requests = bench_scaled(REQUESTS_BASE);
    run(); /* warm-up: same workload untimed, touches the footprint */
    double t0 = bench_now();
    run();
    double t1 = bench_now();
    bench_report("server", t1 - t0);
    return 0;
}
