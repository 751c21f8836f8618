// Integration: the answers l7px makes itself (404, 503, ...) honour the request's connection
// semantics: after a request that said Connection: close, or an HTTP/1.0 request without
// keep-alive, the answer says Connection: close, the connection closes, and a request pipelined
// behind it is never executed. A HEAD request gets the answer's head only.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

// Only /api is routed: anything else is l7px's own 404.
constexpr char kApiOnly[] =
    "[[pool]]\nname = \"default\"\n[[route]]\nhost = \"*\"\npath = \"/api\"\npool = \"default\"\n";

class OwnAnswersTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    ASSERT_TRUE(StartProxy(kApiOnly)) << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  }
};

TEST_F(OwnAnswersTest, ConnectionCloseOnA404ClosesAndSkipsThePipelinedRequest) {
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(
      client.get(), GetRequest("/nope", "t", "Connection: close\r\n") + GetRequest("/api/never")));
  std::string rest;
  std::string carry;
  const std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(resp), 404) << resp;
  EXPECT_EQ(HeaderOf(resp, "Connection"), "close") << resp;
  EXPECT_TRUE(WaitPeerClosed(client.get(), kIo, &rest)) << "the connection stayed open";
  EXPECT_EQ(carry + rest, "") << "a second response came: the pipelined request was executed";
  EXPECT_EQ(h().AccessLog().find("/api/never"), std::string::npos) << h().AccessLog();
}

TEST_F(OwnAnswersTest, Http10WithoutKeepAliveGetsCloseOnA404) {
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), "GET /nope HTTP/1.0\r\n\r\nGET /api/never HTTP/1.0\r\n\r\n"));
  std::string carry;
  const std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(resp), 404) << resp;
  EXPECT_EQ(HeaderOf(resp, "Connection"), "close") << resp;
  std::string rest;
  EXPECT_TRUE(WaitPeerClosed(client.get(), kIo, &rest));
  EXPECT_EQ(carry + rest, "");
}

TEST_F(OwnAnswersTest, KeepAliveRequestKeepsTheConnectionAfterA404) {
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/nope") + GetRequest("/api/next")));
  std::string carry;
  const std::string first = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(first), 404) << first;
  EXPECT_EQ(HeaderOf(first, "Connection"), "");
  const std::string second = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(BodyOf(second), "ok /api/next") << second;
}

TEST_F(OwnAnswersTest, HeadGetsTheHeadOfA404AndTheConnectionStaysInStep) {
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(
      SendAll(client.get(), "HEAD /nope HTTP/1.1\r\nHost: t\r\n\r\n" + GetRequest("/api/after")));
  std::string carry;
  const std::string head = RecvHttpResponse(client.get(), &carry, kIo, /*head_request=*/true);
  EXPECT_EQ(StatusOf(head), 404) << head;
  EXPECT_NE(HeaderOf(head, "Content-Length"), "");  // what a GET would have got
  const std::string next = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(next), 200) << "the 404's body was sent to a HEAD: " << next;
  EXPECT_EQ(BodyOf(next), "ok /api/after");
}

}  // namespace
}  // namespace l7px::testing
