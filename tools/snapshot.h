/* SPDX-License-Identifier: MIT */
/*
 * snapshot.h: the allocator's JSON snapshots (src/stats_print.c,
 * format_json) as C structs for the tessera tool: one snapshot decoded
 * from a JSON object, the last snapshot of a file (`tessera stats`), and
 * every snapshot of a process's JSONL file (`tessera run`).
 *
 * Decoding is strict about the fields it knows (each must be there, with
 * its type, except those a version added, which read as 0 when absent) and
 * ignores the ones it does not, so that a newer library's additions pass.  classes, arenas and tags are optional: periodic
 * snapshots leave out arenas, and tags are newer than the rest.
 */
#ifndef TS_TOOL_SNAPSHOT_H
#define TS_TOOL_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct snap_class_s {
  uint64_t size, slabs, slab_bytes, objects, used, live, cached;
  double utilisation;        /* share of slab_bytes in use (stats version 2; live / objects before) */
  uint64_t foreign;          /* objects placed in other classes' slabs (0 in version 1 snapshots) */
  uint64_t hosted_bytes;     /* other classes' objects in this class's slabs (0 in version 1) */
} snap_class_t;

typedef struct snap_arena_s {
  uint64_t index, requested_bytes, used_bytes, slab_free_bytes, dirty_bytes, metadata_bytes;
  uint64_t committed_bytes, mapped_bytes, resident_bytes, chunks, threads;
} snap_arena_t;

typedef struct snap_tag_s {
  char *name;                /* owned; UTF-8 as sent, unescaped */
  uint64_t requested_bytes, peak_bytes, allocations;
} snap_tag_t;

typedef struct snap_s {
  char tessera[32];          /* the library's version string */
  uint64_t stats_version;
  uint64_t pid;
  uint64_t time_ms;          /* wall clock, ms since the epoch */
  bool final;                /* written at exit */
  bool requested_exact;
  /* the ledger: committed = requested + rounding + cached + slab_free + dirty + metadata */
  uint64_t requested_bytes, rounding_bytes, cached_bytes, slab_free_bytes, dirty_bytes, metadata_bytes;
  uint64_t committed_bytes;
  uint64_t allocated_bytes, medium_bytes, large_bytes, huge_bytes, mapped_bytes, resident_bytes;
  uint64_t process_rss_bytes, process_rss_peak_bytes, returned_bytes;
  uint64_t requested_peak_bytes, allocated_peak_bytes, resident_peak_bytes;
  double frag_ratio;         /* committed / requested */
  double share_rounding, share_cached, share_slab_free, share_dirty, share_metadata;
  uint64_t calls_malloc, calls_free, calls_calloc, calls_realloc, calls_aligned, calls_remote_free;
  uint64_t huge_blocks;
  /* optional lists; has_* says whether the snapshot carried them */
  bool has_classes, has_arenas, has_tags;
  size_t nclasses, narenas, ntags;
  snap_class_t *classes;
  snap_arena_t *arenas;
  snap_tag_t *tags;
} snap_t;

struct json_s;

/* Fills *out from a JSON object.  Returns 0, or -1 with *out cleared and
 * why (e.g. `field "requested_bytes" is a string, expected an unsigned
 * integer`) filled. */
int snap_decode(const struct json_s *obj, snap_t *out, char *why, size_t whylen);

/* Frees the lists of s and zeroes it. */
void snap_clear(snap_t *s);

/* Frees only the lists (classes, arenas, tags), keeping the numbers. */
void snap_drop_lists(snap_t *s);

/* Reads a whole file (path "-" is standard input) into a NUL-terminated
 * buffer to free; NULL with why filled on failure. */
char *snap_read_text(const char *path, size_t *len, char *why, size_t whylen);

/* The snapshot of a file holding one JSON object (on any number of lines)
 * or JSON lines (the last non-empty line counts).  Returns 0, or -1 with
 * why filled (the position of a syntax error as "line L, column C"). */
int snap_load_last(const char *path, snap_t *out, char *why, size_t whylen);

/* Every snapshot of one process's JSONL file. */
typedef struct snap_series_s {
  snap_t *points;            /* in file order, lists dropped */
  size_t count;
  size_t bad_lines;          /* lines that did not decode (a write cut short by a kill) */
  char first_bad[200];       /* why the first of them failed */
  snap_t last;               /* in full: the last final snapshot, else the last one */
  bool has_last;
} snap_series_t;

/* Loads path into *out.  Returns 0 (possibly with no points), or -1 with
 * why filled when the file cannot be read. */
int snap_series_load(const char *path, snap_series_t *out, char *why, size_t whylen);
void snap_series_free(snap_series_t *s);

#endif /* TS_TOOL_SNAPSHOT_H */
