// The shared large-buffer cache (kernels/buffers.h).
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>

#include "kernels/buffers.h"

namespace lowbit::kernels {

TEST_CASE("buffer cache: a freed large buffer is handed out again for the same size") {
  const size_t big = size_t(3) << 20;  // 3 MiB
  void* p = buffer_take(big);
  REQUIRE(p != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(p) % 64 == 0);
  std::memset(p, 0x5a, big);  // the whole size is usable
  buffer_give(p, big);
  void* q = buffer_take(big);
  CHECK(q == p);  // from the cache, no new pages
  // A different size is not served from that buffer.
  void* r = buffer_take(big + 64);
  CHECK(r != q);
  buffer_give(r, big + 64);
  buffer_give(q, big);
  buffer_give(nullptr, big);  // a no-op, like free(nullptr)
}

TEST_CASE("buffer cache: small buffers and scratch buffers") {
  void* s = buffer_take(128);  // below the cached size: plain aligned malloc
  REQUIRE(s != nullptr);
  CHECK(reinterpret_cast<uintptr_t>(s) % 64 == 0);
  buffer_give(s, 128);
  void* first = nullptr;
  {
    ScratchBuffer a(1000000);  // rounded up to a multiple of 64
    first = a.get();
    REQUIRE(first != nullptr);
    CHECK(reinterpret_cast<uintptr_t>(first) % 64 == 0);
    std::memset(first, 1, 1000000);
  }
  ScratchBuffer b(1000000);  // the same rounded size again: the same buffer
  CHECK(b.get() == first);
}

}  // namespace lowbit::kernels
