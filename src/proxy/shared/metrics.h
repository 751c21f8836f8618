#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "slots/pool.h"

namespace l7px::proxy {

// Data-path metrics. Every counter has exactly one writer (its worker), so it is bumped with a
// relaxed load + store (no locked instruction, no shared cache line); a scrape sums the workers.

inline void Bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// Latency histogram with fixed buckets (seconds), Prometheus-style cumulative at render time.
class Histogram {
 public:
  static constexpr double kBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                       0.25,   0.5,   1,      2.5,   5,    10,    30,   60};
  static constexpr int kBuckets = sizeof(kBounds) / sizeof(kBounds[0]);

  void Observe(int64_t ns);

  std::atomic<uint64_t> buckets[kBuckets + 1] = {};  // last = +Inf
  std::atomic<uint64_t> count{0};
  std::atomic<uint64_t> sum_ns{0};
};

// One worker's numbers for one pool.
struct PoolMetrics {
  std::atomic<uint64_t> responses[600] = {};  // by status code
  std::atomic<uint64_t> shed_queue_full{0};
  std::atomic<uint64_t> shed_queue_timeout{0};
  std::atomic<uint64_t> shed_closing{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> served{0};  // complete responses from a service (not tunnels)
  Histogram duration;
  Histogram queue_wait;
};

// Per-worker table of PoolMetrics, allocated by the worker on a pool's first request and
// published with a release store so scrapes can read it.
class WorkerPoolMetrics {
 public:
  WorkerPoolMetrics() = default;
  WorkerPoolMetrics(const WorkerPoolMetrics&) = delete;
  WorkerPoolMetrics& operator=(const WorkerPoolMetrics&) = delete;
  ~WorkerPoolMetrics() {
    for (auto& p : pools_) delete p.load();
  }
  // Worker only.
  PoolMetrics& For(uint32_t pool_id) {
    PoolMetrics* m = pools_[pool_id].load(std::memory_order_relaxed);
    if (m == nullptr) {
      m = new PoolMetrics();
      pools_[pool_id].store(m, std::memory_order_release);
    }
    return *m;
  }
  // Any thread; nullptr when the worker never served the pool.
  const PoolMetrics* Get(uint32_t pool_id) const {
    return pools_[pool_id].load(std::memory_order_acquire);
  }

 private:
  std::atomic<PoolMetrics*> pools_[slots::kMaxPools] = {};
};

}  // namespace l7px::proxy
