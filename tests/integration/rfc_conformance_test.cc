// Integration: what l7px owes as an HTTP intermediary (RFC 9110, RFC 9112), through the real
// binary: forwarding headers only from trusted proxies, 414, Max-Forwards with OPTIONS and TRACE,
// "OPTIONS *", Transfer-Encoding lists, chunk extensions with BWS, and chunked request bodies
// reaching services in canonical framing.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <future>
#include <string>

#include "fmt/format.h"
#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;

// The "request_id" of the access-log line whose target is `target`; "" until it is written.
std::string LoggedRequestId(const std::string& access_log, const std::string& target) {
  const std::string key = "\"target\":\"" + target + "\"";
  const size_t line = access_log.find(key);
  if (line == std::string::npos) return "";
  const size_t id = access_log.find("\"request_id\":\"", line);
  if (id == std::string::npos) return "";
  const size_t start = id + 14;
  return access_log.substr(start, access_log.find('"', start) - start);
}

// ---------------------------------------------------------------------------------------------
// X-Forwarded-Proto, X-Forwarded-Host and X-Request-Id: l7px's, unless the peer is trusted.

class ForwardingHeadersTest : public IntegrationTest {
 protected:
  static constexpr char kTrusted[] = "trusted_proxies = [\"127.0.0.2/32\"]\n";

  void SetUp() override {
    IntegrationTest::SetUp();
    ASSERT_TRUE(StartProxy(kDefaultPool, kTrusted)) << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "2", "--service-id", "fwd"}), nullptr);
  }

  // What /echo?n=<tag> sent from `source_ip` with `headers` looked like to the service.
  EchoedRequest EchoFrom(const std::string& source_ip, const std::string& tag,
                         const std::string& headers) {
    UniqueFd fd = ConnectFrom(source_ip, front());
    EXPECT_TRUE(fd) << "cannot connect from " << source_ip;
    if (!fd) return {};
    EXPECT_TRUE(SendAll(fd.get(), GetRequest("/echo?n=" + tag, "front.example", headers)));
    std::string carry;
    const std::string resp = RecvHttpResponse(fd.get(), &carry, kIo);
    EXPECT_EQ(StatusOf(resp), 200) << resp;
    return ParseEcho(BodyOf(resp));
  }

  // The id the access log shows for /echo?n=<tag>.
  std::string LoggedId(const std::string& tag) {
    std::string id;
    EXPECT_TRUE(WaitFor(
        [&] { return !(id = LoggedRequestId(h().AccessLog(), "/echo?n=" + tag)).empty(); }, kIo))
        << h().AccessLog();
    return id;
  }
};

constexpr char kClientForwarding[] =
    "X-Forwarded-Proto: https\r\nX-Forwarded-Host: original.example\r\n"
    "X-Request-Id: edge-7f3a/9\r\n";

TEST_F(ForwardingHeadersTest, OnlyATrustedProxyChoosesThemAndTheLogShowsTheIdTheServiceSaw) {
  // 127.0.0.1 is not in server.trusted_proxies: whatever it claims is replaced.
  const EchoedRequest untrusted = EchoFrom("127.0.0.1", "untrusted", kClientForwarding);
  EXPECT_THAT(untrusted.All("X-Forwarded-Proto"), ::testing::ElementsAre("http"));
  EXPECT_THAT(untrusted.All("X-Forwarded-Host"), ::testing::ElementsAre("front.example"));
  ASSERT_EQ(untrusted.All("X-Request-Id").size(), 1u);
  const std::string generated = untrusted.All("X-Request-Id")[0];
  EXPECT_NE(generated, "edge-7f3a/9");
  EXPECT_EQ(generated.size(), 32u);
  EXPECT_EQ(LoggedId("untrusted"), generated);

  // 127.0.0.2 is: its values reach the service, and the log shows its id.
  const EchoedRequest trusted = EchoFrom("127.0.0.2", "trusted", kClientForwarding);
  EXPECT_THAT(trusted.All("X-Forwarded-Proto"), ::testing::ElementsAre("https"));
  EXPECT_THAT(trusted.All("X-Forwarded-Host"), ::testing::ElementsAre("original.example"));
  EXPECT_THAT(trusted.All("X-Request-Id"), ::testing::ElementsAre("edge-7f3a/9"));
  EXPECT_EQ(LoggedId("trusted"), "edge-7f3a/9");
  // Both append to X-Forwarded-For, as always.
  EXPECT_THAT(::testing::PrintToString(trusted.All("X-Forwarded-For")), HasSubstr("127.0.0.2"));

  // Even a trusted proxy's id must be sane (visible ASCII, bounded); else l7px's own.
  const EchoedRequest odd =
      EchoFrom("127.0.0.2", "odd", "X-Request-Id: " + std::string(129, 'i') + "\r\n");
  ASSERT_EQ(odd.All("X-Request-Id").size(), 1u);
  EXPECT_EQ(odd.All("X-Request-Id")[0].size(), 32u);
  EXPECT_EQ(LoggedId("odd"), odd.All("X-Request-Id")[0]);
  // A trusted proxy that sends none gets l7px's.
  const EchoedRequest bare = EchoFrom("127.0.0.2", "bare", "");
  EXPECT_THAT(bare.All("X-Forwarded-Proto"), ::testing::ElementsAre("http"));
  EXPECT_THAT(bare.All("X-Forwarded-Host"), ::testing::ElementsAre("front.example"));
}

TEST_F(ForwardingHeadersTest, TrustedProxiesChangeWithAReload) {
  EXPECT_THAT(EchoFrom("127.0.0.2", "before", kClientForwarding).All("X-Forwarded-Proto"),
              ::testing::ElementsAre("https"));
  h().WriteConfig(kDefaultPool, "");  // trusted_proxies back to its default: nobody
  h().proxy().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return CountOf(h().ProxyLog(), "config reloaded") == 1; }, kIo))
      << h().ProxyLog();
  const EchoedRequest after = EchoFrom("127.0.0.2", "after", kClientForwarding);
  EXPECT_THAT(after.All("X-Forwarded-Proto"), ::testing::ElementsAre("http"));
  EXPECT_THAT(after.All("X-Forwarded-Host"), ::testing::ElementsAre("front.example"));
  ASSERT_EQ(after.All("X-Request-Id").size(), 1u);
  EXPECT_NE(after.All("X-Request-Id")[0], "edge-7f3a/9");
}

// ---------------------------------------------------------------------------------------------
// RFC duties answered by l7px or checked on the way, with the test service behind.

class RfcConformanceTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "2", "--service-id", "svc"}), nullptr);
  }
};

TEST_F(RfcConformanceTest, RequestTargetBeyondTheLimitIs414) {
  // server.max_header_bytes (16 KiB) is the target's limit too; a target that fills the head is
  // 414 URI Too Long, not 431.
  ExpectRejectedAndClosed(GetRequest("/" + std::string(20000, 'u')), 414);
  // Long fields with a short target stay 431.
  ExpectRejectedAndClosed(GetRequest("/", "x", "X-Huge: " + std::string(20000, 'h') + "\r\n"), 431);
}

TEST_F(RfcConformanceTest, OptionsWithMaxForwardsZeroIsAnsweredByL7px) {
  for (const std::string target : {"/echo", "*"}) {
    SCOPED_TRACE(target);
    const std::string resp = HttpExchange(
        front(), "OPTIONS " + target + " HTTP/1.1\r\nHost: test.local\r\nMax-Forwards: 0\r\n\r\n");
    EXPECT_EQ(StatusOf(resp), 200) << resp;
    EXPECT_EQ(HeaderOf(resp, "Allow"), "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS") << resp;
    EXPECT_EQ(HeaderOf(resp, "Content-Length"), "0") << resp;
    EXPECT_EQ(HeaderOf(resp, "X-Service"), "") << "forwarded to the service: " << resp;
  }
}

TEST_F(RfcConformanceTest, OptionsWithMaxForwardsAboveZeroIsForwardedDecremented) {
  const std::string resp = HttpExchange(
      front(), "OPTIONS /echo HTTP/1.1\r\nHost: test.local\r\nMax-Forwards: 5\r\n\r\n");
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(HeaderOf(resp, "X-Service"), "svc");
  const EchoedRequest echo = ParseEcho(BodyOf(resp));
  EXPECT_EQ(echo.request_line, "OPTIONS /echo");
  EXPECT_THAT(echo.All("Max-Forwards"), ::testing::ElementsAre("4"));
}

TEST_F(RfcConformanceTest, TraceIsNeverForwarded) {
  for (const std::string max_forwards : {"", "Max-Forwards: 0\r\n", "Max-Forwards: 3\r\n"}) {
    SCOPED_TRACE(max_forwards);
    const std::string resp =
        HttpExchange(front(), "TRACE /echo HTTP/1.1\r\nHost: test.local\r\nCookie: secret=1\r\n" +
                                  max_forwards + "\r\n");
    EXPECT_EQ(StatusOf(resp), 405) << resp;
    EXPECT_EQ(HeaderOf(resp, "X-Service"), "") << "forwarded to the service: " << resp;
    EXPECT_THAT(resp, ::testing::Not(HasSubstr("secret"))) << "the request was reflected";
    EXPECT_EQ(HeaderOf(resp, "Allow"), "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS") << resp;
  }
}

TEST_F(RfcConformanceTest, TransferEncodingIsReadAsAList) {
  for (const std::string te : {"chunked ,", "chunked,", ", chunked", "CHUNKED , "}) {
    SCOPED_TRACE(te);
    const std::string resp = HttpExchange(
        front(), "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: " + te +
                     "\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    ASSERT_EQ(StatusOf(resp), 200) << resp;
    const EchoedRequest echo = ParseEcho(BodyOf(resp));
    EXPECT_EQ(echo.body, "hello");
    EXPECT_THAT(echo.All("Transfer-Encoding"), ::testing::ElementsAre("chunked"));
  }
}

// An empty Transfer-Encoding read as "no body" would make the chunked bytes the next request.
TEST_F(RfcConformanceTest, EmptyTransferEncodingIsRejected) {
  ExpectRejectedAndClosed(
      "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding:\r\n\r\n"
      "1e\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n0\r\n\r\n",
      400);
  ExpectRejectedAndClosed(
      "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n"
      "Transfer-Encoding: \r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      400);
}

TEST_F(RfcConformanceTest, ChunkExtensionsWithWhitespaceAreAccepted) {
  const std::string resp =
      HttpExchange(front(),
                   "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5 ; name = value\r\nhello\r\n6\t;\tq = \"a b\"\r\n world\r\n0 ; end\r\n\r\n");
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(ParseEcho(BodyOf(resp)).body, "hello world");
  // A bare CR is still no line end.
  ExpectRejectedAndClosed(
      "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5 ; a = b\rhello\r\n0\r\n\r\n",
      400);
}

// ---------------------------------------------------------------------------------------------
// What a service receives, byte for byte: a slot registered by hand.

class RawServiceTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    h().EnableAdmin();
    ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
    std::string answer;
    slot_ = RegisterByHand(h().register_port(), RegistrationHead("", "", "raw"), &answer);
    ASSERT_EQ(StatusOf(answer), 101) << answer;
    ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 1; }, kIo));
  }

  // Reads one request head and, when `chunked`, its body up to the blank line that ends it (the
  // bodies sent here have no other), then answers 200. Returns what arrived ("" on timeout).
  std::string ServeOne(bool chunked) {
    std::string carry;
    std::string request = RecvHttpRequest(slot_.get(), &carry, kIo, /*read_body=*/!chunked);
    if (request.empty()) return "";
    if (chunked) {
      const auto deadline = std::chrono::steady_clock::now() + kIo;
      char buf[65536];
      while (carry.size() < 4 || carry.compare(carry.size() - 4, 4, "\r\n\r\n") != 0) {
        const ssize_t n = RecvSome(slot_.get(), buf, sizeof(buf), deadline);
        if (n <= 0) return "";
        carry.append(buf, static_cast<size_t>(n));
      }
      request += carry;
    }
    if (!SendAll(slot_.get(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) return "";
    return request;
  }

  UniqueFd slot_;
};

TEST_F(RawServiceTest, OptionsAsteriskIsForwardedAsAsteriskToTheRootRoute) {
  auto served = std::async(std::launch::async, [&] { return ServeOne(false); });
  const std::string resp =
      HttpExchange(front(), "OPTIONS * HTTP/1.1\r\nHost: test.local\r\nMax-Forwards: 2\r\n\r\n");
  const std::string seen = served.get();
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "ok");
  EXPECT_THAT(seen, ::testing::StartsWith("OPTIONS * HTTP/1.1\r\n")) << seen;
  EXPECT_THAT(seen, HasSubstr("\r\nMax-Forwards: 1\r\n")) << seen;
}

// Zero-padded sizes, extensions and trailers never reach a service, whose parser may read them
// differently from l7px: it gets the body in canonical framing.
TEST_F(RawServiceTest, ChunkedRequestBodyReachesTheServiceInCanonicalFraming) {
  auto served = std::async(std::launch::async, [&] { return ServeOne(true); });
  const std::string resp = HttpExchange(
      front(),
      "POST /up HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0005;a=b\r\nhello\r\n00A;x=\"y z\"\r\n0123456789\r\n0000\r\nX-Trailer: t\r\n\r\n");
  const std::string seen = served.get();
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  const size_t body = seen.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos) << seen;
  EXPECT_THAT(seen.substr(0, body + 2), HasSubstr("\r\nTransfer-Encoding: chunked\r\n"));
  EXPECT_EQ(seen.substr(body + 4), "5\r\nhello\r\na\r\n0123456789\r\n0\r\n\r\n");
}

// A body larger than server.body_buffer streams to the slot while it arrives, in pieces that cut
// chunk-size lines apart: still canonical, and the input buffer's accounting holds.
TEST_F(RawServiceTest, StreamedChunkedBodyIsReframedAcrossReads) {
  std::string wire;
  std::string canonical;
  for (int i = 0; i < 300; ++i) {
    const std::string data(700 + (i * 37) % 600, static_cast<char>('a' + i % 26));
    wire += fmt::format("{:08X};note=\"n {}\"\r\n", data.size(), i) + data + "\r\n";
    canonical += fmt::format("{:x}\r\n", data.size()) + data + "\r\n";
  }
  wire += "0;end\r\nX-Sum: 1\r\n\r\n";
  canonical += "0\r\n\r\n";
  ASSERT_GT(wire.size(), 200u * 1024);

  auto served = std::async(std::launch::async, [&] { return ServeOne(true); });
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(SendAll(
      fd.get(), "POST /up HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"));
  for (size_t off = 0; off < wire.size(); off += 4093) {  // an odd piece size: lines are cut
    ASSERT_TRUE(SendAll(fd.get(), wire.substr(off, 4093)));
  }
  std::string carry;
  const std::string resp = RecvHttpResponse(fd.get(), &carry, kIo);
  const std::string seen = served.get();
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  const size_t body = seen.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos) << seen.substr(0, 500);
  EXPECT_TRUE(seen.substr(body + 4) == canonical) << "the service got " << seen.size() - body - 4
                                                  << " body bytes, expected " << canonical.size();
}

}  // namespace
}  // namespace l7px::testing
