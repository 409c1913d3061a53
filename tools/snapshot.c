/* SPDX-License-Identifier: MIT */
/*
 * snapshot.c: decoding the allocator's JSON snapshots (snapshot.h) and
 * reading them from files.  The known fields are listed once, in tables
 * of (JSON path, kind, offset) that one walker applies to the top-level
 * object and to each entry of the classes, arenas and tags arrays; a path
 * "a.b" names member b of the object a.  The tables follow format_json in
 * src/stats_print.c; tags (name, requested_bytes, peak_bytes, allocations)
 * are the planned addition.
 */
#include "snapshot.h"

#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef enum kind_e { K_U64, K_DBL, K_BOOL, K_VERSION, K_NAME } kind_e;

typedef struct field_s {
  const char *path;
  kind_e kind;
  size_t offset;
  bool optional; /* added by a later stats version: 0 when absent */
} field_t;

#define F(path, kind, type, member) {path, kind, offsetof(type, member), false}
#define F_SINCE(path, kind, type, member) {path, kind, offsetof(type, member), true}
#define TOP(path, kind, member) F(path, kind, snap_t, member)

static const field_t top_fields[] = {
    TOP("tessera", K_VERSION, tessera),
    TOP("stats_version", K_U64, stats_version),
    TOP("pid", K_U64, pid),
    TOP("time_ms", K_U64, time_ms),
    TOP("final", K_BOOL, final),
    TOP("requested_exact", K_BOOL, requested_exact),
    TOP("requested_bytes", K_U64, requested_bytes),
    TOP("rounding_bytes", K_U64, rounding_bytes),
    TOP("cached_bytes", K_U64, cached_bytes),
    TOP("slab_free_bytes", K_U64, slab_free_bytes),
    TOP("dirty_bytes", K_U64, dirty_bytes),
    TOP("metadata_bytes", K_U64, metadata_bytes),
    TOP("committed_bytes", K_U64, committed_bytes),
    TOP("allocated_bytes", K_U64, allocated_bytes),
    F_SINCE("medium_bytes", K_U64, snap_t, medium_bytes), /* stats version 3 */
    TOP("large_bytes", K_U64, large_bytes),
    TOP("huge_bytes", K_U64, huge_bytes),
    TOP("mapped_bytes", K_U64, mapped_bytes),
    TOP("resident_bytes", K_U64, resident_bytes),
    TOP("process_rss_bytes", K_U64, process_rss_bytes),
    TOP("process_rss_peak_bytes", K_U64, process_rss_peak_bytes),
    TOP("returned_bytes", K_U64, returned_bytes),
    TOP("requested_peak_bytes", K_U64, requested_peak_bytes),
    TOP("allocated_peak_bytes", K_U64, allocated_peak_bytes),
    TOP("resident_peak_bytes", K_U64, resident_peak_bytes),
    TOP("frag_ratio", K_DBL, frag_ratio),
    TOP("frag_shares.rounding", K_DBL, share_rounding),
    TOP("frag_shares.cached", K_DBL, share_cached),
    TOP("frag_shares.slab_free", K_DBL, share_slab_free),
    TOP("frag_shares.dirty", K_DBL, share_dirty),
    TOP("frag_shares.metadata", K_DBL, share_metadata),
    TOP("calls.malloc", K_U64, calls_malloc),
    TOP("calls.free", K_U64, calls_free),
    TOP("calls.calloc", K_U64, calls_calloc),
    TOP("calls.realloc", K_U64, calls_realloc),
    TOP("calls.aligned", K_U64, calls_aligned),
    TOP("calls.remote_free", K_U64, calls_remote_free),
    TOP("huge_blocks", K_U64, huge_blocks),
};

static const field_t class_fields[] = {
    F("size", K_U64, snap_class_t, size),
    F("slabs", K_U64, snap_class_t, slabs),
    F("slab_bytes", K_U64, snap_class_t, slab_bytes),
    F("objects", K_U64, snap_class_t, objects),
    F("used", K_U64, snap_class_t, used),
    F("live", K_U64, snap_class_t, live),
    F("cached", K_U64, snap_class_t, cached),
    F("utilisation", K_DBL, snap_class_t, utilisation),
    F_SINCE("foreign", K_U64, snap_class_t, foreign),           /* stats version 2 */
    F_SINCE("hosted_bytes", K_U64, snap_class_t, hosted_bytes), /* stats version 2 */
};

static const field_t arena_fields[] = {
    F("index", K_U64, snap_arena_t, index),
    F("requested_bytes", K_U64, snap_arena_t, requested_bytes),
    F("used_bytes", K_U64, snap_arena_t, used_bytes),
    F("slab_free_bytes", K_U64, snap_arena_t, slab_free_bytes),
    F("dirty_bytes", K_U64, snap_arena_t, dirty_bytes),
    F("metadata_bytes", K_U64, snap_arena_t, metadata_bytes),
    F("committed_bytes", K_U64, snap_arena_t, committed_bytes),
    F("mapped_bytes", K_U64, snap_arena_t, mapped_bytes),
    F("resident_bytes", K_U64, snap_arena_t, resident_bytes),
    F("chunks", K_U64, snap_arena_t, chunks),
    F("threads", K_U64, snap_arena_t, threads),
};

static const field_t tag_fields[] = {
    F("name", K_NAME, snap_tag_t, name),
    F("requested_bytes", K_U64, snap_tag_t, requested_bytes),
    F("peak_bytes", K_U64, snap_tag_t, peak_bytes),
    F("allocations", K_U64, snap_tag_t, allocations),
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int say(char *why, size_t whylen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, whylen, fmt, ap);
  va_end(ap);
  return -1;
}

/* Follows a dotted path from obj; NULL (with why) when a step is missing
 * or not an object.  where prefixes messages ("" or "classes[3]: "). */
static const json_t *follow(const json_t *obj, const char *path, const char *where, char *why, size_t whylen) {
  char step[64];
  const json_t *v = obj;
  const char *p = path;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n >= sizeof step) n = sizeof step - 1;
    memcpy(step, p, n);
    step[n] = 0;
    const json_t *next = json_get(v, step);
    if (!next) {
      say(why, whylen, "%sno field \"%.*s\"", where, (int)(p - path + (ptrdiff_t)n), path);
      return NULL;
    }
    if (!dot) return next;
    if (next->type != JSON_OBJECT) {
      say(why, whylen, "%sfield \"%.*s\" is %s, expected an object", where, (int)(p - path + (ptrdiff_t)n), path,
          json_type_name(next->type));
      return NULL;
    }
    v = next;
    p = dot + 1;
  }
}

/* Applies a field table to one object, writing into base. */
static int decode_fields(const json_t *obj, const field_t *fields, size_t n, void *base, const char *where, char *why,
                         size_t whylen) {
  for (size_t i = 0; i < n; i++) {
    const field_t *f = &fields[i];
    if (f->optional && !json_get(obj, f->path)) continue; /* base is zeroed */
    const json_t *v = follow(obj, f->path, where, why, whylen);
    if (!v) return -1;
    char *dst = (char *)base + f->offset;
    switch (f->kind) {
      case K_U64:
        if (v->type != JSON_NUMBER || !v->is_u64)
          return say(why, whylen, "%sfield \"%s\" is %s, expected an unsigned integer", where, f->path,
                     v->type == JSON_NUMBER ? "a number out of range or with a sign, fraction or exponent"
                                            : json_type_name(v->type));
        memcpy(dst, &v->u64, sizeof v->u64);
        break;
      case K_DBL:
        if (v->type != JSON_NUMBER)
          return say(why, whylen, "%sfield \"%s\" is %s, expected a number", where, f->path, json_type_name(v->type));
        memcpy(dst, &v->number, sizeof v->number);
        break;
      case K_BOOL: {
        if (v->type != JSON_TRUE && v->type != JSON_FALSE)
          return say(why, whylen, "%sfield \"%s\" is %s, expected true or false", where, f->path,
                     json_type_name(v->type));
        bool b = v->type == JSON_TRUE;
        memcpy(dst, &b, sizeof b);
        break;
      }
      case K_VERSION:
        if (v->type != JSON_STRING)
          return say(why, whylen, "%sfield \"%s\" is %s, expected a string", where, f->path, json_type_name(v->type));
        snprintf(dst, sizeof((snap_t *)0)->tessera, "%s", v->string);
        break;
      case K_NAME: {
        if (v->type != JSON_STRING)
          return say(why, whylen, "%sfield \"%s\" is %s, expected a string", where, f->path, json_type_name(v->type));
        char *copy = malloc(v->string_len + 1);
        if (!copy) return say(why, whylen, "out of memory");
        memcpy(copy, v->string, v->string_len + 1);
        memcpy(dst, &copy, sizeof copy);
        break;
      }
    }
  }
  return 0;
}

/* Decodes the optional array name of entries, each of size bytes, with
 * fields; *has says whether it was there. */
static int decode_list(const json_t *obj, const char *name, const field_t *fields, size_t nfields, size_t size,
                       void **out, size_t *count, bool *has, char *why, size_t whylen) {
  const json_t *arr = json_get(obj, name);
  *out = NULL, *count = 0, *has = false;
  if (!arr) return 0;
  if (arr->type != JSON_ARRAY)
    return say(why, whylen, "field \"%s\" is %s, expected an array", name, json_type_name(arr->type));
  *has = true;
  if (!arr->count) return 0;
  char *items = calloc(arr->count, size);
  if (!items) return say(why, whylen, "out of memory");
  *out = items;
  for (size_t i = 0; i < arr->count; i++) {
    char where[64];
    snprintf(where, sizeof where, "%s[%zu]: ", name, i);
    if (arr->items[i].type != JSON_OBJECT)
      return say(why, whylen, "%sis %s, expected an object", where, json_type_name(arr->items[i].type));
    *count = i + 1; /* so that a failure below frees what entry i holds */
    if (decode_fields(&arr->items[i], fields, nfields, items + i * size, where, why, whylen) != 0) return -1;
  }
  return 0;
}

int snap_decode(const json_t *obj, snap_t *out, char *why, size_t whylen) {
  memset(out, 0, sizeof *out);
  if (!obj || obj->type != JSON_OBJECT)
    return say(why, whylen, "expected a JSON object (a tessera snapshot), found %s",
               obj ? json_type_name(obj->type) : "nothing");
  if (!json_get(obj, "tessera")) return say(why, whylen, "not a tessera snapshot: no field \"tessera\"");
  void *classes = NULL, *arenas = NULL, *tags = NULL;
  int rc = decode_fields(obj, top_fields, COUNT(top_fields), out, "", why, whylen);
  if (rc == 0)
    rc = decode_list(obj, "classes", class_fields, COUNT(class_fields), sizeof(snap_class_t), &classes,
                     &out->nclasses, &out->has_classes, why, whylen);
  out->classes = classes;
  if (rc == 0)
    rc = decode_list(obj, "arenas", arena_fields, COUNT(arena_fields), sizeof(snap_arena_t), &arenas, &out->narenas,
                     &out->has_arenas, why, whylen);
  out->arenas = arenas;
  if (rc == 0)
    rc = decode_list(obj, "tags", tag_fields, COUNT(tag_fields), sizeof(snap_tag_t), &tags, &out->ntags,
                     &out->has_tags, why, whylen);
  out->tags = tags;
  if (rc != 0) snap_clear(out);
  return rc;
}

void snap_drop_lists(snap_t *s) {
  for (size_t i = 0; i < s->ntags; i++) free(s->tags[i].name);
  free(s->classes);
  free(s->arenas);
  free(s->tags);
  s->classes = NULL, s->arenas = NULL, s->tags = NULL;
  s->nclasses = s->narenas = s->ntags = 0;
  s->has_classes = s->has_arenas = s->has_tags = false;
}

void snap_clear(snap_t *s) {
  snap_drop_lists(s);
  memset(s, 0, sizeof *s);
}

/* ---- files ---- */

char *snap_read_text(const char *path, size_t *len, char *why, size_t whylen) {
  bool is_stdin = strcmp(path, "-") == 0;
  int fd = is_stdin ? 0 : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    say(why, whylen, "cannot open: %s", strerror(errno));
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    if (!is_stdin) close(fd);
    say(why, whylen, "is a directory, not a snapshot file");
    return NULL;
  }
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    if (n + 1 >= cap) {
      char *bigger = realloc(buf, cap * 2);
      if (!bigger) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = bigger;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - n - 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      say(why, whylen, "cannot read: %s", strerror(errno));
      free(buf);
      if (!is_stdin) close(fd);
      return NULL;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  if (!is_stdin) close(fd);
  if (!buf) {
    say(why, whylen, "out of memory reading it");
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

static bool all_space(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r') return false;
  return true;
}

/* Parses text[0 .. len - 1] as exactly one JSON value and decodes it;
 * first_line numbers the lines in messages. */
static int decode_text(const char *text, size_t len, size_t first_line, snap_t *out, char *why, size_t whylen) {
  json_error_t err;
  size_t end;
  json_t *v = json_parse(text, len, &end, &err);
  if (!v)
    return say(why, whylen, "line %zu, column %zu: %s", first_line + err.line - 1, err.column, err.message);
  if (!all_space(text + end, len - end)) {
    size_t line = first_line, col = 1;
    for (size_t i = 0; i < end; i++) {
      if (text[i] == '\n') line++, col = 1;
      else col++;
    }
    while (end < len && (text[end] == ' ' || text[end] == '\t')) end++, col++;
    json_free(v);
    return say(why, whylen, "line %zu, column %zu: unexpected text after the JSON value", line, col);
  }
  char inner[200];
  int rc = snap_decode(v, out, inner, sizeof inner);
  json_free(v);
  if (rc != 0) return say(why, whylen, "line %zu: %s", first_line, inner);
  return 0;
}

int snap_load_last(const char *path, snap_t *out, char *why, size_t whylen) {
  size_t len;
  memset(out, 0, sizeof *out);
  char *text = snap_read_text(path, &len, why, whylen);
  if (!text) return -1;
  if (all_space(text, len)) {
    free(text);
    return say(why, whylen, "empty file: no JSON snapshot in it");
  }
  /* One value that fills the file (possibly pretty-printed over many
   * lines): that is the snapshot.  Otherwise JSON lines: the last one. */
  size_t end;
  json_error_t err;
  json_t *v = json_parse(text, len, &end, &err);
  int rc;
  if (!v) {
    rc = say(why, whylen, "line %zu, column %zu: %s", err.line, err.column, err.message);
  } else if (all_space(text + end, len - end)) {
    rc = decode_text(text, len, 1, out, why, whylen);
  } else {
    size_t stop = len;
    while (stop > 0 && all_space(text + stop - 1, 1)) stop--;
    size_t start = stop;
    while (start > 0 && text[start - 1] != '\n') start--;
    size_t line = 1;
    for (size_t i = 0; i < start; i++) line += text[i] == '\n';
    rc = decode_text(text + start, stop - start, line, out, why, whylen);
  }
  json_free(v);
  free(text);
  return rc;
}

int snap_series_load(const char *path, snap_series_t *out, char *why, size_t whylen) {
  memset(out, 0, sizeof *out);
  size_t len, cap = 0;
  char *text = snap_read_text(path, &len, why, whylen);
  if (!text) return -1;
  size_t line = 0;
  for (size_t at = 0; at < len;) {
    const char *nl = memchr(text + at, '\n', len - at);
    size_t stop = nl ? (size_t)(nl - text) : len;
    line++;
    if (!all_space(text + at, stop - at)) {
      snap_t s;
      char inner[200];
      if (decode_text(text + at, stop - at, line, &s, inner, sizeof inner) != 0) {
        if (!out->bad_lines++) snprintf(out->first_bad, sizeof out->first_bad, "%s", inner);
      } else {
        if (out->count == cap) {
          size_t ncap = cap ? cap * 2 : 64;
          snap_t *points = realloc(out->points, ncap * sizeof *points);
          if (!points) {
            snap_clear(&s);
            free(text);
            snap_series_free(out);
            return say(why, whylen, "out of memory");
          }
          out->points = points;
          cap = ncap;
        }
        snap_t *p = &out->points[out->count++];
        *p = s;
        p->classes = NULL, p->arenas = NULL, p->tags = NULL;
        p->nclasses = p->narenas = p->ntags = 0;
        p->has_classes = p->has_arenas = p->has_tags = false;
        if (s.final || !out->has_last || !out->last.final) {
          snap_clear(&out->last);
          out->last = s;
          out->has_last = true;
        } else {
          snap_clear(&s);
        }
      }
    }
    at = stop + 1;
  }
  free(text);
  return 0;
}

void snap_series_free(snap_series_t *s) {
  free(s->points);
  snap_clear(&s->last);
  memset(s, 0, sizeof *s);
}
