#include "connect/net.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/address.h"

namespace l7px::connect {

absl::StatusOr<Endpoint> ParseEndpoint(std::string_view text) {
  const absl::StatusOr<AddressParts> parts = SplitAddress(text);
  if (!parts.ok()) return parts.status();
  Endpoint out;
  out.text = std::string(text);
  out.is_unix = parts->is_unix;
  if (parts->is_unix) {
    out.path = std::string(parts->path);
    return out;
  }
  if (parts->host.empty() || parts->port == 0) {
    return absl::InvalidArgumentError("address \"" + std::string(text) +
                                      "\" needs a host and a port other than 0");
  }
  out.host = std::string(parts->host);
  out.port = std::to_string(parts->port);
  return out;
}

Stopper::Stopper()
    : quit_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      abort_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

namespace {
void Signal(int fd) {
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(fd, &one, sizeof(one));
}
}  // namespace

void Stopper::Quit() {
  quit_.store(true, std::memory_order_release);
  Signal(quit_fd_.get());
}

void Stopper::Abort() {
  abort_.store(true, std::memory_order_release);
  quit_.store(true, std::memory_order_release);
  Signal(abort_fd_.get());
  Signal(quit_fd_.get());
}

bool Stops::Stopped(WaitKind kind) const {
  for (const Stopper* s : {a, b}) {
    if (s == nullptr) continue;
    if (s->aborting() || (kind == WaitKind::kIdle && s->quitting())) return true;
  }
  return false;
}

WaitResult WaitFd(int fd, short events, const Stops& stops, WaitKind kind,
                  Clock::time_point deadline) {
  while (true) {
    if (stops.Stopped(kind)) return WaitResult::kStopped;
    pollfd fds[5];
    nfds_t n = 0;
    for (const Stopper* s : {stops.a, stops.b}) {
      if (s == nullptr) continue;
      fds[n++] = {s->abort_fd(), POLLIN, 0};
      if (kind == WaitKind::kIdle) fds[n++] = {s->quit_fd(), POLLIN, 0};
    }
    const nfds_t self = n;
    if (fd >= 0) fds[n++] = {fd, events, 0};
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return WaitResult::kTimeout;
    const int r = poll(fds, n, static_cast<int>(std::min<int64_t>(left, 1 << 30)));
    if (r < 0) {
      if (errno == EINTR) continue;
      return WaitResult::kError;
    }
    if (fd >= 0 && fds[self].revents != 0) return WaitResult::kReady;
    // A stop descriptor fired (re-checked at the top) or the time ran out (checked there too).
  }
}

namespace {

UniqueFd ConnectOne(int family, const sockaddr* sa, socklen_t len, const Stops& stops,
                    WaitKind kind, Clock::time_point deadline, bool keepalive, std::string* error) {
  UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) {
    *error = "socket: " + ErrnoText(errno);
    return UniqueFd();
  }
  if (::connect(fd.get(), sa, len) != 0) {
    if (errno != EINPROGRESS && errno != EAGAIN) {
      *error = ErrnoText(errno);
      return UniqueFd();
    }
    const WaitResult w = WaitFd(fd.get(), POLLOUT, stops, kind, deadline);
    if (w != WaitResult::kReady) {
      *error = w == WaitResult::kTimeout ? "connect timed out" : "connect interrupted";
      return UniqueFd();
    }
    int err = 0;
    socklen_t err_len = sizeof(err);
    getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &err_len);
    if (err != 0) {
      *error = ErrnoText(err);
      return UniqueFd();
    }
  }
  if (family != AF_UNIX) {
    const int one = 1;
    setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (keepalive) {
      setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
      const int idle = 60, interval = 10, count = 3;
      setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
      setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
      setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
    }
  }
  return fd;
}

}  // namespace

UniqueFd Dial(const Endpoint& to, const Stops& stops, WaitKind kind,
              std::chrono::milliseconds timeout, bool keepalive, std::string* error) {
  const Clock::time_point deadline = Clock::now() + timeout;
  if (to.is_unix) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, to.path.data(), std::min(to.path.size(), sizeof(un.sun_path) - 1));
    return ConnectOne(AF_UNIX, reinterpret_cast<const sockaddr*>(&un), sizeof(un), stops, kind,
                      deadline, keepalive, error);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const int rc = getaddrinfo(to.host.c_str(), to.port.c_str(), &hints, &list);
  if (rc != 0) {
    *error = std::string("resolve ") + to.host + ": " + gai_strerror(rc);
    return UniqueFd();
  }
  UniqueFd fd;
  for (addrinfo* ai = list; ai != nullptr && !fd.valid(); ai = ai->ai_next) {
    fd = ConnectOne(ai->ai_family, ai->ai_addr, ai->ai_addrlen, stops, kind, deadline, keepalive,
                    error);
    if (stops.Stopped(kind)) break;
  }
  freeaddrinfo(list);
  return fd;
}

ssize_t RecvSome(int fd, char* buf, size_t cap) {
  while (true) {
    const ssize_t n = recv(fd, buf, cap, 0);
    if (n >= 0 || errno != EINTR) return n;
  }
}

ssize_t SendSome(int fd, const char* buf, size_t len) {
  while (true) {
    const ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0 || errno != EINTR) return n;
  }
}

bool SendAll(int fd, std::string_view bytes, const Stops& stops, WaitKind kind,
             Clock::time_point deadline) {
  while (!bytes.empty()) {
    const ssize_t n = SendSome(fd, bytes.data(), bytes.size());
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
    if (WaitFd(fd, POLLOUT, stops, kind, deadline) != WaitResult::kReady) return false;
  }
  return true;
}

std::string ErrnoText(int err) {
  char buf[128];
  return strerror_r(err, buf, sizeof(buf));  // GNU: returns the message (maybe not `buf`)
}

Backoff::Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, uint32_t seed)
    : min_(1), max_(1), next_(1), rng_(seed) {
  SetRange(min, max);
}

void Backoff::SetRange(std::chrono::milliseconds min, std::chrono::milliseconds max) {
  min_ = std::max<int64_t>(1, min.count());
  max_ = std::max<int64_t>(min_, max.count());
  next_ = std::clamp(next_, min_, max_);
}

std::chrono::milliseconds Backoff::Next() {
  const int64_t base = next_;
  next_ = std::min(max_, next_ * 2);
  std::uniform_int_distribution<int64_t> jitter(base / 2, base);
  return std::chrono::milliseconds(jitter(rng_));
}

}  // namespace l7px::connect
