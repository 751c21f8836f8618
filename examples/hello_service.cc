// l7px-hello-service: the smallest useful l7px service. It dials into the proxy, registers its
// slots and answers every request with a greeting naming the slot that carried it. An upgrade
// request to /echo (any Upgrade protocol) is answered 101 and becomes a byte-echo tunnel:
//
//   printf 'GET /echo HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhi\n' |
//     nc -q 2 127.0.0.1 8080
//
//   l7px-hello-service [--proxy 127.0.0.1:9999]... [--pool default] [--slots 4] [--token T]

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "l7px/service.h"

namespace {

void Usage() {
  std::fprintf(stderr,
               "usage: l7px-hello-service [--proxy HOST:PORT|unix:PATH]... [--pool NAME] "
               "[--slots N] [--token T]\n");
}

// Serves one /echo tunnel: sends back every byte until the client closes or the service stops.
void Echo(l7px::Tunnel tunnel) {
  std::string pending = std::move(tunnel.already_read);
  char buf[16 * 1024];
  while (true) {
    // Wait until the connection takes what is pending (or has bytes to read), or Stop().
    pollfd fds[2] = {{tunnel.fd, static_cast<short>(pending.empty() ? POLLIN : POLLOUT), 0},
                     {tunnel.stop_fd, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents != 0) break;
    ssize_t n;
    if (!pending.empty()) {
      n = send(tunnel.fd, pending.data(), pending.size(), MSG_NOSIGNAL);
      if (n > 0) pending.erase(0, static_cast<size_t>(n));
    } else {
      n = recv(tunnel.fd, buf, sizeof(buf), 0);
      if (n == 0) break;  // the client closed
      if (n > 0) pending.assign(buf, static_cast<size_t>(n));
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) break;
  }
  close(tunnel.fd);  // the tunnel's fd is ours to close
}

}  // namespace

int main(int argc, char** argv) {
  l7px::ServiceOptions options;
  options.pool = "default";
  options.slots = 4;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--proxy" && has_value) {
      options.proxies.push_back(argv[++i]);
    } else if (arg == "--pool" && has_value) {
      options.pool = argv[++i];
    } else if (arg == "--slots" && has_value) {
      options.slots = std::atoi(argv[++i]);
    } else if (arg == "--token" && has_value) {
      options.token = argv[++i];
    } else if (arg == "-h" || arg == "--help") {
      Usage();
      return 0;
    } else {
      Usage();
      return 2;
    }
  }
  if (options.proxies.empty()) options.proxies.push_back("127.0.0.1:9999");

  // Block the stop signals before any thread exists so that only sigwait() below sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  l7px::Service service(options, [](const l7px::Request& request, l7px::Response& response) {
    if (request.path == "/echo" && !request.Header("Upgrade").empty()) {
      response.status = 101;
      response.AddHeader("Upgrade", std::string(request.Header("Upgrade")));
      response.tunnel = Echo;  // runs on this slot's thread; the SDK dials a replacement slot
      return;
    }
    response.AddHeader("Content-Type", "text/plain");
    response.body = "hello from l7px-hello-service (slot " + std::to_string(request.slot) + ")\n";
  });
  if (!service.Start()) return 1;
  std::string where;
  for (const std::string& proxy : options.proxies) where += (where.empty() ? "" : ", ") + proxy;
  std::fprintf(stderr, "l7px-hello-service: started, %d slot(s) per proxy to %s, pool %s\n",
               options.slots, where.c_str(), options.pool.c_str());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::fprintf(stderr, "l7px-hello-service: %s, stopping (served %llu)\n", strsignal(sig),
               static_cast<unsigned long long>(service.Served()));
  service.Stop();
  return 0;
}
