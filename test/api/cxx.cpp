// SPDX-License-Identifier: MIT
//
// api/cxx.cpp: the C++ operator new/delete family that libtessera.so
// exports: plain, array, nothrow, sized and aligned forms, new_handler,
// bad_alloc, interplay with malloc/free, and a container workload.
//
// Allocations go through direct calls to ::operator new where the test
// depends on the call being made: a new-expression may legally be elided.

extern "C" {
#include "test.h"   // the harness is C and has no extern "C" of its own
}
#include "tessera.h"

#include <malloc.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <numeric>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

constexpr std::size_t MiB = 1024 * 1024;

// Keeps the optimiser from dropping an allocation or assuming its contents.
void escape(void *p) { __asm__ volatile("" : : "g"(p) : "memory"); }

bool aligned(const void *p, std::size_t al) { return reinterpret_cast<std::uintptr_t>(p) % al == 0; }

struct alignas(64) Line {
  unsigned char b[64];
};
struct alignas(4096) Page {
  unsigned char b[4096];
};
struct alignas(256) Odd {
  char c;
};

struct Counted {
  static int live;
  std::uint64_t v[3];
  Counted() : v{1, 2, 3} { ++live; }
  ~Counted() { --live; }
};
int Counted::live = 0;

}  // namespace

TS_TEST(plain_new_delete) {
  for (std::size_t n = 0; n < 300000; n = n * 2 + 1) {
    void *p = ::operator new(n);
    assert_true(p != nullptr);
    expect_ptr_aligned(p, TS_MIN_ALIGN);
    expect_true(malloc_usable_size(p) >= n, "usable %zu < %zu", malloc_usable_size(p), n);
    expect_true(ts_malloc_usable_size(p) >= n);
    std::memset(p, 0x5C, n);
    escape(p);
    ::operator delete(p);

    void *a = ::operator new[](n);
    assert_true(a != nullptr);
    expect_ptr_aligned(a, TS_MIN_ALIGN);
    expect_true(malloc_usable_size(a) >= n);
    std::memset(a, 0x3A, n);
    escape(a);
    ::operator delete[](a);
  }
  // new-expressions, including zero-length arrays.
  int *i = new int(42);
  expect_eq(*i, 42);
  delete i;
  char *z1 = new char[0];
  char *z2 = new char[0];
  expect_true(z1 != nullptr && z2 != nullptr && z1 != z2);
  delete[] z1;
  delete[] z2;
  Counted *c = new Counted[1000];
  expect_eq(Counted::live, 1000);
  expect_eq(c[999].v[2], 3);
  delete[] c;
  expect_eq(Counted::live, 0);
}

TS_TEST(nothrow_forms) {
  for (std::size_t n = 1; n < 4 * MiB; n = n * 3 + 1) {
    void *p = ::operator new(n, std::nothrow);
    assert_true(p != nullptr);
    std::memset(p, 1, n);
    ::operator delete(p, std::nothrow);
    void *a = ::operator new[](n, std::nothrow);
    assert_true(a != nullptr);
    std::memset(a, 2, n);
    ::operator delete[](a, std::nothrow);
  }
  int *p = new (std::nothrow) int[100];
  expect_true(p != nullptr);
  if (p) {
    for (int k = 0; k < 100; k++) p[k] = k;
    expect_eq(std::accumulate(p, p + 100, 0), 4950);
  }
  delete[] p;
}

TS_TEST(sized_delete) {
  for (std::size_t n = 1; n < 20 * MiB; n = n * 2 + 7) {
    void *p = ::operator new(n);
    assert_true(p != nullptr);
    std::memset(p, 7, n);
    ::operator delete(p, n);
    void *a = ::operator new[](n);
    assert_true(a != nullptr);
    std::memset(a, 8, n);
    ::operator delete[](a, n);
  }
  // Many live, freed out of order with their sizes.
  std::vector<std::pair<void *, std::size_t>> live;
  std::uint64_t s = 88172645463325252ull;
  for (int k = 0; k < 5000; k++) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    std::size_t n = (s >> 20) % ((k % 50 == 0) ? 200000 : 700);
    void *p = ::operator new(n);
    ts_test_fill(p, n);
    live.emplace_back(p, n);
  }
  std::reverse(live.begin() + 1000, live.end());
  int bad = 0;
  for (auto &e : live) {
    if (!ts_test_check(e.first, e.second)) bad++;
    ::operator delete(e.first, e.second);
  }
  expect_eq(bad, 0);
}

TS_TEST(aligned_new) {
  Line *l = new Line;
  expect_ptr_aligned(l, 64);
  std::memset(l->b, 1, sizeof l->b);
  delete l;
  Page *pg = new Page;
  expect_ptr_aligned(pg, 4096);
  std::memset(pg->b, 2, sizeof pg->b);
  delete pg;
  Line *la = new Line[33];
  expect_ptr_aligned(la, 64);
  std::memset(la, 3, sizeof(Line) * 33);
  delete[] la;
  Page *pa = new Page[5];
  expect_ptr_aligned(pa, 4096);
  std::memset(pa, 4, sizeof(Page) * 5);
  delete[] pa;
  Odd *o = new (std::nothrow) Odd;
  expect_true(o != nullptr);
  expect_ptr_aligned(o, 256);
  delete o;
  auto up = std::make_unique<Page[]>(3);
  expect_ptr_aligned(up.get(), 4096);
  std::vector<Line> vl(1000);
  expect_ptr_aligned(vl.data(), 64);

  for (std::size_t al = 16; al <= 2 * MiB; al *= 2) {
    const std::size_t sizes[] = {1, 16, al - 1, al, al + 1, 3 * al, 100000};
    for (std::size_t n : sizes) {
      std::align_val_t a{al};
      void *p = ::operator new(n, a);
      assert_true(p != nullptr);
      expect_true(aligned(p, al), "operator new(%zu, align %zu) = %p", n, al, p);
      expect_true(malloc_usable_size(p) >= n);
      std::memset(p, 5, n);
      if (n & 1) ::operator delete(p, a);
      else ::operator delete(p, n, a);

      void *q = ::operator new[](n, a);
      assert_true(q != nullptr);
      expect_true(aligned(q, al), "operator new[](%zu, align %zu) = %p", n, al, q);
      std::memset(q, 6, n);
      if (n & 1) ::operator delete[](q, a);
      else ::operator delete[](q, n, a);

      void *r = ::operator new(n, a, std::nothrow);
      assert_true(r != nullptr);
      expect_true(aligned(r, al));
      std::memset(r, 7, n);
      ::operator delete(r, a, std::nothrow);

      void *t = ::operator new[](n, a, std::nothrow);
      assert_true(t != nullptr);
      expect_true(aligned(t, al));
      std::memset(t, 8, n);
      ::operator delete[](t, a, std::nothrow);
    }
  }
}

TS_TEST(impossible_sizes) {
  const std::size_t huge[] = {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2 + 1, std::size_t(1) << 62};
  for (std::size_t n : huge) {
    bool threw = false;
    try {
      void *p = ::operator new(n);
      escape(p);
      ::operator delete(p);
    } catch (const std::bad_alloc &) {
      threw = true;
    }
    expect_true(threw, "operator new(%zu) did not throw", n);
    threw = false;
    try {
      void *p = ::operator new[](n);
      escape(p);
      ::operator delete[](p);
    } catch (const std::bad_alloc &) {
      threw = true;
    }
    expect_true(threw, "operator new[](%zu) did not throw", n);
    threw = false;
    try {
      void *p = ::operator new(n, std::align_val_t{64});
      escape(p);
      ::operator delete(p, std::align_val_t{64});
    } catch (const std::bad_alloc &) {
      threw = true;
    }
    expect_true(threw, "operator new(%zu, align 64) did not throw", n);

    void *p = ::operator new(n, std::nothrow);
    expect_true(p == nullptr, "nothrow new(%zu) returned %p", n, p);
    p = ::operator new[](n, std::nothrow);
    expect_true(p == nullptr, "nothrow new[](%zu) returned %p", n, p);
    p = ::operator new(n, std::align_val_t{4096}, std::nothrow);
    expect_true(p == nullptr, "nothrow aligned new(%zu) returned %p", n, p);
    p = ::operator new[](n, std::align_val_t{4096}, std::nothrow);
    expect_true(p == nullptr, "nothrow aligned new[](%zu) returned %p", n, p);
  }
  // A new-expression with an impossible element count.
  volatile std::size_t count = SIZE_MAX / 8;
  bool threw = false;
  try {
    auto *p = new std::uint64_t[count];
    escape(p);
    delete[] p;
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  expect_true(threw);
}

namespace {
int handler_calls = 0;
void handler() {
  // Called when operator new fails; give up on the second call.
  if (++handler_calls >= 2) std::set_new_handler(nullptr);
}
}  // namespace

TS_TEST(new_handler_is_called) {
  std::set_new_handler(handler);
  handler_calls = 0;
  bool threw = false;
  try {
    void *p = ::operator new(SIZE_MAX / 2);
    escape(p);
    ::operator delete(p);
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  std::set_new_handler(nullptr);
  expect_true(threw);
  expect_eq(handler_calls, 2);
}

TS_TEST(mix_with_malloc) {
  std::vector<void *> from_new, from_malloc;
  for (int k = 0; k < 2000; k++) {
    std::size_t n = static_cast<std::size_t>(k * 37 % 5000 + 1);
    void *a = ::operator new(n);
    void *b = std::malloc(n);
    assert_true(a != nullptr && b != nullptr);
    expect_true(malloc_usable_size(a) >= n);
    expect_true(ts_malloc_usable_size(b) >= n);
    ts_test_fill(a, n);
    ts_test_fill(b, n);
    from_new.push_back(a);
    from_malloc.push_back(b);
  }
  int bad = 0;
  for (int k = 0; k < 2000; k++) {
    std::size_t n = static_cast<std::size_t>(k * 37 % 5000 + 1);
    if (!ts_test_check(from_new[k], n) || !ts_test_check(from_malloc[k], n)) bad++;
    std::free(from_malloc[k]);
    ::operator delete(from_new[k], n);
  }
  expect_eq(bad, 0);
  // Memory from new is tessera's: ts_ functions accept it.
  char *c = new char[1000];
  expect_true(ts_malloc_usable_size(c) >= 1000);
  char *d = static_cast<char *>(::operator new(1000));
  expect_true(malloc_usable_size(d) >= 1000);
  delete[] c;
  ::operator delete(d);
}

TS_TEST(container_workload) {
  std::map<std::string, std::vector<int>> m;
  std::unordered_map<int, std::string> u;
  std::uint64_t s = 2463534242ull;
  for (int k = 0; k < 60000; k++) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;
    std::string key = "key-" + std::to_string(s % 20000) + std::string(s % 40, 'x');
    auto &v = m[key];
    v.push_back(k);
    if (v.size() > 50) v.erase(v.begin(), v.begin() + 25);
    u[k % 5000] += std::to_string(k).substr(0, 2);
    if (u[k % 5000].size() > 300) u[k % 5000].clear();
  }
  std::vector<std::string> keys;
  for (auto &e : m) keys.push_back(e.first);
  std::sort(keys.begin(), keys.end(), [](const std::string &a, const std::string &b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  expect_true(std::is_sorted(keys.begin(), keys.end(), [](const std::string &a, const std::string &b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  }));
  std::size_t total = 0;
  for (auto &e : m) total += e.second.size();
  expect_true(total > 0 && m.size() <= 20000 * 40);
  // Deterministic: the same run gives the same sums.
  long long sum = 0;
  for (auto &e : m)
    for (int x : e.second) sum += x;
  std::map<std::string, std::vector<int>> copy = m;
  long long sum2 = 0;
  for (auto &e : copy)
    for (int x : e.second) sum2 += x;
  expect_eq(sum, sum2);
  m.clear();
  copy.clear();
  // Growing strings and vectors reallocate through the allocator.
  std::string big;
  for (int k = 0; k < 200000; k++) big += static_cast<char>('a' + k % 26);
  expect_eq(big.size(), 200000);
  expect_eq(big[199999], 'a' + 199999 % 26);
  std::vector<std::unique_ptr<std::vector<char>>> vv;
  for (int k = 0; k < 300; k++) vv.push_back(std::make_unique<std::vector<char>>(static_cast<std::size_t>(k) * 1000, 'q'));
  for (int k = 0; k < 300; k += 2) vv[k].reset();
  std::size_t chars = 0;
  for (auto &p : vv)
    if (p) chars += static_cast<std::size_t>(std::count(p->begin(), p->end(), 'q'));
  std::size_t want = 0;
  for (int k = 1; k < 300; k += 2) want += static_cast<std::size_t>(k) * 1000;
  expect_eq(chars, want);
}

int main() {
  ts_run(plain_new_delete);
  ts_run(nothrow_forms);
  ts_run(sized_delete);
  ts_run(aligned_new);
  ts_run(impossible_sizes);
  ts_run(new_handler_is_called);
  ts_run(mix_with_malloc);
  ts_run(container_workload);
  return ts_test_done();
}
