#include "slots/pool.h"

// The instance choice of a lease.
//
// Invariants:
//  - A slot is pushed only to its own instance's lane (Slot::instance is fixed before its first
//    push), so a lane holds slots of one instance (and, after a reassignment, dead slots of the
//    one before: see slots/instance.cc).
//  - PopForLease never takes a slot from a lane whose instance is benched (ejected_until != 0
//    when it looked). A lease already under way when the instance is benched completes.
//  - Lock-free, allocation-free: reads of size() (acquire) and of each instance's hot line; one
//    CAS to pop; one relaxed store to stamp the instance's turn. A retry follows a pop another
//    thread won.

namespace l7px::slots {

bool Pool::AttachSlot(Slot& slot, std::string_view instance_key, int64_t now_ns) {
  const uint32_t instance = instances_.Acquire(instance_key, now_ns);
  if (instance == InstanceTable::kNone) return false;
  if (!idle_.Bind(&slot)) return false;
  slot.instance = instance;
  instances_.SlotAdded(instance);
  return true;
}

Slot* Pool::PopForLease(int64_t now_ns) {
  const uint32_t n = instances_.size();
  for (;;) {
    Instance* best = nullptr;
    int64_t best_turn = 0;
    for (uint32_t i = 0; i < n; ++i) {
      Instance& in = instances_.at(i);
      if (in.idle.Empty() || in.ejected_until_ns.load(std::memory_order_relaxed) != 0) continue;
      const int64_t turn = in.last_leased_ns.load(std::memory_order_relaxed);
      if (best == nullptr || turn < best_turn) {
        best = &in;
        best_turn = turn;
      }
    }
    if (best == nullptr) return nullptr;
    if (Slot* slot = idle_.TryPop(best->idle)) {
      best->last_leased_ns.store(now_ns, std::memory_order_relaxed);
      return slot;
    }
    // Another thread emptied that lane since we looked: choose again.
  }
}

Slot* Pool::PopAnyIdle() {
  const uint32_t n = instances_.size();
  for (uint32_t i = 0; i < n; ++i) {
    if (Slot* slot = idle_.TryPop(instances_.at(i).idle)) return slot;
  }
  return nullptr;
}

bool Pool::HasLeasableIdle() const {
  const uint32_t n = instances_.size();
  for (uint32_t i = 0; i < n; ++i) {
    const Instance& in = instances_.at(i);
    if (!in.idle.Empty() && in.ejected_until_ns.load(std::memory_order_relaxed) == 0) return true;
  }
  return false;
}

bool Pool::AnyIdle() const {
  const uint32_t n = instances_.size();
  for (uint32_t i = 0; i < n; ++i) {
    if (!instances_.at(i).idle.Empty()) return true;
  }
  return false;
}

}  // namespace l7px::slots
