#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "slots/pool.h"

namespace l7px::proxy {

// Quiescent-state-based reclamation for the immutable snapshots workers and the acceptor read
// (route tables, server limits, pool settings). Readers never hold a snapshot pointer across a
// pass of their event loop:
//   reader, each loop pass:  Online() ... read snapshots ... Offline() ... wait for I/O
// Reader ids: worker i is i; the acceptor thread is kAcceptorReader.
// A writer publishes a new pointer, then Retire()s the old one; it is freed once every reader
// was offline or started a later pass since the retirement. Readers pay two relaxed-ish stores
// to their own cache line per loop pass, nothing per request.
class Rcu {
 public:
  static constexpr int kAcceptorReader = slots::kMaxWorkers;
  static constexpr int kMaxReaders = slots::kMaxWorkers + 1;

  explicit Rcu(int readers) : readers_(readers) {}
  Rcu(const Rcu&) = delete;
  Rcu& operator=(const Rcu&) = delete;
  ~Rcu() {
    for (auto& r : retired_) r.free();
  }

  // Reader side (worker `id`).
  void Online(int id) {
    slots_[id].value.store(epoch_.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
  }
  void Offline(int id) { slots_[id].value.store(0, std::memory_order_seq_cst); }

  // Writer side (one control thread). The new pointer must already be published.
  void Retire(std::function<void()> free) {
    const uint64_t e = epoch_.fetch_add(1, std::memory_order_seq_cst) + 1;
    retired_.push_back({e, std::move(free)});
    Reclaim();
  }
  // Frees what no reader can still see. Call periodically from the writer thread.
  void Reclaim() {
    size_t kept = 0;
    for (size_t i = 0; i < retired_.size(); ++i) {
      if (Safe(retired_[i].epoch)) {
        retired_[i].free();
      } else {
        retired_[kept++] = std::move(retired_[i]);
      }
    }
    retired_.resize(kept);
  }
  size_t pending() const { return retired_.size(); }

 private:
  struct Retired {
    uint64_t epoch;
    std::function<void()> free;
  };
  struct alignas(64) Slot {
    std::atomic<uint64_t> value{0};
  };

  bool Safe(uint64_t retire_epoch) const {
    for (int i = 0; i < readers_; ++i) {
      const uint64_t seen = slots_[i].value.load(std::memory_order_seq_cst);
      if (seen != 0 && seen < retire_epoch) return false;
    }
    return true;
  }

  const int readers_;
  std::atomic<uint64_t> epoch_{1};
  Slot slots_[kMaxReaders];
  std::vector<Retired> retired_;
};

}  // namespace l7px::proxy
