// ChunkedDecoder on its own (every mode, every split), and through Parser::ParseInPlace the way
// the worker re-frames request bodies for services.

#include "http/chunked.h"

#include <gtest/gtest.h>
#include <llhttp.h>

#include <optional>
#include <string>
#include <vector>

#include "fmt/format.h"
#include "http/parser.h"
#include "parse_driver.h"

// Named, so that unity builds do not mix its helpers with other test files'.
namespace l7px::http::chunked_test {
namespace {

using Mode = ChunkedDecoder::Mode;
using Status = ChunkedDecoder::Status;
using testing::AllSplits;
using testing::DriveOptions;
using testing::ExpectSplitInvariantInPlace;
using testing::ParseRun;

struct Decoded {
  Status status = Status::kNeedMore;
  ParseError error = ParseError::kNone;
  std::string out;      // what the mode writes (payload, or canonical framing)
  size_t consumed = 0;  // body bytes consumed when kDone
  bool operator==(const Decoded&) const = default;
};

std::string Show(const Decoded& d) {
  return fmt::format("status={} error={} consumed={} out={:?}", static_cast<int>(d.status),
                     ErrorName(d.error), d.consumed, d.out);
}

// Feeds `body` in pieces ending at `cuts`, then the rest, as a caller of Decode must: the bytes
// not consumed are passed again at the start of the next call.
Decoded DecodeSplit(const std::string& body, const std::vector<size_t>& cuts, Mode mode,
                    uint64_t max_body = UINT64_MAX, uint32_t max_trailer = 1024) {
  std::string buf = body;
  ChunkedDecoder d;
  d.Reset(max_body, max_trailer);
  Decoded out;
  size_t pos = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(body.size());
  for (size_t end : ends) {
    if (end < pos) continue;  // still re-presenting a split element
    const ChunkedDecoder::Result r = d.Decode(buf.data() + pos, end - pos, mode);
    out.status = r.status;
    if (r.status == Status::kError) {
      out.error = d.error();
      out.out.clear();
      return out;
    }
    EXPECT_LE(r.out, r.consumed) << "output overtook the input";
    if (mode != Mode::kReframe) {
      EXPECT_TRUE(r.status == Status::kDone || r.consumed == end - pos)
          << "kRaw/kDecode keep bytes";
    }
    out.out.append(buf.data() + pos, r.out);
    pos += r.consumed;
    if (r.status == Status::kDone) {
      out.consumed = pos;
      return out;
    }
  }
  return out;
}

// Decodes `body` whole and split every way in `mode`; all runs must agree.
Decoded ExpectSplitInvariantDecode(const std::string& body, Mode mode,
                                   uint64_t max_body = UINT64_MAX, uint32_t max_trailer = 1024) {
  const Decoded whole = DecodeSplit(body, {}, mode, max_body, max_trailer);
  for (const auto& cuts : AllSplits(body.size())) {
    const Decoded split = DecodeSplit(body, cuts, mode, max_body, max_trailer);
    if (!(split == whole)) {
      ADD_FAILURE() << "split differs at first cut " << cuts.front() << "\nwhole: " << Show(whole)
                    << "\nsplit: " << Show(split);
      break;
    }
  }
  return whole;
}

TEST(ChunkedDecoder, ReframesCanonicallyDecodesAndValidates) {
  const std::string body =
      "005;a=b\r\nhello\r\n"
      "0A ; x = \"y, \\\"z\\\"\" ;flag\t;q=1\r\n0123456789\r\n"
      "1\r\n!\r\n"
      "000;last\r\nX-Trailer: t\r\nX-Other:\tv v \r\n\r\n"
      "NEXT";  // the next message
  const Decoded reframed = ExpectSplitInvariantDecode(body, Mode::kReframe);
  EXPECT_EQ(reframed.status, Status::kDone);
  EXPECT_EQ(reframed.out, "5\r\nhello\r\na\r\n0123456789\r\n1\r\n!\r\n0\r\n\r\n");
  EXPECT_EQ(reframed.consumed, body.size() - 4);
  const Decoded decoded = ExpectSplitInvariantDecode(body, Mode::kDecode);
  EXPECT_EQ(decoded.status, Status::kDone);
  EXPECT_EQ(decoded.out, "hello0123456789!");
  EXPECT_EQ(decoded.consumed, body.size() - 4);
  const Decoded raw = ExpectSplitInvariantDecode(body, Mode::kRaw);
  EXPECT_EQ(raw.status, Status::kDone);
  EXPECT_EQ(raw.out, "");
  EXPECT_EQ(raw.consumed, body.size() - 4);
}

// RFC 9112 7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ).
TEST(ChunkedDecoder, AcceptsBadWhitespaceAroundSemicolonAndEquals) {
  for (const char* line : {"5;a=b", "5 ;a=b", "5; a=b", "5;a =b", "5;a= b", "5 ; a = b",
                           "5\t;\ta\t=\t\"b c\"", "5 ; a ; b = c", "5;a=\"\" ;b", "5;a=\"\\\"\"",
                           "5;a=1;b=2"}) {  // llhttp 8.1 refuses this one, BWS or not
    SCOPED_TRACE(line);
    const std::string body = std::string(line) + "\r\nhello\r\n0 ; end = 1\r\n\r\n";
    const Decoded d = ExpectSplitInvariantDecode(body, Mode::kReframe);
    EXPECT_EQ(d.status, Status::kDone) << Show(d);
    EXPECT_EQ(d.out, "5\r\nhello\r\n0\r\n\r\n");
  }
}

TEST(ChunkedDecoder, RejectsWhatTheGrammarDoesNot) {
  const std::string rest = "\r\nhello\r\n0\r\n\r\n";
  const std::vector<std::string> bad = {
      "5 " + rest,                  // BWS without an extension
      "5;" + rest,                  // no extension name
      "5; " + rest,                 //
      "5;a=" + rest,                // no value
      "5;a b" + rest,               // two names
      "5;a=b c" + rest,             // two values
      "5;a=\"b" + rest,             // unterminated quoted string (a CR inside it)
      "5;a=\"\x01\"" + rest,        // control byte in a quoted string
      "5;a=b\x7f" + rest,           //
      "5;a=b;" + rest,              // empty name after ';'
      "5;a==b" + rest,              //
      "5,a" + rest,                 //
      "x5" + rest,                  // not a size
      rest,                         // no size at all
      "+5" + rest,                  //
      "5\rX\nhello\r\n0\r\n\r\n",   // bare CR in the size line
      "5\nhello\r\n0\r\n\r\n",      // bare LF
      "5;a=b\rhello\r\n0\r\n\r\n",  // CR not followed by LF after an extension
      "5\r\nhelloX\r\n0\r\n\r\n",   // data longer than its size
      "5\r\nhello\rX0\r\n\r\n",     // bare CR after data
      "5\r\nhello\n0\r\n\r\n",      // bare LF after data
      "5\r\nhello\r\n0\r\n\rX",     // bare CR at the end
      "5\r\nhello\r\n0\r\n\n",      // bare LF at the end
      "0\r\n x: folded\r\n\r\n",    // obs-fold in the trailers
      "0\r\n: v\r\n\r\n",           // empty trailer name
      "0\r\nT : v\r\n\r\n",         // blank before the colon
      "0\r\nT: a\x01\r\n\r\n",      // control byte in a trailer value
      "0\r\nT: 1\rX\r\n\r\n",       // bare CR in a trailer
      "0\r\nT: 1\n\r\n",            // bare LF in a trailer
      "0\r\nT\r\n\r\n",             // trailer without a colon
      "10000000000000000\r\n",      // 17 significant hex digits: over 64 bits
  };
  for (const std::string& body : bad) {
    SCOPED_TRACE(fmt::format("{:?}", body));
    for (Mode mode : {Mode::kRaw, Mode::kDecode, Mode::kReframe}) {
      const Decoded d = ExpectSplitInvariantDecode(body, mode);
      EXPECT_EQ(d.status, Status::kError) << Show(d);
      EXPECT_EQ(d.error, ParseError::kMalformed);
    }
  }
}

TEST(ChunkedDecoder, Limits) {
  // Leading zeros do not count toward the 16 digits; the size line does toward its limit.
  const std::string zeros = std::string(40, '0') + "1\r\nx\r\n0\r\n\r\n";
  EXPECT_EQ(ExpectSplitInvariantDecode(zeros, Mode::kReframe).out, "1\r\nx\r\n0\r\n\r\n");
  const std::string long_ext = "1;" + std::string(ChunkedDecoder::kMaxSizeLine, 'e') + "\r\nx";
  EXPECT_EQ(DecodeSplit(long_ext, {}, Mode::kRaw).error, ParseError::kMalformed);
  const std::string ok_ext = "1;" + std::string(ChunkedDecoder::kMaxSizeLine - 5, 'e') + "\r\nx";
  EXPECT_EQ(DecodeSplit(ok_ext, {}, Mode::kRaw).status, Status::kNeedMore);

  // A chunk that would take the body past the limit is refused at its size, before its data.
  const Decoded at_limit = ExpectSplitInvariantDecode("5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
                                                      Mode::kDecode, /*max_body=*/10);
  EXPECT_EQ(at_limit.out, "0123456789");
  const Decoded over = DecodeSplit("5\r\n01234\r\n6\r\n", {}, Mode::kDecode, /*max_body=*/10);
  EXPECT_EQ(over.error, ParseError::kBodyTooLarge);
  EXPECT_EQ(DecodeSplit("ffffffffffffffff\r\n", {}, Mode::kRaw, 10).error,
            ParseError::kBodyTooLarge);

  // The trailer section (with its final CRLF) is bounded.
  const std::string trailer = "X: " + std::string(20, 'v') + "\r\n";  // 25 bytes
  EXPECT_EQ(DecodeSplit("0\r\n" + trailer + "\r\n", {}, Mode::kRaw, UINT64_MAX, 27).status,
            Status::kDone);
  EXPECT_EQ(DecodeSplit("0\r\n" + trailer + "\r\n", {}, Mode::kRaw, UINT64_MAX, 26).error,
            ParseError::kHeaderTooLarge);
}

// kReframe keeps a split framing element in the caller's input until it is complete, and
// checks its bytes only once.
TEST(ChunkedDecoder, ReframeHoldsASplitElementBack) {
  std::string buf = "a;ext=1\r";
  ChunkedDecoder d;
  d.Reset(UINT64_MAX, 1024);
  ChunkedDecoder::Result r = d.Decode(buf.data(), buf.size(), Mode::kReframe);
  EXPECT_EQ(r.status, Status::kNeedMore);
  EXPECT_EQ(r.consumed, 0u);
  EXPECT_EQ(r.out, 0u);
  buf += "\n0123456789\r";
  r = d.Decode(buf.data(), buf.size(), Mode::kReframe);
  EXPECT_EQ(r.status, Status::kNeedMore);
  EXPECT_EQ(r.consumed, buf.size() - 1);  // the CR after the data waits for its LF
  EXPECT_EQ(std::string(buf.data(), r.out), "a\r\n0123456789");
  buf = "\r\n0\r\n\r\n";
  r = d.Decode(buf.data(), buf.size(), Mode::kReframe);
  EXPECT_EQ(r.status, Status::kDone);
  EXPECT_EQ(r.consumed, buf.size());
  EXPECT_EQ(std::string(buf.data(), r.out), "\r\n0\r\n\r\n");
}

// ---------------------------------------------------------------------------------------------
// Through the request parser, as the worker uses it.

const std::string kChunkedHead =
    "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip , chunked\r\n\r\n";

// The payload llhttp itself (strict, as services' parsers are at best) reads from a chunked
// request body; nullopt when it refuses the message.
std::optional<std::string> LlhttpPayload(const std::string& body) {
  struct Seen {
    std::string payload;
    bool complete = false;
  } seen;
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_body = [](llhttp_t* p, const char* at, size_t len) {
    static_cast<Seen*>(p->data)->payload.append(at, len);
    return 0;
  };
  settings.on_message_complete = [](llhttp_t* p) {
    static_cast<Seen*>(p->data)->complete = true;
    return 0;
  };
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  parser.data = &seen;
  const std::string in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body;
  if (llhttp_execute(&parser, in.data(), in.size()) != HPE_OK || !seen.complete) {
    return std::nullopt;
  }
  return seen.payload;
}

// What a service receives for a body, parsed again by a plain request parser in decode mode:
// the same payload.
std::string PayloadOf(const std::string& reframed_body) {
  std::string in = kChunkedHead + reframed_body;
  Parser p(Parser::Kind::kRequest, {});
  p.Begin(in.data());
  Parser::Result r = p.Parse(in.data(), in.size());
  EXPECT_EQ(r.status, Parser::Status::kHeadDone);
  p.set_decode_body(true);
  char* body = in.data() + r.consumed;
  r = p.Parse(body, in.size() - r.consumed);
  EXPECT_EQ(r.status, Parser::Status::kMessageDone);
  return std::string(body, r.decoded);
}

TEST(ReframedRequestBody, ServicesGetCanonicalFramingWhateverTheSplit) {
  const std::string body =
      "0005;name=value\r\nhello\r\n"
      "00B \t; x = \"quoted ; value\"\r\n, the world\r\n"
      "0;done\r\nX-Checksum: abc\r\n\r\n";
  const std::string next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
  const ParseRun run = ExpectSplitInvariantInPlace(kChunkedHead + body + next, DriveOptions{});
  ASSERT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 2u);
  EXPECT_TRUE(run.messages[0].done);
  EXPECT_EQ(run.messages[0].body, "5\r\nhello\r\nb\r\n, the world\r\n0\r\n\r\n");
  EXPECT_EQ(PayloadOf(run.messages[0].body), "hello, the world");
  EXPECT_EQ(LlhttpPayload(run.messages[0].body), "hello, the world");
  EXPECT_EQ(LlhttpPayload(body), std::nullopt) << "llhttp refuses the BWS the client sent";
  EXPECT_TRUE(run.messages[1].done);  // the pipelined request after it is intact
  EXPECT_NE(run.messages[1].head.find("'/next'"), std::string::npos) << run.messages[1].head;
  EXPECT_EQ(run.consumed, kChunkedHead.size() + body.size() + next.size());
}

TEST(ReframedRequestBody, ErrorsAreTheSameAsWithoutReframing) {
  for (const std::string& body :
       {std::string("5 \r\nhello\r\n0\r\n\r\n"), std::string("5\r\nhello\rX0\r\n\r\n"),
        std::string("5;a=\"b\r\nhello\r\n0\r\n\r\n")}) {
    SCOPED_TRACE(fmt::format("{:?}", body));
    EXPECT_EQ(ExpectSplitInvariantInPlace(kChunkedHead + body, DriveOptions{}).error,
              ParseError::kMalformed);
  }
}

// Content-Length bodies and bodiless requests pass ParseInPlace unchanged.
TEST(ReframedRequestBody, OtherFramingsAreForwardedAsReceived) {
  const std::string in =
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 13\r\n\r\n5\r\nhello\r\n0\r\n"
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const ParseRun run = ExpectSplitInvariantInPlace(in, DriveOptions{});
  ASSERT_EQ(run.error, ParseError::kNone);
  ASSERT_EQ(run.messages.size(), 2u);
  EXPECT_EQ(run.messages[0].body, "5\r\nhello\r\n0\r\n");
  EXPECT_EQ(run.messages[1].body, "");
  EXPECT_EQ(run.consumed, in.size());
}

}  // namespace
}  // namespace l7px::http::chunked_test
