#include "sdk/cpp/protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace l7px::sdk {
namespace {

using Result = RequestParser::Result;

// Feeds `input` split at `split` (two calls) and collects every complete request.
std::vector<Request> ParseAll(const std::string& input, size_t split, bool* error = nullptr,
                              int* error_status = nullptr) {
  RequestParser parser(64 * 1024, 1024 * 1024);
  std::vector<Request> out;
  std::vector<std::string> pieces = {input.substr(0, split), input.substr(split)};
  for (const std::string& piece : pieces) {
    size_t pos = 0;
    while (pos < piece.size()) {
      size_t consumed = 0;
      const Result r = parser.Feed(piece.data() + pos, piece.size() - pos, &consumed);
      pos += consumed;
      if (r == Result::kError) {
        if (error) *error = true;
        if (error_status) *error_status = parser.error_status();
        return out;
      }
      if (r == Result::kRequest) {
        out.push_back(parser.request());
        parser.Next();
      }
    }
  }
  return out;
}

TEST(RegistrationHeadTest, ExactBytes) {
  EXPECT_EQ(RegistrationHead("api", "s3cret", "billing-1"),
            "GET /.l7px/register HTTP/1.1\r\n"
            "Host: l7px\r\n"
            "Connection: Upgrade\r\n"
            "Upgrade: l7px-slot/1\r\n"
            "L7px-Pool: api\r\n"
            "L7px-Token: s3cret\r\n"
            "L7px-Service: billing-1\r\n"
            "\r\n");
}

TEST(RegistrationHeadTest, OmitsEmptyPoolAndToken) {
  EXPECT_EQ(RegistrationHead("", "", "x"),
            "GET /.l7px/register HTTP/1.1\r\nHost: l7px\r\nConnection: Upgrade\r\n"
            "Upgrade: l7px-slot/1\r\nL7px-Service: x\r\n\r\n");
}

TEST(HandshakeReplyTest, ParsesStatusAndKeepsTrailingBytes) {
  const std::string head = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: l7px-slot/1\r\n\r\n";
  const std::string bytes = head + "GET / HTTP/1.1\r\n";
  const HandshakeReply reply = ParseHandshakeReply(bytes);
  ASSERT_EQ(reply.state, HandshakeReply::State::kComplete);
  EXPECT_EQ(reply.status, 101);
  EXPECT_EQ(reply.head_len, head.size());
}

TEST(HandshakeReplyTest, IncompleteAtEveryPrefix) {
  const std::string bytes = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n";
  for (size_t i = 0; i < bytes.size(); ++i) {
    EXPECT_EQ(ParseHandshakeReply(bytes.substr(0, i)).state, HandshakeReply::State::kIncomplete)
        << i;
  }
  const HandshakeReply reply = ParseHandshakeReply(bytes);
  EXPECT_EQ(reply.state, HandshakeReply::State::kComplete);
  EXPECT_EQ(reply.status, 403);
}

TEST(HandshakeReplyTest, Malformed) {
  EXPECT_EQ(ParseHandshakeReply("SSH-2.0-OpenSSH\r\n\r\n").state,
            HandshakeReply::State::kMalformed);
  EXPECT_EQ(ParseHandshakeReply("HTTP/1.1 1x1 No\r\n\r\n").state,
            HandshakeReply::State::kMalformed);
  EXPECT_EQ(ParseHandshakeReply(std::string(100, 'a'), 50).state,
            HandshakeReply::State::kMalformed);
}

TEST(RequestParserTest, HeadersQueryAndBodyAtEverySplit) {
  const std::string input =
      "POST /a/b?x=1&y=2 HTTP/1.1\r\nHost: h\r\nX-Thing: one\r\nx-thing: two\r\n"
      "Content-Length: 5\r\n\r\nhello";
  for (size_t split = 0; split <= input.size(); ++split) {
    const std::vector<Request> reqs = ParseAll(input, split);
    ASSERT_EQ(reqs.size(), 1u) << split;
    const Request& r = reqs[0];
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/a/b?x=1&y=2");
    EXPECT_EQ(r.path, "/a/b");
    EXPECT_EQ(r.query, "x=1&y=2");
    EXPECT_EQ(r.version_minor, 1);
    ASSERT_EQ(r.headers.size(), 4u) << split;
    EXPECT_EQ(r.headers[1].first, "X-Thing");
    EXPECT_EQ(r.headers[1].second, "one");
    EXPECT_EQ(r.Header("X-THING"), "one");
    EXPECT_EQ(r.Header("missing"), "");
    EXPECT_EQ(r.body, "hello");
  }
}

TEST(RequestParserTest, ChunkedBodyAtEverySplit) {
  const std::string input =
      "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n";
  for (size_t split = 0; split <= input.size(); ++split) {
    const std::vector<Request> reqs = ParseAll(input, split);
    ASSERT_EQ(reqs.size(), 1u) << split;
    EXPECT_EQ(reqs[0].body, "hello world") << split;
  }
}

// Next() reuses the previous request's buffers: nothing of that request may show through.
TEST(RequestParserTest, NextLeavesNothingOfThePreviousRequest) {
  const std::string first =
      "POST /first/path?a=1&b=2 HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n"
      "X-Long-Header-Name-One: v1\r\n"
      "X-Long-Header-Name-Two: v2\r\nContent-Length: 5\r\n\r\nhello";
  const std::string second = "GET /2 HTTP/1.1\r\nHost: k\r\n\r\n";
  RequestParser parser(4096, 4096);
  size_t consumed = 0;
  ASSERT_EQ(parser.Feed(first.data(), first.size(), &consumed), Result::kRequest);
  EXPECT_EQ(parser.request().query, "a=1&b=2");
  EXPECT_EQ(parser.request().version_minor, 0);
  parser.request().slot = 3;
  parser.request().proxy = "127.0.0.1:9999";
  ASSERT_TRUE(parser.keep_alive());
  parser.Next();
  ASSERT_EQ(parser.Feed(second.data(), second.size(), &consumed), Result::kRequest);
  const Request& r = parser.request();
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.target, "/2");
  EXPECT_EQ(r.path, "/2");
  EXPECT_EQ(r.query, "");
  EXPECT_EQ(r.version_minor, 1);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "Host");
  EXPECT_EQ(r.headers[0].second, "k");
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(r.slot, -1);
  EXPECT_EQ(r.proxy, "");
}

TEST(RequestParserTest, PipelinedRequestsStopAfterEach) {
  const std::string first = "GET /one HTTP/1.1\r\nHost: h\r\n\r\n";
  const std::string second = "POST /two HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi";
  const std::string input = first + second;
  RequestParser parser(4096, 4096);
  size_t consumed = 0;
  ASSERT_EQ(parser.Feed(input.data(), input.size(), &consumed), Result::kRequest);
  EXPECT_EQ(consumed, first.size());
  EXPECT_EQ(parser.request().path, "/one");
  EXPECT_TRUE(parser.keep_alive());
  parser.Next();
  EXPECT_FALSE(parser.mid_request());
  size_t consumed2 = 0;
  ASSERT_EQ(parser.Feed(input.data() + consumed, input.size() - consumed, &consumed2),
            Result::kRequest);
  EXPECT_EQ(consumed2, second.size());
  EXPECT_EQ(parser.request().path, "/two");
  EXPECT_EQ(parser.request().body, "hi");
  // Every pipelined split also yields both requests.
  for (size_t split = 0; split <= input.size(); ++split) {
    EXPECT_EQ(ParseAll(input, split).size(), 2u) << split;
  }
}

TEST(RequestParserTest, KeepAliveRules) {
  struct Case {
    std::string input;
    bool keep_alive;
  } cases[] = {
      {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", true},
      {"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false},
      {"GET / HTTP/1.0\r\n\r\n", false},
      {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
  };
  for (const Case& c : cases) {
    RequestParser parser(4096, 4096);
    size_t consumed = 0;
    ASSERT_EQ(parser.Feed(c.input.data(), c.input.size(), &consumed), Result::kRequest);
    EXPECT_EQ(parser.keep_alive(), c.keep_alive) << c.input;
  }
}

TEST(RequestParserTest, MidRequestTracksPartialInput) {
  RequestParser parser(4096, 4096);
  EXPECT_FALSE(parser.mid_request());
  const std::string part = "GET / HT";
  size_t consumed = 0;
  EXPECT_EQ(parser.Feed(part.data(), part.size(), &consumed), Result::kNeedMore);
  EXPECT_EQ(consumed, part.size());
  EXPECT_TRUE(parser.mid_request());
}

TEST(RequestParserTest, Errors) {
  bool error = false;
  int status = 0;
  ParseAll("NOT HTTP AT ALL\r\n\r\n", 0, &error, &status);
  EXPECT_TRUE(error);
  EXPECT_EQ(status, 400);

  error = false;
  RequestParser small(64, 8);
  const std::string big_header = "GET / HTTP/1.1\r\nX: " + std::string(200, 'a') + "\r\n\r\n";
  size_t consumed = 0;
  EXPECT_EQ(small.Feed(big_header.data(), big_header.size(), &consumed), Result::kError);
  EXPECT_EQ(small.error_status(), 431);

  RequestParser small_body(4096, 8);
  const std::string big_body = "POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n123456789";
  EXPECT_EQ(small_body.Feed(big_body.data(), big_body.size(), &consumed), Result::kError);
  EXPECT_EQ(small_body.error_status(), 413);

  RequestParser small_chunked(4096, 8);
  const std::string chunked =
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n5\r\n12345\r\n0\r\n\r\n";
  EXPECT_EQ(small_chunked.Feed(chunked.data(), chunked.size(), &consumed), Result::kError);
  EXPECT_EQ(small_chunked.error_status(), 413);
}

TEST(ResponseHeadTest, ContentLengthAndFiltering) {
  Response r;
  r.status = 404;
  r.AddHeader("Content-Type", "text/plain");
  r.AddHeader("content-length", "999");
  r.AddHeader("Connection", "keep-alive");
  r.AddHeader("Transfer-Encoding", "chunked");
  EXPECT_EQ(ResponseHead("GET", r, 3, false),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\n");
  EXPECT_EQ(ResponseHead("GET", r, 0, true),
            "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
            "Connection: close\r\n\r\n");
}

TEST(ResponseHeadTest, NoContentLengthWithoutBody) {
  Response r;
  r.status = 204;
  EXPECT_EQ(ResponseHead("GET", r, 0, false), "HTTP/1.1 204 No Content\r\n\r\n");
  r.status = 304;
  EXPECT_EQ(ResponseHead("GET", r, 10, false), "HTTP/1.1 304 Not Modified\r\n\r\n");
  r.status = 200;
  r.reason = "Fine";
  EXPECT_EQ(ResponseHead("HEAD", r, 0, false), "HTTP/1.1 200 Fine\r\n\r\n");
  EXPECT_EQ(ResponseHead("HEAD", r, 7, false), "HTTP/1.1 200 Fine\r\nContent-Length: 7\r\n\r\n");
  EXPECT_TRUE(ResponseHasNoBody("HEAD", 200));
  EXPECT_TRUE(ResponseHasNoBody("GET", 204));
  EXPECT_FALSE(ResponseHasNoBody("GET", 200));
}

// A status without a registered phrase is still sent with a word (http::ReasonPhrase holds the
// table; the SDK's word for the rest is "Unknown").
TEST(ResponseHeadTest, UnknownStatusSaysUnknown) {
  Response r;
  r.status = 299;
  EXPECT_EQ(ResponseHead("GET", r, 0, false), "HTTP/1.1 299 Unknown\r\nContent-Length: 0\r\n\r\n");
  r.status = 431;
  EXPECT_EQ(ResponseHead("GET", r, 0, false),
            "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n");
}

}  // namespace
}  // namespace l7px::sdk
