// The wait-queue policy (proxy/dispatch) on a request's path, against the same work written
// inline as the worker did before the policy became a class of its own: lease an idle slot and
// return it (no waiter), and a request that waits and is served when a slot frees.

#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "proxy/dispatch/dispatcher.h"
#include "slots/pool.h"
#include "slots/slot.h"
#include "slots/slot_lifecycle.h"

namespace l7px::proxy {
namespace {

struct Fixture {
  Fixture() : pool(0, "api", slots::PoolSettings{}, 2) {
    for (int i = 0; i < 16; ++i) {
      owned.push_back(std::make_unique<slots::Slot>(UniqueFd(), 0, "svc"));
      pool.AttachSlot(*owned.back(), "svc", 0);
      pool.PushIdle(owned.back().get());
    }
  }
  slots::Pool pool;
  std::vector<std::unique_ptr<slots::Slot>> owned;
};

// Baseline: the inline lease and return.
void BM_InlineLeaseReturn(benchmark::State& state) {
  Fixture f;
  for (auto _ : state) {
    slots::Slot* slot = nullptr;
    if (f.pool.waiting.load(std::memory_order_relaxed) == 0) {
      while ((slot = f.pool.PopForLease(1)) != nullptr && !slot->TryLease()) {
      }
      if (slot != nullptr) f.pool.busy.fetch_add(1, std::memory_order_relaxed);
    }
    benchmark::DoNotOptimize(slot);
    slots::ReturnLeasedSlot(f.pool, *slot);
    benchmark::DoNotOptimize(f.pool.PickWorkerToWake(-1));
  }
}
BENCHMARK(BM_InlineLeaseReturn);

void BM_DispatcherAdmitRelease(benchmark::State& state) {
  Fixture f;
  Dispatcher d(0);
  Waiter w;
  slots::RequestLimits limits;
  int64_t now = 0;
  for (auto _ : state) {
    const Dispatcher::Admission a = d.Admit(f.pool, limits, w, ++now);
    benchmark::DoNotOptimize(a.slot);
    benchmark::DoNotOptimize(d.OnRelease(f.pool, *a.slot, now));
  }
}
BENCHMARK(BM_DispatcherAdmitRelease);

// A request that finds no idle slot: queued, then served when the slot it waits for frees
// (the release hands it straight over).
void BM_DispatcherQueueAndServe(benchmark::State& state) {
  Fixture f;
  Dispatcher d(0);
  slots::RequestLimits limits;
  std::vector<slots::Slot*> leased;
  Waiter holder;
  while (true) {  // every slot busy
    const Dispatcher::Admission a = d.Admit(f.pool, limits, holder, 0);
    if (a.verdict != Dispatcher::Verdict::kStart) break;
    leased.push_back(a.slot);
  }
  d.Remove(holder);
  Waiter w;
  int64_t now = 0;
  size_t next = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(d.Admit(f.pool, limits, w, ++now));
    slots::Slot* freed = leased[next++ % leased.size()];
    const Dispatcher::Release r = d.OnRelease(f.pool, *freed, now);
    benchmark::DoNotOptimize(r.waiter);
  }
}
BENCHMARK(BM_DispatcherQueueAndServe);

}  // namespace
}  // namespace l7px::proxy
