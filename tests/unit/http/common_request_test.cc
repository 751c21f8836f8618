#include "http/common_request.h"

#include <gtest/gtest.h>

#include <string>

#include "http/parser.h"
#include "parse_driver.h"

namespace l7px::http {
namespace {

using namespace std::string_literals;

constexpr Parser::Limits kLimits{
    .max_header_bytes = 1024, .max_target_bytes = 64, .max_body_bytes = 1000};

CommonRequestLimits Common(const Parser::Limits& l) {
  return {l.max_header_bytes, l.max_target_bytes, l.max_body_bytes};
}

// The fast path's reading of `in`, or "declined".
std::string Fast(const std::string& in) {
  MessageHead h;
  h.Reset(in.data());
  const uint32_t n = ParseCommonRequestHead(in.data(), in.size(), Common(kLimits), &h);
  if (n == 0) return "declined";
  EXPECT_EQ(n, h.head_len);
  return testing::Describe(h);
}

// The llhttp path's reading of `in`: an empty first Parse() call means the head did not arrive
// complete at once, so the parser takes llhttp for this message.
std::string Llhttp(const std::string& in) {
  Parser p(Parser::Kind::kRequest, kLimits);
  p.Begin(in.data());
  EXPECT_EQ(p.Parse(in.data(), 0).status, Parser::Status::kNeedMore);
  const Parser::Result r = p.Parse(in.data(), in.size());
  if (r.status == Parser::Status::kError)
    return std::string("error ") + ErrorName(p.error()).data();
  EXPECT_EQ(r.status, Parser::Status::kHeadDone);
  return testing::Describe(p.head());
}

TEST(CommonRequest, ReadsCommonHeadsExactlyAsLlhttpPath) {
  const std::string cases[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /api/v1/items?id=42&sort=desc HTTP/1.1\r\nHost: shop.example.com:8080\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0)\r\nAccept: */*\r\n"
      "Cookie: a=b; c=d\r\nConnection: keep-alive\r\n\r\n",
      "HEAD /h HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n",
      "POST /u HTTP/1.1\r\nhost: a\r\nContent-Length: 5\r\n\r\nhello",
      "PUT /u HTTP/1.1\r\nHost: a\r\ncontent-length: 007\r\n\r\n1234567",
      "PATCH /u HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
      "DELETE /u HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n",
      "OPTIONS /o HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
      "GET / HTTP/1.0\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost:\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Spaces:    \r\nX-In: a  b\r\n\r\n",
      "GET /a/b;p=1/c:d@e/%41?x=/?&y=!$'()*+,;= HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nX_Weird.Name!#$%&'*+^`|~: v\r\n\r\n",
      "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-CONTINUE\r\nContent-Length: 2\r\n\r\nok",
      "GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive: 5\r\nTE: trailers\r\nVia: 1.0 x\r\n"
      "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: h\r\n"
      "X-Request-Id: r\r\nProxy-Authorization: p\r\nTrailer: t\r\n\r\n",
  };
  for (const std::string& in : cases) {
    SCOPED_TRACE(in);
    const std::string fast = Fast(in);
    EXPECT_NE(fast, "declined");
    EXPECT_EQ(fast, Llhttp(in));
  }
}

TEST(CommonRequest, DeclinesEverythingElse) {
  const std::string host = "Host: a\r\n";
  const std::string cases[] = {
      // Framing and connection management llhttp interprets.
      "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "Upgrade: websocket\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "Proxy-Connection: close\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "Connection: keep-alive, close\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "Connection: close\r\nConnection: close\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "Connection: x-hop\r\n\r\n",
      "POST / HTTP/1.1\r\n" + host + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx",
      "POST / HTTP/1.1\r\n" + host + "Content-Length: +1\r\n\r\nx",
      "POST / HTTP/1.1\r\n" + host + "Content-Length: 1 \r\n\r\nx",
      "POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n\r\n",
      "POST / HTTP/1.1\r\n" + host + "Content-Length: 0000000000000001\r\n\r\nx",
      "POST / HTTP/1.1\r\n" + host + "Content-Length: 1001\r\n\r\n",  // over max_body_bytes
      // Bytes and layout the fast path leaves to llhttp.
      "GET / HTTP/1.1\r\n" + host + "X: a\tb\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "X:\ta\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "X: caf\xc3\xa9\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "X: a \r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "X: a\r\n b\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "X : a\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "X: a\nY: b\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + "X: a\0b\r\n\r\n"s,
      "GET / HTTP/1.1\r\n" + host + "\n",
      "GET / HTTP/1.1\r\n" + host + "\r\r\n",
      "\r\nGET / HTTP/1.1\r\n" + host + "\r\n",
      "GET  / HTTP/1.1\r\n" + host + "\r\n",
      "GET / HTTP/1.1 \r\n" + host + "\r\n",
      "GET / HTTP/1.1\n" + host + "\r\n",
      "GET http://a/ HTTP/1.1\r\n" + host + "\r\n",
      "OPTIONS * HTTP/1.1\r\n" + host + "\r\n",
      "GET /a#f HTTP/1.1\r\n" + host + "\r\n",
      "GET /a|b HTTP/1.1\r\n" + host + "\r\n",
      "GET /" + std::string(64, 'a') + " HTTP/1.1\r\n" + host + "\r\n",  // over max_target_bytes
      "get / HTTP/1.1\r\n" + host + "\r\n",
      "GETX / HTTP/1.1\r\n" + host + "\r\n",
      "CONNECT a:443 HTTP/1.1\r\n" + host + "\r\n",
      "PURGE / HTTP/1.1\r\n" + host + "\r\n",
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
      "GET / HTTP/1.2\r\n" + host + "\r\n",
      "GET / HTTP/2.0\r\n" + host + "\r\n",
      // Host rules.
      "GET / HTTP/1.1\r\n\r\n",
      "GET / HTTP/1.1\r\n" + host + host + "\r\n",
      "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
      "GET / HTTP/1.0\r\nHost: a:99999\r\n\r\n",
      // Incomplete or too large.
      "GET / HTTP/1.1\r\n" + host,
      "GET / HTTP/1.1\r\n" + host + "\r",
      "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(1024, 'v') + "\r\n\r\n",
  };
  for (const std::string& in : cases) {
    SCOPED_TRACE(in);
    EXPECT_EQ(Fast(in), "declined");
  }
}

TEST(CommonRequest, LimitsAreInclusive) {
  // A head of exactly max_header_bytes and a target of exactly max_target_bytes are read.
  const std::string target = "/" + std::string(kLimits.max_target_bytes - 1, 't');
  std::string in = "GET " + target + " HTTP/1.1\r\nHost: a\r\nX: ";
  in += std::string(kLimits.max_header_bytes - in.size() - 4, 'v') + "\r\n\r\n";
  ASSERT_EQ(in.size(), kLimits.max_header_bytes);
  EXPECT_EQ(Fast(in), Llhttp(in));
  EXPECT_NE(Fast(in), "declined");

  std::string fields = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 1; i < kMaxHeaders; ++i) fields += "X: v\r\n";
  EXPECT_NE(Fast(fields + "\r\n"), "declined");
  EXPECT_EQ(Fast(fields + "X: v\r\n\r\n"), "declined");
}

}  // namespace
}  // namespace l7px::http
