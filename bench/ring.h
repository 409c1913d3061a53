/* ring.h: a bounded single-producer single-consumer queue of pointers built on
 * C11 atomics, used by the cross-thread benchmarks to hand blocks from the
 * thread that allocates them to the thread that frees them (header only). */
#ifndef TS_BENCH_RING_H
#define TS_BENCH_RING_H

#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>

#define RING_CAP 4096 /* power of two */

struct ring {
    alignas(64) atomic_size_t head; /* next slot to fill; written by the producer */
    alignas(64) atomic_size_t tail; /* next slot to drain; written by the consumer */
    alignas(64) size_t tail_seen;   /* producer's cached copy of tail */
    alignas(64) void *slot[RING_CAP];
};

static inline void ring_init(struct ring *r)
{
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    r->tail_seen = 0;
}

/* Producer: returns 1 if n free slots are available now.  The consumer's
 * tail is re-read only when the cached copy says there is too little room. */
static inline int ring_has_room(struct ring *r, size_t n)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (RING_CAP - (head - r->tail_seen) >= n)
        return 1;
    r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
    return RING_CAP - (head - r->tail_seen) >= n;
}

/* Producer: writes n items and publishes them at once; ring_has_room(r, n)
 * must have returned 1. */
static inline void ring_push_n(struct ring *r, void *const *items, size_t n)
{
    size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    for (size_t i = 0; i < n; i++)
        r->slot[(head + i) & (RING_CAP - 1)] = items[i];
    atomic_store_explicit(&r->head, head + n, memory_order_release);
}

/* Producer: one item; returns 0 if the ring is full. */
static inline int ring_try_push(struct ring *r, void *item)
{
    if (!ring_has_room(r, 1))
        return 0;
    ring_push_n(r, &item, 1);
    return 1;
}

/* Consumer: calls fn(item, arg) for everything currently published and
 * releases the slots; returns how many items it took. */
static inline size_t ring_drain(struct ring *r, void (*fn)(void *item, void *arg), void *arg)
{
    size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    for (size_t i = tail; i != head; i++)
        fn(r->slot[i & (RING_CAP - 1)], arg);
    if (head != tail)
        atomic_store_explicit(&r->tail, head, memory_order_release);
    return head - tail;
}

/* Back-off for a waiting thread: spin briefly, then give up the CPU (the
 * machine may have as few cores as there are threads). */
static inline void ring_backoff(unsigned *spins)
{
    if (++*spins < 64)
        return;
    *spins = 0;
    sched_yield();
}

#endif
