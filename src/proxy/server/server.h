#pragma once

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "acceptor/acceptor.h"
#include "config/config.h"
#include "proxy/control/admin.h"
#include "proxy/control/control_plane.h"
#include "proxy/server/listeners.h"
#include "proxy/server/takeover.h"
#include "proxy/server/upgrade_server.h"
#include "proxy/shared/shared_state.h"
#include "proxy/worker/worker.h"

namespace l7px::proxy {

// The whole running proxy: pools, route table, workers and the acceptor, built from a config.
class Server : public HandoffHost {
 public:
  Server(config::Config config, std::string config_path);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listener (or takes them over: `takeover` is a handoff begun with
  // Takeover::Begin) and starts every thread. On error nothing keeps running, and a takeover is
  // aborted (the old process serves on).
  absl::Status Start(std::unique_ptr<Takeover> takeover = nullptr);
  // Signals every thread to stop and joins them.
  void Stop();

  int num_workers() const { return shared_.num_workers; }
  ControlPlane& control() { return *control_; }
  UpgradeServer& upgrade() { return *upgrade_; }

  // HandoffHost
  SharedState& shared() override { return shared_; }
  const std::vector<ServedListener>& served_listeners() const override { return served_; }
  int64_t ClientConnections() const override;
  void SetAdminAccepting(bool on) override;
  std::string TicketKeys() override { return control_->TicketKeysForHandoff(); }

 private:
  SharedState shared_;
  std::unique_ptr<ControlPlane> control_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<acceptor::Acceptor> acceptor_;
  std::unique_ptr<AdminServer> admin_;
  std::unique_ptr<UpgradeServer> upgrade_;
  std::vector<ServedListener> served_;
  UniqueFd access_log_file_;
};

// How to start a successor for SIGUSR2: this binary (resolved at startup, so a binary replaced
// on disk is the one that runs) and the arguments it was started with.
struct ReexecPlan {
  std::string binary;
  std::vector<std::string> args;  // argv[1..], without --takeover
};

// Runs until SIGINT/SIGTERM (stop now), a SIGQUIT drain, or a completed handoff to a successor.
// SIGHUP reloads, SIGUSR1 reopens the access log, SIGUSR2 starts a successor with --takeover;
// SIGCHLD (and every tick) reaps a successor that ended, so a failed one never blocks the next
// SIGUSR2. Signals, SIGCHLD included, must already be blocked in the calling thread (and so in
// every thread it starts).
// Returns the process exit code.
int RunUntilSignal(Server& server, const ReexecPlan& reexec);

}  // namespace l7px::proxy
