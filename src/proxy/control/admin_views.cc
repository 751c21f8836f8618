#include "proxy/control/admin_views.h"

#include <time.h>

#include "base/clock.h"
#include "base/strict_json.h"
#include "config/route_json.h"
#include "fmt/format.h"

namespace l7px::proxy {
namespace {

uint64_t Load(const std::atomic<uint64_t>& v) { return v.load(std::memory_order_relaxed); }

struct PoolTotals {
  uint64_t served = 0;
  uint64_t shed_queue_full = 0;
  uint64_t shed_queue_timeout = 0;
  uint64_t shed_closing = 0;
  uint64_t retries = 0;
};

PoolTotals Totals(const std::vector<const WorkerStats*>& workers, uint32_t pool_id) {
  PoolTotals t;
  for (const WorkerStats* w : workers) {
    const PoolMetrics* m = w->pools.Get(pool_id);
    if (m == nullptr) continue;
    t.served += Load(m->served);
    t.shed_queue_full += Load(m->shed_queue_full);
    t.shed_queue_timeout += Load(m->shed_queue_timeout);
    t.shed_closing += Load(m->shed_closing);
    t.retries += Load(m->retries);
  }
  return t;
}

// Prometheus label values escape backslash, quote and newline.
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out.push_back('\\');
      out.push_back(c);
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// "2026-11-21T23:21:17.888Z" for a Unix time in milliseconds.
std::string FormatIsoMillis(int64_t unix_ms) {
  const time_t secs = static_cast<time_t>(unix_ms / 1000);
  tm utc{};
  gmtime_r(&secs, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     unix_ms % 1000);
}

// The instances of a pool with slots or benched (docs/operating.md, "Pools that stay healthy").
Json Instances(const slots::Pool& pool) {
  const int64_t mono = MonotonicNanos();
  timespec real{};
  clock_gettime(CLOCK_REALTIME, &real);
  const int64_t real_ns = int64_t{real.tv_sec} * 1'000'000'000 + real.tv_nsec;
  Json list = Json::array();
  const slots::InstanceTable& table = pool.instances();
  for (uint32_t i = 0; i < table.size(); ++i) {
    const slots::Instance& in = table.at(i);
    const int32_t slots = in.slots.load(std::memory_order_relaxed);
    const int64_t until = in.ejected_until_ns.load(std::memory_order_relaxed);
    if (slots <= 0 && until == 0) continue;
    Json j = Json::object();
    j["id"] = table.KeyOf(i);
    j["state"] = until != 0 ? "ejected" : "healthy";
    j["slots"] = std::max<int32_t>(0, slots);
    j["consecutive_failures"] = in.failures.load(std::memory_order_relaxed);
    j["ejections"] = in.ejections.load(std::memory_order_relaxed);
    if (until != 0) {
      const int64_t left_ns = std::max<int64_t>(0, until - mono);
      j["ejected_until"] = FormatIsoMillis((real_ns + left_ns) / 1'000'000);
      j["ejected_ms_left"] = left_ns / 1'000'000;
    } else {
      j["ejected_until"] = nullptr;
      j["ejected_ms_left"] = 0;
    }
    list.push_back(std::move(j));
  }
  return list;
}

}  // namespace

// Members are added in the order the admin API has always listed them (docs/operating.md, "Admin
// API").
AdminViews::TlsTotals AdminViews::SumTls() const {
  TlsTotals t;
  for (const WorkerStats* w : workers_) {
    t.tls12 += Load(w->tls.handshakes_tls12);
    t.tls13 += Load(w->tls.handshakes_tls13);
    t.resumed12 += Load(w->tls.resumed_tls12);
    t.resumed13 += Load(w->tls.resumed_tls13);
    for (size_t i = 0; i < t.failures.size(); ++i) t.failures[i] += Load(w->tls.failures[i]);
  }
  return t;
}

Json AdminViews::Pools() const {
  Json list = Json::array();
  for (uint32_t id = 0; id < shared_->pools.size(); ++id) {
    const slots::Pool& pool = *shared_->pools.at(id);
    if (pool.closing() && pool.registered.load() <= 0 && pool.tunnels.load() <= 0) {
      continue;  // gone for good
    }
    const PoolTotals t = Totals(workers_, id);
    const int64_t registered = std::max<int64_t>(0, pool.registered.load());
    const int64_t busy = std::max<int64_t>(0, pool.busy.load());
    Json p = Json::object();
    p["name"] = pool.name();
    p["registered"] = registered;
    p["idle"] = std::max<int64_t>(0, registered - busy);
    p["busy"] = busy;
    p["waiting"] = std::max<int64_t>(0, pool.waiting.load());
    // Complete responses from the pool's services, counted when the service's response was
    // whole (whether or not its client then took it all; tunnels are not responses: see
    // "tunnels_total"). Requests shed never reach a service and are counted under "shed".
    p["served"] = t.served;
    Json shed_by_reason = Json::object();
    shed_by_reason["queue_full"] = t.shed_queue_full;
    shed_by_reason["queue_timeout"] = t.shed_queue_timeout;
    shed_by_reason["closing"] = t.shed_closing;
    shed_by_reason["max_tunnels"] = pool.tunnels_refused.load(std::memory_order_relaxed);
    p["shed"] = std::move(shed_by_reason);
    p["retries"] = t.retries;
    p["draining"] = pool.closing();
    const std::map<std::string, int> service_slots = pool.Services();
    Json services = Json::object();
    for (const auto& [service, slots] : service_slots) services[service] = slots;
    p["services"] = std::move(services);
    // The addresses l7px dials itself (`upstreams`): state, slots held, why one is down.
    Json upstreams = Json::array();
    for (const auto& [address, status] : pool.Upstreams()) {
      Json u = Json::object();
      u["address"] = address;
      u["state"] = status.state;
      const auto held = service_slots.find(address);
      u["slots"] = held != service_slots.end() ? held->second : 0;
      u["error"] = status.error;
      u["since"] = FormatIsoMillis(status.changed_ms);
      upstreams.push_back(std::move(u));
    }
    p["upstreams"] = std::move(upstreams);
    p["instances"] = Instances(pool);
    p["instances_ejected"] = std::max<int32_t>(0, pool.instances().ejected.load());
    p["ejections"] = pool.ejections_total.load(std::memory_order_relaxed);
    // Slots that became tunnels (101) left the counts above; the service replaces them.
    p["tunnels"] = std::max<int64_t>(0, pool.tunnels.load(std::memory_order_relaxed));
    p["tunnels_total"] = pool.tunnels_total.load(std::memory_order_relaxed);
    p["max_tunnels"] = pool.settings().max_tunnels;
    list.push_back(std::move(p));
  }
  return list;
}

std::string AdminViews::PoolsJson() const {
  Json json = Json::object();
  json["pools"] = Pools();
  return DumpJson(json) + "\n";
}

std::string AdminViews::StatsJson() const {
  int64_t connections = 0;
  uint64_t requests = 0;
  uint64_t enobufs = 0;
  uint64_t accept_exhausted = 0;
  uint64_t connection_limit_pauses = 0;
  uint64_t body_too_slow = 0;
  uint64_t stray_slots = 0;
  uint64_t send_timeouts = 0;
  int64_t response_buffer_bytes = 0;
  for (const WorkerStats* s : workers_) {
    response_buffer_bytes += s->response_buffer_bytes.load(std::memory_order_relaxed);
    connections += s->client_connections.load(std::memory_order_relaxed);
    requests += Load(s->requests);
    enobufs += Load(s->enobufs);
    accept_exhausted += Load(s->accept_exhausted);
    connection_limit_pauses += Load(s->connection_limit_pauses);
    body_too_slow += Load(s->body_too_slow);
    stray_slots += Load(s->stray_slots);  // caught by the lease-time look
    send_timeouts += Load(s->send_timeouts);
  }
  Json json = Json::object();
  json["workers"] = static_cast<int64_t>(workers_.size());
  json["client_connections"] = connections;
  json["requests"] = requests;
  // Overload and hostile-client counters (see docs/operating.md, "Limits").
  json["recv_no_buffer"] = enobufs;
  json["accept_out_of_fds"] = accept_exhausted;
  json["connection_limit_pauses"] = connection_limit_pauses;
  json["body_too_slow"] = body_too_slow;
  // Slots closed at lease for bytes the service sent before it was sent a request.
  for (uint32_t id = 0; id < shared_->pools.size(); ++id) {  // caught while idle (acceptor)
    stray_slots += shared_->pools.at(id)->stray_idle.load(std::memory_order_relaxed);
  }
  json["stray_slots"] = stray_slots;
  // Responses cut because the client stopped reading (server.send_timeout).
  json["send_timeouts"] = send_timeouts;
  // Memory held now for responses read ahead of slow clients (pool.response_buffer).
  json["response_buffer_bytes"] = response_buffer_bytes;
  // TLS handshakes on tls.listen (docs/configuration.md, "[tls]").
  const TlsTotals t = SumTls();
  Json tls = Json::object();
  tls["handshakes_tls12"] = t.tls12;
  tls["handshakes_tls13"] = t.tls13;
  tls["resumptions"] = t.resumed12 + t.resumed13;
  uint64_t failures = 0;
  Json by_reason = Json::object();
  for (size_t i = 0; i < t.failures.size(); ++i) {
    failures += t.failures[i];
    by_reason[transport::TlsFailureName(static_cast<transport::TlsFailure>(i))] = t.failures[i];
  }
  tls["handshake_failures"] = failures;
  tls["handshake_failures_by_reason"] = std::move(by_reason);
  json["tls"] = std::move(tls);
  json["pools"] = Pools();
  return DumpJson(json) + "\n";
}

std::string AdminViews::RoutesJson(const std::vector<ControlPlane::RouteRecord>& routes) const {
  Json list = Json::array();
  for (const auto& r : routes) list.push_back(config::RouteJson(r.id, r.route));
  Json json = Json::object();
  json["routes"] = std::move(list);
  return DumpJson(json) + "\n";
}

std::string AdminViews::MetricsText() const {
  fmt::memory_buffer out;
  auto put = [&out](std::string_view format, const auto&... args) {
    fmt::format_to(std::back_inserter(out), fmt::runtime(format), args...);
  };
  const uint32_t pools = shared_->pools.size();

  put("# HELP l7px_requests_total Requests answered, by pool and status code.\n");
  put("# TYPE l7px_requests_total counter\n");
  for (uint32_t id = 0; id < pools; ++id) {
    const std::string name = Label(shared_->pools.at(id)->name());
    for (int code = 100; code < 600; ++code) {
      uint64_t n = 0;
      for (const WorkerStats* w : workers_) {
        if (const PoolMetrics* m = w->pools.Get(id)) n += Load(m->responses[code]);
      }
      if (n > 0) put("l7px_requests_total{{pool=\"{}\",code=\"{}\"}} {}\n", name, code, n);
    }
  }

  auto histogram = [&](const char* metric, const char* help, auto member) {
    put("# HELP {} {}\n# TYPE {} histogram\n", metric, help, metric);
    for (uint32_t id = 0; id < pools; ++id) {
      uint64_t buckets[Histogram::kBuckets + 1] = {};
      uint64_t count = 0;
      uint64_t sum_ns = 0;
      bool any = false;
      for (const WorkerStats* w : workers_) {
        const PoolMetrics* m = w->pools.Get(id);
        if (m == nullptr) continue;
        any = true;
        const Histogram& h = m->*member;
        for (int b = 0; b <= Histogram::kBuckets; ++b) buckets[b] += Load(h.buckets[b]);
        count += Load(h.count);
        sum_ns += Load(h.sum_ns);
      }
      if (!any) continue;
      const std::string name = Label(shared_->pools.at(id)->name());
      uint64_t cumulative = 0;
      for (int b = 0; b < Histogram::kBuckets; ++b) {
        cumulative += buckets[b];
        put("{}_bucket{{pool=\"{}\",le=\"{}\"}} {}\n", metric, name, Histogram::kBounds[b],
            cumulative);
      }
      cumulative += buckets[Histogram::kBuckets];
      put("{}_bucket{{pool=\"{}\",le=\"+Inf\"}} {}\n", metric, name, cumulative);
      put("{}_sum{{pool=\"{}\"}} {:.9f}\n", metric, name, static_cast<double>(sum_ns) / 1e9);
      put("{}_count{{pool=\"{}\"}} {}\n", metric, name, count);
    }
  };
  histogram("l7px_request_duration_seconds",
            "Time from the first request byte to the end of the response.", &PoolMetrics::duration);
  histogram("l7px_queue_wait_seconds", "Time requests waited for an idle slot.",
            &PoolMetrics::queue_wait);

  auto gauge_per_pool = [&](const char* metric, const char* help, auto value) {
    put("# HELP {} {}\n# TYPE {} gauge\n", metric, help, metric);
    for (uint32_t id = 0; id < pools; ++id) {
      const slots::Pool& pool = *shared_->pools.at(id);
      if (pool.closing() && pool.registered.load() <= 0 && pool.tunnels.load() <= 0) continue;
      put("{}{{pool=\"{}\"}} {}\n", metric, Label(pool.name()), value(pool));
    }
  };
  gauge_per_pool("l7px_queue_waiting", "Requests waiting for an idle slot.",
                 [](const slots::Pool& p) { return std::max<int64_t>(0, p.waiting.load()); });
  gauge_per_pool("l7px_slots_registered", "Registered slots.",
                 [](const slots::Pool& p) { return std::max<int64_t>(0, p.registered.load()); });
  gauge_per_pool("l7px_slots_idle", "Registered slots not serving a request.",
                 [](const slots::Pool& p) {
                   return std::max<int64_t>(0, p.registered.load() - p.busy.load());
                 });

  put("# HELP l7px_shed_total Requests answered 503 without reaching a service.\n");
  put("# TYPE l7px_shed_total counter\n");
  for (uint32_t id = 0; id < pools; ++id) {
    const std::string name = Label(shared_->pools.at(id)->name());
    const PoolTotals t = Totals(workers_, id);
    put("l7px_shed_total{{pool=\"{}\",reason=\"queue_full\"}} {}\n", name, t.shed_queue_full);
    put("l7px_shed_total{{pool=\"{}\",reason=\"queue_timeout\"}} {}\n", name, t.shed_queue_timeout);
    put("l7px_shed_total{{pool=\"{}\",reason=\"pool_closing\"}} {}\n", name, t.shed_closing);
    put("l7px_shed_total{{pool=\"{}\",reason=\"max_tunnels\"}} {}\n", name,
        Load(shared_->pools.at(id)->tunnels_refused));
  }
  put("# HELP l7px_retries_total Requests re-dispatched after a slot died before any byte.\n");
  put("# TYPE l7px_retries_total counter\n");
  for (uint32_t id = 0; id < pools; ++id) {
    put("l7px_retries_total{{pool=\"{}\"}} {}\n", Label(shared_->pools.at(id)->name()),
        Totals(workers_, id).retries);
  }

  put("# HELP l7px_ejections_total Instances benched after failing eject_after times in a row.\n");
  put("# TYPE l7px_ejections_total counter\n");
  for (uint32_t id = 0; id < pools; ++id) {
    const slots::Pool& pool = *shared_->pools.at(id);
    put("l7px_ejections_total{{pool=\"{}\"}} {}\n", Label(pool.name()), Load(pool.ejections_total));
  }
  gauge_per_pool("l7px_instances_ejected", "Instances benched now.", [](const slots::Pool& p) {
    return std::max<int32_t>(0, p.instances().ejected.load());
  });

  put("# HELP l7px_upstream_up Whether an address of a pool's upstreams answers (1) or not (0).\n");
  put("# TYPE l7px_upstream_up gauge\n");
  for (uint32_t id = 0; id < pools; ++id) {
    const slots::Pool& pool = *shared_->pools.at(id);
    for (const auto& [address, status] : pool.Upstreams()) {
      put("l7px_upstream_up{{pool=\"{}\",address=\"{}\"}} {}\n", Label(pool.name()), Label(address),
          status.state == "down" ? 0 : 1);
    }
  }

  gauge_per_pool("l7px_tunnels", "Open tunnels (slots that left the pool after a 101).",
                 [](const slots::Pool& p) { return std::max<int64_t>(0, p.tunnels.load()); });
  put("# HELP l7px_tunnels_total Tunnels opened (101 responses passed on to clients).\n");
  put("# TYPE l7px_tunnels_total counter\n");
  for (uint32_t id = 0; id < pools; ++id) {
    const slots::Pool& pool = *shared_->pools.at(id);
    put("l7px_tunnels_total{{pool=\"{}\"}} {}\n", Label(pool.name()), Load(pool.tunnels_total));
  }

  put("# HELP l7px_slot_registrations_total Registration attempts, by result.\n");
  put("# TYPE l7px_slot_registrations_total counter\n");
  for (uint32_t id = 0; id < pools; ++id) {
    const slots::Pool& pool = *shared_->pools.at(id);
    const std::string name = Label(pool.name());
    put("l7px_slot_registrations_total{{pool=\"{}\",result=\"ok\"}} {}\n", name,
        Load(pool.registrations_ok));
    put("l7px_slot_registrations_total{{pool=\"{}\",result=\"refused\"}} {}\n", name,
        Load(pool.registrations_refused));
  }

  int64_t connections = 0;
  for (const WorkerStats* s : workers_) connections += s->client_connections.load();
  put("# HELP l7px_client_connections Open client connections.\n");
  put("# TYPE l7px_client_connections gauge\nl7px_client_connections {}\n", connections);
  const TlsTotals tls = SumTls();
  put("# HELP l7px_tls_handshakes_total TLS handshakes: completed by protocol version, failed by "
      "reason.\n");
  put("# TYPE l7px_tls_handshakes_total counter\n");
  put("l7px_tls_handshakes_total{{result=\"ok\",version=\"1.2\"}} {}\n", tls.tls12);
  put("l7px_tls_handshakes_total{{result=\"ok\",version=\"1.3\"}} {}\n", tls.tls13);
  for (size_t i = 0; i < tls.failures.size(); ++i) {
    put("l7px_tls_handshakes_total{{result=\"failed\",reason=\"{}\"}} {}\n",
        transport::TlsFailureName(static_cast<transport::TlsFailure>(i)), tls.failures[i]);
  }
  put("# HELP l7px_tls_resumptions_total TLS handshakes that resumed a session (a ticket).\n");
  put("# TYPE l7px_tls_resumptions_total counter\n");
  put("l7px_tls_resumptions_total{{version=\"1.2\"}} {}\n", tls.resumed12);
  put("l7px_tls_resumptions_total{{version=\"1.3\"}} {}\n", tls.resumed13);
  put("# HELP l7px_upgrades_total Upgrade handoffs in this process's lineage (each --takeover adds "
      "one).\n");
  put("# TYPE l7px_upgrades_total counter\nl7px_upgrades_total {}\n",
      shared_->upgrades.load(std::memory_order_relaxed));
  return fmt::to_string(out);
}

}  // namespace l7px::proxy
