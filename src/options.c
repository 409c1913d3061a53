/* SPDX-License-Identifier: MIT */
/*
 * options.c: run-time options, from the environment variable
 * TESSERA_CONF="key:value,key:value" (the shape of jemalloc's MALLOC_CONF),
 * read once at start-up.  Parsing allocates nothing and copies nothing:
 * it walks the string in place.  An unknown key or a bad value is reported
 * once as "tessera: warning: TESSERA_CONF: <key>: <why>" and ignored.
 *
 *   decay_ms           0..3600000, default 1000: a freed page is returned to
 *                      the OS within this long (0: at once)
 *   dirty_max          bytes (suffix K, M or G) or a share of the arena's
 *                      live pages ("6%"); default 6.25%.  A share never
 *                      gives less than 32 MiB per arena; bytes are taken
 *                      as given.  More dirty pages than this are purged
 *                      without waiting for the deadline: at once for
 *                      bytes, after 10 ms (or at once above twice it)
 *                      for a share while the purger thread runs, at once
 *                      for a share without it (purge.c)
 *   mesh               true/false, default false: the purger meshes sparse
 *                      one-page slabs of a class (mesh.c, bin.c)
 *   mixed_slabs        true/false, default true: once an arena's slabs have
 *                      holes, objects up to 1 KiB may be placed in the free
 *                      space of other classes' slabs (mixed.c); off with
 *                      stats_exact, whose side arrays are per slot
 *   medium             auto/true/false, default auto: requests above 4 KiB
 *                      up to 64 KiB are blocks of 256-byte granules in
 *                      regions, first fit, coalescing, instead of slabs of
 *                      their class or page runs (medium.c): always (true),
 *                      never (false), or while the thread's blocks of that
 *                      size outlive the next few it allocates (auto,
 *                      tcache.c); off with stats_exact
 *   background_thread  true/false (1/0, on/off), default true: a thread of
 *                      tessera's purges on the deadline even when the
 *                      program makes no further allocator calls
 *   stats_exact        true/false, default false: keep every small block's
 *                      requested size (side.c), so that the ledger's
 *                      requested_bytes is exact; every call then takes the
 *                      slow path (docs/STATS.md has the cost)
 *   tags               true/false, default false: charge every block to the
 *                      allocating thread's current tag (tag.c); implies
 *                      stats_exact
 *   stats_print        none, text or json, default none: print the ledger
 *                      to stderr (or stats_file) at exit
 *   stats_interval_ms  0..86400000, default 0 (off): append a JSON snapshot
 *                      to stats_file this often (from a writer thread of
 *                      tessera's, started at the first slow-path call)
 *   stats_file         a path, %p replaced by the process id; default
 *                      none (stderr); the value ends at the next comma
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

ts_options_t ts_opt = {
    .decay_ms = 1000,
    .dirty_max_bytes = 0,
    .dirty_max_share = 64, /* 6.25% of 1024 */
    .background_thread = true,
    .mesh = false,
    .mixed_slabs = true,
    .medium = TS_MEDIUM_AUTO,
    .stats_exact = false,
    .tags = false,
    .stats_print = 0,
    .stats_interval_ms = 0,
    .stats_file = NULL,
    .stats_file_len = 0,
};

#define TS_STATS_FILE_MAX 4000
static char stats_file_buf[TS_STATS_FILE_MAX + 1];

static bool opt_key_is(const char *k, size_t klen, const char *name) {
  return strlen(name) == klen && memcmp(k, name, klen) == 0;
}

static void opt_warn(const char *k, size_t klen, const char *why) {
  char key[64];
  size_t n = klen < sizeof key - 1 ? klen : sizeof key - 1;
  memcpy(key, k, n);
  key[n] = 0;
  ts_message("warning: TESSERA_CONF: %s: %s", key, why);
}

/* Parses a decimal number with an optional K/M/G suffix; false if bad. */
static bool opt_size(const char *v, size_t vlen, uint64_t *out) {
  uint64_t x = 0;
  size_t i = 0;
  if (vlen == 0) return false;
  for (; i < vlen && v[i] >= '0' && v[i] <= '9'; i++) {
    if (x > (UINT64_MAX - 9) / 10) return false;
    x = x * 10 + (uint64_t)(v[i] - '0');
  }
  if (i == 0) return false;
  unsigned shift = 0;
  if (i + 1 == vlen) {
    char s = v[i];
    if (s == 'k' || s == 'K') shift = 10;
    else if (s == 'm' || s == 'M') shift = 20;
    else if (s == 'g' || s == 'G') shift = 30;
    else return false;
  } else if (i != vlen) {
    return false;
  }
  if (shift && x > (UINT64_MAX >> shift)) return false;
  *out = x << shift;
  return true;
}

static bool opt_bool(const char *v, size_t vlen, bool *out) {
  static const char *yes[] = {"1", "true", "on", "yes"}, *no[] = {"0", "false", "off", "no"};
  for (unsigned i = 0; i < 4; i++) {
    if (opt_key_is(v, vlen, yes[i])) return *out = true, true;
    if (opt_key_is(v, vlen, no[i])) return *out = false, true;
  }
  return false;
}

/* The boolean option named k, or NULL. */
static bool *opt_flag(const char *k, size_t klen) {
  if (opt_key_is(k, klen, "background_thread")) return &ts_opt.background_thread;
  if (opt_key_is(k, klen, "mesh")) return &ts_opt.mesh;
  if (opt_key_is(k, klen, "mixed_slabs")) return &ts_opt.mixed_slabs;
  if (opt_key_is(k, klen, "stats_exact")) return &ts_opt.stats_exact;
  if (opt_key_is(k, klen, "tags")) return &ts_opt.tags;
  return NULL;
}

static void opt_apply(const char *k, size_t klen, const char *v, size_t vlen) {
  uint64_t x;
  bool *flag;
  if (opt_key_is(k, klen, "decay_ms")) {
    if (!opt_size(v, vlen, &x) || x > 3600000) return opt_warn(k, klen, "not a number of milliseconds in 0..3600000");
    ts_opt.decay_ms = x;
  } else if (opt_key_is(k, klen, "dirty_max")) {
    if (vlen > 1 && v[vlen - 1] == '%') {
      if (!opt_size(v, vlen - 1, &x) || x > 100) return opt_warn(k, klen, "a share must be 0% to 100%");
      ts_opt.dirty_max_share = (uint32_t)(x * 1024 / 100);
      ts_opt.dirty_max_bytes = 0;
    } else {
      if (!opt_size(v, vlen, &x) || x == 0) return opt_warn(k, klen, "not a size in bytes (suffix K, M, G) or a share (N%)");
      ts_opt.dirty_max_bytes = x;
    }
  } else if (opt_key_is(k, klen, "medium")) {
    bool b;
    if (opt_key_is(v, vlen, "auto")) ts_opt.medium = TS_MEDIUM_AUTO;
    else if (opt_bool(v, vlen, &b)) ts_opt.medium = b ? TS_MEDIUM_ON : TS_MEDIUM_OFF;
    else return opt_warn(k, klen, "not true, false or auto");
  } else if ((flag = opt_flag(k, klen)) != NULL) {
    bool b;
    if (!opt_bool(v, vlen, &b)) return opt_warn(k, klen, "not true or false");
    *flag = b;
  } else if (opt_key_is(k, klen, "stats_print")) {
    if (opt_key_is(v, vlen, "none")) ts_opt.stats_print = 0;
    else if (opt_key_is(v, vlen, "text")) ts_opt.stats_print = 1;
    else if (opt_key_is(v, vlen, "json")) ts_opt.stats_print = 2;
    else return opt_warn(k, klen, "not none, text or json");
  } else if (opt_key_is(k, klen, "stats_interval_ms")) {
    if (!opt_size(v, vlen, &x) || x > 86400000) return opt_warn(k, klen, "not a number of milliseconds in 0..86400000");
    ts_opt.stats_interval_ms = x;
  } else if (opt_key_is(k, klen, "stats_file")) {
    if (vlen == 0 || vlen > TS_STATS_FILE_MAX) return opt_warn(k, klen, "not a path of 1 to 4000 bytes");
    /* copied: a program may overwrite its environment (setproctitle) */
    memcpy(stats_file_buf, v, vlen);
    stats_file_buf[vlen] = 0;
    ts_opt.stats_file = stats_file_buf;
    ts_opt.stats_file_len = vlen;
  } else {
    opt_warn(k, klen, "unknown option");
  }
}

static void opt_parse(const char *s);

void ts_options_init(void) {
  const char *s = getenv("TESSERA_CONF");
  if (s) opt_parse(s);
  if (ts_opt.tags) ts_opt.stats_exact = true;
}

static void opt_parse(const char *s) {
  while (*s) {
    const char *k = s;
    while (*s && *s != ':' && *s != ',') s++;
    size_t klen = (size_t)(s - k);
    if (*s != ':') {
      if (klen) opt_warn(k, klen, "no value (expected key:value)");
      if (*s) s++;
      continue;
    }
    const char *v = ++s;
    while (*s && *s != ',') s++;
    opt_apply(k, klen, v, (size_t)(s - v));
    if (*s) s++;
  }
}
