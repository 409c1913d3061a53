/* sim_granule: a model, not an allocator.  It replays the size mixes of
 * frag_redis and frag_twowaves against page placement policies for small
 * objects and prints the pages they would keep per live byte, to decide
 * what tessera's small-object layer should become (docs/ARCHITECTURE.md,
 * "Granule pages: the model").
 *
 * A page is 256 granules of 16 bytes; an object takes its size class's
 * bytes (tessera's classes) in consecutive granules of one page, never
 * crossing a page.  A page counts while any of its granules is allocated
 * (free pages are taken to be purged).  Policies, for an object of class c:
 *   slab    pages of class c only (lowest address with room), else a new
 *           page for c: what size-segregated slabs do;
 *   fit     the lowest page with room, whatever it holds (first fit by
 *           address: what a coalescing heap such as glibc's does);
 *   home    pages of class c first; when the free granules inside used
 *           pages exceed 1/16 of them (the heap has holes), any page with
 *           room; else a new page for c.
 * Objects above 1 KiB in the two-wave mix are modelled as tessera's
 * multi-page slabs (src/sizeclass.c geometry), whatever the policy.
 *
 * Usage: bench_sim_granule [slab|fit|home ...]   (default: all three)
 * Deterministic; about 10 s per policy. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPAGES (1 << 18) /* 1 GiB of pages: room for both mixes */
#define GRANULES 256
#define GRANULE_MAX_CLASS 1024
#define FRAG_SHIFT 4 /* "the heap has holes": free > used pages' granules >> 4 */

enum policy { SLAB, FIT, HOME };

/* A max-tree over pages: find the lowest page whose value is >= k. */
typedef struct { uint16_t v[2 * NPAGES]; } maxtree;
static void tree_set(maxtree *t, unsigned p, unsigned v) {
  unsigned i = p + NPAGES;
  t->v[i] = (uint16_t)v;
  for (i >>= 1; i; i >>= 1) t->v[i] = t->v[2 * i] > t->v[2 * i + 1] ? t->v[2 * i] : t->v[2 * i + 1];
}
static long tree_find(const maxtree *t, unsigned k) {
  if (t->v[1] < k) return -1;
  unsigned i = 1;
  while (i < NPAGES) {
    i *= 2;
    if (t->v[i] < k) i++;
  }
  return (long)(i - NPAGES);
}

static unsigned cls_size[128], ncls;
static uint64_t map[NPAGES][GRANULES / 64];
static uint16_t used[NPAGES];
static int16_t home[NPAGES];
static maxtree *by_class[128], any_used, empty;
static uint64_t used_pages, used_granules;
static enum policy pol;

static unsigned class_of(size_t n) {
  for (unsigned c = 0; c < ncls; c++)
    if (cls_size[c] >= n) return c;
  abort();
}
static int is_set(unsigned p, unsigned g) { return (int)(map[p][g >> 6] >> (g & 63)) & 1; }
static unsigned longest_free(unsigned p) {
  unsigned best = 0, run = 0;
  for (unsigned g = 0; g < GRANULES; g++) {
    run = is_set(p, g) ? 0 : run + 1;
    if (run > best) best = run;
  }
  return best;
}
static void page_changed(unsigned p) {
  unsigned room = used[p] ? longest_free(p) : 0;
  tree_set(&any_used, p, room);
  tree_set(&empty, p, used[p] == 0);
  if (home[p] >= 0) tree_set(by_class[home[p]], p, room);
}
static void slab_reset(void);
static void heap_reset(void) {
  slab_reset();
  memset(map, 0, sizeof map);
  memset(used, 0, sizeof used);
  memset(&any_used, 0, sizeof any_used);
  for (unsigned c = 0; c < ncls; c++) memset(by_class[c], 0, sizeof *by_class[c]);
  for (unsigned p = 0; p < NPAGES; p++) {
    home[p] = -1;
    tree_set(&empty, p, 1);
  }
  used_pages = used_granules = 0;
}

/* Returns the first granule (page * GRANULES + index) of a new object. */
static long granule_alloc(unsigned c) {
  unsigned k = cls_size[c] / 16;
  long p = pol == FIT ? -1 : tree_find(by_class[c], k);
  bool holes = (used_pages * GRANULES - used_granules) > ((used_pages * GRANULES) >> FRAG_SHIFT);
  if (p < 0 && (pol == FIT || (pol == HOME && holes))) p = tree_find(&any_used, k);
  if (p < 0) {
    p = tree_find(&empty, 1);
    if (p < 0) { fputs("sim_granule: out of pages\n", stderr); exit(1); }
    if (home[p] >= 0) tree_set(by_class[home[p]], (unsigned)p, 0);
    home[p] = (int16_t)c;
  }
  unsigned run = 0, g = 0;
  for (; g < GRANULES; g++) {
    run = is_set((unsigned)p, g) ? 0 : run + 1;
    if (run == k) break;
  }
  unsigned first = g + 1 - k;
  for (unsigned i = first; i <= g; i++) map[p][i >> 6] |= 1ull << (i & 63);
  if (!used[p]) used_pages++;
  used[p] = (uint16_t)(used[p] + k);
  used_granules += k;
  page_changed((unsigned)p);
  return p * GRANULES + first;
}
static void granule_free(long at, unsigned c) {
  unsigned k = cls_size[c] / 16, p = (unsigned)(at / GRANULES), first = (unsigned)(at % GRANULES);
  for (unsigned i = first; i < first + k; i++) map[p][i >> 6] &= ~(1ull << (i & 63));
  used[p] = (uint16_t)(used[p] - k);
  used_granules -= k;
  if (!used[p]) used_pages--;
  page_changed(p);
}

/* Multi-page slabs for the two-wave mix's objects above 1 KiB: which pages
 * a wave-B object pins. */
static unsigned slab_pages(unsigned size) {
  unsigned best = 0;
  uint64_t best_tail = 0;
  for (unsigned pages = 1; pages <= 16; pages++) {
    uint64_t bytes = pages * 4096ull, tail = bytes % size;
    if (bytes < size) continue;
    if (tail <= bytes >> 6) return pages;
    if (!best || tail * best * 4096ull < best_tail * bytes) best = pages, best_tail = tail;
  }
  return best;
}
static uint64_t slab_count[128];
static uint8_t *slab_pinned[128];
static void slab_object(unsigned size, int survivor) {
  unsigned c = class_of(size), sz = cls_size[c], pages = slab_pages(sz);
  uint64_t objs = pages * 4096ull / sz, j = slab_count[c]++, slab = j / objs, o = j % objs;
  if (!slab_pinned[c] && !(slab_pinned[c] = calloc(NPAGES * 4, 1))) abort();
  if (survivor)
    for (uint64_t q = slab * pages + o * sz / 4096; q <= slab * pages + ((o + 1) * sz - 1) / 4096; q++)
      slab_pinned[c][q] = 1;
}
static void slab_reset(void) {
  memset(slab_count, 0, sizeof slab_count);
  for (unsigned c = 0; c < ncls; c++)
    if (slab_pinned[c]) memset(slab_pinned[c], 0, NPAGES * 4);
}
static uint64_t slab_pages_pinned(void) {
  uint64_t n = 0;
  for (unsigned c = 0; c < ncls; c++)
    if (slab_pinned[c])
      for (size_t q = 0; q < NPAGES * 4; q++) n += slab_pinned[c][q];
  return n;
}

static uint64_t rng = 0x5EED2002;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}
static double log_uniform(double lo, double hi) {
  double u = (double)(rnd() >> 11) * (1.0 / 9007199254740992.0);
  return exp(log(lo) + u * (log(hi) - log(lo)));
}

typedef struct { long at; unsigned cls, size; } object;
static object *objs;
static size_t nobjs;
static uint64_t live;

static void say(const char *phase) {
  printf("  %-16s %.3f\n", phase, (double)(used_pages + slab_pages_pinned()) * 4096 / (double)live);
}
static void fill(uint64_t target, unsigned lo, unsigned hi) {
  while (live < target) {
    unsigned size = lo + (unsigned)(rnd() % (hi - lo + 1)), c = class_of(size);
    objs[nobjs++] = (object){granule_alloc(c), c, size};
    live += size;
  }
}
static void delete_half(void) {
  size_t kept = 0;
  for (size_t i = 0; i < nobjs; i++) {
    if (rnd() & 1) {
      granule_free(objs[i].at, objs[i].cls);
      live -= objs[i].size;
    } else {
      objs[kept++] = objs[i];
    }
  }
  nobjs = kept;
}

static void run(enum policy p, const char *name) {
  pol = p;
  printf("policy %s: pages kept per live byte\n", name);
  /* frag_redis: 300 MiB of 16..512, delete half, refill 32..1024, delete
   * half, refill 16..64 */
  heap_reset();
  nobjs = 0, live = 0, rng = 0x5EED2002;
  fill(300ull << 20, 16, 512), say("redis filled");
  delete_half(), say("redis deleted");
  fill(300ull << 20, 32, 1024), say("redis larger");
  delete_half(), say("redis deleted2");
  fill(300ull << 20, 16, 64), say("redis small");
  /* frag_twowaves: 400 MiB of wave A (64..4096, log-uniform) with a wave-B
   * block after each A block with probability 100 and 200 per mille; A
   * freed */
  for (unsigned per_mille = 100; per_mille <= 200; per_mille += 100) {
    heap_reset();
    nobjs = 0, live = 0, rng = 0x5EED2001;
    for (uint64_t done = 0; done < (400ull << 20);) {
      for (int wave_b = 0; wave_b < 2; wave_b++) {
        if (wave_b && rnd() % 1000 >= per_mille) break;
        unsigned size = (unsigned)log_uniform(64, 4096);
        if (size <= GRANULE_MAX_CLASS) {
          unsigned c = class_of(size);
          long at = granule_alloc(c);
          if (!wave_b) objs[nobjs++] = (object){at, c, size};
        } else {
          slab_object(size, wave_b);
        }
        if (wave_b) live += size;
        else done += size;
      }
    }
    for (size_t i = 0; i < nobjs; i++) granule_free(objs[i].at, objs[i].cls);
    say(per_mille == 100 ? "two waves 10%" : "two waves 20%");
  }
}

int main(int argc, char **argv) {
  for (unsigned s = 16; s <= 256; s += 16) cls_size[ncls++] = s;
  for (unsigned k = 8; k < 12; k++)
    for (unsigned i = 1; i <= 16; i++) cls_size[ncls++] = (1u << k) + i * (1u << (k - 4));
  for (unsigned c = 0; c < ncls; c++)
    if (!(by_class[c] = calloc(1, sizeof *by_class[c]))) abort();
  if (!(objs = malloc(sizeof *objs * 16000000))) abort();
  const char *all[] = {"slab", "fit", "home"};
  int n = argc > 1 ? argc - 1 : 3;
  for (int i = 0; i < n; i++) {
    const char *name = argc > 1 ? argv[i + 1] : all[i];
    if (!strcmp(name, "slab")) run(SLAB, name);
    else if (!strcmp(name, "fit")) run(FIT, name);
    else if (!strcmp(name, "home")) run(HOME, name);
    else {
      fprintf(stderr, "usage: %s [slab|fit|home ...]\n", argv[0]);
      return 2;
    }
  }
  return 0;
}
