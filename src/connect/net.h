#pragma once

// Blocking-style socket helpers for `l7px connect`, on nonblocking sockets: every wait polls
// the socket together with the agent's stop descriptors (Stopper), so a signal or a withdrawal
// interrupts any connect, read, write or sleep without signals reaching the threads.

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace l7px::connect {

using Clock = std::chrono::steady_clock;

// An address to dial: "HOST:PORT", "[v6]:PORT" or "unix:/path". Host names are resolved when
// dialing (getaddrinfo), so a proxy that moves is found again.
struct Endpoint {
  std::string text;  // as written, for logs
  bool is_unix = false;
  std::string path;  // unix
  std::string host;  // inet, without brackets
  std::string port;
};
// InvalidArgument naming the address when it is not one of the forms above, or has no host or
// a port of 0.
absl::StatusOr<Endpoint> ParseEndpoint(std::string_view text);

// Two level-triggered eventfds shared by many threads. `quit` ends idle waits (between
// requests, dialing, backing off); `abort` ends every wait, also in the middle of an exchange.
// Once signalled they stay signalled: a Stopper is for one lifetime (a registration period, or
// the process).
class Stopper {
 public:
  Stopper();
  bool ok() const { return quit_fd_.valid() && abort_fd_.valid(); }
  void Quit();
  void Abort();
  bool quitting() const { return quit_.load(std::memory_order_acquire); }
  bool aborting() const { return abort_.load(std::memory_order_acquire); }
  int quit_fd() const { return quit_fd_.get(); }
  int abort_fd() const { return abort_fd_.get(); }

 private:
  UniqueFd quit_fd_;
  UniqueFd abort_fd_;
  std::atomic<bool> quit_{false};
  std::atomic<bool> abort_{false};
};

// Which stop descriptors a wait watches: kIdle both stoppers' quit and abort; kBusy only the
// abort of each. `b` may be null.
enum class WaitKind { kIdle, kBusy };
struct Stops {
  const Stopper* a = nullptr;  // the process: SIGTERM (quit), grace over (abort)
  const Stopper* b = nullptr;  // the registration period: withdrawal (quit)
  bool Stopped(WaitKind kind) const;
};

enum class WaitResult { kReady, kStopped, kTimeout, kError };

// Waits until `fd` has one of `events` (poll flags), a stop in `stops` for `kind`, or
// `deadline`. fd < 0 just sleeps until a stop or the deadline.
WaitResult WaitFd(int fd, short events, const Stops& stops, WaitKind kind,
                  Clock::time_point deadline);
inline Clock::time_point Forever() { return Clock::now() + std::chrono::hours(24 * 365); }

// Connects (nonblocking) to the endpoint; invalid fd with `*error` set on failure, stop or
// timeout. TCP sockets get TCP_NODELAY; `keepalive` adds TCP keepalive probes (idle slots to a
// proxy may sit for hours).
UniqueFd Dial(const Endpoint& to, const Stops& stops, WaitKind kind,
              std::chrono::milliseconds timeout, bool keepalive, std::string* error);

// recv/send once, without waiting: >0 bytes, 0 EOF (recv only), -1 with errno (EAGAIN = retry
// after a wait).
ssize_t RecvSome(int fd, char* buf, size_t cap);
ssize_t SendSome(int fd, const char* buf, size_t len);
// Sends everything, waiting as needed; false on error, stop (for `kind`) or past `deadline`.
bool SendAll(int fd, std::string_view bytes, const Stops& stops, WaitKind kind,
             Clock::time_point deadline);

std::string ErrnoText(int err);

// Exponential backoff with jitter: each Next() is uniform in [b/2, b], b doubling from `min`
// up to `max`.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds min, std::chrono::milliseconds max, uint32_t seed);
  std::chrono::milliseconds Next();
  void Reset() { next_ = min_; }
  void SetRange(std::chrono::milliseconds min, std::chrono::milliseconds max);

 private:
  int64_t min_;
  int64_t max_;
  int64_t next_;
  std::minstd_rand rng_;
};

}  // namespace l7px::connect
