/* SPDX-License-Identifier: MIT */
/*
 * override.c: the C++ operator new/delete family, exported by
 * libtessera.so only, so that a C++ program's `new` and a C library's
 * `free` meet in one heap.  Written in C with the Itanium ABI's mangled
 * names, so the library needs no C++ runtime.
 *
 * operator new must call the new-handler and throw std::bad_alloc when
 * memory runs out.  tessera leaves that to the C++ runtime: on failure it
 * calls the next definition of the same operator (libstdc++'s, found with
 * dlsym(RTLD_NEXT)), which retries through our malloc with the handler
 * installed and throws.  Without a C++ runtime after us there is no one to
 * catch the exception, and tessera reports the failure and aborts.
 */
#include "internal.h"

#include <dlfcn.h>
#include <stdint.h>
#include <tessera.h>

typedef void *(*ts_new_fn)(size_t);
typedef void *(*ts_new_aligned_fn)(size_t, size_t);

static TS_NOINLINE void *cxx_new_failed(const char *sym, size_t size) {
  ts_new_fn next = (ts_new_fn)dlsym(RTLD_NEXT, sym);
  if (!next) ts_fatal("operator new(%zu): out of memory, and no C++ runtime to throw std::bad_alloc", size);
  return next(size);
}

/* libstdc++'s aligned operators round the size up to the alignment, which
 * wraps an impossible size to a small one; those go to the unaligned
 * operator, which fails and throws as it should. */
#define TS_CXX_IMPOSSIBLE(size, al) ((size) > (size_t)PTRDIFF_MAX - (al))

static TS_NOINLINE void *cxx_new_aligned_failed(const char *sym, size_t size, size_t alignment) {
  if (TS_CXX_IMPOSSIBLE(size, alignment)) return cxx_new_failed("_Znwm", size);
  ts_new_aligned_fn next = (ts_new_aligned_fn)dlsym(RTLD_NEXT, sym);
  if (!next) ts_fatal("operator new(%zu, align %zu): out of memory, and no C++ runtime", size, alignment);
  return next(size, alignment);
}

/* nothrow forms: the C++ runtime's own nothrow operator calls the handler
 * and turns the exception into nullptr. */
typedef void *(*ts_new_nothrow_fn)(size_t, const void *);
typedef void *(*ts_new_aligned_nothrow_fn)(size_t, size_t, const void *);

static TS_NOINLINE void *cxx_nothrow_failed(const char *sym, size_t size, const void *tag) {
  ts_new_nothrow_fn next = (ts_new_nothrow_fn)dlsym(RTLD_NEXT, sym);
  return next ? next(size, tag) : NULL;
}

static TS_NOINLINE void *cxx_aligned_nothrow_failed(const char *sym, size_t size, size_t al, const void *tag) {
  if (TS_CXX_IMPOSSIBLE(size, al)) return NULL;
  ts_new_aligned_nothrow_fn next = (ts_new_aligned_nothrow_fn)dlsym(RTLD_NEXT, sym);
  return next ? next(size, al, tag) : NULL;
}

#define TS_EXPORT __attribute__((visibility("default")))

#define TS_NEW(name)                                           \
  TS_EXPORT void *name(size_t size) {                          \
    void *p = ts_malloc(size);                                 \
    return TS_LIKELY(p != NULL) ? p : cxx_new_failed(#name, size); \
  }
#define TS_NEW_NOTHROW(name)                                         \
  TS_EXPORT void *name(size_t size, const void *tag) {               \
    void *p = ts_malloc(size);                                       \
    return TS_LIKELY(p != NULL) ? p : cxx_nothrow_failed(#name, size, tag); \
  }
#define TS_NEW_ALIGNED(name)                                                     \
  TS_EXPORT void *name(size_t size, size_t al) {                                 \
    void *p = ts_aligned_alloc(al, size);                                        \
    return TS_LIKELY(p != NULL) ? p : cxx_new_aligned_failed(#name, size, al);   \
  }
#define TS_NEW_ALIGNED_NOTHROW(name)                                                      \
  TS_EXPORT void *name(size_t size, size_t al, const void *tag) {                         \
    void *p = ts_aligned_alloc(al, size);                                                 \
    return TS_LIKELY(p != NULL) ? p : cxx_aligned_nothrow_failed(#name, size, al, tag);   \
  }

TS_NEW(_Znwm)
TS_NEW(_Znam)
TS_NEW_NOTHROW(_ZnwmRKSt9nothrow_t)
TS_NEW_NOTHROW(_ZnamRKSt9nothrow_t)
TS_NEW_ALIGNED(_ZnwmSt11align_val_t)
TS_NEW_ALIGNED(_ZnamSt11align_val_t)
TS_NEW_ALIGNED_NOTHROW(_ZnwmSt11align_val_tRKSt9nothrow_t)
TS_NEW_ALIGNED_NOTHROW(_ZnamSt11align_val_tRKSt9nothrow_t)

/* Every delete form frees: the size and alignment are not needed to find
 * a block's metadata. */
TS_EXPORT void _ZdlPv(void *p) { ts_free(p); }
TS_EXPORT void _ZdaPv(void *p) { ts_free(p); }
TS_EXPORT void _ZdlPvm(void *p, size_t n) { (void)n; ts_free(p); }
TS_EXPORT void _ZdaPvm(void *p, size_t n) { (void)n; ts_free(p); }
TS_EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t) { (void)t; ts_free(p); }
TS_EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t) { (void)t; ts_free(p); }
TS_EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; ts_free(p); }
TS_EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; ts_free(p); }
TS_EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n, (void)a; ts_free(p); }
TS_EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a) { (void)n, (void)a; ts_free(p); }
TS_EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) { (void)a, (void)t; ts_free(p); }
TS_EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a, const void *t) { (void)a, (void)t; ts_free(p); }
