/* frag_server: a busy multi-threaded server that then goes quiet.
 *
 * THREADS threads each serve REQUESTS requests.  A request mallocs 2..8
 * blocks: 80% of 16..512 B, 15% of 512 B..16 KiB, 4.5% of 16..256 KiB
 * (log-uniform) and 0.5% of 1 MiB, with a word written in every page.  Each
 * block replaces a random entry of the thread's long-lived working set of
 * WS_SLOTS blocks (25%; the old block is freed), or is handed to a random
 * other thread, which frees it (10%), or is freed when the request ends.
 * Then the threads go quiet: each frees all but every tenth block of its
 * working set, and they sleep for IDLE_S seconds making no allocator calls,
 * still alive (so memory parked in their caches counts).  Every block is
 * checked before it is freed.
 *
 * Phases: busy (all requests served; peak_rss_bytes is the busy peak),
 * quiet_after_free, quiet_after_idle.  FRAG_SCALE scales the working sets
 * and the number of requests.  Fixed seeds, though which handed-off block
 * falls back to a local free when a queue is full depends on timing. */
#define _GNU_SOURCE
#include "frag.h"
#include "ring.h"

#define THREADS 4
#define REQUESTS 400000
#define WS_SLOTS 8192
#define OBJS_MIN 2
#define OBJS_MAX 8
#define KEEP_PCT 25
#define HANDOFF_PCT 10
#define KEEP_QUIET_EVERY 10
#define IDLE_S 2.0

struct worker {
    int id;
    uint64_t handed, received, fallback;
    struct frag_block *ws; /* WS_SLOTS entries, bookkeeping memory */
};

static struct worker workers[THREADS];
static struct ring rings[THREADS][THREADS]; /* rings[from][to] */
static atomic_int n_finished;
static pthread_barrier_t barrier;
static size_t ws_slots;
static uint64_t n_requests;

static uint32_t salt_of(int id)
{
    return 0x5E00u + (uint32_t)id;
}

static size_t pick_size(bench_rng *rng)
{
    uint32_t r = bench_rng_below(rng, 1000);
    if (r < 800)
        return bench_rng_range(rng, 16, 512);
    if (r < 950)
        return frag_log_uniform(rng, 512, 16 << 10);
    if (r < 995)
        return frag_log_uniform(rng, 16 << 10, 256 << 10);
    return 1 << 20;
}

/* ring_drain callback: a block another thread made and handed over. */
static void free_received(void *p, void *arg)
{
    struct worker *w = arg;
    uint64_t tag;
    size_t size;
    if (!frag_read_stamp(p, &tag, &size) || (tag >> 32) < salt_of(0) ||
        (tag >> 32) >= salt_of(THREADS) || (tag >> 32) == salt_of(w->id))
        bench_fail("frag_server: received block %p corrupted", p);
    free(p);
    frag_live_add(w->id + 1, -(int64_t)size);
    w->received++;
}

static void drain_all(struct worker *w)
{
    for (int from = 0; from < THREADS; from++)
        if (from != w->id)
            ring_drain(&rings[from][w->id], free_received, w);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    int slot = w->id + 1; /* live counter; 0 is main's */
    uint32_t salt = salt_of(w->id);
    bench_rng rng = bench_rng_seed(0x5EED2005 + (uint64_t)w->id);
    uint32_t serial = 0;
    struct frag_block local[OBJS_MAX];

    for (uint64_t req = 0; req < n_requests; req++) {
        drain_all(w);
        size_t n_objs = bench_rng_range(&rng, OBJS_MIN, OBJS_MAX), n_local = 0;
        for (size_t i = 0; i < n_objs; i++) {
            struct frag_block o;
            frag_block_new(&o, pick_size(&rng), salt, serial++, slot);
            uint32_t fate = bench_rng_below(&rng, 100);
            if (fate < KEEP_PCT) {
                struct frag_block *ws = &w->ws[bench_rng_below(&rng, (uint32_t)ws_slots)];
                if (ws->p != NULL)
                    frag_block_free(ws, salt, slot);
                *ws = o;
            } else if (fate < KEEP_PCT + HANDOFF_PCT) {
                int to = (w->id + 1 + (int)bench_rng_below(&rng, THREADS - 1)) % THREADS;
                if (ring_try_push(&rings[w->id][to], o.p)) {
                    w->handed++;
                } else {
                    w->fallback++;
                    local[n_local++] = o;
                }
            } else {
                local[n_local++] = o;
            }
        }
        for (size_t i = 0; i < n_local; i++)
            frag_block_free(&local[i], salt, slot);
    }

    /* Free what the others hand over until every thread has stopped. */
    atomic_fetch_add(&n_finished, 1);
    unsigned spins = 0;
    while (atomic_load(&n_finished) < THREADS) {
        drain_all(w);
        ring_backoff(&spins);
    }
    drain_all(w);
    pthread_barrier_wait(&barrier); /* main reports busy */
    pthread_barrier_wait(&barrier);

    for (size_t i = 0; i < ws_slots; i++)
        if (w->ws[i].p != NULL && i % KEEP_QUIET_EVERY != 0)
            frag_block_free(&w->ws[i], salt, slot);
    pthread_barrier_wait(&barrier); /* main reports, idles, reports */
    pthread_barrier_wait(&barrier);

    for (size_t i = 0; i < ws_slots; i++)
        if (w->ws[i].p != NULL)
            frag_block_free(&w->ws[i], salt, slot);
    return NULL;
}

int main(void)
{
    frag_begin("frag_server");
    ws_slots = (size_t)frag_scaled(WS_SLOTS);
    n_requests = frag_scaled(REQUESTS);
    atomic_init(&n_finished, 0);
    if (pthread_barrier_init(&barrier, NULL, THREADS + 1) != 0)
        bench_fail("frag_server: pthread_barrier_init");
    for (int i = 0; i < THREADS; i++) {
        workers[i].id = i;
        workers[i].ws = frag_meta_alloc(ws_slots * sizeof *workers[i].ws);
        for (int j = 0; j < THREADS; j++)
            ring_init(&rings[i][j]);
    }
    pthread_t tid[THREADS];
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&tid[i], NULL, worker_main, &workers[i]) != 0)
            bench_fail("frag_server: pthread_create");

    pthread_barrier_wait(&barrier);
    frag_phase("busy");
    pthread_barrier_wait(&barrier);
    pthread_barrier_wait(&barrier);
    frag_phase("quiet_after_free");
    frag_idle(IDLE_S);
    frag_phase("quiet_after_idle");
    pthread_barrier_wait(&barrier);
    for (int i = 0; i < THREADS; i++)
        pthread_join(tid[i], NULL);

    uint64_t handed = 0, received = 0, fallback = 0;
    for (int i = 0; i < THREADS; i++) {
        handed += workers[i].handed;
        received += workers[i].received;
        fallback += workers[i].fallback;
    }
    if (handed != received)
        bench_fail("frag_server: %llu blocks handed over, %llu freed by the receivers",
                   (unsigned long long)handed, (unsigned long long)received);
    frag_say("handoffs=%llu fallback_local_frees=%llu\n", (unsigned long long)handed,
             (unsigned long long)fallback);
    frag_end();
    return 0;
}
