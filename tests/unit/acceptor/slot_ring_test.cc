#include "acceptor/slot_ring.h"

#include <atomic>
#include <barrier>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "acceptor/slot.h"
#include "gtest/gtest.h"

namespace l7px::acceptor {
namespace {

// Slots whose pool_id is their index, so a popped pointer identifies itself.
std::vector<std::unique_ptr<Slot>> MakeSlots(size_t n) {
  std::vector<std::unique_ptr<Slot>> slots;
  slots.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    slots.push_back(std::make_unique<Slot>(UniqueFd(), static_cast<uint32_t>(i), ""));
  }
  return slots;
}

TEST(SlotRingTest, CapacityRoundsUpToPowerOfTwoWithMinimumTwo) {
  EXPECT_EQ(SlotRing(0).capacity(), 2u);
  EXPECT_EQ(SlotRing(1).capacity(), 2u);
  EXPECT_EQ(SlotRing(2).capacity(), 2u);
  EXPECT_EQ(SlotRing(3).capacity(), 4u);
  EXPECT_EQ(SlotRing(4).capacity(), 4u);
  EXPECT_EQ(SlotRing(5).capacity(), 8u);
  EXPECT_EQ(SlotRing(1000).capacity(), 1024u);
  EXPECT_EQ(SlotRing(1024).capacity(), 1024u);
  EXPECT_EQ(SlotRing(1025).capacity(), 2048u);
}

TEST(SlotRingTest, EmptyRingPopsNull) {
  SlotRing ring(4);
  EXPECT_EQ(ring.TryPop(), nullptr);
  EXPECT_EQ(ring.TryPop(), nullptr);
  EXPECT_EQ(ring.SizeApprox(), 0u);
}

TEST(SlotRingTest, FifoOrderSingleThread) {
  auto slots = MakeSlots(8);
  SlotRing ring(8);
  for (auto& s : slots) ASSERT_TRUE(ring.TryPush(s.get()));
  EXPECT_EQ(ring.SizeApprox(), 8u);
  for (auto& s : slots) EXPECT_EQ(ring.TryPop(), s.get());
  EXPECT_EQ(ring.TryPop(), nullptr);
  EXPECT_EQ(ring.SizeApprox(), 0u);
}

TEST(SlotRingTest, FullRejectsPushUntilOnePopped) {
  auto slots = MakeSlots(5);
  SlotRing ring(3);  // rounds to 4
  ASSERT_EQ(ring.capacity(), 4u);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(ring.TryPush(slots[i].get()));
  EXPECT_FALSE(ring.TryPush(slots[4].get()));
  EXPECT_FALSE(ring.TryPush(slots[4].get()));
  EXPECT_EQ(ring.SizeApprox(), 4u);

  EXPECT_EQ(ring.TryPop(), slots[0].get());
  EXPECT_TRUE(ring.TryPush(slots[4].get()));
  EXPECT_FALSE(ring.TryPush(slots[0].get()));
  for (int i = 1; i < 5; ++i) EXPECT_EQ(ring.TryPop(), slots[i].get());
  EXPECT_EQ(ring.TryPop(), nullptr);
}

// Capacity 2 is the smallest ring; a capacity-1 ring would confuse "full" with "free next lap".
TEST(SlotRingTest, MinimumCapacityHoldsTwoAndNoMore) {
  auto slots = MakeSlots(3);
  SlotRing ring(1);
  for (int lap = 0; lap < 100; ++lap) {
    ASSERT_TRUE(ring.TryPush(slots[0].get()));
    ASSERT_TRUE(ring.TryPush(slots[1].get()));
    ASSERT_FALSE(ring.TryPush(slots[2].get()));
    ASSERT_EQ(ring.TryPop(), slots[0].get());
    ASSERT_EQ(ring.TryPop(), slots[1].get());
    ASSERT_EQ(ring.TryPop(), nullptr);
  }
}

TEST(SlotRingTest, WrapsAroundManyLapsKeepingOrder) {
  auto slots = MakeSlots(64);
  SlotRing ring(8);
  size_t next_push = 0, next_pop = 0;
  // Varying fill levels so the head and tail cross cell boundaries at every offset.
  for (int round = 0; round < 2000; ++round) {
    const size_t burst = 1 + static_cast<size_t>(round) % ring.capacity();
    for (size_t i = 0; i < burst; ++i) {
      ASSERT_TRUE(ring.TryPush(slots[next_push % slots.size()].get()));
      ++next_push;
    }
    EXPECT_EQ(ring.SizeApprox(), burst);
    for (size_t i = 0; i < burst; ++i) {
      ASSERT_EQ(ring.TryPop(), slots[next_pop % slots.size()].get());
      ++next_pop;
    }
    ASSERT_EQ(ring.TryPop(), nullptr);
  }
  EXPECT_GT(next_push / ring.capacity(), 1000u);  // many laps
}

TEST(SlotRingTest, StaysFullAcrossLaps) {
  auto slots = MakeSlots(4);
  SlotRing ring(4);
  for (auto& s : slots) ASSERT_TRUE(ring.TryPush(s.get()));
  // Rotate: always full, one pop then one push; order must be a pure rotation.
  for (int i = 0; i < 1000; ++i) {
    Slot* s = ring.TryPop();
    ASSERT_EQ(s, slots[i % 4].get());
    ASSERT_TRUE(ring.TryPush(s));
    ASSERT_FALSE(ring.TryPush(s));
  }
}

// Producers and consumers move distinct slots through a small ring. Every slot must be
// delivered exactly once, and each consumer must see each producer's slots in push order.
TEST(SlotRingTest, ConcurrentProducersConsumersDeliverEachSlotOnceInOrder) {
  constexpr int kProducers = 4;
  constexpr int kConsumers = 4;
  constexpr size_t kPerProducer = 12500;
  constexpr size_t kTotal = kProducers * kPerProducer;
  auto slots = MakeSlots(kTotal);  // producer p owns indices [p*kPerProducer, (p+1)*kPerProducer)
  SlotRing ring(16);
  // Plain (non-atomic) data written before the push and read after the pop: the ring alone must
  // order them (TSan reports a race otherwise).
  std::vector<uint64_t> payload(kTotal, 0);

  std::atomic<size_t> popped{0};
  std::vector<std::vector<uint32_t>> received(kConsumers);
  std::barrier start(kProducers + kConsumers);
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p) {
    threads.emplace_back([&, p] {
      start.arrive_and_wait();
      for (size_t i = 0; i < kPerProducer; ++i) {
        Slot* s = slots[p * kPerProducer + i].get();
        payload[s->pool_id()] = uint64_t{s->pool_id()} * 7 + 1;
        while (!ring.TryPush(s)) std::this_thread::yield();
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      auto& mine = received[c];
      mine.reserve(kTotal);
      start.arrive_and_wait();
      while (popped.load(std::memory_order_relaxed) < kTotal) {
        if (Slot* s = ring.TryPop()) {
          mine.push_back(s->pool_id());
          EXPECT_EQ(payload[s->pool_id()], uint64_t{s->pool_id()} * 7 + 1);
          popped.fetch_add(1, std::memory_order_relaxed);
        } else {
          std::this_thread::yield();
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(ring.TryPop(), nullptr);
  std::vector<int> seen(kTotal, 0);
  size_t total = 0;
  for (const auto& mine : received) {
    std::vector<int64_t> last_from(kProducers, -1);
    for (uint32_t id : mine) {
      ASSERT_LT(id, kTotal);
      ++seen[id];
      ++total;
      const size_t producer = id / kPerProducer;
      ASSERT_GT(static_cast<int64_t>(id), last_from[producer]) << "per-producer order broken";
      last_from[producer] = id;
    }
  }
  EXPECT_EQ(total, kTotal);
  for (size_t i = 0; i < kTotal; ++i) ASSERT_EQ(seen[i], 1) << "slot " << i;
}

// Workers lease and return the same few slots (the real usage pattern): the ring never holds
// more than the slots in circulation and none is lost.
TEST(SlotRingTest, ConcurrentPopPushRecyclesSlots) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 20000;
  auto slots = MakeSlots(6);
  SlotRing ring(8);
  for (auto& s : slots) ASSERT_TRUE(ring.TryPush(s.get()));
  std::vector<uint64_t> uses(slots.size(), 0);  // plain: each holder bumps it, ordered by the ring

  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kRounds;) {
        Slot* s = ring.TryPop();
        if (s == nullptr) {
          std::this_thread::yield();
          continue;
        }
        EXPECT_TRUE(s->TryLease());
        ++uses[s->pool_id()];
        s->ReleaseIdle();
        EXPECT_TRUE(ring.TryPush(s));  // never full: at most 6 slots exist
        ++i;
      }
    });
  }
  for (auto& t : threads) t.join();

  std::vector<int> seen(slots.size(), 0);
  uint64_t leases = 0;
  while (Slot* s = ring.TryPop()) {
    ++seen[s->pool_id()];
    leases += s->epoch();
  }
  for (int n : seen) EXPECT_EQ(n, 1);
  EXPECT_EQ(leases, uint64_t{kThreads} * kRounds);
  uint64_t total_uses = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    EXPECT_EQ(uses[i], slots[i]->epoch());
    total_uses += uses[i];
  }
  EXPECT_EQ(total_uses, leases);
}

}  // namespace
}  // namespace l7px::acceptor
