#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "acceptor/slot_ring.h"
#include "base/clock.h"

namespace l7px::acceptor {

inline constexpr int kMaxWorkers = 256;

// Limits of one pool, fixed for the pool's lifetime (a reload builds a new snapshot).
struct PoolSettings {
  uint32_t max_slots = 4096;
  uint32_t queue = 1024;
  int64_t queue_timeout_ns = 1'000'000'000;
  int64_t response_timeout_ns = 60'000'000'000;
  uint32_t retries = 1;
  std::string token;
};

// A named set of slots, shared by the acceptor and every worker.
//
// The idle ring holds slots ready for a request. Requests that find it empty wait on their own
// worker; each worker publishes the enqueue time of its oldest waiter for this pool in
// oldest_wait_[worker] (0 = none), so whoever makes a slot idle (a worker releasing one, the
// acceptor registering one) can wake the worker holding the globally oldest waiter.
//
// Lost wake-up freedom (Dekker): a waiter publishes oldest_wait, passes SyncPoint(), then tries
// the ring once more; a releaser pushes to the ring, passes SyncPoint(), then reads oldest_wait.
// SyncPoint is an acq_rel read-modify-write of one shared word: the two RMWs are ordered, and the
// later one synchronizes with the earlier, so at least one side sees the other's write. (An RMW
// rather than a fence, so ThreadSanitizer can reason about it.)
class Pool {
 public:
  Pool(uint32_t id, std::string name, PoolSettings settings, int num_workers)
      : id_(id),
        name_(std::move(name)),
        settings_(std::move(settings)),
        num_workers_(num_workers),
        // Dead slots may linger in the ring until popped: room for twice the live maximum.
        idle_(size_t{settings_.max_slots} * 2) {}

  uint32_t id() const { return id_; }
  const std::string& name() const { return name_; }
  const PoolSettings& settings() const { return settings_; }
  SlotRing& idle() { return idle_; }

  // Waiter board (see class comment).
  void PublishOldestWait(int worker, int64_t enqueue_ns) {
    oldest_wait_[worker].value.store(enqueue_ns, std::memory_order_relaxed);
  }
  void SyncPoint() { sync_.fetch_add(1, std::memory_order_acq_rel); }
  // Worker with the oldest waiter other than `exclude` (-1 = none). Call after SyncPoint().
  int PickWorkerToWake(int exclude) const {
    int best = -1;
    int64_t best_ns = 0;
    for (int w = 0; w < num_workers_; ++w) {
      if (w == exclude) continue;
      const int64_t t = oldest_wait_[w].value.load(std::memory_order_relaxed);
      if (t != 0 && (best < 0 || t < best_ns)) {
        best = w;
        best_ns = t;
      }
    }
    return best;
  }

  // Gauges and counters (relaxed; read by stats).
  std::atomic<int64_t> registered{0};  // live slots: idle + busy
  std::atomic<int64_t> busy{0};
  std::atomic<int64_t> waiting{0};     // requests queued on all workers
  std::atomic<uint64_t> registrations_ok{0};
  std::atomic<uint64_t> registrations_refused{0};

 private:
  struct alignas(64) PaddedTime {
    std::atomic<int64_t> value{0};
  };

  const uint32_t id_;
  const std::string name_;
  const PoolSettings settings_;
  const int num_workers_;
  SlotRing idle_;
  alignas(64) std::atomic<uint64_t> sync_{0};
  PaddedTime oldest_wait_[kMaxWorkers];
};

}  // namespace l7px::acceptor
