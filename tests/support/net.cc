#include "support/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "support/process.h"

namespace l7px::testing {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

ssize_t RecvSome(int fd, char* buf, size_t cap, std::chrono::steady_clock::time_point deadline) {
  pollfd p{fd, POLLIN, 0};
  const int r = poll(&p, 1, MillisLeft(deadline));
  if (r <= 0) return -1;
  const ssize_t n = recv(fd, buf, cap, 0);
  return n < 0 ? -2 : n;
}

namespace {

// Ports FreePort handed out, in every test process of this build, stay off limits for a minute:
// a port is free when picked but bound only later (a proxy starts after the services it is
// given, a service after its config is written), and a test running in parallel must not pick
// it meanwhile. The ledger is a small file of "port seconds" lines, read and rewritten under
// flock. Returns false when `port` was handed out within the minute.
bool ClaimPort(uint16_t port) {
  const std::string path = std::string(L7PX_BINARY_DIR) + "/test-ports";
  UniqueFd fd(open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return true;  // no ledger: the bind check alone
  if (flock(fd.get(), LOCK_EX) != 0) return true;
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = pread(fd.get(), buf, sizeof(buf), static_cast<off_t>(text.size()))) > 0) {
    text.append(buf, static_cast<size_t>(n));
  }
  const long now = static_cast<long>(time(nullptr));
  std::string kept;
  bool taken = false;
  std::istringstream lines(text);
  long p = 0;
  long at = 0;
  while (lines >> p >> at) {
    if (now - at >= 60) continue;
    taken |= p == port;
    kept += std::to_string(p) + " " + std::to_string(at) + "\n";
  }
  if (!taken) kept += std::to_string(port) + " " + std::to_string(now) + "\n";
  if (ftruncate(fd.get(), 0) == 0) {
    [[maybe_unused]] const ssize_t w = pwrite(fd.get(), kept.data(), kept.size(), 0);
  }
  flock(fd.get(), LOCK_UN);
  return !taken;
}

}  // namespace

uint16_t FreePort() {
  // Below the kernel's ephemeral range: a port handed out here can never be taken meanwhile as
  // the source port of some test's outgoing connection (nor linger in its TIME_WAIT), which
  // would make the proxy's bind fail under parallel, connection-heavy tests.
  int low = 32768;
  {
    std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range");
    range >> low;
  }
  static std::mt19937 rng(static_cast<uint32_t>(getpid()) ^
                          static_cast<uint32_t>(std::random_device{}()));
  for (int attempt = 0; low > 12000 && attempt < 200; ++attempt) {
    const auto port = static_cast<uint16_t>(10000 + rng() % static_cast<uint32_t>(low - 10000));
    UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 && ClaimPort(port)) {
      return port;
    }
  }
  // Fallback: let the kernel choose.
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  return ntohs(addr.sin_port);
}

UniqueFd ConnectFrom(const std::string& source_ip, uint16_t port,
                     std::chrono::milliseconds timeout) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  sockaddr_in local{};
  local.sin_family = AF_INET;
  if (inet_pton(AF_INET, source_ip.c_str(), &local.sin_addr) != 1) return UniqueFd();
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) return UniqueFd();
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  // Non-blocking, so that the one attempt is bounded (a SYN dropped by a full backlog is sent
  // again by the kernel for minutes); the socket is blocking again once connected.
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) return UniqueFd();
    pollfd p{fd.get(), POLLOUT, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return UniqueFd();
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      return UniqueFd();
    }
  }
  const int flags = fcntl(fd.get(), F_GETFL);
  if (flags < 0 || fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) return UniqueFd();
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

UniqueFd ConnectTcp(uint16_t port, std::chrono::milliseconds timeout) {
  return ConnectFrom("127.0.0.1", port, timeout);
}

UniqueFd ConnectTcpWhenReady(uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (true) {
    UniqueFd fd = ConnectTcp(port, std::chrono::milliseconds(std::max(MillisLeft(deadline), 1)));
    if (fd.valid() || Clock::now() >= deadline) return fd;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

UniqueFd ConnectUnix(const std::string& path) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return UniqueFd();
  return fd;
}

bool WaitForPort(uint16_t port, std::chrono::milliseconds timeout) {
  return ConnectTcpWhenReady(port, timeout).valid();
}

bool SendAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

std::string RecvUntilClose(int fd, std::chrono::milliseconds timeout, size_t max) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  char buf[65536];
  while (out.size() < max) {
    const ssize_t n = RecvSome(fd, buf, sizeof(buf), deadline);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::string RecvUntil(int fd, const std::string& needle, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  std::string out;
  char buf[65536];
  while (out.find(needle) == std::string::npos) {
    const ssize_t n = RecvSome(fd, buf, sizeof(buf), deadline);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

int StatusOf(const std::string& response) {
  if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0) return 0;
  return atoi(response.c_str() + 9);
}

std::string HeaderOf(const std::string& response, const std::string& name) {
  const size_t head_end = response.find("\r\n\r\n");
  const std::string head = Lower(response.substr(0, head_end));
  const std::string key = "\r\n" + Lower(name) + ":";
  const size_t pos = head.find(key);
  if (pos == std::string::npos) return "";
  size_t start = pos + key.size();
  const size_t end = head.find("\r\n", start);
  std::string value =
      response.substr(start, (end == std::string::npos ? head.size() : end) - start);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.erase(0, 1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  return value;
}

namespace {

// Given bytes starting at a chunked body, returns the total length of the chunked encoding
// (through the final CRLF after trailers), or npos if incomplete. Decoded body into *body.
size_t ChunkedLength(const std::string& data, size_t start, std::string* body) {
  size_t pos = start;
  while (true) {
    const size_t eol = data.find("\r\n", pos);
    if (eol == std::string::npos) return std::string::npos;
    const size_t size = strtoul(data.c_str() + pos, nullptr, 16);
    pos = eol + 2;
    if (size == 0) {
      // Trailers end with an empty line.
      while (true) {
        const size_t t = data.find("\r\n", pos);
        if (t == std::string::npos) return std::string::npos;
        if (t == pos) return t + 2 - start;
        pos = t + 2;
      }
    }
    if (data.size() < pos + size + 2) return std::string::npos;
    if (body) body->append(data, pos, size);
    pos += size + 2;
  }
}

}  // namespace

std::string BodyOf(const std::string& response) {
  const size_t head_end = response.find("\r\n\r\n");
  if (head_end == std::string::npos) return "";
  if (Lower(HeaderOf(response, "Transfer-Encoding")).find("chunked") != std::string::npos) {
    std::string body;
    ChunkedLength(response, head_end + 4, &body);
    return body;
  }
  return response.substr(head_end + 4);
}

std::string RecvHttpResponse(int fd, std::string* carry, std::chrono::milliseconds timeout,
                             bool head_request) {
  const auto deadline = Clock::now() + timeout;
  std::string& data = *carry;
  char buf[65536];
  auto fill = [&]() -> ssize_t {
    const ssize_t n = RecvSome(fd, buf, sizeof(buf), deadline);
    if (n > 0) data.append(buf, static_cast<size_t>(n));
    return n;
  };
  while (true) {
    size_t head_end;
    while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
      if (fill() <= 0) return "";
    }
    const size_t body_start = head_end + 4;
    const std::string head = data.substr(0, body_start);
    const int status = StatusOf(head);
    if (status >= 100 && status < 200 && status != 101) {
      // Interim response: return it alone (callers decide whether to read on).
      data.erase(0, body_start);
      return head;
    }
    size_t total = std::string::npos;
    const std::string te = Lower(HeaderOf(head, "Transfer-Encoding"));
    const std::string cl = HeaderOf(head, "Content-Length");
    if (head_request || status == 204 || status == 304 || status == 101) {
      total = body_start;
    } else if (te.find("chunked") != std::string::npos) {
      while ((total = ChunkedLength(data, body_start, nullptr)) == std::string::npos) {
        if (fill() <= 0) return "";
      }
      total += body_start;
    } else if (!cl.empty()) {
      total = body_start + strtoull(cl.c_str(), nullptr, 10);
      while (data.size() < total) {
        if (fill() <= 0) return "";
      }
    } else {
      while (fill() > 0) {
      }
      total = data.size();
    }
    std::string response = data.substr(0, total);
    data.erase(0, total);
    return response;
  }
}

std::string HttpExchange(uint16_t port, const std::string& request,
                         std::chrono::milliseconds timeout) {
  UniqueFd fd = ConnectTcp(port, timeout);
  if (!fd.valid() || !SendAll(fd.get(), request)) return "";
  std::string carry;
  const bool head = request.compare(0, 5, "HEAD ") == 0;
  return RecvHttpResponse(fd.get(), &carry, timeout, head);
}

size_t EchoUntilClosed(int fd, std::string first, int stop_fd) {
  UniqueFd conn(fd);
  std::string pending = std::move(first);
  size_t echoed = 0;
  char buf[4096];
  while (true) {
    while (!pending.empty()) {
      const ssize_t n = send(conn.get(), pending.data(), pending.size(), MSG_NOSIGNAL);
      if (n > 0) {
        echoed += static_cast<size_t>(n);
        pending.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        pollfd p[2] = {{conn.get(), POLLOUT, 0}, {stop_fd, POLLIN, 0}};
        if (poll(p, 2, 1000) > 0 && p[1].revents != 0) return echoed;
        continue;
      }
      return echoed;
    }
    pollfd p[2] = {{conn.get(), POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return echoed;
    }
    if (p[1].revents != 0) return echoed;
    const ssize_t n = recv(conn.get(), buf, sizeof(buf), 0);
    if (n == 0) return echoed;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return echoed;
    }
    pending.assign(buf, static_cast<size_t>(n));
  }
}

}  // namespace l7px::testing
