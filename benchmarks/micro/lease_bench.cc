// The lease path's pop: the pool's instance choice over per-instance idle LIFOs
// (Pool::PopForLease, then PushIdle) against the single LIFO it replaced (one SlotStack lane for
// the whole pool). One iteration is one pop and one push of the popped slot, as a worker leasing
// a slot and returning it. 64 slots spread over Arg(0) instances; ThreadRange(1, 2) runs every
// thread on one shared pool, so the numbers include cache-line transfers between cores.

#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/unique_fd.h"
#include "slots/pool.h"
#include "slots/slot.h"
#include "slots/slot_stack.h"

namespace l7px::slots {
namespace {

constexpr int kLeaseSlots = 64;

struct LeasePoolFixture {
  explicit LeasePoolFixture(int instances) : pool(0, "bench", PoolSettings{}, 2) {
    for (int i = 0; i < kLeaseSlots; ++i) {
      const std::string id = "instance-" + std::to_string(i % instances);
      slots.push_back(std::make_unique<Slot>(UniqueFd(), 0, id));
      pool.AttachSlot(*slots.back(), id, 1 + i);
      pool.PushIdle(slots.back().get());
    }
  }
  Pool pool;
  std::vector<std::unique_ptr<Slot>> slots;
};

// Shared by the threads of a run, one per instance count (built before any timing).
LeasePoolFixture& LeaseFixtureFor(int instances) {
  static std::mutex mu;
  static std::map<int, std::unique_ptr<LeasePoolFixture>> fixtures;
  std::lock_guard<std::mutex> lock(mu);
  std::unique_ptr<LeasePoolFixture>& f = fixtures[instances];
  if (f == nullptr) f = std::make_unique<LeasePoolFixture>(instances);
  return *f;
}

// The lease now: the instance whose turn is oldest, its most recently idle slot.
void BM_PoolLease_PerInstance(benchmark::State& state) {
  LeasePoolFixture& f = LeaseFixtureFor(static_cast<int>(state.range(0)));
  int64_t now = MonotonicNanos();
  for (auto _ : state) {
    Slot* s = f.pool.PopForLease(++now);  // never empty: 64 slots, at most 2 held at once
    benchmark::DoNotOptimize(s);
    f.pool.PushIdle(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolLease_PerInstance)
    ->Arg(1)
    ->Arg(4)
    ->Arg(16)
    ->Arg(64)
    ->ThreadRange(1, 2)
    ->UseRealTime();

// The baseline: one LIFO for the whole pool (the pool's single stack before instances).
void BM_PoolLease_SingleStack(benchmark::State& state) {
  struct SingleStackFixture {
    std::vector<std::unique_ptr<Slot>> slots;
    SlotStack stack{2 * kLeaseSlots};
    SingleStackFixture() {
      for (int i = 0; i < kLeaseSlots; ++i) {
        slots.push_back(std::make_unique<Slot>(UniqueFd(), 0, "bench"));
        stack.Bind(slots.back().get());
        stack.Push(slots.back().get());
      }
    }
  };
  static SingleStackFixture* const f = new SingleStackFixture();
  for (auto _ : state) {
    Slot* s = f->stack.TryPop();
    benchmark::DoNotOptimize(s);
    f->stack.Push(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolLease_SingleStack)->ThreadRange(1, 2)->UseRealTime();

}  // namespace
}  // namespace l7px::slots
