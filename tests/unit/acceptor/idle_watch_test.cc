#include "acceptor/idle_watch.h"

#include <sys/socket.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace l7px::acceptor {
namespace {

// A connected pair: [0] plays the slot as l7px holds it, [1] the service.
struct Pair {
  int fd[2] = {-1, -1};
  Pair() { EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fd), 0); }
  ~Pair() {
    for (int f : fd) {
      if (f >= 0) close(f);
    }
  }
};

TEST(PeekIdleSlotTest, QuietBytesAndClosed) {
  Pair p;
  EXPECT_EQ(PeekIdleSlot(p.fd[0]), IdleSlotCheck::kQuiet);
  ASSERT_EQ(write(p.fd[1], "x", 1), 1);
  EXPECT_EQ(PeekIdleSlot(p.fd[0]), IdleSlotCheck::kBytes);
  EXPECT_EQ(PeekIdleSlot(p.fd[0]), IdleSlotCheck::kBytes);  // peeked, not consumed
  char c;
  ASSERT_EQ(read(p.fd[0], &c, 1), 1);
  EXPECT_EQ(PeekIdleSlot(p.fd[0]), IdleSlotCheck::kQuiet);
  close(p.fd[1]);
  p.fd[1] = -1;
  EXPECT_EQ(PeekIdleSlot(p.fd[0]), IdleSlotCheck::kClosed);
}

TEST(PeekIdleSlotTest, BytesBeforeTheCloseAreStillBytes) {
  Pair p;
  ASSERT_EQ(write(p.fd[1], "late", 4), 4);
  close(p.fd[1]);
  p.fd[1] = -1;
  EXPECT_EQ(PeekIdleSlot(p.fd[0]), IdleSlotCheck::kBytes);
}

TEST(IdleSinceLastTickTest, NeedsTwoTicksIdleWithoutALease) {
  slots::Slot slot(UniqueFd(), 0, "s");
  EXPECT_FALSE(IdleSinceLastTick(slot));  // first look: idle, nothing known before
  EXPECT_TRUE(IdleSinceLastTick(slot));   // still idle, same epoch

  // Leased and returned between two ticks: the epoch moved, so not idle throughout.
  ASSERT_TRUE(slot.TryLease());
  slot.ReleaseIdle();
  EXPECT_FALSE(IdleSinceLastTick(slot));
  EXPECT_TRUE(IdleSinceLastTick(slot));

  // Busy at a tick.
  ASSERT_TRUE(slot.TryLease());
  EXPECT_FALSE(IdleSinceLastTick(slot));
  slot.ReleaseIdle();
  EXPECT_FALSE(IdleSinceLastTick(slot));  // idle now, but it was busy at the last tick
  EXPECT_TRUE(IdleSinceLastTick(slot));
}

}  // namespace
}  // namespace l7px::acceptor
