// The per-pool idle-slot ring against the naive baseline it replaces (a mutex around a deque).
// One iteration is one pop followed by one push of the popped slot, the pattern of a worker
// leasing a slot and returning it. With ThreadRange(1, 2) every thread does the same on one
// shared ring, so the numbers include cache-line transfers between cores.

#include <benchmark/benchmark.h>

#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "acceptor/slot.h"
#include "acceptor/slot_ring.h"
#include "base/unique_fd.h"

namespace l7px::acceptor {
namespace {

constexpr int kSlots = 64;

std::vector<std::unique_ptr<Slot>> MakeSlots(int n) {
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < n; ++i) slots.push_back(std::make_unique<Slot>(UniqueFd(), 0, "bench"));
  return slots;
}

// Shared by every thread of a run; built once (function-local statics are thread-safe).
struct RingFixture {
  std::vector<std::unique_ptr<Slot>> slots = MakeSlots(kSlots);
  SlotRing ring{2 * kSlots};
  RingFixture() {
    for (auto& s : slots) ring.TryPush(s.get());
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

void BM_SlotRing_PopPush(benchmark::State& state) {
  static RingFixture* const f = new RingFixture();
  int64_t misses = 0;
  for (auto _ : state) {
    Slot* s = f->ring.TryPop();
    if (s == nullptr) {  // another thread's push is mid-write: count it, try again next time
      ++misses;
      continue;
    }
    benchmark::DoNotOptimize(s);
    f->ring.TryPush(s);
  }
  // Items are completed pop+push pairs. An empty pop happens when the other thread claimed the
  // head position but has not published it yet (e.g. it was preempted mid-push).
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) - misses);
  state.counters["empty_pops"] = static_cast<double>(misses);
}
BENCHMARK(BM_SlotRing_PopPush)->ThreadRange(1, 2)->UseRealTime();

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

// Lease and return through the slot's state word as a worker does (TryLease / ReleaseIdle),
// single-threaded: the ring's cost plus the slot's own atomics.
void BM_SlotRing_LeaseReturn(benchmark::State& state) {
  auto slots = MakeSlots(kSlots);
  SlotRing ring(2 * kSlots);
  for (auto& s : slots) ring.TryPush(s.get());
  for (auto _ : state) {
    Slot* s = ring.TryPop();
    if (!s->TryLease()) state.SkipWithError("lease failed");
    s->ReleaseIdle();
    ring.TryPush(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SlotRing_LeaseReturn);

}  // namespace
}  // namespace l7px::acceptor
