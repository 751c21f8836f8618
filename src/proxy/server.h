#pragma once

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "acceptor/acceptor.h"
#include "config/config.h"
#include "proxy/admin.h"
#include "proxy/control_plane.h"
#include "proxy/shared_state.h"
#include "proxy/worker.h"

namespace l7px::proxy {

// The whole running proxy: pools, route table, workers and the acceptor, built from a config.
class Server {
 public:
  Server(config::Config config, std::string config_path);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds every listener and starts every thread. On error nothing keeps running.
  absl::Status Start();
  // Signals every thread to stop and joins them.
  void Stop();

  int num_workers() const { return shared_.num_workers; }
  ControlPlane& control() { return *control_; }
  SharedState& shared() { return shared_; }

 private:
  SharedState shared_;
  std::unique_ptr<ControlPlane> control_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<acceptor::Acceptor> acceptor_;
  std::unique_ptr<AdminServer> admin_;
  UniqueFd access_log_file_;
};

// Runs until SIGINT/SIGTERM/SIGQUIT. Signals must already be blocked in the calling thread
// (and so in every thread it starts). Returns the process exit code.
int RunUntilSignal(Server& server);

}  // namespace l7px::proxy
