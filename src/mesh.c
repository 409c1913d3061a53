/* SPDX-License-Identifier: MIT */
/*
 * mesh.c: the page-level primitives of meshing: making two pages of
 * tessera's chunks (at different addresses) show one physical page, and
 * undoing that, while other threads may be reading and writing the objects
 * on them.  (Mesh, PLDI 2019: two sparse slabs of one class whose objects
 * sit at different offsets can share a page; the freed page goes back.)
 *
 * Shared pages come from one memfd, a page of the file per shared page;
 * a page of a chunk is made to show it with mmap(MAP_SHARED | MAP_FIXED),
 * which replaces the chunk's private page in one step.  A file page that
 * nothing maps any more is punched out of the file (its memory is freed)
 * and its offset reused.
 *
 * Write barrier: while a page's contents are copied, the page is made
 * read-only, so that no write can land in the copy's source after it was
 * read; a thread that writes to it takes SIGSEGV, and ts_mesh_segv() (ours,
 * installed on first use, chaining to the handler it replaced) waits until
 * the copy is done and returns, so the write is retried on the new mapping.
 * Readers see the old page until the new mapping replaces it, with the same
 * contents.  Invariants:
 *   - at most TS_MESH_GUARDS pages are read-only at a time, all held by the
 *     thread that holds mesh_lock, for the length of one copy and remap;
 *   - a fault on a chunk page is ours only while a guard is up or just
 *     after (the retry then succeeds); a second fault at the same address
 *     with no guard raised since goes to the previous handler.
 * Limits, documented in README: a system call that writes into a page
 * during its copy (read(2) into a buffer there) fails with EFAULT instead
 * of waiting; a program that installs its own SIGSEGV handler later turns
 * meshing off (ts_mesh_usable() notices).
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TS_MESH_GUARDS 2

static pthread_mutex_t mesh_lock = PTHREAD_MUTEX_INITIALIZER;
static int mesh_fd = -1;
static uint32_t mesh_file_pages;                 /* the file's length in pages */
static uint32_t mesh_free_offs[TS_MESH_MAX_SHARED]; /* punched-out pages to reuse */
static uint32_t mesh_nfree;
static uint32_t mesh_shared;                     /* file pages in use */
static uint32_t mesh_pages;                      /* pages in mesh groups, <= TS_MESH_MAX_PAGES */

static _Atomic uintptr_t mesh_guard[TS_MESH_GUARDS]; /* read-only pages, 0: none */
static atomic_uint mesh_guard_epoch;             /* guards raised so far */
static struct sigaction mesh_old_segv;
static atomic_bool mesh_handler_on;

static __thread uintptr_t segv_last_addr;
static __thread unsigned segv_last_epoch;

static bool guarded(uintptr_t page) {
  for (unsigned i = 0; i < TS_MESH_GUARDS; i++)
    if (atomic_load_explicit(&mesh_guard[i], memory_order_acquire) == page) return true;
  return false;
}

static void segv_chain(int sig, siginfo_t *si, void *uc) {
  if (mesh_old_segv.sa_flags & SA_SIGINFO) {
    mesh_old_segv.sa_sigaction(sig, si, uc);
  } else if (mesh_old_segv.sa_handler == SIG_DFL || mesh_old_segv.sa_handler == SIG_IGN) {
    /* the fault repeats on return and takes the default action */
    sigaction(SIGSEGV, &mesh_old_segv, NULL);
  } else {
    mesh_old_segv.sa_handler(sig);
  }
}

static void ts_mesh_segv(int sig, siginfo_t *si, void *uc) {
  uintptr_t addr = (uintptr_t)si->si_addr, page = addr & ~(uintptr_t)TS_PAGE_MASK;
  if (si->si_code != SEGV_ACCERR || ts_window_kind(addr) != TS_WINDOW_CHUNK) {
    segv_chain(sig, si, uc);
    return;
  }
  unsigned epoch = atomic_load_explicit(&mesh_guard_epoch, memory_order_acquire);
  if (!guarded(page) && addr == segv_last_addr && epoch == segv_last_epoch) {
    segv_chain(sig, si, uc); /* not a guard of ours: a real fault */
    return;
  }
  segv_last_addr = addr;
  segv_last_epoch = epoch;
  while (guarded(page)) sched_yield();
}

static long atol_simple(const char *s) {
  long v = 0;
  while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
  return v;
}

static bool segv_is_ours(const struct sigaction *sa) {
  return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == ts_mesh_segv;
}

static bool segv_install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = ts_mesh_segv;
  sa.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  return sigaction(SIGSEGV, &sa, NULL) == 0;
}

/* True if no other thread of the process blocks SIGSEGV: a write fault
 * in a thread that blocks it kills the process instead of reaching the
 * handler, and threads that block every signal are common.  Reads
 * SigBlk in /proc/self/task/TID/status, with system calls only (no malloc:
 * this runs inside the allocator). */
static bool mesh_threads_take_segv(void) {
  int dir = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return false;
  long self = syscall(SYS_gettid);
  bool ok = true;
  char ents[4096];
  long n;
  while (ok && (n = syscall(SYS_getdents64, dir, ents, sizeof ents)) > 0) {
    for (long off = 0; ok && off < n;) {
      const char *name = ents + off + 19; /* struct linux_dirent64: d_name after 19 bytes */
      unsigned short reclen;
      memcpy(&reclen, ents + off + 16, sizeof reclen);
      off += reclen;
      if (name[0] < '0' || name[0] > '9' || atol_simple(name) == self) continue;
      char path[64], buf[2048];
      size_t nl = strnlen(name, 20);
      memcpy(path, "/proc/self/task/", 16);
      memcpy(path + 16, name, nl);
      memcpy(path + 16 + nl, "/status", 8);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue; /* the thread exited */
      ssize_t len = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (len <= 0) continue;
      buf[len] = 0;
      const char *blk = strstr(buf, "SigBlk:");
      if (!blk) {
        ok = false;
        break;
      }
      unsigned long long mask = strtoull(blk + 7, NULL, 16);
      if (mask & (1ull << (SIGSEGV - 1))) ok = false;
    }
  }
  close(dir);
  return ok;
}

/* True if meshing may run: the file exists, our SIGSEGV handler is the
 * one installed, and no other thread blocks SIGSEGV.  mesh_lock held. */
static bool mesh_ready(void) {
  if (mesh_fd < 0) {
    mesh_fd = memfd_create("tessera-mesh", MFD_CLOEXEC);
    if (mesh_fd < 0) return false;
  }
  struct sigaction cur;
  if (sigaction(SIGSEGV, NULL, &cur) != 0) return false;
  if (!atomic_load(&mesh_handler_on)) {
    /* the old action is recorded before ours is in place, so a fault in
     * between never finds it unset */
    mesh_old_segv = cur;
    if (!segv_install()) return false;
    atomic_store(&mesh_handler_on, true);
    return mesh_threads_take_segv();
  }
  return segv_is_ours(&cur) && mesh_threads_take_segv();
}

/* Makes page read-only; false if the kernel refused (out of mappings). */
static bool guard_up(unsigned slot, void *page) {
  atomic_fetch_add_explicit(&mesh_guard_epoch, 1, memory_order_acq_rel);
  atomic_store_explicit(&mesh_guard[slot], (uintptr_t)page, memory_order_release);
  if (mprotect(page, TS_PAGE_SIZE, PROT_READ) == 0) return true;
  atomic_store_explicit(&mesh_guard[slot], 0, memory_order_release);
  return false;
}

static void guard_down(unsigned slot) {
  atomic_store_explicit(&mesh_guard[slot], 0, memory_order_release);
  atomic_fetch_add_explicit(&mesh_guard_epoch, 1, memory_order_acq_rel);
}

/* Undoes guard_up after a failed remap: the page keeps its old mapping. */
static void guard_abort(unsigned slot, void *page) {
  if (mprotect(page, TS_PAGE_SIZE, PROT_READ | PROT_WRITE) != 0)
    ts_fatal("mprotect(%p, PROT_READ | PROT_WRITE) failed: errno %d", page, errno);
  guard_down(slot);
}

/* A file page for a new shared page, or UINT32_MAX. */
static uint32_t file_page_get(void) {
  if (mesh_nfree) return mesh_free_offs[--mesh_nfree];
  if (mesh_file_pages >= TS_MESH_MAX_SHARED) return UINT32_MAX;
  if (ftruncate(mesh_fd, (off_t)(mesh_file_pages + 1) << TS_PAGE_SHIFT) != 0) return UINT32_MAX;
  return mesh_file_pages++;
}

static void file_page_put(uint32_t fpage) {
  fallocate(mesh_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)fpage << TS_PAGE_SHIFT, TS_PAGE_SIZE);
  mesh_free_offs[mesh_nfree++] = fpage;
  mesh_shared--;
}

static bool map_shared_at(void *page, uint32_t fpage) {
  void *p = mmap(page, TS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, mesh_fd,
                 (off_t)fpage << TS_PAGE_SHIFT);
  return p == page;
}

bool ts_mesh_usable(void) {
  pthread_mutex_lock(&mesh_lock);
  bool ok = mesh_ready();
  pthread_mutex_unlock(&mesh_lock);
  return ok;
}

/* Makes the private page dst a shared page (same contents), and returns
 * its file page, or UINT32_MAX if none is left. */
uint32_t ts_mesh_share(void *dst) {
  pthread_mutex_lock(&mesh_lock);
  uint32_t fpage = UINT32_MAX;
  if (mesh_ready() && (fpage = file_page_get()) != UINT32_MAX) {
    mesh_shared++;
    if (!guard_up(0, dst)) {
      file_page_put(fpage);
      fpage = UINT32_MAX;
    } else if (pwrite(mesh_fd, dst, TS_PAGE_SIZE, (off_t)fpage << TS_PAGE_SHIFT) != (ssize_t)TS_PAGE_SIZE ||
               !map_shared_at(dst, fpage)) {
      guard_abort(0, dst);
      file_page_put(fpage);
      fpage = UINT32_MAX;
    } else {
      guard_down(0);
    }
  }
  pthread_mutex_unlock(&mesh_lock);
  return fpage;
}

/* Copies the objects of src named by used (bit i: the object at i * size)
 * into the shared page dst shows, at the same offsets, and makes src show
 * it too; src's own page goes back to the kernel.  The caller guarantees
 * those offsets are free in dst and stay untouched.  False (src unchanged)
 * if the kernel refused a mapping. */
bool ts_mesh_merge(void *dst, uint32_t fpage, void *src, const uint64_t *used, size_t size, unsigned nobjs) {
  pthread_mutex_lock(&mesh_lock);
  bool ok = guard_up(1, src);
  if (ok) {
    for (unsigned i = 0; i < nobjs; i++)
      if ((used[i >> 6] >> (i & 63)) & 1) memcpy((char *)dst + (size_t)i * size, (char *)src + (size_t)i * size, size);
    ok = map_shared_at(src, fpage);
    if (ok) guard_down(1);
    else guard_abort(1, src); /* the copies in dst's free slots are harmless */
  }
  pthread_mutex_unlock(&mesh_lock);
  return ok;
}

/* Gives page (one that shows a shared page) a private copy of what it
 * shows, in one step: readers never see anything else, writers wait. */
void ts_mesh_privatize(void *page) {
  pthread_mutex_lock(&mesh_lock);
  void *tmp = mmap(NULL, TS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (tmp == MAP_FAILED || !guard_up(0, page)) ts_fatal("cannot copy the meshed page %p: errno %d", page, errno);
  memcpy(tmp, page, TS_PAGE_SIZE);
  if (mremap(tmp, TS_PAGE_SIZE, TS_PAGE_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, page) != page)
    ts_fatal("mremap(%p) failed: errno %d", page, errno);
  guard_down(0);
  pthread_mutex_unlock(&mesh_lock);
}

/* Replaces page with a fresh private zero page, dropping what it showed. */
void ts_mesh_discard(void *page) {
  void *p = mmap(page, TS_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p != page) ts_fatal("mmap(%p, private) failed: errno %d", page, errno);
}

/* Frees a file page nothing maps any more. */
void ts_mesh_release(uint32_t fpage) {
  pthread_mutex_lock(&mesh_lock);
  file_page_put(fpage);
  pthread_mutex_unlock(&mesh_lock);
}

/* Counts pages going into mesh groups against TS_MESH_MAX_PAGES; false
 * if they do not fit. */
bool ts_mesh_reserve(unsigned pages) {
  pthread_mutex_lock(&mesh_lock);
  bool ok = mesh_pages + pages <= TS_MESH_MAX_PAGES;
  if (ok) mesh_pages += pages;
  pthread_mutex_unlock(&mesh_lock);
  return ok;
}

void ts_mesh_unreserve(unsigned pages) {
  pthread_mutex_lock(&mesh_lock);
  mesh_pages -= pages;
  pthread_mutex_unlock(&mesh_lock);
}

uint32_t ts_mesh_group_pages(void) {
  pthread_mutex_lock(&mesh_lock);
  uint32_t n = mesh_pages;
  pthread_mutex_unlock(&mesh_lock);
  return n;
}

uint32_t ts_mesh_shared_pages(void) {
  pthread_mutex_lock(&mesh_lock);
  uint32_t n = mesh_shared;
  pthread_mutex_unlock(&mesh_lock);
  return n;
}

/* ---- mesh groups ---- */

static ts_mesh_group_t mesh_groups[TS_MESH_MAX_SHARED + 1]; /* [0] unused */
static uint16_t mesh_group_free[TS_MESH_MAX_SHARED];
static uint32_t mesh_group_nfree, mesh_group_next = 1;

unsigned ts_mesh_group_new(void) {
  pthread_mutex_lock(&mesh_lock);
  unsigned g = 0;
  if (mesh_group_nfree) g = mesh_group_free[--mesh_group_nfree];
  else if (mesh_group_next <= TS_MESH_MAX_SHARED) g = mesh_group_next++;
  if (g) memset(&mesh_groups[g], 0, sizeof mesh_groups[g]);
  pthread_mutex_unlock(&mesh_lock);
  return g;
}

ts_mesh_group_t *ts_mesh_group(unsigned g) { return &mesh_groups[g]; }

void ts_mesh_group_free(unsigned g) {
  pthread_mutex_lock(&mesh_lock);
  mesh_groups[g].dst = NULL;
  mesh_group_free[mesh_group_nfree++] = (uint16_t)g;
  pthread_mutex_unlock(&mesh_lock);
}

/* Fork: a child must not share pages with its parent, and what it copies
 * must be what the pages held at the fork.  So before the fork every page
 * of every group gets a private copy (the caller holds every bin lock, so
 * no group changes meanwhile); the groups stay, private, until their slab
 * empties, and take no more pages. */
void ts_mesh_prefork(void) {
  if (!mesh_shared) return;
  /* the copies need our handler even if the program has put its own in
   * since: it goes back right after */
  struct sigaction cur, saved_old = mesh_old_segv;
  bool swapped = sigaction(SIGSEGV, NULL, &cur) == 0 && !segv_is_ours(&cur);
  if (swapped) {
    mesh_old_segv = cur;
    if (!segv_install()) ts_fatal("fork: cannot install the SIGSEGV handler meshing needs: errno %d", errno);
  }
  for (uint32_t g = 1; g < mesh_group_next; g++) {
    ts_mesh_group_t *grp = &mesh_groups[g];
    if (!grp->dst || grp->fpage == TS_MESH_PRIVATE) continue;
    ts_mesh_privatize(grp->dst);
    for (unsigned i = 0; i < grp->nalias; i++) ts_mesh_privatize(grp->alias[i]);
    ts_mesh_release(grp->fpage);
    grp->fpage = TS_MESH_PRIVATE;
  }
  if (swapped) {
    sigaction(SIGSEGV, &cur, NULL);
    mesh_old_segv = saved_old;
  }
}

/* The file is the parent's: the child makes its own if it meshes. */
void ts_mesh_postfork_child(void) {
  pthread_mutex_init(&mesh_lock, NULL);
  if (mesh_fd >= 0) close(mesh_fd);
  mesh_fd = -1;
  mesh_file_pages = 0;
  mesh_nfree = 0;
  mesh_shared = 0;
}
