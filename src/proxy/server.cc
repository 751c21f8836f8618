#include "proxy/server.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "io/socket.h"
#include "proxy/control_plane.h"

namespace l7px::proxy {

Server::Server(config::Config config, std::string config_path) {
  shared_.config = std::move(config);
  control_ = std::make_unique<ControlPlane>(&shared_, std::move(config_path));
}

Server::~Server() { Stop(); }

absl::Status Server::Start() {
  const config::Config& cfg = shared_.config;
  int workers = static_cast<int>(cfg.server.workers);
  if (workers == 0) workers = static_cast<int>(std::thread::hardware_concurrency());
  if (workers <= 0) workers = 1;
  if (workers > acceptor::kMaxWorkers) workers = acceptor::kMaxWorkers;
  shared_.num_workers = workers;

  if (auto s = control_->Init(); !s.ok()) return s;

  if (cfg.log.access == "stdout") {
    shared_.access_log_fd.store(STDOUT_FILENO);
  } else if (cfg.log.access != "off") {
    access_log_file_.Reset(
        open(cfg.log.access.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
    if (!access_log_file_) {
      return absl::UnavailableError(
          absl::StrCat("log.access: cannot open ", cfg.log.access, ": ", strerror(errno)));
    }
    shared_.access_log_fd.store(access_log_file_.get());
  }

  acceptor::AcceptorOptions acceptor_options;
  for (const SocketAddress& addr : cfg.reg.listen) {
    auto fd = io::Listen(addr, /*reuse_port=*/false);
    if (!fd.ok()) return absl::Status(fd.status().code(), absl::StrCat("register.listen: ", fd.status().message()));
    acceptor_options.listeners.push_back({std::move(*fd), addr});
  }

  for (int i = 0; i < workers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, &shared_));
    if (auto s = workers_.back()->Start(); !s.ok()) {
      Stop();
      return absl::Status(s.code(), absl::StrCat("worker ", i, ": ", s.message()));
    }
    shared_.worker_ring_fds.push_back(workers_.back()->ring_fd());
  }

  switch (cfg.reg.handshake) {
    case config::Handshake::kUpgrade:
      acceptor_options.handshake = acceptor::HandshakeParser::Mode::kUpgrade;
      break;
    case config::Handshake::kNone:
      acceptor_options.handshake = acceptor::HandshakeParser::Mode::kNone;
      break;
    case config::Handshake::kMxproxy:
      acceptor_options.handshake = acceptor::HandshakeParser::Mode::kMxproxy;
      break;
  }
  acceptor_options.default_pool = cfg.reg.default_pool;
  acceptor_options.allow = cfg.reg.allow;
  acceptor_options.pools = &shared_.pools;
  acceptor_options.worker_ring_fds = shared_.worker_ring_fds;
  acceptor_options.handshake_timeout_ns = ToNanos(cfg.server.header_timeout);
  acceptor_ = std::make_unique<acceptor::Acceptor>(std::move(acceptor_options));
  if (auto s = acceptor_->Start(); !s.ok()) {
    Stop();
    return s;
  }
  shared_.acceptor_ring_fd.store(acceptor_->ring_fd());
  for (auto& w : workers_) w->Go();

  std::vector<const WorkerStats*> stats;
  for (auto& w : workers_) stats.push_back(&w->stats());
  admin_ = std::make_unique<AdminServer>(control_.get(), AdminViews(&shared_, std::move(stats)),
                                         cfg.admin.listen, cfg.admin.token);
  if (auto s = admin_->Start(); !s.ok()) {
    Stop();
    return s;
  }

  std::string front;
  for (const SocketAddress& a : cfg.server.listen) absl::StrAppend(&front, front.empty() ? "" : " ", a.ToString());
  std::string reg;
  for (const SocketAddress& a : cfg.reg.listen) absl::StrAppend(&reg, reg.empty() ? "" : " ", a.ToString());
  L7PX_LOG(kInfo,
           "l7px serving on {} with {} workers; services register on {}; admin on {}; {} pools, "
           "{} routes",
           front, workers, reg, cfg.admin.listen ? cfg.admin.listen->ToString() : "(off)",
           cfg.pools.size(), cfg.routes.size());
  return absl::OkStatus();
}

void Server::Stop() {
  if (admin_) admin_->Stop();
  shared_.stop.store(true);
  for (auto& w : workers_) w->Join();
  workers_.clear();
  if (acceptor_) acceptor_->Stop();
  acceptor_.reset();
}

int RunUntilSignal(Server& server) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGQUIT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGUSR1);
  sigaddset(&set, SIGUSR2);
  while (true) {
    int sig = 0;
    if (sigwait(&set, &sig) != 0) continue;
    switch (sig) {
      case SIGINT:
      case SIGTERM:
      case SIGQUIT:
        L7PX_LOG(kInfo, "signal {}: stopping", strsignal(sig));
        server.Stop();
        return 0;
      case SIGHUP:
        L7PX_LOG(kInfo, "SIGHUP: reloading the config");
        (void)server.control().Reload();  // logs the outcome either way
        break;
      case SIGUSR1:
        server.control().ReopenAccessLog();
        break;
      default:
        L7PX_LOG(kWarn, "signal {} ignored: not supported yet", strsignal(sig));
        break;
    }
  }
}

}  // namespace l7px::proxy
