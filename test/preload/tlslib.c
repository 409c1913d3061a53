/* SPDX-License-Identifier: MIT */
/* tlslib.c: a shared library that preload/plain dlopens after start-up.
 * Its thread-local buffer has no static TLS slot, so the dynamic loader
 * allocates it, with the process's malloc, the first time each thread
 * touches it: allocations from inside ld.so's TLS set-up. */
#include <stddef.h>
#include <string.h>

static __thread char tls_buf[8192];
static __thread unsigned tls_calls;

unsigned tlslib_touch(unsigned seed) {
  tls_calls++;
  memset(tls_buf, (int)(seed & 0xff), sizeof tls_buf);
  unsigned h = tls_calls;
  for (size_t i = 0; i < sizeof tls_buf; i += 512) h = h * 31u + (unsigned char)tls_buf[i];
  return h;
}
