// The C++ SDK serves upgrades (#18 item 4): a handler answers 101 with Response::tunnel and owns
// the connection as a byte tunnel, and the SDK dials a replacement slot at once, so a service
// whose declared slots all became tunnels still serves plain requests. A real l7px, the SDK
// in this process, clients over loopback.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "l7px/service.h"
#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"
#include "support/process.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kSdkWsUpgrade[] =
    "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";

class SdkTunnelTest : public IntegrationTest {
 protected:
  int64_t Pool(const std::string& key) { return PoolCounter(h().admin_port(), "default", key); }
  std::string Pools() { return AdminCall(h().admin_port(), "GET", "/pools").body; }
  std::string SdkLog() {
    std::lock_guard<std::mutex> lock(log_mu_);
    std::string all;
    for (const std::string& line : log_) all += line + "\n";
    return all;
  }
  std::function<void(std::string_view)> LogFn() {
    return [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.emplace_back(line);
    };
  }

 private:
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

// Two declared slots (and max_slots = 2 in the pool), two WebSocket-like tunnels: both slots
// leave the pool, the SDK's two replacements register, and plain requests are served while both
// tunnels echo. Without the replacements every plain request waits in the queue and is shed
// with 503 after queue_timeout.
TEST_F(SdkTunnelTest, TunnelsAreReplacedSoPlainRequestsStillServe) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(std::string(kDefaultPool) + "max_slots = 2\nqueue_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  std::atomic<int> ended{0};
  ServiceOptions options;
  options.proxies = {"127.0.0.1:" + std::to_string(h().register_port())};
  options.slots = 2;
  options.service_id = "cpp-ws";
  options.log = LogFn();
  Service service(options, [&](const Request& req, Response& resp) {
    if (req.path != "/ws") {
      resp.body = "ok " + req.path;
      return;
    }
    resp.status = 101;
    resp.AddHeader("Upgrade", "websocket");
    resp.tunnel = [&](Tunnel t) {
      EchoUntilClosed(t.fd, std::move(t.already_read), t.stop_fd);
      ended.fetch_add(1);
    };
  });
  ASSERT_TRUE(service.Start());
  ASSERT_TRUE(service.WaitForSlots(2, kIo)) << SdkLog();
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 2; }, kIo))
      << Pools();

  // Two tunnels; the first client sends its first bytes in the same write as the upgrade.
  std::vector<UniqueFd> tunnels;
  for (const std::string first : {"early-0", ""}) {
    UniqueFd client = ConnectTcp(front());
    ASSERT_TRUE(client);
    ASSERT_TRUE(SendAll(client.get(), kSdkWsUpgrade + first));
    const std::string got = RecvUntil(client.get(), first.empty() ? "\r\n\r\n" : first, kIo);
    ASSERT_THAT(got, StartsWith("HTTP/1.1 101 ")) << got << SdkLog();
    EXPECT_THAT(got, HasSubstr("\r\nUpgrade: websocket\r\n"));
    EXPECT_THAT(HeaderOf(got, "Connection"), ::testing::MatchesRegex("[Uu]pgrade"));
    EXPECT_THAT(got, ::testing::EndsWith("\r\n\r\n" + first));
    tunnels.push_back(std::move(client));
  }
  ASSERT_TRUE(WaitFor([&] { return service.Stats().tunnels == 2; }, kIo));
  ASSERT_TRUE(WaitFor([&] { return Pool("tunnels") == 2; }, kIo)) << Pools();
  // The replacements: two slots registered again, on both sides (not fatal: what the plain
  // requests below get without them is the point).
  EXPECT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 2; }, kIo))
      << "no replacement slots: " << Pools() << SdkLog();
  EXPECT_TRUE(service.WaitForSlots(2, kIo));

  // Plain requests from another client are served, on one keep-alive connection and on two
  // at once.
  UniqueFd plain = ConnectTcp(front());
  ASSERT_TRUE(plain);
  std::string carry;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(SendAll(plain.get(), GetRequest("/plain" + std::to_string(i))));
    const std::string resp = RecvHttpResponse(plain.get(), &carry, kIo);
    EXPECT_EQ(StatusOf(resp), 200) << resp << Pools();
    EXPECT_EQ(BodyOf(resp), "ok /plain" + std::to_string(i));
  }
  UniqueFd p1 = ConnectTcp(front());
  UniqueFd p2 = ConnectTcp(front());
  ASSERT_TRUE(SendAll(p1.get(), GetRequest("/p1")));
  ASSERT_TRUE(SendAll(p2.get(), GetRequest("/p2")));
  std::string carry1, carry2;
  EXPECT_EQ(BodyOf(RecvHttpResponse(p1.get(), &carry1, kIo)), "ok /p1");
  EXPECT_EQ(BodyOf(RecvHttpResponse(p2.get(), &carry2, kIo)), "ok /p2");

  // Both tunnels still echo.
  for (size_t i = 0; i < tunnels.size(); ++i) {
    const std::string ping = "ping-" + std::to_string(i);
    ASSERT_TRUE(SendAll(tunnels[i].get(), ping));
    EXPECT_EQ(RecvUntil(tunnels[i].get(), ping, kIo), ping) << "tunnel " << i;
  }

  // The clients close: each tunnel function returns and closes its connection, l7px retires
  // the tunnels, and the pool is left with the two replacement slots, idle.
  for (UniqueFd& t : tunnels) {
    ASSERT_EQ(shutdown(t.get(), SHUT_WR), 0);
    EXPECT_TRUE(WaitPeerClosed(t.get(), kIo));
    t.Reset();
  }
  EXPECT_TRUE(WaitFor([&] { return ended == 2; }, kIo));
  EXPECT_TRUE(WaitFor([&] { return Pool("tunnels") == 0; }, kIo)) << Pools();
  EXPECT_TRUE(WaitFor([&] { return Pool("idle") == 2; }, kIo)) << Pools();
  EXPECT_EQ(RegisteredSlots(h().admin_port(), "default"), 2);
  const ServiceStats stats = service.Stats();
  EXPECT_EQ(stats.connected_slots, 2);
  EXPECT_EQ(stats.tunnels, 2u);
  EXPECT_EQ(stats.registrations, 4u) << SdkLog();
  service.Stop();
  EXPECT_EQ(service.ConnectedSlots(), 0);
  EXPECT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 0; }, kIo))
      << Pools();
}

}  // namespace
}  // namespace l7px::testing
