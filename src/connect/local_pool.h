#pragma once

// The keep-alive connections `l7px connect` keeps to the local service, shared by every slot
// thread of every proxy.
//
// Invariants:
// - leased_ + idle_.size() <= limit_ at all times: never more than `limit` connections to the
//   service, and never more than `limit` requests in flight there (a request runs only on a
//   leased connection). A lease is taken before a connection is dialed, so a dial in progress
//   counts too.
// - A connection is in idle_ only between exchanges, complete ones whose response said
//   keep-alive; the most recently used is at the back and is leased first (its server thread
//   is likely awake).
// - Only mu_ guards the state; Acquire waits on cv_, which Release and Wake() notify, so a stop
//   (Wake after setting the Stopper) ends every wait.

#include <condition_variable>
#include <mutex>
#include <vector>

#include "base/unique_fd.h"
#include "connect/net.h"

namespace l7px::connect {

class LocalPool {
 public:
  LocalPool(Endpoint to, int limit) : to_(std::move(to)), limit_(limit) {}

  struct Lease {
    bool ok = false;  // false: stopped while waiting (no lease held)
    UniqueFd fd;      // an idle connection, or invalid: the holder dials (DialFor)
    bool reused = false;
  };
  // Waits for a free lease (fewer than `limit` leased) until `stops` says so for `kind`, or
  // until the peer of `watch_fd` (when >= 0: the slot whose request waits) hung up, so that a
  // request whose client left is never sent (ok false in both cases). An idle connection that
  // the service closed meanwhile (readable: EOF or stray bytes) is dropped here rather than
  // handed out.
  Lease Acquire(const Stops& stops, WaitKind kind, int watch_fd = -1);
  // Like Acquire, but returns at once (ok false) when no lease is free.
  Lease TryAcquire();
  // Dials a fresh connection for a lease holder.
  UniqueFd Dial(const Stops& stops, std::string* error) const;
  // Ends a lease. A valid `fd` with `keep` goes back to the idle connections; otherwise it is
  // closed (or was moved away, e.g. into a tunnel, which the bound no longer counts).
  void Release(UniqueFd fd, bool keep);
  // Closes idle connections the service has closed (see Acquire); returns how many are open
  // (idle + leased) afterwards.
  int Prune();
  // Closes every idle connection (the service is down, or the agent stops).
  void CloseIdle();
  // Wakes every Acquire so it re-checks its stops.
  void Wake() { cv_.notify_all(); }
  int limit() const { return limit_; }
  bool unix_socket() const { return to_.is_unix; }

 private:
  // Whether an idle connection is unusable (see local_pool.cc); `tcp`: acknowledge first.
  static bool ClosedByPeer(int fd, bool tcp);
  static bool HungUp(int fd);
  // Takes a lease (and the most recent idle connection, if any) under mu_.
  UniqueFd TakeLocked();
  // Makes a lease of it, once checked (without mu_) that the service did not close it.
  Lease Checked(UniqueFd fd);

  const Endpoint to_;
  const int limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<UniqueFd> idle_;
  int leased_ = 0;
  int waiting_ = 0;  // threads in Acquire waiting for a lease
};

}  // namespace l7px::connect
