/* SPDX-License-Identifier: MIT */
/*
 * internal.h: the prototypes that cross files inside tessera, grouped by the
 * file that defines them.  A module calls only the layers below it:
 * alloc -> tcache/huge -> arena -> bin -> slab -> chunk -> os.
 */
#ifndef TS_INTERNAL_H
#define TS_INTERNAL_H

#include "types.h"

#include <stdarg.h>

/* ---- os.c: the kernel boundary ---- */
void *ts_os_map(size_t bytes);                    /* NULL on failure */
void *ts_os_map_aligned(size_t bytes, size_t alignment, size_t lead_bytes);
void ts_os_unmap(void *addr, size_t bytes);
void *ts_os_remap(void *old_addr, size_t old_bytes, size_t new_bytes, void *new_addr);
bool ts_os_remap_inplace(void *addr, size_t old_bytes, size_t new_bytes);
void ts_os_purge(void *addr, size_t bytes);       /* MADV_DONTNEED: RSS drops, contents become zero */
bool ts_os_barrier_init(void);                    /* false: ts_os_barrier() is unavailable */
void ts_os_barrier(void);                         /* a memory barrier on every thread of the process */
unsigned ts_os_ncpus(void);
uint64_t ts_os_now_ns(void);
uint64_t ts_os_random(void);
bool ts_os_thread_start(void *(*fn)(void *));      /* detached, async signals blocked */

/* ---- safety.c: the one place that reports misuse and aborts ---- */
void ts_message(const char *fmt, ...);            /* "tessera: ..." on stderr, no malloc */
__attribute__((noreturn)) void ts_fatal(const char *fmt, ...);
int ts_format(char *buf, size_t cap, const char *fmt, va_list ap);

/* ---- sizeclass.c ---- */
extern const uint32_t ts_class_size[TS_NCLASSES];
extern uint16_t ts_class_slab_pages[TS_NCLASSES];
extern uint16_t ts_class_slab_objs[TS_NCLASSES];
extern uint32_t ts_class_div_mul[TS_NCLASSES];
void ts_sizeclass_init(void);

/* size -> class for size <= TS_SMALL_MAX (size 0 is class 0), by
 * arithmetic: one count-leading-zeros. */
TS_INLINE unsigned ts_size_to_class_compute(size_t size) {
  if (size <= 256) return size ? (unsigned)((size - 1) >> 4) : 0;
  size_t x = size - 1;
  unsigned k = 63u - (unsigned)__builtin_clzll((unsigned long long)x);
  return 16u + (k - 8u) * TS_CLASSES_PER_DOUBLING + (unsigned)((x >> (k - 4u)) & 15u);
}

/* The same by table for sizes up to TS_CLASS_LOOKUP_MAX, indexed by 16-byte
 * granule: one load and no data-dependent branch, which matters when sizes
 * are random.  The table is filled by ts_sizeclass_init() before any thread
 * cache exists; until then it reads class 0, whose empty cache sends the
 * caller to the slow path, which computes. */
#define TS_CLASS_LOOKUP_MAX TS_SMALL_MAX
extern uint8_t ts_class_lookup[(TS_CLASS_LOOKUP_MAX >> 4) + 1];
TS_INLINE unsigned ts_size_to_class(size_t size) {
  if (TS_LIKELY(size <= TS_CLASS_LOOKUP_MAX)) return ts_class_lookup[(size + 15) >> 4];
  return ts_size_to_class_compute(size);
}

/* ---- bitmaps ---- */

/* The first bit of map in [from, limit) that is set (want) or clear, or
 * limit.  Words are read as relaxed atomics, so that a map other threads
 * change word by word under a lock (medium regions' maps, read by frees
 * with none) can be scanned too; on plain maps it is a plain load. */
TS_INLINE unsigned ts_bits_next(const uint64_t *map, unsigned from, unsigned limit, bool want) {
  while (from < limit) {
    uint64_t w = __atomic_load_n(&map[from >> 6], __ATOMIC_RELAXED);
    if (!want) w = ~w;
    w &= ~0ull << (from & 63);
    if (w) {
      unsigned i = (from & ~63u) + (unsigned)__builtin_ctzll(w);
      return i < limit ? i : limit;
    }
    from = (from & ~63u) + 64;
  }
  return limit;
}

/* ---- chunk.c: the chunk map and page runs inside chunks ---- */
extern _Atomic uint8_t ts_chunk_map[TS_MAP_ENTRIES];
extern uint64_t ts_secret;
#define TS_CHUNK_MAGIC 0x7473636875e6b021ull
#define TS_HUGE_MAGIC 0x747368756765a11dull

TS_INLINE unsigned ts_window_kind(uintptr_t addr) {
  uintptr_t w = addr >> TS_CHUNK_SHIFT;
  if (TS_UNLIKELY(w >= TS_MAP_ENTRIES)) return TS_WINDOW_NONE;
  return atomic_load_explicit(&ts_chunk_map[w], memory_order_relaxed);
}
TS_INLINE ts_chunk_t *ts_chunk_of(const void *p) {
  return (ts_chunk_t *)((uintptr_t)p & ~(uintptr_t)TS_CHUNK_MASK);
}
TS_INLINE uint8_t *ts_chunk_codes(ts_chunk_t *c) {
  return c->page_code_area + ((((uintptr_t)c) >> TS_CHUNK_SHIFT) & (TS_CHUNK_COLORS - 1)) * 64;
}
TS_INLINE unsigned ts_chunk_page_of(const void *p) {
  return (unsigned)(((uintptr_t)p & TS_CHUNK_MASK) >> TS_PAGE_SHIFT);
}
TS_INLINE void *ts_chunk_page_addr(ts_chunk_t *c, unsigned page) {
  return (char *)c + ((size_t)page << TS_PAGE_SHIFT);
}
/* A page code that other threads may read meanwhile (the free fast path
 * reads codes with no lock; a slab's code changes when it starts or stops
 * hosting other classes' objects, mixed.c): relaxed atomics, plain moves
 * on x86-64 and AArch64. */
TS_INLINE unsigned ts_chunk_code(ts_chunk_t *c, unsigned page) {
  return __atomic_load_n(&ts_chunk_codes(c)[page], __ATOMIC_RELAXED);
}
TS_INLINE void ts_chunk_set_code(ts_chunk_t *c, unsigned page, unsigned code) {
  __atomic_store_n(&ts_chunk_codes(c)[page], (uint8_t)code, __ATOMIC_RELAXED);
}
/* The page code of a page, with a slab page meshed into another
 * (TS_PAGE_MESHED, mesh.c) reading as its class. */
TS_INLINE unsigned ts_chunk_block_code(ts_chunk_t *c, unsigned page) {
  unsigned code = ts_chunk_code(c, page);
  return code == TS_PAGE_MESHED ? c->spans[page].cls : code;
}
void ts_window_set(uintptr_t addr, unsigned kind);
ts_chunk_t *ts_chunk_new(ts_arena_t *arena);      /* NULL on OOM */
void ts_chunk_delete(ts_chunk_t *chunk);
void ts_chunk_mark_used(ts_chunk_t *chunk, unsigned head, unsigned npages);
/* Bit i of purged: page head + i is free but not resident, so not dirty. */
void ts_chunk_mark_free(ts_chunk_t *chunk, unsigned head, unsigned npages, const uint64_t *purged);
bool ts_chunk_is_empty(const ts_chunk_t *chunk);
/* Purges dirty ranges of at least min_run pages until max_pages are purged;
 * returns the pages purged.  (chunk, which, 1, SIZE_MAX): every one.  The
 * chunk's free runs must be in its arena's index (ts_run_recheck moves the
 * runs it purged). */
size_t ts_chunk_purge(ts_chunk_t *chunk, enum ts_purge_which_e which, unsigned min_run, size_t max_pages);
/* Pages this thread gave back to the OS, by purging or by unmapping a
 * chunk (its dirty pages and header): what ts_purge() reports. */
extern __thread size_t ts_pages_returned;
extern _Atomic uint64_t ts_pages_returned_total; /* by every thread, since start */
void ts_chunk_age(ts_chunk_t *chunk);

/* ---- run.c: free runs of pages, best fit, split and coalesce ---- */
/* All take the arena's lock held. */
void ts_run_add_chunk(ts_arena_t *arena, ts_chunk_t *chunk);
void ts_run_remove_chunk(ts_arena_t *arena, ts_chunk_t *chunk);   /* chunk must be empty */
ts_span_t *ts_run_alloc(ts_arena_t *arena, unsigned npages, unsigned align_pages); /* NULL: no room */
/* Frees a run (bit i of purged: page head + i is not resident, as
 * ts_chunk_mark_free); true: the chunk is now empty. */
bool ts_run_free(ts_arena_t *arena, ts_chunk_t *chunk, unsigned head, unsigned npages, const uint64_t *purged);
/* After dirty pages of the free run holding page were purged: moves the
 * run to the clean set if none of its pages is dirty now. */
void ts_run_recheck(ts_arena_t *arena, ts_chunk_t *chunk, unsigned page);
bool ts_run_grow(ts_arena_t *arena, ts_chunk_t *chunk, unsigned head, unsigned old_pages, unsigned new_pages);

/* ---- slab.c: objects of one class inside a run ---- */
bool ts_slab_init(ts_chunk_t *chunk, unsigned head, unsigned cls); /* false: out of memory */
void ts_slab_fini(ts_chunk_t *chunk, ts_span_t *slab); /* its run is being freed */
/* Pages of the slab (mask: bit i is page i) that objects lie on again:
 * young again, and no longer purged; returns how many were purged. */
unsigned ts_slab_pages_in_use(const ts_span_t *slab, uint32_t mask);
unsigned ts_slab_take(ts_chunk_t *chunk, ts_span_t *slab, void **out, unsigned want);
unsigned ts_slab_take_lone(ts_chunk_t *chunk, ts_span_t *slab, void **out, unsigned want);
/* Returns the object's index, or -1 (interior/invalid pointer), -2 (double free). */
int ts_slab_put(ts_chunk_t *chunk, ts_span_t *slab, void *p);
size_t ts_slab_purge_free_pages(ts_chunk_t *chunk, ts_span_t *slab, bool aged_only); /* bin lock held */
TS_INLINE void *ts_slab_base(ts_chunk_t *chunk, const ts_span_t *slab) {
  return ts_chunk_page_addr(chunk, (unsigned)(slab - chunk->spans));
}
TS_INLINE unsigned ts_slab_nobjs(const ts_span_t *s) { return ts_class_slab_objs[s->cls]; }
/* Whether a slab of class cls keeps its freemap out of its span. */
TS_INLINE bool ts_slab_map_ext(unsigned cls) { return ts_class_slab_objs[cls] > 64; }
TS_INLINE uint64_t *ts_slab_freemap(const ts_span_t *s) {
  return ts_slab_map_ext(s->cls) ? s->map.ext : (uint64_t *)(uintptr_t)&s->map.word;
}
TS_INLINE unsigned ts_slab_map_words(const ts_span_t *s) { return (ts_slab_nobjs(s) + 63) / 64; }

/* Page masks of runs of at most 16 pages in a chunk's per-page bitmaps
 * (purged_map, aged_map): bit i of a mask is page head + i.  Slabs of
 * different bins share the words, so writes are atomic read-modify-writes
 * (under the slab's bin lock: the only writer of its bits). */
TS_INLINE uint32_t ts_pagebits_get(const uint64_t *map, unsigned head, unsigned n) {
  unsigned w = head >> 6, b = head & 63;
  uint64_t v = __atomic_load_n(&map[w], __ATOMIC_RELAXED) >> b;
  if (b + n > 64) v |= __atomic_load_n(&map[w + 1], __ATOMIC_RELAXED) << (64 - b);
  return (uint32_t)(v & ((1ull << n) - 1));
}
TS_INLINE void ts_pagebits_change(uint64_t *map, unsigned head, uint32_t mask, bool set) {
  unsigned w = head >> 6, b = head & 63;
  uint64_t lo = (uint64_t)mask << b, hi = b ? (uint64_t)mask >> (64 - b) : 0;
  if (set) {
    if (lo) __atomic_fetch_or(&map[w], lo, __ATOMIC_RELAXED);
    if (hi) __atomic_fetch_or(&map[w + 1], hi, __ATOMIC_RELAXED);
  } else {
    if (lo) __atomic_fetch_and(&map[w], ~lo, __ATOMIC_RELAXED);
    if (hi) __atomic_fetch_and(&map[w + 1], ~hi, __ATOMIC_RELAXED);
  }
}
TS_INLINE unsigned ts_span_head(const ts_span_t *s) { return (unsigned)(s - ts_chunk_of(s)->spans); }
TS_INLINE uint32_t ts_slab_purged(const ts_span_t *s) {
  return ts_pagebits_get(ts_chunk_of(s)->purged_map, ts_span_head(s), s->npages);
}
TS_INLINE uint32_t ts_slab_aged(const ts_span_t *s) {
  return ts_pagebits_get(ts_chunk_of(s)->aged_map, ts_span_head(s), s->npages);
}
TS_INLINE void ts_slab_set_purged(const ts_span_t *s, uint32_t mask, bool set) {
  ts_pagebits_change(ts_chunk_of(s)->purged_map, ts_span_head(s), mask, set);
}
TS_INLINE void ts_slab_set_aged(const ts_span_t *s, uint32_t mask, bool set) {
  ts_pagebits_change(ts_chunk_of(s)->aged_map, ts_span_head(s), mask, set);
}
TS_INLINE uint16_t *ts_slab_mesh(const ts_span_t *s) { return &ts_chunk_of(s)->mesh_group[ts_span_head(s)]; }

/* ---- mixed.c: objects placed in the free space of other classes' slabs ---- */
#define ts_mixed_on() (ts_opt.mixed_slabs && !ts_opt.stats_exact)
bool ts_mixed_holes(ts_arena_t *arena);
/* With bin cls's lock: up to want objects of class cls placed in other
 * bins' sparse slabs; returns how many. */
unsigned ts_mixed_fill(ts_arena_t *arena, unsigned cls, void **out, unsigned want);
/* A block on a TS_PAGE_MIXED page that ts_mixed_class_nolock could not
 * classify: sorted out, or reported, under its slab's bin lock. */
void ts_mixed_free(ts_chunk_t *chunk, void *p, const char *fn);
/* With no lock: the class of p, a live block on a mixed page: of the
 * object placed there that p starts, else of the slab (one of its own, or
 * an invalid pointer that its slab reports at flush); TS_PAGE_MIXED when p
 * lies inside a placed object or outside the slab (ts_mixed_free then
 * reports it). */
unsigned ts_mixed_class_nolock(ts_chunk_t *chunk, const void *p);
/* The slab at head has hosted objects: the record goes when its run does. */
void ts_mixed_forget(ts_chunk_t *chunk, unsigned head);
/* Whether slab s hosts objects of other classes now. */
TS_INLINE bool ts_mixed_hosts(ts_chunk_t *chunk, const ts_span_t *s) {
  return ts_chunk_code(chunk, (unsigned)(s - chunk->spans)) == TS_PAGE_MIXED;
}
unsigned ts_mixed_class_of(ts_chunk_t *chunk, const void *p, const char *fn);
/* With the slab's bin lock: p is a foreign object of slab s; gives it back. */
void ts_mixed_put(ts_bin_t *bin, ts_chunk_t *chunk, ts_span_t *s, void *p, const char *fn);
/* With the slab's bin lock: whether slot i of slab s is covered by
 * foreign objects, and whether page pg of it holds any. */
bool ts_mixed_slot_covered(ts_chunk_t *chunk, const ts_span_t *s, unsigned i);
/* A copy of mixed slab s's maps, TS_MIXED_WORDS(npages) words each (tests). */
void ts_mixed_maps(ts_chunk_t *chunk, const ts_span_t *s, uint64_t *used, uint64_t *ends);
bool ts_mixed_page_used(ts_chunk_t *chunk, const ts_span_t *s, unsigned pg);

/* ---- side.c: each slab's side array of slacks, metadata blocks ---- */
/* Classes below this one have narrow (one-byte) slots. */
#define TS_SIDE_NARROW_CLASSES (TS_SIDE_NARROW_MAX / 16u)
_Static_assert(TS_SIDE_NARROW_MAX < 256, "a narrow slot holds any slack of its class, 0 included");
TS_INLINE ts_side_t **ts_chunk_sides(ts_chunk_t *c) {
  return c->side_area + ((((uintptr_t)c) >> TS_CHUNK_SHIFT) & (TS_CHUNK_COLORS - 1)) * 8;
}
void ts_meta_init(ts_meta_t *m);
/* Pieces of metadata blocks, multiples of 16 bytes (under the meta lock, a leaf). */
void *ts_meta_alloc(ts_meta_t *m, size_t bytes); /* NULL: out of memory */
void ts_meta_free(ts_meta_t *m, void *p, size_t bytes);
bool ts_side_attach(ts_chunk_t *chunk, unsigned head, unsigned cls); /* false: out of memory */
void ts_side_detach(ts_chunk_t *chunk, unsigned head, unsigned npages);
void ts_meta_prefork(ts_arena_t *arena);
void ts_meta_postfork_parent(ts_arena_t *arena);
void ts_meta_postfork_child(ts_arena_t *arena);
/* Object p's slab's side array (p of class cls, on a slab page), and
 * p's index in it; NULL when p lies past the slab's last object (a bad
 * pointer, which the slab reports when it gets it back). */
TS_INLINE ts_side_t *ts_side_find(const void *p, unsigned cls, unsigned *index) {
  ts_side_t *s = ts_chunk_sides(ts_chunk_of(p))[ts_chunk_page_of(p)];
  *index = (unsigned)((((uintptr_t)p - s->base) * ts_class_div_mul[cls]) >> 32);
  return TS_LIKELY(*index < s->nobjs) ? s : NULL;
}
TS_INLINE unsigned ts_side_slack(const ts_side_t *s, unsigned i) {
  return s->cls < TS_SIDE_NARROW_CLASSES ? s->slot[i] : ((const uint16_t *)(const void *)s->slot)[i];
}
TS_INLINE void ts_side_set_slack(ts_side_t *s, unsigned i, unsigned slack) {
  if (s->cls < TS_SIDE_NARROW_CLASSES) s->slot[i] = (uint8_t)slack;
  else ((uint16_t *)(void *)s->slot)[i] = (uint16_t)slack;
}
/* The tags of the slab's objects (option tags). */
TS_INLINE uint16_t *ts_side_tags(ts_side_t *s) { return (uint16_t *)(void *)(s->slot + s->tag_off); }

/* ---- bin.c: the non-full slabs of one class in one arena ---- */
void ts_bin_init(ts_bin_t *bin);
/* With the bin's lock: returns an object of the bin's class to its slab
 * (fatal on an invalid pointer or a double free), then settles the slab:
 * emptied, it becomes the spare or goes back to the arena. */
void ts_bin_put(ts_bin_t *bin, ts_chunk_t *chunk, void *p);
/* With the bin's lock: after objects left or joined slab s. */
void ts_bin_settle(ts_bin_t *bin, ts_chunk_t *chunk, ts_span_t *s);
unsigned ts_bin_fill(ts_arena_t *arena, unsigned cls, void **out, unsigned want);
unsigned ts_bin_fill_own(ts_arena_t *arena, unsigned cls, void **out, unsigned want); /* its own slots only */
void ts_bin_flush(unsigned cls, void **ptrs, unsigned n);
unsigned ts_bin_list_of(unsigned nfree, unsigned nobjs);
size_t ts_bin_mesh(ts_arena_t *arena, unsigned cls);      /* purger: meshes sparse 1-page slabs */
void ts_bin_prefork(void);                        /* the meshing pass lock, around fork */
void ts_bin_postfork_parent(void);
void ts_bin_postfork_child(void);
void ts_bin_release_spare(ts_arena_t *arena, unsigned cls);
size_t ts_bin_purge_pages(ts_arena_t *arena, unsigned cls, bool aged_only);

/* ---- arena.c ---- */
extern ts_arena_t ts_arenas[TS_ARENAS_MAX];
extern unsigned ts_narenas;
void ts_arena_init(ts_arena_t *arena, unsigned index);
ts_arena_t *ts_arena_choose(void);                /* least loaded; counts the thread */
void ts_arena_release(ts_arena_t *arena);         /* a thread unbinds */
/* Page runs (callers hold no arena lock; these take it). */
void *ts_arena_run_alloc(ts_arena_t *arena, unsigned npages, unsigned align_pages, ts_span_t **span_out);
void ts_arena_run_free(ts_chunk_t *chunk, unsigned head); /* takes chunk->arena's lock */
void ts_arena_run_free_locked(ts_chunk_t *chunk, unsigned head);
/* Takes the arena lock; purged as ts_chunk_mark_free's */
void ts_arena_run_free_purged(ts_chunk_t *chunk, unsigned head, const uint64_t *purged);
void *ts_arena_large_alloc(ts_arena_t *arena, size_t size, size_t alignment);
bool ts_arena_large_resize(void *p, size_t new_size); /* in place; true on success */
void ts_arena_prefork(void);
void ts_arena_postfork_parent(void);
void ts_arena_postfork_child(void);

/* ---- huge.c ---- */
/* zero-filled (a fresh mapping); requested: what the caller asked for, for the ledger */
void *ts_huge_alloc(size_t size, size_t alignment, size_t requested);
void ts_huge_free(void *p);
size_t ts_huge_usable(const void *p);
void *ts_huge_realloc(void *p, size_t size);  /* NULL: could not, p untouched */
ts_huge_t *ts_huge_header(const void *p);     /* NULL if p is not a huge pointer */
void ts_huge_each(void (*fn)(void *map, size_t bytes, void *arg), void *arg);
void ts_huge_prefork(void);
void ts_huge_postfork_parent(void);
void ts_huge_postfork_child(void);

/* ---- tcache.c ---- */
extern __thread ts_tcache_t ts_tcache;
/* The owner's view of a bin's count (other threads: TS_SW_LOAD). */
TS_INLINE uint32_t ts_tbin_count(const ts_tbin_t *b) { return b->count; }
TS_INLINE void ts_tbin_set_count(ts_tbin_t *b, uint32_t n) { TS_SW_SET(b->count, n); }
TS_INLINE void *ts_tcache_pop(ts_tbin_t *b) {
  void *p = b->head;
  b->head = *(void **)p;
  TS_SW_ADD(b->count, (uint32_t)-1);
  return p;
}
TS_INLINE void ts_tcache_push(ts_tbin_t *b, void *p) {
  *(void **)p = b->head;
  b->head = p;
  TS_SW_ADD(b->count, 1u);
}
/* The owner's side of trimming (types.h, ts_tcache_s): a use of the cache
 * sits between ts_tcache_enter() and ts_tcache_leave() and reaches the
 * bins through ts_tcache_bins(), read after entering.  Plain stores and
 * loads on x86-64 and AArch64; the signal fence keeps the compiler from
 * moving the read of bins_ptr above the store to in_op. */
extern const ts_tbin_t ts_tcache_trap[TS_NCLASSES];
extern const ts_tbin_t ts_tcache_slow_trap[TS_NCLASSES];
TS_INLINE void ts_tcache_enter(ts_tcache_t *tc) {
  atomic_store_explicit(&tc->in_op, 1, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
}
TS_INLINE ts_tbin_t *ts_tcache_bins(ts_tcache_t *tc) {
  return atomic_load_explicit(&tc->bins_ptr, memory_order_acquire);
}
TS_INLINE void ts_tcache_leave(ts_tcache_t *tc) {
  atomic_store_explicit(&tc->in_op, 0, memory_order_release);
}
ts_tcache_t *ts_tcache_claim(void);               /* the cache, entered; NULL if none */
bool ts_tcache_trim_idle(void);                   /* purger: flush idle caches; true if any is in use */
size_t ts_tcache_held_bytes(const ts_tcache_t *tc);
uint64_t ts_tcache_lost(void); /* caches dropped: their thread exited without the key's destructor */
/* Every thread's counters summed into *sum; objects in thread caches per
 * class into cached[], bytes of large runs cached into *cached_large. */
void ts_tcache_sum_stats(ts_tstats_t *sum, uint64_t *cached, uint64_t *cached_large, uint64_t *cached_medium);
void ts_tcache_flush_medium(ts_tcache_t *tc); /* the medium frees gathered */
void ts_tcache_life_born(ts_tcache_t *tc, void *p); /* entered: a sampled block allocated (tcache.c, Lifetimes) */
void ts_tcache_life_died(ts_tcache_t *tc, void *p); /* entered: one freed */
void ts_tcache_prefork(void);
void ts_tcache_postfork_parent(void);
void ts_tcache_postfork_child(void);
void ts_tcache_setup(ts_tcache_t *tc);            /* called once per thread */
void ts_tcache_teardown(ts_tcache_t *tc);
void *ts_tcache_refill(ts_tcache_t *tc, unsigned cls);
void ts_tcache_flush_bin(ts_tcache_t *tc, unsigned cls, unsigned keep);
void ts_tcache_flush_all(ts_tcache_t *tc);
void ts_tcache_gc(ts_tcache_t *tc);
void *ts_tcache_large_pop(ts_tcache_t *tc, unsigned npages);          /* NULL if none cached */
bool ts_tcache_large_push(ts_tcache_t *tc, void *p, unsigned npages); /* false: over budget */
uint32_t ts_tcache_cap_of(unsigned cls);

/* ---- options.c: TESSERA_CONF, read once at start-up without allocating ---- */
typedef struct ts_options_s {
  uint64_t decay_ms;          /* dirty pages are purged within this long */
  uint64_t dirty_max_bytes;   /* cap on dirty pages per arena, bytes (0: use the share) */
  uint32_t dirty_max_share;   /* cap as a share of the arena's active pages, in 1/1024 */
  bool background_thread;     /* purge on the deadline from a thread of ours */
  bool mesh;                  /* the purger meshes sparse 1-page slabs */
  bool mixed_slabs;           /* objects may go into other classes' slabs (mixed.c) */
  uint8_t medium;             /* TS_MEDIUM_OFF, _ON, _AUTO: requests of 4 to 64 KiB in granule regions (medium.c) */
  bool stats_exact;           /* every small object's request is kept (side.c) */
  bool tags;                  /* blocks are charged to tags (tag.c); implies stats_exact */
  uint8_t stats_print;        /* at exit: 0 none, 1 text, 2 json */
  uint64_t stats_interval_ms; /* periodic snapshots to stats_file, 0: none */
  const char *stats_file;     /* path template (%p: the pid), a copy of the option's value */
  size_t stats_file_len;
} ts_options_t;
extern ts_options_t ts_opt;
void ts_options_init(void);
/* The record of the slab whose head page is head, NULL when it has none;
 * never the side arrays that share its storage (types.h). */
TS_INLINE struct ts_mixed_s *ts_chunk_mixed(const ts_chunk_t *c, unsigned head) {
  return ts_mixed_on() && __atomic_load_n(&c->has_mixed, __ATOMIC_RELAXED) ? c->mixed[head] : NULL;
}

/* ---- purge.c: returning free pages to the OS ---- */
size_t ts_purge_dirty_pages(void);               /* over all arenas; takes their locks */
void ts_purge_after_free(ts_arena_t *arena);      /* arena lock held: enforces the dirty cap */
size_t ts_purge_cap_pages(const ts_arena_t *arena); /* arena lock held: its dirty cap, in pages */
void ts_purge_kick(void);                         /* no lock held: make sure the purger runs */
size_t ts_purge_mesh(void);                       /* purger only: mesh sparse slabs; pages given back */
void ts_purge_init(void);                         /* one thread running: set up the purger's clock */
void ts_purge_postfork_child(void);

/* ---- medium.c: blocks of 4 to 64 KiB in regions of 256-byte granules ---- */
/* Which requests (alignment at most a granule) are medium blocks: the
 * option, fixed at start-up (stats_exact keeps every small block's request,
 * which a medium block has no place for), and with medium:auto the
 * thread's mode (tcache.c, Lifetimes). */
enum { TS_MEDIUM_OFF = 0, TS_MEDIUM_ON = 1, TS_MEDIUM_AUTO = 2 };
/* medium:auto in effect: each thread chooses by the lifetimes it sees (tcache.c) */
#define ts_medium_auto() (ts_opt.medium == TS_MEDIUM_AUTO && !ts_opt.stats_exact)
/* Whether a request of size bytes may be a medium block (realloc in place;
 * whether this thread makes it one now: alloc.c, medium_wanted). */
#define ts_medium_size(size) \
  ((size) > TS_MEDIUM_MIN_SIZE && (size) <= TS_MEDIUM_MAX_SIZE && ts_opt.medium != TS_MEDIUM_OFF && !ts_opt.stats_exact)
void ts_medium_init(ts_medium_t *m);
ts_medium_region_t *ts_medium_region(ts_chunk_t *chunk, unsigned head);
void *ts_medium_alloc(ts_arena_t *arena, size_t size);              /* no lock held; NULL: out of memory */
void ts_medium_free_many(void **ptrs, unsigned n, const char *fn);  /* no lock held; reports a bad one */
size_t ts_medium_usable(ts_chunk_t *chunk, const void *p);          /* no lock; 0: p is not a block */
bool ts_medium_resize(ts_chunk_t *chunk, void *p, size_t size);     /* in place; false: cannot */
size_t ts_medium_purge(ts_arena_t *arena, bool aged_only); /* the empty region out, free pages purged */
void ts_medium_prefork(ts_arena_t *arena);
void ts_medium_postfork_parent(ts_arena_t *arena);
void ts_medium_postfork_child(ts_arena_t *arena);

/* ---- mesh.c: pages of chunks showing one shared physical page ---- */
bool ts_mesh_usable(void);                         /* the file and the SIGSEGV handler are in place */
uint32_t ts_mesh_share(void *dst);                 /* dst becomes shared; its file page or UINT32_MAX */
bool ts_mesh_merge(void *dst, uint32_t fpage, void *src, const uint64_t *used, size_t size, unsigned nobjs);
void ts_mesh_privatize(void *page);                /* a private copy of what page shows */
void ts_mesh_discard(void *page);                  /* a fresh private zero page */
void ts_mesh_release(uint32_t fpage);              /* the file page is mapped nowhere now */
uint32_t ts_mesh_shared_pages(void);
bool ts_mesh_reserve(unsigned pages);               /* pages into groups: false over TS_MESH_MAX_PAGES */
void ts_mesh_unreserve(unsigned pages);
uint32_t ts_mesh_group_pages(void);                /* pages in mesh groups */
unsigned ts_mesh_group_new(void);                  /* a group index, 0 if none is left */
ts_mesh_group_t *ts_mesh_group(unsigned g);
void ts_mesh_group_free(unsigned g);
void ts_mesh_prefork(void);                        /* every bin lock held: private copies for the fork */
void ts_mesh_postfork_child(void);

/* ---- stats.c: the ledger ---- */
/* TS_STATS=0 compiles the fast paths' call counters out (for measuring
 * their cost). */
#ifndef TS_STATS
#define TS_STATS 1
#endif
/* Counters of threads without a cache and of exited threads: updated with
 * atomic read-modify-writes (slow paths only). */
extern ts_tstats_t ts_stats_orphan;
TS_INLINE void ts_cnt_bump(uint64_t *c, uint64_t d) { TS_SW_ADD(*c, d); }
/* shared: st is ts_stats_orphan, which other threads update too. */
TS_INLINE void ts_cnt_add(bool shared, uint64_t *c, uint64_t d) {
  if (shared) TS_SHARED_ADD(*c, d);
  else ts_cnt_bump(c, d);
}
/* The counters the calling thread updates: its own while it has a cache. */
TS_INLINE ts_tstats_t *ts_stats_here(void) {
  return ts_tcache.state == TS_TCACHE_ACTIVE ? &ts_tcache.stats : &ts_stats_orphan;
}
/* The slow paths' accounting of small objects.  With option stats_exact
 * (or tags) every call takes the slow path (the fast bins are a trap) and
 * these keep each object's slack (and tag) in its slab's side array. */
void ts_acct_exact_alloc(ts_tstats_t *st, bool shared, void *p, unsigned cls, size_t n);
void ts_acct_exact_free(ts_tstats_t *st, bool shared, void *p, unsigned cls);
/* p, of class cls, was just taken from a thread cache or a bin for a
 * request of n bytes. */
TS_INLINE void ts_acct_small_alloc(ts_tstats_t *st, bool shared, void *p, unsigned cls, size_t n) {
  ts_cnt_add(shared, &st->nmalloc, 1);
  if (ts_opt.stats_exact) ts_acct_exact_alloc(st, shared, p, cls, n);
}
/* p, of class cls, is being freed. */
TS_INLINE void ts_acct_small_free(ts_tstats_t *st, bool shared, void *p, unsigned cls) {
  ts_cnt_add(shared, &st->nfree, 1);
  if (ts_opt.stats_exact) ts_acct_exact_free(st, shared, p, cls);
}
void ts_acct_large_alloc(ts_tstats_t *st, void *p, size_t n); /* p: a large run's first page */
void ts_acct_large_free(ts_tstats_t *st, ts_chunk_t *c, unsigned page);
void ts_acct_large_resize(ts_tstats_t *st, void *p, size_t n);
void ts_acct_small_resize(void *p, unsigned cls, size_t n); /* realloc within the class */
void ts_acct_call(enum ts_call_e call);
ts_tag_t ts_tag_of_block(const void *p);         /* option tags */
void ts_stats_tick(void);                         /* purger: sample the peaks */
void ts_stats_prefork(void);
void ts_stats_writer_kick(void);                  /* starts the periodic writer (stats_interval_ms) */
void ts_stats_writer_postfork_child(void);
void ts_stats_postfork_parent(void);
void ts_stats_postfork_child(void);
extern _Atomic uint64_t ts_huge_requested, ts_huge_usable_total, ts_huge_count,
    ts_huge_nmalloc, ts_huge_nfree;

/* ---- tag.c ---- */
extern __thread ts_tag_t ts_tag_current;
void ts_tag_account(unsigned tag, int64_t bytes, bool allocation);
void ts_tag_prefork(void);
void ts_tag_postfork_parent(void);
void ts_tag_postfork_child(void);

/* ---- init.c ---- */
extern atomic_int ts_init_state;                  /* 0 none, 1 running, 2 done */
void ts_init_slow(void);
TS_INLINE bool ts_is_ready(void) {
  return atomic_load_explicit(&ts_init_state, memory_order_acquire) == 2;
}
ts_arena_t *ts_thread_arena(void);                /* this thread's arena, set up if needed */
ts_tcache_t *ts_thread_tcache(void);              /* NULL when no cache can be used */

/* ---- alloc.c ---- */
void ts_free_slow(void *p, const char *fn);
size_t ts_usable_checked(const void *p, const char *fn);

#endif /* TS_INTERNAL_H */
