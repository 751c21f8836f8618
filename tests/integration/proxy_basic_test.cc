// Integration: the everyday request path through the real l7px binary, with the scripted test
// service registered to it, driven by curl and by raw sockets.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::EndsWith;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class ProxyBasicTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "4", "--service-id", "basic"}), nullptr);
  }
};

TEST_F(ProxyBasicTest, CurlGet) {
  const CurlResult r = RunCurl({"-i", FrontUrl(front(), "/hello?x=1")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(StatusOf(r.out), 200) << r.out;
  EXPECT_EQ(HeaderOf(r.out, "X-Service"), "basic");
  EXPECT_EQ(BodyOf(r.out), "ok /hello");
}

TEST_F(ProxyBasicTest, CurlPostBodyIsEchoed) {
  const std::string body = "name=l7px&payload=" + std::string(300, 'p');
  const CurlResult r = RunCurl({"-i", "--data-binary", body, FrontUrl(front(), "/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(StatusOf(r.out), 200) << r.out;
  const EchoedRequest echo = ParseEcho(BodyOf(r.out));
  EXPECT_EQ(echo.request_line, "POST /echo");
  EXPECT_THAT(echo.All("Content-Length"), ::testing::ElementsAre(std::to_string(body.size())));
  EXPECT_EQ(echo.body, body);
}

TEST_F(ProxyBasicTest, HeadHasSameHeadersAndNoBody) {
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  std::string carry;
  ASSERT_TRUE(SendAll(fd.get(), GetRequest("/size/1234")));
  const std::string get = RecvHttpResponse(fd.get(), &carry, kIo);
  ASSERT_EQ(StatusOf(get), 200) << get;
  EXPECT_EQ(BodyOf(get).size(), 1234u);

  ASSERT_TRUE(SendAll(fd.get(), "HEAD /size/1234 HTTP/1.1\r\nHost: test.local\r\n\r\n"));
  const std::string head = RecvHttpResponse(fd.get(), &carry, kIo, /*head_request=*/true);
  ASSERT_EQ(StatusOf(head), 200) << head;
  EXPECT_EQ(HeaderOf(head, "Content-Length"), "1234");
  EXPECT_EQ(HeaderOf(head, "X-Service"), HeaderOf(get, "X-Service"));
  EXPECT_EQ(HeaderOf(head, "Via"), HeaderOf(get, "Via"));
  EXPECT_EQ(BodyOf(head), "");

  // No body bytes may follow a HEAD response: the next response on the connection starts clean.
  ASSERT_TRUE(SendAll(fd.get(), GetRequest("/after-head")));
  const std::string next = RecvHttpResponse(fd.get(), &carry, kIo);
  EXPECT_THAT(next, StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(BodyOf(next), "ok /after-head");

  const CurlResult r = RunCurl({"-I", FrontUrl(front(), "/size/1234")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(StatusOf(r.out), 200) << r.out;
  EXPECT_EQ(HeaderOf(r.out, "Content-Length"), "1234");
}

TEST_F(ProxyBasicTest, CurlChunkedRequestBody) {
  std::string body;
  for (int i = 0; i < 200; ++i) body += "line " + std::to_string(i) + "\n";
  const CurlResult r =
      RunCurl({"-i", "-H", "Transfer-Encoding: chunked", "-H", "Content-Type: text/plain",
               "--data-binary", body, FrontUrl(front(), "/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(StatusOf(r.out), 200) << r.out;
  const EchoedRequest echo = ParseEcho(BodyOf(r.out));
  EXPECT_EQ(echo.request_line, "POST /echo");
  EXPECT_EQ(echo.body, body);
  // One framing reaches the service, never both.
  EXPECT_FALSE(echo.Has("Content-Length") && echo.Has("Transfer-Encoding"));
}

TEST_F(ProxyBasicTest, RawChunkedRequestBodyWithExtensionsAndTrailers) {
  const std::string request =
      "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n";
  const std::string resp = HttpExchange(front(), request);
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(ParseEcho(BodyOf(resp)).body, "hello, world");
}

TEST_F(ProxyBasicTest, CurlKeepAliveReusesOneConnection) {
  const CurlResult r =
      RunCurl({"-v", FrontUrl(front(), "/a"), FrontUrl(front(), "/b"), FrontUrl(front(), "/c")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "ok /aok /bok /c");
  EXPECT_THAT(r.err, HasSubstr("Re-using existing connection")) << r.err;
}

TEST_F(ProxyBasicTest, RawKeepAliveSequentialRequests) {
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  std::string carry;
  for (int i = 0; i < 10; ++i) {
    const std::string path = "/seq/" + std::to_string(i);
    ASSERT_TRUE(SendAll(fd.get(), GetRequest(path)));
    const std::string resp = RecvHttpResponse(fd.get(), &carry, kIo);
    ASSERT_EQ(StatusOf(resp), 200) << "request " << i << ": " << resp;
    EXPECT_EQ(BodyOf(resp), "ok " + path);
    EXPECT_NE(HeaderOf(resp, "Connection"), "close");
  }
  // HTTP/1.0 without keep-alive: answered, then closed.
  ASSERT_TRUE(SendAll(fd.get(), "GET /ten HTTP/1.0\r\nHost: test.local\r\n\r\n"));
  std::string rest;
  EXPECT_TRUE(WaitPeerClosed(fd.get(), kIo, &rest));
  EXPECT_EQ(StatusOf(carry + rest), 200) << carry + rest;
  EXPECT_THAT(carry + rest, EndsWith("ok /ten"));
}

TEST_F(ProxyBasicTest, CurlExpectContinueBodyReachesService) {
  const std::string body(4096, 'e');
  const CurlResult r = RunCurl(
      {"-i", "-H", "Expect: 100-continue", "--data-binary", body, FrontUrl(front(), "/echo")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // curl prints interim responses too with -i; the final one is last.
  const size_t final_pos = r.out.rfind("HTTP/1.1 ");
  ASSERT_NE(final_pos, std::string::npos) << r.out;
  const std::string final_response = r.out.substr(final_pos);
  ASSERT_EQ(StatusOf(final_response), 200) << r.out;
  const EchoedRequest echo = ParseEcho(BodyOf(final_response));
  EXPECT_EQ(echo.body, body);
}

TEST_F(ProxyBasicTest, ForwardedHeadersAdded) {
  const std::string resp = HttpExchange(front(), GetRequest("/echo", "front.example:8443"));
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  const EchoedRequest echo = ParseEcho(BodyOf(resp));
  EXPECT_EQ(echo.request_line, "GET /echo");
  EXPECT_THAT(echo.All("Host"), ::testing::ElementsAre("front.example:8443"));
  EXPECT_THAT(echo.All("X-Forwarded-For"), ::testing::ElementsAre("127.0.0.1"));
  EXPECT_THAT(echo.All("X-Forwarded-Proto"), ::testing::ElementsAre("http"));
  EXPECT_THAT(echo.All("X-Forwarded-Host"), ::testing::ElementsAre("front.example:8443"));
  ASSERT_EQ(echo.All("X-Request-Id").size(), 1u) << BodyOf(resp);
  EXPECT_FALSE(echo.All("X-Request-Id")[0].empty());
  ASSERT_EQ(echo.All("Via").size(), 1u) << BodyOf(resp);
  EXPECT_THAT(echo.All("Via")[0], HasSubstr("1.1 l7px"));
  // The response carries Via too.
  EXPECT_THAT(HeaderOf(resp, "Via"), HasSubstr("1.1 l7px"));

  // Request ids differ between requests.
  const std::string resp2 = HttpExchange(front(), GetRequest("/echo"));
  const EchoedRequest echo2 = ParseEcho(BodyOf(resp2));
  ASSERT_EQ(echo2.All("X-Request-Id").size(), 1u);
  EXPECT_NE(echo2.All("X-Request-Id")[0], echo.All("X-Request-Id")[0]);
}

// The client is no trusted proxy (server.trusted_proxies is empty): X-Forwarded-Proto,
// X-Forwarded-Host and X-Request-Id are l7px's; X-Forwarded-For and Via are appended to.
// (rfc_conformance_test.cc covers a trusted proxy.)
TEST_F(ProxyBasicTest, ForwardedHeadersFromAClientAreReplaced) {
  const std::string resp = HttpExchange(
      front(), GetRequest("/echo", "front.example",
                          "X-Request-Id: client-chosen-42\r\nX-Forwarded-Proto: https\r\n"
                          "X-Forwarded-Host: original.example\r\nX-Forwarded-For: 203.0.113.9\r\n"
                          "Via: 1.0 edge\r\n"));
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  const EchoedRequest echo = ParseEcho(BodyOf(resp));
  ASSERT_EQ(echo.All("X-Request-Id").size(), 1u) << BodyOf(resp);
  EXPECT_NE(echo.All("X-Request-Id")[0], "client-chosen-42");
  EXPECT_EQ(echo.All("X-Request-Id")[0].size(), 32u);
  EXPECT_THAT(echo.All("X-Forwarded-Proto"), ::testing::ElementsAre("http"));
  EXPECT_THAT(echo.All("X-Forwarded-Host"), ::testing::ElementsAre("front.example"));
  // The client address is appended to an existing chain.
  const std::string xff = ::testing::PrintToString(echo.All("X-Forwarded-For"));
  EXPECT_THAT(xff, HasSubstr("203.0.113.9"));
  EXPECT_THAT(xff, HasSubstr("127.0.0.1"));
  const std::string via = ::testing::PrintToString(echo.All("Via"));
  EXPECT_THAT(via, HasSubstr("1.0 edge"));
  EXPECT_THAT(via, HasSubstr("1.1 l7px"));
}

// Forwarded (RFC 7239) from a client that is no trusted proxy, and underscore spellings of the
// forwarding fields (which CGI-style services read as the real ones), never reach the service.
TEST_F(ProxyBasicTest, SpoofableForwardingFieldsFromAClientAreDropped) {
  const std::string resp = HttpExchange(
      front(), GetRequest("/echo", "front.example",
                          "Forwarded: for=203.0.113.66;proto=https\r\n"
                          "X_Forwarded_For: 203.0.113.77\r\nX_Forwarded_Proto: https\r\n"
                          "X_Request_Id: forged\r\nMy_Header: kept\r\n"));
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  const std::string body = BodyOf(resp);
  EXPECT_THAT(body, Not(HasSubstr("203.0.113.66")));
  EXPECT_THAT(body, Not(HasSubstr("203.0.113.77")));
  EXPECT_THAT(body, Not(HasSubstr("forged")));
  EXPECT_THAT(body, Not(HasSubstr("X_Forwarded_Proto")));
  const EchoedRequest echo = ParseEcho(body);
  EXPECT_THAT(echo.All("My_Header"), ::testing::ElementsAre("kept"));
  EXPECT_THAT(echo.All("X-Forwarded-Proto"), ::testing::ElementsAre("http"));
}

TEST_F(ProxyBasicTest, HopByHopHeadersNotForwarded) {
  const std::string resp = HttpExchange(
      front(), GetRequest("/echo", "test.local",
                          "Connection: keep-alive, X-Secret-Hop\r\nKeep-Alive: timeout=5\r\n"
                          "TE: trailers\r\nX-Secret-Hop: do-not-forward\r\n"
                          "Proxy-Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n"
                          "X-End-To-End: keep-me\r\n"));
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  const EchoedRequest echo = ParseEcho(BodyOf(resp));
  EXPECT_FALSE(echo.Has("Keep-Alive")) << BodyOf(resp);
  EXPECT_FALSE(echo.Has("TE")) << BodyOf(resp);
  EXPECT_FALSE(echo.Has("X-Secret-Hop")) << BodyOf(resp);
  EXPECT_FALSE(echo.Has("Proxy-Connection")) << BodyOf(resp);
  for (const std::string& c : echo.All("Connection")) {
    EXPECT_THAT(c, ::testing::Not(HasSubstr("X-Secret-Hop"))) << BodyOf(resp);
  }
  EXPECT_THAT(echo.All("X-End-To-End"), ::testing::ElementsAre("keep-me"));
  EXPECT_THAT(echo.All("Upgrade-Insecure-Requests"), ::testing::ElementsAre("1"));
}

TEST_F(ProxyBasicTest, PipelinedRequestsAnsweredInOrder) {
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  std::string batch;
  for (int i = 1; i <= 5; ++i) batch += GetRequest("/pipe/" + std::to_string(i));
  ASSERT_TRUE(SendAll(fd.get(), batch));
  std::string carry;
  for (int i = 1; i <= 5; ++i) {
    const std::string resp = RecvHttpResponse(fd.get(), &carry, kIo);
    ASSERT_EQ(StatusOf(resp), 200) << "response " << i << ": " << resp;
    EXPECT_EQ(BodyOf(resp), "ok /pipe/" + std::to_string(i));
  }
}

TEST_F(ProxyBasicTest, PipelinedMixedMethodsWithBodies) {
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  const std::string batch =
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc" + GetRequest("/one") +
      "HEAD /size/10 HTTP/1.1\r\nHost: t\r\n\r\n" +
      "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n" +
      GetRequest("/chunked");
  ASSERT_TRUE(SendAll(fd.get(), batch));
  std::string carry;
  const std::string r1 = RecvHttpResponse(fd.get(), &carry, kIo);
  EXPECT_EQ(ParseEcho(BodyOf(r1)).body, "abc") << r1;
  EXPECT_EQ(BodyOf(RecvHttpResponse(fd.get(), &carry, kIo)), "ok /one");
  const std::string r3 = RecvHttpResponse(fd.get(), &carry, kIo, /*head_request=*/true);
  EXPECT_EQ(HeaderOf(r3, "Content-Length"), "10") << r3;
  const std::string r4 = RecvHttpResponse(fd.get(), &carry, kIo);
  EXPECT_EQ(ParseEcho(BodyOf(r4)).body, "xy") << r4;
  const std::string r5 = RecvHttpResponse(fd.get(), &carry, kIo);
  EXPECT_EQ(BodyOf(r5), "hello chunked world") << r5;
}

TEST_F(ProxyBasicTest, StatusCodesPassThrough) {
  for (int code : {201, 204, 301, 404, 418, 500, 503}) {
    const std::string resp = HttpExchange(front(), GetRequest("/status/" + std::to_string(code)));
    EXPECT_EQ(StatusOf(resp), code) << resp;
  }
}

}  // namespace
}  // namespace l7px::testing
