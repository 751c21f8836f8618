#pragma once

#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "handoff/message.h"
#include "base/unique_fd.h"

namespace l7px::handoff {

// How long either side waits for the other's Hello (and the old side for listener acks).
inline constexpr int kHelloTimeoutMs = 5'000;

// One end of a handoff connection: whole messages (handoff_message.h) with their fds, over a
// blocking SOCK_SEQPACKET UNIX socket. Used by the upgrade thread of the old process and by the
// main thread of the new one, never on a worker.
class Channel {
 public:
  Channel() = default;
  explicit Channel(UniqueFd fd);

  // Connects to a running l7px's upgrade socket.
  static absl::StatusOr<Channel> Connect(const std::string& path);

  // Sends `message` with `fds` attached (their count must be message.fd_count()).
  absl::Status Send(const Message& message, absl::Span<const int> fds = {});

  struct Received {
    Message message;
    std::vector<UniqueFd> fds;  // exactly message.fd_count() of them, close-on-exec
  };
  // Waits up to `timeout_ms` for one message. DeadlineExceeded on timeout, Unavailable when the
  // peer closed, InvalidArgument for a malformed message or a wrong number of fds (any fds that
  // came with it are closed).
  absl::StatusOr<Received> Receive(int timeout_ms);

  // Receives the next message and checks its type; an Abort or Refuse from the peer becomes an
  // error carrying the peer's reason.
  absl::StatusOr<Received> Expect(Type type, int timeout_ms);

  // The peer's pid/uid/gid (SO_PEERCRED).
  absl::StatusOr<ucred> PeerCredentials() const;

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }

 private:
  UniqueFd fd_;
};

// Binds the upgrade socket at `path`, owner-only (0600) from the first instant: it is bound
// under a temporary name, chmod-ed, then renamed over `path`. Unless `replace_live` (a process
// that just took over replaces its predecessor's), refuses when something already accepts at
// `path` (another l7px is serving: use --takeover); a stale socket file is replaced.
absl::StatusOr<UniqueFd> ListenUpgradeSocket(const std::string& path, bool replace_live = false);

// True when a process accepts connections on the UNIX socket at `path`.
bool UpgradeSocketAnswers(const std::string& path);

}  // namespace l7px::handoff
