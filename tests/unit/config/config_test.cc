#include "config/config.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace l7px::config {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::HasSubstr;

// Joins lines with '\n' so line N of the document is element N-1.
std::string Lines(std::initializer_list<std::string_view> lines) {
  std::string out;
  for (std::string_view line : lines) {
    out.append(line);
    out += '\n';
  }
  return out;
}

Config MustParse(std::string_view text) {
  absl::StatusOr<Config> config = Parse(text, "t.toml");
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *std::move(config) : Config();
}

std::string ErrorOf(std::string_view text) {
  absl::StatusOr<Config> config = Parse(text, "t.toml");
  EXPECT_FALSE(config.ok()) << "accepted:\n" << text;
  return config.ok() ? "" : std::string(config.status().message());
}

std::string Str(const SocketAddress& addr) { return addr.ToString(); }

void ExpectDefaults(const Config& c) {
  EXPECT_EQ(c.server.workers, 0u);
  ASSERT_EQ(c.server.listen.size(), 1u);
  EXPECT_EQ(Str(c.server.listen[0]), "127.0.0.1:8080");
  EXPECT_EQ(c.server.keepalive_timeout, seconds(75));
  EXPECT_EQ(c.server.header_timeout, seconds(10));
  EXPECT_EQ(c.server.max_header_bytes, 16384u);
  EXPECT_EQ(c.server.max_body_bytes, 16u << 20);
  EXPECT_EQ(c.server.body_timeout, seconds(20));
  EXPECT_EQ(c.server.send_timeout, seconds(60));
  EXPECT_EQ(c.server.min_body_rate, 512u);
  EXPECT_EQ(c.server.body_buffer, 65536u);
  EXPECT_EQ(c.server.max_connections, 0u);
  EXPECT_EQ(c.server.busy_poll, std::chrono::nanoseconds::zero());
  EXPECT_TRUE(c.server.trusted_proxies.empty());  // nobody's forwarding headers are kept
  ASSERT_EQ(c.reg.listen.size(), 1u);
  EXPECT_EQ(Str(c.reg.listen[0]), "127.0.0.1:9999");
  EXPECT_EQ(c.reg.handshake, Handshake::kUpgrade);
  EXPECT_EQ(c.reg.default_pool, "default");
  EXPECT_TRUE(c.reg.allow.empty());
  ASSERT_TRUE(c.admin.listen.has_value());
  EXPECT_EQ(Str(*c.admin.listen), "127.0.0.1:9901");
  EXPECT_EQ(c.admin.token, "");
  EXPECT_EQ(c.upgrade.socket, "/tmp/l7px.upgrade.sock");
  EXPECT_EQ(c.upgrade.drain_timeout, seconds(30));
  EXPECT_EQ(c.log.level, LogLevel::kInfo);
  EXPECT_EQ(c.log.access, "stdout");
  EXPECT_EQ(c.log.format, AccessFormat::kJson);
  ASSERT_EQ(c.pools.size(), 1u);
  const Pool& p = c.pools[0];
  EXPECT_EQ(p.name, "default");
  EXPECT_EQ(p.max_slots, 4096u);
  EXPECT_EQ(p.queue, 1024u);
  EXPECT_EQ(p.queue_timeout, seconds(1));
  EXPECT_EQ(p.response_timeout, seconds(60));
  EXPECT_EQ(p.token, "");
  EXPECT_EQ(p.retries, 1u);
  EXPECT_EQ(p.eject_after, 5u);
  EXPECT_EQ(p.eject_time, seconds(10));
  EXPECT_EQ(p.max_ejected_percent, 50u);
  EXPECT_EQ(p.max_tunnels, 1024u);
  EXPECT_EQ(p.tunnel_idle_timeout, std::chrono::hours(1));
  ASSERT_EQ(c.routes.size(), 1u);
  const Route& r = c.routes[0];
  EXPECT_EQ(r.host, "*");
  EXPECT_EQ(r.path, "/");
  EXPECT_TRUE(r.client_cidr.empty());
  EXPECT_FALSE(r.header.has_value());
  EXPECT_EQ(r.pool, "default");
}

TEST(ConfigTest, EmptyDocumentGivesDefaults) {
  Config c = MustParse("");
  EXPECT_EQ(c.source, "t.toml");
  ExpectDefaults(c);
  EXPECT_EQ(c.pools[0].line, 0);  // implicit
  EXPECT_EQ(c.routes[0].line, 0);
  EXPECT_EQ(c.FindPool("default"), &c.pools[0]);
  EXPECT_EQ(c.FindPool("nope"), nullptr);
}

TEST(ConfigTest, SourceNameDefaultsToString) {
  EXPECT_EQ(Parse("", "").value().source, "<string>");
  EXPECT_THAT(std::string(Parse("[server]\nworkers = \"x\"\n", "").status().message()),
              testing::StartsWith("<string>:2: server.workers: "));
}

TEST(ConfigTest, ShippedConfigLoadsWithDefaults) {
  absl::StatusOr<Config> c = LoadFile(L7PX_SOURCE_DIR "/conf/l7px.toml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->source, L7PX_SOURCE_DIR "/conf/l7px.toml");
  ExpectDefaults(*c);
  EXPECT_GT(c->pools[0].line, 0);  // declared in the file
  EXPECT_GT(c->routes[0].line, c->pools[0].line);
}

TEST(ConfigTest, EveryKey) {
  Config c = MustParse(Lines({
      "[server]",
      "workers = 8",
      "listen = [\"0.0.0.0:80\", \"[::1]:8080\", \"unix:/run/front.sock\"]",
      "keepalive_timeout = \"5s\"",
      "header_timeout = 3",
      "max_header_bytes = \"32KiB\"",
      "max_body_bytes = 1048576",
      "body_timeout = \"2s\"",
      "min_body_rate = \"4KiB/s\"",
      "body_buffer = \"8KiB\"",
      "max_connections = 5000",
      "busy_poll = \"50us\"",
      "[register]",
      "listen = \"unix:/run/l7px.sock\"",
      "handshake = \"mxproxy\"",
      "default_pool = \"api\"",
      "allow = [\"10.0.0.0/8\", \"::1\"]",
      "[admin]",
      "listen = \"[::1]:9901\"",
      "token = \"s3cret\"",
      "[upgrade]",
      "socket = \"/run/l7px.up\"",
      "drain_timeout = \"2m\"",
      "pid_file = \"/run/l7px.pid\"",
      "[log]",
      "level = \"debug\"",
      "access = \"/var/log/l7px.log\"",
      "format = \"combined\"",
      "[[pool]]",
      "name = \"api\"",
      "max_slots = 10",
      "queue = 0",
      "queue_timeout = \"250ms\"",
      "response_timeout = \"1.5s\"",
      "token = \"pool-token\"",
      "retries = 0",
      "[[pool]]",
      "name = \"slow\"",
      "[[route]]",
      "host = \"API.Example.COM\"",
      "path = \"/v1/\"",
      "client_cidr = [\"192.168.0.0/16\"]",
      "header = { name = \"X-Slice\", value = \"slow\" }",
      "pool = \"slow\"",
      "[[route]]",
      "host = \"*.Example.com\"",
      "client_cidr = \"10.0.0.0/8\"",
      "header = { name = \"X-Canary\" }",
  }));
  EXPECT_EQ(c.server.workers, 8u);
  ASSERT_EQ(c.server.listen.size(), 3u);
  EXPECT_EQ(Str(c.server.listen[0]), "0.0.0.0:80");
  EXPECT_EQ(Str(c.server.listen[1]), "[::1]:8080");
  EXPECT_EQ(Str(c.server.listen[2]), "unix:/run/front.sock");
  EXPECT_EQ(c.server.keepalive_timeout, seconds(5));
  EXPECT_EQ(c.server.header_timeout, seconds(3));
  EXPECT_EQ(c.server.max_header_bytes, 32768u);
  EXPECT_EQ(c.server.max_body_bytes, 1048576u);
  EXPECT_EQ(c.server.body_timeout, seconds(2));
  EXPECT_EQ(c.server.min_body_rate, 4096u);
  EXPECT_EQ(c.server.body_buffer, 8192u);
  EXPECT_EQ(c.server.max_connections, 5000u);
  EXPECT_EQ(c.server.busy_poll, microseconds(50));
  ASSERT_EQ(c.reg.listen.size(), 1u);
  EXPECT_EQ(Str(c.reg.listen[0]), "unix:/run/l7px.sock");
  EXPECT_EQ(c.reg.handshake, Handshake::kMxproxy);
  EXPECT_EQ(c.reg.default_pool, "api");
  ASSERT_EQ(c.reg.allow.size(), 2u);
  EXPECT_EQ(c.reg.allow[0].ToString(), "10.0.0.0/8");
  EXPECT_EQ(c.reg.allow[1].ToString(), "::1/128");
  ASSERT_TRUE(c.admin.listen.has_value());
  EXPECT_EQ(Str(*c.admin.listen), "[::1]:9901");
  EXPECT_EQ(c.admin.token, "s3cret");
  EXPECT_EQ(c.upgrade.socket, "/run/l7px.up");
  EXPECT_EQ(c.upgrade.drain_timeout, seconds(120));
  EXPECT_EQ(c.upgrade.pid_file, "/run/l7px.pid");
  EXPECT_EQ(c.log.level, LogLevel::kDebug);
  EXPECT_EQ(c.log.access, "/var/log/l7px.log");
  EXPECT_EQ(c.log.format, AccessFormat::kCombined);

  ASSERT_EQ(c.pools.size(), 2u);
  const Pool& api = c.pools[0];
  EXPECT_EQ(api.name, "api");
  EXPECT_EQ(api.max_slots, 10u);
  EXPECT_EQ(api.queue, 0u);
  EXPECT_EQ(api.queue_timeout, milliseconds(250));
  EXPECT_EQ(api.response_timeout, milliseconds(1500));
  EXPECT_EQ(api.token, "pool-token");
  EXPECT_EQ(api.retries, 0u);
  EXPECT_EQ(api.line, 29);
  const Pool& slow = c.pools[1];
  EXPECT_EQ(slow.name, "slow");
  EXPECT_EQ(slow.max_slots, 4096u);  // per-pool defaults
  EXPECT_EQ(slow.queue, 1024u);
  EXPECT_EQ(slow.retries, 1u);
  EXPECT_EQ(slow.line, 37);
  EXPECT_EQ(c.FindPool("slow"), &c.pools[1]);

  ASSERT_EQ(c.routes.size(), 2u);
  const Route& r0 = c.routes[0];
  EXPECT_EQ(r0.host, "api.example.com");
  EXPECT_EQ(r0.path, "/v1/");
  ASSERT_EQ(r0.client_cidr.size(), 1u);
  EXPECT_EQ(r0.client_cidr[0].ToString(), "192.168.0.0/16");
  ASSERT_TRUE(r0.header.has_value());
  EXPECT_EQ(r0.header->name, "X-Slice");
  EXPECT_EQ(r0.header->value, std::optional<std::string>("slow"));
  EXPECT_EQ(r0.pool, "slow");
  EXPECT_EQ(r0.line, 39);
  const Route& r1 = c.routes[1];
  EXPECT_EQ(r1.host, "*.example.com");
  EXPECT_EQ(r1.path, "/");
  ASSERT_EQ(r1.client_cidr.size(), 1u);
  ASSERT_TRUE(r1.header.has_value());
  EXPECT_EQ(r1.header->name, "X-Canary");
  EXPECT_FALSE(r1.header->value.has_value());  // header present is enough
  EXPECT_EQ(r1.pool, "api");                   // register.default_pool
  EXPECT_EQ(r1.line, 45);
}

TEST(ConfigTest, SendTimeout) {
  Config c = MustParse(Lines({"[server]", "send_timeout = \"30s\""}));
  EXPECT_EQ(c.server.send_timeout, seconds(30));
}

TEST(ConfigTest, TrustedProxies) {
  Config c = MustParse(
      Lines({"[server]", "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"2001:db8::/32\"]"}));
  ASSERT_EQ(c.server.trusted_proxies.size(), 3u);
  EXPECT_EQ(c.server.trusted_proxies[0].ToString(), "10.0.0.0/8");
  EXPECT_EQ(c.server.trusted_proxies[1].ToString(), "192.0.2.7/32");
  EXPECT_EQ(c.server.trusted_proxies[2].ToString(), "2001:db8::/32");
  EXPECT_TRUE(MustParse("[server]\ntrusted_proxies = []\n").server.trusted_proxies.empty());
}

TEST(ConfigTest, AdminCanBeDisabled) {
  Config c = MustParse("[admin]\nlisten = \"\"\n");
  EXPECT_FALSE(c.admin.listen.has_value());
}

TEST(ConfigTest, ImplicitPoolFollowsDefaultPool) {
  Config c = MustParse("[register]\ndefault_pool = \"api\"\n");
  ASSERT_EQ(c.pools.size(), 1u);
  EXPECT_EQ(c.pools[0].name, "api");
  EXPECT_EQ(c.pools[0].max_slots, 4096u);
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].pool, "api");
  EXPECT_EQ(c.routes[0].host, "*");
  EXPECT_EQ(c.routes[0].path, "/");
}

TEST(ConfigTest, RoutesWithoutPoolsUseImplicitPool) {
  Config c = MustParse(Lines({"[[route]]", "path = \"/a\"", "[[route]]", "pool = \"default\""}));
  ASSERT_EQ(c.pools.size(), 1u);
  ASSERT_EQ(c.routes.size(), 2u);
  EXPECT_EQ(c.routes[0].pool, "default");
  EXPECT_EQ(c.routes[0].path, "/a");
  EXPECT_EQ(c.routes[1].line, 3);
}

TEST(ConfigTest, PoolsWithoutRoutesGetDefaultRoute) {
  Config c = MustParse(Lines({"[[pool]]", "name = \"default\"", "[[pool]]", "name = \"b\""}));
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].pool, "default");
  EXPECT_EQ(c.routes[0].line, 0);
}

TEST(ConfigTest, InlineArraysOfTablesAndDottedKeys) {
  Config c = MustParse(Lines({
      "server.workers = 2",
      "pool = [{ name = \"default\", retries = 3 }]",
      "route = [{ path = \"/x\", header = { name = \"a\", value = \"\" } }]",
  }));
  EXPECT_EQ(c.server.workers, 2u);
  EXPECT_EQ(c.pools[0].retries, 3u);
  ASSERT_TRUE(c.routes[0].header.has_value());
  EXPECT_EQ(c.routes[0].header->value, std::optional<std::string>(""));
}

TEST(ConfigTest, EjectionKeys) {
  Config c = MustParse(
      Lines({"[[pool]]", "name = \"default\"", "eject_after = 0", "eject_time = \"250ms\"",
             "max_ejected = \"100%\"", "[[pool]]", "name = \"b\"", "eject_after = 3",
             "eject_time = 2", "max_ejected = \"0%\""}));
  EXPECT_EQ(c.pools[0].eject_after, 0u);
  EXPECT_EQ(c.pools[0].eject_time, milliseconds(250));
  EXPECT_EQ(c.pools[0].max_ejected_percent, 100u);
  EXPECT_EQ(c.pools[1].eject_after, 3u);
  EXPECT_EQ(c.pools[1].eject_time, seconds(2));
  EXPECT_EQ(c.pools[1].max_ejected_percent, 0u);
}

TEST(ConfigTest, ResponseBufferKeys) {
  Config d = MustParse(Lines({"[[pool]]", "name = \"default\""}));
  EXPECT_EQ(d.pools[0].response_buffer, 1u << 20);
  EXPECT_EQ(d.server.response_buffer_memory, 32u << 20);
  Config c = MustParse(
      Lines({"[server]", "response_buffer_memory = 0", "[[pool]]", "name = \"default\"",
             "response_buffer = \"64MiB\"", "[[pool]]", "name = \"b\"", "response_buffer = 0"}));
  EXPECT_EQ(c.server.response_buffer_memory, 0u);
  EXPECT_EQ(c.pools[0].response_buffer, 64u << 20);
  EXPECT_EQ(c.pools[1].response_buffer, 0u);
}

TEST(ConfigTest, TunnelKeys) {
  Config c = MustParse(
      Lines({"[[pool]]", "name = \"default\"", "max_tunnels = 0", "tunnel_idle_timeout = \"250ms\"",
             "[[pool]]", "name = \"b\"", "max_tunnels = 50000", "tunnel_idle_timeout = 90"}));
  EXPECT_EQ(c.pools[0].max_tunnels, 0u);
  EXPECT_EQ(c.pools[0].tunnel_idle_timeout, milliseconds(250));
  EXPECT_EQ(c.pools[1].max_tunnels, 50000u);
  EXPECT_EQ(c.pools[1].tunnel_idle_timeout, seconds(90));
}

TEST(ConfigTest, UpstreamKeys) {
  Config c =
      MustParse(Lines({"[[pool]]", "name = \"default\"",
                       "upstreams = [\"127.0.0.1:3000\", \"[::1]:3001\", \"unix:/run/a.sock\"]",
                       "upstream_slots = 16", "[[pool]]", "name = \"b\""}));
  ASSERT_EQ(c.pools[0].upstreams.size(), 3u);
  EXPECT_EQ(c.pools[0].upstreams[0].ToString(), "127.0.0.1:3000");
  EXPECT_EQ(c.pools[0].upstreams[1].ToString(), "[::1]:3001");
  EXPECT_EQ(c.pools[0].upstreams[2].ToString(), "unix:/run/a.sock");
  EXPECT_EQ(c.pools[0].upstream_slots, 16u);
  EXPECT_TRUE(c.pools[1].upstreams.empty());
  EXPECT_EQ(c.pools[1].upstream_slots, 8u);
  EXPECT_EQ(MustParse("[[pool]]\nname = \"default\"\nupstreams = \"127.0.0.1:1\"\n")
                .pools[0]
                .upstreams.size(),
            1u);
}

TEST(ConfigTest, UpstreamErrorsNameTheLine) {
  const std::string head = "[[pool]]\nname = \"default\"\n";
  EXPECT_EQ(ErrorOf(head + "upstreams = [\"example.com:80\"]"),
            "t.toml:3: pool[0].upstreams[0]: bad IPv4 address \"example.com:80\" (host names are "
            "not resolved; use an IP)");
  EXPECT_THAT(ErrorOf(head + "upstreams = [\"127.0.0.1:0\"]"),
              HasSubstr("t.toml:3: pool[0].upstreams[0]: cannot dial \"127.0.0.1:0\""));
  EXPECT_THAT(ErrorOf(head + "upstreams = [\"*:80\"]"), HasSubstr("cannot dial \"*:80\""));
  EXPECT_THAT(ErrorOf(head + "upstreams = [\"[::]:80\"]"), HasSubstr("cannot dial"));
  EXPECT_THAT(ErrorOf(head + "upstreams = [\"127.0.0.1:80\", \"127.0.0.1:80\"]"),
              HasSubstr("t.toml:3: pool[0].upstreams[1]: duplicate upstream \"127.0.0.1:80\""));
  EXPECT_THAT(ErrorOf(head + "upstreams = []"),
              HasSubstr("t.toml:3: pool[0].upstreams: needs at least one address"));
  EXPECT_THAT(ErrorOf(head + "upstreams = [1]"), HasSubstr("expected a string"));
  EXPECT_THAT(ErrorOf(head + "upstream_slots = 0"), HasSubstr("t.toml:3: pool[0].upstream_slots:"));
  EXPECT_EQ(MustParse(head + "max_slots = 2").pools[0].max_slots, 2u);  // default 8 not held
  EXPECT_EQ(
      ErrorOf(head + "max_slots = 2\nupstreams = [\"127.0.0.1:1\"]"),
      "t.toml:4: pool[0].upstreams: 1 addresses x upstream_slots 8 is more than max_slots (2)");
  EXPECT_EQ(ErrorOf(head + "max_slots = 4\nupstream_slots = 5"),
            "t.toml:4: pool[0].upstream_slots: 5 is more than max_slots (4)");
  EXPECT_EQ(ErrorOf(head + "max_slots = 10\nupstream_slots = 4\n"
                           "upstreams = [\"127.0.0.1:1\", \"127.0.0.1:2\", \"unix:/a\"]"),
            "t.toml:5: pool[0].upstreams: 3 addresses x upstream_slots 4 is more than max_slots "
            "(10)");
}

TEST(ConfigTest, HostForms) {
  for (auto [in, out] : std::initializer_list<std::pair<std::string_view, std::string_view>>{
           {"*", "*"},
           {"Example.COM", "example.com"},
           {"*.Example.com", "*.example.com"},
           {"localhost", "localhost"},
           {"10.0.0.1", "10.0.0.1"},
           {"[::1]", "[::1]"},
           {"my_host-1.internal", "my_host-1.internal"},
       }) {
    Config c = MustParse("[[route]]\nhost = \"" + std::string(in) + "\"\n");
    ASSERT_EQ(c.routes.size(), 1u);
    EXPECT_EQ(c.routes[0].host, out);
  }
}

TEST(ConfigTest, ListenersOnPortZeroMayRepeat) {
  Config c = MustParse(Lines({
      "[server]",
      "listen = [\"127.0.0.1:0\", \"127.0.0.1:0\"]",
      "[register]",
      "listen = \"127.0.0.1:0\"",
      "[admin]",
      "listen = \"127.0.0.1:0\"",
  }));
  EXPECT_EQ(c.server.listen.size(), 2u);
}

struct ErrorCase {
  std::string text;
  std::string message;  // exact, after "t.toml:"
};

TEST(ConfigTest, ErrorsNameLineAndKey) {
  const ErrorCase cases[] = {
      // Unknown keys, with a hint when the key is close to a known one.
      {Lines({"[server]", "workers = 1", "lissten = [\"127.0.0.1:1\"]"}),
       "3: server: unknown key \"lissten\" (did you mean \"listen\"?)"},
      {Lines({"", "[srever]"}), "2: srever: unknown key \"srever\" (did you mean \"server\"?)"},
      {Lines({"[zzz]"}),
       "1: zzz: unknown key \"zzz\" (expected one of: server, tls, register, admin, upgrade, log, "
       "pool, route)"},
      {Lines({"\"a\\nb\" = 1"}),
       "1: unknown key \"a\\x0ab\" (expected one of: server, tls, register, admin, upgrade, log, "
       "pool, route)"},
      {Lines({"[register]", "handshak = \"none\""}),
       "2: register: unknown key \"handshak\" (did you mean \"handshake\"?)"},
      {Lines({"[admin]", "tokens = \"\""}),
       "2: admin: unknown key \"tokens\" (did you mean \"token\"?)"},
      {Lines({"[upgrade]", "sock = \"/x\""}),
       "2: upgrade: unknown key \"sock\" (did you mean \"socket\"?)"},
      {Lines({"[log]", "levle = \"info\""}),
       "2: log: unknown key \"levle\" (did you mean \"level\"?)"},
      {Lines({"[[pool]]", "name = \"default\"", "[[pool]]", "name = \"b\"", "retry = 2"}),
       "5: pool[1]: unknown key \"retry\" (did you mean \"retries\"?)"},
      {Lines({"[[route]]", "hosts = \"*\""}),
       "2: route[0]: unknown key \"hosts\" (did you mean \"host\"?)"},
      {Lines({"[[route]]", "header = { name = \"a\", val = \"b\" }"}),
       "2: route[0].header: unknown key \"val\" (did you mean \"value\"?)"},
      // Wrong types.
      {Lines({"[server]", "workers = \"4\""}),
       "2: server.workers: expected an integer, got a string"},
      {Lines({"[server]", "listen = 8080"}),
       "2: server.listen: expected a string or an array of strings, got an integer"},
      {Lines({"[server]", "listen = [", "  \"127.0.0.1:1\",", "  2,", "]"}),
       "4: server.listen[1]: expected a string, got an integer"},
      {Lines({"server = 1"}), "1: server: expected a table, got an integer"},
      {Lines({"[admin]", "listen = [\"127.0.0.1:1\"]"}),
       "2: admin.listen: expected a string, got an array"},
      {Lines({"[log]", "level = 1"}), "2: log.level: expected a string, got an integer"},
      {Lines({"[server]", "keepalive_timeout = 1.5"}),
       "2: server.keepalive_timeout: expected a duration (\"500ms\", \"1s\") or integer seconds, "
       "got a float"},
      {Lines({"[server]", "max_body_bytes = true"}),
       "2: server.max_body_bytes: expected a size (integer bytes or \"16KiB\"), got a boolean"},
      {Lines({"[pool]", "name = \"x\""}),
       "1: pool: expected an array of tables ([[pool]]), got a table"},
      {Lines({"pool = [1]"}), "1: pool[0]: expected a table, got an integer"},
      {Lines({"[[route]]", "header = \"X-A\""}),
       "2: route[0].header: expected a table, got a string"},
      // Durations and sizes.
      {Lines({"[[pool]]", "name = \"default\"", "", "[[pool]]", "name = \"b\"",
              "queue_timeout = \"1x\""}),
       "6: pool[1].queue_timeout: bad duration \"1x\" (use e.g. 500ms, 1s, 2m)"},
      {Lines({"[server]", "header_timeout = -1"}),
       "2: server.header_timeout: bad duration -1 (must not be negative)"},
      {Lines({"[upgrade]", "drain_timeout = \"-1s\""}),
       "2: upgrade.drain_timeout: bad duration \"-1s\" (must not be negative)"},
      {Lines({"[upgrade]", "drain_timeout = \"25h\""}),
       "2: upgrade.drain_timeout: duration \"25h\" is longer than 24h"},
      {Lines({"[upgrade]", "drain_timeout = 86401"}),
       "2: upgrade.drain_timeout: duration 86401s is longer than 24h"},
      {Lines({"[server]", "header_timeout = \"0s\""}),
       "2: server.header_timeout: must be at least 1ms"},
      {Lines({"[server]", "max_body_bytes = \"16Q\""}),
       "2: server.max_body_bytes: bad size \"16Q\" (use e.g. 512, 16KiB, 16MiB)"},
      {Lines({"[server]", "max_header_bytes = 512"}),
       "2: server.max_header_bytes: size 512 is out of range (1024..1048576)"},
      {Lines({"[server]", "max_header_bytes = \"2MiB\""}),
       "2: server.max_header_bytes: size 2097152 is out of range (1024..1048576)"},
      {Lines({"[server]", "max_body_bytes = -5"}), "2: server.max_body_bytes: bad size -5"},
      {Lines({"[server]", "body_buffer = \"128KiB\""}),
       "2: server.body_buffer: size 131072 is out of range (0..65536)"},
      {Lines({"[server]", "body_timeout = \"0ms\""}),
       "2: server.body_timeout: must be at least 1ms"},
      {Lines({"[server]", "send_timeout = \"0s\""}),
       "2: server.send_timeout: must be at least 1ms"},
      {Lines({"[server]", "body_timeout = true"}),
       "2: server.body_timeout: expected a duration (\"500ms\", \"1s\") or integer seconds, got "
       "a boolean"},
      {Lines({"[server]", "min_body_rate = \"1KiB/m\""}),
       "2: server.min_body_rate: bad rate \"1KiB/m\" (use e.g. 512B/s, 1KiB/s, 1MiB/s)"},
      {Lines({"[server]", "min_body_rate = \"fast\""}),
       "2: server.min_body_rate: bad rate \"fast\" (use e.g. 512B/s, 1KiB/s, 1MiB/s)"},
      {Lines({"[server]", "min_body_rate = -1"}), "2: server.min_body_rate: bad rate -1"},
      {Lines({"[server]", "min_body_rate = \"2TiB/s\""}),
       "2: server.min_body_rate: rate 2199023255552/s is too large"},
      {Lines({"[server]", "min_body_rate = 1.5"}),
       "2: server.min_body_rate: expected a rate (integer bytes per second or \"1KiB/s\"), got a "
       "float"},
      {Lines({"[server]", "max_connections = -1"}),
       "2: server.max_connections: -1 is out of range (0..16777216)"},
      {Lines({"[server]", "max_connections = \"100\""}),
       "2: server.max_connections: expected an integer, got a string"},
      {Lines({"[server]", "busy_poll = \"11ms\""}),
       "2: server.busy_poll: must be at most 10ms (a worker polls this long per sleep)"},
      {Lines({"[server]", "busy_poll = \"-1us\""}),
       "2: server.busy_poll: bad duration \"-1us\" (must not be negative)"},
      // Ranges and enums.
      {Lines({"[server]", "workers = 1025"}), "2: server.workers: 1025 is out of range (0..1024)"},
      {Lines({"[server]", "workers = -1"}), "2: server.workers: -1 is out of range (0..1024)"},
      {Lines({"[[pool]]", "name = \"default\"", "max_slots = 0"}),
       "3: pool[0].max_slots: 0 is out of range (1..1000000)"},
      {Lines({"[[pool]]", "name = \"default\"", "queue = 1000001"}),
       "3: pool[0].queue: 1000001 is out of range (0..1000000)"},
      {Lines({"[[pool]]", "name = \"default\"", "retries = 11"}),
       "3: pool[0].retries: 11 is out of range (0..10)"},
      {Lines({"[[pool]]", "name = \"default\"", "eject_after = -1"}),
       "3: pool[0].eject_after: -1 is out of range (0..1000000)"},
      {Lines({"[[pool]]", "name = \"default\"", "eject_time = \"0s\""}),
       "3: pool[0].eject_time: must be at least 1ms"},
      {Lines({"[[pool]]", "name = \"default\"", "max_ejected = \"101%\""}),
       "3: pool[0].max_ejected: bad percentage \"101%\" (use \"0%\"..\"100%\")"},
      {Lines({"[[pool]]", "name = \"default\"", "max_ejected = \"50\""}),
       "3: pool[0].max_ejected: bad percentage \"50\" (use \"0%\"..\"100%\")"},
      {Lines({"[[pool]]", "name = \"default\"", "max_ejected = 50"}),
       "3: pool[0].max_ejected: expected a percentage (\"50%\"), got an integer"},
      {Lines({"[[pool]]", "name = \"default\"", "response_buffer = \"65MiB\""}),
       "3: pool[0].response_buffer: size 68157440 is out of range (0..67108864)"},
      {Lines({"[register]", "handshake = \"proxy\""}),
       "2: register.handshake: bad handshake \"proxy\" (use upgrade, none, mxproxy)"},
      {Lines({"[log]", "level = \"verbose\""}),
       "2: log.level: bad level \"verbose\" (use debug, info, warn, error)"},
      {Lines({"[log]", "format = \"xml\""}),
       "2: log.format: bad format \"xml\" (use json, combined)"},
      {Lines({"[log]", "access = \"\""}), "2: log.access: must be a path, \"stdout\" or \"off\""},
      // Addresses and CIDRs.
      {Lines({"[server]", "listen = [\"127.0.0.1:80\", \"example.com:80\"]"}),
       "2: server.listen[1]: bad IPv4 address \"example.com:80\" (host names are not resolved; "
       "use an IP)"},
      {Lines({"[server]", "listen = []"}), "2: server.listen: needs at least one address"},
      {Lines({"[register]", "listen = \"127.0.0.1:99999\""}),
       "2: register.listen: address \"127.0.0.1:99999\" has an invalid port"},
      {Lines({"[admin]", "listen = \"nowhere\""}),
       "2: admin.listen: address \"nowhere\" needs host:port, [v6]:port or unix:/path"},
      {Lines({"[server]", "trusted_proxies = [\"10.0.0.0/8\", \"::1/129\"]"}),
       "2: server.trusted_proxies[1]: bad CIDR \"::1/129\": /129 is longer than 128"},
      {Lines({"[server]", "trusted_proxies = 7"}),
       "2: server.trusted_proxies: expected a string or an array of strings, got an integer"},
      {Lines({"[register]", "allow = [\"10.0.0.0/8\", \"10.0.0.0/33\"]"}),
       "2: register.allow[1]: bad CIDR \"10.0.0.0/33\": /33 is longer than 32"},
      {Lines({"[[route]]", "client_cidr = \"bogus\""}),
       "2: route[0].client_cidr: bad CIDR \"bogus\""},
      {Lines({"[server]", "listen = \"127.0.0.1:9999\""}),
       "2: server.listen: address 127.0.0.1:9999 is already used by register.listen (default)"},
      {Lines({"[server]", "listen = \"127.0.0.1:7000\"", "[admin]", "listen = \"127.0.0.1:7000\""}),
       "4: admin.listen: address 127.0.0.1:7000 is already used by server.listen (line 2)"},
      {Lines({"[server]", "listen = [\"unix:/a\", \"unix:/a\"]"}),
       "2: server.listen[1]: address unix:/a is already used by server.listen[0] (line 2)"},
      {Lines({"[upgrade]", "socket = \"\""}),
       "2: upgrade.socket: unix socket path must be 1..107 bytes"},
      // Pools and routes.
      {Lines({"[[pool]]", "name = \"a\"", "[[pool]]", "name = \"a\""}),
       "4: pool[1].name: duplicate pool name \"a\" (first declared on line 1)"},
      {Lines({"[[pool]]", "max_slots = 1"}), "1: pool[0]: missing required key \"name\""},
      {Lines({"[[pool]]", "name = \"a b\""}),
       "2: pool[0].name: bad pool name \"a b\" (1..64 of A-Z a-z 0-9 _ - .)"},
      {Lines({"[register]", "default_pool = \"\""}),
       "2: register.default_pool: bad pool name \"\" (1..64 of A-Z a-z 0-9 _ - .)"},
      {Lines({"[[pool]]", "name = \"default\"", "[[route]]", "path = \"/\"", "pool = \"api\""}),
       "5: route[0].pool: unknown pool \"api\" (declared: default)"},
      {Lines({"[register]", "default_pool = \"web\"", "[[pool]]", "name = \"api\""}),
       "2: register.default_pool: unknown pool \"web\" (declared: api)"},
      {Lines({"", "[[pool]]", "name = \"api\""}),
       "2: register.default_pool: unknown pool \"default\" (declared: api)"},
      {Lines({"[[route]]", "path = \"api\""}),
       "2: route[0].path: bad path \"api\" (must start with '/')"},
      {Lines({"[[route]]", "path = \"/a b\""}),
       "2: route[0].path: bad path \"/a b\" (no spaces, control characters, '?' or '#'; at most "
       "4096 bytes)"},
      {Lines({"[[route]]", "host = \"a.*.com\""}),
       "2: route[0].host: bad host \"a.*.com\" (use \"*\", \"*.example.com\" or \"example.com\")"},
      {Lines({"[[route]]", "host = \"example.com:80\""}),
       "2: route[0].host: bad host \"example.com:80\" (use \"*\", \"*.example.com\" or "
       "\"example.com\")"},
      {Lines({"[[route]]", "header = { value = \"x\" }"}),
       "2: route[0].header: missing required key \"name\""},
      {Lines({"[[route]]", "header = { name = \"X A\" }"}),
       "2: route[0].header.name: bad header name \"X A\""},
      {Lines({"[[route]]", "header = { name = \"X\", value = \"a\\r\\nb\" }"}),
       "2: route[0].header.value: bad header value \"a\\x0d\\x0ab\""},
      {Lines({"[[pool]]", "name = \"default\"", "token = \"a\\nb\""}),
       "3: pool[0].token: must not contain control characters"},
  };
  for (const ErrorCase& c : cases) {
    EXPECT_EQ(ErrorOf(c.text), "t.toml:" + c.message) << c.text;
  }
}

TEST(ConfigTest, SyntaxErrorsNameTheLine) {
  const std::string message = ErrorOf(Lines({"[server]", "workers = 1", "listen = [\"a\""}));
  EXPECT_THAT(message, testing::StartsWith("t.toml:3: ")) << message;
  EXPECT_THAT(ErrorOf(Lines({"[server]", "[server]"})), testing::StartsWith("t.toml:2: "));
  EXPECT_THAT(ErrorOf(Lines({"a = 1", "a = 2"})), testing::StartsWith("t.toml:2: "));
}

TEST(ConfigTest, TomlTrapsAreErrorsNotCrashes) {
  // toml++ 3.3 asserts on these; Parse() must reject them itself.
  for (std::string_view text : {"[#a]", "[ #a]", "[[#a]]", "[=]", "[.]", "[[=]]", "[[[a]]]",
                                "\xEF\xBB\xBF[#]", "[\x01]", "[\xc3\xa9]"}) {
    const std::string message = ErrorOf(text);
    EXPECT_THAT(message, testing::StartsWith("t.toml:1: ")) << text;
  }
  EXPECT_EQ(ErrorOf(Lines({"[server]", "workers = 1", "  [*]"})),
            "t.toml:3: bad table header: expected a key after '['");
  for (std::string_view text : {"a = [}", "a = [1,}]", "a = [ # x\n}]", "a = {b = [[1], }}"}) {
    EXPECT_THAT(ErrorOf(text), HasSubstr("in the array, got '}'")) << text;
  }
  EXPECT_EQ(ErrorOf(Lines({"[server]", "listen = [", "  }]"})),
            "t.toml:3: expected a value or ']' in the array, got '}'");
  for (std::string_view text : {"\xc3\xa9", "a = 1 \xc3\xa9", "a = [\xc3\xa9]", "a = 0x\xc3\xa9",
                                "a = 1=\"\xc3\xa9\"", "a = 1'\"\"\"\xc2\xb5", "\xef\xbb\xbd"}) {
    EXPECT_THAT(ErrorOf(text), HasSubstr("non-ASCII character outside a string")) << text;
  }
  EXPECT_THAT(ErrorOf("a = \"\"\"x\\\n  \xc3\xa9\"\"\""), HasSubstr("after a backslash"));
  // Non-ASCII text inside strings and comments is fine.
  EXPECT_THAT(ErrorOf("a = \"\xc3\xa9\" # \xc3\xa9\n"), HasSubstr("unknown key \"a\""));
  // Stray commas must not stall the scan.
  EXPECT_THAT(ErrorOf("a = [1,,]"), testing::StartsWith("t.toml:1: "));
  EXPECT_THAT(ErrorOf("a = [,"), testing::StartsWith("t.toml:1: "));
  // An earlier syntax error is reported first.
  EXPECT_THAT(ErrorOf(Lines({"a = ", "[#]"})), testing::StartsWith("t.toml:1: "));
}

TEST(ConfigTest, BracketsInsideValuesAreNotTableHeaders) {
  // toml++ accepts all of this; the loader then stops at the first unknown key.
  const std::string text = Lines({
      "a = \"\"\"",
      "[#not a header]",
      "\"\"\"",
      "b = '''",
      "[=]",
      "'''",
      "c = [",
      "  [ # comment",
      "    1],",
      "  [{ x = 1 }],",
      "  [\"[#\"],",
      "]",
      "d = \"x\\\"[#\"",
      "e = \"\"\"q\"\"\"\"\"",
      "f = 'it'",
      "g = 1979-05-27 07:32:00",
      "h = [ 1, -2, +3.5e2, inf, nan, 0x1F, true ]",
      "i = \"\"\"a\\",
      "   b\"\"\"",
      "j = { k = [ \"x\", { l = 1 } ], m = '[#' }",
      "n = \"\\u00e9\xc3\xa9\"",
      "[\"quoted]key\".x]",
      "[[arr]]  # [#",
  });
  EXPECT_THAT(ErrorOf(text), testing::StartsWith("t.toml:1: a: unknown key \"a\""));
}

TEST(ConfigTest, LoadFileErrors) {
  absl::StatusOr<Config> missing = LoadFile("/nonexistent/dir/l7px.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()),
              HasSubstr("/nonexistent/dir/l7px.toml: cannot open"));
  absl::StatusOr<Config> dir = LoadFile(L7PX_SOURCE_DIR "/conf");
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(std::string(dir.status().message()), HasSubstr("is a directory"));
}

TEST(ConfigTest, ParseNeverCrashesOnMutatedInput) {
  // A bounded, deterministic mutation run over the shipped config: Parse must return, not crash.
  absl::StatusOr<Config> base = LoadFile(L7PX_SOURCE_DIR "/conf/l7px.toml");
  ASSERT_TRUE(base.ok());
  std::string seed =
      Lines({"[server]", "workers = 0", "listen = [\"127.0.0.1:8080\"]",
             "max_body_bytes = \"16MiB\"", "[register]", "allow = [\"10.0.0.0/8\"]", "[[pool]]",
             "name = \"default\"", "queue_timeout = \"1.5s\"", "[[route]]", "host = \"*.a.b\"",
             "header = { name = \"X\", value = \"v\" }", "client_cidr = [\"::1/128\"]"});
  ASSERT_TRUE(Parse(seed, "seed").ok());
  std::mt19937 rng(12345);
  const char kAlphabet[] = "[]{}=\".,:/*-_ \n#0123456789abcsmhKiB\\\x00\xff";
  int accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string text = seed;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !text.empty(); ++e) {
      const size_t pos = rng() % text.size();
      const char c = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
      switch (rng() % 3) {
        case 0:
          text[pos] = c;
          break;
        case 1:
          text.insert(pos, 1, c);
          break;
        default:
          text.erase(pos, 1);
          break;
      }
    }
    accepted += Parse(text, "fuzz").ok() ? 1 : 0;
  }
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, 3000);
}

struct DurationCase {
  std::string_view text;
  int64_t nanos;
};

TEST(DurationTest, ParsesUnits) {
  const DurationCase cases[] = {
      {"0", 0},
      {"1", 1'000'000'000},
      {"30", 30'000'000'000},
      {"250ms", 250'000'000},
      {"1s", 1'000'000'000},
      {"1.5s", 1'500'000'000},
      {"0.001s", 1'000'000},
      {"2m", 120'000'000'000},
      {"1h", 3'600'000'000'000},
      {"1.25h", 4'500'000'000'000},
      {"100us", 100'000},
      {"100\xc2\xb5s", 100'000},
      {"7ns", 7},
      {"1.5ms", 1'500'000},
      {"1m30s", 90'000'000'000},
      {"1h0m0.5s", 3'600'500'000'000},
      {"0s", 0},
      {"1.0000000009s", 1'000'000'000},  // sub-nanosecond digits are dropped
      {"9223372036s", 9'223'372'036'000'000'000},
  };
  for (const DurationCase& c : cases) {
    absl::StatusOr<Duration> d = ParseDuration(c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status();
    EXPECT_EQ(d->count(), c.nanos) << c.text;
  }
}

TEST(DurationTest, RejectsBadText) {
  for (std::string_view bad : {"",
                               "s",
                               "1x",
                               "1.s",
                               ".5s",
                               "1.5",
                               "-1s",
                               "-1",
                               "1 s",
                               " 1s",
                               "1s ",
                               "1sec",
                               "1S",
                               "1e3ms",
                               "+1s",
                               "1..5s",
                               "1m-1s",
                               "ms1",
                               "9223372037s",
                               "99999999999999999999999s",
                               "99999999999999999999",
                               "2562048h",
                               "1h2562047h"}) {
    EXPECT_FALSE(ParseDuration(bad).ok()) << "accepted: " << bad;
  }
  EXPECT_EQ(std::string(ParseDuration("1x").status().message()),
            "bad duration \"1x\" (use e.g. 500ms, 1s, 2m)");
}

struct SizeCase {
  std::string_view text;
  uint64_t bytes;
};

TEST(SizeTest, ParsesUnits) {
  const SizeCase cases[] = {
      {"0", 0},
      {"512", 512},
      {"512B", 512},
      {"16k", 16384},
      {"16K", 16384},
      {"16KB", 16384},
      {"16kb", 16384},
      {"16KiB", 16384},
      {"16M", 16u << 20},
      {"16MB", 16u << 20},
      {"16MiB", 16u << 20},
      {"1G", 1u << 30},
      {"1GB", 1u << 30},
      {"1GiB", 1u << 30},
      {"2TiB", uint64_t{2} << 40},
      {"18446744073709551615", UINT64_MAX},
  };
  for (const SizeCase& c : cases) {
    absl::StatusOr<uint64_t> size = ParseSize(c.text);
    ASSERT_TRUE(size.ok()) << c.text << ": " << size.status();
    EXPECT_EQ(*size, c.bytes) << c.text;
  }
}

TEST(SizeTest, RejectsBadText) {
  for (std::string_view bad : {"", "K", "16Q", "16 KiB", "1.5MiB", "-1", "16KiBs", "16iB", "16PiB",
                               "0x10", "16Kb ", "18446744073709551616", "16777216TiB"}) {
    EXPECT_FALSE(ParseSize(bad).ok()) << "accepted: " << bad;
  }
  EXPECT_EQ(std::string(ParseSize("16Q").status().message()),
            "bad size \"16Q\" (use e.g. 512, 16KiB, 16MiB)");
}

TEST(RateTest, ParsesSizesPerSecond) {
  EXPECT_EQ(*ParseRate("0"), 0u);
  EXPECT_EQ(*ParseRate("512/s"), 512u);
  EXPECT_EQ(*ParseRate("512B/s"), 512u);
  EXPECT_EQ(*ParseRate("1KiB/s"), 1024u);
  EXPECT_EQ(*ParseRate("1k/s"), 1024u);
  EXPECT_EQ(*ParseRate("2MiB/s"), 2u << 20);
  EXPECT_EQ(*ParseRate("300"), 300u);  // per second when the unit is left out
  for (std::string_view bad : {"", "/s", "1KiB/", "1KiB/ms", "1KiB /s", "1.5KiB/s", "-1/s", "s"}) {
    EXPECT_FALSE(ParseRate(bad).ok()) << "accepted: " << bad;
  }
}

}  // namespace
}  // namespace l7px::config
