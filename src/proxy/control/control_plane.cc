#include "proxy/control/control_plane.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "absl/strings/str_cat.h"
#include "acceptor/acceptor.h"
#include "base/log.h"
#include "base/strings.h"
#include "io/mailbox.h"

namespace l7px::proxy {

ServerLimits LimitsFrom(const config::Server& server) {
  ServerLimits limits;
  limits.header_timeout_ns = ToNanos(server.header_timeout);
  limits.keepalive_timeout_ns = ToNanos(server.keepalive_timeout);
  limits.max_body_bytes = server.max_body_bytes;
  limits.body_timeout_ns = ToNanos(server.body_timeout);
  limits.min_body_rate = server.min_body_rate;
  limits.send_timeout_ns = ToNanos(server.send_timeout);
  limits.body_buffer = server.body_buffer;
  limits.max_connections = server.max_connections;
  limits.busy_poll_ns = ToNanos(server.busy_poll);
  limits.response_buffer_memory = server.response_buffer_memory;
  limits.trusted_proxies = server.trusted_proxies;
  return limits;
}

slots::PoolSettings PoolSettingsFrom(const config::Pool& p) {
  slots::PoolSettings settings;
  settings.max_slots = p.max_slots;
  settings.request.queue = p.queue;
  settings.request.queue_timeout_ns = ToNanos(p.queue_timeout);
  settings.request.response_timeout_ns = ToNanos(p.response_timeout);
  settings.request.retries = p.retries;
  settings.request.response_buffer = p.response_buffer;
  settings.token = p.token;
  settings.eject.after = p.eject_after;
  settings.eject.time_ns = ToNanos(p.eject_time);
  settings.eject.max_percent = p.max_ejected_percent;
  settings.max_tunnels = p.max_tunnels;
  settings.request.tunnel_idle_timeout_ns = ToNanos(p.tunnel_idle_timeout);
  settings.upstreams = p.upstreams;
  settings.upstream_slots = p.upstream_slots;
  return settings;
}

namespace {

// Tells every worker that a pool closed: each answers the requests it queued for the pool at once
// (a kMsgSlotAvailable for a closing pool serves what idle slots remain, then 503s the rest),
// instead of leaving them to queue_timeout. Called on the admin or the signal thread; io_uring
// rings are single-issuer, so each thread posts through a ring of its own.
void AnnounceClosing(const SharedState& shared, const slots::Pool& pool) {
  thread_local io::MessagePoster poster;
  thread_local absl::Status ready = poster.Init();
  if (!ready.ok()) {
    L7PX_LOG(kError,
             "pool {} closed, but workers cannot be told: {}; its queued requests wait "
             "for queue_timeout",
             pool.name(), ToStd(ready.message()));
    return;
  }
  for (int fd : shared.worker_ring_fds) {
    if (auto s = poster.Post(fd, io::PackMessage(acceptor::kMsgSlotAvailable, pool.id()));
        !s.ok()) {
      L7PX_LOG(kError, "pool {} closed: telling a worker failed: {}", pool.name(),
               ToStd(s.message()));
    }
  }
}

}  // namespace

ControlPlane::ControlPlane(SharedState* shared, std::string config_path)
    : shared_(shared), path_(std::move(config_path)) {}

absl::Status ControlPlane::Init() {
  std::lock_guard<std::mutex> lock(mu_);
  running_ = shared_->config;
  if (auto s = ApplyPools(running_.pools, /*log_changes=*/false); !s.ok()) return s;
  for (const config::Route& r : running_.routes) routes_.push_back({next_route_id_++, r});
  if (auto s = PublishRoutes(); !s.ok()) return s;
  shared_->PublishLimits(std::make_unique<ServerLimits>(LimitsFrom(running_.server)));
  return absl::OkStatus();
}

absl::Status ControlPlane::ApplyPools(const std::vector<config::Pool>& pools, bool log_changes) {
  slots::PoolRegistry& registry = shared_->pools;
  // Room first, so a reload is all-or-nothing. A name seen before (a drained or removed pool)
  // reopens its pool and takes no room.
  uint32_t adding = 0;
  for (const config::Pool& p : pools) {
    if (registry.FindAny(p.name) == nullptr) ++adding;
  }
  if (registry.size() + adding > slots::kMaxPools) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many distinct pool names over this process's life (limit ",
                     slots::kMaxPools, "); restart to compact"));
  }
  for (const config::Pool& p : pools) {
    slots::Pool* pool = registry.FindAny(p.name);
    if (pool == nullptr) {
      registry.Add(p.name, PoolSettingsFrom(p), shared_->num_workers);
      if (log_changes) L7PX_LOG(kInfo, "pool {} added", p.name);
      continue;
    }
    // The settings replaced go once no worker or acceptor pass can still be reading them.
    if (std::unique_ptr<const slots::PoolSettings> old =
            pool->UpdateSettings(PoolSettingsFrom(p))) {
      shared_->rcu.Retire([replaced = old.release()] { delete replaced; });
    }
    if (pool->closing()) {
      // The same pool again, settings first: it takes registrations as soon as it is open.
      pool->set_closing(false);
      L7PX_LOG(kInfo, "pool {} reopened", p.name);
    }
  }
  for (uint32_t id = 0; id < registry.size(); ++id) {
    slots::Pool* pool = registry.at(id);
    if (pool->closing()) continue;
    bool declared = false;
    for (const config::Pool& p : pools) declared |= (p.name == pool->name());
    if (!declared) {
      pool->set_closing(true);
      AnnounceClosing(*shared_, *pool);
      L7PX_LOG(kInfo, "pool {} removed: its slots close once idle", pool->name());
    }
  }
  return absl::OkStatus();
}

absl::Status ControlPlane::PublishRoutes() {
  std::vector<RouteSpec> specs;
  for (const RouteRecord& r : routes_) {
    const slots::Pool* pool = shared_->pools.FindAny(r.route.pool);
    if (pool == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("route ", r.id, " names unknown pool \"", r.route.pool, "\""));
    }
    specs.push_back(RouteSpec{r.id, r.route, pool->id()});
  }
  shared_->PublishRoutes(std::make_unique<RouteTable>(RouteTable::Build(specs)));
  return absl::OkStatus();
}

absl::Status ControlPlane::Reload() {
  auto next = config::LoadFile(path_);
  if (!next.ok()) {
    L7PX_LOG(kError, "reload rejected, running config kept: {}", ToStd(next.status().message()));
    return next.status();
  }
  std::lock_guard<std::mutex> lock(mu_);
  const config::Config& cur = running_;
  auto restart_only = [&](bool changed, std::string_view key) {
    if (changed) L7PX_LOG(kWarn, "reload: {} changed; it applies after a restart", key);
  };
  restart_only(next->server.listen != cur.server.listen, "server.listen");
  restart_only(next->server.workers != cur.server.workers, "server.workers");
  restart_only(next->server.max_header_bytes != cur.server.max_header_bytes,
               "server.max_header_bytes");
  restart_only(next->reg.listen != cur.reg.listen, "register.listen");
  restart_only(next->reg.handshake != cur.reg.handshake, "register.handshake");
  restart_only(next->reg.default_pool != cur.reg.default_pool, "register.default_pool");
  restart_only(!(next->admin.listen == cur.admin.listen), "admin.listen");
  restart_only(next->log.access != cur.log.access || next->log.format != cur.log.format,
               "log.access/log.format");
  restart_only(next->admin.token != cur.admin.token, "admin.token");
  restart_only(
      next->reg.allow.size() != cur.reg.allow.size() ||
          !std::equal(next->reg.allow.begin(), next->reg.allow.end(), cur.reg.allow.begin(),
                      [](const Cidr& a, const Cidr& b) { return a.ToString() == b.ToString(); }),
      "register.allow");
  restart_only(next->upgrade.socket != cur.upgrade.socket ||
                   next->upgrade.drain_timeout != cur.upgrade.drain_timeout,
               "upgrade.*");
  restart_only(next->tls.listen != cur.tls.listen, "tls.listen");
  restart_only(next->tls.handshake_timeout != cur.tls.handshake_timeout, "tls.handshake_timeout");

  // Certificates are re-read on every reload while TLS listeners run: a renewed certificate
  // needs no restart. One that does not load rejects the whole reload (before anything else
  // changed); new handshakes use the new ones, live connections keep theirs.
  std::shared_ptr<const transport::TlsContexts> tls;
  std::shared_ptr<const transport::TicketKeys> ticket_keys;
  if (!cur.tls.listen.empty() && !next->tls.listen.empty()) {
    auto built = transport::TlsContexts::Build(next->tls);
    if (!built.ok()) {
      L7PX_LOG(kError, "reload rejected, running config kept: {}", ToStd(built.status().message()));
      return built.status();
    }
    tls = std::move(*built);
    if (next->tls.session_tickets) {
      ticket_keys = CurrentTicketKeys();
      if (ticket_keys == nullptr) {
        auto fresh = transport::TicketKeys::Fresh(time(nullptr));
        if (!fresh.ok()) return fresh.status();
        ticket_keys = std::move(*fresh);
      }
    }
  }

  if (auto s = ApplyPools(next->pools, /*log_changes=*/true); !s.ok()) return s;
  std::vector<RouteRecord> previous = std::move(routes_);
  routes_.clear();
  for (const config::Route& r : next->routes) routes_.push_back({next_route_id_++, r});
  if (auto s = PublishRoutes(); !s.ok()) {
    routes_ = std::move(previous);  // cannot happen: the loader checked pool names
    return s;
  }
  shared_->PublishLimits(std::make_unique<ServerLimits>(LimitsFrom(next->server)));
  if (tls != nullptr) shared_->PublishTls(std::move(tls), std::move(ticket_keys));
  SetLogLevel(next->log.level);
  running_ = std::move(*next);
  L7PX_LOG(kInfo, "config reloaded from {}: {} pools, {} routes", path_, running_.pools.size(),
           running_.routes.size());
  return absl::OkStatus();
}

absl::StatusOr<ControlPlane::RouteRecord> ControlPlane::AddRoute(config::Route route) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shared_->pools.Find(route.pool) == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown pool \"", route.pool, "\""));
  }
  routes_.push_back({next_route_id_++, std::move(route)});
  if (auto s = PublishRoutes(); !s.ok()) {
    routes_.pop_back();
    return s;
  }
  L7PX_LOG(kInfo, "route {} added: host={} path={} pool={}", routes_.back().id,
           routes_.back().route.host, routes_.back().route.path, routes_.back().route.pool);
  return routes_.back();
}

bool ControlPlane::DeleteRoute(uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = routes_.begin(); it != routes_.end(); ++it) {
    if (it->id != id) continue;
    const RouteRecord removed = *it;
    const auto position = routes_.erase(it);
    if (auto s = PublishRoutes(); !s.ok()) {
      routes_.insert(position, removed);  // keep the list equal to what workers use
      L7PX_LOG(kError, "deleting route {} failed: {}", id, ToStd(s.message()));
      return false;
    }
    L7PX_LOG(kInfo, "route {} deleted", id);
    return true;
  }
  return false;
}

std::vector<ControlPlane::RouteRecord> ControlPlane::Routes() {
  std::lock_guard<std::mutex> lock(mu_);
  return routes_;
}

absl::Status ControlPlane::Drain(std::string_view name) {
  std::lock_guard<std::mutex> lock(mu_);
  slots::Pool* pool = shared_->pools.Find(name);
  if (pool == nullptr)
    return absl::NotFoundError(absl::StrCat("unknown pool \"", ToAbsl(name), "\""));
  pool->set_closing(true);
  // Routes naming it keep resolving to it (FindAny), so its requests are answered 503 at once;
  // so are those already queued for it.
  AnnounceClosing(*shared_, *pool);
  L7PX_LOG(kInfo, "pool {} draining: registrations refused, slots close once idle", name);
  return absl::OkStatus();
}

void ControlPlane::ReopenAccessLog() {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string& path = running_.log.access;
  if (path == "stdout" || path == "off") return;
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    L7PX_LOG(kError, "reopening access log {}: {}", path, strerror(errno));
    return;
  }
  // Swap the file behind the descriptor every worker writes to: no coordination needed.
  if (dup2(fd, shared_->access_log_fd.load()) < 0) {
    L7PX_LOG(kError, "reopening access log {}: {}", path, strerror(errno));
  } else {
    L7PX_LOG(kInfo, "access log reopened: {}", path);
  }
  close(fd);
}

absl::Status ControlPlane::InitTls(std::string_view inherited_ticket_keys) {
  std::lock_guard<std::mutex> lock(mu_);
  if (running_.tls.listen.empty()) return absl::OkStatus();
  auto contexts = transport::TlsContexts::Build(running_.tls);
  if (!contexts.ok()) return contexts.status();
  std::shared_ptr<const transport::TicketKeys> keys;
  if (running_.tls.session_tickets) {
    const int64_t now = time(nullptr);
    if (!inherited_ticket_keys.empty()) {
      auto parsed = transport::TicketKeys::Parse(inherited_ticket_keys, now);
      if (parsed.ok()) {
        keys = std::move(*parsed);
        L7PX_LOG(kInfo,
                 "tls: {} session ticket keys taken over: tickets issued before the "
                 "upgrade still resume",
                 keys->size());
      } else {
        L7PX_LOG(kWarn,
                 "tls: the session ticket keys handed over are unusable ({}); new keys: "
                 "clients make full handshakes once",
                 ToStd(parsed.status().message()));
      }
    }
    if (keys == nullptr) {
      auto fresh = transport::TicketKeys::Fresh(now);
      if (!fresh.ok()) return fresh.status();
      keys = std::move(*fresh);
    }
  }
  shared_->PublishTls(std::move(*contexts), std::move(keys));
  return absl::OkStatus();
}

std::shared_ptr<const transport::TicketKeys> ControlPlane::CurrentTicketKeys() const {
  const transport::TlsSnapshot* snapshot = shared_->tls.load();
  return snapshot == nullptr ? nullptr : snapshot->ticket_keys;
}

std::string ControlPlane::TicketKeysForHandoff() {
  std::lock_guard<std::mutex> lock(mu_);
  const std::shared_ptr<const transport::TicketKeys> keys = CurrentTicketKeys();
  return keys == nullptr ? std::string() : keys->Serialize();
}

void ControlPlane::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  const transport::TlsSnapshot* snapshot = shared_->tls.load();
  const int64_t now = time(nullptr);
  if (snapshot != nullptr && snapshot->ticket_keys != nullptr &&
      snapshot->ticket_keys->RotationDue(now)) {
    auto rotated = snapshot->ticket_keys->Rotated(now);
    if (rotated.ok()) {
      shared_->PublishTls(snapshot->contexts, std::move(*rotated));
      L7PX_LOG(kInfo, "tls: session ticket key rotated");
    } else {
      L7PX_LOG_LIMITED(kError, "tls: rotating the session ticket key: {}",
                       ToStd(rotated.status().message()));
    }
  }
  shared_->rcu.Reclaim();
}

}  // namespace l7px::proxy
