// The per-pool idle-slot stack (the acceptor ring of docs/architecture.md) against the naive baseline it
// replaces (a mutex around a deque). One iteration is one pop followed by one push of the
// popped slot, the pattern of a worker leasing a slot and returning it. With ThreadRange(1, 2)
// every thread does the same on one shared stack, so the numbers include cache-line transfers
// between cores.

#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "slots/slot.h"
#include "slots/slot_stack.h"
#include "base/unique_fd.h"

namespace l7px::slots {
namespace {

constexpr int kSlots = 64;

std::vector<std::unique_ptr<Slot>> MakeSlots(int n) {
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < n; ++i) slots.push_back(std::make_unique<Slot>(UniqueFd(), 0, "bench"));
  return slots;
}

// Shared by every thread of a run; built once (function-local statics are thread-safe).
struct StackFixture {
  std::vector<std::unique_ptr<Slot>> slots = MakeSlots(kSlots);
  SlotStack stack{2 * kSlots};
  StackFixture() {
    for (auto& s : slots) {
      stack.Bind(s.get());
      stack.Push(s.get());
    }
  }
};

struct DequeFixture {
  std::vector<std::unique_ptr<Slot>> slots = MakeSlots(kSlots);
  std::mutex mu;
  std::deque<Slot*> queue;
  DequeFixture() {
    for (auto& s : slots) queue.push_back(s.get());
  }
};

void BM_SlotStack_PopPush(benchmark::State& state) {
  static StackFixture* const f = new StackFixture();
  for (auto _ : state) {
    Slot* s = f->stack.TryPop();  // never empty: 64 slots, at most 2 held at once
    benchmark::DoNotOptimize(s);
    f->stack.Push(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SlotStack_PopPush)->ThreadRange(1, 2)->UseRealTime();

void BM_MutexDeque_PopPush(benchmark::State& state) {
  static DequeFixture* const f = new DequeFixture();
  for (auto _ : state) {
    Slot* s;
    {
      std::lock_guard<std::mutex> lock(f->mu);
      s = f->queue.front();
      f->queue.pop_front();
    }
    benchmark::DoNotOptimize(s);
    {
      std::lock_guard<std::mutex> lock(f->mu);
      f->queue.push_back(s);
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MutexDeque_PopPush)->ThreadRange(1, 2)->UseRealTime();

// The floor under BM_SlotStack_PopPush/threads:1: a lock-free pop and a lock-free push are one
// compare-and-swap each, and this is two uncontended CASes on one word with nothing else
// around them. Whatever the stack does beyond that is the gap between the two numbers.
void BM_Floor_TwoCas(benchmark::State& state) {
  static std::atomic<uint64_t> word{0};
  for (auto _ : state) {
    uint64_t v = word.load(std::memory_order_acquire);
    word.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel, std::memory_order_acquire);
    v = word.load(std::memory_order_relaxed);
    word.compare_exchange_weak(v, v + 1, std::memory_order_release, std::memory_order_relaxed);
  }
  benchmark::DoNotOptimize(word.load(std::memory_order_relaxed));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Floor_TwoCas);

// Lease and return through the slot's state word as a worker does (TryLease / ReleaseIdle),
// single-threaded: the stack's cost plus the slot's own atomics.
void BM_SlotStack_LeaseReturn(benchmark::State& state) {
  auto slots = MakeSlots(kSlots);
  SlotStack stack(2 * kSlots);
  for (auto& s : slots) {
    stack.Bind(s.get());
    stack.Push(s.get());
  }
  for (auto _ : state) {
    Slot* s = stack.TryPop();
    if (!s->TryLease()) state.SkipWithError("lease failed");
    s->ReleaseIdle();
    stack.Push(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SlotStack_LeaseReturn);

}  // namespace
}  // namespace l7px::slots
