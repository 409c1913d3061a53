/* SPDX-License-Identifier: MIT */
/*
 * side.c: each slab's side array (types.h: ts_side_s), which remembers
 * per object how many bytes of its class the caller did not ask for, and
 * the per-arena metadata blocks side arrays are carved from.
 *
 * Side arrays exist only with option stats_exact (or tags), when every
 * call takes the slow path: finding one costs a few dependent loads, which
 * on the fast paths cost 45-80% on a malloc/free loop (docs/STATS.md).
 *
 * Invariants (stats_exact):
 *   every page p of a slab has ts_chunk_sides(chunk)[p] == the slab's side
 *   array, from ts_side_attach() until ts_side_detach() when its run is freed;
 *   meta.used_bytes == bytes of side arrays attached, of the bitmaps of
 *   slabs of more than 64 objects (slab.c) and of mixed slabs' records.
 * A page meshed into another slab (mesh.c) keeps its own side array: the
 * slack of an object stays with its address, whichever physical page
 * holds it.
 *
 * Metadata blocks are TS_META_BLOCK_BYTES mappings, carved by bump
 * allocation, with freed pieces kept on a list per size; they are never
 * unmapped (at most the side arrays of the arena's peak slab count, and
 * the granule maps of its peak count of mixed slabs, mixed.c).
 */
#include "internal.h"

/* Bytes of slack slots: the offset of the tags, if any. */
static size_t side_tag_off(unsigned cls) {
  size_t w = cls < TS_SIDE_NARROW_CLASSES ? 1 : 2;
  return (ts_class_slab_objs[cls] * w + 1) & ~(size_t)1;
}

static size_t side_bytes(unsigned cls) {
  size_t tags = ts_opt.tags ? ts_class_slab_objs[cls] * sizeof(uint16_t) : 0;
  return (sizeof(ts_side_t) + side_tag_off(cls) + tags + 15) & ~(size_t)15;
}

void *ts_meta_alloc(ts_meta_t *m, size_t bytes) {
  unsigned li = (unsigned)(bytes >> 4) - 1;
  if (li >= TS_META_LISTS) ts_fatal("metadata piece of %zu bytes is over the limit", bytes);
  pthread_mutex_lock(&m->lock);
  void *p = m->free[li];
  if (p) {
    m->free[li] = *(void **)p;
  } else {
    if ((size_t)(m->end - m->cur) < bytes) {
      char *block = ts_os_map(TS_META_BLOCK_BYTES);
      if (!block) {
        pthread_mutex_unlock(&m->lock);
        return NULL;
      }
      m->mapped_bytes += TS_META_BLOCK_BYTES;
      m->cur = block;
      m->end = block + TS_META_BLOCK_BYTES;
    }
    p = m->cur;
    m->cur += bytes;
    m->touched_bytes += bytes;
  }
  m->used_bytes += bytes;
  pthread_mutex_unlock(&m->lock);
  return p;
}

void ts_meta_free(ts_meta_t *m, void *p, size_t bytes) {
  unsigned li = (unsigned)(bytes >> 4) - 1;
  pthread_mutex_lock(&m->lock);
  *(void **)p = m->free[li];
  m->free[li] = p;
  m->used_bytes -= bytes;
  pthread_mutex_unlock(&m->lock);
}

void ts_meta_init(ts_meta_t *m) {
  pthread_mutex_init(&m->lock, NULL);
  for (unsigned i = 0; i < TS_META_LISTS; i++) m->free[i] = NULL;
  m->cur = m->end = NULL;
  m->mapped_bytes = m->used_bytes = m->touched_bytes = 0;
}

bool ts_side_attach(ts_chunk_t *chunk, unsigned head, unsigned cls) {
  if (!ts_opt.stats_exact) return true;
  ts_arena_t *arena = chunk->arena;
  ts_side_t *s = ts_meta_alloc(&arena->meta, side_bytes(cls));
  if (!s) return false;
  s->base = (uintptr_t)ts_chunk_page_addr(chunk, head);
  s->aidx = (uint16_t)arena->index;
  s->nobjs = ts_class_slab_objs[cls];
  s->cls = (uint16_t)cls;
  s->tag_off = (uint16_t)side_tag_off(cls);
  ts_side_t **sides = ts_chunk_sides(chunk);
  for (unsigned p = head; p < head + ts_class_slab_pages[cls]; p++) sides[p] = s;
  return true;
}

void ts_side_detach(ts_chunk_t *chunk, unsigned head, unsigned npages) {
  if (!ts_opt.stats_exact) return; /* nothing attached; the header page stays untouched */
  ts_side_t **sides = ts_chunk_sides(chunk);
  ts_side_t *s = sides[head];
  if (!s) return;
  for (unsigned p = head; p < head + npages; p++) sides[p] = NULL;
  ts_meta_free(&chunk->arena->meta, s, side_bytes(s->cls));
}

void ts_meta_prefork(ts_arena_t *arena) { pthread_mutex_lock(&arena->meta.lock); }
void ts_meta_postfork_parent(ts_arena_t *arena) { pthread_mutex_unlock(&arena->meta.lock); }
void ts_meta_postfork_child(ts_arena_t *arena) { pthread_mutex_init(&arena->meta.lock, NULL); }
