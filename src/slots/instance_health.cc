#include "slots/instance_health.h"

#include <algorithm>

#include "base/log.h"

// Invariants:
//  - Instance::ejected_until_ns goes 0 -> t only by a worker's CAS in Eject, after that worker
//    reserved a place under the cap (InstanceTable::ejected + 1); and t -> 0 only by the
//    acceptor's CAS in ReturnBenched, which then gives the place back. So `ejected` counts the
//    instances benched (it may briefly count one being ejected whose CAS then fails, which
//    gives the place back at once).
//  - A benched instance ignores further outcomes (the exchanges already under way when it was
//    benched do not lengthen its bench); its failure count starts from zero when it returns.

namespace l7px::slots {
namespace {

int64_t BenchLength(const Instance& in, const EjectionSettings& s, int64_t now_ns) {
  const int64_t last = in.last_bench_ns.load(std::memory_order_relaxed);
  const int64_t back = in.returned_ns.load(std::memory_order_relaxed);
  if (last == 0 || back == 0 || now_ns - back >= last) return s.time_ns;
  return std::max(s.time_ns, std::min(2 * last, std::max(kMaxBenchNs, s.time_ns)));
}

void Eject(Pool& pool, Instance& in, int64_t now_ns) {
  const EjectionSettings& s = pool.settings().eject;
  InstanceTable& table = pool.instances();
  const int32_t live = table.live();
  const int32_t cap = MaxEjected(live, s.max_percent);
  int32_t ejected = table.ejected.load(std::memory_order_relaxed);
  do {
    if (ejected >= cap) {
      L7PX_LOG_LIMITED(kWarn,
                       "pool {}: instance {} failed {} times in a row but stays in service: "
                       "{} of {} instances are benched already (max_ejected {}%)",
                       pool.name(), in.key, in.failures.load(std::memory_order_relaxed), ejected,
                       live, s.max_percent);
      return;
    }
  } while (!table.ejected.compare_exchange_weak(ejected, ejected + 1, std::memory_order_relaxed));
  const int64_t length = BenchLength(in, s, now_ns);
  int64_t expected = 0;
  if (!in.ejected_until_ns.compare_exchange_strong(expected, now_ns + length,
                                                   std::memory_order_acq_rel)) {
    table.ejected.fetch_sub(1, std::memory_order_relaxed);  // another worker benched it first
    return;
  }
  in.last_bench_ns.store(length, std::memory_order_relaxed);
  const uint32_t failures = in.failures.exchange(0, std::memory_order_relaxed);
  in.ejections.fetch_add(1, std::memory_order_relaxed);
  pool.ejections_total.fetch_add(1, std::memory_order_relaxed);
  L7PX_LOG(kWarn,
           "pool {}: instance {} ejected for {} ms after {} failures in a row ({} of {} "
           "instances benched)",
           pool.name(), in.key, length / 1'000'000, failures, ejected + 1, live);
}

}  // namespace

int32_t MaxEjected(int32_t live, uint32_t max_percent) {
  if (live <= 1) return 0;
  const int64_t share = int64_t{live} * max_percent / 100;
  return static_cast<int32_t>(std::min<int64_t>(share, live - 1));
}

void ReportFailure(Pool& pool, const Slot* slot, int64_t now_ns) {
  if (slot == nullptr) return;
  const uint32_t after = pool.settings().eject.after;
  if (after == 0) return;
  Instance& in = pool.instances().at(slot->instance);
  if (in.ejected_until_ns.load(std::memory_order_relaxed) != 0) return;
  if (in.failures.fetch_add(1, std::memory_order_relaxed) + 1 >= after) Eject(pool, in, now_ns);
}

void ReportResponse(Pool& pool, const Slot* slot, int status, int64_t now_ns) {
  if (slot == nullptr || status == 0) return;
  if (status >= 500) {
    ReportFailure(pool, slot, now_ns);
    return;
  }
  // A success: written only when there is something to reset, so that healthy traffic does not
  // dirty the instance's cache line.
  std::atomic<uint32_t>& failures = pool.instances().at(slot->instance).failures;
  if (failures.load(std::memory_order_relaxed) != 0) {
    failures.store(0, std::memory_order_relaxed);
  }
}

int ReturnBenched(Pool& pool, int64_t now_ns) {
  InstanceTable& table = pool.instances();
  int returned = 0;
  const uint32_t n = table.size();
  for (uint32_t i = 0; i < n; ++i) {
    Instance& in = table.at(i);
    int64_t until = in.ejected_until_ns.load(std::memory_order_acquire);
    if (until == 0 || now_ns < until) continue;
    if (!in.ejected_until_ns.compare_exchange_strong(until, 0, std::memory_order_acq_rel)) {
      continue;
    }
    in.failures.store(0, std::memory_order_relaxed);
    in.returned_ns.store(now_ns, std::memory_order_relaxed);
    table.ejected.fetch_sub(1, std::memory_order_relaxed);
    L7PX_LOG(kInfo, "pool {}: instance {} back in service after a {} ms bench ({} slots)",
             pool.name(), in.key, in.last_bench_ns.load(std::memory_order_relaxed) / 1'000'000,
             in.slots.load(std::memory_order_relaxed));
    ++returned;
  }
  return returned;
}

}  // namespace l7px::slots
