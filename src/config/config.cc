// TOML -> Config: the sections and their keys, on the readers of toml_reader.h (with it, the
// only translation units that include toml++, a heavy header).
// Every error is "<source>:<line>: <key path>: <problem>"; the first error found wins.

#include "config/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <initializer_list>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/strings.h"
#include "base/unique_fd.h"
#include "config/quote.h"
#include "config/route_rules.h"
#include "config/toml_reader.h"
#include "config/toml_traps.h"

namespace l7px::config {
namespace {

constexpr Duration kMaxBusyPoll = std::chrono::milliseconds(10);
constexpr uint64_t kMaxConfigBytes = 16u << 20;

struct Listener {
  std::string path;
  int line;
  SocketAddress addr;
};

class Loader : public TomlReader {
 public:
  explicit Loader(std::string_view source) : TomlReader(source) {}

  absl::StatusOr<Config> Load(const toml::table& root) {
    Config config;
    config.source = source_;
    if (!LoadAll(root, &config)) return absl::InvalidArgumentError(error_);
    return config;
  }

 private:
  // A string or an array of address strings, at least one; `accept(node, path, text, addr)`
  // checks each parsed address and may refuse it (returning Fail's false).
  template <typename Fn>
  bool GetAddressList(const toml::node& node, std::string_view path,
                      std::vector<SocketAddress>* out, Fn accept) {
    out->clear();
    const bool ok =
        ForEachString(node, path, [&](const toml::node& n, std::string_view p, std::string_view t) {
          absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(t);
          if (!addr.ok()) return FailStatus(n, p, addr.status());
          if (!accept(n, p, t, *addr)) return false;
          out->push_back(*addr);
          return true;
        });
    if (!ok) return false;
    if (out->empty()) return Fail(node, path, "needs at least one address");
    return true;
  }

  // Addresses l7px listens on (checked for collisions later, CheckListenersDistinct).
  bool GetAddresses(const toml::node& node, std::string_view path,
                    std::vector<SocketAddress>* out) {
    return GetAddressList(
        node, path, out,
        [&](const toml::node& n, std::string_view p, std::string_view, const SocketAddress& addr) {
          listeners_.push_back({std::string(p), LineOf(n), addr});
          return true;
        });
  }

  // Addresses l7px dials (pool.upstreams): IP literals with a port, or unix: paths; no two alike.
  bool GetUpstreams(const toml::node& node, std::string_view path,
                    std::vector<SocketAddress>* out) {
    return GetAddressList(
        node, path, out,
        [&](const toml::node& n, std::string_view p, std::string_view t,
            const SocketAddress& addr) {
          const bool any =
              addr.ToString().starts_with("0.0.0.0:") || addr.ToString().starts_with("[::]:");
          if (!addr.is_unix() && (addr.port() == 0 || any)) {
            return Fail(n, p,
                        absl::StrCat("cannot dial ", Shown(t),
                                     " (needs an IP that is not a wildcard and a port 1..65535)"));
          }
          if (std::find(out->begin(), out->end(), addr) != out->end()) {
            return Fail(n, p, absl::StrCat("duplicate upstream ", Shown(t)));
          }
          return true;
        });
  }

  bool GetCidrs(const toml::node& node, std::string_view path, std::vector<Cidr>* out) {
    out->clear();
    return ForEachString(node, path,
                         [&](const toml::node& n, std::string_view p, std::string_view t) {
                           absl::StatusOr<Cidr> cidr = Cidr::Parse(t);
                           if (!cidr.ok()) return FailStatus(n, p, cidr.status());
                           out->push_back(*cidr);
                           return true;
                         });
  }

  // ---- sections -------------------------------------------------------------------------

  bool LoadAll(const toml::table& root, Config* config) {
    // Register first: pools and routes default to register.default_pool.
    const toml::node* pool_node = nullptr;
    const toml::node* route_node = nullptr;
    if (const toml::node* reg = root.get("register")) {
      if (!LoadRegister(*reg, &config->reg)) return false;
    }
    for (auto&& [key, node] : root) {
      const std::string_view name = key.str();
      if (name == "server") {
        if (!LoadServer(node, &config->server)) return false;
      } else if (name == "register") {
        // Loaded above.
      } else if (name == "admin") {
        if (!LoadAdmin(node, &config->admin)) return false;
      } else if (name == "upgrade") {
        if (!LoadUpgrade(node, &config->upgrade)) return false;
      } else if (name == "log") {
        if (!LoadLog(node, &config->log)) return false;
      } else if (name == "tls") {
        if (!LoadTls(node, &config->tls)) return false;
      } else if (name == "pool") {
        pool_node = &node;
      } else if (name == "route") {
        route_node = &node;
      } else {
        return UnknownKey(
            key, node, "",
            {"server", "tls", "register", "admin", "upgrade", "log", "pool", "route"});
      }
    }
    // Defaults join the collision check: "server.listen = 127.0.0.1:9999" alone must fail.
    if (config->server.listen.empty()) {
      config->server.listen.push_back(DefaultListener("server.listen", "127.0.0.1:8080"));
    }
    if (config->reg.listen.empty()) {
      config->reg.listen.push_back(DefaultListener("register.listen", "127.0.0.1:9999"));
    }
    if (!admin_seen_) config->admin.listen = DefaultListener("admin.listen", "127.0.0.1:9901");
    if (!CheckListenersDistinct()) return false;

    if (pool_node != nullptr) {
      if (!LoadPools(*pool_node, &config->pools)) return false;
    }
    if (config->pools.empty()) {
      Pool implicit;
      implicit.name = config->reg.default_pool;
      config->pools.push_back(std::move(implicit));
    } else if (config->FindPool(config->reg.default_pool) == nullptr) {
      return Fail(default_pool_line_ != 0 ? default_pool_line_ : config->pools.front().line,
                  "register.default_pool",
                  absl::StrCat("unknown pool ", Shown(config->reg.default_pool),
                               " (declared: ", PoolNames(config->pools), ")"));
    }

    if (route_node != nullptr) {
      if (!LoadRoutes(*route_node, *config, &config->routes)) return false;
    }
    if (config->routes.empty()) {
      Route implicit;
      implicit.pool = config->reg.default_pool;
      config->routes.push_back(std::move(implicit));
    }
    return true;
  }

  SocketAddress DefaultListener(std::string_view path, std::string_view text) {
    SocketAddress addr = *SocketAddress::Parse(text);
    listeners_.push_back({absl::StrCat(ToAbsl(path), " (default)"), 0, addr});
    return addr;
  }

  static std::string PoolNames(const std::vector<Pool>& pools) {
    return absl::StrJoin(pools, ", ", [](std::string* out, const Pool& p) { out->append(p.name); });
  }

  bool LoadServer(const toml::node& node, Server* out) {
    const toml::table* table = nullptr;
    if (!GetTable(node, "server", &table)) return false;
    for (auto&& [key, value] : *table) {
      const std::string_view k = key.str();
      const std::string path = Join("server", k);
      bool ok = true;
      if (k == "workers") {
        ok = GetU32(value, path, 0, 1024, &out->workers);
      } else if (k == "listen") {
        ok = GetAddresses(value, path, &out->listen);
      } else if (k == "keepalive_timeout") {
        ok = GetDuration(value, path, Duration::zero(), &out->keepalive_timeout);
      } else if (k == "header_timeout") {
        ok = GetDuration(value, path, std::chrono::milliseconds(1), &out->header_timeout);
      } else if (k == "max_header_bytes") {
        uint64_t v = 0;
        ok = GetSize(value, path, 1 << 10, 1 << 20, &v);
        out->max_header_bytes = static_cast<uint32_t>(v);
      } else if (k == "max_body_bytes") {
        ok = GetSize(value, path, 0, uint64_t{1} << 40, &out->max_body_bytes);
      } else if (k == "body_timeout") {
        ok = GetDuration(value, path, std::chrono::milliseconds(1), &out->body_timeout);
      } else if (k == "send_timeout") {
        ok = GetDuration(value, path, std::chrono::milliseconds(1), &out->send_timeout);
      } else if (k == "min_body_rate") {
        ok = GetRate(value, path, uint64_t{1} << 40, &out->min_body_rate);
      } else if (k == "body_buffer") {
        ok = GetSize(value, path, 0, kMaxBodyBuffer, &out->body_buffer);
      } else if (k == "response_buffer_memory") {
        ok = GetSize(value, path, 0, uint64_t{1} << 40, &out->response_buffer_memory);
      } else if (k == "max_connections") {
        ok = GetU32(value, path, 0, 1u << 24, &out->max_connections);
      } else if (k == "trusted_proxies") {
        ok = GetCidrs(value, path, &out->trusted_proxies);
      } else if (k == "busy_poll") {
        ok = GetDuration(value, path, Duration::zero(), &out->busy_poll);
        if (ok && out->busy_poll > kMaxBusyPoll) {
          ok = Fail(value, path,
                    absl::StrCat("must be at most ", ToNanos(kMaxBusyPoll) / 1'000'000,
                                 "ms (a worker polls this long per sleep)"));
        }
      } else {
        return UnknownKey(
            key, value, "server",
            {"workers", "listen", "keepalive_timeout", "header_timeout", "max_header_bytes",
             "max_body_bytes", "body_timeout", "min_body_rate", "send_timeout", "body_buffer",
             "max_connections", "busy_poll", "trusted_proxies", "response_buffer_memory"});
      }
      if (!ok) return false;
    }
    return true;
  }

  bool LoadRegister(const toml::node& node, Register* out) {
    const toml::table* table = nullptr;
    if (!GetTable(node, "register", &table)) return false;
    for (auto&& [key, value] : *table) {
      const std::string_view k = key.str();
      const std::string path = Join("register", k);
      bool ok = true;
      if (k == "listen") {
        ok = GetAddresses(value, path, &out->listen);
      } else if (k == "handshake") {
        std::string text;
        if (!GetString(value, path, &text)) return false;
        if (text == "upgrade") {
          out->handshake = Handshake::kUpgrade;
        } else if (text == "none") {
          out->handshake = Handshake::kNone;
        } else if (text == "mxproxy") {
          out->handshake = Handshake::kMxproxy;
        } else {
          return Fail(value, path,
                      absl::StrCat("bad handshake ", Shown(text), " (use upgrade, none, mxproxy)"));
        }
      } else if (k == "default_pool") {
        ok = GetPoolName(value, path, &out->default_pool);
        default_pool_line_ = LineOf(value);
      } else if (k == "allow") {
        ok = GetCidrs(value, path, &out->allow);
      } else {
        return UnknownKey(key, value, "register", {"listen", "handshake", "default_pool", "allow"});
      }
      if (!ok) return false;
    }
    return true;
  }

  bool LoadTls(const toml::node& node, Tls* out) {
    const toml::table* table = nullptr;
    if (!GetTable(node, "tls", &table)) return false;
    out->line = LineOf(node);
    for (auto&& [key, value] : *table) {
      const std::string_view k = key.str();
      const std::string path = Join("tls", k);
      bool ok = true;
      if (k == "listen") {
        ok = GetAddresses(value, path, &out->listen);
      } else if (k == "min_version") {
        std::string v;
        ok = GetString(value, path, &v);
        out->min_version = v == "TLSv1.3" ? 0x0304 : 0x0303;
        if (ok && v != "TLSv1.2" && v != "TLSv1.3") {
          ok = Fail(value, path,
                    absl::StrCat("bad version ", Shown(v), " (use \"TLSv1.2\" or ",
                                 "\"TLSv1.3\"; older ones are off)"));
        }
      } else if (k == "ciphers") {
        ok = GetCleanString(value, path, &out->ciphers);
      } else if (k == "session_tickets") {
        ok = value.is_boolean() || WrongType(value, path, "a boolean");
        if (ok) out->session_tickets = value.as_boolean()->get();
      } else if (k == "handshake_timeout") {
        ok = GetDuration(value, path, std::chrono::milliseconds(1), &out->handshake_timeout);
      } else if (k == "certificate") {
        const toml::array* array = nullptr;
        ok = GetTableArray(value, path, &array);
        for (size_t i = 0; ok && i < array->size(); ++i) {
          const std::string base = Index("tls.certificate", i);
          const toml::table* cert = nullptr;
          if (!GetTable(*array->get(i), base, &cert)) return false;
          TlsCertificate c;
          c.line = LineOf(*array->get(i));
          for (auto&& [ck, cv] : *cert) {
            const std::string cpath = Join(base, ck.str());
            if (ck.str() == "cert") {
              if (!GetCleanString(cv, cpath, &c.cert)) return false;
            } else if (ck.str() == "key") {
              if (!GetCleanString(cv, cpath, &c.key)) return false;
            } else {
              return UnknownKey(ck, cv, base, {"cert", "key"});
            }
          }
          if (c.cert.empty() || c.key.empty()) {
            return Fail(*array->get(i), base, "needs both cert and key (paths to PEM files)");
          }
          out->certificates.push_back(std::move(c));
        }
      } else {
        return UnknownKey(key, value, "tls",
                          {"listen", "min_version", "ciphers", "session_tickets",
                           "handshake_timeout", "certificate"});
      }
      if (!ok) return false;
    }
    if (!out->listen.empty() && out->certificates.empty()) {
      return Fail(node, "tls.certificate",
                  "tls.listen needs at least one [[tls.certificate]] (cert and key)");
    }
    return true;
  }

  bool LoadAdmin(const toml::node& node, Admin* out) {
    const toml::table* table = nullptr;
    if (!GetTable(node, "admin", &table)) return false;
    for (auto&& [key, value] : *table) {
      const std::string_view k = key.str();
      const std::string path = Join("admin", k);
      if (k == "listen") {
        std::string text;
        if (!GetString(value, path, &text)) return false;
        admin_seen_ = true;
        if (text.empty()) {
          out->listen.reset();
          continue;
        }
        absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(text);
        if (!addr.ok()) return FailStatus(value, path, addr.status());
        listeners_.push_back({path, LineOf(value), *addr});
        out->listen = *addr;
      } else if (k == "token") {
        if (!GetCleanString(value, path, &out->token)) return false;
      } else {
        return UnknownKey(key, value, "admin", {"listen", "token"});
      }
    }
    return true;
  }

  bool LoadUpgrade(const toml::node& node, Upgrade* out) {
    const toml::table* table = nullptr;
    if (!GetTable(node, "upgrade", &table)) return false;
    for (auto&& [key, value] : *table) {
      const std::string_view k = key.str();
      const std::string path = Join("upgrade", k);
      if (k == "socket") {
        if (!GetCleanString(value, path, &out->socket)) return false;
        if (out->socket.empty() || out->socket.size() >= sizeof(sockaddr_un{}.sun_path)) {
          return Fail(value, path,
                      absl::StrCat("unix socket path must be 1..",
                                   sizeof(sockaddr_un{}.sun_path) - 1, " bytes"));
        }
      } else if (k == "drain_timeout") {
        if (!GetDuration(value, path, Duration::zero(), &out->drain_timeout)) return false;
      } else if (k == "pid_file") {
        if (!GetCleanString(value, path, &out->pid_file)) return false;
      } else {
        return UnknownKey(key, value, "upgrade", {"socket", "drain_timeout", "pid_file"});
      }
    }
    return true;
  }

  bool LoadLog(const toml::node& node, Log* out) {
    const toml::table* table = nullptr;
    if (!GetTable(node, "log", &table)) return false;
    for (auto&& [key, value] : *table) {
      const std::string_view k = key.str();
      const std::string path = Join("log", k);
      std::string text;
      if (k == "level") {
        if (!GetString(value, path, &text)) return false;
        if (!ParseLogLevel(text, &out->level)) {
          return Fail(value, path,
                      absl::StrCat("bad level ", Shown(text), " (use debug, info, warn, error)"));
        }
      } else if (k == "access") {
        if (!GetCleanString(value, path, &out->access)) return false;
        if (out->access.empty()) {
          return Fail(value, path, "must be a path, \"stdout\" or \"off\"");
        }
      } else if (k == "format") {
        if (!GetString(value, path, &text)) return false;
        if (text == "json") {
          out->format = AccessFormat::kJson;
        } else if (text == "combined") {
          out->format = AccessFormat::kCombined;
        } else {
          return Fail(value, path,
                      absl::StrCat("bad format ", Shown(text), " (use json, combined)"));
        }
      } else {
        return UnknownKey(key, value, "log", {"level", "access", "format"});
      }
    }
    return true;
  }

  // `[[pool]]` arrays and `pool = [{...}]` are the same TOML value: an array of tables.
  bool GetTableArray(const toml::node& node, std::string_view path, const toml::array** out) {
    *out = node.as_array();
    if (*out == nullptr) {
      return Fail(node, path,
                  absl::StrCat("expected an array of tables ([[", ToAbsl(path), "]]), got ",
                               ToAbsl(TypeName(node.type()))));
    }
    return true;
  }

  bool LoadPools(const toml::node& node, std::vector<Pool>* out) {
    const toml::array* array = nullptr;
    if (!GetTableArray(node, "pool", &array)) return false;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string base = Index("pool", i);
      const toml::table* table = nullptr;
      if (!GetTable(element, base, &table)) return false;
      Pool pool;
      pool.line = LineOf(element);
      bool has_name = false;
      int upstreams_line = pool.line;
      int upstream_slots_line = pool.line;
      for (auto&& [key, value] : *table) {
        const std::string_view k = key.str();
        const std::string path = Join(base, k);
        bool ok = true;
        if (k == "name") {
          ok = GetPoolName(value, path, &pool.name);
          has_name = true;
        } else if (k == "max_slots") {
          ok = GetU32(value, path, 1, 1'000'000, &pool.max_slots);
        } else if (k == "queue") {
          ok = GetU32(value, path, 0, 1'000'000, &pool.queue);
        } else if (k == "queue_timeout") {
          ok = GetDuration(value, path, Duration::zero(), &pool.queue_timeout);
        } else if (k == "response_timeout") {
          ok = GetDuration(value, path, std::chrono::milliseconds(1), &pool.response_timeout);
        } else if (k == "token") {
          ok = GetCleanString(value, path, &pool.token);
        } else if (k == "retries") {
          ok = GetU32(value, path, 0, 10, &pool.retries);
        } else if (k == "eject_after") {
          ok = GetU32(value, path, 0, 1'000'000, &pool.eject_after);
        } else if (k == "eject_time") {
          ok = GetDuration(value, path, std::chrono::milliseconds(1), &pool.eject_time);
        } else if (k == "max_ejected") {
          ok = GetPercent(value, path, &pool.max_ejected_percent);
        } else if (k == "response_buffer") {
          ok = GetSize(value, path, 0, kMaxResponseBuffer, &pool.response_buffer);
        } else if (k == "max_tunnels") {
          ok = GetU32(value, path, 0, 1'000'000, &pool.max_tunnels);
        } else if (k == "tunnel_idle_timeout") {
          ok = GetDuration(value, path, std::chrono::milliseconds(1), &pool.tunnel_idle_timeout);
        } else if (k == "upstreams") {
          ok = GetUpstreams(value, path, &pool.upstreams);
          upstreams_line = LineOf(value);
        } else if (k == "upstream_slots") {
          ok = GetU32(value, path, 1, 1'000'000, &pool.upstream_slots);
          upstream_slots_line = LineOf(value);
        } else {
          return UnknownKey(
              key, value, base,
              {"name", "max_slots", "queue", "queue_timeout", "response_timeout", "token",
               "retries", "eject_after", "eject_time", "max_ejected", "response_buffer",
               "max_tunnels", "tunnel_idle_timeout", "upstreams", "upstream_slots"});
        }
        if (!ok) return false;
      }
      if (!has_name) return Fail(element, base, "missing required key \"name\"");
      // The default (8) is not held against a small max_slots in a pool without upstreams.
      if (upstream_slots_line != pool.line && pool.upstream_slots > pool.max_slots) {
        return Fail(
            upstream_slots_line, Join(base, "upstream_slots"),
            absl::StrCat(pool.upstream_slots, " is more than max_slots (", pool.max_slots, ")"));
      }
      if (uint64_t{pool.upstream_slots} * pool.upstreams.size() > pool.max_slots) {
        return Fail(
            upstreams_line, Join(base, "upstreams"),
            absl::StrCat(pool.upstreams.size(), " addresses x upstream_slots ", pool.upstream_slots,
                         " is more than max_slots (", pool.max_slots, ")"));
      }
      for (const Pool& other : *out) {
        if (other.name == pool.name) {
          return Fail(*table->get("name"), Join(base, "name"),
                      absl::StrCat("duplicate pool name ", Shown(pool.name),
                                   " (first declared on line ", other.line, ")"));
        }
      }
      out->push_back(std::move(pool));
    }
    return true;
  }

  bool LoadHost(const toml::node& node, std::string_view path, std::string* out) {
    std::string host;
    if (!GetString(node, path, &host)) return false;
    if (!NormalizeRouteHost(&host)) {
      return Fail(node, path,
                  absl::StrCat("bad host ", Shown(host),
                               " (use \"*\", \"*.example.com\" or \"example.com\")"));
    }
    *out = std::move(host);
    return true;
  }

  bool LoadPath(const toml::node& node, std::string_view path, std::string* out) {
    std::string text;
    if (!GetString(node, path, &text)) return false;
    if (text.empty() || text.front() != '/') {
      return Fail(node, path, absl::StrCat("bad path ", Shown(text), " (must start with '/')"));
    }
    if (!IsValidRoutePath(text)) {
      return Fail(node, path,
                  absl::StrCat("bad path ", Shown(text),
                               " (no spaces, control characters, '?' or '#'; at most 4096 bytes)"));
    }
    *out = std::move(text);
    return true;
  }

  bool LoadHeaderMatch(const toml::node& node, std::string_view path,
                       std::optional<HeaderMatch>* out) {
    const toml::table* table = nullptr;
    if (!GetTable(node, path, &table)) return false;
    HeaderMatch match;
    bool has_name = false;
    for (auto&& [key, value] : *table) {
      const std::string_view k = key.str();
      const std::string key_path = Join(path, k);
      if (k == "name") {
        if (!GetString(value, key_path, &match.name)) return false;
        if (!IsValidHeaderName(match.name)) {
          return Fail(value, key_path, absl::StrCat("bad header name ", Shown(match.name)));
        }
        has_name = true;
      } else if (k == "value") {
        std::string text;
        if (!GetString(value, key_path, &text)) return false;
        if (!IsValidHeaderValue(text)) {
          return Fail(value, key_path, absl::StrCat("bad header value ", Shown(text)));
        }
        match.value = std::move(text);
      } else {
        return UnknownKey(key, value, path, {"name", "value"});
      }
    }
    if (!has_name) return Fail(node, path, "missing required key \"name\"");
    *out = std::move(match);
    return true;
  }

  bool LoadRoutes(const toml::node& node, const Config& config, std::vector<Route>* out) {
    const toml::array* array = nullptr;
    if (!GetTableArray(node, "route", &array)) return false;
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string base = Index("route", i);
      const toml::table* table = nullptr;
      if (!GetTable(element, base, &table)) return false;
      Route route;
      route.line = LineOf(element);
      route.pool = config.reg.default_pool;
      for (auto&& [key, value] : *table) {
        const std::string_view k = key.str();
        const std::string path = Join(base, k);
        bool ok = true;
        if (k == "host") {
          ok = LoadHost(value, path, &route.host);
        } else if (k == "path") {
          ok = LoadPath(value, path, &route.path);
        } else if (k == "client_cidr") {
          ok = GetCidrs(value, path, &route.client_cidr);
        } else if (k == "header") {
          ok = LoadHeaderMatch(value, path, &route.header);
        } else if (k == "pool") {
          ok = GetPoolName(value, path, &route.pool);
          if (ok && config.FindPool(route.pool) == nullptr) {
            return Fail(value, path,
                        absl::StrCat("unknown pool ", Shown(route.pool),
                                     " (declared: ", PoolNames(config.pools), ")"));
          }
        } else {
          return UnknownKey(key, value, base, {"host", "path", "client_cidr", "header", "pool"});
        }
        if (!ok) return false;
      }
      out->push_back(std::move(route));
    }
    return true;
  }

  // Two listeners on one address would fail at bind time; say which keys collide now.
  // Port 0 (kernel-chosen) never collides.
  bool CheckListenersDistinct() {
    for (size_t i = 0; i < listeners_.size(); ++i) {
      const Listener& a = listeners_[i];
      if (!a.addr.is_unix() && a.addr.port() == 0) continue;
      for (size_t j = 0; j < i; ++j) {
        if (!(a.addr == listeners_[j].addr)) continue;
        // Blame the later line (defaults have line 0, so the key the user wrote).
        const Listener& b = listeners_[j];
        const Listener& here = a.line >= b.line ? a : b;
        const Listener& there = a.line >= b.line ? b : a;
        std::string where = there.path;
        if (there.line != 0) absl::StrAppend(&where, " (line ", there.line, ")");
        return Fail(here.line, here.path,
                    absl::StrCat("address ", here.addr.ToString(), " is already used by ", where));
      }
    }
    return true;
  }

  std::vector<Listener> listeners_;
  bool admin_seen_ = false;
  int default_pool_line_ = 0;
};

}  // namespace

const Pool* Config::FindPool(std::string_view name) const {
  for (const Pool& pool : pools) {
    if (pool.name == name) return &pool;
  }
  return nullptr;
}

absl::StatusOr<Config> Parse(std::string_view toml_text, std::string_view source_name) {
  const std::string source(source_name.empty() ? std::string_view("<string>") : source_name);
  const auto syntax_error = [&](const toml::parse_error& error) {
    return absl::InvalidArgumentError(absl::StrCat(ToAbsl(source), ":", error.source().begin.line,
                                                   ": ", ToAbsl(error.description())));
  };
  if (const std::optional<Trap> trap = FindTomlTrap(toml_text)) {
    // The text before the trap is safe to parse; the sentinel there ends it with an error on
    // the trap's line, so an error on an earlier line is the real one.
    std::string safe(toml_text.substr(0, trap->offset));
    const int line = 1 + static_cast<int>(std::count(safe.begin(), safe.end(), '\n'));
    safe += trap->sentinel;
    toml::parse_result result = toml::parse(safe, source);
    if (!result && static_cast<int>(result.error().source().begin.line) < line) {
      return syntax_error(result.error());
    }
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(source), ":", line, ": ", ToAbsl(trap->problem)));
  }
  toml::parse_result result = toml::parse(toml_text, source);
  if (!result) return syntax_error(result.error());
  return Loader(source).Load(result.table());
}

absl::StatusOr<Config> LoadFile(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot open: ", std::strerror(errno)));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory"));
  }
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InvalidArgumentError(absl::StrCat(path, ": read error: ", std::strerror(errno)));
    }
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > kMaxConfigBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": larger than ", kMaxConfigBytes >> 20, " MiB"));
    }
  }
  return Parse(text, path);
}

}  // namespace l7px::config
