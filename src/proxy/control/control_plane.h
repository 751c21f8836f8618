#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "config/config.h"
#include "proxy/shared/shared_state.h"

namespace l7px::proxy {

// The control plane: every change to what the workers see goes through here. It builds new
// immutable snapshots (route table, server limits, pool settings) and publishes each with one
// atomic swap, retiring the old one through the RCU; pools are added, marked closing or reopened
// in the registry, never freed. Callers are the signal
// thread (SIGHUP, SIGUSR1) and the admin thread; a mutex serialises them (never taken on the
// request path).
class ControlPlane {
 public:
  struct RouteRecord {
    uint64_t id;
    config::Route route;
  };

  ControlPlane(SharedState* shared, std::string config_path);

  // Builds the first pools, routes and limits from shared->config. Before any thread starts.
  absl::Status Init();

  // Re-reads the config file. A file that does not load changes nothing and returns why.
  // Pools, routes, timeouts, max_body_bytes, retries, tokens and the log level apply at once to
  // new requests; listeners, workers and buffer sizes need a restart (logged, kept as running).
  // Routes added through the admin API are replaced by the file's.
  absl::Status Reload();

  absl::StatusOr<RouteRecord> AddRoute(config::Route route);
  bool DeleteRoute(uint64_t id);
  std::vector<RouteRecord> Routes();

  // Stops a pool taking registrations and closes its slots (idle ones now, busy ones after their
  // response); requests queued for it are answered at once (503 unless an idle slot was left).
  // A reload that still declares the pool reopens it (same pool, its counters go on). A reload
  // that drops a pool closes it the same way.
  absl::Status Drain(std::string_view pool);

  // SIGUSR1: reopen the access log file (log rotation).
  void ReopenAccessLog();

  // With TLS listeners: builds the certificates' contexts and publishes them with session
  // ticket keys — the ones a predecessor handed over (`inherited_ticket_keys`, its
  // TicketKeys::Serialize form) when they parse, else fresh ones. Before any worker starts.
  absl::Status InitTls(std::string_view inherited_ticket_keys);

  // The running ticket keys in TicketKeys::Serialize form ("" without any), for a successor.
  std::string TicketKeysForHandoff();

  // Periodic work (the admin thread, a few times a second): frees retired snapshots no worker
  // can see any more and rotates the ticket keys when due.
  void Tick();

 private:
  absl::Status ApplyPools(const std::vector<config::Pool>& pools, bool log_changes);
  absl::Status PublishRoutes();  // from routes_; mu_ held
  // The ticket keys published now (mu_ held; only this thread publishes).
  std::shared_ptr<const transport::TicketKeys> CurrentTicketKeys() const;

  std::mutex mu_;
  SharedState* shared_;
  std::string path_;
  std::vector<RouteRecord> routes_;
  uint64_t next_route_id_ = 1;
  config::Config running_;  // the config the current state came from
};

slots::PoolSettings PoolSettingsFrom(const config::Pool& pool);

}  // namespace l7px::proxy
