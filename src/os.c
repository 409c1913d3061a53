/* SPDX-License-Identifier: MIT */
/*
 * os.c: the kernel boundary.  Every mmap, munmap, mremap and the few other
 * system calls tessera makes go through here.  Nothing here allocates or
 * takes a lock; every function may be called before main and from any
 * thread.  Failures return NULL/false and leave errno as the kernel set it.
 */
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <string.h>
#include <sys/auxv.h>
#include <linux/membarrier.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void *ts_os_map(size_t bytes) {
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

void ts_os_unmap(void *addr, size_t bytes) {
  if (bytes && munmap(addr, bytes) != 0)
    ts_fatal("munmap(%p, %zu) failed: errno %d", addr, bytes, errno);
}

/* Maps bytes so that (result + lead_bytes) is a multiple of alignment.
 * First tries an exact-size mapping (which the kernel often places aligned
 * next to the previous one); otherwise over-maps and trims both ends. */
void *ts_os_map_aligned(size_t bytes, size_t alignment, size_t lead_bytes) {
  char *p = ts_os_map(bytes);
  if (!p) return NULL;
  if ((((uintptr_t)p + lead_bytes) & (alignment - 1)) == 0) return p;
  ts_os_unmap(p, bytes);
  if (bytes + alignment < bytes) {
    errno = ENOMEM;
    return NULL;
  }
  char *raw = ts_os_map(bytes + alignment);
  if (!raw) return NULL;
  uintptr_t user = ((uintptr_t)raw + lead_bytes + alignment - 1) & ~(uintptr_t)(alignment - 1);
  char *start = (char *)(user - lead_bytes);
  size_t head = (size_t)(start - raw);
  size_t tail = alignment - head;
  ts_os_unmap(raw, head);
  ts_os_unmap(start + bytes, tail);
  return start;
}

void ts_os_purge(void *addr, size_t bytes) {
  if (madvise(addr, bytes, MADV_DONTNEED) != 0) ts_fatal("madvise(%p, %zu, MADV_DONTNEED) failed: errno %d", addr, bytes, errno);
}

bool ts_os_remap_inplace(void *addr, size_t old_bytes, size_t new_bytes) {
  return mremap(addr, old_bytes, new_bytes, 0) != MAP_FAILED;
}

/* Moves the pages of [old_addr, +old_bytes) to new_addr (a mapping of
 * new_bytes the caller reserved), growing them to new_bytes. */
void *ts_os_remap(void *old_addr, size_t old_bytes, size_t new_bytes, void *new_addr) {
  void *p = mremap(old_addr, old_bytes, new_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, new_addr);
  return p == MAP_FAILED ? NULL : p;
}

/* The process-wide barrier that lets the purger work on an idle thread's
 * cache (types.h, ts_tcache_s).  The expedited private command interrupts
 * only the CPUs running this process's threads and costs microseconds; it
 * needs a registration, which kernels before 4.14 and some seccomp filters
 * refuse.  The global command (since 4.3) waits for every CPU to pass a
 * quiescent state instead: milliseconds, once per purger tick. */
static int barrier_cmd;

bool ts_os_barrier_init(void) {
  barrier_cmd = 0;
  long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
  if (cmds < 0) return false;
  if ((cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
      syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0) {
    barrier_cmd = MEMBARRIER_CMD_PRIVATE_EXPEDITED;
    return true;
  }
  if (cmds & MEMBARRIER_CMD_GLOBAL) {
    barrier_cmd = MEMBARRIER_CMD_GLOBAL;
    return true;
  }
  return false;
}

void ts_os_barrier(void) {
  if (syscall(SYS_membarrier, barrier_cmd, 0, 0) != 0)
    ts_fatal("membarrier(%d) failed: errno %d", barrier_cmd, errno);
}

unsigned ts_os_ncpus(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return (unsigned)n;
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1;
}

uint64_t ts_os_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* 64 bits from the kernel's AT_RANDOM bytes, mixed with the clock. */
uint64_t ts_os_random(void) {
  uint64_t x = ts_os_now_ns();
  const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
  if (r) {
    uint64_t v;
    memcpy(&v, r, sizeof v);
    x ^= v;
  }
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  return x;
}

/* A detached thread of tessera's (the purger, the stats writer): a 64 KiB
 * stack, and every asynchronous signal blocked, so that none is delivered
 * to it instead of the program's threads.  The synchronous ones stay open:
 * a fault must reach its handler, and meshing needs every thread to take
 * SIGSEGV (mesh.c).  false if the thread could not be created. */
bool ts_os_thread_start(void *(*fn)(void *)) {
  pthread_attr_t attr;
  pthread_t t;
  sigset_t all, old;
  sigfillset(&all);
  sigdelset(&all, SIGSEGV);
  sigdelset(&all, SIGBUS);
  sigdelset(&all, SIGILL);
  sigdelset(&all, SIGFPE);
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 << 10);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  int err = pthread_create(&t, &attr, fn, NULL);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);
  return err == 0;
}
