// Integration: what clients see when their request is bad, when no route matches, and when the
// client or the service is too slow (header_timeout, response_timeout).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

class ProxyErrorsTest : public IntegrationTest {};

class ProxyMalformedTest : public ProxyErrorsTest {
 protected:
  void SetUp() override {
    ProxyErrorsTest::SetUp();
    ASSERT_TRUE(StartProxy(kDefaultPool, "max_body_bytes = \"1KiB\"\n")) << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  }
};

TEST_F(ProxyMalformedTest, BadRequestLine) {
  ExpectRejectedAndClosed("GARBAGE\r\n\r\n", 400);
  ExpectRejectedAndClosed("GET /\r\nHost: x\r\n\r\n", 400);
}

TEST_F(ProxyMalformedTest, TrailingGarbageAfterVersionIs400) {
  // An invalid request-line (RFC 9112 3), not an unsupported version: 400, not 505.
  ExpectRejectedAndClosed("GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n", 400);
}

TEST_F(ProxyMalformedTest, ContentLengthWithTransferEncoding) {
  ExpectRejectedAndClosed(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\n\r\n",
      400);
}

TEST_F(ProxyMalformedTest, TransferEncodingNotEndingInChunked) {
  ExpectRejectedAndClosed(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400);
}

TEST_F(ProxyMalformedTest, DifferingContentLengths) {
  ExpectRejectedAndClosed(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400);
  ExpectRejectedAndClosed("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 4\r\n\r\nabcd",
                          400);
}

TEST_F(ProxyMalformedTest, ObsFold) {
  ExpectRejectedAndClosed("GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  continued\r\n\r\n", 400);
}

TEST_F(ProxyMalformedTest, SpaceBeforeColon) {
  ExpectRejectedAndClosed("GET / HTTP/1.1\r\nHost: x\r\nX-Bad : value\r\n\r\n", 400);
}

TEST_F(ProxyMalformedTest, MissingOrDuplicateHost) {
  ExpectRejectedAndClosed("GET / HTTP/1.1\r\nX-No-Host: 1\r\n\r\n", 400);
  ExpectRejectedAndClosed("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

TEST_F(ProxyMalformedTest, BadChunkSize) {
  ExpectRejectedAndClosed(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
      400);
}

TEST_F(ProxyMalformedTest, HugeHeaderIs431) {
  ExpectRejectedAndClosed(GetRequest("/", "x", "X-Huge: " + std::string(20000, 'h') + "\r\n"), 431);
}

TEST_F(ProxyMalformedTest, BodyOverLimitIs413) {
  // Only the head: the limit is known from Content-Length alone.
  ExpectRejectedAndClosed("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413);
}

TEST_F(ProxyMalformedTest, ChunkedBodyOverLimitIs413) {
  const std::string chunk(800, 'c');
  const std::string request =
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n320\r\n" + chunk +
      "\r\n320\r\n" + chunk + "\r\n";
  ExpectRejectedAndClosed(request, 413);
}

TEST_F(ProxyMalformedTest, UnsupportedVersionIs505) {
  ExpectRejectedAndClosed("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505);
}

TEST_F(ProxyMalformedTest, GoodRequestStillWorksAfterErrors) {
  ExpectRejectedAndClosed("GARBAGE\r\n\r\n", 400);
  const std::string resp = HttpExchange(front(), GetRequest("/fine"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "ok /fine");
  // A body within the limit passes.
  const std::string post =
      HttpExchange(front(), "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" +
                                std::string(1000, 'b'));
  EXPECT_EQ(StatusOf(post), 200) << post;
  EXPECT_EQ(ParseEcho(BodyOf(post)).body, std::string(1000, 'b'));
}

TEST_F(ProxyMalformedTest, ErrorAfterPipelinedGoodRequest) {
  // The good request is answered, then the bad one gets 400 and the connection closes.
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(SendAll(fd.get(), GetRequest("/first") + "BROKEN LINE\r\n\r\n"));
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(fd.get(), kIo, &seen));
  std::string carry = seen;
  const std::string first = RecvHttpResponse(-1, &carry, std::chrono::milliseconds(0));
  EXPECT_EQ(StatusOf(first), 200) << seen;
  EXPECT_EQ(BodyOf(first), "ok /first");
  EXPECT_EQ(StatusOf(carry), 400) << seen;
}

class ProxyRoutingTest : public ProxyErrorsTest {};

TEST_F(ProxyRoutingTest, NoRouteIs404) {
  ASSERT_TRUE(StartProxy(std::string(kDefaultPool) +
                         "[[route]]\nhost = \"only.example\"\npath = \"/\"\npool = \"default\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);

  const std::string miss = HttpExchange(front(), GetRequest("/x", "other.example"));
  EXPECT_EQ(StatusOf(miss), 404) << miss;
  const std::string hit = HttpExchange(front(), GetRequest("/x", "only.example"));
  EXPECT_EQ(StatusOf(hit), 200) << hit;
  EXPECT_EQ(BodyOf(hit), "ok /x");
  // The port in Host does not take part in host matching.
  const std::string with_port = HttpExchange(front(), GetRequest("/y", "only.example:80"));
  EXPECT_EQ(StatusOf(with_port), 200) << with_port;

  // A 404 keeps the connection usable.
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  std::string carry;
  ASSERT_TRUE(SendAll(fd.get(), GetRequest("/a", "nowhere.example")));
  EXPECT_EQ(StatusOf(RecvHttpResponse(fd.get(), &carry, kIo)), 404);
  ASSERT_TRUE(SendAll(fd.get(), GetRequest("/b", "only.example")));
  EXPECT_EQ(BodyOf(RecvHttpResponse(fd.get(), &carry, kIo)), "ok /b");
}

// README "Security", request smuggling and ambiguous framing, line by line: each request the
// README says is refused gets a 400 (505 for a version) and a close; each variant it calls
// equivalent reaches the service with its body intact.
struct FramingCase {
  const char* name;
  std::string request;
  int status;  // 200: forwarded, the echoed body is "ab"
};

void PrintTo(const FramingCase& c, std::ostream* os) { *os << c.name; }

const std::string kFramingPost = "POST /echo HTTP/1.1\r\nHost: x\r\n";
const std::string kFramingChunked = kFramingPost + "Transfer-Encoding: chunked\r\n\r\n";

const FramingCase kFramingCases[] = {
    {"ContentLengthWithJunk", kFramingPost + "Content-Length: 2x\r\n\r\nab", 400},
    {"NegativeContentLength", kFramingPost + "Content-Length: -2\r\n\r\nab", 400},
    {"ContentLengthTwiceTheSame", kFramingPost + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nab",
     400},
    {"Xchunked", kFramingPost + "Transfer-Encoding: xchunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", 400},
    {"ChunkedTwice",
     kFramingPost + "Transfer-Encoding: chunked, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n", 400},
    {"ChunkedInTwoFields",
     kFramingPost +
         "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
     400},
    {"ChunkedThenGzipField",
     kFramingPost +
         "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n2\r\nab\r\n0\r\n\r\n",
     400},
    {"BareCr", kFramingPost + "X-A: a\rb\r\nContent-Length: 2\r\n\r\nab", 400},
    {"BareLf", "POST /echo HTTP/1.1\nHost: x\nContent-Length: 2\n\nab", 400},
    {"Nul", kFramingPost + "X-A: a" + std::string(1, '\0') + "b\r\nContent-Length: 2\r\n\r\nab",
     400},
    {"ControlByte",
     kFramingPost + "X-A: a\x01"
                    "b\r\nContent-Length: 2\r\n\r\nab",
     400},
    {"Del",
     kFramingPost + "X-A: a\x7f"
                    "b\r\nContent-Length: 2\r\n\r\nab",
     400},
    {"ChunkSizeNotHex", kFramingChunked + "zz\r\nab\r\n0\r\n\r\n", 400},
    {"ChunkSizeWithSign", kFramingChunked + "+2\r\nab\r\n0\r\n\r\n", 400},
    {"ChunkSizeOverflow", kFramingChunked + "ffffffffffffffffff\r\nab\r\n0\r\n\r\n", 400},
    {"ChunkSizeThenBlank", kFramingChunked + "2 \r\nab\r\n0\r\n\r\n", 400},
    {"ChunkDataWithoutCrlf", kFramingChunked + "2\r\nabX0\r\n\r\n", 400},
    {"ChunkExtensionNameWithBlank", kFramingChunked + "2;a b\r\nab\r\n0\r\n\r\n", 400},
    {"ChunkExtensionUnterminatedQuote", kFramingChunked + "2;a=\"b\r\nab\r\n0\r\n\r\n", 400},
    {"ChunkExtensionQuotedCrlf", kFramingChunked + "2;a=\"x\r\ny\"\r\nab\r\n0\r\n\r\n", 400},
    {"ChunkExtensionControlByte", kFramingChunked + "2;a=\x01\r\nab\r\n0\r\n\r\n", 400},
    {"BadTrailer", kFramingChunked + "2\r\nab\r\n0\r\nbad trailer\r\n\r\n", 400},
    {"Http09RequestLine", "GET /\r\n\r\n", 400},
    {"Http09Version", "GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505},
    {"Http12Version", "GET / HTTP/1.2\r\nHost: x\r\n\r\n", 505},
    // Optional whitespace around a field value is not part of it (RFC 9110 5.5).
    {"ChunkedTrailingSpace",
     kFramingPost + "Transfer-Encoding: chunked \r\n\r\n2\r\nab\r\n0\r\n\r\n", 200},
    {"ChunkedLeadingTab", kFramingPost + "Transfer-Encoding:\tchunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
     200},
    {"ChunkedTrailingTab",
     kFramingPost + "Transfer-Encoding: chunked\t\r\n\r\n2\r\nab\r\n0\r\n\r\n", 200},
    {"GzipThenChunkedFields",
     kFramingPost +
         "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n",
     200},
    {"ChunkExtensions", kFramingChunked + "2;q=\"x y\";a=b\r\nab\r\n0\r\n\r\n", 200},
};

class RequestFramingTest : public ProxyErrorsTest,
                           public ::testing::WithParamInterface<FramingCase> {
 protected:
  void SetUp() override {
    ProxyErrorsTest::SetUp();
    ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  }
};

TEST_P(RequestFramingTest, AsTheReadmeSays) {
  const FramingCase& c = GetParam();
  if (c.status != 200) {
    ExpectRejectedAndClosed(c.request, c.status);
    return;
  }
  const std::string resp = HttpExchange(front(), c.request);
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(ParseEcho(BodyOf(resp)).body, "ab") << resp;
}

INSTANTIATE_TEST_SUITE_P(Readme, RequestFramingTest, ::testing::ValuesIn(kFramingCases),
                         [](const ::testing::TestParamInfo<FramingCase>& p) {
                           return std::string(p.param.name);
                         });

// RFC 9112 7.1.1: chunk-ext-name is a token (one character at least), so an extension with no
// name, or a '=' with no value, is malformed framing: 400 and close.
TEST_F(ProxyErrorsTest, ChunkExtensionsWithoutANameOrValueAre400) {
  ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  for (const char* ext : {";=x", ";;a", ";a="}) {
    ExpectRejectedAndClosed(kFramingChunked + "2" + ext + "\r\nab\r\n0\r\n\r\n", 400);
  }
}

// The other way round: RFC 9112 7.1.1 allows any number of chunk extensions, and a quoted-pair
// in a quoted value (llhttp 8.1 refused both; l7px reads chunked framing itself).
TEST_F(ProxyErrorsTest, ValidChunkExtensionsAreForwarded) {
  ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  for (const char* ext : {";a=b;c=d", ";a=\"x\\\"y\""}) {
    const std::string resp =
        HttpExchange(front(), kFramingChunked + "2" + ext + "\r\nab\r\n0\r\n\r\n");
    EXPECT_EQ(StatusOf(resp), 200) << ext << ": " << resp;
    EXPECT_EQ(ParseEcho(BodyOf(resp)).body, "ab") << ext;
  }
}

class ProxyTimeoutTest : public ProxyErrorsTest {};

TEST_F(ProxyTimeoutTest, SilentServiceIs504) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nresponse_timeout = \"500ms\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);

  const auto start = Clock::now();
  const std::string resp = HttpExchange(front(), GetRequest("/delay/3000"));
  const long elapsed = MillisSince(start);
  EXPECT_EQ(StatusOf(resp), 504) << resp;
  EXPECT_GE(elapsed, 400);
  EXPECT_LT(elapsed, 2500);

  // The timed-out slot was closed; the service re-dials and the pool serves again.
  const std::string ok = HttpExchange(front(), GetRequest("/after"));
  EXPECT_EQ(StatusOf(ok), 200) << ok;
}

// README: "A request head must be complete within server.header_timeout of its first byte (408,
// close)". A head begun is a request asked: it is answered, exactly once, then closed.
TEST_F(ProxyTimeoutTest, SlowHeadIs408ThenClose) {
  ASSERT_TRUE(StartProxy(kDefaultPool, "header_timeout = \"500ms\"\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);

  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  const auto start = Clock::now();
  ASSERT_TRUE(SendAll(fd.get(), "GET /slow HTTP/1.1\r\nHost: x\r\n"));
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(fd.get(), std::chrono::seconds(3), &seen));
  const long elapsed = MillisSince(start);
  EXPECT_GE(elapsed, 400);
  EXPECT_LT(elapsed, 2000);
  EXPECT_EQ(StatusOf(seen), 408) << seen;
  EXPECT_EQ(HeaderOf(seen, "Connection"), "close") << seen;
  // One response and nothing after it: the head, then exactly its Content-Length of body.
  const size_t head_end = seen.find("\r\n\r\n");
  ASSERT_NE(head_end, std::string::npos) << seen;
  EXPECT_EQ(seen.size() - head_end - 4, std::stoul("0" + HeaderOf(seen, "Content-Length"))) << seen;
}

// README: "a new connection's first head counts from the accept, so a connection that says
// nothing is closed after header_timeout, not keepalive_timeout" -- and, as nothing was asked,
// nothing is answered. keepalive_timeout is the shorter one here: the connection must outlive it.
TEST_F(ProxyTimeoutTest, IdleConnectionBeforeFirstByteIsClosedSilentlyAfterHeaderTimeout) {
  ASSERT_TRUE(StartProxy(kDefaultPool, "header_timeout = \"1s\"\nkeepalive_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  const auto start = Clock::now();
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(fd.get(), std::chrono::seconds(4), &seen));
  const long elapsed = MillisSince(start);
  EXPECT_GE(elapsed, 900) << "closed by keepalive_timeout, not header_timeout";
  EXPECT_LT(elapsed, 2500);
  EXPECT_EQ(seen, "") << "a connection that asked nothing got an answer";
}

}  // namespace
}  // namespace l7px::testing
