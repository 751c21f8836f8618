#include "support/clients.h"

#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "base/strings.h"
#include "support/net.h"
#include "support/process.h"

namespace l7px::testing {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t ContentLengthOf(const std::string& head) {
  const std::string cl = HeaderOf(head, "Content-Length");
  return cl.empty() ? 0 : std::strtoull(cl.c_str(), nullptr, 10);
}

}  // namespace

CurlResult RunCurl(const std::vector<std::string>& args, int max_time_seconds) {
  std::vector<std::string> argv = {"curl", "-sS", "--max-time", std::to_string(max_time_seconds)};
  argv.insert(argv.end(), args.begin(), args.end());
  const auto start = Clock::now();
  CommandResult run = RunCommand(argv, std::chrono::seconds(max_time_seconds + 5));
  CurlResult result;
  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  result.exit_code = run.exit_code;
  result.out = std::move(run.out);
  result.err = std::move(run.err);
  return result;
}

std::string FrontUrl(uint16_t port, const std::string& path) {
  return "http://127.0.0.1:" + std::to_string(port) + path;
}

std::string GetRequest(const std::string& path, const std::string& host,
                       const std::string& extra_headers) {
  return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra_headers + "\r\n";
}

bool WaitPeerClosed(int fd, std::chrono::milliseconds timeout, std::string* seen) {
  const auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (true) {
    const ssize_t n = RecvSome(fd, buf, sizeof(buf), deadline);
    if (n == 0 || n == -2) return true;
    if (n < 0) return false;
    if (seen != nullptr) seen->append(buf, static_cast<size_t>(n));
  }
}

StreamedResponse ReadStreamedResponse(int fd, char fill, std::chrono::milliseconds timeout,
                                      const std::function<void(uint64_t)>& on_body) {
  const auto deadline = Clock::now() + timeout;
  StreamedResponse r;
  std::string data;
  char buf[65536];
  size_t head_end;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = RecvSome(fd, buf, sizeof(buf), deadline);
    if (n <= 0) return r;
    data.append(buf, static_cast<size_t>(n));
  }
  r.head = data.substr(0, head_end + 4);
  const uint64_t want = ContentLengthOf(r.head);
  auto take = [&](const char* p, size_t len) {
    const size_t use = static_cast<size_t>(std::min<uint64_t>(len, want - r.body_bytes));
    for (size_t i = 0; i < use; ++i) r.unexpected += (p[i] != fill);
    r.body_bytes += use;
  };
  take(data.data() + head_end + 4, data.size() - head_end - 4);
  while (r.body_bytes < want) {
    if (on_body) on_body(r.body_bytes);
    const ssize_t n = RecvSome(fd, buf, sizeof(buf), deadline);
    if (n <= 0) break;
    take(buf, static_cast<size_t>(n));
  }
  r.complete = r.body_bytes == want;
  return r;
}

std::string RegistrationHead(const std::string& pool, const std::string& token,
                             const std::string& service) {
  std::string head =
      "GET /.l7px/register HTTP/1.1\r\nHost: l7px\r\nConnection: Upgrade\r\n"
      "Upgrade: l7px-slot/1\r\n";
  if (!pool.empty()) head += "L7px-Pool: " + pool + "\r\n";
  if (!token.empty()) head += "L7px-Token: " + token + "\r\n";
  if (!service.empty()) head += "L7px-Service: " + service + "\r\n";
  return head + "\r\n";
}

UniqueFd RegisterByHand(uint16_t register_port, const std::string& head, std::string* answer,
                        std::chrono::milliseconds timeout) {
  answer->clear();
  UniqueFd fd = ConnectTcp(register_port, timeout);
  if (!fd || !SendAll(fd.get(), head)) return UniqueFd();
  *answer = RecvUntil(fd.get(), "\r\n\r\n", timeout);
  return fd;
}

std::string RecvHttpRequest(int fd, std::string* carry, std::chrono::milliseconds timeout,
                            bool read_body) {
  const auto deadline = Clock::now() + timeout;
  std::string& data = *carry;
  char buf[65536];
  size_t head_end;
  while ((head_end = data.find("\r\n\r\n")) == std::string::npos) {
    const ssize_t n = RecvSome(fd, buf, sizeof(buf), deadline);
    if (n <= 0) return "";
    data.append(buf, static_cast<size_t>(n));
  }
  size_t total = head_end + 4;
  if (read_body) total += ContentLengthOf(data.substr(0, head_end + 4));
  while (data.size() < total) {
    const ssize_t n = RecvSome(fd, buf, sizeof(buf), deadline);
    if (n <= 0) return "";
    data.append(buf, static_cast<size_t>(n));
  }
  std::string request = data.substr(0, total);
  data.erase(0, total);
  return request;
}

std::vector<std::string> EchoedRequest::All(const std::string& name) const {
  std::vector<std::string> values;
  for (const auto& [n, v] : headers) {
    if (EqualsIgnoreCase(n, name)) values.push_back(v);
  }
  return values;
}

std::future<bool> AnswerOneRequest(int fd, std::string response) {
  return std::async(std::launch::async, [fd, response = std::move(response)] {
    std::string carry;
    if (RecvHttpRequest(fd, &carry, std::chrono::seconds(10)).empty()) return false;
    return SendAll(fd, response);
  });
}

EchoedRequest ParseEcho(const std::string& echo_body) {
  EchoedRequest echo;
  size_t pos = echo_body.find('\n');
  if (pos == std::string::npos) return echo;
  echo.request_line = echo_body.substr(0, pos);
  ++pos;
  while (pos < echo_body.size()) {
    const size_t eol = echo_body.find('\n', pos);
    if (eol == std::string::npos) break;
    if (eol == pos) {
      echo.body = echo_body.substr(eol + 1);
      break;
    }
    const std::string line = echo_body.substr(pos, eol - pos);
    const size_t colon = line.find(": ");
    if (colon != std::string::npos) {
      echo.headers.emplace_back(line.substr(0, colon), line.substr(colon + 2));
    }
    pos = eol + 1;
  }
  return echo;
}

}  // namespace l7px::testing
