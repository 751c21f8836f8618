#include "http/parser.h"

#include <gtest/gtest.h>

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "fmt/format.h"
#include "parse_driver.h"

namespace l7px::http {
namespace {

using testing::DriveOptions;
using testing::DriveWhole;
using testing::ExpectSplitInvariant;
using testing::ParseRun;
using namespace std::string_literals;

DriveOptions Request() { return {}; }
DriveOptions Response() {
  DriveOptions o;
  o.kind = Parser::Kind::kResponse;
  return o;
}

// Parses a single complete message given whole and returns the parser for inspection.
struct Single {
  std::string buf;
  Parser parser;
  Parser::Result head_result{Parser::Status::kError};

  Single(std::string input, Parser::Kind kind = Parser::Kind::kRequest, Parser::Limits l = {})
      : buf(std::move(input)), parser(kind, l) {
    parser.Begin(buf.data());
    head_result = parser.Parse(buf.data(), buf.size());
  }
  const MessageHead& head() const { return parser.head(); }
};

// ---------------------------------------------------------------------------------------------
// Requests

TEST(RequestParser, SimpleGetFields) {
  Single s(
      "GET /a/b?x=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nX-A:  one two  \r\nX-Empty:\r\n\r\n");
  ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
  EXPECT_EQ(s.head_result.consumed, s.buf.size());
  const MessageHead& h = s.head();
  EXPECT_EQ(h.head_len, s.buf.size());
  EXPECT_EQ(h.Str(h.method_name), "GET");
  EXPECT_EQ(h.method, HTTP_GET);
  EXPECT_EQ(h.Str(h.target), "/a/b?x=1");
  EXPECT_EQ(h.version_major, 1);
  EXPECT_EQ(h.version_minor, 1);
  ASSERT_EQ(h.header_count, 3);
  EXPECT_EQ(h.Name(0), "Host");
  EXPECT_EQ(h.Value(0), "Example.COM:8080");
  EXPECT_EQ(h.Value(1), "one two");
  EXPECT_EQ(h.Name(2), "X-Empty");
  EXPECT_EQ(h.Value(2), "");
  EXPECT_EQ(h.host_index, 0);
  EXPECT_EQ(h.Find("x-a"), 1);
  EXPECT_EQ(h.Find("missing"), -1);
  EXPECT_EQ(h.framing, Framing::kNone);
  EXPECT_TRUE(h.keep_alive);
  EXPECT_FALSE(h.upgrade);
  EXPECT_FALSE(h.expect_continue);
  EXPECT_FALSE(h.is_head_request);
  char buf[64];
  EXPECT_EQ(h.HostForRouting(buf, sizeof(buf)), "example.com");
  EXPECT_EQ(h.Path(), "/a/b");
  EXPECT_EQ(h.OriginFormTarget(), "/a/b?x=1");
  // No body: the message completes on the next call, consuming nothing.
  Parser::Result r = s.parser.Parse(s.buf.data() + s.buf.size(), 0);
  EXPECT_EQ(r.status, Parser::Status::kMessageDone);
  EXPECT_EQ(r.consumed, 0u);
}

TEST(RequestParser, PostWithContentLengthStopsAtBodyEnd) {
  std::string in = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET";
  Single s(in);
  ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
  size_t head = s.head_result.consumed;
  EXPECT_EQ(head, in.find("hello"));
  EXPECT_EQ(s.head().framing, Framing::kContentLength);
  EXPECT_EQ(s.head().content_length, 5u);
  Parser::Result r = s.parser.Parse(s.buf.data() + head, s.buf.size() - head);
  EXPECT_EQ(r.status, Parser::Status::kMessageDone);
  EXPECT_EQ(r.consumed, 5u);
  EXPECT_EQ(s.parser.body_bytes(), 5u);
}

TEST(RequestParser, BodyEndingExactlyAtInputEndCompletes) {
  std::string in = "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc";
  Single s(in);
  size_t head = s.head_result.consumed;
  Parser::Result r = s.parser.Parse(s.buf.data() + head, 3);
  EXPECT_EQ(r.status, Parser::Status::kMessageDone);
  EXPECT_EQ(r.consumed, 3u);
}

TEST(RequestParser, BodyMayLiveInAnotherBuffer) {
  std::string in = "PUT /u HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n";
  Single s(in);
  ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
  std::string b1 = "abc", b2 = "defXYZ";
  EXPECT_EQ(s.parser.Parse(b1.data(), b1.size()).status, Parser::Status::kNeedMore);
  EXPECT_TRUE(s.parser.in_body());
  Parser::Result r = s.parser.Parse(b2.data(), b2.size());
  EXPECT_EQ(r.status, Parser::Status::kMessageDone);
  EXPECT_EQ(r.consumed, 3u);
  EXPECT_EQ(s.parser.body_bytes(), 6u);
}

TEST(RequestParser, SplitInvariantValidRequests) {
  const std::string cases[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET /a/b?x=1 HTTP/1.1\r\nHost: Example.COM:8080\r\nX-A:  one two  \r\nX-Empty:\r\n"
      "Accept: */*\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  // one leading empty line is ignored
      "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
      "GET / HTTP/1.0\r\n\r\n",
      "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
      "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n",
      "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
      "GET http://Target.example:81/p/q?r HTTP/1.1\r\nHost: other\r\n\r\n",
      "GET https://t.example HTTP/1.1\r\nHost: t.example\r\n\r\n",
      "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok",
      "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: 10.0.0.1\r\n\r\n",
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n6;q=\"x y\";z\r\n world\r\n0\r\nTrailer-A: 1\r\nTrailer-B: 2\r\n\r\n",
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked \r\n\r\n0\r\n\r\n",
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
  };
  for (const std::string& in : cases) {
    SCOPED_TRACE(in);
    ParseRun run = ExpectSplitInvariant(in, Request());
    EXPECT_EQ(run.error, ParseError::kNone);
    ASSERT_EQ(run.messages.size(), 1u);
    EXPECT_TRUE(run.messages[0].done);
    EXPECT_EQ(run.consumed, in.size());
  }
}

TEST(RequestParser, DerivedFlags) {
  struct Case {
    std::string in;
    bool keep_alive, upgrade, expect_continue, head;
  };
  const Case cases[] = {
      {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, false, false, false},
      {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false, false, false, false},
      {"GET / HTTP/1.0\r\n\r\n", false, false, false, false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, false, false, false},
      {"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", true,
       true, false, false},
      {"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", true, false, false, false},
      // RFC 9110 7.8: Upgrade in an HTTP/1.0 request is ignored.
      {"GET /ws HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false, false, false,
       false},
      {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", true,
       false, true, false},
      {"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continuex\r\nContent-Length: 1\r\n\r\n", true,
       false, false, false},
      {"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", true, false, false, true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    Single s(c.in);
    ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone) << ErrorName(s.parser.error());
    EXPECT_EQ(s.head().keep_alive, c.keep_alive);
    EXPECT_EQ(s.head().upgrade, c.upgrade);
    EXPECT_EQ(s.head().expect_continue, c.expect_continue);
    EXPECT_EQ(s.head().is_head_request, c.head);
  }
}

TEST(RequestParser, Http10MayOmitHost) {
  Single s("GET /x HTTP/1.0\r\n\r\n");
  ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
  EXPECT_TRUE(s.head().is_http10());
  EXPECT_EQ(s.head().host_index, -1);
  char buf[16];
  EXPECT_EQ(s.head().HostForRouting(buf, sizeof(buf)), "");
}

TEST(RequestParser, AbsoluteFormRoutesByTargetAuthority) {
  Single s("GET HTTP://Target.Example:81/p/q?r=1 HTTP/1.1\r\nHost: other.example\r\n\r\n");
  ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
  char buf[64];
  EXPECT_EQ(s.head().HostForRouting(buf, sizeof(buf)), "target.example");
  EXPECT_EQ(s.head().Path(), "/p/q");
  EXPECT_EQ(s.head().OriginFormTarget(), "/p/q?r=1");

  Single bare("GET http://t.example HTTP/1.1\r\nHost: t.example\r\n\r\n");
  ASSERT_EQ(bare.head_result.status, Parser::Status::kHeadDone);
  EXPECT_EQ(bare.head().Path(), "/");
  EXPECT_EQ(bare.head().OriginFormTarget(), "/");
}

TEST(RequestParser, PipelinedMessages) {
  std::string in =
      "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"
      "POST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
      "POST /3 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
      "GET /4 HTTP/1.1\r\nHost: a\r\n\r\n";
  ParseRun run = ExpectSplitInvariant(in, Request());
  EXPECT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 4u);
  EXPECT_NE(run.messages[0].head.find("'/1'"), std::string::npos);
  EXPECT_EQ(run.messages[0].body, "");
  EXPECT_EQ(run.messages[1].body, "abc");
  EXPECT_EQ(run.messages[2].body, "2\r\nhi\r\n0\r\n\r\n");
  EXPECT_NE(run.messages[3].head.find("'/4'"), std::string::npos);
  EXPECT_EQ(run.consumed, in.size());
}

TEST(RequestParser, ChunkedBodyIsPassedRawWithExactBoundaries) {
  const std::string head = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body =
      "5;name=\"quoted value\";flag\r\nhello\r\n"
      "A\r\n0123456789\r\n"
      "0;last\r\nX-Trailer: t1\r\nX-Other: t2\r\n\r\n";
  const std::string next = "GET /n HTTP/1.1\r\nHost: a\r\n\r\n";
  ParseRun run = ExpectSplitInvariant(head + body + next, Request());
  ASSERT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 2u);
  EXPECT_EQ(run.messages[0].body, body);
  // Trailer fields are body bytes, not head fields.
  EXPECT_EQ(run.messages[0].head.find("X-Trailer"), std::string::npos);

  Single s(head + body);
  ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
  EXPECT_EQ(s.head().framing, Framing::kChunked);
  Parser::Result r = s.parser.Parse(s.buf.data() + head.size(), body.size());
  EXPECT_EQ(r.status, Parser::Status::kMessageDone);
  EXPECT_EQ(r.consumed, body.size());
  EXPECT_EQ(s.parser.body_bytes(), 15u);
}

TEST(RequestParser, DecodeModeMovesPayloadToFront) {
  const std::string head = "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "5;e=1\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n";
  DriveOptions o = Request();
  o.decode = true;
  ParseRun run = ExpectSplitInvariant(head + body, o);
  ASSERT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 1u);
  EXPECT_EQ(run.messages[0].body, "hello world");

  Single s(head + body);
  s.parser.set_decode_body(true);
  char* p = s.buf.data() + head.size();
  Parser::Result r = s.parser.Parse(p, body.size());
  EXPECT_EQ(r.status, Parser::Status::kMessageDone);
  EXPECT_EQ(r.consumed, body.size());
  EXPECT_EQ(r.decoded, 11u);
  EXPECT_EQ(std::string(p, r.decoded), "hello world");
}

TEST(RequestParser, FinishOnTruncatedMessages) {
  const std::string cases[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n",                                            // mid-head
      "GE",                                                                       // mid-method
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",              // mid-CL body
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",  // mid-chunk
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",    // no last CRLF
  };
  for (const std::string& in : cases) {
    SCOPED_TRACE(in);
    DriveOptions o = Request();
    o.finish = true;
    ParseRun run = ExpectSplitInvariant(in, o);
    EXPECT_EQ(run.error, ParseError::kMalformed);
  }
}

TEST(RequestParser, FinishWithoutMessageIsCleanClose) {
  Parser p(Parser::Kind::kRequest, {});
  std::string buf = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  p.Begin(buf.data());
  EXPECT_EQ(p.Finish().status, Parser::Status::kNeedMore);
  EXPECT_EQ(p.error(), ParseError::kNone);
  // After a complete message as well.
  ASSERT_EQ(p.Parse(buf.data(), buf.size()).status, Parser::Status::kHeadDone);
  EXPECT_EQ(p.Finish().status, Parser::Status::kMessageDone);  // the pending completion
  EXPECT_EQ(p.Finish().status, Parser::Status::kNeedMore);
}

// ---------------------------------------------------------------------------------------------
// Request errors: each case must fail the same way however the input is split.

struct ErrorCase {
  std::string in;
  ParseError error;
};

void ExpectErrors(const std::vector<ErrorCase>& cases, const DriveOptions& o) {
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.in);
    ParseRun run = ExpectSplitInvariant(c.in, o);
    EXPECT_EQ(run.error, c.error) << ErrorName(run.error);
    for (const auto& m : run.messages) EXPECT_FALSE(m.done);
  }
}

TEST(RequestErrors, Malformed) {
  ExpectErrors(
      {
          {"HELLO\r\n\r\n", ParseError::kMalformed},
          {"GET x HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::kMalformed},
          {"GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", ParseError::kMalformed},  // bare CR
          {"GET / HTTP/1.1\r\nHost: a\r\nX: a\nY: b\r\n\r\n", ParseError::kMalformed},
          {"GET / HTTP/1.1\nHost: a\n\n", ParseError::kMalformed},  // bare LF line ends
          {"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n"s, ParseError::kMalformed},  // NUL
          {"GET / HTTP/1.1\r\n: a\r\nHost: a\r\n\r\n", ParseError::kMalformed},
          {"GET /\r\n\r\n", ParseError::kMalformed},  // HTTP/0.9 request line
          {"GET / RTSP/1.0\r\n\r\n", ParseError::kMalformed},
          {"GET * HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::kMalformed},  // '*' only for OPTIONS
          {"GET ftp://a/b HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::kMalformed},
          {"GET http://a?x HTTP/1.1\r\nHost: a\r\n\r\n", ParseError::kMalformed},
          {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
           ParseError::kMalformed},
          {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", ParseError::kMalformed},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           ParseError::kMalformed},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
           ParseError::kMalformed},  // chunk data longer than its size
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\rabc\r\n",
           ParseError::kMalformed},
      },
      Request());
}

// llhttp's default build accepts any byte after CR in these places; the parser must not.
TEST(RequestErrors, BareCarriageReturnInFraming) {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  ExpectErrors(
      {
          {head + "3\rabc\r\n0\r\n\r\n", ParseError::kMalformed},           // after chunk size
          {head + "3;e=1\rabc\r\n0\r\n\r\n", ParseError::kMalformed},       // after extension
          {head + "3\r\nabc\rX0\r\n\r\n", ParseError::kMalformed},          // after chunk data
          {head + "3\r\nabc\r\n0\r\n\rX", ParseError::kMalformed},          // last CRLF
          {head + "3\r\nabc\r\n0\r\nT: 1\rX\r\n", ParseError::kMalformed},  // trailer
          {head + "3\nabc\r\n0\r\n\r\n", ParseError::kMalformed},           // bare LF
          {head + "3\r\nabc\r\n0\r\nT: 1\n\r\n", ParseError::kMalformed},
          {"GET / HTTP/1.1\r\nHost: a\r\n\rX", ParseError::kMalformed},  // end of head
          {"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\rGET / HTTP/1.1\r\nHost: b\r\n\r\n",
           ParseError::kMalformed},
      },
      Request());
}

TEST(RequestErrors, ObsFold) {
  ExpectErrors(
      {
          {"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", ParseError::kObsFold},
          {"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", ParseError::kObsFold},
          {"GET / HTTP/1.1\r\nX:\r\n b\r\nHost: a\r\n\r\n", ParseError::kObsFold},
          // Smuggling: a Content-Length hidden in a folded Host line.
          {"POST / HTTP/1.1\r\nHost: a\r\n Content-Length: 5\r\n\r\nhello", ParseError::kObsFold},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n \r\n\r\n0\r\n\r\n",
           ParseError::kObsFold},
      },
      Request());
}

TEST(RequestErrors, SpaceBeforeColon) {
  ExpectErrors(
      {
          {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", ParseError::kSpaceBeforeColon},
          {"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n", ParseError::kSpaceBeforeColon},
          {"GET / HTTP/1.1\r\nHost: a\r\nConnection : close\r\n\r\n",
           ParseError::kSpaceBeforeColon},
          {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello",
           ParseError::kSpaceBeforeColon},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
           ParseError::kSpaceBeforeColon},
      },
      Request());
}

TEST(RequestErrors, AmbiguousFraming) {
  ExpectErrors(
      {
          {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
           "0\r\n\r\n",
           ParseError::kAmbiguousFraming},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
           "0\r\n\r\n",
           ParseError::kAmbiguousFraming},
          {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
           ParseError::kAmbiguousFraming},
          {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
           ParseError::kAmbiguousFraming},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
           ParseError::kAmbiguousFraming},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
           ParseError::kAmbiguousFraming},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunkedx\r\n\r\n0\r\n\r\n",
           ParseError::kAmbiguousFraming},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip"
           "\r\n\r\n0\r\n\r\n",
           ParseError::kAmbiguousFraming},
          {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n",
           ParseError::kAmbiguousFraming},
          {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
           ParseError::kAmbiguousFraming},
      },
      Request());
}

TEST(RequestParser, TransferEncodingWhitespaceVariantsAreChunked) {
  const std::string variants[] = {"chunked ", " chunked",     "\tchunked",
                                  "CHUNKED",  "gzip,chunked", "gzip ,  chunked"};
  for (const std::string& v : variants) {
    SCOPED_TRACE(v);
    std::string in =
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + v + "\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    ParseRun run = ExpectSplitInvariant(in, Request());
    ASSERT_EQ(run.error, ParseError::kNone);
    ASSERT_EQ(run.messages.size(), 1u);
    EXPECT_EQ(run.messages[0].body, "3\r\nabc\r\n0\r\n\r\n");
    Single s(in);
    EXPECT_EQ(s.head().framing, Framing::kChunked);
  }
}

TEST(RequestErrors, BadHost) {
  ExpectErrors(
      {
          {"GET / HTTP/1.1\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: a:\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: :80\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n", ParseError::kBadHost},
          {"GET / HTTP/1.1\r\nHost: a%zz\r\n\r\n", ParseError::kBadHost},
          {"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadHost},
          {"GET http:///x HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadHost},
      },
      Request());
}

TEST(RequestErrors, VersionNotSupported) {
  ExpectErrors(
      {
          {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", ParseError::kVersionNotSupported},
          {"GET / HTTP/1.2\r\nHost: a\r\n\r\n", ParseError::kVersionNotSupported},
          {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", ParseError::kVersionNotSupported},
          {"GET / HTTP/0.9\r\n\r\n", ParseError::kVersionNotSupported},
          {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", ParseError::kVersionNotSupported},
      },
      Request());
}

TEST(RequestHost, EmptyHostIsValid) {
  // RFC 9112 3.2: a client sends an empty Host when the target has no authority.
  Parser parser(Parser::Kind::kRequest, Parser::Limits{});
  const std::string req = "GET / HTTP/1.1\r\nHost:\r\n\r\n";
  parser.Begin(req.data());
  const auto r = parser.Parse(req.data(), req.size());
  ASSERT_EQ(r.status, Parser::Status::kHeadDone);
  EXPECT_EQ(parser.head().Value(parser.head().host_index), "");
}

TEST(RequestErrors, JunkAfterASupportedVersionIsMalformed) {
  ExpectErrors(
      {
          {"GET / HTTP/1.1 extra\r\nHost: a\r\n\r\n", ParseError::kMalformed},
          {"GET / HTTP/1.0x\r\n\r\n", ParseError::kMalformed},
          {"GET / HTTP/1.1\tjunk\r\nHost: a\r\n\r\n", ParseError::kMalformed},
      },
      Request());
}

TEST(RequestErrors, ConnectIsNotAllowed) {
  ExpectErrors({{"CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n",
                 ParseError::kMethodNotAllowed}},
               Request());
}

TEST(RequestErrors, StatusForEachError) {
  EXPECT_EQ(StatusForError(ParseError::kMalformed), 400);
  EXPECT_EQ(StatusForError(ParseError::kObsFold), 400);
  EXPECT_EQ(StatusForError(ParseError::kSpaceBeforeColon), 400);
  EXPECT_EQ(StatusForError(ParseError::kAmbiguousFraming), 400);
  EXPECT_EQ(StatusForError(ParseError::kBadHost), 400);
  EXPECT_EQ(StatusForError(ParseError::kTooManyHeaders), 431);
  EXPECT_EQ(StatusForError(ParseError::kHeaderTooLarge), 431);
  EXPECT_EQ(StatusForError(ParseError::kUriTooLong), 414);
  EXPECT_EQ(StatusForError(ParseError::kBodyTooLarge), 413);
  EXPECT_EQ(StatusForError(ParseError::kVersionNotSupported), 505);
  EXPECT_EQ(StatusForError(ParseError::kMethodNotAllowed), 405);
  EXPECT_EQ(ErrorName(ParseError::kObsFold), "obs_fold");
  EXPECT_EQ(ErrorName(ParseError::kMalformed), "malformed");
}

TEST(RequestErrors, AfterErrorParserStaysFailed) {
  Single s("GET / HTTP/1.1\r\nHost : a\r\n\r\n");
  EXPECT_EQ(s.head_result.status, Parser::Status::kError);
  EXPECT_EQ(s.parser.Parse(s.buf.data(), 0).status, Parser::Status::kError);
  EXPECT_EQ(s.parser.Finish().status, Parser::Status::kError);
  EXPECT_EQ(s.parser.error(), ParseError::kSpaceBeforeColon);
}

// ---------------------------------------------------------------------------------------------
// Line breaks: whatever CR, LF, blank or fold is put wherever in a head, an accepted head has CR
// and LF only as CRLF pairs and no line that starts with a blank. llhttp alone, even built with
// LLHTTP_STRICT_MODE, accepts a bare LF ending the start line or the head ("\r\n\n"), bare CR
// or LF before the request line and a fold of an empty value ("X: \r\n \r\n").

bool LineBreaksAreStrict(std::string_view head) {
  for (size_t i = 0; i < head.size(); ++i) {
    if (head[i] == '\r' && (i + 1 >= head.size() || head[i + 1] != '\n')) return false;
    if (head[i] == '\n') {
      if (i == 0 || head[i - 1] != '\r') return false;
      if (i + 1 < head.size() && (head[i + 1] == ' ' || head[i + 1] == '\t')) return false;
    }
  }
  return true;
}

// Every mutation of `base` that inserts one of `pieces` at, or replaces one byte by it, any
// offset; calls fn(mutated input).
template <typename Fn>
void ForEachLineBreakMutation(const std::string& base, Fn fn) {
  const std::string pieces[] = {"\r", "\n", "\r\n", "\r\n ", "\r\n\t", "\n ", " ", "\t", "\r\r\n"};
  for (size_t i = 0; i <= base.size(); ++i) {
    for (const std::string& piece : pieces) {
      fn(base.substr(0, i) + piece + base.substr(i));
      if (i < base.size()) fn(base.substr(0, i) + piece + base.substr(i + 1));
    }
  }
}

void ExpectStrictLineBreaks(const std::string& base, Parser::Kind kind) {
  int accepted = 0;
  int rejected = 0;
  ForEachLineBreakMutation(base, [&](const std::string& in) {
    Single s(in, kind);
    if (s.head_result.status != Parser::Status::kHeadDone) {
      ++rejected;
      return;
    }
    ++accepted;
    EXPECT_TRUE(LineBreaksAreStrict(std::string_view(in).substr(0, s.head().head_len)))
        << fmt::format("accepted {:?}", in);
  });
  // Both outcomes occur, so the property is not vacuous.
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

TEST(LineBreaks, RequestHeadsWithStrayLineBreaksAreRejected) {
  ExpectStrictLineBreaks(
      "POST /a/b?c=d HTTP/1.1\r\nHost: h.example:80\r\nContent-Length: 2\r\nX-A: one two\r\n"
      "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\nX-Empty:\r\n\r\n",
      Parser::Kind::kRequest);
  ExpectStrictLineBreaks("GET / HTTP/1.0\r\nX: y\r\n\r\n", Parser::Kind::kRequest);
}

TEST(LineBreaks, ResponseHeadsWithStrayLineBreaksAreRejected) {
  ExpectStrictLineBreaks(
      "HTTP/1.1 200 OK fine\r\nContent-Length: 2\r\nX-A: one two\r\nConnection: close\r\n"
      "Transfer-Encoding: chunked\r\nX-Empty:\r\n\r\n",
      Parser::Kind::kResponse);
}

// A strict reading of chunked framing (RFC 9112 7.1): every line ends in CRLF, chunk data is
// followed by CRLF. Chunk extensions and trailer lines may hold any byte but CR and LF. Returns
// the payload, or nullopt when `body` is not exactly one well-framed chunked body.
std::optional<std::string> StrictDechunk(std::string_view body) {
  std::string payload;
  auto line = [&](std::string_view* out) {
    const size_t end = body.find("\r\n");
    if (end == std::string_view::npos) return false;
    *out = body.substr(0, end);
    body.remove_prefix(end + 2);
    return out->find_first_of("\r\n") == std::string_view::npos;
  };
  while (true) {
    std::string_view size_line;
    if (!line(&size_line)) return std::nullopt;
    size_t size = 0;
    size_t i = 0;
    for (; i < size_line.size() && std::isxdigit(static_cast<unsigned char>(size_line[i])); ++i) {
      size = size * 16 + static_cast<size_t>(std::stoi(std::string(1, size_line[i]), nullptr, 16));
    }
    if (i == 0) return std::nullopt;
    if (size == 0) break;
    if (body.size() < size + 2 || body.substr(size, 2) != "\r\n") return std::nullopt;
    payload.append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
  std::string_view trailer;
  do {
    if (!line(&trailer)) return std::nullopt;
  } while (!trailer.empty());
  if (!body.empty()) return std::nullopt;
  return payload;
}

TEST(LineBreaks, ChunkedFramingWithStrayLineBreaksIsRejected) {
  const std::string head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string body = "5;e=1\r\nhello\r\n6\r\n world\r\n0\r\nT: 1\r\n\r\n";
  int accepted = 0;
  int rejected = 0;
  ForEachLineBreakMutation(body, [&](const std::string& mutated) {
    Single s(head + mutated);
    ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
    s.parser.set_decode_body(true);
    char* p = s.buf.data() + head.size();
    const std::string raw(p, mutated.size());
    Parser::Result r = s.parser.Parse(p, mutated.size());
    if (r.status != Parser::Status::kMessageDone) {
      ++rejected;
      return;
    }
    ++accepted;
    const std::optional<std::string> strict =
        StrictDechunk(std::string_view(raw).substr(0, r.consumed));
    ASSERT_TRUE(strict.has_value()) << fmt::format("accepted {:?}", raw.substr(0, r.consumed));
    EXPECT_EQ(*strict, std::string(p, r.decoded));
  });
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}

// ---------------------------------------------------------------------------------------------
// Limits

std::string Headers(int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += "X-H" + std::to_string(i) + ": v\r\n";
  return s;
}

TEST(RequestLimits, HeaderCount) {
  std::string ok = "GET / HTTP/1.1\r\nHost: a\r\n" + Headers(kMaxHeaders - 1) + "\r\n";
  Single s(ok);
  ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
  EXPECT_EQ(s.head().header_count, kMaxHeaders);
  std::string bad = "GET / HTTP/1.1\r\nHost: a\r\n" + Headers(kMaxHeaders) + "\r\n";
  ParseRun run = ExpectSplitInvariant(bad, Request());
  EXPECT_EQ(run.error, ParseError::kTooManyHeaders);
  EXPECT_EQ(StatusForError(run.error), 431);
}

TEST(RequestLimits, HeadSizeBoundary) {
  const std::string prefix = "GET / HTTP/1.1\r\nHost: a\r\nX: ";
  Parser::Limits limits;
  limits.max_header_bytes = 100;
  std::string exact = prefix + std::string(100 - prefix.size() - 4, 'v') + "\r\n\r\n";
  ASSERT_EQ(exact.size(), 100u);
  DriveOptions o = Request();
  o.limits = limits;
  ParseRun run = ExpectSplitInvariant(exact, o);
  EXPECT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 1u);

  std::string over = prefix + std::string(100 - prefix.size() - 3, 'v') + "\r\n\r\n";
  run = ExpectSplitInvariant(over, o);
  EXPECT_EQ(run.error, ParseError::kHeaderTooLarge);
  // A head that never ends is refused once the limit is reached, not when it ends.
  std::string endless = prefix + std::string(200, 'v');
  run = ExpectSplitInvariant(endless, o);
  EXPECT_EQ(run.error, ParseError::kHeaderTooLarge);
  // Blank lines are not an escape either.
  std::string many_fields = "GET / HTTP/1.1\r\nHost: a\r\n" + Headers(20);
  run = ExpectSplitInvariant(many_fields, o);
  EXPECT_EQ(run.error, ParseError::kHeaderTooLarge);
}

TEST(RequestLimits, HeadLimitCountsOnlyTheHead) {
  Parser::Limits limits;
  limits.max_header_bytes = 64;
  DriveOptions o = Request();
  o.limits = limits;
  std::string in =
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b');
  ParseRun run = ExpectSplitInvariant(in, o);
  EXPECT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 1u);
  EXPECT_EQ(run.messages[0].body.size(), 100u);
}

TEST(RequestLimits, TargetLength) {
  Parser::Limits limits;
  limits.max_target_bytes = 32;
  DriveOptions o = Request();
  o.limits = limits;
  std::string ok = "GET /" + std::string(31, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_EQ(ExpectSplitInvariant(ok, o).error, ParseError::kNone);
  std::string bad = "GET /" + std::string(32, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  ParseRun run = ExpectSplitInvariant(bad, o);
  EXPECT_EQ(run.error, ParseError::kUriTooLong);
  EXPECT_EQ(StatusForError(run.error), 414);
}

TEST(RequestLimits, BodySize) {
  Parser::Limits limits;
  limits.max_body_bytes = 10;
  DriveOptions o = Request();
  o.limits = limits;
  std::string at_limit = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789";
  EXPECT_EQ(ExpectSplitInvariant(at_limit, o).error, ParseError::kNone);
  // Refused as soon as the head is known, before any body byte.
  std::string over_cl = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n";
  ParseRun run = ExpectSplitInvariant(over_cl, o);
  EXPECT_EQ(run.error, ParseError::kBodyTooLarge);
  EXPECT_EQ(StatusForError(run.error), 413);
  EXPECT_TRUE(run.messages.empty());

  std::string chunked_ok =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n";
  EXPECT_EQ(ExpectSplitInvariant(chunked_ok, o).error, ParseError::kNone);
  std::string chunked_over =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\n01234\r\n6\r\n567890\r\n0\r\n\r\n";
  run = ExpectSplitInvariant(chunked_over, o);
  EXPECT_EQ(run.error, ParseError::kBodyTooLarge);
  // The head was delivered and the first chunk forwarded before the total went over.
  ASSERT_EQ(run.messages.size(), 1u);
  EXPECT_FALSE(run.messages[0].done);
  std::string huge_chunk =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffff\r\n";
  EXPECT_EQ(ExpectSplitInvariant(huge_chunk, o).error, ParseError::kBodyTooLarge);
}

// ---------------------------------------------------------------------------------------------
// Responses

TEST(ResponseParser, ContentLengthBody) {
  std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: s\r\n\r\nhello";
  ParseRun run = ExpectSplitInvariant(in, Response());
  ASSERT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 1u);
  EXPECT_EQ(run.messages[0].body, "hello");
  Single s(in, Parser::Kind::kResponse);
  EXPECT_EQ(s.head().status, 200);
  EXPECT_EQ(s.head().Str(s.head().reason), "OK");
  EXPECT_EQ(s.head().framing, Framing::kContentLength);
  EXPECT_TRUE(s.head().keep_alive);
}

TEST(ResponseParser, ChunkedWithTrailers) {
  std::string body = "4;a=b\r\nwiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n";
  std::string in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body +
                   "HTTP/1.1 204 No Content\r\n\r\n";
  ParseRun run = ExpectSplitInvariant(in, Response());
  ASSERT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 2u);
  EXPECT_EQ(run.messages[0].body, body);
  EXPECT_EQ(run.messages[1].body, "");

  DriveOptions o = Response();
  o.decode = true;
  run = ExpectSplitInvariant(in, o);
  ASSERT_EQ(run.messages.size(), 2u);
  EXPECT_EQ(run.messages[0].body, "wikipedia");
}

TEST(ResponseParser, HeadResponseHasNoBody) {
  std::string in =
      "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  DriveOptions o = Response();
  o.head_request = true;
  ParseRun run = ExpectSplitInvariant(in, o);
  ASSERT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 2u);
  EXPECT_EQ(run.consumed, in.size());

  Parser p(Parser::Kind::kResponse, {});
  std::string buf = in;
  p.Begin(buf.data());
  p.set_head_request(true);
  Parser::Result r = p.Parse(buf.data(), buf.size());
  ASSERT_EQ(r.status, Parser::Status::kHeadDone);
  EXPECT_EQ(r.consumed, buf.find("HTTP/1.1", 1));
  EXPECT_EQ(p.head().framing, Framing::kNone);
  EXPECT_EQ(p.head().content_length, 10u);
  EXPECT_TRUE(p.head().keep_alive);
  EXPECT_TRUE(p.head().is_head_request);
  r = p.Parse(buf.data() + r.consumed, buf.size() - r.consumed);
  EXPECT_EQ(r.status, Parser::Status::kMessageDone);
  EXPECT_EQ(r.consumed, 0u);
}

TEST(ResponseParser, NoBodyStatuses) {
  for (const char* status :
       {"100 Continue", "103 Early Hints", "204 No Content", "304 Not Modified", "199 Whatever"}) {
    SCOPED_TRACE(status);
    std::string in = std::string("HTTP/1.1 ") + status +
                     "\r\nContent-Length: 7\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    ParseRun run = ExpectSplitInvariant(in, Response());
    ASSERT_EQ(run.error, ParseError::kNone);
    ASSERT_EQ(run.messages.size(), 2u);
    EXPECT_EQ(run.messages[0].body, "");
    EXPECT_EQ(run.messages[1].body, "ok");
    Single s(in, Parser::Kind::kResponse);
    EXPECT_EQ(s.head().framing, Framing::kNone);
  }
}

TEST(ResponseParser, SwitchingProtocolsStopsAtHeadEnd) {
  std::string in =
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
      "\x81\x05hello";
  Single s(in, Parser::Kind::kResponse);
  ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
  EXPECT_TRUE(s.head().upgrade);
  EXPECT_EQ(s.head().framing, Framing::kNone);
  size_t head = s.head_result.consumed;
  EXPECT_EQ(head, in.find('\x81'));
  Parser::Result r = s.parser.Parse(s.buf.data() + head, s.buf.size() - head);
  EXPECT_EQ(r.status, Parser::Status::kMessageDone);
  EXPECT_EQ(r.consumed, 0u);  // the tunnel bytes are not HTTP
}

TEST(ResponseParser, UntilCloseCompletedByFinish) {
  std::string in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstreamed until close";
  DriveOptions o = Response();
  o.finish = true;
  ParseRun run = ExpectSplitInvariant(in, o);
  ASSERT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 1u);
  EXPECT_TRUE(run.messages[0].done);
  EXPECT_EQ(run.messages[0].body, "streamed until close");
  Single s(in, Parser::Kind::kResponse);
  EXPECT_EQ(s.head().framing, Framing::kUntilClose);
  EXPECT_FALSE(s.head().keep_alive);
  size_t head = s.head_result.consumed;
  EXPECT_EQ(s.parser.Parse(s.buf.data() + head, s.buf.size() - head).status,
            Parser::Status::kNeedMore);
  EXPECT_EQ(s.parser.Finish().status, Parser::Status::kMessageDone);
}

TEST(ResponseParser, KeepAliveRules) {
  struct Case {
    std::string in;
    bool keep_alive;
  };
  const Case cases[] = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
      {"HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n", true},
      {"HTTP/1.1 200 OK\r\n\r\n", false},
      {"HTTP/1.1 304 Not Modified\r\n\r\n", true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.in);
    Single s(c.in, Parser::Kind::kResponse);
    ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone);
    EXPECT_EQ(s.head().keep_alive, c.keep_alive);
  }
}

TEST(ResponseErrors, Rejected) {
  DriveOptions o = Response();
  o.finish = true;
  ExpectErrors(
      {
          {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
           ParseError::kAmbiguousFraming},
          {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx", ParseError::kAmbiguousFraming},
          {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
           ParseError::kAmbiguousFraming},
          {"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", ParseError::kObsFold},
          {"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nab", ParseError::kSpaceBeforeColon},
          {"HTTP/2.0 200 OK\r\n\r\n", ParseError::kVersionNotSupported},
          {"HTTP/1.1 099 Odd\r\n\r\n", ParseError::kMalformed},
          {"RTSP/1.0 200 OK\r\n\r\n", ParseError::kMalformed},
          {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", ParseError::kMalformed},  // short
          {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", ParseError::kMalformed},
          {"HTTP/1.1 200 OK\r\nContent-", ParseError::kMalformed},
      },
      o);
}

TEST(ResponseParser, RequestOnlyFieldRulesDoNotApply) {
  Single s(
      "HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nExpect: 100-continue\r\n"
      "Content-Length: 0\r\n\r\n",
      Parser::Kind::kResponse);
  ASSERT_EQ(s.head_result.status, Parser::Status::kHeadDone) << ErrorName(s.parser.error());
  EXPECT_EQ(s.head().host_index, -1);
  EXPECT_FALSE(s.head().expect_continue);
}

TEST(ResponseParser, BodyLimitAppliesToRequestsOnly) {
  Parser::Limits limits;
  limits.max_body_bytes = 1;
  DriveOptions o = Response();
  o.limits = limits;
  std::string in = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  EXPECT_EQ(ExpectSplitInvariant(in, o).error, ParseError::kNone);
}

}  // namespace
}  // namespace l7px::http
