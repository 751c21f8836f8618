#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "proxy/routing/router.h"
#include "proxy/shared/rcu.h"
#include "proxy/transport/tls_context.h"
#include "slots/pool.h"

namespace l7px::proxy {

// The [server] limits a reload may change; read by workers once per request.
struct ServerLimits {
  int64_t header_timeout_ns = 10'000'000'000;
  int64_t keepalive_timeout_ns = 75'000'000'000;
  uint64_t max_body_bytes = 16ull << 20;
  int64_t body_timeout_ns = 20'000'000'000;
  uint64_t min_body_rate = 512;              // bytes per second
  int64_t send_timeout_ns = 60'000'000'000;  // a send to the client unaccepted this long: close
  uint64_t body_buffer = 64 * 1024;  // request bodies up to this size arrive whole before dispatch
  uint64_t response_buffer_memory = 32 << 20;  // per worker, for responses read ahead
  uint32_t max_connections = 0;                // per worker; 0 = no limit
  int64_t busy_poll_ns = 0;                    // poll this long before sleeping; 0 = sleep at once
  // server.trusted_proxies: clients whose X-Forwarded-Proto/-Host and X-Request-Id are kept.
  std::vector<Cidr> trusted_proxies;

  // The client at `peer` is a proxy whose forwarding headers l7px keeps.
  bool TrustsProxy(const SocketAddress& peer) const {
    for (const Cidr& cidr : trusted_proxies) {
      if (cidr.Contains(peer)) return true;
    }
    return false;
  }
};

// What every worker, the acceptor and the control plane share.
//
// Immutable snapshots (route table, server limits, each pool's settings) are published with one
// atomic pointer swap by the control thread and reclaimed through `rcu` once no worker (nor the
// acceptor, for pool settings) can see them; a request copies what it needs when it starts.
// Pools are never freed while the process runs (see PoolRegistry), so a Pool* taken by a request
// stays valid.
struct SharedState {
  SharedState() = default;
  SharedState(const SharedState&) = delete;
  SharedState& operator=(const SharedState&) = delete;
  ~SharedState() {
    delete routes.load();
    delete limits.load();
    delete tls.load();
  }

  config::Config config;  // as started: listeners and buffer sizes need a restart to change
  slots::PoolRegistry pools;
  std::atomic<const RouteTable*> routes{nullptr};
  std::atomic<const ServerLimits*> limits{nullptr};
  Rcu rcu{Rcu::kMaxReaders};
  int num_workers = 1;
  std::vector<int> worker_ring_fds;       // filled before any worker runs its loop
  std::atomic<int> acceptor_ring_fd{-1};  // set before any worker runs its loop
  std::atomic<bool> stop{false};
  std::atomic<int> access_log_fd{-1};
  std::atomic<uint64_t> upgrades{0};
  // [tls]'s certificates: built before the workers start, rebuilt by reloads (null without TLS
  // listeners). Read by workers within a loop pass; a connection keeps the contexts it
  // started with (shared_ptr) after the snapshot is retired.
  std::atomic<const transport::TlsSnapshot*> tls{nullptr};

  // Control thread: publish a new snapshot and retire the old one.
  void PublishRoutes(std::unique_ptr<RouteTable> table) {
    const RouteTable* old = routes.exchange(table.release(), std::memory_order_seq_cst);
    if (old != nullptr) rcu.Retire([old] { delete old; });
  }
  // Contexts and ticket keys travel together: a reload publishes new contexts with the current
  // keys, a rotation the current contexts with new keys (the control thread, under its lock).
  void PublishTls(std::shared_ptr<const transport::TlsContexts> contexts,
                  std::shared_ptr<const transport::TicketKeys> ticket_keys) {
    auto* next = new transport::TlsSnapshot{std::move(contexts), std::move(ticket_keys)};
    const transport::TlsSnapshot* old = tls.exchange(next, std::memory_order_seq_cst);
    if (old != nullptr) rcu.Retire([old] { delete old; });
  }
  void PublishLimits(std::unique_ptr<ServerLimits> next) {
    const ServerLimits* old = limits.exchange(next.release(), std::memory_order_seq_cst);
    if (old != nullptr) rcu.Retire([old] { delete old; });
  }
};

ServerLimits LimitsFrom(const config::Server& server);

}  // namespace l7px::proxy
