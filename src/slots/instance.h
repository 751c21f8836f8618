#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "slots/slot_stack.h"

namespace l7px::slots {

// One instance of a pool's service: the slots registered with one L7px-Service id or, without
// one, from one peer address (its IP). The unit the pool balances across and benches when it
// keeps failing (slots/instance_health.h).
//
// Threads: the acceptor creates and (re)assigns instances; workers read the hot fields on every
// lease and write them when they lease, return or report on a slot; the admin thread reads.
struct alignas(64) Instance {
  // ---- Hot: one cache line, read by every lease's scan (Pool::PopForLease). ----
  // Its idle slots, most recently idle first (a lane over the pool's SlotStack cells).
  SlotStack::Lane idle;
  // When a slot of it was last leased (monotonic ns); the lease picks the instance with the
  // smallest. An instance never leased holds minus the time it was created, so it sorts first,
  // the newest first (as it would have been on top of a single LIFO).
  std::atomic<int64_t> last_leased_ns{0};
  // Benched until then (monotonic ns); 0 while in service. Set by the worker that ejects it
  // (0 -> t), cleared by the acceptor when the time has passed (t -> 0).
  std::atomic<int64_t> ejected_until_ns{0};
  // Failures in a row (reset by a success and at ejection).
  std::atomic<uint32_t> failures{0};
  // Registered slots (live: idle or busy).
  std::atomic<int32_t> slots{0};

  // ---- Cold: ejection history, the key. ----
  // Length of its last bench and when it came back (0: never): a bench that starts before the
  // instance has stayed back as long as its last bench lasted is twice as long (up to 5 min).
  alignas(64) std::atomic<int64_t> last_bench_ns{0};
  std::atomic<int64_t> returned_ns{0};
  std::atomic<uint64_t> ejections{0};
  // The L7px-Service id or the peer IP. Written by the acceptor under the table's mutex, and
  // only while no slot refers to the instance, so a worker holding one of its slots may read it.
  std::string key;
};

// The instances of one pool, by index. Indexes are stable: an instance is never freed, and is
// reassigned to another key only when the table is full and it has no slots and is not benched.
//
// Publication: instances live in blocks the acceptor allocates as the table grows (never on a
// worker); a block is published (release) before size() counts it (release), so a reader that
// loads size() with acquire sees every instance below it.
class InstanceTable {
 public:
  static constexpr uint32_t kBlock = 64;
  static constexpr uint32_t kMaxBlocks = 64;
  static constexpr uint32_t kMaxInstances = kBlock * kMaxBlocks;
  static constexpr uint32_t kNone = UINT32_MAX;

  InstanceTable() = default;
  ~InstanceTable();
  InstanceTable(const InstanceTable&) = delete;
  InstanceTable& operator=(const InstanceTable&) = delete;

  // Any thread: how many indexes are in use (a high-water mark), and one of them.
  uint32_t size() const { return size_.load(std::memory_order_acquire); }
  Instance& at(uint32_t i) const {
    return blocks_[i / kBlock].load(std::memory_order_relaxed)[i % kBlock];
  }

  // Acceptor only. The index of the instance named `key`, created (or an unused one reassigned)
  // when there is none; kNone when all kMaxInstances have slots or are benched.
  uint32_t Acquire(std::string_view key, int64_t now_ns);

  // A slot of instance `i` was registered (acceptor) / is gone for good (any thread). Keep
  // live(), the number of instances with slots, which max_ejected is a share of.
  void SlotAdded(uint32_t i) {
    if (at(i).slots.fetch_add(1, std::memory_order_relaxed) == 0) {
      live_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  void SlotRemoved(uint32_t i) {
    if (at(i).slots.fetch_sub(1, std::memory_order_relaxed) == 1) {
      live_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  int32_t live() const { return live_.load(std::memory_order_relaxed); }

  // Instances benched now (a gauge): raised by the worker that ejects one, lowered by the
  // acceptor when one returns.
  std::atomic<int32_t> ejected{0};

  // Admin: the key of instance `i` (under the mutex the acceptor writes keys with).
  std::string KeyOf(uint32_t i) const;

 private:
  void Reset(Instance& in, std::string_view key, int64_t now_ns);

  std::atomic<Instance*> blocks_[kMaxBlocks] = {};
  std::atomic<uint32_t> size_{0};
  std::atomic<int32_t> live_{0};
  mutable std::mutex mu_;                             // keys; never taken by a worker
  std::unordered_map<std::string, uint32_t> by_key_;  // acceptor (and admin, for KeyOf)
};

}  // namespace l7px::slots
