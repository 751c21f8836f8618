#include "handoff/channel.h"

#include <poll.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace l7px::handoff {
namespace {

constexpr int kSendTimeoutSec = 5;

absl::Status Errno(absl::string_view what) {
  return absl::UnavailableError(absl::StrCat("handoff: ", what, ": ", strerror(errno)));
}

absl::StatusOr<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("upgrade.socket: bad path \"", path, "\""));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

UniqueFd SeqpacketSocket() { return UniqueFd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)); }

}  // namespace

Channel::Channel(UniqueFd fd) : fd_(std::move(fd)) {
  timeval tv{kSendTimeoutSec, 0};
  setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

absl::StatusOr<Channel> Channel::Connect(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd fd = SeqpacketSocket();
  if (!fd) return Errno("socket");
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot reach a running l7px at upgrade.socket ",
                                               path, ": ", strerror(errno)));
  }
  return Channel(std::move(fd));
}

absl::Status Channel::Send(const Message& message, absl::Span<const int> fds) {
  if (fds.size() != message.fd_count()) {
    return absl::InternalError(absl::StrCat("handoff: ", TypeName(message.type), " carries ",
                                            message.fd_count(), " entries but ", fds.size(),
                                            " fds"));
  }
  auto bytes = Encode(message);
  if (!bytes.ok()) return bytes.status();
  iovec iov{bytes->data(), bytes->size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  if (!fds.empty()) {
    const size_t payload = sizeof(int) * fds.size();
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(payload);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(payload);
    std::memcpy(CMSG_DATA(cmsg), fds.data(), payload);
  }
  while (true) {
    const ssize_t n = sendmsg(fd_.get(), &msg, MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(bytes->size())) return absl::OkStatus();
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno(absl::StrCat("sending ", TypeName(message.type)));
    return absl::UnavailableError("handoff: short send");  // cannot happen with SEQPACKET
  }
}

absl::StatusOr<Channel::Received> Channel::Receive(int timeout_ms) {
  pollfd pfd{fd_.get(), POLLIN, 0};
  int ready;
  do {
    ready = poll(&pfd, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready < 0) return Errno("poll");
  if (ready == 0) return absl::DeadlineExceededError("handoff: peer did not answer in time");

  std::string buf(kMaxMessageBytes, '\0');
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * (kMaxFdsPerMessage + 8))];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Errno("receiving");
  if (n == 0) return absl::UnavailableError("handoff: peer closed the connection");

  Received out;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      out.fds.emplace_back(fd);
    }
  }
  if (msg.msg_flags & MSG_CTRUNC) {
    return absl::ResourceExhaustedError(
        "handoff: file descriptors were dropped in transit (RLIMIT_NOFILE too low?)");
  }
  if (msg.msg_flags & MSG_TRUNC) return absl::InvalidArgumentError("handoff: packet too large");
  auto message = Decode(std::string_view(buf.data(), static_cast<size_t>(n)));
  if (!message.ok()) return message.status();
  if (out.fds.size() != message->fd_count()) {
    return absl::InvalidArgumentError(absl::StrCat("handoff: ", TypeName(message->type), " with ",
                                                   message->fd_count(), " entries came with ",
                                                   out.fds.size(), " fds"));
  }
  out.message = std::move(*message);
  return out;
}

absl::StatusOr<Channel::Received> Channel::Expect(Type type, int timeout_ms) {
  auto r = Receive(timeout_ms);
  if (!r.ok()) return r.status();
  const Type got = r->message.type;
  if (got == type) return r;
  if (got == Type::kAbort || got == Type::kRefuse) {
    return absl::AbortedError(absl::StrCat("the other l7px gave up: ", r->message.reason));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("handoff: expected ", TypeName(type), ", got ", TypeName(got)));
}

absl::StatusOr<ucred> Channel::PeerCredentials() const {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd_.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Errno("SO_PEERCRED");
  }
  return cred;
}

bool UpgradeSocketAnswers(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return false;
  UniqueFd probe = SeqpacketSocket();
  return probe &&
         connect(probe.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0;
}

absl::StatusOr<UniqueFd> ListenUpgradeSocket(const std::string& path, bool replace_live) {
  auto addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  if (!replace_live && UpgradeSocketAnswers(path)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "upgrade.socket ", path,
        ": another l7px is serving there (take over from it with --takeover, or stop it)"));
  }
  const std::string temp = absl::StrCat(path, ".", getpid(), ".tmp");
  auto temp_addr = UnixAddress(temp);
  if (!temp_addr.ok()) return temp_addr.status();
  // Non-blocking: the upgrade thread polls it, and drains pending connections without waiting.
  UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Errno("socket");
  unlink(temp.c_str());
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&*temp_addr), sizeof(*temp_addr)) != 0) {
    return absl::UnavailableError(
        absl::StrCat("upgrade.socket: bind ", temp, ": ", strerror(errno)));
  }
  // Nobody can connect before listen(); by then the file is owner-only.
  if (chmod(temp.c_str(), 0600) != 0 || listen(fd.get(), 4) != 0 ||
      rename(temp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    unlink(temp.c_str());
    return absl::UnavailableError(absl::StrCat("upgrade.socket ", path, ": ", strerror(saved)));
  }
  return fd;
}

}  // namespace l7px::handoff
