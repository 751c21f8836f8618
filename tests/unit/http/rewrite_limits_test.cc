// The head rewrite never fails for a message the parser accepted: the largest valid heads (most
// fields, most bytes, the authority that gets copied twice) fit the documented capacities, and
// what l7px writes parses again with room for the fields it added.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http/parser.h"
#include "http/rewrite.h"

namespace l7px::http {
namespace {

const ServiceRequestContext kWidestCtx{"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "http",
                                       "0123456789abcdef0123456789abcdef"};

// Fields "X-Fnnn:v" (no space after the colon: each one grows by a byte in the rewrite).
std::string Fields(int count) {
  std::string out;
  for (int i = 0; i < count; ++i) out += "X-F" + std::to_string(1000 + i) + ":v\r\n";
  return out;
}

// A head of exactly `size` bytes: `start` + padding inside a field named `pad_name` + `rest`.
std::string PaddedHead(const std::string& start, const std::string& pad_name,
                       const std::string& rest, size_t size) {
  const size_t fixed = start.size() + pad_name.size() + 3 + rest.size() + 2;  // ":" CRLF, CRLF
  EXPECT_LT(fixed, size);
  return start + pad_name + ":" + std::string(size - fixed, 'h') + "\r\n" + rest + "\r\n";
}

struct Rewritten {
  Parser::Status parsed = Parser::Status::kError;
  int fields_in = 0;
  size_t written = 0;
  std::string out;
};

// Parses `head` as l7px parses a client's request, then rewrites it into a buffer of exactly
// ServiceRequestHeadCapacity(max_header_bytes).
Rewritten RewriteRequest(std::string head, uint32_t max_header_bytes) {
  Rewritten r;
  Parser parser(Parser::Kind::kRequest,
                {.max_header_bytes = max_header_bytes, .max_target_bytes = max_header_bytes});
  parser.Begin(head.data());
  r.parsed = parser.Parse(head.data(), head.size()).status;
  if (r.parsed != Parser::Status::kHeadDone) return r;
  r.fields_in = parser.head().header_count;
  std::vector<char> buf(ServiceRequestHeadCapacity(max_header_bytes));
  r.written = WriteServiceRequestHead(parser.head(), kWidestCtx, buf.data(), buf.size());
  r.out.assign(buf.data(), r.written);
  return r;
}

// Parses what l7px wrote with room for the fields it adds; returns the field count or -1.
int ReparsedFields(std::string head, Parser::Kind kind, int max_fields = kMaxHeadFields) {
  Parser parser(kind, {.max_header_bytes = static_cast<uint32_t>(head.size()),
                       .max_target_bytes = static_cast<uint32_t>(head.size()),
                       .max_fields = max_fields});
  parser.Begin(head.data());
  const Parser::Result r = parser.Parse(head.data(), head.size());
  if (r.status != Parser::Status::kHeadDone || r.consumed != head.size()) return -1;
  return parser.head().header_count;
}

class RewriteLimitsTest : public ::testing::TestWithParam<uint32_t> {};

// The regression: 100 received fields became 105 written ones, which l7px's own parser (and a
// second l7px behind this one) refused as too many.
TEST_P(RewriteLimitsTest, MostFieldsStillParseAfterTheRewrite) {
  const uint32_t limit = GetParam();
  const int most = limit >= 4096 ? kMaxHeaders - 1 : 60;  // 1 KiB holds fewer fields
  for (int extra = most - 7; extra <= most; ++extra) {
    SCOPED_TRACE(extra);
    const std::string head = "GET /f HTTP/1.1\r\nHost: a.example\r\n" + Fields(extra) + "\r\n";
    const Rewritten r = RewriteRequest(head, limit);
    ASSERT_EQ(r.parsed, Parser::Status::kHeadDone);
    ASSERT_GT(r.written, 0u);
    // XFF, XFP, XFH, X-Request-Id and Via were added.
    EXPECT_EQ(ReparsedFields(r.out, Parser::Kind::kRequest), r.fields_in + 5) << r.out;
  }
  // One more client field is refused by the parser, before any rewrite.
  if (limit >= 4096) {
    const std::string over = "GET /f HTTP/1.1\r\nHost: a\r\n" + Fields(kMaxHeaders) + "\r\n";
    EXPECT_EQ(RewriteRequest(over, limit).parsed, Parser::Status::kError);
  }
}

TEST_P(RewriteLimitsTest, HugeHostIsCopiedTwiceAndStillFits) {
  const uint32_t limit = GetParam();
  // The whole head is the Host field, so X-Forwarded-Host doubles it.
  const std::string head = PaddedHead("GET / HTTP/1.1\r\n", "Host", "", limit);
  const Rewritten r = RewriteRequest(head, limit);
  ASSERT_EQ(r.parsed, Parser::Status::kHeadDone);
  ASSERT_GT(r.written, 0u) << "a valid request failed in the rewrite";
  EXPECT_GT(r.written, 2 * (static_cast<size_t>(limit) - 100));
  EXPECT_EQ(ReparsedFields(r.out, Parser::Kind::kRequest), 6);
}

TEST_P(RewriteLimitsTest, HugeHostAndMostFields) {
  const uint32_t limit = GetParam();
  const int fields = limit >= 4096 ? kMaxHeaders - 1 : 40;  // 1 KiB holds fewer fields
  const std::string head =
      PaddedHead("GET / HTTP/1.1\r\nVia:1.0 a\r\nX-Forwarded-For:192.0.2.1\r\n", "Host",
                 Fields(fields - 2), limit);
  const Rewritten r = RewriteRequest(head, limit);
  ASSERT_EQ(r.parsed, Parser::Status::kHeadDone);
  ASSERT_EQ(r.fields_in, fields + 1);
  ASSERT_GT(r.written, 0u) << "a valid request failed in the rewrite";
  // Via and X-Forwarded-For were merged, XFP, XFH and X-Request-Id added.
  EXPECT_EQ(ReparsedFields(r.out, Parser::Kind::kRequest), r.fields_in + 3);
}

TEST_P(RewriteLimitsTest, AbsoluteFormHttp10WithoutHostAddsTheMost) {
  const uint32_t limit = GetParam();
  const int fields = limit >= 4096 ? kMaxHeaders : 40;
  // The authority fills the target: it becomes both Host and X-Forwarded-Host.
  const std::string fields_text = Fields(fields);
  const size_t authority =
      limit - std::string("GET http:// HTTP/1.0\r\n/").size() - fields_text.size() - 2;
  const std::string head =
      "GET http://" + std::string(authority, 'a') + "/ HTTP/1.0\r\n" + fields_text + "\r\n";
  ASSERT_EQ(head.size(), limit);
  const Rewritten r = RewriteRequest(head, limit);
  ASSERT_EQ(r.parsed, Parser::Status::kHeadDone);
  ASSERT_GT(r.written, 0u) << "a valid request failed in the rewrite";
  EXPECT_EQ(ReparsedFields(r.out, Parser::Kind::kRequest), fields + kMaxAddedFields);
  // Without the added room, l7px could not read its own output.
  if (fields == kMaxHeaders) {
    EXPECT_EQ(ReparsedFields(r.out, Parser::Kind::kRequest, kMaxHeaders), -1);
  }
}

TEST_P(RewriteLimitsTest, ResponseWithMostFieldsAndBytes) {
  const uint32_t limit = GetParam();
  const int fields = limit >= 4096 ? kMaxHeaders - 1 : 40;
  // No reason phrase (the standard one is written instead), "Name:value" fields.
  std::string head =
      PaddedHead("HTTP/1.1 431 \r\nContent-Length:0\r\n", "X-Pad", Fields(fields - 2), limit);
  Parser parser(Parser::Kind::kResponse, {.max_header_bytes = limit});
  parser.Begin(head.data());
  ASSERT_EQ(parser.Parse(head.data(), head.size()).status, Parser::Status::kHeadDone);
  std::vector<char> buf(ClientResponseHeadCapacity(limit));
  const size_t n = WriteClientResponseHead(parser.head(), {.close = true}, buf.data(), buf.size());
  ASSERT_GT(n, 0u) << "a valid response failed in the rewrite";
  const std::string out(buf.data(), n);
  EXPECT_NE(out.find("431 Request Header Fields Too Large\r\n"), std::string::npos);
  // Connection: close and Via were added.
  EXPECT_EQ(ReparsedFields(out, Parser::Kind::kResponse), fields + 2);
}

INSTANTIATE_TEST_SUITE_P(HeaderLimits, RewriteLimitsTest, ::testing::Values(1024u, 16384u, 65536u));

}  // namespace
}  // namespace l7px::http
