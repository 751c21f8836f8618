// l7px-hello-service: the smallest useful l7px service. It dials into the proxy, registers its
// slots and answers every request with a greeting naming the slot that carried it.
//
//   l7px-hello-service [--proxy 127.0.0.1:9999]... [--pool default] [--slots 4] [--token T]

#include <signal.h>

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
