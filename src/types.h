/* SPDX-License-Identifier: MIT */
/*
 * types.h: every core structure of tessera and the constants that size them.
 *
 * Layers, bottom up (docs/ARCHITECTURE.md draws them):
 *   os      -> pages from the kernel (mmap/munmap/madvise/mremap)
 *   chunk   -> 4 MiB aligned chunks; free/dirty page bitmaps; page -> span
 *   run     -> free runs of pages indexed by length per arena (best fit)
 *   slab    -> a run holding objects of one size class, a free bitmap per slab
 *   bin     -> per arena and class: the non-full slabs, ordered by fullness
 *   arena   -> chunks + bins; threads are bound to the least loaded arena
 *   tcache  -> per-thread lists of free objects (and large runs) in front of the bins
 *   huge    -> requests above TS_LARGE_MAX, mapped on their own
 *   alloc   -> the malloc family on top of all of these
 *   purge   -> dirty pages back to the OS on a deadline and under a cap
 *
 * Where a pointer's metadata lives: the global chunk map (one byte per 4 MiB
 * window of the address space) says whether a window is a tessera chunk, a
 * huge mapping, or nothing of ours.  A chunk keeps its metadata in its first
 * pages (struct ts_chunk_s); a huge mapping keeps its header in the page just
 * before the user pointer.  No object carries a header.
 */
#ifndef TS_TYPES_H
#define TS_TYPES_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TS_LIKELY(x) __builtin_expect(!!(x), 1)

/* Single-writer counters: written by one thread (a thread cache's owner),
 * read by others (the ledger).  The owner adds with a plain add, one
 * instruction on the fast paths; readers load with relaxed atomic loads
 * (aligned 64-bit loads and stores do not tear on the 64-bit targets
 * tessera supports).  Under ThreadSanitizer the owner's stores are relaxed
 * atomics too, so that the tool sees no race.  Counters several threads
 * add to use TS_SHARED_ADD. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define TS_SW_ADD(x, d) __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + (d), __ATOMIC_RELAXED)
#define TS_SW_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#else
#define TS_SW_ADD(x, d) ((x) += (d))
#define TS_SW_SET(x, v) ((x) = (v))
#endif
#define TS_SW_LOAD(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)
#define TS_SHARED_ADD(x, d) ((void)__atomic_fetch_add(&(x), (d), __ATOMIC_RELAXED))
#define TS_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define TS_INLINE static inline __attribute__((always_inline))
#define TS_NOINLINE __attribute__((noinline))

/* ---- Sizes ---- */

/* The kernel's page on x86-64 and arm64 (4 KiB kernels).  Runs, slabs and
 * purging work in these units. */
#define TS_PAGE_SHIFT 12
#define TS_PAGE_SIZE ((size_t)1 << TS_PAGE_SHIFT)
#define TS_PAGE_MASK (TS_PAGE_SIZE - 1)

/* Chunks are 4 MiB, aligned to 4 MiB, so that p & ~TS_CHUNK_MASK finds the
 * header of the chunk holding p.  4 MiB holds the largest run (2 MiB) twice
 * over, keeps the header (about 84 KiB of address space, of which only the
 * touched part is resident) under 2.5% of the chunk, and is a multiple of
 * the 2 MiB huge page so that later purging can work in aligned 2 MiB
 * units. */
#define TS_CHUNK_SHIFT 22
#define TS_CHUNK_SIZE ((size_t)1 << TS_CHUNK_SHIFT)
#define TS_CHUNK_MASK (TS_CHUNK_SIZE - 1)
#define TS_CHUNK_PAGES (TS_CHUNK_SIZE >> TS_PAGE_SHIFT) /* 1024 */

/* User-space addresses on x86-64 (4-level paging) and arm64 (48-bit VA)
 * are below 2^48: the chunk map needs 2^(48-22) = 64 Mi one-byte entries
 * (64 MiB of address space in .bss; only pages for windows in use are ever
 * touched, 4 KiB of map per 16 GiB of address space). */
#define TS_ADDR_BITS 48
#define TS_MAP_ENTRIES ((size_t)1 << (TS_ADDR_BITS - TS_CHUNK_SHIFT))

/* Size classes (sizeclass.c): 16-byte steps up to 256 bytes, then 16
 * classes per doubling up to 32 KiB, so a request above 256 bytes wastes
 * less than 1/16 of itself, and one above 128 bytes less than 1/8.  Classes
 * are multiples of 16 so every object is 16-byte aligned; that alignment is
 * what bounds the steps below 256 bytes (at most 15 bytes of waste).  32 KiB
 * is the largest slab class because above it rounding to whole pages
 * already wastes at most 4 KiB / 32 KiB = 12.5%. */
#define TS_MIN_ALIGN_BYTES 16
#define TS_SMALL_MAX ((size_t)32768)
#define TS_NCLASSES 128
#define TS_CLASSES_PER_DOUBLING 16

/* Large requests (above TS_SMALL_MAX) get page runs inside chunks, up to
 * 2 MiB, half a chunk, so a chunk can always hold the largest run even
 * after its header.  Above that a request is huge and mapped alone. */
#define TS_LARGE_MAX ((size_t)2 << 20)

/* A slab is at most 16 pages (64 KiB) and holds at most 256 objects (the
 * 16-byte class in one page), so its bitmap is at most 32 bytes: one word
 * in its span for slabs of up to 64 objects (every class from 64 bytes),
 * the rest in a metadata piece (ts_span_s). */
#define TS_SLAB_MAX_PAGES 16
#define TS_SLAB_MAX_OBJS 256
#define TS_SLAB_MAP_WORDS (TS_SLAB_MAX_OBJS / 64)

/* At most one arena per CPU, and at most this many. */
#define TS_ARENAS_MAX 64

/* Chunk headers place their page codes at one of 64 offsets (see
 * ts_chunk_s). */
#define TS_CHUNK_COLORS 64

/* The chunk map's kinds of window. */
enum ts_window_kind_e {
  TS_WINDOW_NONE = 0,  /* not tessera's */
  TS_WINDOW_CHUNK = 1, /* a chunk: header at the window's base */
  TS_WINDOW_HUGE = 2,  /* a huge mapping whose user pointer is the window's base */
};

/* Per-page codes of a chunk (ts_chunk_codes()).  Values below TS_NCLASSES are the
 * size class of a slab page, which is all the free fast path needs. */
enum ts_page_code_e {
  TS_PAGE_MEDIUM = 0xF9,  /* a page of a medium region (medium.c): its blocks' sizes come
                             from the region's granule maps */
  TS_PAGE_MIXED = 0xFA,   /* a slab holding objects of other classes too (mixed.c): its frees
                             find the class under the bin lock */
  TS_PAGE_MESHED = 0xFB,  /* a 1-page slab meshed into another: spans[p].next is that slab,
                             spans[p].cls the class */
  TS_PAGE_CACHED = 0xFC,  /* first page of a large run held in a thread cache */
  TS_PAGE_LARGE = 0xFD,   /* first page of a large run */
  TS_PAGE_META = 0xFE,    /* chunk header */
  TS_PAGE_NOBLOCK = 0xFF, /* no block starts here: a free page, or a large run's later page */
};

/* ---- Spans: runs of pages ---- */

typedef struct ts_arena_s ts_arena_t;
typedef struct ts_chunk_s ts_chunk_t;

/* A span describes a run of pages that starts at its page.  Only the head
 * page's span is meaningful (a slab's later pages' spans hold its granule
 * maps when it hosts placed objects, mixed.c; a medium region's hold its
 * record, medium.c).  For a slab, with nobjs == ts_class_slab_objs[cls]:
 *   nfree == popcount(ts_slab_freemap(s)) and 0 <= nfree <= nobjs,
 *   the slab is on its bin's list number ts_bin_list_of(nfree, nobjs) iff
 *   0 < nfree, or is the bin's spare (nfree == nobjs), or on no list when
 *   full (nfree == 0);
 *   its freemap is map.word when nobjs <= 64, else map.ext, a piece of
 *   the arena's metadata blocks (side.c) from ts_slab_init until its run
 *   is freed;
 *   its pages' purged and aged bits are in the chunk's purged_map and
 *   aged_map, its mesh group in chunk->mesh_group[head];
 * objects handed to thread caches count as allocated.
 * For a large run in use: map.word is the bytes requested, tag its tag.
 * 32 bytes, two to a cache line: the span array is most of a chunk
 * header's resident pages (docs/ARCHITECTURE.md, Mixed slabs: Spans of 32 bytes). */
typedef struct ts_span_s {
  struct ts_span_s *next; /* bin list links; a free run: its index list (run.c) */
  struct ts_span_s *prev;
  uint16_t npages;        /* pages in the run (at most TS_CHUNK_PAGES) */
  union {
    uint16_t nfree;       /* slab: free objects */
    uint16_t tag;         /* large run: its tag (option tags) */
  };
  uint8_t is_slab;        /* 1 for a slab, 0 for a large run */
  uint8_t cls;            /* size class of a slab */
  uint8_t list;           /* slab: bin list it is on, TS_BIN_NOLIST if none; free run: its set (run.c) */
  uint8_t room;           /* slab: no run of free granules this long or longer (mixed.c); 255: unknown */
  union {
    uint64_t word;        /* slab of up to 64 objects: bit i set <=> object i is free; large run: bytes requested */
    uint64_t *ext;        /* slab of more: its freemap, TS_SLAB_MAP_WORDS words */
  } map;
} ts_span_t;
_Static_assert(sizeof(ts_span_t) == 32, "two spans to a cache line");
_Static_assert(TS_CHUNK_PAGES <= UINT16_MAX, "a run's page count fits npages");
_Static_assert(TS_SLAB_MAX_PAGES <= 16, "a slab's pages fit a 16-bit page mask");

/* ---- Chunks ---- */

/* The header at the base of every chunk.  Its pages are marked
 * TS_PAGE_META; the rest of the chunk is pages for runs.
 *   free_pages == popcount(free_map)
 *   page_head[p] == head page of the slab holding page p (slab pages only)
 *   codes[p] == class of the slab holding p, or a ts_page_code_e,
 *   where codes = ts_chunk_codes(chunk) (internal.h).
 * Chunk headers all sit at 4 MiB-aligned addresses, so a field at a fixed
 * offset would fall in the same few cache sets in every chunk, and the free
 * fast path, which reads a page code per call, would miss the cache once a
 * program used more chunks than the cache has ways.  The codes therefore
 * start at a "colour" offset, 64 bytes times the chunk's address bits above
 * the chunk size modulo TS_CHUNK_COLORS, which spreads them over 64 sets. */
struct ts_chunk_s {
  uint64_t cookie;             /* TS_CHUNK_MAGIC ^ secret: validates the header */
  ts_arena_t *arena;           /* owning arena */
  ts_chunk_t *next;            /* the arena's chunks, by increasing address */
  uint32_t free_pages;         /* pages not in any run */
  uint32_t first_page;         /* first page after the header */
  /* page codes: TS_CHUNK_PAGES bytes at a per-chunk offset, see below */
  uint8_t page_code_area[TS_CHUNK_PAGES + TS_CHUNK_COLORS * 64];
  uint16_t page_head[TS_CHUNK_PAGES];
  uint32_t dirty_pages;        /* popcount(dirty_map) */
  uint32_t has_mixed;          /* some slab here got a mixed record: mixed[] may be read (relaxed atomic) */
  uint64_t free_map[TS_CHUNK_PAGES / 64];  /* bit set: page free */
  uint64_t dirty_map[TS_CHUNK_PAGES / 64]; /* free and maybe resident: dirty subset of free */
  uint64_t young_map[TS_CHUNK_PAGES / 64]; /* dirtied since the last purger tick: subset of dirty */
  /* a slab's pages: bit p set <=> page p holds only free objects and was
   * purged (purged_map), or the last purger tick found it so and none was
   * taken since (aged_map); written under the slab's bin lock, with atomic
   * read-modify-writes, as slabs of other bins share the words; next to
   * the other maps, so that the pages after them hold only what a chunk
   * may never touch (side arrays, mesh groups) */
  uint64_t purged_map[TS_CHUNK_PAGES / 64];
  uint64_t aged_map[TS_CHUNK_PAGES / 64];
  /* side arrays: TS_CHUNK_PAGES pointers at a per-chunk offset like the
   * codes (ts_chunk_sides()); entry p is the side array of the slab holding
   * page p (side.c), set for every page of a slab */
  /* mixed[h]: the granule maps of the slab whose head page is h while it
   * holds objects of other classes (mixed.c), else NULL; read through
   * ts_chunk_mixed(), which reads nothing here until has_mixed is set
   * (a read of a page never written maps the kernel's zero page, which
   * mincore, and so the ledger, would count as resident).  Mixed slabs
   * are off with stats_exact, the only user of side arrays, so the two
   * share their storage. */
  union {
    struct ts_side_s *side_area[TS_CHUNK_PAGES + TS_CHUNK_COLORS * 8];
    struct ts_mixed_s *mixed[TS_CHUNK_PAGES];
  };
  uint16_t mesh_group[TS_CHUNK_PAGES]; /* a slab's mesh group (mesh.c) at its head page, 0 if none */
  ts_span_t spans[TS_CHUNK_PAGES];
};

/* ---- Mixed slabs (mixed.c) ---- */

/* A slab's pages in granules of 16 bytes, the unit in which objects of
 * other classes are placed into its free space. */
#define TS_GRANULE_SHIFT 4
#define TS_PAGE_GRANULES (TS_PAGE_SIZE >> TS_GRANULE_SHIFT) /* 256 */
#define TS_MIXED_WORDS(npages) ((npages) * TS_PAGE_GRANULES / 64)
/* The largest class placed into other classes' slabs: 1 KiB, 64 granules
 * (docs/ARCHITECTURE.md, Mixed slabs). */
#define TS_MIXED_MAX_SIZE 1024u
/* Slabs the snug pass of a fill looks at first (mixed.c, ts_mixed_fill):
 * on the redis-like refill 64 gave 1.169, 128 1.167 at more time, 32 1.170. */
#define TS_MIXED_SNUG_SLABS 64
/* Placed objects a flush collects before giving them back (bin.c). */
#define TS_MIXED_FLUSH_BATCH 64
/* A span's `room` when no placement failed since the slab last gained free space. */
#define TS_ROOM_UNKNOWN 255

/* The granule maps of a mixed slab, guarded by its bin's lock:
 *   used:  bit g set <=> granule g belongs to a foreign object;
 *   ends:  bit g set <=> a foreign object's last granule is g;
 *   the slab's pages have the code TS_PAGE_MIXED <=> some bit of ends is
 *   set (it hosts an object), else their class.
 * Each page's maps are 4 words each: the head page's used map in used0
 * here, page i's (i > 0) in the span of page head + i, which a slab's
 * later pages leave unused; every page's ends map here, page i's at
 * ends[4i].  The record is 32 + 32 * npages bytes, a metadata piece
 * (mixed.c, ts_mixed_maps).
 * A slot of the slab's own class is free (its freemap bit set), holds an
 * object of the class (bit clear, no used granule in it), or is covered
 * (bit clear, some used granule in it): covered slots are counted in the
 * bin's `covered`, not in nfree. */
typedef struct ts_mixed_s {
  uint64_t used0[4];
  uint64_t ends[];
} ts_mixed_t;
#define TS_MIXED_RECORD_BYTES(npages) (sizeof(ts_mixed_t) + (size_t)(npages) * 4 * sizeof(uint64_t))
_Static_assert(sizeof(ts_span_t) == 4 * sizeof(uint64_t), "a page's used map fills one span");

enum ts_purge_which_e {
  TS_PURGE_OLD, /* dirty pages that were freed before the last tick */
  TS_PURGE_ALL, /* every dirty page */
};

/* ---- Tags (tag.c) ---- */
typedef uint16_t ts_tag_t; /* as in tessera.h */

/* ---- Side arrays (side.c) ---- */

/* Per slab, for each object, the bytes of its class that the caller did
 * not ask for (its slack), so that the ledger's requested bytes are exact
 * (stats.c).  One byte per object in classes up to TS_SIDE_NARROW_MAX
 * (any slack fits: at most the class size, for a 0-byte aligned request
 * given a class for its alignment), two above (2/256 of the memory at
 * most, under 1%).
 * A byte per object and not a nibble because objects of one slab are
 * handed out by different threads at once, and a plain store must not
 * touch a neighbour's slot.  Written when the object is handed out, read
 * when it is freed.  Lives in metadata blocks of its arena, never in the
 * slab (a 4 KiB class fills its page).
 *   base == address of the slab's first object
 *   slack of object i == slot[i] (narrow) or ((uint16_t *)slot)[i] */
#define TS_SIDE_NARROW_MAX 240u
typedef struct ts_side_s {
  uintptr_t base;
  uint16_t aidx;     /* index of the slab's arena */
  uint16_t nobjs;
  uint16_t cls;
  uint16_t tag_off;  /* option tags: the objects' tags (uint16_t) start at slot + tag_off */
  uint8_t slot[];
} ts_side_t;

/* The metadata blocks side arrays are carved from, per arena, under their
 * own lock (a leaf: taken under bin and arena locks).  Sizes are multiples
 * of 16 bytes, one free list per size. */
#define TS_META_BLOCK_BYTES ((size_t)256 << 10)
#define TS_META_LISTS 49 /* the largest side array: 256 objects of 16 bytes with tags, 784 bytes */
typedef struct ts_meta_s {
  pthread_mutex_t lock;
  void *free[TS_META_LISTS];  /* free[i]: free pieces of 16 * (i + 1) bytes */
  char *cur, *end;            /* bump region of the newest block */
  size_t mapped_bytes;        /* blocks mapped */
  size_t used_bytes;          /* pieces handed out */
  size_t touched_bytes;       /* bump-allocated so far: resident at most */
} ts_meta_t;

/* ---- Per-thread counters (stats.c) ---- */

/* A thread's share of the ledger: single-writer counters (TS_SW_ADD, at
 * the top), read by ts_stats_get from other threads.  Sums over threads
 * wrap modulo 2^64, so a block freed by another thread than the one that
 * allocated it nets out in the total.  A thread's counters are folded into
 * ts_stats_orphan when it exits.  The fast paths bump nmalloc or nfree
 * only; what is live comes from the bins' counters minus what the thread
 * caches hold (stats.c). */
enum ts_call_e { TS_CALL_CALLOC, TS_CALL_REALLOC, TS_CALL_ALIGNED, TS_CALL_REMOTE_FREE, TS_NCALLS };
typedef struct ts_tstats_s {
  uint64_t nmalloc;                        /* blocks handed to callers */
  uint64_t nfree;                          /* and taken back */
  /* bytes asked for minus bytes freed, by arena of the memory: large runs
   * always, small objects with option stats_exact */
  uint64_t requested[TS_ARENAS_MAX];
  uint64_t calls[TS_NCALLS];
  uint32_t aidx;                           /* the owner's arena (remote frees are frees of others') */
} ts_tstats_t;

/* ---- Huge mappings ---- */

/* Header in the page before a huge user pointer; the mapping runs from the
 * header's page to the end of the usable bytes. */
typedef struct ts_huge_s {
  uint64_t cookie;       /* TS_HUGE_MAGIC ^ secret */
  size_t map_bytes;      /* whole mapping, header page included */
  size_t usable_bytes;   /* bytes from the user pointer to the end */
  size_t requested_bytes; /* what the caller asked for (stats) */
  uint64_t tag;          /* the tag charged for it (option tags) */
  struct ts_huge_s *prev, *next; /* every huge block, for the ledger (huge.c) */
} ts_huge_t;

/* ---- Medium regions (medium.c) ---- */

/* Requests above TS_MEDIUM_MIN_SIZE up to TS_MEDIUM_MAX_SIZE are blocks
 * of whole granules of 256 bytes in regions of TS_MEDIUM_REGION_PAGES
 * pages, first fit, free neighbours coalescing (docs/ARCHITECTURE.md, A
 * medium heap, has why 4 and 64 KiB, 256 bytes, 1 MiB).  A region's maps
 * and their summary take 1.8 KiB of the spans of its pages (16 KiB). */
#define TS_MEDIUM_MIN_SIZE 4096u
#define TS_MEDIUM_GRANULE_SHIFT 8
#define TS_MEDIUM_REGION_PAGES 256u
#define TS_MEDIUM_MASK_WORDS (TS_MEDIUM_REGION_PAGES / 64)
#define TS_MEDIUM_GRANULES ((TS_MEDIUM_REGION_PAGES << TS_PAGE_SHIFT) >> TS_MEDIUM_GRANULE_SHIFT) /* 4096 */
#define TS_MEDIUM_WORDS (TS_MEDIUM_GRANULES / 64)
#define TS_MEDIUM_PAGE_GRANULES (TS_PAGE_SIZE >> TS_MEDIUM_GRANULE_SHIFT) /* 16 */
#define TS_MEDIUM_MAX_SIZE ((size_t)64 << 10)
/* Medium frees a thread gathers (ts_tcache_s) before it takes the medium
 * locks, one per arena met: a lock per 32 frees instead of one per free. */
#define TS_MEDIUM_PENDING 32
/* medium:auto (tcache.c, Lifetimes): a thread's last 16 sampled blocks are
 * "young" (a request's buffers die within a few of its allocations; 16
 * compares per free of such a block); it decides every 256 frees of them
 * (a new server thread settles within a few hundred requests; with 64, a
 * burst of old frees, a peer's hand-offs drained at once, moved the speed
 * suite's server threads to medium blocks and back 5 to 15 times a run);
 * page runs above 32 KiB are sampled (those below take the slab fast
 * path). */
#define TS_LIFE_RING 16
#define TS_LIFE_WINDOW 256
#define TS_LIFE_MIN_SIZE ((size_t)32 << 10)
#define TS_LIFE_BACKOFF_MAX 64

/* A region's record, in the spans of its pages after the head (which a
 * run leaves unused, as mixed slabs' maps do), guarded by its arena's
 * medium lock:
 *   used:  bit g set <=> granule g belongs to a block;
 *   ends:  bit g set <=> a block's last granule is g (a subset of used);
 *   a block starts at g <=> used bit g set and (g == 0 or used bit g - 1
 *   clear or ends bit g - 1 set);
 *   pre, suf, best of every node of the summary tree are those of the
 *   used map's bits in its range (kept at every change of the map, word
 *   by word up to the root); best[1] is the region's longest free run;
 *   purged: bit p set <=> page p holds no granule of a block and was
 *   purged; aged: bit p set <=> the last tick found page p free (and not
 *   purged), and no block was placed on it since.
 * A live block's own bits do not change until it is freed, so a free reads
 * them with no lock (relaxed atomic words: others change around them). */
typedef struct ts_medium_region_s {
  uint64_t used[TS_MEDIUM_WORDS];
  uint64_t ends[TS_MEDIUM_WORDS];
  uint64_t purged[TS_MEDIUM_MASK_WORDS];
  uint64_t aged[TS_MEDIUM_MASK_WORDS];
  /* The used map's summary tree: node 1 covers the region, node i's
   * children are 2i and 2i + 1, node TS_MEDIUM_WORDS + w is word w.  Per
   * node, in granules: the free run its range starts with (pre), ends with
   * (suf), and its longest (best). */
  uint16_t pre[2 * TS_MEDIUM_WORDS], suf[2 * TS_MEDIUM_WORDS], best[2 * TS_MEDIUM_WORDS];
  uint32_t slot;          /* index in the arena's region table */
  uint32_t nblocks;
} ts_medium_region_t;

/* An arena's regions: a table of slots, the lowest slot with room first
 * (slots are reused lowest first, so the oldest regions fill first, as the
 * lowest addresses do in a first-fit heap), found through a max-tree of
 * each slot's longest free run. */
typedef struct ts_medium_s {
  pthread_mutex_t lock;
  ts_span_t **regions;    /* slot -> head span of its region, or NULL */
  uint16_t *tree;         /* max-tree over slots: tree[nslots + i] is slot i's longest run */
  uint32_t nslots;        /* table capacity, a power of two (0: none yet) */
  uint32_t nregions;      /* slots in use */
  uint32_t empty_slot;    /* an empty region kept for reuse, or UINT32_MAX */
  /* for the ledger (stats.c): */
  uint64_t pages;         /* pages of the regions not purged */
  uint64_t used_bytes;    /* the blocks' bytes (whole granules) */
} ts_medium_t;

/* ---- Bins and arenas ---- */

/* Non-full slabs sit on one of TS_BIN_LISTS lists by how full they are;
 * refills take from the fullest list first (Netty's usage-ordered chunk
 * lists, TCMalloc's occupancy-ordered spans), so sparse slabs drain and
 * their pages go back to the arena. */
#define TS_BIN_LISTS 4
#define TS_BIN_NOLIST 0xFF

typedef struct ts_bin_s {
  pthread_mutex_t lock;
  ts_span_t *lists[TS_BIN_LISTS]; /* lists[i]: slabs with i/4 <= used/nobjs < (i+1)/4 */
  ts_span_t *spare;               /* one empty slab kept to avoid thrash */
  uint8_t room;                   /* mixed.c: no slab on the lists has a run of free granules this
                                     long or longer; TS_ROOM_UNKNOWN since one gained free space */
  uint8_t lone_skip;              /* bin.c: fills left that skip the search for lone slots */
  uint8_t lone_backoff;           /* bin.c: what lone_skip is set to when a search finds none */
  /* for the ledger (stats.c), over the slabs this bin owns: */
  uint64_t slabs;
  uint64_t objects;               /* their object slots */
  uint64_t free_objs;             /* == sum of their nfree */
  uint64_t pages;                 /* their pages not purged (a page meshed away is not theirs) */
  uint64_t covered;               /* their slots covered by objects of other classes */
  uint64_t hosted;                /* bytes of objects of other classes in their slabs */
} ts_bin_t;


/* Free runs are indexed by length (run.c): one list per page count, in
 * two sets: runs with at least one dirty (resident) page, and clean runs. */
#define TS_RUN_LISTS TS_CHUNK_PAGES
enum ts_run_set_e { TS_RUNS_CLEAN, TS_RUNS_DIRTY, TS_RUN_SETS };

struct ts_arena_s {
  pthread_mutex_t lock;     /* chunks, page runs */
  ts_span_t *free_runs[TS_RUN_SETS][TS_RUN_LISTS]; /* [set][i]: free runs of i + 1 pages */
  uint64_t free_runs_nonempty[TS_RUN_SETS][TS_RUN_LISTS / 64];
  ts_chunk_t *chunks;       /* address-ordered */
  ts_chunk_t *spare_chunk;  /* an empty chunk kept mapped, or NULL */
  unsigned index;
  atomic_uint xthreads;     /* threads bound to this arena */
  size_t active_pages;      /* pages in runs (slabs and large blocks) */
  size_t dirty_pages;       /* free pages not yet purged, over all chunks */
  uint64_t cap_over_ns;     /* when dirty_pages passed a soft cap (purge.c), or 0 */
  _Atomic size_t large_pages; /* pages of large runs out of the arena (held or cached) */
  ts_meta_t meta;           /* side arrays, mixed slabs' granule maps */
  ts_medium_t medium;       /* medium regions: blocks of 4 to 64 KiB (medium.c) */
  ts_bin_t bins[TS_NCLASSES];
  /* objects of each class placed in other classes' slabs (mixed.c): read
   * by the ledger, changed under the holding slab's bin lock */
  _Atomic uint64_t foreign_objs[TS_NCLASSES];
};

/* ---- Meshing (mesh.c) ---- */

/* Meshing's bounds.  Every page that shows a shared page is a mapping of
 * its own inside its chunk's (up to two more mappings), so the pages in
 * mesh groups are capped at TS_MESH_MAX_PAGES: at most 32768 mappings more,
 * half the kernel's default limit of 65530 (vm.max_map_count), and up to
 * 64 MiB of pages whose memory is shared.  A group is a slab and up to
 * TS_MESH_GROUP_MAX - 1 slabs meshed into it: on the two-wave pattern,
 * groups of 5 left RSS/live at 3.08 after the idle, of 9 at 3.05, of 16
 * at 3.05. */
#define TS_MESH_MAX_PAGES 16384
#define TS_MESH_MAX_SHARED 4096
#define TS_MESH_GROUP_MAX 9

/* A mesh group: a slab (dst) and the pages of the slabs meshed into it
 * (aliases), which all show one shared page (file page fpage), or, after a
 * fork gave each its own copy, TS_MESH_PRIVATE.  Guarded by the bin lock of
 * the dst slab's class and arena. */
#define TS_MESH_PRIVATE UINT32_MAX
typedef struct ts_mesh_group_s {
  void *dst;                            /* the slab's page */
  uint32_t fpage;
  uint32_t nalias;
  void *alias[TS_MESH_GROUP_MAX - 1];
} ts_mesh_group_t;

/* ---- Thread caches ---- */

/* A thread cache bin: a LIFO list of free objects linked through their
 * first word (the object's memory is touched anyway by the caller that
 * freed it and the caller that gets it, so the list costs no extra cache
 * line, unlike an array of pointers).
 *   count == length of the list <= cap;  head == NULL <=> count == 0 */
typedef struct ts_tbin_s {
  void *head;      /* most recently freed object */
  uint32_t count;  /* single-writer (TS_SW_SET): the owner's, read by the ledger */
  uint32_t cap;
} ts_tbin_t;

/* Thread caches also keep freed large runs of up to 64 pages (256 KiB),
 * at most 512 KiB of them per thread. */
#define TS_TCACHE_LARGE_PAGES 64
#define TS_TCACHE_LARGE_BYTES ((size_t)512 << 10)

enum ts_tcache_state_e {
  TS_TCACHE_NONE = 0, /* not set up yet */
  TS_TCACHE_ACTIVE,
  TS_TCACHE_DEAD,     /* torn down at thread exit: go straight to the arena */
};

/* Trimming an idle thread's cache from the purger thread (tcache.c), with
 * no atomic read-modify-write on the owner's side.  The fast paths reach
 * the bins through bins_ptr, which points at the thread's own bins, or at
 * ts_tcache_trap (all empty, capacity 0: every call takes the slow path)
 * before set-up, after teardown and while the purger works on the cache.
 * The owner raises in_op around every use of its cache and reads bins_ptr
 * after raising it; the purger points bins_ptr at the trap, runs a
 * process-wide memory barrier (membarrier), and touches the bins only if
 * in_op is down.  After the barrier, either the purger sees in_op up or the
 * owner sees the trap (and its slow path waits until bins_ptr comes back). */
typedef struct ts_tcache_s {
  ts_tbin_t *_Atomic bins_ptr; /* fast_bins, or ts_tcache_trap while the purger works */
  ts_tbin_t *fast_bins;      /* bins, or ts_tcache_slow_trap when every call must take the
                                slow path (option stats_exact) */
  _Atomic uint32_t in_op;    /* owner: inside a use of the cache */
  ts_tbin_t bins[TS_NCLASSES];
  uint64_t idle_sig;         /* purger: the cache's state at the last tick */
  int32_t tid;               /* the owner's kernel thread id (its registry entry) */
  ts_arena_t *arena;         /* the arena this thread is bound to */
  uint64_t last_gc_ns;       /* last trim of unused bins */
  uint8_t used[TS_NCLASSES]; /* bin ran empty since the last trim */
  int state;
  /* Large runs of up to TS_TCACHE_LARGE_PAGES pages, one LIFO list per page
   * count (linked through the run's first word), at most
   * TS_TCACHE_LARGE_BYTES in all. */
  void *large[TS_TCACHE_LARGE_PAGES + 1];
  size_t large_bytes;          /* single-writer: the owner's (or the purger's, by the protocol) */
  bool large_used;           /* a cached large run was reused since the last trim */
  /* Medium blocks freed by this thread and not yet given back to their
   * regions (medium.c): never handed out again from here, only given back
   * TS_MEDIUM_PENDING at a time, one lock per arena met. */
  void *medium_pending[TS_MEDIUM_PENDING];
  uint32_t medium_npending;
  size_t medium_pending_bytes; /* single-writer: the owner's (or the purger's, by the protocol) */
  /* The last TS_LIFE_RING sampled blocks this thread allocated (medium
   * blocks, page runs of 32 to 64 KiB), and of its last frees of sampled
   * blocks, how many were among them (young): medium:auto (tcache.c). */
  void *life_ring[TS_LIFE_RING];
  uint32_t life_pos, life_frees, life_young;
  uint32_t life_backoff, life_hold; /* windows to wait after a switch (tcache.c, Lifetimes) */
  bool medium_mode;          /* on medium blocks for 4 to 64 KiB */
  bool life_caps_zero;       /* ... and its bins of classes above 4 KiB have capacity 0 (decided) */
  ts_tstats_t stats;         /* this thread's share of the ledger */
} ts_tcache_t;

#endif /* TS_TYPES_H */
