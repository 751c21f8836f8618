#include "proxy/server/server.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/strings.h"
#include "handoff/channel.h"
#include "io/socket.h"
#include "proxy/control/control_plane.h"

namespace l7px::proxy {

Server::Server(config::Config config, std::string config_path) {
  shared_.config = std::move(config);
  control_ = std::make_unique<ControlPlane>(&shared_, std::move(config_path));
}

Server::~Server() { Stop(); }

absl::Status Server::Start(std::unique_ptr<Takeover> takeover) {
  auto fail = [&](absl::Status status) {
    if (takeover != nullptr) takeover->Abort(ToStd(status.message()));
    Stop();
    return status;
  };
  const config::Config& cfg = shared_.config;
  int workers = static_cast<int>(cfg.server.workers);
  if (workers == 0) workers = static_cast<int>(std::thread::hardware_concurrency());
  if (workers <= 0) workers = 1;
  if (workers > slots::kMaxWorkers) workers = slots::kMaxWorkers;
  shared_.num_workers = workers;

  // First, so a second plain start fails before it binds anything (SO_REUSEPORT would let it
  // share the front port silently). A takeover binds it once the old process is done.
  UniqueFd upgrade_listener;
  if (takeover == nullptr) {
    auto fd = handoff::ListenUpgradeSocket(cfg.upgrade.socket);
    if (!fd.ok()) return fd.status();
    upgrade_listener = std::move(*fd);
  }

  if (auto s = control_->Init(); !s.ok()) return fail(s);

  if (cfg.log.access == "stdout") {
    shared_.access_log_fd.store(STDOUT_FILENO);
  } else if (cfg.log.access != "off") {
    access_log_file_.Reset(
        open(cfg.log.access.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
    if (!access_log_file_) {
      return fail(absl::UnavailableError(
          absl::StrCat("log.access: cannot open ", cfg.log.access, ": ", strerror(errno))));
    }
    shared_.access_log_fd.store(access_log_file_.get());
  }

  ListenerSet listeners(takeover != nullptr ? takeover->TakeListeners()
                                            : std::vector<InheritedListener>{});
  auto front = listeners.Front(cfg.server.listen, workers);
  if (!front.ok()) return fail(front.status());
  if (auto s = control_->InitTls(takeover != nullptr ? takeover->ticket_keys() : ""); !s.ok()) {
    return fail(s);
  }
  auto tls_front = listeners.Front(cfg.tls.listen, workers, handoff::ListenerKind::kTls);
  if (!tls_front.ok()) return fail(tls_front.status());
  acceptor::AcceptorOptions acceptor_options;
  for (const SocketAddress& addr : cfg.reg.listen) {
    auto fd = listeners.Register(addr);
    if (!fd.ok()) return fail(fd.status());
    acceptor_options.listeners.push_back({std::move(*fd), addr});
  }
  UniqueFd admin_listener;
  if (cfg.admin.listen.has_value()) {
    auto fd = listeners.Admin(*cfg.admin.listen);
    if (!fd.ok()) return fail(fd.status());
    admin_listener = std::move(*fd);
  }
  served_ = listeners.served();

  for (int i = 0; i < workers; ++i) {
    std::vector<UniqueFd> mine = std::move((*front)[i]);
    const size_t tls_from = mine.size();
    for (UniqueFd& fd : (*tls_front)[i]) mine.push_back(std::move(fd));
    workers_.push_back(std::make_unique<Worker>(i, &shared_, std::move(mine), tls_from));
    if (auto s = workers_.back()->Start(); !s.ok()) {
      return fail(absl::Status(s.code(), absl::StrCat("worker ", i, ": ", s.message())));
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
  acceptor_options.hold_dials = takeover != nullptr;  // until the adopted slots are in
  acceptor_options.quiescent = [rcu = &shared_.rcu](bool quiescent) {
    if (quiescent) {
      rcu->Offline(Rcu::kAcceptorReader);
    } else {
      rcu->Online(Rcu::kAcceptorReader);
    }
  };
  acceptor_ = std::make_unique<acceptor::Acceptor>(std::move(acceptor_options));
  if (auto s = acceptor_->Start(); !s.ok()) return fail(s);
  shared_.acceptor_ring_fd.store(acceptor_->ring_fd());
  for (auto& w : workers_) w->Go();

  std::vector<const WorkerStats*> stats;
  for (auto& w : workers_) stats.push_back(&w->stats());
  admin_ = std::make_unique<AdminServer>(control_.get(), AdminViews(&shared_, std::move(stats)),
                                         std::move(admin_listener), cfg.admin.token);
  if (auto s = admin_->Start(); !s.ok()) return fail(s);

  std::string front_names;
  for (const SocketAddress& a : cfg.server.listen) {
    absl::StrAppend(&front_names, front_names.empty() ? "" : " ", a.ToString());
  }
  std::string reg;
  for (const SocketAddress& a : cfg.reg.listen)
    absl::StrAppend(&reg, reg.empty() ? "" : " ", a.ToString());
  L7PX_LOG(kInfo,
           "l7px serving on {} with {} workers; services register on {}; admin on {}; {} pools, "
           "{} routes{}",
           front_names, workers, reg, cfg.admin.listen ? cfg.admin.listen->ToString() : "(off)",
           cfg.pools.size(), cfg.routes.size(),
           takeover != nullptr ? absl::StrCat("; took over ", listeners.inherited_used(),
                                              " listeners from pid ", takeover->old_pid())
                               : "");

  upgrade_ = std::make_unique<UpgradeServer>(this, cfg.upgrade);
  if (takeover == nullptr) upgrade_->WritePidFile();
  upgrade_->Start(std::move(upgrade_listener), std::move(takeover));
  return absl::OkStatus();
}

void Server::Stop() {
  if (upgrade_) {
    upgrade_->Stop();
    upgrade_->RemovePidFile();
  }
  if (admin_) admin_->Stop();
  shared_.stop.store(true);
  for (auto& w : workers_) w->Join();
  workers_.clear();
  if (acceptor_) acceptor_->Stop();
  acceptor_.reset();
}

int64_t Server::ClientConnections() const {
  int64_t n = 0;
  for (const auto& w : workers_) n += w->stats().client_connections.load(std::memory_order_relaxed);
  return n;
}

void Server::SetAdminAccepting(bool on) {
  if (admin_) admin_->SetAccepting(on);
}

namespace {

// Starts this binary again with --takeover; it connects to our upgrade socket.
void StartSuccessor(const ReexecPlan& plan, pid_t* child) {
  std::vector<std::string> args = {plan.binary};
  args.insert(args.end(), plan.args.begin(), plan.args.end());
  args.push_back("--takeover");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // it blocks what it needs itself
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int err = posix_spawn(&pid, plan.binary.c_str(), nullptr, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    L7PX_LOG(kError, "SIGUSR2: cannot start {}: {}", plan.binary, strerror(err));
    return;
  }
  *child = pid;
  L7PX_LOG(kInfo, "SIGUSR2: started {} --takeover as pid {}", plan.binary, pid);
}

// Reaps every child that exited (SIGCHLD may stand for several, and a tick catches one whose
// signal was merged with another). A successor that failed is logged, and SIGUSR2 works again:
// if it had begun the handoff, the upgrade thread saw its end of the socket close and this
// process took back what it had not acknowledged and accepts again (UpgradeServer).
void ReapChildren(pid_t* successor) {
  while (true) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;  // none exited (0) or no child at all (ECHILD)
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const std::string how = WIFEXITED(status) ? absl::StrCat("exit status ", WEXITSTATUS(status))
                                              : absl::StrCat("signal ", WTERMSIG(status));
    if (pid != *successor) {
      L7PX_LOG(kInfo, "child pid {} ended ({})", pid, how);
      continue;
    }
    *successor = 0;
    if (ok) {
      L7PX_LOG(kInfo, "successor pid {} exited", pid);
    } else {
      L7PX_LOG(kWarn, "successor pid {} failed ({}); this process serves on", pid, how);
    }
  }
}

}  // namespace

int RunUntilSignal(Server& server, const ReexecPlan& reexec) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGCHLD})
    sigaddset(&set, sig);
  pid_t successor = 0;
  const timespec tick{0, 100'000'000};
  while (true) {
    if (server.upgrade().finished()) {
      server.Stop();
      return 0;
    }
    const int sig = sigtimedwait(&set, nullptr, &tick);
    if (sig < 0) {  // timeout or EINTR: check for a finished handoff or a lost successor
      ReapChildren(&successor);
      continue;
    }
    switch (sig) {
      case SIGINT:
      case SIGTERM:
        L7PX_LOG(kInfo, "signal {}: stopping", strsignal(sig));
        server.Stop();
        return 0;
      case SIGQUIT:
        server.upgrade().RequestDrain();
        break;
      case SIGHUP:
        L7PX_LOG(kInfo, "SIGHUP: reloading the config");
        (void)server.control().Reload();  // logs the outcome either way
        break;
      case SIGUSR1:
        server.control().ReopenAccessLog();
        break;
      case SIGUSR2:
        if (server.upgrade().busy() || successor > 0) {
          L7PX_LOG(kWarn, "SIGUSR2 ignored: an upgrade is already under way");
        } else {
          StartSuccessor(reexec, &successor);
        }
        break;
      case SIGCHLD:
        ReapChildren(&successor);
        break;
      default:
        break;
    }
  }
}

}  // namespace l7px::proxy
