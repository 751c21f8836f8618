#include "base/reserve.h"

#include <gtest/gtest.h>

#include <vector>

namespace l7px {
namespace {

TEST(ReserveAtLeastTest, MakesRoomWithoutShrinking) {
  std::vector<int> v;
  ReserveAtLeast(v, 5);
  EXPECT_GE(v.capacity(), 5u);
  const size_t cap = v.capacity();
  ReserveAtLeast(v, 3);  // already room: nothing changes
  EXPECT_EQ(v.capacity(), cap);
}

// One more element at a time (a free list reserving room per new object) must not reallocate
// each time: growth at least doubles, so 1,000 objects cost about ten reallocations.
TEST(ReserveAtLeastTest, GrowsGeometricallyOneAtATime) {
  std::vector<int> v;
  int reallocations = 0;
  size_t cap = v.capacity();
  for (size_t n = 1; n <= 1000; ++n) {
    ReserveAtLeast(v, n);
    ASSERT_GE(v.capacity(), n);
    if (v.capacity() != cap) {
      ++reallocations;
      EXPECT_GE(v.capacity(), 2 * cap);
      cap = v.capacity();
    }
  }
  EXPECT_LE(reallocations, 11);
}

// Once room is reserved, filling the vector up to it keeps its storage.
TEST(ReserveAtLeastTest, ReservedRoomTakesPushesWithoutMoving) {
  std::vector<int> v;
  ReserveAtLeast(v, 64);
  const int* storage = v.data();
  for (int i = 0; i < 64; ++i) v.push_back(i);
  EXPECT_EQ(v.data(), storage);
}

}  // namespace
}  // namespace l7px
