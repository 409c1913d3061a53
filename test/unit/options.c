/* SPDX-License-Identifier: MIT */
/* Unit test of options.c: TESSERA_CONF parsing, values, and the warning
 * printed once for each bad key or value. */
#include "internal.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void parse_conf(void *conf) {
  setenv("TESSERA_CONF", conf, 1);
  ts_options_init();
}

/* Parses conf with stderr captured into err. */
static void parse(const char *conf, char *err, size_t cap) {
  ts_test_capture_stderr(parse_conf, (void *)conf, err, cap);
}

static const ts_options_t defaults = {1000, 0, 64, true, false, true, TS_MEDIUM_AUTO, false, false, 0, 0, NULL, 0};

TS_TEST(defaults_are_documented) {
  expect_eq(ts_opt.decay_ms, 1000);
  expect_eq(ts_opt.dirty_max_bytes, 0);
  expect_eq(ts_opt.dirty_max_share, 64);
  expect_true(ts_opt.background_thread);
  expect_true(!ts_opt.mesh);
  expect_true(ts_opt.mixed_slabs);
  expect_eq(ts_opt.medium, TS_MEDIUM_AUTO);
  expect_true(!ts_opt.stats_exact);
  expect_eq(ts_opt.stats_print, 0);
  expect_eq(ts_opt.stats_interval_ms, 0);
  expect_true(ts_opt.stats_file == NULL);
}

TS_TEST(stats_options) {
  char err[512];
  parse("stats_exact:true,stats_print:json,stats_interval_ms:250,stats_file:/tmp/ts.%p.json", err, sizeof err);
  expect_eq(err[0], 0);
  expect_true(ts_opt.stats_exact);
  expect_eq(ts_opt.stats_print, 2);
  expect_eq(ts_opt.stats_interval_ms, 250);
  expect_eq(ts_opt.stats_file_len, strlen("/tmp/ts.%p.json"));
  expect_true(ts_opt.stats_file && memcmp(ts_opt.stats_file, "/tmp/ts.%p.json", ts_opt.stats_file_len) == 0);
  /* a program that reuses its environment (setproctitle) keeps the path */
  char *env = getenv("TESSERA_CONF");
  memset(env, 'x', strlen(env));
  expect_true(memcmp(ts_opt.stats_file, "/tmp/ts.%p.json", ts_opt.stats_file_len) == 0);
  parse("stats_print:yaml,stats_interval_ms:-1,stats_exact:perhaps", err, sizeof err);
  expect_true(strstr(err, "tessera: warning: TESSERA_CONF: stats_print: not none, text or json") != NULL, "%s", err);
  expect_true(strstr(err, "tessera: warning: TESSERA_CONF: stats_interval_ms: not a number") != NULL, "%s", err);
  expect_true(strstr(err, "tessera: warning: TESSERA_CONF: stats_exact: not true or false") != NULL, "%s", err);
  expect_eq(ts_opt.stats_print, 2); /* bad values leave the option as it was */
  ts_opt = defaults;
}

TS_TEST(good_values) {
  char err[512];
  parse("decay_ms:250,dirty_max:64M,background_thread:off,mesh:on,mixed_slabs:off", err, sizeof err);
  expect_true(ts_opt.mesh);
  expect_true(!ts_opt.mixed_slabs);
  expect_eq(ts_opt.decay_ms, 250);
  expect_eq(ts_opt.dirty_max_bytes, 64u << 20);
  expect_true(!ts_opt.background_thread);
  expect_eq(err[0], 0);
  parse("dirty_max:10%,background_thread:1,decay_ms:0", err, sizeof err);
  expect_eq(ts_opt.dirty_max_share, 102);
  expect_eq(ts_opt.dirty_max_bytes, 0);
  expect_true(ts_opt.background_thread);
  expect_eq(ts_opt.decay_ms, 0);
  parse("dirty_max:2g", err, sizeof err);
  expect_eq(ts_opt.dirty_max_bytes, (uint64_t)2 << 30);
  parse("medium:true", err, sizeof err);
  expect_eq(ts_opt.medium, TS_MEDIUM_ON);
  parse("medium:off", err, sizeof err);
  expect_eq(ts_opt.medium, TS_MEDIUM_OFF);
  parse("medium:auto", err, sizeof err);
  expect_eq(ts_opt.medium, TS_MEDIUM_AUTO);
  expect_eq(err[0], 0);
  parse("medium:sometimes", err, sizeof err);
  expect_true(strstr(err, "tessera: warning: TESSERA_CONF: medium: not true, false or auto") != NULL, "%s", err);
  expect_eq(ts_opt.medium, TS_MEDIUM_AUTO);
  ts_opt = defaults;
}

TS_TEST(bad_values_warn_and_are_ignored) {
  char err[1024];
  parse("decay_ms:soon,colour:blue,dirty_max:150%,background_thread:maybe,decay_ms:99999999,novalue", err,
        sizeof err);
  expect_true(strstr(err, "tessera: warning: TESSERA_CONF: decay_ms: not a number") != NULL, "%s", err);
  expect_true(strstr(err, "tessera: warning: TESSERA_CONF: colour: unknown option") != NULL, "%s", err);
  expect_true(strstr(err, "tessera: warning: TESSERA_CONF: dirty_max: a share must be 0% to 100%") != NULL, "%s", err);
  expect_true(strstr(err, "tessera: warning: TESSERA_CONF: background_thread: not true or false") != NULL, "%s", err);
  expect_true(strstr(err, "tessera: warning: TESSERA_CONF: novalue: no value") != NULL, "%s", err);
  /* nothing changed */
  expect_eq(ts_opt.decay_ms, 1000);
  expect_eq(ts_opt.dirty_max_share, 64);
  expect_true(ts_opt.background_thread);
  ts_opt = defaults;
}

int main(void) {
  unsetenv("TESSERA_CONF");
  ts_init_slow();
  ts_run(defaults_are_documented);
  ts_run(good_values);
  ts_run(stats_options);
  ts_run(bad_values_warn_and_are_ignored);
  return ts_test_done();
}
