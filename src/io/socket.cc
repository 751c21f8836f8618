#include "io/socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"

namespace l7px::io {
namespace {

absl::Status Errno(const char* what, const SocketAddress& addr) {
  return absl::UnavailableError(absl::StrCat(what, " ", addr.ToString(), ": ", strerror(errno)));
}

}  // namespace

absl::StatusOr<UniqueFd> Listen(const SocketAddress& addr, bool reuse_port, int backlog) {
  UniqueFd fd(socket(addr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return Errno("socket", addr);
  int one = 1;
  if (!addr.is_unix()) {
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuse_port && setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
      return Errno("SO_REUSEPORT", addr);
    }
    if (addr.family() == AF_INET6)
      setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  } else {
    std::string path(addr.unix_path());
    struct stat st;
    if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
      // Replace only a stale socket: if something still accepts there, refuse.
      UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      if (connect(probe.get(), addr.sockaddr_ptr(), addr.length()) == 0) {
        return absl::AlreadyExistsError(
            absl::StrCat("listen ", addr.ToString(), ": another process is listening there"));
      }
      unlink(path.c_str());
    }
  }
  if (bind(fd.get(), addr.sockaddr_ptr(), addr.length()) != 0) return Errno("bind", addr);
  if (listen(fd.get(), backlog) != 0) return Errno("listen", addr);
  return fd;
}

void TuneStreamSocket(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

SocketAddress LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

SocketAddress PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return SocketAddress::FromSockaddr(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace l7px::io
