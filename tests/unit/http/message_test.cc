#include "http/message.h"

#include <gtest/gtest.h>

#include <string>

#include "http/parser.h"
#include "http/uri.h"

namespace l7px::http {
namespace {

struct Head {
  std::string buf;
  Parser parser{Parser::Kind::kRequest, {}};
  explicit Head(std::string in) : buf(std::move(in)) {
    parser.Begin(buf.data());
    EXPECT_EQ(parser.Parse(buf.data(), buf.size()).status, Parser::Status::kHeadDone)
        << ErrorName(parser.error());
  }
  const MessageHead& h() const { return parser.head(); }
};

TEST(MessageHead, HostForRouting) {
  char buf[64];
  EXPECT_EQ(Head("GET / HTTP/1.1\r\nHost: API.Example.com:8443\r\n\r\n")
                .h()
                .HostForRouting(buf, sizeof(buf)),
            "api.example.com");
  EXPECT_EQ(Head("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n").h().HostForRouting(buf, sizeof(buf)),
            "[::1]");
  EXPECT_EQ(Head("GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n").h().HostForRouting(buf, sizeof(buf)),
            "10.0.0.1");
  EXPECT_EQ(Head("GET https://Abs.Example/x HTTP/1.1\r\nHost: other\r\n\r\n")
                .h()
                .HostForRouting(buf, sizeof(buf)),
            "abs.example");
  // Too small a buffer gives nothing rather than a truncated host.
  EXPECT_EQ(Head("GET / HTTP/1.1\r\nHost: abcdef\r\n\r\n").h().HostForRouting(buf, 3), "");
}

TEST(MessageHead, PathAndOriginForm) {
  Head a("GET /a/b?c=d#f HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(a.h().Path(), "/a/b");
  EXPECT_EQ(a.h().OriginFormTarget(), "/a/b?c=d#f");
  Head b("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(b.h().Path(), "/");  // routed as the server's root (RFC 9110 9.3.7)
  EXPECT_EQ(b.h().OriginFormTarget(), "*");
  Head c("GET http://h:1/p?q HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(c.h().Path(), "/p");
  EXPECT_EQ(c.h().OriginFormTarget(), "/p?q");
}

TEST(MessageHead, IdempotentMethods) {
  EXPECT_TRUE(IsIdempotentMethod(HTTP_GET));
  EXPECT_TRUE(IsIdempotentMethod(HTTP_HEAD));
  EXPECT_TRUE(IsIdempotentMethod(HTTP_PUT));
  EXPECT_TRUE(IsIdempotentMethod(HTTP_DELETE));
  EXPECT_TRUE(IsIdempotentMethod(HTTP_OPTIONS));
  EXPECT_TRUE(IsIdempotentMethod(HTTP_TRACE));
  EXPECT_FALSE(IsIdempotentMethod(HTTP_POST));
  EXPECT_FALSE(IsIdempotentMethod(HTTP_PATCH));
  EXPECT_FALSE(IsIdempotentMethod(HTTP_CONNECT));
}

TEST(Uri, Authority) {
  for (const char* ok : {"a", "a.b.c", "a-b_c~d", "a:1", "a:65535", "10.0.0.1:80", "[::1]",
                         "[2001:db8::1]:443", "[::ffff:10.0.0.1]", "%41b", "x!$&'()*+,;=y"}) {
    EXPECT_TRUE(IsValidAuthority(ok)) << ok;
  }
  for (const char* bad :
       {"", ":80", "a:", "a:65536", "a:123456", "a:8x", "a b", "a/b", "u@a", "a?b", "a#b", "[::1",
        "[::1]x", "[g::1]", "[1]", "%4", "%zz", "a:1:2", "a\tb"}) {
    EXPECT_FALSE(IsValidAuthority(bad)) << bad;
  }
}

TEST(Uri, SplitAbsoluteForm) {
  std::string_view authority, rest;
  ASSERT_TRUE(SplitAbsoluteForm("HTTP://h:1/p?q", &authority, &rest));
  EXPECT_EQ(authority, "h:1");
  EXPECT_EQ(rest, "/p?q");
  ASSERT_TRUE(SplitAbsoluteForm("https://h", &authority, &rest));
  EXPECT_EQ(authority, "h");
  EXPECT_EQ(rest, "");
  EXPECT_FALSE(SplitAbsoluteForm("/p", &authority, &rest));
  EXPECT_FALSE(SplitAbsoluteForm("ftp://h/p", &authority, &rest));
  EXPECT_EQ(StripPort("h:80"), "h");
  EXPECT_EQ(StripPort("[::1]:80"), "[::1]");
  EXPECT_EQ(StripPort("h"), "h");
}

}  // namespace
}  // namespace l7px::http
