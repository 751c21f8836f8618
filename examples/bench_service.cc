// l7px-bench-service: the C++ service the benchmarks put behind l7px, NGINX and HAProxy alike.
// Every request is answered after --delay-ms milliseconds with --size bytes. It either registers
// to one or more l7px proxies (--proxy, repeatable) or listens on a port like any server
// (--listen HOST:PORT, one thread per connection), so the same code is measured everywhere.
//
//   l7px-bench-service --proxy 127.0.0.1:9999 [--proxy ...] [--slots 16] [--pool P] [--token T]
//                      [--size 128] [--delay-ms 0]
//   l7px-bench-service --listen 127.0.0.1:8081 [--size 128] [--delay-ms 0]
//
// Prints "ready" on stdout once every slot is registered (or the port is listening); stops on
// SIGINT or SIGTERM.

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "l7px/service.h"

namespace {

struct Flags {
  l7px::ServiceOptions options;
  std::string listen;
  long size = 128;
  long delay_ms = 0;
};

void Usage() {
  std::fprintf(
      stderr,
      "usage: l7px-bench-service (--proxy HOST:PORT|unix:PATH ... | --listen HOST:PORT|unix:PATH)\n"
      "                          [--slots N] [--pool NAME] [--token T] [--size BYTES]\n"
      "                          [--delay-ms MS]\n");
}

bool ParseLong(const char* text, long* out) {
  char* end = nullptr;
  errno = 0;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < 0) return false;
  *out = value;
  return true;
}

// Returns 0 to go on, or the exit code.
int ParseFlags(int argc, char** argv, Flags* flags) {
  flags->options.slots = 16;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      Usage();
      return -1;
    }
    if (i + 1 >= argc) {
      Usage();
      return 2;
    }
    const char* value = argv[++i];
    long number = 0;
    bool ok = true;
    if (arg == "--proxy") {
      flags->options.proxies.push_back(value);
    } else if (arg == "--listen") {
      flags->listen = value;
    } else if (arg == "--pool") {
      flags->options.pool = value;
    } else if (arg == "--token") {
      flags->options.token = value;
    } else if (arg == "--slots") {
      ok = ParseLong(value, &number) && number >= 1 && number <= 1 << 20;
      flags->options.slots = static_cast<int>(number);
    } else if (arg == "--size") {
      ok = ParseLong(value, &flags->size);
    } else if (arg == "--delay-ms" || arg == "--delay") {
      ok = ParseLong(value, &flags->delay_ms);
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr, "l7px-bench-service: bad argument %s %s\n", arg.c_str(), value);
      Usage();
      return 2;
    }
  }
  if (flags->options.proxies.empty() == flags->listen.empty()) {
    std::fprintf(stderr, "l7px-bench-service: give --proxy (one or more) or --listen\n");
    return 2;
  }
  return 0;
}

// A listening socket on "host:port" ("[v6]:port" too) or "unix:/path", or -1.
int ListenOn(const std::string& address) {
  if (address.rfind("unix:", 0) == 0) {
    const std::string path = address.substr(5);
    sockaddr_un un{};
    if (path.empty() || path.size() >= sizeof(un.sun_path)) return -1;
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, path.c_str(), path.size() + 1);
    unlink(path.c_str());
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)) != 0 || listen(fd, 4096) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos) return -1;
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* list = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &list) != 0) {
    return -1;
  }
  int fd = -1;
  for (addrinfo* ai = list; ai != nullptr && fd < 0; ai = ai->ai_next) {
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(list);
  return fd;
}

// Accepts until `stop_fd` is readable; each connection is served on its own thread.
void AcceptLoop(l7px::Service& service, int listen_fd, int stop_fd) {
  while (true) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) break;
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    service.ServeConnectionInBackground(fd);
  }
  // Stop() (called by main before stop_fd is written) ends every ServeConnection.
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags;
  if (const int rc = ParseFlags(argc, argv, &flags); rc != 0) return rc < 0 ? 0 : rc;

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string body(static_cast<size_t>(flags.size), 'x');
  const auto delay = std::chrono::milliseconds(flags.delay_ms);
  l7px::Service service(flags.options,
                        [&body, delay](const l7px::Request&, l7px::Response& response) {
                          if (delay.count() > 0) std::this_thread::sleep_for(delay);
                          response.AddHeader("Content-Type", "application/octet-stream");
                          response.body = body;
                        });

  int stop_pipe[2] = {-1, -1};
  std::thread acceptor;
  std::thread ready;
  int listen_fd = -1;
  if (!flags.listen.empty()) {
    listen_fd = ListenOn(flags.listen);
    if (listen_fd < 0 || pipe2(stop_pipe, O_CLOEXEC) != 0) {
      std::fprintf(stderr, "l7px-bench-service: cannot listen on %s: %s\n", flags.listen.c_str(),
                   std::strerror(errno));
      return 1;
    }
    acceptor = std::thread([&] { AcceptLoop(service, listen_fd, stop_pipe[0]); });
    std::printf("ready\n");
    std::fflush(stdout);
  } else {
    if (!service.Start()) return 1;
    const int want = flags.options.slots * static_cast<int>(flags.options.proxies.size());
    // Readiness means every slot of every proxy is registered; a stop signal cuts the wait.
    ready = std::thread([&service, want] {
      if (service.WaitForSlots(want, std::chrono::hours(24))) {
        std::printf("ready\n");
        std::fflush(stdout);
      }
    });
  }

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "l7px-bench-service: %s, stopping (served %llu)\n", strsignal(sig),
               static_cast<unsigned long long>(service.Served()));
  service.Stop();  // also ends the readiness wait
  if (ready.joinable()) ready.join();
  if (acceptor.joinable()) {
    [[maybe_unused]] ssize_t n = write(stop_pipe[1], "x", 1);
    acceptor.join();
    close(listen_fd);
  }
  return 0;
}
