/* SPDX-License-Identifier: MIT */
/*
 * safety.c: the one place that reports misuse (invalid or double free, a
 * size that does not match its block) and aborts, plus the warning printer.
 * Messages start with "tessera: ", name the function and the pointer or
 * value, and are formatted on the stack and written with write(2): a
 * report never allocates, since the heap may be what is broken.
 */
#include "internal.h"

#include <stdlib.h>
#include <unistd.h>

/* A small vsnprintf for %s %p %zu %zx %u %d %x %lu %llu %%: enough for
 * tessera's messages, safe inside the allocator. */
static size_t put_str(char *buf, size_t cap, size_t n, const char *s) {
  while (*s) {
    if (n + 1 < cap) buf[n] = *s;
    n++, s++;
  }
  return n;
}

static size_t put_uint(char *buf, size_t cap, size_t n, unsigned long long v, unsigned base) {
  char tmp[32];
  int i = 0;
  do {
    tmp[i++] = "0123456789abcdef"[v % base];
    v /= base;
  } while (v);
  while (i--) {
    if (n + 1 < cap) buf[n] = tmp[i];
    n++;
  }
  return n;
}

int ts_format(char *buf, size_t cap, const char *fmt, va_list ap) {
  size_t n = 0;
  for (const char *f = fmt; *f; f++) {
    if (*f != '%') {
      if (n + 1 < cap) buf[n] = *f;
      n++;
      continue;
    }
    f++;
    int is_long = 0, is_size = 0;
    while (*f == 'l') is_long++, f++;
    if (*f == 'z') is_size = 1, f++;
    switch (*f) {
    case 's': n = put_str(buf, cap, n, va_arg(ap, const char *)); break;
    case 'p':
      n = put_str(buf, cap, n, "0x");
      n = put_uint(buf, cap, n, (uintptr_t)va_arg(ap, void *), 16);
      break;
    case 'd': {
      long long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
      if (v < 0) n = put_str(buf, cap, n, "-"), v = -v;
      n = put_uint(buf, cap, n, (unsigned long long)v, 10);
      break;
    }
    case 'u':
    case 'x': {
      unsigned long long v;
      if (is_size) v = va_arg(ap, size_t);
      else if (is_long >= 2) v = va_arg(ap, unsigned long long);
      else if (is_long) v = va_arg(ap, unsigned long);
      else v = va_arg(ap, unsigned);
      n = put_uint(buf, cap, n, v, *f == 'x' ? 16 : 10);
      break;
    }
    case '%': n = put_str(buf, cap, n, "%"); break;
    default: n = put_str(buf, cap, n, "?"); break;
    }
    if (!*f) break;
  }
  if (cap) buf[n < cap ? n : cap - 1] = '\0';
  return (int)n;
}

static void emit(const char *prefix, const char *fmt, va_list ap) {
  char buf[512];
  size_t n = 0;
  for (const char *s = prefix; *s && n < sizeof buf; s++) buf[n++] = *s;
  int m = ts_format(buf + n, sizeof buf - n - 1, fmt, ap);
  n += (size_t)m < sizeof buf - n - 1 ? (size_t)m : sizeof buf - n - 2;
  buf[n++] = '\n';
  size_t off = 0;
  while (off < n) {
    ssize_t w = write(2, buf + off, n - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
}

void ts_message(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("tessera: ", fmt, ap);
  va_end(ap);
}

void ts_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  emit("tessera: ", fmt, ap);
  va_end(ap);
  abort();
}
