// l7px_test_service: a scripted service for the proxy's integration tests.
//
//   l7px_test_service --proxy ADDR [--proxy ADDR]... [--pool P] [--slots N] [--token T]
//                     [--service-id ID] [--bare] [--listen ADDR] [--delay-ms N] [--size N]
//                     [--status CODE]
//
// --listen 127.0.0.1:PORT serves plain HTTP on that port instead of registering (comparisons).
// Prints "ready" on stdout once every slot is registered (or the listener is up); exits 0 on
// SIGTERM/SIGINT, interrupting any /delay in progress.
//
// Every framed response carries "X-Service: <service-id>" and "X-Slot: <slot index>".
// --status CODE answers every request with that status and body "status CODE" (a failing
// instance), whatever its path.
// Behaviour by path (after --delay-ms, which applies to every request):
//   /echo          200, body "METHOD TARGET\n", then "Name: value\n" per request header, then
//                  "\n", then the request body
//   /size/N        N bytes of 'x', streamed (fine for 50 MB)
//   /delay/MS      sleeps MS milliseconds, then "ok /delay/MS"
//   /status/CODE   that status, body "status CODE" (none for 1xx/204/304)
//   /die-before    closes the connection without answering
//   /die-during    head with Content-Length: 1000 and 10 body bytes, then closes
//   /chunked       chunked body "hello chunked world" in three chunks (raw framing)
//   /close         "closing", with Connection: close
//   /concurrency   "inflight=N max=M" (N counts this request; M is the max seen so far)
//   /dials         "dials=D registrations=R" (the SDK's counters: did the service re-dial?)
//   anything else  "ok <path>", or --size bytes of 'x' when --size is given

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/address.h"
#include "base/unique_fd.h"
#include "l7px/service.h"

namespace {

using std::chrono::milliseconds;

struct Flags {
  l7px::ServiceOptions options;
  std::string listen;
  int delay_ms = 0;
  int64_t size = -1;
  int status = 0;  // --status: every answer has it
};

// Sleeps that end early when the process is told to stop.
class Stopper {
 public:
  void Sleep(milliseconds d) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, d, [&] { return stopped_; });
  }
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

Stopper g_stopper;
std::atomic<int> g_inflight{0};
std::atomic<int> g_max_inflight{0};

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

int64_t ParseNumber(const std::string& text, int64_t fallback) {
  if (text.empty()) return fallback;
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  return (end != nullptr && *end == '\0' && v >= 0) ? v : fallback;
}

void StreamX(l7px::Response& resp, uint64_t size) {
  resp.stream_size = size;
  resp.stream = [](char* buf, size_t cap) {
    std::memset(buf, 'x', cap);
    return cap;
  };
}

const l7px::Service* g_service = nullptr;

void Handle(const Flags& flags, const std::string& service_id, const l7px::Request& req,
            l7px::Response& resp) {
  const int now = g_inflight.fetch_add(1) + 1;
  int seen = g_max_inflight.load();
  while (now > seen && !g_max_inflight.compare_exchange_weak(seen, now)) {
  }
  if (flags.delay_ms > 0) g_stopper.Sleep(milliseconds(flags.delay_ms));

  resp.AddHeader("X-Service", service_id);
  resp.AddHeader("X-Slot", std::to_string(req.slot));
  const std::string& path = req.path;
  if (flags.status > 0) {
    resp.status = flags.status;
    resp.body = "status " + std::to_string(resp.status);
  } else if (path == "/dials" && g_service != nullptr) {
    const l7px::ServiceStats stats = g_service->Stats();
    resp.body = "dials=" + std::to_string(stats.dials) +
                " registrations=" + std::to_string(stats.registrations);
  } else if (path == "/echo") {
    std::string body = req.method + " " + req.target + "\n";
    for (const auto& [name, value] : req.headers) body += name + ": " + value + "\n";
    body += "\n" + req.body;
    resp.body = std::move(body);
  } else if (StartsWith(path, "/size/")) {
    StreamX(resp, static_cast<uint64_t>(ParseNumber(path.substr(6), 0)));
  } else if (StartsWith(path, "/delay/")) {
    g_stopper.Sleep(milliseconds(ParseNumber(path.substr(7), 0)));
    resp.body = "ok " + path;
  } else if (StartsWith(path, "/status/")) {
    resp.status = static_cast<int>(std::clamp<int64_t>(ParseNumber(path.substr(8), 500), 100, 999));
    resp.body = "status " + std::to_string(resp.status);
  } else if (path == "/die-before") {
    resp.abort = true;
  } else if (path == "/die-during") {
    resp.raw = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + std::string(10, 'x');
    resp.close = true;
  } else if (path == "/chunked") {
    resp.raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Service: " + service_id +
               "\r\n\r\n5\r\nhello\r\n8\r\n chunked\r\n6\r\n world\r\n0\r\n\r\n";
  } else if (path == "/close") {
    resp.body = "closing";
    resp.close = true;
  } else if (path == "/concurrency") {
    resp.body = "inflight=" + std::to_string(g_inflight.load()) +
                " max=" + std::to_string(g_max_inflight.load());
  } else if (flags.size >= 0) {
    StreamX(resp, static_cast<uint64_t>(flags.size));
  } else {
    resp.body = "ok " + path;
  }
  g_inflight.fetch_sub(1);
}

void Usage() {
  std::fprintf(
      stderr,
      "usage: l7px_test_service --proxy ADDR... [--pool P] [--slots N] [--token T] "
      "[--service-id ID] [--bare] [--listen ADDR] [--delay-ms N] [--size N] [--status CODE]\n");
}

bool ParseFlags(int argc, char** argv, Flags* flags) {
  l7px::ServiceOptions& o = flags->options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--bare") {
      o.bare = true;
    } else if (!has_value) {
      return false;
    } else if (arg == "--proxy") {
      o.proxies.push_back(argv[++i]);
    } else if (arg == "--pool") {
      o.pool = argv[++i];
    } else if (arg == "--slots") {
      o.slots = static_cast<int>(ParseNumber(argv[++i], 0));
    } else if (arg == "--token") {
      o.token = argv[++i];
    } else if (arg == "--service-id") {
      o.service_id = argv[++i];
    } else if (arg == "--listen") {
      flags->listen = argv[++i];
    } else if (arg == "--delay-ms") {
      flags->delay_ms = static_cast<int>(ParseNumber(argv[++i], 0));
    } else if (arg == "--size") {
      flags->size = ParseNumber(argv[++i], -1);
    } else if (arg == "--status") {
      flags->status = static_cast<int>(std::clamp<int64_t>(ParseNumber(argv[++i], 500), 200, 999));
    } else {
      return false;
    }
  }
  return !o.proxies.empty() || !flags->listen.empty();
}

void PrintReady() {
  std::fputs("ready\n", stdout);
  std::fflush(stdout);
}

// Accepts on `listen_fd` until `stop_fd` is readable; one thread per connection.
void AcceptLoop(l7px::Service& service, int listen_fd, int stop_fd) {
  while (true) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) continue;
    if (fds[1].revents != 0) break;
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    service.ServeConnectionInBackground(fd);
  }
  service.Stop();  // wakes every ServeConnection
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  flags.options.slots = 4;
  if (!ParseFlags(argc, argv, &flags) || flags.options.slots < 1) {
    Usage();
    return 2;
  }
  if (flags.options.service_id.empty()) {
    flags.options.service_id = "test-service-" + std::to_string(getpid());
  }

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::string service_id = flags.options.service_id;
  l7px::Service service(flags.options,
                        [&flags, &service_id](const l7px::Request& req, l7px::Response& resp) {
                          Handle(flags, service_id, req, resp);
                        });

  g_service = &service;

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return 1;
  l7px::UniqueFd stop_read(pipe_fds[0]);
  l7px::UniqueFd stop_write(pipe_fds[1]);
  l7px::UniqueFd listener;
  std::thread worker;

  if (!flags.listen.empty()) {
    absl::StatusOr<l7px::SocketAddress> addr = l7px::SocketAddress::Parse(flags.listen);
    if (!addr.ok()) {
      std::fprintf(stderr, "l7px_test_service: bad --listen %s\n", flags.listen.c_str());
      return 2;
    }
    listener.Reset(socket(addr->family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int one = 1;
    setsockopt(listener.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (!listener || bind(listener.get(), addr->sockaddr_ptr(), addr->length()) != 0 ||
        listen(listener.get(), 1024) != 0) {
      std::fprintf(stderr, "l7px_test_service: cannot listen on %s: %s\n", flags.listen.c_str(),
                   std::strerror(errno));
      return 1;
    }
    PrintReady();
    worker = std::thread([&service, &listener, &stop_read] {
      AcceptLoop(service, listener.get(), stop_read.get());
    });
  } else {
    if (!service.Start()) return 1;
    const int want = flags.options.slots * static_cast<int>(flags.options.proxies.size());
    worker = std::thread([&service, want] {
      if (service.WaitForSlots(want, std::chrono::hours(24))) PrintReady();
    });
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  g_stopper.Stop();
  [[maybe_unused]] ssize_t n = write(stop_write.get(), "x", 1);
  service.Stop();
  worker.join();
  return 0;
}
