// Upgrade (WebSocket-style): after a 101 the slot is a byte tunnel for that client connection,
// closed when the tunnel ends.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

class ProxyTunnelTest : public IntegrationTest {};

TEST_F(ProxyTunnelTest, UpgradeBecomesATwoWayTunnelThatEndsWithTheSlot) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\n")) << h().ProxyLog();
  std::string answer;
  UniqueFd slot = RegisterByHand(h().register_port(), RegistrationHead("", "", "ws"), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;

  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(),
                      "GET /chat HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n"
                      "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n"));
  std::string slot_carry;
  const std::string forwarded = RecvHttpRequest(slot.get(), &slot_carry, kIo);
  ASSERT_THAT(forwarded, ::testing::StartsWith("GET /chat HTTP/1.1\r\n"));
  EXPECT_EQ(HeaderOf(forwarded, "Upgrade"), "websocket");
  EXPECT_THAT(HeaderOf(forwarded, "Connection"), ::testing::HasSubstr("pgrade"));

  // 101 plus the service's first tunnel bytes in the same write.
  ASSERT_TRUE(SendAll(slot.get(),
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\n\r\nfrom-service-1"));
  std::string seen = RecvUntil(client.get(), "from-service-1", kIo);
  ASSERT_THAT(seen, ::testing::StartsWith("HTTP/1.1 101 "));
  EXPECT_EQ(HeaderOf(seen, "Upgrade"), "websocket");

  // Both directions, several rounds, bytes unchanged.
  for (int i = 0; i < 3; ++i) {
    const std::string up = "client-frame-" + std::to_string(i);
    ASSERT_TRUE(SendAll(client.get(), up));
    EXPECT_THAT(RecvUntil(slot.get(), up, kIo), ::testing::HasSubstr(up));
    const std::string down = "service-frame-" + std::to_string(i);
    ASSERT_TRUE(SendAll(slot.get(), down));
    EXPECT_THAT(RecvUntil(client.get(), down, kIo), ::testing::HasSubstr(down));
  }

  // The service ends the tunnel: the client connection closes too.
  slot.Reset();
  EXPECT_TRUE(WaitPeerClosed(client.get(), kIo));
}

TEST_F(ProxyTunnelTest, UpgradeRefusedByTheServiceStaysHttp) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  // The test service answers normally (200): the connection stays plain HTTP/1.1.
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(
      SendAll(client.get(),
              "GET /x HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
              "GET /y HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::string carry;
  const std::string first = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(first), 200) << first;
  const std::string second = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(second), 200) << second;
  EXPECT_EQ(BodyOf(second), "ok /y");
}

}  // namespace
}  // namespace l7px::testing
