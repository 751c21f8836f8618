// RFC 9110 / 9112 duties of an intermediary that the parser and the rewrite carry:
// Transfer-Encoding as a list, 414 for long targets, Max-Forwards, OPTIONS and TRACE.

#include <gtest/gtest.h>
#include <llhttp.h>

#include <string>
#include <vector>

#include "http/parser.h"
#include "http/rewrite.h"
#include "parse_driver.h"

// Named, so that unity builds do not mix its helpers with other test files'.
namespace l7px::http::conformance_test {
namespace {

using testing::DriveOptions;
using testing::ExpectSplitInvariant;
using testing::ParseRun;

// The head and the first Parse of `in`; `status` what that Parse returned.
struct Head {
  std::string buf;
  Parser parser{Parser::Kind::kRequest, {}};
  Parser::Status status;
  explicit Head(std::string in, Parser::Kind kind = Parser::Kind::kRequest)
      : buf(std::move(in)), parser(kind, {}) {
    parser.Begin(buf.data());
    status = parser.Parse(buf.data(), buf.size()).status;
  }
  const MessageHead& h() const { return parser.head(); }
};

std::string ServiceHead(const std::string& in) {
  Head p(in);
  EXPECT_EQ(p.status, Parser::Status::kHeadDone) << ErrorName(p.parser.error());
  char out[4096];
  const size_t n =
      WriteServiceRequestHead(p.h(), {"192.0.2.7", {}, {}, false, false}, out, sizeof(out));
  EXPECT_GT(n, 0u);
  return std::string(out, n);
}

// ---------------------------------------------------------------------------------------------
// Transfer-Encoding (RFC 9110 5.6.1, RFC 9112 6.1, 6.3)

TEST(TransferEncodingList, OwsAndEmptyElementsAreAccepted) {
  for (const char* te :
       {"chunked,", "chunked ,", "chunked , ", ", chunked", ",,chunked,,", "gzip , chunked",
        "gzip,,chunked", "gzip\t,\tchunked", "CHUNKED", "gzip;q=1 , chunked ,", "chunked\t"}) {
    SCOPED_TRACE(te);
    const std::string in = std::string("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ") + te +
                           "\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    const ParseRun run = ExpectSplitInvariant(in, DriveOptions{});
    EXPECT_EQ(run.error, ParseError::kNone) << ErrorName(run.error);
    ASSERT_EQ(run.messages.size(), 1u);
    EXPECT_TRUE(run.messages[0].done);
    EXPECT_EQ(run.consumed, in.size());
  }
  // Several field lines make one list.
  const std::string two =
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip,\r\nTransfer-Encoding: , chunked"
      "\r\n\r\n0\r\n\r\n";
  EXPECT_EQ(ExpectSplitInvariant(two, DriveOptions{}).error, ParseError::kNone);
  // The service gets the codings as one clean list.
  EXPECT_NE(ServiceHead(two).find("\r\nTransfer-Encoding: gzip, chunked\r\n"), std::string::npos)
      << ServiceHead(two);
}

TEST(TransferEncodingList, AnythingButAFinalBareChunkedIsRefused) {
  for (const char* te : {"", " ", ",", " , ,", "gzip", "chunked, gzip", "chunked, chunked",
                         "chunked;x=1", "chunked x", "xchunked", "gzip;, chunked",
                         "gzip;q, chunked", "gzip;q=\"1, chunked", "gzip chunked"}) {
    SCOPED_TRACE(te);
    const std::string in = std::string("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ") + te +
                           "\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    const ParseRun run = ExpectSplitInvariant(in, DriveOptions{});
    EXPECT_EQ(run.error, ParseError::kAmbiguousFraming) << ErrorName(run.error);
    EXPECT_EQ(StatusForError(run.error), 400);
    EXPECT_TRUE(run.messages.empty());
  }
}

// An empty Transfer-Encoding line next to a valid one is refused too: a recipient that reads the
// empty line as "no body" and one that reads the other as chunked would split the stream apart.
TEST(TransferEncodingList, AnEmptyFieldLineIsRefusedWhereverItIs) {
  for (const char* fields : {"Transfer-Encoding:\r\n", "Transfer-Encoding: \r\n",
                             "Transfer-Encoding: chunked\r\nTransfer-Encoding:\r\n",
                             "Transfer-Encoding:\r\nTransfer-Encoding: chunked\r\n",
                             "Transfer-Encoding: ,\r\nTransfer-Encoding: chunked\r\n"}) {
    SCOPED_TRACE(fields);
    const std::string in =
        std::string("POST / HTTP/1.1\r\nHost: a\r\n") + fields + "\r\n5\r\nhello\r\n0\r\n\r\n";
    EXPECT_EQ(ExpectSplitInvariant(in, DriveOptions{}).error, ParseError::kAmbiguousFraming);
  }
  // Responses from services are held to the same rule.
  Head resp("HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n", Parser::Kind::kResponse);
  EXPECT_EQ(resp.status, Parser::Status::kError);
  EXPECT_EQ(resp.parser.error(), ParseError::kAmbiguousFraming);
}

TEST(TransferEncodingList, ResponsesReadTheListTheSameWayAndStayReusable) {
  Head resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked ,\r\n\r\n", Parser::Kind::kResponse);
  ASSERT_EQ(resp.status, Parser::Status::kHeadDone);
  EXPECT_EQ(resp.h().framing, Framing::kChunked);
  EXPECT_TRUE(resp.h().keep_alive);
}

// ---------------------------------------------------------------------------------------------
// 414 (RFC 9110 15.5.15)

// The worker sets max_target_bytes = max_header_bytes, so a long target fills the head first:
// still 414, not 431.
TEST(TargetTooLong, TargetThatOutgrowsTheHeadIs414) {
  Parser::Limits limits;
  limits.max_header_bytes = 128;
  limits.max_target_bytes = 128;
  DriveOptions o;
  o.limits = limits;
  const std::string long_target = "GET /" + std::string(200, 'a') + " HTTP/1.1\r\nHost: a\r\n\r\n";
  ParseRun run = ExpectSplitInvariant(long_target, o);
  EXPECT_EQ(run.error, ParseError::kUriTooLong);
  EXPECT_EQ(StatusForError(run.error), 414);
  // A target that never ends is 414 as soon as the head limit is reached.
  run = ExpectSplitInvariant("GET /" + std::string(300, 'a'), o);
  EXPECT_EQ(run.error, ParseError::kUriTooLong);
  // A short target with long fields stays 431.
  run = ExpectSplitInvariant(
      "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(200, 'v') + "\r\n\r\n", o);
  EXPECT_EQ(run.error, ParseError::kHeaderTooLarge);
  EXPECT_EQ(StatusForError(run.error), 431);
  // A target that fits, with a head that does not, is 431 too.
  run = ExpectSplitInvariant("GET /" + std::string(100, 'a') +
                                 " HTTP/1.1\r\nHost: a\r\nX: " + std::string(40, 'v') + "\r\n\r\n",
                             o);
  EXPECT_EQ(run.error, ParseError::kHeaderTooLarge);
}

// ---------------------------------------------------------------------------------------------
// Max-Forwards, OPTIONS and TRACE (RFC 9110 7.6.2, 9.3.7, 9.3.8)

TEST(MaxForwards, ParsedForOptionsAndTraceOnly) {
  Head options("OPTIONS /a HTTP/1.1\r\nHost: h\r\nmax-forwards: 007\r\n\r\n");
  ASSERT_EQ(options.status, Parser::Status::kHeadDone);
  EXPECT_EQ(options.h().max_forwards_index, 1);
  EXPECT_EQ(options.h().max_forwards, 7u);
  Head huge("TRACE / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 99999999999999999999999\r\n\r\n");
  ASSERT_EQ(huge.status, Parser::Status::kHeadDone);
  EXPECT_EQ(huge.h().max_forwards, UINT64_MAX);
  Head get("GET / HTTP/1.1\r\nHost: h\r\nMax-Forwards: x\r\n\r\n");  // ignored, forwarded as is
  ASSERT_EQ(get.status, Parser::Status::kHeadDone);
  EXPECT_EQ(get.h().max_forwards_index, -1);
  for (const char* bad : {"Max-Forwards: x\r\n", "Max-Forwards:\r\n", "Max-Forwards: -1\r\n",
                          "Max-Forwards: 1 2\r\n", "Max-Forwards: 1\r\nMax-Forwards: 1\r\n"}) {
    SCOPED_TRACE(bad);
    Head h(std::string("OPTIONS / HTTP/1.1\r\nHost: h\r\n") + bad + "\r\n");
    EXPECT_EQ(h.status, Parser::Status::kError);
    EXPECT_EQ(h.parser.error(), ParseError::kMalformed);
  }
}

TEST(MaxForwards, DecrementedWhenForwarded) {
  EXPECT_EQ(ServiceHead("OPTIONS /a HTTP/1.1\r\nHost: h\r\nMax-Forwards: 10\r\nX: y\r\n\r\n"),
            "OPTIONS /a HTTP/1.1\r\n"
            "Host: h\r\n"
            "X: y\r\n"
            "Max-Forwards: 9\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Host: h\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  // Other methods: not l7px's business (RFC 9110 7.6.2 "MAY ignore"); forwarded unchanged.
  EXPECT_NE(ServiceHead("GET / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 10\r\n\r\n")
                .find("\r\nMax-Forwards: 10\r\n"),
            std::string::npos);
}

TEST(LocalAnswer, TraceIsRefusedAndOptionsAtZeroIsAnswered) {
  EXPECT_EQ(LocalAnswerStatus(Head("TRACE / HTTP/1.1\r\nHost: h\r\n\r\n").h()), 405);
  EXPECT_EQ(LocalAnswerStatus(Head("TRACE / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 5\r\n\r\n").h()),
            405);
  EXPECT_EQ(LocalAnswerStatus(Head("OPTIONS * HTTP/1.1\r\nHost: h\r\nMax-Forwards: 0\r\n\r\n").h()),
            200);
  EXPECT_EQ(
      LocalAnswerStatus(Head("OPTIONS /a HTTP/1.1\r\nHost: h\r\nMax-Forwards: 00\r\n\r\n").h()),
      200);
  EXPECT_EQ(LocalAnswerStatus(Head("OPTIONS * HTTP/1.1\r\nHost: h\r\nMax-Forwards: 1\r\n\r\n").h()),
            0);
  EXPECT_EQ(LocalAnswerStatus(Head("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").h()), 0);
  EXPECT_EQ(LocalAnswerStatus(Head("GET / HTTP/1.1\r\nHost: h\r\nMax-Forwards: 0\r\n\r\n").h()), 0);

  char out[512];
  size_t n = WriteErrorResponse(200, false, 0, out, sizeof(out));
  EXPECT_EQ(std::string(out, n),
            "HTTP/1.1 200 OK\r\n"
            "Allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\n"
            "Content-Length: 0\r\n"
            "\r\n");
  n = WriteErrorResponse(405, false, 0, out, sizeof(out));
  EXPECT_EQ(std::string(out, n),
            "HTTP/1.1 405 Method Not Allowed\r\n"
            "Allow: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 23\r\n"
            "\r\n"
            "405 Method Not Allowed\n");
}

TEST(OptionsAsterisk, RoutedAsTheRootAndForwardedAsAsterisk) {
  Head star("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(star.status, Parser::Status::kHeadDone);
  EXPECT_EQ(star.h().Path(), "/");
  EXPECT_EQ(ServiceHead("OPTIONS * HTTP/1.1\r\nHost: h\r\nMax-Forwards: 3\r\n\r\n"),
            "OPTIONS * HTTP/1.1\r\n"
            "Host: h\r\n"
            "Max-Forwards: 2\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Host: h\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  // RFC 9112 3.2.4: absolute-form without path or query reaches the origin as "*".
  EXPECT_EQ(ServiceHead("OPTIONS http://h:8080 HTTP/1.1\r\nHost: x\r\n\r\n").substr(0, 20),
            "OPTIONS * HTTP/1.1\r\n");
  EXPECT_EQ(ServiceHead("OPTIONS http://h:8080/ HTTP/1.1\r\nHost: x\r\n\r\n").substr(0, 20),
            "OPTIONS / HTTP/1.1\r\n");
  EXPECT_EQ(ServiceHead("GET http://h:8080 HTTP/1.1\r\nHost: x\r\n\r\n").substr(0, 16),
            "GET / HTTP/1.1\r\n");
}

}  // namespace
}  // namespace l7px::http::conformance_test
