#include "slots/slot_stack.h"

#include <atomic>
#include <barrier>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "slots/slot.h"
#include "gtest/gtest.h"

namespace l7px::slots {
namespace {

// Slots whose pool_id is their index, so a popped pointer identifies itself; each bound to a
// cell of `stack`.
std::vector<std::unique_ptr<Slot>> MakeBoundSlots(SlotStack& stack, size_t n) {
  std::vector<std::unique_ptr<Slot>> slots;
  slots.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    slots.push_back(std::make_unique<Slot>(UniqueFd(), static_cast<uint32_t>(i), ""));
    EXPECT_TRUE(stack.Bind(slots.back().get()));
  }
  return slots;
}

TEST(SlotStackTest, EmptyStackPopsNull) {
  SlotStack stack(4);
  EXPECT_TRUE(stack.Empty());
  EXPECT_EQ(stack.TryPop(), nullptr);
  EXPECT_EQ(stack.TryPop(), nullptr);
}

TEST(SlotStackTest, PopsMostRecentlyPushedFirst) {
  SlotStack stack(8);
  auto slots = MakeBoundSlots(stack, 5);
  for (auto& s : slots) stack.Push(s.get());
  EXPECT_FALSE(stack.Empty());
  for (size_t i = slots.size(); i-- > 0;) EXPECT_EQ(stack.TryPop(), slots[i].get());
  EXPECT_EQ(stack.TryPop(), nullptr);
  EXPECT_TRUE(stack.Empty());
}

TEST(SlotStackTest, InterleavedPushPopReturnsTheLastReturnedSlot) {
  SlotStack stack(4);
  auto slots = MakeBoundSlots(stack, 3);
  stack.Push(slots[0].get());
  stack.Push(slots[1].get());
  EXPECT_EQ(stack.TryPop(), slots[1].get());
  stack.Push(slots[2].get());
  EXPECT_EQ(stack.TryPop(), slots[2].get());
  stack.Push(slots[1].get());
  EXPECT_EQ(stack.TryPop(), slots[1].get());
  EXPECT_EQ(stack.TryPop(), slots[0].get());
  EXPECT_EQ(stack.TryPop(), nullptr);
}

TEST(SlotStackTest, BindFailsWhenEveryCellIsBoundUntilOneIsUnbound) {
  SlotStack stack(3);
  EXPECT_EQ(stack.capacity(), 3u);
  auto slots = MakeBoundSlots(stack, 3);
  EXPECT_EQ(stack.bound(), 3u);
  Slot extra(UniqueFd(), 99, "");
  EXPECT_FALSE(stack.Bind(&extra));
  stack.Unbind(slots[1].get());
  EXPECT_EQ(stack.bound(), 2u);
  ASSERT_TRUE(stack.Bind(&extra));
  EXPECT_EQ(extra.stack_cell, slots[1]->stack_cell);  // the freed cell is reused
  EXPECT_EQ(stack.bound(), 3u);
  // The rebound cell carries the new slot.
  stack.Push(&extra);
  stack.Push(slots[0].get());
  EXPECT_EQ(stack.TryPop(), slots[0].get());
  EXPECT_EQ(stack.TryPop(), &extra);
  // Unbinding a slot twice (or one never bound here) changes nothing.
  stack.Unbind(slots[1].get());
  EXPECT_EQ(stack.bound(), 3u);
}

TEST(SlotStackTest, CapacityIsClampedToAtLeastOneCell) {
  SlotStack stack(0);
  EXPECT_EQ(stack.capacity(), 1u);
  auto slots = MakeBoundSlots(stack, 1);
  Slot extra(UniqueFd(), 9, "");
  EXPECT_FALSE(stack.Bind(&extra));
  stack.Push(slots[0].get());
  EXPECT_EQ(stack.TryPop(), slots[0].get());
}

// Many threads publish distinct slots once while others take them: every slot is delivered
// exactly once, and what its producer wrote before the push is visible after the pop.
TEST(SlotStackTest, ConcurrentProducersConsumersDeliverEachSlotOnce) {
  constexpr int kProducers = 4;
  constexpr int kConsumers = 4;
  constexpr size_t kPerProducer = 12500;
  constexpr size_t kTotal = kProducers * kPerProducer;
  SlotStack stack(kTotal);
  auto slots = MakeBoundSlots(stack, kTotal);  // producer p owns [p*kPerProducer, ...)
  // Plain (non-atomic) data written before the push and read after the pop: the stack alone
  // must order them (TSan reports a race otherwise).
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
        stack.Push(s);
      }
    });
  }
  for (int c = 0; c < kConsumers; ++c) {
    threads.emplace_back([&, c] {
      auto& mine = received[c];
      mine.reserve(kTotal);
      start.arrive_and_wait();
      while (popped.load(std::memory_order_relaxed) < kTotal) {
        if (Slot* s = stack.TryPop()) {
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

  EXPECT_EQ(stack.TryPop(), nullptr);
  std::vector<int> seen(kTotal, 0);
  size_t total = 0;
  for (const auto& mine : received) {
    for (uint32_t id : mine) {
      ASSERT_LT(id, kTotal);
      ++seen[id];
      ++total;
    }
  }
  EXPECT_EQ(total, kTotal);
  for (size_t i = 0; i < kTotal; ++i) ASSERT_EQ(seen[i], 1) << "slot " << i;
}

// Workers lease and return the same few slots (the real usage pattern), more threads than
// slots so the same cell is popped and pushed again while others hold a stale top (the ABA
// case): a slot is never handed to two holders at once (TryLease would fail) and none is lost.
TEST(SlotStackTest, ConcurrentPopPushRecyclesSlotsWithoutDoubleLease) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 20000;
  SlotStack stack(4);
  auto slots = MakeBoundSlots(stack, 2);
  for (auto& s : slots) stack.Push(s.get());
  std::vector<uint64_t> uses(slots.size(), 0);  // plain: each holder bumps it, ordered by the stack

  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      start.arrive_and_wait();
      for (int i = 0; i < kRounds;) {
        Slot* s = stack.TryPop();
        if (s == nullptr) {
          std::this_thread::yield();
          continue;
        }
        EXPECT_TRUE(s->TryLease());
        ++uses[s->pool_id()];
        s->ReleaseIdle();
        stack.Push(s);
        ++i;
      }
    });
  }
  for (auto& t : threads) t.join();

  std::vector<int> seen(slots.size(), 0);
  uint64_t leases = 0;
  while (Slot* s = stack.TryPop()) {
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
}  // namespace l7px::slots
