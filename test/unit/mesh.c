/* SPDX-License-Identifier: MIT */
/* Unit test of mesh.c: two pages of a chunk made to show one shared page
 * keep every object's contents, writes through either address are seen
 * through both, private copies are independent again, and no write is lost
 * when another thread writes to a page while it is copied and remapped. */
#include "internal.h"
#include "tessera.h"
#include "test.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__SANITIZE_THREAD__)
#define TS_UNDER_TSAN 1
#else
#define TS_UNDER_TSAN 0
#endif

enum { OBJ = 64, NOBJ = TS_PAGE_SIZE / OBJ };

static ts_chunk_t *chunk;

static char *page(unsigned k) { return ts_chunk_page_addr(chunk, chunk->first_page + k); }

static void fill(char *pg, unsigned parity, char tag) {
  for (unsigned i = parity; i < NOBJ; i += 2) memset(pg + i * OBJ, tag + (char)(i % 16), OBJ);
}

static bool same(const char *pg, unsigned parity, char tag) {
  for (unsigned i = parity; i < NOBJ; i += 2)
    for (unsigned b = 0; b < OBJ; b++)
      if (pg[i * OBJ + b] != (char)(tag + (char)(i % 16))) return false;
  return true;
}

/* ts_mesh_share, retried: meshing refuses while any other thread blocks
 * SIGSEGV, which a thread does for a moment while it starts or exits. */
static uint32_t share(char *pg) {
  for (int i = 0; i < 1000; i++) {
    uint32_t f = ts_mesh_share(pg);
    if (f != UINT32_MAX) return f;
    usleep(1000);
  }
  return UINT32_MAX;
}

static void odd_slots(uint64_t *used) {
  used[0] = 0xAAAAAAAAAAAAAAAAull;
  for (unsigned w = 1; w < TS_SLAB_MAP_WORDS; w++) used[w] = 0;
}

TS_TEST(merge_keeps_both_pages_objects) {
  char *a = page(0), *b = page(1);
  fill(a, 0, 'a');
  fill(b, 1, 'B');
  uint32_t f = share(a);
  assert_true(f != UINT32_MAX, "no shared page");
  expect_true(same(a, 0, 'a'));
  uint64_t used[TS_SLAB_MAP_WORDS];
  odd_slots(used);
  ts_mesh_merge(a, f, b, used, OBJ, NOBJ);
  expect_eq(ts_mesh_shared_pages(), 1);
  /* both addresses show the union */
  expect_true(same(a, 0, 'a') && same(a, 1, 'B'));
  expect_true(same(b, 0, 'a') && same(b, 1, 'B'));
  /* one physical page: a write through b is seen through a */
  b[3 * OBJ] = 'x';
  expect_eq(a[3 * OBJ], 'x');
  b[3 * OBJ] = (char)('B' + 3);
  /* private copies are independent again */
  ts_mesh_privatize(b);
  b[5 * OBJ] = 'y';
  expect_true(a[5 * OBJ] != 'y');
  expect_true(same(b, 0, 'a'));
  ts_mesh_privatize(a);
  ts_mesh_release(f);
  expect_eq(ts_mesh_shared_pages(), 0);
  expect_true(same(a, 0, 'a') && same(a, 1, 'B'));
  ts_mesh_discard(a);
  ts_mesh_discard(b);
  expect_eq(a[0], 0);
  expect_eq(b[OBJ], 0);
}

/* A writer increments counters in the odd objects of page b while the main
 * thread meshes b into a and takes them apart again, over and over; every
 * increment must be there at the end. */
static atomic_bool writer_stop;
static uint64_t writer_done;

static void *writer(void *arg) {
  volatile uint64_t *slot = arg;
  uint64_t n = 0;
  while (!atomic_load_explicit(&writer_stop, memory_order_relaxed)) {
    for (unsigned i = 1; i < NOBJ; i += 2) slot[i * OBJ / 8]++;
    n++;
  }
  writer_done = n;
  return NULL;
}

TS_TEST(no_write_is_lost_while_remapping) {
  /* the page protection is what orders the writer and the copy here, and
   * ThreadSanitizer cannot see it */
  if (TS_UNDER_TSAN) ts_skip("ThreadSanitizer does not model page protection");
  char *a = page(2), *b = page(3);
  memset(a, 0, TS_PAGE_SIZE);
  memset(b, 0, TS_PAGE_SIZE);
  fill(a, 0, 'a');
  pthread_t t;
  atomic_store(&writer_stop, false);
  assert_eq(pthread_create(&t, NULL, writer, b), 0);
  uint64_t used[TS_SLAB_MAP_WORDS];
  odd_slots(used);
  int rounds = 0;
  for (; rounds < 300; rounds++) {
    uint32_t f = share(a);
    assert_true(f != UINT32_MAX);
    ts_mesh_merge(a, f, b, used, OBJ, NOBJ);
    ts_mesh_privatize(b);
    ts_mesh_privatize(a);
    ts_mesh_release(f);
  }
  atomic_store(&writer_stop, true);
  pthread_join(t, NULL);
  const uint64_t *slot = (const uint64_t *)b;
  unsigned wrong = 0;
  for (unsigned i = 1; i < NOBJ; i += 2)
    if (slot[i * OBJ / 8] != writer_done) wrong++;
  printf("  %d rounds, %llu passes of the writer, %u counters off\n", rounds, (unsigned long long)writer_done,
         wrong);
  expect_eq(wrong, 0);
  expect_true(same(a, 0, 'a'), "a's own objects changed");
  expect_eq(ts_mesh_shared_pages(), 0);
}

/* A thread that blocks SIGSEGV would die on a write to a guarded page
 * (the kernel kills a thread that faults with the signal blocked), so
 * meshing refuses while one exists. */
static pthread_mutex_t blk_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t blk_cond = PTHREAD_COND_INITIALIZER;
static int blk_state; /* 1: the thread blocks every signal; 2: it may go */

static void *blocker(void *arg) {
  (void)arg;
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, NULL);
  pthread_mutex_lock(&blk_lock);
  blk_state = 1;
  pthread_cond_broadcast(&blk_cond);
  while (blk_state != 2) pthread_cond_wait(&blk_cond, &blk_lock);
  pthread_mutex_unlock(&blk_lock);
  return NULL;
}

/* ThreadSanitizer runs a thread of its own that blocks every signal, so
 * meshing never runs under it. */
#define SKIP_UNDER_TSAN()                                                                              \
  do {                                                                                                 \
    if (TS_UNDER_TSAN) ts_skip("ThreadSanitizer's own thread blocks SIGSEGV: meshing stays off");      \
  } while (0)

TS_TEST(a_thread_blocking_sigsegv_stops_meshing) {
  SKIP_UNDER_TSAN();
  char *a = page(4);
  memset(a, 7, TS_PAGE_SIZE);
  pthread_t t;
  blk_state = 0;
  assert_eq(pthread_create(&t, NULL, blocker, NULL), 0);
  pthread_mutex_lock(&blk_lock);
  while (blk_state != 1) pthread_cond_wait(&blk_cond, &blk_lock);
  pthread_mutex_unlock(&blk_lock);
  expect_eq(ts_mesh_share(a), UINT32_MAX);
  pthread_mutex_lock(&blk_lock);
  blk_state = 2;
  pthread_cond_broadcast(&blk_cond);
  pthread_mutex_unlock(&blk_lock);
  pthread_join(t, NULL);
  uint32_t f = share(a);
  expect_true(f != UINT32_MAX, "meshing still refused after the thread left");
  if (f != UINT32_MAX) {
    expect_eq(a[100], 7);
    ts_mesh_privatize(a);
    ts_mesh_release(f);
  }
  ts_mesh_discard(a);
}

/* ---- meshing real slabs (TESSERA_CONF=mesh:true, CMakeLists) ---- */

enum { NOBJS = 40000, KEEP_ONE_IN = 12, SIZE = 48 };
static unsigned char *objs[NOBJS];

static void stamp(unsigned i, unsigned salt) { memset(objs[i], (int)((i * 31 + salt) & 0xFF), SIZE); }
static bool stamped(unsigned i, unsigned salt) {
  for (unsigned b = 0; b < SIZE; b++)
    if (objs[i][b] != (unsigned char)((i * 31 + salt) & 0xFF)) return false;
  return true;
}

/* Fills many one-page slabs of one class, frees all but one object in
 * KEEP_ONE_IN at random, and meshes: returns the RSS before and after. */
static unsigned maps_before, maps_after;
static ts_stats_t st_before, st_after;

static void make_sparse_and_mesh(size_t *before, size_t *after, size_t *meshed) {
  srand(11);
  for (unsigned i = 0; i < NOBJS; i++) {
    objs[i] = ts_malloc(SIZE);
    stamp(i, 1);
  }
  for (unsigned i = 0; i < NOBJS; i++)
    if (rand() % KEEP_ONE_IN) {
      ts_free(objs[i]);
      objs[i] = NULL;
    }
  ts_purge(); /* this thread's cache back to the slabs */
  *before = ts_test_rss_bytes();
  maps_before = ts_test_mappings();
  ts_stats_get(&st_before);
  *meshed = ts_purge_mesh();
  ts_purge();
  ts_stats_get(&st_after);
  *after = ts_test_rss_bytes();
  maps_after = ts_test_mappings();
}

static unsigned check_all(unsigned salt) {
  unsigned bad = 0;
  for (unsigned i = 0; i < NOBJS; i++)
    if (objs[i] && !stamped(i, salt)) bad++;
  return bad;
}

TS_TEST(sparse_slabs_are_meshed) {
  SKIP_UNDER_TSAN();
  assert_true(ts_opt.mesh, "TESSERA_CONF=mesh:true not applied");
  size_t before, after, meshed;
  make_sparse_and_mesh(&before, &after, &meshed);
  printf("  meshed %zu pages into %u shared pages; RSS %zu KiB -> %zu KiB\n", meshed, ts_mesh_shared_pages(),
         before >> 10, after >> 10);
  expect_true(meshed > 100, "meshed %zu", meshed);
  expect_true(after + meshed * TS_PAGE_SIZE / 2 <= before, "RSS fell by %zu KiB", (before - after) >> 10);
  expect_eq(check_all(1), 0);
  /* the ledger: the same objects, in meshed pages fewer slab pages */
  unsigned cls = ts_size_to_class(SIZE), kept = 0;
  for (unsigned i = 0; i < NOBJS; i++) kept += objs[i] != NULL;
  expect_eq(st_after.requested_bytes, st_before.requested_bytes);
  expect_eq(st_after.classes[cls].live, kept);
  expect_eq(st_after.classes[cls].used, kept);
  expect_eq(st_before.classes[cls].slab_bytes - st_after.classes[cls].slab_bytes, meshed * TS_PAGE_SIZE);
  expect_eq(st_before.slab_free_bytes - st_after.slab_free_bytes, meshed * TS_PAGE_SIZE);
  /* resident bytes count a shared page once, as the kernel's PSS does */
  expect_true(st_after.resident_bytes + meshed * TS_PAGE_SIZE / 2 <= st_before.resident_bytes,
              "resident %llu -> %llu KiB", (unsigned long long)st_before.resident_bytes >> 10,
              (unsigned long long)st_after.resident_bytes >> 10);
  expect_eq(st_after.requested_bytes + st_after.rounding_bytes + st_after.cached_bytes + st_after.slab_free_bytes +
                st_after.dirty_bytes + st_after.metadata_bytes,
            st_after.committed_bytes);
  /* each page in a group may split its chunk's mapping in three */
  printf("  mappings %u -> %u, %u pages in groups\n", maps_before, maps_after, ts_mesh_group_pages());
  expect_true(maps_after <= maps_before + 2 * ts_mesh_group_pages(), "mappings %u -> %u", maps_before, maps_after);
  /* objects of meshed pages can be written, freed and reused */
  for (unsigned i = 0; i < NOBJS; i++)
    if (objs[i]) stamp(i, 2);
  expect_eq(check_all(2), 0);
  for (unsigned i = 0; i < NOBJS; i += 2)
    if (objs[i]) {
      ts_free(objs[i]);
      objs[i] = NULL;
    }
  for (unsigned i = 0; i < NOBJS; i += 2) {
    objs[i] = ts_malloc(SIZE);
    stamp(i, 2);
  }
  expect_eq(check_all(2), 0);
  for (unsigned i = 0; i < NOBJS; i++) {
    if (objs[i]) expect_eq(ts_malloc_usable_size(objs[i]), SIZE);
    ts_free(objs[i]);
    objs[i] = NULL;
  }
  ts_purge();
  expect_eq(ts_mesh_shared_pages(), 0);
  expect_eq(ts_mesh_group_pages(), 0);
}

/* After a fork the child's objects are its own: its writes do not reach
 * the parent, and it sees what the parent held at the fork. */
TS_TEST(fork_gives_the_child_its_own_pages) {
  /* prefork holds every bin lock, more than ThreadSanitizer can track */
  if (TS_UNDER_TSAN) ts_skip("ThreadSanitizer tracks at most 64 held locks");
  size_t before, after, meshed;
  make_sparse_and_mesh(&before, &after, &meshed);
  expect_true(meshed > 100, "meshed %zu", meshed);
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    unsigned bad = check_all(1);
    for (unsigned i = 0; i < NOBJS; i++)
      if (objs[i]) stamp(i, 3);
    bad += check_all(3);
    _exit(bad ? 1 : 0);
  }
  assert_true(pid > 0);
  int status = 0;
  waitpid(pid, &status, 0);
  expect_true(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
  expect_eq(check_all(1), 0);
  expect_eq(ts_mesh_shared_pages(), 0); /* the fork took every page private */
  for (unsigned i = 0; i < NOBJS; i++) {
    ts_free(objs[i]);
    objs[i] = NULL;
  }
  ts_purge();
}

int main(void) {
  ts_free(ts_malloc(1));
  if (!ts_mesh_usable()) {
    printf("meshing unavailable (memfd_create or sigaction refused)\n");
    return 77;
  }
  chunk = ts_chunk_new(&ts_arenas[0]);
  if (!chunk) return 1;
  ts_run(merge_keeps_both_pages_objects);
  ts_run(no_write_is_lost_while_remapping);
  ts_run(a_thread_blocking_sigsegv_stops_meshing);
  ts_run(sparse_slabs_are_meshed);
  ts_run(fork_gives_the_child_its_own_pages);
  return ts_test_done();
}
