#include "slots/slot.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <barrier>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace l7px::slots {
namespace {

TEST(SlotTest, StartsIdleAtEpochZeroWithItsFields) {
  Slot slot(UniqueFd(), 7, "billing-1");
  EXPECT_EQ(slot.state(), Slot::State::kIdle);
  EXPECT_EQ(slot.epoch(), 0u);
  EXPECT_EQ(slot.pool_id(), 7u);
  EXPECT_EQ(slot.service_id(), "billing-1");
  EXPECT_EQ(slot.fd(), -1);
}

TEST(SlotTest, LeaseBumpsEpochAndReleaseKeepsIt) {
  Slot slot(UniqueFd(), 0, "");
  ASSERT_TRUE(slot.TryLease());
  EXPECT_EQ(slot.state(), Slot::State::kBusy);
  EXPECT_EQ(slot.epoch(), 1u);
  EXPECT_FALSE(slot.TryLease());  // already busy
  EXPECT_EQ(slot.epoch(), 1u);

  slot.ReleaseIdle();
  EXPECT_EQ(slot.state(), Slot::State::kIdle);
  EXPECT_EQ(slot.epoch(), 1u);

  ASSERT_TRUE(slot.TryLease());
  EXPECT_EQ(slot.epoch(), 2u);
  slot.ReleaseIdle();
  EXPECT_EQ(slot.epoch(), 2u);
}

TEST(SlotTest, TryKillIdleSucceedsWhenNotLeasedSinceObserved) {
  Slot slot(UniqueFd(), 0, "");
  ASSERT_TRUE(slot.TryLease());
  slot.ReleaseIdle();
  const uint64_t observed = slot.epoch();
  EXPECT_TRUE(slot.TryKillIdle(observed));
  EXPECT_EQ(slot.state(), Slot::State::kDead);
  EXPECT_EQ(slot.epoch(), observed);
  EXPECT_FALSE(slot.TryLease());  // dead slots are never leased again
  EXPECT_FALSE(slot.TryKillIdle(observed));
}

TEST(SlotTest, TryKillIdleFailsAfterALease) {
  Slot slot(UniqueFd(), 0, "");
  const uint64_t observed = slot.epoch();
  ASSERT_TRUE(slot.TryLease());
  // Busy: the readiness event belongs to a request in flight.
  EXPECT_FALSE(slot.TryKillIdle(observed));
  EXPECT_EQ(slot.state(), Slot::State::kBusy);
  slot.ReleaseIdle();
  // Idle again, but leased since the watch was armed: the event is stale.
  EXPECT_FALSE(slot.TryKillIdle(observed));
  EXPECT_EQ(slot.state(), Slot::State::kIdle);
  EXPECT_TRUE(slot.TryKillIdle(slot.epoch()));
}

TEST(SlotTest, MarkDeadFromBusy) {
  Slot slot(UniqueFd(), 0, "");
  ASSERT_TRUE(slot.TryLease());
  slot.MarkDead();
  EXPECT_EQ(slot.state(), Slot::State::kDead);
  EXPECT_EQ(slot.epoch(), 1u);
  EXPECT_FALSE(slot.TryLease());
  EXPECT_FALSE(slot.TryKillIdle(1));
}

TEST(SlotTest, CloseFdClosesOwnedDescriptor) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  UniqueFd write_end(fds[1]);
  Slot slot(UniqueFd(fds[0]), 0, "");
  EXPECT_EQ(slot.fd(), fds[0]);
  slot.CloseFd();
  EXPECT_EQ(slot.fd(), -1);
  EXPECT_EQ(fcntl(fds[0], F_GETFD), -1);
}

// Many workers race to lease the same idle slot: exactly one wins each round.
TEST(SlotTest, ConcurrentTryLeaseHasExactlyOneWinner) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 500;
  Slot slot(UniqueFd(), 0, "");
  std::atomic<int> winners{0};
  std::atomic<int> round_winners[kRounds] = {};
  // Phase 1: everyone tries; phase 2: the main thread checks and releases the slot.
  std::barrier sync(kThreads + 1);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int r = 0; r < kRounds; ++r) {
        sync.arrive_and_wait();
        if (slot.TryLease()) {
          winners.fetch_add(1, std::memory_order_relaxed);
          round_winners[r].fetch_add(1, std::memory_order_relaxed);
        }
        sync.arrive_and_wait();
      }
    });
  }
  for (int r = 0; r < kRounds; ++r) {
    sync.arrive_and_wait();
    sync.arrive_and_wait();
    ASSERT_EQ(round_winners[r].load(), 1) << "round " << r;
    ASSERT_EQ(slot.state(), Slot::State::kBusy);
    ASSERT_EQ(slot.epoch(), static_cast<uint64_t>(r + 1));
    slot.ReleaseIdle();
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(winners.load(), kRounds);
}

// A lease racing the acceptor's kill: exactly one of them takes the idle slot.
TEST(SlotTest, LeaseRacingKillIdleHasOneWinner) {
  constexpr int kRounds = 500;
  for (int r = 0; r < kRounds; ++r) {
    Slot slot(UniqueFd(), 0, "");
    const uint64_t observed = slot.epoch();
    std::barrier start(2);
    bool leased = false, killed = false;
    std::thread worker([&] {
      start.arrive_and_wait();
      leased = slot.TryLease();
    });
    start.arrive_and_wait();
    killed = slot.TryKillIdle(observed);
    worker.join();
    ASSERT_NE(leased, killed) << "round " << r;
    ASSERT_EQ(slot.state(), leased ? Slot::State::kBusy : Slot::State::kDead);
  }
}

}  // namespace
}  // namespace l7px::slots
