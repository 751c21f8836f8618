// Integration: bytes a service writes on a slot before l7px has sent it a request (a second
// response some milliseconds after the first, or bytes right after registering) are a protocol
// violation. l7px looks at the slot when it leases it and before it sends anything: such a slot
// is closed, the request goes to another slot without ever reaching the bad one, and no client is
// answered from those bytes. The acceptor's idle watch (misbehaving_service_test.cc) catches
// slots that stay idle; these tests lease the slot before it could.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

constexpr auto kSlotCloseBound = std::chrono::seconds(3);
constexpr char kStale[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale";

class StrayBytesTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    h().EnableAdmin();
    ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nretries = 0\n", "", "", /*workers=*/1))
        << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "1", "--service-id", "good"}), nullptr);
  }

  // Registers a slot by hand after the good one: a new instance, never leased, so it takes the
  // next request.
  UniqueFd RogueSlot() { return RegisterSlotByHand("rogue"); }

  // The next request, on `client`, must be the good service's answer, and the rogue slot must
  // be closed without ever having been sent that request.
  void ExpectServedElsewhere(int client, UniqueFd& rogue, const std::string& path) {
    std::string carry;
    ASSERT_TRUE(SendAll(client, GetRequest(path)));
    const std::string resp = RecvHttpResponse(client, &carry, kIo);
    EXPECT_EQ(StatusOf(resp), 200) << resp;
    EXPECT_EQ(BodyOf(resp), "ok " + path) << "answered from the stray bytes: " << resp;
    EXPECT_EQ(HeaderOf(resp, "X-Service"), "good") << resp;
    std::string seen;
    EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound, &seen)) << "rogue slot left open";
    EXPECT_EQ(seen, "") << "the request reached the slot that held stray bytes";
    // The acceptor logs after it shuts the slot down: wait for the line.
    EXPECT_TRUE(WaitFor(
        [&] { return h().ProxyLog().find("protocol violation") != std::string::npos; }, kIo))
        << h().ProxyLog();
  }
};

TEST_F(StrayBytesTest, SecondResponseWrittenAfterTheFirstNeverReachesTheNextClient) {
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  auto served = AnswerOneRequest(rogue.get(), "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine");
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  std::string carry;
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/first")));
  const std::string first = RecvHttpResponse(client.get(), &carry, kIo);
  ASSERT_TRUE(served.get());
  EXPECT_EQ(BodyOf(first), "fine") << first;
  // A separate write after the response was complete (and forwarded): the slot is idle again
  // and the next request comes at once (to the good instance, whose turn it is).
  ASSERT_TRUE(SendAll(rogue.get(), kStale));
  // Caught by the lease-time look, or by the acceptor when its watch on the slot was still the
  // wide one armed at registration (idle_watch.h); either way no client gets them.
  ExpectServedElsewhere(client.get(), rogue, "/second");
}

// The acceptor watches a new slot for bytes too, so either it or the lease-time look closes it,
// whichever sees the bytes first; the client is never answered from them.
TEST_F(StrayBytesTest, BytesRightAfterRegisteringNeverReachAClient) {
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  ASSERT_TRUE(SendAll(rogue.get(), kStale));
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ExpectServedElsewhere(client.get(), rogue, "/fresh");
}

// Bytes a slot sends while idle, with no request coming, are caught by the acceptor's idle
// watch: the slot is closed, logged, and counted in /stats stray_slots.
TEST_F(StrayBytesTest, BytesOnAnIdleSlotAreCaughtAndCounted) {
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  ASSERT_EQ(StatsCounter(h().admin_port(), "stray_slots"), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // idle in the pool
  ASSERT_TRUE(SendAll(rogue.get(), kStale));
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound, &seen)) << "rogue slot left open";
  EXPECT_TRUE(WaitFor([&] { return StatsCounter(h().admin_port(), "stray_slots") == 1; }, kIo))
      << StatsCounter(h().admin_port(), "stray_slots") << "\n"
      << h().ProxyLog();
  EXPECT_THAT(h().ProxyLog(), ::testing::HasSubstr("sent bytes on an idle slot"));
}

TEST_F(StrayBytesTest, NonIdempotentRequestGoesElsewhereToo) {
  // Nothing was sent on the bad slot, so even a POST with a body (never retried after a slot
  // failure) can go to another slot.
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  ASSERT_TRUE(SendAll(rogue.get(), "garbage"));
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  std::string carry;
  ASSERT_TRUE(
      SendAll(client.get(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  const std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(ParseEcho(BodyOf(resp)).body, "hello");
  EXPECT_EQ(HeaderOf(resp, "X-Service"), "good");
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound, &seen));
  EXPECT_EQ(seen, "");
  EXPECT_THAT(h().ProxyLog(), ::testing::HasSubstr("protocol violation"));
}

// Under load the slot is leased again the moment its response is complete, so a duplicate the
// service writes a millisecond later arrives after the next request went out: no proxy can tell
// it from that request's response (HTTP/1.1 has no request ids). What l7px guarantees is that
// the slot does not stay one response behind: the service's real answer, which its TCP stack
// (Nagle) would hold until l7px acknowledges, is made to arrive before the next look, and the
// slot is closed: the duplicate misleads one client, not every client after it.
TEST_F(StrayBytesTest, ADuplicateUnderLoadDoesNotLeaveTheSlotBehind) {
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  const int off = 0;  // a TCP stack's default: small writes wait for the ACK of the last one
  ASSERT_EQ(setsockopt(rogue.get(), IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off)), 0);
  std::atomic<bool> stop{false};
  std::atomic<int> served{0};
  std::atomic<bool> closed{false};  // l7px closed the rogue slot
  std::thread service([&] {
    std::string carry;
    while (!stop.load()) {
      const std::string req = RecvHttpRequest(rogue.get(), &carry, std::chrono::milliseconds(200));
      if (req.empty()) {
        if (WaitPeerClosed(rogue.get(), std::chrono::milliseconds(1))) {
          closed = true;
          return;
        }
        continue;
      }
      const std::string target = req.substr(req.find(' ') + 1, req.find(' ', 4) - 4);
      const std::string body = "R " + target;
      const std::string resp =
          "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      if (!SendAll(rogue.get(), resp)) return;
      if (++served == 5) {  // the one bug: the same answer again, a moment later
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (!SendAll(rogue.get(), resp)) return;
      }
    }
  });
  std::atomic<int> wrong{0};
  std::atomic<int> right{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      UniqueFd c = ConnectTcp(front());
      std::string carry;
      for (int i = 0; i < 150 && c; ++i) {
        const std::string path = "/c" + std::to_string(t) + "-" + std::to_string(i);
        if (!SendAll(c.get(), GetRequest(path))) return;
        const std::string resp = RecvHttpResponse(c.get(), &carry, kIo);
        const std::string body = BodyOf(resp);
        if (body == "R " + path || body == "ok " + path) {
          ++right;
        } else {
          ++wrong;
        }
      }
    });
  }
  for (std::thread& c : clients) c.join();
  // One, measured; a few if the machine is so busy that the kernel delivers the held bytes only
  // after the look. Without the acknowledgement it is every answer after the duplicate.
  EXPECT_LE(wrong.load(), 3) << right.load() << " right; the slot stayed behind";
  EXPECT_EQ(right.load() + wrong.load(), 600);
  // Caught either by the look before the next request, or as bytes beyond the response read.
  EXPECT_TRUE(WaitFor([&] { return closed.load(); }, kIo))
      << "the rogue slot was kept (served " << served.load() << ")";
  stop = true;
  service.join();
}

}  // namespace
}  // namespace l7px::testing
