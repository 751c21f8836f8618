#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <utility>

#include "base/unique_fd.h"

namespace l7px::slots {

// One registered service connection: carries one request at a time and is kept alive.
//
// Ownership: the acceptor thread creates every Slot, is the only one that closes its fd and the
// only one that frees it. Between those points the Slot pointer is held by exactly one of: the
// pool's idle stack, a worker that leased it, or the acceptor (while registering or retiring).
//
// State is one atomic word: (epoch << 2) | state. Every lease bumps the epoch, so the acceptor's
// liveness watch (a poll armed while the slot was idle) can tell a stale readiness event from one
// that really happened while the slot sat idle:
//   IDLE --TryLease (worker)------> BUSY (epoch+1)
//   BUSY --ReleaseIdle (worker)---> IDLE   (then pushed back to the idle stack)
//   BUSY --MarkDead (worker)------> DEAD   (then handed to the acceptor to retire)
//   IDLE --TryKillIdle (acceptor)-> DEAD   (peer closed or sent bytes while idle; idle_watch.h)
class Slot {
 public:
  enum class State : uint8_t { kIdle = 0, kBusy = 1, kDead = 2 };

  Slot(UniqueFd fd, uint32_t pool_id, std::string service_id)
      : fd_(std::move(fd)),
        pool_id_(pool_id),
        service_id_(std::move(service_id)),
        tcp_(IsTcp(fd_.get())) {}
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  int fd() const { return fd_.get(); }
  uint32_t pool_id() const { return pool_id_; }
  const std::string& service_id() const { return service_id_; }
  // A TCP connection (not a UNIX socket): its peer may hold bytes back for an ACK (Nagle).
  bool tcp() const { return tcp_; }
  // A connection l7px dialed itself (a pool's upstreams, acceptor/dialer.h), not one a service
  // registered. Set by the acceptor before the slot is first pushed; constant afterwards.
  bool dialed() const { return dialed_; }
  void set_dialed() { dialed_ = true; }

  // Ends the connection now, for the service and for every operation on it (they complete).
  // Any thread that made the slot DEAD (slot_lifecycle.h), or the acceptor retiring it. A slot
  // l7px dialed over TCP is reset (connect(AF_UNSPEC); its SO_LINGER is {1, 0} too): with a FIN
  // the side that closes first keeps a TIME_WAIT socket, and for dialed slots that would be
  // l7px, once per closed connection. Registered slots get shutdown(): their services dialed.
  void ShutDown() const {
    if (dialed_ && tcp_) {
      sockaddr unspec{};
      unspec.sa_family = AF_UNSPEC;
      if (::connect(fd_.get(), &unspec, sizeof(unspec)) == 0) return;
    }
    ::shutdown(fd_.get(), SHUT_RDWR);
  }

  State state() const { return static_cast<State>(word_.load(std::memory_order_acquire) & 3); }
  uint64_t epoch() const { return word_.load(std::memory_order_acquire) >> 2; }

  // Worker: IDLE -> BUSY. False if the slot is dead (the caller hands it to the acceptor).
  bool TryLease() {
    uint64_t w = word_.load(std::memory_order_acquire);
    while ((w & 3) == static_cast<uint64_t>(State::kIdle)) {
      const uint64_t next = (((w >> 2) + 1) << 2) | static_cast<uint64_t>(State::kBusy);
      if (word_.compare_exchange_weak(w, next, std::memory_order_acq_rel)) return true;
    }
    return false;
  }
  // Worker that holds the lease: BUSY -> IDLE, before pushing the slot back to the idle stack.
  void ReleaseIdle() { Set(State::kIdle); }
  // Worker that holds the lease: BUSY -> DEAD, before handing the slot to the acceptor.
  void MarkDead() { Set(State::kDead); }
  // Acceptor: IDLE -> DEAD only if nobody leased it since `epoch` was observed.
  bool TryKillIdle(uint64_t epoch) {
    uint64_t expected = (epoch << 2) | static_cast<uint64_t>(State::kIdle);
    return word_.compare_exchange_strong(expected, (epoch << 2) | uint64_t{2},
                                         std::memory_order_acq_rel);
  }

  // Set by the acceptor when the service closed the connection while a worker held the slot.
  // Both sides pass Pool::SyncPoint() between their write and their read (flag / idle state),
  // so at least one of them sees the other and kills the slot.
  std::atomic<bool> peer_closed{false};

  // Its cell in the pool's idle stack (SlotStack::Bind, acceptor thread, before the slot is
  // first pushed; constant afterwards).
  uint32_t stack_cell = UINT32_MAX;
  // Its instance in the pool (Pool::AttachSlot, acceptor thread, before the slot is first
  // pushed; constant afterwards).
  uint32_t instance = 0;

  // Acceptor-thread-only bookkeeping.
  bool poll_armed = false;
  bool retiring = false;
  uint32_t table_index = 0;        // position in the acceptor's slot table (completion tags)
  uint32_t upstream = UINT32_MAX;  // a dialed slot's address in the acceptor's Dialer
  int64_t filed_ns = 0;            // when the Dialer got it (monotonic)
  // The liveness watch (idle_watch.h): its mode, the generation in its completion tag, and what
  // the last tick saw.
  bool watch_wide = false;
  bool watch_seen_idle = false;
  uint32_t poll_generation = 0;
  uint64_t watch_epoch = 0;

  // Closes the fd (acceptor only, when no operation references it any more).
  void CloseFd() { fd_.Reset(); }

 private:
  void Set(State s) {
    uint64_t w = word_.load(std::memory_order_relaxed);
    word_.store((w & ~uint64_t{3}) | static_cast<uint64_t>(s), std::memory_order_release);
  }

  UniqueFd fd_;
  uint32_t pool_id_;
  std::string service_id_;
  std::atomic<uint64_t> word_{0};
  bool tcp_;
  bool dialed_ = false;

  static bool IsTcp(int fd) {
    int domain = 0;
    socklen_t len = sizeof(domain);
    return fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
           (domain == AF_INET || domain == AF_INET6);
  }
};

}  // namespace l7px::slots
