// l7px command line: run, check a config, print version/help.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "base/log.h"
#include "config/config.h"
#include "connect/agent.h"
#include "proxy/ctl/ctl.h"
#include "proxy/server/server.h"
#include "proxy/server/version.h"
#include "proxy/transport/tls_context.h"

namespace {

constexpr const char* kUsage =
    "usage: l7px -c FILE               run with this config\n"
    "       l7px -c FILE --takeover    take over from the l7px running with this config\n"
    "       l7px -t -c FILE            check the config and exit (0 ok, 2 error)\n"
    "       l7px ctl [--admin ADDR] [--token T] [--json] stats|pools|routes|reload|drain POOL\n"
    "       l7px ctl route add --host H --path P [--cidr C]... [--header N[=V]] --pool X\n"
    "       l7px ctl route del ID\n"
    "       l7px connect --proxy ADDR[,ADDR...] --slots N --to ADDR [--pool NAME] [--token T]\n"
    "                    (beside a service that only listens; l7px connect --help)\n"
    "       l7px --version | --help\n"
    "\n"
    "l7px is an HTTP/1.1 reverse proxy: services dial in and register keep-alive\n"
    "connections (slots); each request is dispatched onto an idle slot of the pool its\n"
    "route names, waits in a bounded queue when none is idle, and is shed with 503 beyond it.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   config file (TOML)\n"
    "  -t, --test          validate the config and exit\n"
    "      --takeover      receive the listeners and slots of the running l7px (its\n"
    "                      upgrade.socket), which then drains and exits\n"
    "  -v, --version       print the version\n"
    "  -h, --help          this text\n"
    "\n"
    "signals: SIGTERM/SIGINT stop now, SIGQUIT drains then stops, SIGHUP reloads the config,\n"
    "SIGUSR1 reopens the access log, SIGUSR2 upgrades in place (starts this binary again with\n"
    "--takeover).\n";

int Usage(const char* error) {
  std::fprintf(stderr, "l7px: %s\n\n%s", error, kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "ctl")
    return l7px::proxy::RunCtl(argc - 2, argv + 2);
  if (argc >= 2 && std::string_view(argv[1]) == "connect")
    return l7px::connect::RunConnect(argc - 2, argv + 2);
  std::string config_path;
  bool test_only = false;
  bool takeover = false;
  l7px::proxy::ReexecPlan reexec;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg == "-v" || arg == "--version") {
      std::printf("l7px %s\n", l7px::proxy::kVersion);
      return 0;
    }
    if (arg == "-t" || arg == "--test") {
      test_only = true;
    } else if (arg == "-c" || arg == "--config") {
      if (i + 1 >= argc) return Usage("-c needs a file");
      config_path = argv[++i];
      reexec.args.push_back(std::string(arg));
      reexec.args.push_back(config_path);
      continue;
    } else if (arg == "--takeover") {
      takeover = true;
      continue;  // a successor adds its own
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
    if (!cfg->tls.listen.empty() || !cfg->tls.certificates.empty()) {
      auto contexts = l7px::proxy::transport::TlsContexts::Build(cfg->tls);
      if (!contexts.ok()) {
        std::fprintf(stderr, "l7px: %s: %s\n", config_path.c_str(),
                     std::string(contexts.status().message()).c_str());
        return 2;
      }
    }
    std::printf("l7px: %s: configuration ok\n", config_path.c_str());
    return 0;
  }
  l7px::SetLogLevel(cfg->log.level);

  // Every thread inherits this mask; the main thread takes signals with sigwait. SIGCHLD too: a
  // signal left unblocked is never queued for sigwait (SIGCHLD's default action discards it), and
  // a SIGUSR2 successor that failed would then never be reaped.
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD}) {
    sigaddset(&set, sig);
  }
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);

  // What SIGUSR2 runs: the path l7px was started by, when it names a file (absolute, or made so
  // against the starting directory), so that a new file at that path — also a symlink
  // ("current" -> a release) repointed to a new release — is what starts, as with NGINX.
  // Started through PATH: the file this process runs from, resolved now.
  const std::string_view arg0 = argv[0];
  if (arg0.find('/') != std::string_view::npos) {
    char cwd[4096];
    reexec.binary = arg0.front() == '/' || getcwd(cwd, sizeof(cwd)) == nullptr
                        ? std::string(arg0)
                        : std::string(cwd) + "/" + std::string(arg0);
  } else {
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    reexec.binary = n > 0 ? std::string(self, static_cast<size_t>(n)) : std::string(arg0);
  }

  std::unique_ptr<l7px::proxy::Takeover> handoff;
  if (takeover) {
    auto begun = l7px::proxy::Takeover::Begin(cfg->upgrade.socket);
    if (!begun.ok()) {
      std::fprintf(stderr, "l7px: takeover failed: %s\n",
                   std::string(begun.status().message()).c_str());
      return 1;
    }
    handoff = std::move(*begun);
  }
  l7px::proxy::Server server(std::move(*cfg), config_path);
  if (auto s = server.Start(std::move(handoff)); !s.ok()) {
    std::fprintf(stderr, "l7px: %s%s\n", takeover ? "takeover failed: " : "",
                 std::string(s.message()).c_str());
    return 1;
  }
  return l7px::proxy::RunUntilSignal(server, reexec);
}
