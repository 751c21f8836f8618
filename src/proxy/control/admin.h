#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "base/address.h"
#include "base/unique_fd.h"
#include "proxy/control/admin_views.h"
#include "proxy/control/control_plane.h"

namespace l7px::proxy {

// The admin HTTP/1.1 API (docs/operating.md, "Admin API") on its own thread, off the data path: a small
// poll() loop over a handful of connections, requests parsed with the same strict parser as
// client traffic. The thread is also the control plane's housekeeper: it reclaims retired
// snapshots every pass, so it runs even when no admin address is configured.
class AdminServer {
 public:
  // `listener`: the bound admin socket (invalid when admin.listen is off).
  AdminServer(ControlPlane* control, AdminViews views, UniqueFd listener, std::string token);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  absl::Status Start();
  void Stop();
  // An upgrade handoff stops (and, if it fails, resumes) accepting admin connections.
  void SetAccepting(bool on) { accepting_.store(on); }

 private:
  struct Connection;
  void Run();
  void HandleRequest(Connection& c);
  void Reply(Connection& c, int status, std::string_view content_type, std::string body,
             bool close = false);

  ControlPlane* control_;
  AdminViews views_;
  std::string token_;
  UniqueFd listener_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> accepting_{true};
};

}  // namespace l7px::proxy
