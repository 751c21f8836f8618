#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "acceptor/handshake.h"
#include "slots/pool.h"
#include "slots/slot.h"
#include "base/address.h"
#include "base/unique_fd.h"

namespace l7px::acceptor {

// Message kinds posted into the acceptor's ring by workers (io/mailbox.h).
inline constexpr uint8_t kMsgRetireSlot = 0xA1;  // payload: Slot*; the worker is done with it
// Payload: Slot*, leased and accounted (slots::AccountLeasedSlotMoved): another process holds its
// connection now; close our copy of the fd without shutting the connection down.
inline constexpr uint8_t kMsgSlotMoved = 0xA2;
// Payload: AdoptedSlot*, owned by the acceptor from then on: a slot received from the process
// this one took over from, registered without a handshake.
inline constexpr uint8_t kMsgAdoptSlot = 0xA3;
// Stop / resume accepting registrations (during an upgrade handoff).
inline constexpr uint8_t kMsgPauseRegistrations = 0xA4;
inline constexpr uint8_t kMsgResumeRegistrations = 0xA5;
// A takeover received every slot it will: dial what the pools' upstreams still miss.
inline constexpr uint8_t kMsgReleaseDials = 0xA6;
// Message kinds the acceptor posts into a worker's ring.
inline constexpr uint8_t kMsgSlotAvailable = 0xB1;  // payload: pool id

struct AdoptedSlot {
  UniqueFd fd;
  std::string pool;
  std::string service;
};

struct RegisterListener {
  UniqueFd fd;
  SocketAddress address;
};

struct AcceptorOptions {
  std::vector<RegisterListener> listeners;
  HandshakeParser::Mode handshake = HandshakeParser::Mode::kUpgrade;
  std::string default_pool;
  std::vector<Cidr> allow;  // empty: loopback and UNIX peers only
  slots::PoolRegistry* pools = nullptr;
  std::vector<int> worker_ring_fds;
  int64_t handshake_timeout_ns = 10'000'000'000;
  // Pool settings are freed once replaced and no reader can see them (proxy/rcu.h). The acceptor
  // reads them only while it handles completions: it calls quiescent(true) before each wait for
  // more (it holds none then) and quiescent(false) when it wakes. Optional.
  std::function<void(bool quiescent)> quiescent;
  // Taking over from another process: dial no upstream (dialer.h) before kMsgReleaseDials, so
  // the slots adopted from it count first.
  bool hold_dials = false;
};

// The in-process control plane for slots, on its own thread and io_uring: accepts registration
// connections, runs the handshake, publishes slots into their pool's idle stack, prunes slots
// whose service closed them while idle, and closes/frees every slot a worker retires.
// It is the only code that closes a slot's fd or frees a Slot.
class Acceptor {
 public:
  explicit Acceptor(AcceptorOptions options);
  ~Acceptor();
  Acceptor(const Acceptor&) = delete;
  Acceptor& operator=(const Acceptor&) = delete;

  // Starts the thread; returns once its ring exists (ring_fd() is valid) or with the error.
  absl::Status Start();
  // Asks the thread to stop and joins it; closes every slot it still owns.
  void Stop();
  int ring_fd() const { return ring_fd_.load(); }

 private:
  class Loop;
  AcceptorOptions options_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  std::atomic<int> ring_fd_{-1};
  std::atomic<bool> stop_{false};
};

}  // namespace l7px::acceptor
