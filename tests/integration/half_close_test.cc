// Integration: a half-close is not a close. A client that sends complete requests and then shuts
// down its write side gets every response before l7px closes; in a tunnel (after 101) a half-close
// on either side is passed to the other as a half-close once every byte received before it was
// forwarded, and the tunnel ends when both directions are done.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <future>
#include <string>
#include <thread>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;

class HalfCloseTest : public IntegrationTest {
 protected:
  // Reads responses until the connection closes; returns them in order.
  std::vector<std::string> ResponsesUntilClose(int fd) {
    std::vector<std::string> out;
    std::string carry;
    for (;;) {
      std::string r = RecvHttpResponse(fd, &carry, kIo);
      if (r.empty()) break;
      out.push_back(std::move(r));
    }
    return out;
  }
};

TEST_F(HalfCloseTest, PipelinedRequestsThenShutdownGetEveryResponse) {
  ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1", "--delay-ms", "50"}), nullptr);
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/a") + GetRequest("/b") + GetRequest("/c")));
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  const std::vector<std::string> got = ResponsesUntilClose(client.get());
  ASSERT_EQ(got.size(), 3u) << h().ProxyLog();
  EXPECT_EQ(BodyOf(got[0]), "ok /a");
  EXPECT_EQ(BodyOf(got[1]), "ok /b");
  EXPECT_EQ(BodyOf(got[2]), "ok /c");
  EXPECT_EQ(HeaderOf(got[2], "Connection"), "close") << got[2];
}

TEST_F(HalfCloseTest, PostThenShutdownGetsItsResponse) {
  ASSERT_TRUE(StartProxy(kDefaultPool, "body_buffer = 0\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1", "--delay-ms", "200"}), nullptr);
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(
      SendAll(client.get(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  const std::vector<std::string> got = ResponsesUntilClose(client.get());
  ASSERT_EQ(got.size(), 1u) << h().ProxyLog();
  EXPECT_EQ(StatusOf(got[0]), 200);
  EXPECT_EQ(ParseEcho(BodyOf(got[0])).body, "hello");
}

TEST_F(HalfCloseTest, QueuedRequestThenShutdownIsStillServed) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  // The only slot is busy for a while, so the next request waits in the queue when the client
  // half-closes.
  UniqueFd busy = ConnectTcp(front());
  ASSERT_TRUE(busy);
  ASSERT_TRUE(SendAll(busy.get(), GetRequest("/delay/600")));
  ASSERT_TRUE(WaitFor([&] { return PoolCounter(h().admin_port(), "default", "busy") == 1; }, kIo));
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/queued")));
  ASSERT_TRUE(
      WaitFor([&] { return PoolCounter(h().admin_port(), "default", "waiting") == 1; }, kIo));
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  const std::vector<std::string> got = ResponsesUntilClose(client.get());
  ASSERT_EQ(got.size(), 1u) << h().ProxyLog();
  EXPECT_EQ(BodyOf(got[0]), "ok /queued");
  std::string carry;
  EXPECT_EQ(BodyOf(RecvHttpResponse(busy.get(), &carry, kIo)), "ok /delay/600");
}

TEST_F(HalfCloseTest, IncompleteRequestThenShutdownIsClosedWithoutAnswer) {
  ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  // A whole request, then half of one: the first is answered, the truncated one is not.
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/whole") + "GET /half HTTP/1.1\r\nHo"));
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  const std::vector<std::string> got = ResponsesUntilClose(client.get());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(BodyOf(got[0]), "ok /whole");
}

class TunnelHalfCloseTest : public IntegrationTest {
 protected:
  // A tunnel between `client_` and a slot registered by hand (`slot_`), after a 101.
  void OpenTunnel() {
    ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
    std::string answer;
    slot_ = RegisterByHand(h().register_port(), RegistrationHead("", "", "ws"), &answer);
    ASSERT_EQ(StatusOf(answer), 101) << answer;
    client_ = ConnectTcp(front());
    ASSERT_TRUE(client_);
    ASSERT_TRUE(SendAll(client_.get(),
                        "GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                        "Upgrade: websocket\r\n\r\n"));
    std::string carry;
    ASSERT_FALSE(RecvHttpRequest(slot_.get(), &carry, kIo).empty());
    ASSERT_TRUE(SendAll(slot_.get(),
                        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\n\r\n"));
    ASSERT_THAT(RecvUntil(client_.get(), "\r\n\r\n", kIo), ::testing::StartsWith("HTTP/1.1 101"));
  }

  UniqueFd slot_;
  UniqueFd client_;
};

TEST_F(TunnelHalfCloseTest, ClientHalfCloseReachesTheServiceAfterItsBytes) {
  OpenTunnel();
  // More than the socket buffers hold while the service does not read: l7px still has bytes to
  // forward when the client's half-close reaches it, and must pass it on only after them.
  const std::string up(4u << 20, 'u');
  auto sent = std::async(std::launch::async, [&] {
    return SendAll(client_.get(), up) && ::shutdown(client_.get(), SHUT_WR) == 0;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  // The service reads everything, then end of stream (not a reset, not less).
  const std::string got = RecvUntilClose(slot_.get(), kIo);
  ASSERT_TRUE(sent.get());
  EXPECT_EQ(got.size(), up.size());
  EXPECT_TRUE(got == up);
  // The other direction still works: the service answers after the client's half-close.
  ASSERT_TRUE(SendAll(slot_.get(), "late-answer"));
  EXPECT_THAT(RecvUntil(client_.get(), "late-answer", kIo), HasSubstr("late-answer"));
  // The service closes: both directions are done, the client sees the end.
  ASSERT_EQ(::shutdown(slot_.get(), SHUT_WR), 0);
  std::string rest;
  EXPECT_TRUE(WaitPeerClosed(client_.get(), kIo, &rest));
  EXPECT_EQ(rest, "");
}

TEST_F(TunnelHalfCloseTest, ServiceHalfCloseReachesTheClientAndTheClientCanStillSend) {
  OpenTunnel();
  ASSERT_TRUE(SendAll(slot_.get(), "last-from-service"));
  ASSERT_EQ(::shutdown(slot_.get(), SHUT_WR), 0);
  // The client gets the bytes, then end of stream...
  const std::string down = RecvUntilClose(client_.get(), kIo);
  EXPECT_EQ(down, "last-from-service");
  // ...and its own direction is still open to the service.
  ASSERT_TRUE(SendAll(client_.get(), "client-after-service-eof"));
  EXPECT_THAT(RecvUntil(slot_.get(), "client-after-service-eof", kIo),
              HasSubstr("client-after-service-eof"));
  ASSERT_EQ(::shutdown(client_.get(), SHUT_WR), 0);
  EXPECT_TRUE(WaitPeerClosed(slot_.get(), kIo)) << "the service never saw the client's end";
}

}  // namespace
}  // namespace l7px::testing
