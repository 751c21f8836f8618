// Tunnels leave the pool (#18 item 4): a slot whose service answered 101 no longer counts as one
// of the pool's slots (so the service registers a replacement within max_slots); tunnels are
// bounded per pool (max_tunnels), closed when idle (tunnel_idle_timeout), logged and counted.
// Services here are slots registered by hand, doing what an SDK does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "base/strict_json.h"
#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"
#include "support/process.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr char kUpgrade[] =
    "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
constexpr char k101[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

class TunnelPoolTest : public IntegrationTest {
 protected:
  void Start(const std::string& pool_extra) {
    h().EnableAdmin();
    ASSERT_TRUE(StartProxy(std::string(kDefaultPool) + pool_extra)) << h().ProxyLog();
  }
  uint16_t admin() { return h().admin_port(); }
  std::string Metrics() { return AdminCall(admin(), "GET", "/metrics").body; }

  // A client connection whose upgrade request reached `slot` and was answered 101: a tunnel.
  // `head_len`: the size of the 101 head the client got.
  UniqueFd OpenTunnel(int slot, size_t* head_len = nullptr) {
    UniqueFd client = ConnectTcp(front());
    EXPECT_TRUE(client);
    EXPECT_TRUE(SendAll(client.get(), kUpgrade));
    std::string carry;
    const std::string forwarded = RecvHttpRequest(slot, &carry, kIo);
    EXPECT_THAT(forwarded, StartsWith("GET /ws HTTP/1.1\r\n"));
    EXPECT_TRUE(SendAll(slot, k101));
    const std::string head = RecvUntil(client.get(), "\r\n\r\n", kIo);
    EXPECT_THAT(head, StartsWith("HTTP/1.1 101 "));
    if (head_len != nullptr) *head_len = head.size();
    return client;
  }
};

// The pool declares 2 slots and both become tunnels: they leave the pool's counts, so the
// service's 2 replacement slots register (before: 503 "pool is at max_slots") and plain requests
// are served while both tunnels stay open.
TEST_F(TunnelPoolTest, TunnelsLeaveThePoolSoReplacementsRegisterAndServe) {
  ASSERT_NO_FATAL_FAILURE(Start("max_slots = 2\n"));
  UniqueFd a = RegisterSlotByHand("svc");
  UniqueFd b = RegisterSlotByHand("svc");
  UniqueFd tb = OpenTunnel(b.get());  // LIFO: the slot registered last goes first
  UniqueFd ta = OpenTunnel(a.get());
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "default") == 0; }, kIo))
      << "tunnels still counted as registered slots: " << AdminCall(admin(), "GET", "/pools").body;

  // The replacements the SDKs dial at once.
  std::string answer;
  UniqueFd ra = RegisterByHand(h().register_port(), RegistrationHead("", "", "svc"), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  UniqueFd rb = RegisterByHand(h().register_port(), RegistrationHead("", "", "svc"), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "default") == 2; }, kIo));

  const Json pool = PoolEntry(admin(), "default");
  EXPECT_EQ(JsonInt64(FindMember(pool, "tunnels")).value_or(-1), 2) << DumpJson(pool);
  EXPECT_EQ(JsonInt64(FindMember(pool, "tunnels_total")).value_or(-1), 2) << DumpJson(pool);
  EXPECT_EQ(JsonInt64(FindMember(pool, "busy")).value_or(-1), 0) << DumpJson(pool);
  const Json* services = FindMember(pool, "services");
  ASSERT_NE(services, nullptr) << DumpJson(pool);
  EXPECT_EQ(JsonInt64(FindMember(*services, "svc")).value_or(-1), 2) << DumpJson(pool);

  // Two plain requests at once, each on a replacement slot (the one registered last first).
  constexpr char kOk[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  UniqueFd c1 = ConnectTcp(front());
  UniqueFd c2 = ConnectTcp(front());
  ASSERT_TRUE(SendAll(c1.get(), GetRequest("/plain")));
  std::string slot_carry;
  EXPECT_THAT(RecvHttpRequest(rb.get(), &slot_carry, kIo), StartsWith("GET /plain "));
  ASSERT_TRUE(SendAll(c2.get(), GetRequest("/plain")));
  EXPECT_THAT(RecvHttpRequest(ra.get(), &slot_carry, kIo), StartsWith("GET /plain "))
      << AdminCall(admin(), "GET", "/pools").body;
  ASSERT_TRUE(SendAll(rb.get(), kOk));
  ASSERT_TRUE(SendAll(ra.get(), kOk));
  std::string carry1, carry2;
  EXPECT_EQ(StatusOf(RecvHttpResponse(c1.get(), &carry1, kIo)), 200);
  EXPECT_EQ(StatusOf(RecvHttpResponse(c2.get(), &carry2, kIo)), 200);

  // The tunnels still work both ways.
  ASSERT_TRUE(SendAll(ta.get(), "ping-a"));
  EXPECT_THAT(RecvUntil(a.get(), "ping-a", kIo), HasSubstr("ping-a"));
  ASSERT_TRUE(SendAll(b.get(), "pong-b"));
  EXPECT_THAT(RecvUntil(tb.get(), "pong-b", kIo), HasSubstr("pong-b"));

  // A tunnel that ends (both sides close) is retired without touching the slot counts.
  a.Reset();
  EXPECT_TRUE(WaitPeerClosed(ta.get(), kIo));
  ta.Reset();
  EXPECT_TRUE(WaitFor([&] { return PoolCounter(admin(), "default", "tunnels") == 1; }, kIo));
  EXPECT_EQ(RegisteredSlots(admin(), "default"), 2);
  EXPECT_EQ(PoolCounter(admin(), "default", "idle"), 2);
}

// max_tunnels = 1: a second upgrade request is answered 503 at once and takes no slot; once the
// first tunnel ends, an upgrade is accepted again.
TEST_F(TunnelPoolTest, UpgradesBeyondMaxTunnelsAre503WithoutTakingASlot) {
  ASSERT_NO_FATAL_FAILURE(Start("max_tunnels = 1\n"));
  UniqueFd a = RegisterSlotByHand("svc");
  UniqueFd b = RegisterSlotByHand("svc");
  UniqueFd ta = OpenTunnel(b.get());  // LIFO: the slot registered last

  UniqueFd refused = ConnectTcp(front());
  ASSERT_TRUE(SendAll(refused.get(), kUpgrade));
  std::string carry;
  const std::string answer = RecvHttpResponse(refused.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(answer), 503) << answer;
  EXPECT_EQ(PoolCounter(admin(), "default", "busy"), 0) << "the refused upgrade took a slot";
  EXPECT_EQ(PoolCounter(admin(), "default", "idle"), 1);
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("l7px_shed_total{pool=\"default\",reason=\"max_tunnels\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("l7px_tunnels{pool=\"default\"} 1\n"));

  // A plain request on the same connection is not an upgrade: served.
  std::future<bool> served =
      AnswerOneRequest(a.get(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  ASSERT_TRUE(SendAll(refused.get(), GetRequest("/plain")));
  EXPECT_EQ(StatusOf(RecvHttpResponse(refused.get(), &carry, kIo)), 200);
  EXPECT_TRUE(served.get());

  // The tunnel ends (the client closes, then the service): room for the next one.
  ta.Reset();
  EXPECT_TRUE(WaitPeerClosed(b.get(), kIo));  // the client's half-close, passed on
  b.Reset();
  ASSERT_TRUE(WaitFor([&] { return PoolCounter(admin(), "default", "tunnels") == 0; }, kIo));
  UniqueFd tb = OpenTunnel(a.get());
  EXPECT_TRUE(WaitFor([&] { return PoolCounter(admin(), "default", "tunnels") == 1; }, kIo));
}

// tunnel_idle_timeout: bytes either way keep a tunnel open; silence both ways closes it (client
// and service both see the close), and it leaves an access-log line.
TEST_F(TunnelPoolTest, ATunnelSilentPastTunnelIdleTimeoutIsClosed) {
  ASSERT_NO_FATAL_FAILURE(Start("tunnel_idle_timeout = \"400ms\"\n"));
  UniqueFd slot = RegisterSlotByHand("svc");
  UniqueFd client = OpenTunnel(slot.get());
  // Active for about three timeouts, alternating directions every 100 ms.
  for (int i = 0; i < 12; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const std::string bytes = "b" + std::to_string(i);
    if (i % 2 == 0) {
      ASSERT_TRUE(SendAll(client.get(), bytes));
      ASSERT_THAT(RecvUntil(slot.get(), bytes, kIo), HasSubstr(bytes)) << "closed while active";
    } else {
      ASSERT_TRUE(SendAll(slot.get(), bytes));
      ASSERT_THAT(RecvUntil(client.get(), bytes, kIo), HasSubstr(bytes)) << "closed while active";
    }
  }
  const auto silent_from = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitPeerClosed(client.get(), kIo));
  EXPECT_TRUE(WaitPeerClosed(slot.get(), kIo));
  EXPECT_GE(MillisSince(silent_from), 350);
  EXPECT_THAT(h().ProxyLog(), HasSubstr("idle past tunnel_idle_timeout; closed"));
  EXPECT_TRUE(WaitFor([&] { return CountOf(h().AccessLog(), "\"status\":101") == 1; }, kIo))
      << h().AccessLog();
  EXPECT_TRUE(WaitFor([&] { return PoolCounter(admin(), "default", "tunnels") == 0; }, kIo));
}

// A tunnel that ends gets one access-log line (status 101, bytes both ways, its duration) and
// shows in l7px_tunnels / l7px_tunnels_total.
TEST_F(TunnelPoolTest, AnEndedTunnelIsLoggedAndCounted) {
  ASSERT_NO_FATAL_FAILURE(Start(""));
  UniqueFd slot = RegisterSlotByHand("svc-log");
  size_t head_len = 0;
  UniqueFd client = OpenTunnel(slot.get(), &head_len);
  ASSERT_TRUE(WaitFor([&] { return PoolCounter(admin(), "default", "tunnels") == 1; }, kIo))
      << AdminCall(admin(), "GET", "/pools").body;
  std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("# TYPE l7px_tunnels gauge\n"));
  EXPECT_THAT(metrics, HasSubstr("l7px_tunnels{pool=\"default\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("# TYPE l7px_tunnels_total counter\n"));
  EXPECT_THAT(metrics, HasSubstr("l7px_tunnels_total{pool=\"default\"} 1\n"));

  ASSERT_TRUE(SendAll(client.get(), "12345"));  // 5 bytes up
  EXPECT_THAT(RecvUntil(slot.get(), "12345", kIo), HasSubstr("12345"));
  ASSERT_TRUE(SendAll(slot.get(), "1234567"));  // 7 bytes down
  EXPECT_THAT(RecvUntil(client.get(), "1234567", kIo), HasSubstr("1234567"));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a measurable duration
  slot.Reset();  // the service ends it, then the client
  ASSERT_TRUE(WaitPeerClosed(client.get(), kIo));
  client.Reset();

  std::string line;
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string log = h().AccessLog();
        const size_t at = log.find("\"status\":101");
        if (at == std::string::npos) return false;
        const size_t begin = log.rfind('\n', at);
        line = log.substr(begin == std::string::npos ? 0 : begin + 1);
        line = line.substr(0, line.find('\n'));
        return true;
      },
      kIo))
      << h().AccessLog();
  absl::StatusOr<Json> entry = ParseJson(line);
  ASSERT_TRUE(entry.ok()) << line;
  EXPECT_EQ(JsonInt64(FindMember(*entry, "bytes")).value_or(-1), static_cast<int64_t>(head_len + 7))
      << line;
  EXPECT_EQ(JsonInt64(FindMember(*entry, "bytes_received")).value_or(-1), 5) << line;
  const Json* duration = FindMember(*entry, "duration_ms");
  ASSERT_NE(duration, nullptr) << line;
  EXPECT_GE(duration->get<double>(), 50.0) << line;
  EXPECT_THAT(line, HasSubstr("\"target\":\"/ws\""));
  EXPECT_THAT(line, HasSubstr("\"service\":\"svc-log\""));

  ASSERT_TRUE(WaitFor([&] { return PoolCounter(admin(), "default", "tunnels") == 0; }, kIo));
  metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("l7px_tunnels{pool=\"default\"} 0\n"));
  EXPECT_THAT(metrics, HasSubstr("l7px_tunnels_total{pool=\"default\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("l7px_requests_total{pool=\"default\",code=\"101\"} 1\n"));
}

}  // namespace
}  // namespace l7px::testing
