#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/address.h"
#include "base/clock.h"
#include "base/log.h"

namespace l7px::config {

// The whole l7px configuration, as read from TOML (see conf/l7px.toml and docs/configuration.md).
// Plain values: every field is validated by Parse(); consumers never re-check them.

enum class Handshake { kUpgrade, kNone, kMxproxy };
enum class AccessFormat { kJson, kCombined };

// Request body bytes a connection's input buffer holds beyond the head.
inline constexpr uint64_t kMaxBodyBuffer = 64 * 1024;
// The largest pool.response_buffer.
inline constexpr uint64_t kMaxResponseBuffer = 64 << 20;

struct Server {
  uint32_t workers = 0;               // 0 = one per CPU (resolved by the caller, not here)
  std::vector<SocketAddress> listen;  // default 127.0.0.1:8080
  Duration keepalive_timeout = std::chrono::seconds(75);
  Duration header_timeout = std::chrono::seconds(10);
  uint32_t max_header_bytes = 16384;  // 1 KiB .. 1 MiB
  uint64_t max_body_bytes = 16ull << 20;
  // While l7px waits for request body bytes, each body_timeout window must bring at least
  // max(1, min_body_rate x window) bytes, else 408 and close (slow POST). Windows in which
  // l7px itself stopped reading (backpressure) are not judged.
  Duration body_timeout = std::chrono::seconds(20);
  uint64_t min_body_rate = 512;  // bytes per second; 0 = only the one byte per window
  // How long a client may leave a send from l7px unaccepted (its receive window full) before
  // the connection is closed: the client's own reading pace, judged apart from the service's
  // silence (pool.response_timeout). Like NGINX's send_timeout.
  Duration send_timeout = std::chrono::seconds(60);
  // A request body of at most this many bytes (by Content-Length, or a chunked body that ends
  // within it) is received whole before the request takes a slot or a place in the queue, so a
  // slow upload holds no slot while it trickles in. Longer bodies stream from the head on.
  // 0 = always stream. At most kMaxBodyBuffer: the body fits in the connection's input buffer.
  uint64_t body_buffer = kMaxBodyBuffer;
  // Client connections per worker; at the limit the worker stops accepting until one closes
  // (new connections wait in the listen backlog). 0 = no limit but file descriptors.
  uint32_t max_connections = 0;
  // Before a worker sleeps for completions it keeps polling for them this long (0 = never):
  // trades CPU for the wake-up a sleep costs when the next completion is microseconds away.
  Duration busy_poll = Duration::zero();
  // Clients whose address is in one of these are proxies l7px trusts: the X-Forwarded-Proto,
  // X-Forwarded-Host and X-Request-Id they send reach services. From anyone else l7px replaces
  // them. Empty (the default) = nobody.
  std::vector<Cidr> trusted_proxies;
  // The most memory one worker holds for responses read ahead of their clients
  // (pool.response_buffer), in 64 KiB buffers; beyond it responses stream. A response that fits
  // the one buffer every exchange has anyway needs none of it.
  uint64_t response_buffer_memory = 32 << 20;
};

struct Register {
  std::vector<SocketAddress> listen;  // default 127.0.0.1:9999; TCP or unix:
  Handshake handshake = Handshake::kUpgrade;
  std::string default_pool = "default";
  std::vector<Cidr> allow;  // empty = loopback (and unix sockets) only
};

struct Admin {
  std::optional<SocketAddress> listen;  // default 127.0.0.1:9901; "" disables admin
  std::string token;
};

struct Upgrade {
  std::string socket = "/tmp/l7px.upgrade.sock";
  Duration drain_timeout = std::chrono::seconds(30);
  // Written with the pid of the process serving (after a handoff: the new one); "" = none.
  std::string pid_file;
};

struct Log {
  LogLevel level = LogLevel::kInfo;
  std::string access = "stdout";  // path | "stdout" | "off"
  AccessFormat format = AccessFormat::kJson;
};

struct Pool {
  std::string name;
  uint32_t max_slots = 4096;
  uint32_t queue = 1024;
  Duration queue_timeout = std::chrono::seconds(1);
  Duration response_timeout = std::chrono::seconds(60);
  std::string token;
  uint32_t retries = 1;
  // Passive outlier ejection (docs/configuration.md): failures in a row that bench an instance
  // (0 = never), its first bench, and the most of the pool's instances benched at once.
  uint32_t eject_after = 5;
  Duration eject_time = std::chrono::seconds(10);
  uint32_t max_ejected_percent = 50;
  // A response of at most this many body bytes (or of unknown length, up to it) is read from
  // the slot as fast as the service sends it, and the slot goes back to the pool as soon as
  // the response is complete: a slow client then holds l7px's memory, not a service's slot.
  // Longer responses stream at the client's pace. 0 = always stream.
  uint64_t response_buffer = 1 << 20;
  // Tunnels (after 101; docs/configuration.md): upgrade requests under way plus open tunnels
  // (0 = upgrades answered 503), and how long a tunnel may stay silent both ways.
  uint32_t max_tunnels = 1024;
  Duration tunnel_idle_timeout = std::chrono::hours(1);
  // A service that only listens (docs/configuration.md#services-that-only-listen): l7px itself
  // keeps upstream_slots keep-alive connections to each address (TCP or unix:) and files them as
  // slots of this pool. upstream_slots x addresses fits max_slots.
  std::vector<SocketAddress> upstreams;
  uint32_t upstream_slots = 8;
  int line = 0;  // where it was declared (0 = implicit)
};

struct HeaderMatch {
  std::string name;
  std::optional<std::string> value;  // nullopt = header present
};

struct Route {
  std::string host = "*";  // exact (lower-cased), "*.suffix" or "*"
  std::string path = "/";  // prefix, starts with '/'
  std::vector<Cidr> client_cidr;
  std::optional<HeaderMatch> header;
  std::string pool;
  int line = 0;
};

// [[tls.certificate]]: a PEM certificate chain (leaf first, then intermediates) and its key.
struct TlsCertificate {
  std::string cert;
  std::string key;
  int line = 0;
};

// [tls]: listeners that terminate TLS (server.listen stays plain HTTP). The files are read and
// checked by the proxy when it builds its TLS contexts (also for -t), not here.
struct Tls {
  std::vector<SocketAddress> listen;
  uint16_t min_version = 0x0303;  // TLS 1.2; 0x0304 = TLS 1.3
  std::string ciphers;            // OpenSSL syntax for TLS 1.2; "" = Mozilla intermediate
  bool session_tickets = true;
  Duration handshake_timeout = std::chrono::seconds(10);
  std::vector<TlsCertificate> certificates;  // the first is the default
  int line = 0;
};

struct Config {
  std::string source;  // file path or "<string>"
  Server server;
  Tls tls;
  Register reg;
  Admin admin;
  Upgrade upgrade;
  Log log;
  std::vector<Pool> pools;
  std::vector<Route> routes;

  const Pool* FindPool(std::string_view name) const;
};

// Parses and validates a TOML document. Errors name the source, line and key, e.g.
//   "conf/l7px.toml:12: pool.queue_timeout: bad duration \"1x\" (use e.g. 500ms, 1s, 2m)".
// Defaults: no [[pool]] declares one pool named register.default_pool; no [[route]] declares
// one route "*" "/" -> register.default_pool.
absl::StatusOr<Config> Parse(std::string_view toml_text, std::string_view source_name);
absl::StatusOr<Config> LoadFile(const std::string& path);

// "250ms", "1s", "1.5s", "2m", "1h", "100us"; a bare integer is seconds. Must be >= 0.
absl::StatusOr<Duration> ParseDuration(std::string_view text);
// "512", "16KiB", "16MiB", "1GiB", also "k"/"KB"/"M"/"MB"/"G"/"GB" (powers of 1024).
absl::StatusOr<uint64_t> ParseSize(std::string_view text);
// A size per second: "<size>/s" ("1KiB/s", "512/s"); a bare size means per second too.
absl::StatusOr<uint64_t> ParseRate(std::string_view text);

}  // namespace l7px::config
