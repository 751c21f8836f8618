#include "slots/instance.h"

// Invariants:
//  - blocks_[b] is set once (acceptor), before size_ counts any index in it, and freed only by
//    the destructor; so at(i) for i < size() is always a live Instance.
//  - by_key_ maps each key to at most one index and every index below size_ has exactly one key
//    (Instance::key); both change only under mu_, by the acceptor.
//  - An index is reassigned only when it has no slots and is not benched: no worker holds one of
//    its slots (a worker reports on a slot before it gives it up), so none reads its key or
//    reports against it afterwards. Dead slots of the old instance may still sit in its lane;
//    whoever pops one finds it dead and retires it, as for any dead slot.

namespace l7px::slots {

InstanceTable::~InstanceTable() {
  for (auto& b : blocks_) delete[] b.load(std::memory_order_relaxed);
}

void InstanceTable::Reset(Instance& in, std::string_view key, int64_t now_ns) {
  in.last_leased_ns.store(-now_ns, std::memory_order_relaxed);
  in.ejected_until_ns.store(0, std::memory_order_relaxed);
  in.failures.store(0, std::memory_order_relaxed);
  in.last_bench_ns.store(0, std::memory_order_relaxed);
  in.returned_ns.store(0, std::memory_order_relaxed);
  in.ejections.store(0, std::memory_order_relaxed);
  in.key.assign(key);
}

uint32_t InstanceTable::Acquire(std::string_view key, int64_t now_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_key_.find(std::string(key)); it != by_key_.end()) return it->second;
  const uint32_t n = size_.load(std::memory_order_relaxed);
  if (n < kMaxInstances) {
    if (n % kBlock == 0) {
      blocks_[n / kBlock].store(new Instance[kBlock], std::memory_order_release);
    }
    Reset(at(n), key, now_ns);
    by_key_.emplace(std::string(key), n);
    size_.store(n + 1, std::memory_order_release);
    return n;
  }
  for (uint32_t i = 0; i < n; ++i) {
    Instance& in = at(i);
    if (in.slots.load(std::memory_order_relaxed) != 0 ||
        in.ejected_until_ns.load(std::memory_order_relaxed) != 0) {
      continue;
    }
    by_key_.erase(in.key);
    Reset(in, key, now_ns);
    by_key_.emplace(std::string(key), i);
    return i;
  }
  return kNone;
}

std::string InstanceTable::KeyOf(uint32_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  return at(i).key;
}

}  // namespace l7px::slots
