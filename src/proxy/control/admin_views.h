#pragma once

#include <array>
#include <string>
#include <vector>

#include "base/strict_json.h"
#include "proxy/control/control_plane.h"
#include "proxy/shared/shared_state.h"
#include "proxy/worker/worker.h"

namespace l7px::proxy {

// Renders the running state for the admin API. Reads only atomics and snapshots, so it may run
// on any thread while workers serve.
class AdminViews {
 public:
  AdminViews(SharedState* shared, std::vector<const WorkerStats*> workers)
      : shared_(shared), workers_(std::move(workers)) {}

  std::string PoolsJson() const;  // {"pools": [...]}
  std::string StatsJson() const;  // {"workers", "client_connections", "requests", "pools"}
  std::string RoutesJson(const std::vector<ControlPlane::RouteRecord>& routes) const;
  std::string MetricsText() const;  // Prometheus text exposition format 0.0.4

 private:
  // Every worker's TLS handshake counters, summed.
  struct TlsTotals {
    uint64_t tls12 = 0, tls13 = 0, resumed12 = 0, resumed13 = 0;
    std::array<uint64_t, static_cast<size_t>(transport::TlsFailure::kCount)> failures{};
  };

  Json Pools() const;  // the array of pools
  TlsTotals SumTls() const;
  SharedState* shared_;
  std::vector<const WorkerStats*> workers_;
};

}  // namespace l7px::proxy
