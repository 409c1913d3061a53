/* sim_medium: a model, not an allocator.  It replays the size mixes of
 * frag_cache and frag_redis against two layouts and prints the pages each
 * keeps per live byte, to decide whether tessera needs a coalescing heap
 * for medium sizes (docs/ARCHITECTURE.md, "A medium heap: the model").
 *
 * Layouts:
 *   seg        what tessera does today, less its mixed slabs: objects up to
 *              32 KiB in slabs of their class (tessera's classes and slab
 *              geometry, src/sizeclass.c; a new object goes to the fullest
 *              slab of its class with a free slot, else a new slab; an empty
 *              slab gives its pages back), larger ones in page runs.
 *   medium M   objects up to M bytes in slabs as above; objects above M and
 *              up to 64 KiB in a heap of 64-byte granules (or G) where a block
 *              takes its class's bytes (rounded up to granules) at the
 *              lowest address with room, free neighbours coalescing (what
 *              glibc does, with no headers); larger ones in page runs.
 * Two thread caches in front of the medium heap, to see what reuse by
 * size does to its packing (environment variables):
 *   SIM_CACHE=C  C freed blocks kept per class (LIFO) and handed to the
 *                next request of the class; blocks above 32 KiB then
 *                take whole pages (the classes there);
 *   SIM_PEND=P   the frees gathered P at a time (as tcache.c's
 *                medium_pending), a request served from them when one is
 *                at most 1/SIM_SLACK (default 16) larger than it.
 * Page runs are first fit by address over 4 KiB pages.  A page counts while
 * any byte of it is allocated: free pages are taken to be purged, and
 * metadata, thread caches and dirty pages are not counted, so the figures
 * are floors for the layouts, to be compared with each other and with what
 * bench/frag.sh measures, not with RSS.
 *
 * Usage: bench_sim_medium [seg|M[:G[:X]] ...]: M the largest size left to
 * slabs, G the granule (default 64), X the largest medium block (default
 * 64 KiB); default: seg 1024 512 256 4096:256 4096:256:32768
 * Deterministic; about 20 s per layout. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 4096u
#define GRANULE 64u
#define SPACE_BYTES ((uint64_t)2 << 30) /* each space: 2 GiB of addresses */
static uint32_t medium_max = 64u << 10; /* the largest medium block */
#define SLAB_MAX_SIZE (32u << 10)

/* ---- A space of units with first-fit allocation: a segment tree whose
 * nodes hold the free prefix, suffix and longest free run of their range,
 * with lazy assignment of whole ranges. ---- */
typedef struct {
  uint32_t n;                 /* leaves, a power of two */
  uint32_t *pre, *suf, *best; /* per node */
  int8_t *lazy;               /* -1 none, 0 set free, 1 set used */
  uint32_t unit;              /* bytes per unit */
  uint32_t *page_used;        /* units in use per 4 KiB page */
  uint64_t pages_in_use;      /* pages with page_used > 0 */
} space;

static void space_init(space *s, uint32_t unit) {
  s->unit = unit;
  s->n = (uint32_t)(SPACE_BYTES / unit);
  s->pre = malloc(sizeof(uint32_t) * 2 * s->n);
  s->suf = malloc(sizeof(uint32_t) * 2 * s->n);
  s->best = malloc(sizeof(uint32_t) * 2 * s->n);
  s->lazy = malloc(2 * s->n);
  s->page_used = calloc(SPACE_BYTES / PAGE, sizeof(uint32_t));
  if (!s->pre || !s->suf || !s->best || !s->lazy || !s->page_used) abort();
  for (uint32_t i = 1; i < 2 * s->n; i++) {
    uint32_t len = s->n >> (31 - __builtin_clz(i));
    s->pre[i] = s->suf[i] = s->best[i] = len;
    s->lazy[i] = -1;
  }
  s->pages_in_use = 0;
}

static void space_free_all(space *s) {
  free(s->pre), free(s->suf), free(s->best), free(s->lazy), free(s->page_used);
}

static void node_assign(space *s, uint32_t i, uint32_t len, int used) {
  uint32_t v = used ? 0 : len;
  s->pre[i] = s->suf[i] = s->best[i] = v;
  s->lazy[i] = (int8_t)used;
}

static void node_pull(space *s, uint32_t i, uint32_t len) {
  uint32_t l = 2 * i, r = l + 1, h = len / 2;
  s->pre[i] = s->pre[l] == h ? h + s->pre[r] : s->pre[l];
  s->suf[i] = s->suf[r] == h ? h + s->suf[l] : s->suf[r];
  uint32_t b = s->best[l] > s->best[r] ? s->best[l] : s->best[r];
  uint32_t mid = s->suf[l] + s->pre[r];
  s->best[i] = b > mid ? b : mid;
}

static void node_push(space *s, uint32_t i, uint32_t len) {
  if (s->lazy[i] < 0) return;
  node_assign(s, 2 * i, len / 2, s->lazy[i]);
  node_assign(s, 2 * i + 1, len / 2, s->lazy[i]);
  s->lazy[i] = -1;
}

static void range_assign(space *s, uint32_t i, uint32_t lo, uint32_t len, uint32_t a, uint32_t b, int used) {
  if (b <= lo || lo + len <= a) return;
  if (a <= lo && lo + len <= b) {
    node_assign(s, i, len, used);
    return;
  }
  node_push(s, i, len);
  range_assign(s, 2 * i, lo, len / 2, a, b, used);
  range_assign(s, 2 * i + 1, lo + len / 2, len / 2, a, b, used);
  node_pull(s, i, len);
}

/* The lowest unit starting a free run of k units. */
static uint32_t first_fit(space *s, uint32_t k) {
  if (s->best[1] < k) {
    fprintf(stderr, "sim_medium: space full\n");
    exit(1);
  }
  uint32_t i = 1, lo = 0, len = s->n;
  while (len > 1) {
    node_push(s, i, len);
    uint32_t l = 2 * i, r = l + 1, h = len / 2;
    if (s->best[l] >= k) {
      i = l;
    } else if (s->suf[l] + s->pre[r] >= k) {
      return lo + h - s->suf[l];
    } else {
      i = r;
      lo += h;
    }
    len = h;
  }
  return lo;
}

static void count_pages(space *s, uint64_t first, uint64_t units, int sign) {
  uint64_t a = first * s->unit, b = (first + units) * s->unit;
  for (uint64_t p = a / PAGE; p * PAGE < b; p++) {
    uint64_t lo = p * PAGE > a ? p * PAGE : a, hi = (p + 1) * PAGE < b ? (p + 1) * PAGE : b;
    uint32_t u = (uint32_t)((hi - lo) / s->unit);
    if (s->unit > PAGE) u = 1;
    if (sign > 0) {
      if (s->page_used[p] == 0) s->pages_in_use++;
      s->page_used[p] += u ? u : 1;
    } else {
      s->page_used[p] -= u ? u : 1;
      if (s->page_used[p] == 0) s->pages_in_use--;
    }
  }
}

static uint32_t space_alloc(space *s, uint64_t bytes) {
  uint32_t k = (uint32_t)((bytes + s->unit - 1) / s->unit);
  uint32_t at = first_fit(s, k);
  range_assign(s, 1, 0, s->n, at, at + k, 1);
  count_pages(s, at, k, 1);
  return at;
}

static void space_free(space *s, uint32_t at, uint64_t bytes) {
  uint32_t k = (uint32_t)((bytes + s->unit - 1) / s->unit);
  range_assign(s, 1, 0, s->n, at, at + k, 0);
  count_pages(s, at, k, -1);
}

/* ---- Size classes and slabs, as src/sizeclass.c ---- */
static uint32_t cls_size[128], cls_pages[128], cls_objs[128];
static unsigned ncls;

static void classes_init(void) {
  for (unsigned s = 16; s <= 256; s += 16) cls_size[ncls++] = s;
  for (unsigned k = 8; k <= 14; k++)
    for (unsigned i = 1; i <= 16; i++) cls_size[ncls++] = (1u << k) + i * (1u << (k - 4));
  for (unsigned c = 0; c < ncls; c++) {
    unsigned best = 0;
    size_t best_tail = (size_t)-1;
    for (unsigned pages = 1; pages <= 16; pages++) {
      size_t bytes = (size_t)pages * PAGE, objs = bytes / cls_size[c];
      if (!objs) continue;
      size_t tail = bytes - objs * cls_size[c];
      if (tail * 64 <= bytes) {
        best = pages;
        break;
      }
      if (tail < best_tail) best_tail = tail, best = pages;
    }
    cls_pages[c] = best;
    cls_objs[c] = (uint32_t)((size_t)best * PAGE / cls_size[c]);
  }
}

static unsigned class_of(size_t n) {
  unsigned lo = 0, hi = ncls - 1;
  while (lo < hi) {
    unsigned mid = (lo + hi) / 2;
    if (cls_size[mid] >= n) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

typedef struct slab {
  uint32_t page;  /* first unit (page) in the page space */
  uint16_t nfree;
  uint16_t cls;
  struct slab *next, *prev; /* its bucket: slabs of the class with this nfree */
  uint64_t freemap[4];
} slab;

/* Per class, buckets of slabs by free slots; bit n of nonempty set if
 * bucket n holds a slab (1 <= n < nobjs: partial slabs only). */
static slab *buckets[128][257];
static uint64_t nonempty[128][5];

static void bucket_add(slab *sb) {
  slab **h = &buckets[sb->cls][sb->nfree];
  sb->prev = NULL;
  sb->next = *h;
  if (*h) (*h)->prev = sb;
  *h = sb;
  nonempty[sb->cls][sb->nfree >> 6] |= 1ull << (sb->nfree & 63);
}

static void bucket_del(slab *sb) {
  if (sb->prev) sb->prev->next = sb->next;
  else buckets[sb->cls][sb->nfree] = sb->next;
  if (sb->next) sb->next->prev = sb->prev;
  if (!buckets[sb->cls][sb->nfree]) nonempty[sb->cls][sb->nfree >> 6] &= ~(1ull << (sb->nfree & 63));
}

/* ---- The model heap ---- */
typedef struct {
  uint8_t kind; /* 0 slab, 1 medium, 2 page run */
  uint16_t slot;
  uint32_t at;
  slab *sb;
  uint64_t size;
  uint64_t mb; /* a medium block's bytes */
} block;

static space pages_space, medium_space;
static uint32_t medium_min; /* objects above this go to the medium heap; 0: none */
static uint64_t live, medium_used;

/* The thread caches (SIM_CACHE, SIM_PEND): blocks held, reuse counted. */
static unsigned cache_cap, pend_cap, pend_slack = 16;
static uint32_t cache_at[160][64];
static unsigned cache_n[160];
static uint32_t pend_at[64];
static uint64_t pend_mb[64];
static unsigned pend_n;
static uint64_t reused, medium_allocs;

static unsigned cache_key(uint64_t size) {
  return size <= SLAB_MAX_SIZE ? class_of(size) : 128 + (unsigned)((size + PAGE - 1) / PAGE) - 8;
}

/* A medium block takes its class's bytes up to 32 KiB, its own above (or
 * whole pages, with SIM_CACHE). */
static uint64_t medium_bytes(uint64_t size) {
  if (size <= SLAB_MAX_SIZE) return cls_size[class_of(size)];
  return cache_cap ? (size + PAGE - 1) / PAGE * PAGE : size;
}

static uint32_t medium_alloc(block *b) {
  uint64_t want = medium_bytes(b->size);
  unsigned key = cache_key(b->size);
  int found = -1;
  medium_allocs++;
  b->mb = want;
  for (int i = (int)pend_n - 1; i >= 0; i--) /* the smallest that fits, the latest of equals */
    if (pend_mb[i] >= want && pend_mb[i] <= want + want / pend_slack && (found < 0 || pend_mb[i] < pend_mb[found]))
      found = i;
  if (found >= 0) {
    uint32_t at = pend_at[found];
    b->mb = pend_mb[found];
    memmove(&pend_at[found], &pend_at[found + 1], (pend_n - (unsigned)found - 1) * sizeof pend_at[0]);
    memmove(&pend_mb[found], &pend_mb[found + 1], (pend_n - (unsigned)found - 1) * sizeof pend_mb[0]);
    pend_n--;
    reused++;
    return at;
  }
  if (cache_n[key]) {
    reused++;
    return cache_at[key][--cache_n[key]];
  }
  return space_alloc(&medium_space, want);
}

static void medium_free(block *b) {
  unsigned key = cache_key(b->size);
  if (pend_cap) {
    pend_at[pend_n] = b->at, pend_mb[pend_n] = b->mb;
    if (++pend_n == pend_cap) {
      for (unsigned i = 0; i < pend_n; i++) space_free(&medium_space, pend_at[i], pend_mb[i]);
      pend_n = 0;
    }
  } else if (cache_n[key] < cache_cap) {
    cache_at[key][cache_n[key]++] = b->at;
  } else {
    space_free(&medium_space, b->at, b->mb);
  }
}

static void heap_alloc(block *b, uint64_t size) {
  b->size = size;
  live += size;
  if (size > SLAB_MAX_SIZE || (medium_min && size > medium_min)) {
    if (medium_min && size <= medium_max) {
      b->kind = 1;
      b->at = medium_alloc(b);
      medium_used += b->mb;
    } else {
      b->kind = 2;
      b->at = space_alloc(&pages_space, size);
    }
    return;
  }
  unsigned c = class_of(size);
  slab *sb = NULL;
  for (unsigned w = 0; w < 5 && !sb; w++) /* the fullest partial slab */
    if (nonempty[c][w]) sb = buckets[c][w * 64 + (unsigned)__builtin_ctzll(nonempty[c][w])];
  if (sb) {
    bucket_del(sb);
  } else {
    sb = calloc(1, sizeof *sb);
    sb->cls = (uint16_t)c;
    sb->nfree = (uint16_t)cls_objs[c];
    for (unsigned i = 0; i < cls_objs[c]; i++) sb->freemap[i >> 6] |= 1ull << (i & 63);
    sb->page = space_alloc(&pages_space, (uint64_t)cls_pages[c] * PAGE);
  }
  unsigned w = 0;
  while (!sb->freemap[w]) w++;
  unsigned slot = w * 64 + (unsigned)__builtin_ctzll(sb->freemap[w]);
  sb->freemap[w] &= sb->freemap[w] - 1;
  sb->nfree--;
  if (sb->nfree) bucket_add(sb);
  b->kind = 0;
  b->sb = sb;
  b->slot = (uint16_t)slot;
}

static void heap_free(block *b) {
  live -= b->size;
  if (b->kind == 1) {
    medium_free(b);
    medium_used -= b->mb;
    return;
  }
  if (b->kind == 2) {
    space_free(&pages_space, b->at, b->size);
    return;
  }
  slab *sb = b->sb;
  unsigned c = sb->cls;
  if (sb->nfree) bucket_del(sb);
  sb->freemap[b->slot >> 6] |= 1ull << (b->slot & 63);
  sb->nfree++;
  if (sb->nfree == cls_objs[c]) {
    space_free(&pages_space, sb->page, (uint64_t)cls_pages[c] * PAGE);
    free(sb);
    return;
  }
  bucket_add(sb);
}

static double kept(void) {
  return (double)((pages_space.pages_in_use + medium_space.pages_in_use) * PAGE) / (double)live;
}

/* ---- Random numbers and the two mixes ---- */
static uint64_t rng_state;
static uint64_t rng_next(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
static uint64_t rng_range(uint64_t lo, uint64_t hi) { return lo + rng_next() % (hi - lo + 1); }
static uint64_t log_uniform(uint64_t lo, uint64_t hi) {
  double u = (double)(rng_next() >> 11) / 9007199254740992.0;
  return (uint64_t)exp(log((double)lo) + u * (log((double)hi) - log((double)lo)));
}

static void run_cache(void) {
  static const struct { const char *phase; unsigned small_pct; uint64_t lo, hi; } mixes[] = {
      {"small_heavy", 80, 1 << 10, 64 << 10},
      {"large_heavy", 10, 64 << 10, 1 << 20},
      {"mixed", 30, 1 << 10, 1 << 20},
      {"small_again", 80, 1 << 10, 64 << 10},
  };
  const uint64_t budget = (uint64_t)512 << 20;
  size_t cap = (size_t)(budget / 1024) + 65536, head = 0, count = 0;
  block *ring = calloc(cap, sizeof *ring);
  rng_state = 0x5EED2003;
  for (unsigned m = 0; m < 4; m++) {
    uint64_t inserted = 0, next_check = 2u << 20;
    double worst = 0;
    while (inserted < 4 * budget) {
      uint64_t size = rng_next() % 100 < mixes[m].small_pct ? rng_range(64, 1024) : log_uniform(mixes[m].lo, mixes[m].hi);
      while (count > 0 && (live + size > budget || count == cap)) {
        heap_free(&ring[head]);
        head = (head + 1) % cap;
        count--;
      }
      heap_alloc(&ring[(head + count) % cap], size);
      count++;
      inserted += size;
      if (inserted >= next_check) {
        next_check = inserted + (2u << 20);
        if (live * 10 >= budget * 9 && kept() > worst) worst = kept();
      }
    }
    printf("  cache %-12s %.3f (worst while 90%% full %.3f); medium heap: %.1f MiB of pages, %.1f MiB in blocks\n",
           mixes[m].phase, kept(), worst, (double)medium_space.pages_in_use * PAGE / 1048576.0,
           (double)medium_used / 1048576.0);
  }
  while (count > 0) {
    heap_free(&ring[head]);
    head = (head + 1) % cap;
    count--;
  }
  free(ring);
}

static void run_redis(void) {
  const uint64_t target = (uint64_t)300 << 20;
  size_t cap = 16u << 20, n = 0;
  block *table = calloc(cap, sizeof *table);
  rng_state = 0x4ED1;
  struct { uint64_t lo, hi; const char *after; } fills[] = {{16, 512, "filled"}, {32, 1024, "refilled_larger"}, {16, 64, "refilled_small"}};
  for (unsigned f = 0; f < 3; f++) {
    if (f) {
      size_t kept_n = 0;
      for (size_t i = 0; i < n; i++) {
        if (rng_next() & 1) heap_free(&table[i]);
        else table[kept_n++] = table[i];
      }
      n = kept_n;
      printf("  redis %-16s %.3f\n", f == 1 ? "after_delete" : "after_delete2", kept());
    }
    while (live < target) {
      if (n == cap) abort();
      heap_alloc(&table[n++], rng_range(fills[f].lo, fills[f].hi));
    }
    printf("  redis %-16s %.3f\n", fills[f].after, kept());
  }
  for (size_t i = 0; i < n; i++) heap_free(&table[i]);
  free(table);
}

int main(int argc, char **argv) {
  classes_init();
  if (getenv("SIM_CACHE")) cache_cap = (unsigned)atoi(getenv("SIM_CACHE"));
  if (getenv("SIM_PEND")) pend_cap = (unsigned)atoi(getenv("SIM_PEND"));
  if (getenv("SIM_SLACK")) pend_slack = (unsigned)atoi(getenv("SIM_SLACK"));
  if (cache_cap > 64 || pend_cap > 64 || !pend_slack) {
    fprintf(stderr, "sim_medium: SIM_CACHE and SIM_PEND at most 64, SIM_SLACK at least 1\n");
    return 2;
  }
  space_init(&pages_space, PAGE);
  space_init(&medium_space, GRANULE);
  const char *deflt[] = {"seg", "1024", "512", "256", "4096:256", "4096:256:32768"};
  int nl = argc > 1 ? argc - 1 : 6;
  for (int i = 0; i < nl; i++) {
    const char *l = argc > 1 ? argv[i + 1] : deflt[i];
    medium_min = strcmp(l, "seg") == 0 ? 0 : (uint32_t)atoi(l);
    const char *colon = strchr(l, ':');
    uint32_t granule = colon ? (uint32_t)atoi(colon + 1) : GRANULE;
    const char *colon2 = colon ? strchr(colon + 1, ':') : NULL;
    medium_max = colon2 ? (uint32_t)atoi(colon2 + 1) : 64u << 10;
    if (medium_min && granule != medium_space.unit) {
      space_free_all(&medium_space);
      space_init(&medium_space, granule);
    }
    if (medium_min)
      printf("medium heap above %u bytes up to %u (%u-byte granules, first fit):\n", medium_min, medium_max, granule);
    else printf("seg (slabs to 32 KiB, page runs above):\n");
    reused = medium_allocs = 0;
    run_cache();
    run_redis();
    if (cache_cap || pend_cap)
      printf("  medium requests served by the thread cache: %llu of %llu\n", (unsigned long long)reused,
             (unsigned long long)medium_allocs);
    fflush(stdout);
  }
  return 0;
}
