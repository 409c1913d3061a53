/* SPDX-License-Identifier: MIT */
/*
 * bin.c: the slabs of one size class in one arena, and the two batch
 * operations thread caches use: fill (take objects) and flush (give them
 * back).
 *
 * A bin's non-full slabs sit on TS_BIN_LISTS lists by how full they are
 * (types.h: ts_bin_s); fills take from the fullest list first, so that the
 * objects of a class concentrate in few slabs and sparse slabs empty out.
 * An empty slab is kept as the bin's spare if it has none, otherwise its
 * pages go back to the arena at once.  Full slabs are on no list; a flush
 * that frees into one puts it back on a list.
 *
 * A bin with no free slot left first tries, once its arena's slabs have
 * holes, to place objects in other bins' sparse slabs (mixed.c), and only
 * then takes a new slab.
 *
 * Locking: each bin has its own mutex, taken by fill and flush.  A fill that
 * needs a new slab, and a flush that empties one, take the arena's lock
 * while holding the bin's: the order is always bin, then arena.  A fill
 * only tries other bins' locks; a flush gives objects placed in other
 * bins' slabs back after releasing its own.  The ledger's counters are
 * single-writer (TS_SW_ADD, under the lock) so that a fill may read other
 * bins' (ts_mixed_holes).
 */
#include "internal.h"

#include <string.h>

void ts_bin_init(ts_bin_t *bin) {
  pthread_mutex_init(&bin->lock, NULL);
  for (unsigned i = 0; i < TS_BIN_LISTS; i++) bin->lists[i] = NULL;
  bin->spare = NULL;
  TS_SW_SET(bin->room, TS_ROOM_UNKNOWN);
  bin->slabs = bin->objects = bin->free_objs = bin->pages = bin->covered = bin->hosted = 0;
}

/* The ledger's view of a slab joining or leaving the bin (sign 1 or -1). */
static void bin_count_slab(ts_bin_t *bin, const ts_span_t *s, int sign) {
  uint64_t m = (uint64_t)(int64_t)sign;
  TS_SW_ADD(bin->slabs, m);
  TS_SW_ADD(bin->objects, m * ts_slab_nobjs(s));
  TS_SW_ADD(bin->free_objs, m * s->nfree);
  TS_SW_ADD(bin->pages, m * (uint64_t)(s->npages - (unsigned)__builtin_popcount(ts_slab_purged(s))));
}

unsigned ts_bin_list_of(unsigned nfree, unsigned nobjs) {
  if (nfree == 0) return TS_BIN_NOLIST;
  return (nobjs - nfree) * TS_BIN_LISTS / nobjs;
}

static void bin_unlink(ts_bin_t *bin, ts_span_t *s) {
  if (s->list == TS_BIN_NOLIST) return;
  if (s->prev) s->prev->next = s->next;
  else bin->lists[s->list] = s->next;
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = NULL;
  s->list = TS_BIN_NOLIST;
}

static void bin_link(ts_bin_t *bin, ts_span_t *s, unsigned list) {
  s->list = (uint8_t)list;
  s->prev = NULL;
  s->next = bin->lists[list];
  if (s->next) s->next->prev = s;
  bin->lists[list] = s;
}

/* Puts a slab on the list its fullness calls for. */
static void bin_relist(ts_bin_t *bin, ts_span_t *s) {
  unsigned want = ts_bin_list_of(s->nfree, ts_slab_nobjs(s));
  if (want == s->list) return;
  bin_unlink(bin, s);
  if (want != TS_BIN_NOLIST) bin_link(bin, s, want);
}

/* A slab to fill from: the fullest non-full one, else the spare, else
 * NULL. */
static ts_span_t *bin_pick(ts_bin_t *bin, ts_chunk_t **chunk_out) {
  for (int i = TS_BIN_LISTS - 1; i >= 0; i--) {
    ts_span_t *s = bin->lists[i];
    if (s) {
      *chunk_out = ts_chunk_of(s);
      return s;
    }
  }
  ts_span_t *s = bin->spare;
  if (s) {
    bin->spare = NULL;
    *chunk_out = ts_chunk_of(s);
    return s;
  }
  return NULL;
}

/* A new slab from the arena; NULL when it is out of memory. */
static ts_span_t *bin_new_slab(ts_arena_t *arena, ts_bin_t *bin, unsigned cls, ts_chunk_t **chunk_out) {
  ts_span_t *s;
  if (!ts_arena_run_alloc(arena, ts_class_slab_pages[cls], 1, &s)) return NULL;
  ts_chunk_t *chunk = ts_chunk_of(s);
  if (!ts_slab_init(chunk, (unsigned)(s - chunk->spans), cls)) {
    ts_arena_run_free(chunk, (unsigned)(s - chunk->spans));
    return NULL;
  }
  bin_count_slab(bin, s, 1);
  *chunk_out = chunk;
  return s;
}

/* Lone free slots first (slab.c: ts_slab_take_lone), from the fullest
 * slabs, while the bin has holes and objects of other classes may be
 * placed in them (mixed.c): a slot with no free neighbour fits only an
 * object of its own class, so a refill that takes those first leaves the
 * runs of free slots to placed objects, which would otherwise take new
 * slabs.  A search looks at up to TS_BIN_LONE_SCAN slabs; one that finds
 * none (or fewer than one per TS_BIN_LONE_YIELD slabs) makes the next
 * fills skip it, 1, 2, 4, ... up to TS_BIN_LONE_BACKOFF_MAX fills
 * (docs/ARCHITECTURE.md, Mixed slabs). */
#define TS_BIN_LONE_SCAN 1024
#define TS_BIN_LONE_BACKOFF_MAX 64
/* A search that looked at more than this many slabs per lone slot found
 * backs off as one that found none. */
#define TS_BIN_LONE_YIELD 32
/* "Holes" in one bin: more than 1/8 of its slots free, and 1 MiB. */
#define TS_BIN_LONE_SHIFT 3
#define TS_BIN_LONE_MIN ((uint64_t)1 << 20)

static bool bin_has_holes(const ts_bin_t *bin, unsigned cls) {
  uint64_t free_objs = TS_SW_LOAD(bin->free_objs);
  return free_objs > TS_SW_LOAD(bin->objects) >> TS_BIN_LONE_SHIFT &&
         free_objs * ts_class_size[cls] > TS_BIN_LONE_MIN;
}

/* Takes up to want objects from slab s (its lone ones only, with lone)
 * and keeps the bin's counters and lists; returns how many. */
static unsigned bin_take(ts_bin_t *bin, ts_chunk_t *chunk, ts_span_t *s, void **out, unsigned want, bool lone) {
  unsigned purged = (unsigned)__builtin_popcount(ts_slab_purged(s));
  unsigned got = lone ? ts_slab_take_lone(chunk, s, out, want) : ts_slab_take(chunk, s, out, want);
  if (!got) return 0;
  TS_SW_ADD(bin->free_objs, (uint64_t)0 - got);
  TS_SW_ADD(bin->pages, (uint64_t)purged - (unsigned)__builtin_popcount(ts_slab_purged(s)));
  bin_relist(bin, s);
  return got;
}

static unsigned bin_fill_lone(ts_bin_t *bin, void **out, unsigned want) {
  if (bin->lone_skip) {
    bin->lone_skip--;
    return 0;
  }
  unsigned n = 0, seen = 0;
  for (int l = TS_BIN_LISTS - 1; l >= 0 && n < want && seen < TS_BIN_LONE_SCAN; l--) {
    for (ts_span_t *s = bin->lists[l], *next; s && n < want && seen < TS_BIN_LONE_SCAN; s = next, seen++) {
      next = s->next; /* relisting s does not move next */
      n += bin_take(bin, ts_chunk_of(s), s, out + n, want - n, true);
    }
  }
  if (n && seen <= TS_BIN_LONE_YIELD * n) {
    bin->lone_backoff = 0;
  } else { /* none, or so few that the search cost more than it saved */
    unsigned next = bin->lone_backoff ? 2u * bin->lone_backoff : 1;
    bin->lone_skip = bin->lone_backoff;
    bin->lone_backoff = (uint8_t)(next < TS_BIN_LONE_BACKOFF_MAX ? next : TS_BIN_LONE_BACKOFF_MAX);
  }
  return n;
}

/* Objects of class cls: from its slabs, and with `mixed`, from lone
 * slots first and from other classes' slabs before a new slab. */
static unsigned bin_fill(ts_arena_t *arena, unsigned cls, void **out, unsigned want, bool mixed) {
  ts_bin_t *bin = &arena->bins[cls];
  unsigned n = 0;
  mixed = mixed && ts_class_size[cls] <= TS_MIXED_MAX_SIZE && ts_mixed_on();
  pthread_mutex_lock(&bin->lock);
  if (mixed && bin_has_holes(bin, cls)) n = bin_fill_lone(bin, out, want);
  while (n < want) {
    ts_chunk_t *chunk;
    ts_span_t *s = bin_pick(bin, &chunk);
    if (!s) {
      if (mixed && ts_mixed_holes(arena)) {
        unsigned got = ts_mixed_fill(arena, cls, out + n, want - n);
        n += got;
        if (got) break; /* part of a batch: the next fill looks again */
      }
      if (!(s = bin_new_slab(arena, bin, cls, &chunk))) break;
    }
    n += bin_take(bin, chunk, s, out + n, want - n, false);
  }
  pthread_mutex_unlock(&bin->lock);
  return n;
}

unsigned ts_bin_fill(ts_arena_t *arena, unsigned cls, void **out, unsigned want) {
  return bin_fill(arena, cls, out, want, true);
}

unsigned ts_bin_fill_own(ts_arena_t *arena, unsigned cls, void **out, unsigned want) {
  return bin_fill(arena, cls, out, want, false);
}

/* ---- Meshing (mesh.c has the page primitives) ---- */

/* The slab's used objects, as a bitmap. */
static void slab_used(const ts_span_t *s, uint64_t *used) {
  const uint64_t *map = ts_slab_freemap(s);
  for (unsigned w = 0; w < TS_SLAB_MAP_WORDS; w++) used[w] = w < ts_slab_map_words(s) ? ~map[w] : 0;
  for (unsigned i = ts_slab_nobjs(s); i < TS_SLAB_MAP_WORDS * 64; i++) used[i >> 6] &= ~(1ull << (i & 63));
}

static bool slab_disjoint(const uint64_t *a, const uint64_t *b) {
  for (unsigned w = 0; w < TS_SLAB_MAP_WORDS; w++)
    if (a[w] & b[w]) return false;
  return true;
}

/* Meshes slab src into slab dst (both 1-page slabs of the bin, with no
 * object at the same offset): dst's page becomes shared if it is not yet,
 * src's objects are copied into it and src's page shows it too; src's
 * page is then a page of dst's (code TS_PAGE_MESHED).  False if no shared
 * page or group was left. */
static bool bin_mesh_pair(ts_bin_t *bin, ts_span_t *dst, ts_span_t *src, const uint64_t *src_used) {
  ts_chunk_t *dc = ts_chunk_of(dst), *sc = ts_chunk_of(src);
  void *dpage = ts_slab_base(dc, dst), *spage = ts_slab_base(sc, src);
  uint16_t *mesh = ts_slab_mesh(dst);
  if (!ts_mesh_reserve(*mesh ? 1 : 2)) return false;
  if (!*mesh) {
    unsigned g = ts_mesh_group_new();
    uint32_t f = g ? ts_mesh_share(dpage) : UINT32_MAX;
    if (f == UINT32_MAX) {
      if (g) ts_mesh_group_free(g);
      ts_mesh_unreserve(2);
      return false;
    }
    ts_mesh_group_t *grp = ts_mesh_group(g);
    grp->dst = dpage;
    grp->fpage = f; /* ts_mesh_group_new zeroed the rest */
    *mesh = (uint16_t)g;
  }
  ts_mesh_group_t *grp = ts_mesh_group(*mesh);
  if (!ts_mesh_merge(dpage, grp->fpage, spage, src_used, ts_class_size[dst->cls], ts_slab_nobjs(dst))) {
    ts_mesh_unreserve(1); /* dst's group stays, with what it had */
    return false;
  }
  uint64_t *dmap = ts_slab_freemap(dst);
  for (unsigned w = 0; w < ts_slab_map_words(dst); w++) dmap[w] &= ~src_used[w];
  unsigned src_live = ts_slab_nobjs(src) - src->nfree;
  bin_count_slab(bin, src, -1);
  TS_SW_ADD(bin->free_objs, (uint64_t)0 - src_live); /* src's objects now take dst's slots */
  dst->nfree = (uint16_t)(dst->nfree - src_live);
  bin_unlink(bin, src);
  unsigned sp = (unsigned)(src - sc->spans);
  src->next = dst;
  ts_chunk_codes(sc)[sp] = TS_PAGE_MESHED;
  grp->alias[grp->nalias++] = spage;
  bin_relist(bin, dst);
  return true;
}

/* Undoes a mesh group whose slab just emptied: every page gets a fresh
 * private page, the pages meshed into it go back to the arena, the shared
 * page is freed. */
static void bin_unmesh(ts_span_t *dst) {
  uint16_t *mesh = ts_slab_mesh(dst);
  ts_mesh_group_t *grp = ts_mesh_group(*mesh);
  for (unsigned i = 0; i < grp->nalias; i++) {
    void *a = grp->alias[i];
    ts_chunk_t *ac = ts_chunk_of(a);
    unsigned ap = ts_chunk_page_of(a);
    ts_mesh_discard(a);
    ts_arena_run_free(ac, ap);
  }
  ts_mesh_discard(grp->dst);
  if (grp->fpage != TS_MESH_PRIVATE) ts_mesh_release(grp->fpage);
  ts_mesh_unreserve(1 + grp->nalias);
  ts_mesh_group_free(*mesh);
  *mesh = 0;
}

/* One meshing pass at a time (its scratch arrays are static).  Taken
 * before any bin lock; fork takes it too (ts_bin_prefork). */
static pthread_mutex_t mesh_pass_lock = PTHREAD_MUTEX_INITIALIZER;

void ts_bin_prefork(void) { pthread_mutex_lock(&mesh_pass_lock); }
void ts_bin_postfork_parent(void) { pthread_mutex_unlock(&mesh_pass_lock); }
void ts_bin_postfork_child(void) { pthread_mutex_init(&mesh_pass_lock, NULL); }

/* How many sparse slabs one meshing pass looks at per bin, and how many
 * pairs it may try (each a compare of two 32-byte bitmaps): at most a few
 * milliseconds of the purger's time per bin and tick.  Without the cap, a
 * heap whose slabs were all a quarter full (the redis-like pattern) spent
 * 0.4 s of its 1 s run trying pairs that never fit. */
#define TS_MESH_CANDIDATES 2048
#define TS_MESH_TRIES 262144

/* Meshes the bin's sparse 1-page slabs (less than a quarter used) into
 * others up to half used whose objects sit at other offsets: the sparsest
 * first, each into the fullest slab it fits, so that
 * groups fill up and the fewest shared pages hold them; returns the pages
 * given back. */
size_t ts_bin_mesh(ts_arena_t *arena, unsigned cls) {
  if (ts_class_slab_pages[cls] != 1) return 0;
  ts_bin_t *bin = &arena->bins[cls];
  static ts_span_t *cand[TS_MESH_CANDIDATES]; /* under mesh_pass_lock */
  static uint64_t used[TS_MESH_CANDIDATES][TS_SLAB_MAP_WORDS];
  static uint16_t order[TS_MESH_CANDIDATES];
  static uint16_t count[TS_SLAB_MAX_OBJS + 2];
  size_t merged = 0;
  pthread_mutex_lock(&mesh_pass_lock);
  pthread_mutex_lock(&bin->lock);
  unsigned n = 0;
  for (unsigned l = 0; l < 2; l++) /* slabs up to half used; only the sparser quarter moves */
    for (ts_span_t *s = bin->lists[l]; s && n < TS_MESH_CANDIDATES; s = s->next) {
      if (*ts_slab_mesh(s) && ts_mesh_group(*ts_slab_mesh(s))->fpage == TS_MESH_PRIVATE) continue;
      if (ts_chunk_mixed(ts_chunk_of(s), (unsigned)(s - ts_chunk_of(s)->spans))) continue; /* has hosted other classes' objects */
      slab_used(s, used[n]);
      cand[n++] = s;
    }
  if (n >= 2 && ts_mesh_usable()) {
    /* order[]: candidates by objects used, fewest first (a counting sort:
     * qsort may allocate) */
    memset(count, 0, sizeof count);
    for (unsigned i = 0; i < n; i++) count[ts_slab_nobjs(cand[i]) - cand[i]->nfree + 1]++;
    for (unsigned k = 1; k < TS_SLAB_MAX_OBJS + 2; k++) count[k] += count[k - 1];
    for (unsigned i = 0; i < n; i++) order[count[ts_slab_nobjs(cand[i]) - cand[i]->nfree]++] = (uint16_t)i;
    size_t budget = TS_MESH_TRIES;
    for (unsigned a = 0; a < n && budget; a++) {
      unsigned i = order[a];
      ts_span_t *src = cand[i];
      if (!src || *ts_slab_mesh(src) || src->list != 0) continue; /* merged, holds a group, or not sparse */
      for (unsigned b = n; b-- > 0 && budget; budget--) {
        unsigned j = order[b];
        ts_span_t *dst = cand[j];
        if (j == i || !dst || (*ts_slab_mesh(dst) && ts_mesh_group(*ts_slab_mesh(dst))->nalias >= TS_MESH_GROUP_MAX - 1)) continue;
        if (!slab_disjoint(used[i], used[j])) continue;
        if (!bin_mesh_pair(bin, dst, src, used[i])) goto done;
        for (unsigned w = 0; w < TS_SLAB_MAP_WORDS; w++) used[j][w] |= used[i][w];
        cand[i] = NULL;
        merged++;
        break;
      }
    }
  }
done:
  pthread_mutex_unlock(&bin->lock);
  pthread_mutex_unlock(&mesh_pass_lock);
  return merged;
}

/* The slab p belongs to: its page's, or for a page meshed into another
 * slab, that slab (in *chunk, updated). */
static ts_span_t *bin_slab_of(ts_chunk_t **chunk, void *p) {
  ts_chunk_t *c = *chunk;
  unsigned page = ts_chunk_page_of(p);
  if (ts_chunk_codes(c)[page] == TS_PAGE_MESHED) {
    ts_span_t *dst = c->spans[page].next;
    *chunk = ts_chunk_of(dst);
    return dst;
  }
  return &c->spans[c->page_head[page]];
}

void ts_bin_put(ts_bin_t *bin, ts_chunk_t *chunk, void *p) {
  ts_span_t *s = bin_slab_of(&chunk, p);
  int r = ts_slab_put(chunk, s, p);
  if (TS_LIKELY(r >= 0)) TS_SW_ADD(bin->free_objs, 1);
  TS_SW_SET(bin->room, TS_ROOM_UNKNOWN);
  if (TS_UNLIKELY(r < 0)) {
    pthread_mutex_unlock(&bin->lock);
    if (r == -2) ts_fatal("free(): double free of %p (size %u)", p, (unsigned)ts_class_size[s->cls]);
    ts_fatal("free(): invalid pointer %p (inside a block of size %u)", p, (unsigned)ts_class_size[s->cls]);
  }
  ts_bin_settle(bin, chunk, s);
}

void ts_bin_settle(ts_bin_t *bin, ts_chunk_t *chunk, ts_span_t *s) {
  /* foreign objects may lie in the tail, past every slot */
  if (s->nfree == ts_slab_nobjs(s) && !ts_mixed_hosts(chunk, s)) {
    bin_unlink(bin, s);
    if (ts_opt.mesh && *ts_slab_mesh(s)) bin_unmesh(s);
    if (!bin->spare) {
      bin->spare = s;
    } else {
      bin_count_slab(bin, s, -1);
      ts_arena_run_free(chunk, (unsigned)(s - chunk->spans));
    }
  } else {
    bin_relist(bin, s);
  }
}

/* Purges the pages of the bin's non-full slabs that hold only free
 * objects (aged_only: only those found free at the previous call too,
 * slab.c); returns the pages purged. */
size_t ts_bin_purge_pages(ts_arena_t *arena, unsigned cls, bool aged_only) {
  ts_bin_t *bin = &arena->bins[cls];
  size_t n = 0;
  if (ts_class_slab_pages[cls] < 2) return 0;
  pthread_mutex_lock(&bin->lock);
  for (unsigned i = 0; i < TS_BIN_LISTS; i++)
    for (ts_span_t *s = bin->lists[i]; s; s = s->next) n += ts_slab_purge_free_pages(ts_chunk_of(s), s, aged_only);
  TS_SW_ADD(bin->pages, (uint64_t)0 - n);
  pthread_mutex_unlock(&bin->lock);
  return n;
}

/* Gives the bin's spare empty slab, if any, back to the arena. */
void ts_bin_release_spare(ts_arena_t *arena, unsigned cls) {
  ts_bin_t *bin = &arena->bins[cls];
  pthread_mutex_lock(&bin->lock);
  ts_span_t *s = bin->spare;
  if (s) {
    bin->spare = NULL;
    bin_count_slab(bin, s, -1);
    ts_chunk_t *chunk = ts_chunk_of(s);
    ts_arena_run_free(chunk, (unsigned)(s - chunk->spans));
  }
  pthread_mutex_unlock(&bin->lock);
}

/* Gives n objects of class cls back to their slabs, whatever arenas they
 * belong to: one lock per arena met.  ptrs is reordered. */
/* Objects placed in other classes' slabs (mixed.c), given back under
 * their slabs' bin locks, one lock for a row of objects of the same bin. */
static void bin_flush_placed(ts_arena_t *arena, void **ptrs, unsigned n) {
  ts_bin_t *held = NULL;
  for (unsigned i = 0; i < n; i++) {
    ts_chunk_t *chunk = ts_chunk_of(ptrs[i]);
    ts_span_t *s = bin_slab_of(&chunk, ptrs[i]);
    ts_bin_t *home = &arena->bins[s->cls]; /* its class stays while the object is in it */
    if (home != held) {
      if (held) pthread_mutex_unlock(&held->lock);
      pthread_mutex_lock(&home->lock);
      held = home;
    }
    ts_mixed_put(home, chunk, s, ptrs[i], "free");
  }
  if (held) pthread_mutex_unlock(&held->lock);
}

void ts_bin_flush(unsigned cls, void **ptrs, unsigned n) {
  void *placed[TS_MIXED_FLUSH_BATCH];
  while (n) {
    ts_arena_t *arena = ts_chunk_of(ptrs[0])->arena;
    ts_bin_t *bin = &arena->bins[cls];
    unsigned rest = 0, nplaced = 0;
    pthread_mutex_lock(&bin->lock);
    for (unsigned i = 0; i < n; i++) {
      ts_chunk_t *chunk = ts_chunk_of(ptrs[i]);
      if (chunk->arena != arena) {
        ptrs[rest++] = ptrs[i];
        continue;
      }
      ts_chunk_t *slab_chunk = chunk; /* a meshed page's slab may lie in another chunk */
      if (TS_LIKELY(bin_slab_of(&slab_chunk, ptrs[i])->cls == cls)) {
        ts_bin_put(bin, chunk, ptrs[i]);
        continue;
      }
      placed[nplaced++] = ptrs[i];
      if (nplaced == TS_MIXED_FLUSH_BATCH) {
        pthread_mutex_unlock(&bin->lock);
        bin_flush_placed(arena, placed, nplaced);
        nplaced = 0;
        pthread_mutex_lock(&bin->lock);
      }
    }
    pthread_mutex_unlock(&bin->lock);
    bin_flush_placed(arena, placed, nplaced);
    n = rest;
  }
}
