#include "connect/local_pool.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <chrono>

namespace l7px::connect {

namespace {
constexpr std::chrono::milliseconds kLocalConnectTimeout{3000};
}  // namespace

bool LocalPool::ClosedByPeer(int fd, bool tcp) {
  // An idle connection has nothing to read: readable means EOF, a reset, or bytes the service
  // sent unasked; none of them leaves it usable. A TCP service may hold such bytes back (Nagle)
  // until the agent acknowledges its last response, and the agent's kernel delays that
  // acknowledgement to ride on the next request: the bytes would then arrive right after the
  // request went out, be taken for its response, and leave the connection one response behind
  // for good. So the acknowledgement is sent now (TCP_QUICKACK), before the look; on loopback
  // the held bytes are delivered within that call.
  if (tcp) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
  }
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) != 0;
}

bool LocalPool::HungUp(int fd) {
  // l7px closes a slot whose client left (it cannot be reused mid-exchange): the FIN shows as
  // POLLRDHUP even while request bytes are still unread.
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

UniqueFd LocalPool::TakeLocked() {
  ++leased_;
  if (idle_.empty()) return UniqueFd();
  UniqueFd fd = std::move(idle_.back());
  idle_.pop_back();
  return fd;
}

// The check for a closed idle connection is a syscall: it is made after the lock is let go, so
// slot threads never queue on the lock behind one (on a small machine that turned every
// request into several futex waits). A closed one is dropped and the next idle one taken; the
// lease is already held, so the bound is kept throughout.
LocalPool::Lease LocalPool::Checked(UniqueFd fd) {
  Lease lease;
  lease.ok = true;
  while (fd.valid()) {
    if (!ClosedByPeer(fd.get(), !to_.is_unix)) {
      lease.fd = std::move(fd);
      lease.reused = true;
      break;
    }
    fd.Reset();
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.empty()) break;
    fd = std::move(idle_.back());
    idle_.pop_back();
  }
  return lease;
}

LocalPool::Lease LocalPool::Acquire(const Stops& stops, WaitKind kind, int watch_fd) {
  UniqueFd fd;
  {
    std::unique_lock<std::mutex> lock(mu_);
    while (leased_ >= limit_) {
      if (stops.Stopped(kind)) return Lease{};
      // Checked at each wake-up (at least every 100 ms): l7px gave up on the request. Only
      // while waiting, when every lease is taken anyway.
      if (watch_fd >= 0 && HungUp(watch_fd)) return Lease{};
      // Bounded, so a stop whose Wake() came between the check and the wait is seen anyway.
      ++waiting_;
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      --waiting_;
    }
    fd = TakeLocked();
  }
  return Checked(std::move(fd));
}

LocalPool::Lease LocalPool::TryAcquire() {
  UniqueFd fd;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (leased_ >= limit_) return Lease{};
    fd = TakeLocked();
  }
  return Checked(std::move(fd));
}

UniqueFd LocalPool::Dial(const Stops& stops, std::string* error) const {
  return connect::Dial(to_, stops, WaitKind::kBusy, kLocalConnectTimeout, false, error);
}

void LocalPool::Release(UniqueFd fd, bool keep) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --leased_;
    if (keep && fd.valid()) idle_.push_back(std::move(fd));
    wake = waiting_ > 0;
  }
  fd.Reset();  // outside the lock
  if (wake) cv_.notify_one();
}

int LocalPool::Prune() {
  std::vector<UniqueFd> closed;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < idle_.size();) {
    if (ClosedByPeer(idle_[i].get(), !to_.is_unix)) {
      closed.push_back(std::move(idle_[i]));
      idle_.erase(idle_.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  return leased_ + static_cast<int>(idle_.size());
}

void LocalPool::CloseIdle() {
  std::vector<UniqueFd> closed;
  std::lock_guard<std::mutex> lock(mu_);
  closed.swap(idle_);
}

}  // namespace l7px::connect
