// Integration: slow and hostile clients against the real binary — slowloris heads, slow POST
// bodies (server.body_timeout, server.min_body_rate), idle keep-alive connections, the
// per-worker connection limit (server.max_connections), many idle connections held cheaply,
// and the largest valid request head.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <cstdio>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"
#include "support/sanitizers.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

class HostileClientsTest : public IntegrationTest {};

int64_t ClientConnections(uint16_t admin_port) {
  return StatsCounter(admin_port, "client_connections");
}

TEST_F(HostileClientsTest, SlowlorisHeadGets408WithinHeaderTimeout) {
  ASSERT_TRUE(StartProxy(kDefaultPool, "header_timeout = \"1s\"\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  const auto start = Clock::now();
  ASSERT_TRUE(SendAll(fd.get(), "GET /slow HTTP/1.1\r\nHost: x\r\nX-Drip: "));
  // One byte every 100 ms: the head never ends, and every byte is "progress".
  std::string seen;
  bool closed = false;
  char buf[4096];
  while (!closed && MillisSince(start) < 5000) {
    SendAll(fd.get(), "a");  // fails once l7px closed: keep reading what it sent
    const auto until = Clock::now() + milliseconds(100);
    while (Clock::now() < until) {
      const ssize_t n = RecvSome(fd.get(), buf, sizeof(buf), until);
      if (n == 0 || n == -2) {
        closed = true;
        break;
      }
      if (n < 0) break;
      seen.append(buf, static_cast<size_t>(n));
    }
  }
  const long elapsed = MillisSince(start);
  EXPECT_TRUE(closed) << "a trickled head kept the connection open for " << elapsed << " ms";
  EXPECT_EQ(StatusOf(seen), 408) << seen;
  EXPECT_EQ(HeaderOf(seen, "Connection"), "close") << seen;
  EXPECT_GE(elapsed, 900);
  EXPECT_LT(elapsed, 1800);
}

TEST_F(HostileClientsTest, SilentNewConnectionIsClosedAfterHeaderTimeout) {
  // Not after keepalive_timeout: an idle keep-alive connection has served a request; a new one
  // that says nothing has not.
  ASSERT_TRUE(StartProxy(kDefaultPool, "header_timeout = \"500ms\"\nkeepalive_timeout = \"20s\"\n"))
      << h().ProxyLog();
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  const auto start = Clock::now();
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(fd.get(), std::chrono::seconds(5), &seen));
  EXPECT_GE(MillisSince(start), 400);
  EXPECT_LT(MillisSince(start), 1500);
  EXPECT_TRUE(seen.empty()) << seen;  // nothing was asked, nothing is answered
}

TEST_F(HostileClientsTest, IdleKeepAliveConnectionIsClosedAfterKeepaliveTimeout) {
  ASSERT_TRUE(StartProxy(kDefaultPool, "keepalive_timeout = \"500ms\"\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);

  // Requests closer together than keepalive_timeout keep the connection open...
  UniqueFd busy = ConnectTcp(front());
  ASSERT_TRUE(busy);
  std::string carry;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(SendAll(busy.get(), GetRequest("/ka/" + std::to_string(i))));
    const std::string resp = RecvHttpResponse(busy.get(), &carry, kIo);
    ASSERT_EQ(BodyOf(resp), "ok /ka/" + std::to_string(i)) << "round " << i << ": " << resp;
    std::this_thread::sleep_for(milliseconds(300));
  }
  // ...and once idle it is closed, without a response.
  const auto start = Clock::now();
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(busy.get(), std::chrono::seconds(5), &seen));
  EXPECT_LT(MillisSince(start), 1500);
  EXPECT_TRUE(seen.empty()) << seen;
}

// Sends `head`, then `total` body bytes in pieces of `piece` every `every`, while reading what
// l7px answers. Stops sending when l7px closes. Returns everything received.
struct TrickleResult {
  std::string seen;
  bool closed = false;
  long elapsed_ms = 0;
};
TrickleResult TrickleBody(uint16_t port, const std::string& head, size_t total, size_t piece,
                          milliseconds every, milliseconds limit) {
  TrickleResult r;
  UniqueFd fd = ConnectTcp(port);
  if (!fd || !SendAll(fd.get(), head)) return r;
  const auto start = Clock::now();
  size_t sent = 0;
  char buf[65536];
  while (Clock::now() - start < limit) {
    if (sent < total) {
      const size_t n = std::min(piece, total - sent);
      if (SendAll(fd.get(), std::string(n, 'b'))) sent += n;
    }
    const auto until = Clock::now() + every;
    while (Clock::now() < until) {
      const ssize_t n = RecvSome(fd.get(), buf, sizeof(buf), until);
      if (n == 0 || n == -2) {
        r.closed = true;
        break;
      }
      if (n < 0) break;
      r.seen.append(buf, static_cast<size_t>(n));
    }
    if (r.closed) break;
    if (r.seen.find("\r\n\r\n") != std::string::npos) {
      // An answer, early (an error) or after the whole body: read it whole, and the close that
      // follows when it announced one.
      r.elapsed_ms = MillisSince(start);
      std::string carry = r.seen;
      const std::string whole = RecvHttpResponse(fd.get(), &carry, kIo);
      if (!whole.empty()) r.seen = whole;
      if (HeaderOf(r.seen, "Connection") == "close") {
        r.closed = WaitPeerClosed(fd.get(), std::chrono::seconds(3));
      }
      return r;
    }
  }
  r.elapsed_ms = MillisSince(start);
  return r;
}

std::string PostHead(size_t length) {
  return "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(length) + "\r\n\r\n";
}

constexpr char kBodyPace[] = "body_timeout = \"500ms\"\nmin_body_rate = \"8KiB/s\"\n";

TEST_F(HostileClientsTest, SlowPostBelowTheFloorIs408) {
  ASSERT_TRUE(StartProxy(kDefaultPool, kBodyPace)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  // 100 bytes every 100 ms: 1 KB/s against a floor of 8 KiB/s.
  const TrickleResult r = TrickleBody(front(), PostHead(100000), 100000, 100, milliseconds(100),
                                      std::chrono::seconds(5));
  EXPECT_TRUE(r.closed) << "a slow body kept its connection for " << r.elapsed_ms << " ms";
  EXPECT_EQ(StatusOf(r.seen), 408) << r.seen;
  EXPECT_GE(r.elapsed_ms, 450);
  EXPECT_LT(r.elapsed_ms, 1600);
  EXPECT_TRUE(
      WaitFor([&] { return h().ProxyLog().find("request body too slow") != std::string::npos; },
              std::chrono::seconds(2)));
  // Only that request was hurt.
  const std::string ok = HttpExchange(front(), GetRequest("/after"));
  EXPECT_EQ(StatusOf(ok), 200) << ok;
}

TEST_F(HostileClientsTest, StalledBodyIs408EvenWithoutARate) {
  ASSERT_TRUE(StartProxy(kDefaultPool, "body_timeout = \"500ms\"\nmin_body_rate = 0\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  // Half the body, then nothing.
  const TrickleResult r =
      TrickleBody(front(), PostHead(1000), 500, 500, milliseconds(100), std::chrono::seconds(5));
  EXPECT_TRUE(r.closed);
  EXPECT_EQ(StatusOf(r.seen), 408) << r.seen;
  EXPECT_LT(r.elapsed_ms, 1600);
}

TEST_F(HostileClientsTest, BodyAboveTheFloorIsForwarded) {
  ASSERT_TRUE(StartProxy(kDefaultPool, kBodyPace)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  // 4000 bytes every 100 ms (~39 KiB/s) for a second: several windows, all above the floor.
  const TrickleResult r = TrickleBody(front(), PostHead(40000), 40000, 4000, milliseconds(100),
                                      std::chrono::seconds(8));
  EXPECT_EQ(StatusOf(r.seen), 200) << r.seen.substr(0, 300);
  EXPECT_EQ(ParseEcho(BodyOf(r.seen)).body, std::string(40000, 'b'));
  EXPECT_GE(r.elapsed_ms, 900);
}

TEST_F(HostileClientsTest, BackpressureFromAServiceIsNotClientSlowness) {
  // The service does not read the body for well over body_timeout; l7px's buffer fills and it
  // stops reading the client, who is then not "slow". The floor is high on purpose.
  ASSERT_TRUE(StartProxy(kDefaultPool, "body_timeout = \"300ms\"\nmin_body_rate = \"1MiB/s\"\n"))
      << h().ProxyLog();
  std::string answer;
  UniqueFd slot =
      RegisterByHand(h().register_port(), RegistrationHead("", "", "sluggish"), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  const size_t body = 4 << 20;
  auto service = std::async(std::launch::async, [&] {
    std::string carry;
    const std::string head = RecvHttpRequest(slot.get(), &carry, kIo, /*read_body=*/false);
    if (head.empty()) return std::string("no head");
    std::this_thread::sleep_for(milliseconds(1200));
    std::string received = carry;
    char buf[65536];
    const auto deadline = Clock::now() + kIo;
    while (received.size() < body) {
      const ssize_t n = RecvSome(slot.get(), buf, sizeof(buf), deadline);
      if (n <= 0) return "body cut at " + std::to_string(received.size());
      received.append(buf, static_cast<size_t>(n));
    }
    SendAll(slot.get(), "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\ngot");
    return std::string("ok");
  });
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  auto sender = std::async(std::launch::async, [&] {
    return SendAll(client.get(), PostHead(body) + std::string(body, 'p'));
  });
  std::string carry;
  const std::string resp = RecvHttpResponse(client.get(), &carry, std::chrono::seconds(15));
  EXPECT_TRUE(sender.get());
  EXPECT_EQ(service.get(), "ok");
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "got");
}

TEST_F(HostileClientsTest, MaxConnectionsPausesAcceptingUntilOneCloses) {
  // Per worker, and one worker here. At the limit l7px stops accepting, as HAProxy's maxconn
  // and nginx's worker_connections do: the kernel completes the handshake and the connection
  // waits in the listen backlog until a slot frees, rather than being accepted and reset.
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(kDefaultPool, "max_connections = 3\n", "", /*workers=*/1))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  std::vector<UniqueFd> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(ConnectTcp(front()));
    ASSERT_TRUE(held.back());
    std::string carry;
    ASSERT_TRUE(SendAll(held.back().get(), GetRequest("/held")));
    ASSERT_EQ(StatusOf(RecvHttpResponse(held.back().get(), &carry, kIo)), 200);
  }
  // A burst arrives at once: all of it waits, none is accepted past the limit.
  std::vector<UniqueFd> waiting;
  for (int i = 0; i < 8; ++i) {
    waiting.push_back(ConnectTcp(front()));
    ASSERT_TRUE(waiting.back()) << "the backlog should take connection " << i;
  }
  ASSERT_TRUE(SendAll(waiting[0].get(), GetRequest("/fourth")));
  std::string carry;
  EXPECT_EQ(RecvHttpResponse(waiting[0].get(), &carry, milliseconds(500)), "")
      << "a fourth connection was served past max_connections = 3";
  EXPECT_EQ(ClientConnections(h().admin_port()), 3);
  const auto start = Clock::now();
  held.front().Reset();
  const std::string resp = RecvHttpResponse(waiting[0].get(), &carry, std::chrono::seconds(3));
  EXPECT_EQ(BodyOf(resp), "ok /fourth") << resp;
  EXPECT_LT(MillisSince(start), 1000);
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(ClientConnections(h().admin_port()), 3) << "one closed, one more accepted";
  EXPECT_GE(StatsCounter(h().admin_port(), "connection_limit_pauses"), 1);
}

// The largest head a client may send (max_header_bytes, 100 fields) with a long Host, which the
// rewrite copies into X-Forwarded-Host: it used to come back 431.
TEST_F(HostileClientsTest, LargestValidHeadIsForwarded) {
  ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  std::string fields;
  for (int i = 0; i < 98; ++i) fields += "X-F" + std::to_string(100 + i) + ": v\r\n";
  std::string head = "GET /echo HTTP/1.1\r\n" + fields + "Host: ";
  const size_t host_len = 16384 - head.size() - 4;  // the head ends at max_header_bytes
  head += std::string(host_len - 4, 'h') + ".com\r\n\r\n";
  ASSERT_EQ(head.size(), 16384u);
  const std::string resp = HttpExchange(front(), head);
  ASSERT_EQ(StatusOf(resp), 200) << resp.substr(0, 200);
  const EchoedRequest echo = ParseEcho(BodyOf(resp));
  EXPECT_EQ(echo.All("X-Forwarded-Host").size(), 1u);
  EXPECT_EQ(echo.All("X-Forwarded-Host")[0].size(), host_len);
  EXPECT_EQ(echo.headers.size(), 99u + 5u);  // 99 received, XFF XFP XFH X-Request-Id Via added
}

// ---- many idle connections ----

// Raises RLIMIT_NOFILE's soft limit to at least `want` (the proxy, started afterwards, inherits
// it). False when the hard limit is lower.
bool RaiseFileLimit(rlim_t want) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return false;
  if (lim.rlim_cur >= want) return true;
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < want) return false;
  lim.rlim_cur = want;
  return setrlimit(RLIMIT_NOFILE, &lim) == 0;
}

// Closes with a reset (SO_LINGER 0): no TIME_WAIT is left holding the client's ephemeral port,
// so running this test again soon does not run out of ports.
void CloseWithReset(UniqueFd& fd) {
  const linger abort{1, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  fd.Reset();
}

// Sequential requests on one connection; returns the elapsed milliseconds, -1 on any failure.
long TimeRequests(uint16_t port, int count) {
  UniqueFd fd = ConnectTcp(port);
  if (!fd) return -1;
  std::string carry;
  const auto start = Clock::now();
  for (int i = 0; i < count; ++i) {
    if (!SendAll(fd.get(), GetRequest("/r"))) return -1;
    if (BodyOf(RecvHttpResponse(fd.get(), &carry, kIo)) != "ok /r") return -1;
  }
  return MillisSince(start);
}

// README: "Idle client connections hold no buffers: about 600 bytes of memory each (10,000 idle
// connections measured at ~585 bytes of RSS each)". Measured here: 587 bytes (plain), 938 (ASan,
// clang and gcc: redzones and allocator metadata), 4,073 (TSan: shadow memory). Each bound is the
// measure plus a third for noise; an idle connection that kept even a 1 KiB buffer fails.
constexpr double kMaxIdleConnectionBytes = PerBuild(800.0, 1250.0, 5500.0);

TEST_F(HostileClientsTest, TenThousandIdleConnectionsAreCheapAndDoNotSlowOthers) {
  constexpr int kIdle = 10000;
  if (!RaiseFileLimit(kIdle + 512)) {
    GTEST_SKIP() << "RLIMIT_NOFILE cannot be raised to " << kIdle + 512
                 << " (hard limit too low); raise it (ulimit -Hn) to run this test";
  }
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(kDefaultPool, "header_timeout = \"60s\"\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  // Warm up: buffers and exchange state the steady state keeps.
  const long baseline_ms = TimeRequests(front(), 500);
  ASSERT_GT(baseline_ms, -1);
  const long rss_before = h().ProxyRssKiB();

  std::vector<UniqueFd> idle;
  idle.reserve(kIdle);
  struct ResetAll {
    std::vector<UniqueFd>& fds;
    ~ResetAll() {
      for (UniqueFd& fd : fds) CloseWithReset(fd);
    }
  } reset_all{idle};
  const auto open_start = Clock::now();
  for (int i = 0; i < kIdle; ++i) {
    idle.push_back(ConnectTcp(front()));
    ASSERT_TRUE(idle.back()) << "connection " << i;
  }
  ASSERT_TRUE(WaitFor([&] { return ClientConnections(h().admin_port()) >= kIdle; },
                      std::chrono::seconds(20)))
      << ClientConnections(h().admin_port()) << " accepted";
  const long open_ms = MillisSince(open_start);
  const long rss_after = h().ProxyRssKiB();
  const double per_conn = static_cast<double>(rss_after - rss_before) * 1024.0 / kIdle;

  const long loaded_ms = TimeRequests(front(), 500);
  ASSERT_GT(loaded_ms, -1) << "requests failed next to the idle connections";
  // Everyone is still there, and nobody was closed.
  EXPECT_GE(ClientConnections(h().admin_port()), kIdle);

  std::printf(
      "[ measure  ] %d idle connections: RSS %ld -> %ld KiB (%.0f bytes per connection), "
      "opened in %ld ms; 500 requests: %ld ms before, %ld ms with them\n",
      kIdle, rss_before, rss_after, per_conn, open_ms, baseline_ms, loaded_ms);
  RecordProperty("rss_bytes_per_idle_connection", static_cast<int>(per_conn));
  EXPECT_LT(per_conn, kMaxIdleConnectionBytes);
  // Loose, to stay robust on a busy 2-core CI: the idle ones must not make serving crawl.
  EXPECT_LT(loaded_ms, 10 * baseline_ms + 2000);
}

}  // namespace
}  // namespace l7px::testing
