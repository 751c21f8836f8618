// l7px command line: run, check a config, print version/help.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "base/log.h"
#include "config/config.h"
#include "proxy/ctl.h"
#include "proxy/server.h"

#ifndef L7PX_VERSION
#define L7PX_VERSION "dev"
#endif

namespace {

constexpr const char* kUsage =
    "usage: l7px -c FILE               run with this config\n"
    "       l7px -t -c FILE            check the config and exit (0 ok, 2 error)\n"
    "       l7px ctl [--admin ADDR] [--token T] [--json] stats|pools|routes|reload|drain POOL\n"
    "       l7px ctl route add --host H --path P [--cidr C]... [--header N[=V]] --pool X\n"
    "       l7px ctl route del ID\n"
    "       l7px --version | --help\n"
    "\n"
    "l7px is an HTTP/1.1 reverse proxy: services dial in and register keep-alive\n"
    "connections (slots); each request is dispatched onto an idle slot of the pool its\n"
    "route names, waits in a bounded queue when none is idle, and is shed with 503 beyond it.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   config file (TOML)\n"
    "  -t, --test          validate the config and exit\n"
    "  -v, --version       print the version\n"
    "  -h, --help          this text\n"
    "\n"
    "signals: SIGTERM/SIGINT/SIGQUIT stop, SIGHUP reloads the config, SIGUSR1 reopens the\n"
    "access log.\n";

int Usage(const char* error) {
  std::fprintf(stderr, "l7px: %s\n\n%s", error, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "ctl") return l7px::proxy::RunCtl(argc - 2, argv + 2);
  std::string config_path;
  bool test_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "-v" || arg == "--version") {
      std::printf("l7px %s\n", L7PX_VERSION);
      return 0;
    }
    if (arg == "-t" || arg == "--test") {
      test_only = true;
    } else if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) return Usage("-c needs a file");
      config_path = argv[++i];
    } else if (arg == "--takeover") {
      return Usage("--takeover is not available in this build yet");
    } else {
      return Usage(("unknown argument: " + std::string(arg)).c_str());
    }
  }
  if (config_path.empty()) return Usage("no config file (-c FILE)");

  auto cfg = l7px::config::LoadFile(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "l7px: %s\n", std::string(cfg.status().message()).c_str());
    return 2;
  }
  if (test_only) {
    std::printf("l7px: %s: configuration ok\n", config_path.c_str());
    return 0;
  }
  l7px::SetLogLevel(cfg->log.level);

  // Every thread inherits this mask; the main thread takes signals with sigwait.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2}) sigaddset(&set, sig);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  l7px::proxy::Server server(std::move(*cfg), config_path);
  if (auto s = server.Start(); !s.ok()) {
    std::fprintf(stderr, "l7px: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return l7px::proxy::RunUntilSignal(server);
}
