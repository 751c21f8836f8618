// Service responses through http::Parser (kResponse), fed in two pieces, optionally as the answer
// to a HEAD request and in decode mode (chunked payload moved in place for HTTP/1.0 clients);
// every head that parses goes through the client-response rewrite, whose output must parse as a
// response head with the same status.
//
// Input: byte 0 = flags (bit 0 HEAD request, bit 1 decode body, bit 2 close, bit 3 HTTP/1.0
// client, bit 4 small limits), byte 1 = split position; the rest is what a service sends on one
// slot connection (several responses in a row too).

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "fuzz_check.h"
#include "http/message.h"
#include "http/parser.h"
#include "http/rewrite.h"

namespace {

using l7px::http::Framing;
using l7px::http::MessageHead;
using l7px::http::Parser;

constexpr size_t kOutCap = 64 * 1024;

void CheckRewrite(const MessageHead& head, uint8_t flags, bool decode) {
  static char* out = new char[kOutCap];
  const l7px::http::ClientResponseContext ctx{
      .close = (flags & 4) != 0,
      .http10_client = (flags & 8) != 0,
      .decode_body = decode,
  };
  const size_t n = l7px::http::WriteClientResponseHead(head, ctx, out, kOutCap);
  L7PX_FUZZ_CHECK(n <= kOutCap);
  if (n == 0) return;
  std::unique_ptr<char[]> copy(new char[n]);
  std::memcpy(copy.get(), out, n);
  std::unique_ptr<char[]> tight(new char[n - 1 == 0 ? 1 : n - 1]);
  L7PX_FUZZ_CHECK(l7px::http::WriteClientResponseHead(head, ctx, tight.get(), n - 1) == 0);

  Parser again(Parser::Kind::kResponse, Parser::Limits{.max_header_bytes = kOutCap,
                                                       .max_fields = l7px::http::kMaxHeadFields});
  again.Begin(copy.get());
  again.set_head_request(head.status != 0 && (flags & 1) != 0);
  const Parser::Result r = again.Parse(copy.get(), n);
  // Room for the fields the rewrite adds (kMaxAddedFields): l7px reads its own output.
  if (r.status == Parser::Status::kError) {
    std::fprintf(stderr, "rewritten response head does not parse (%s):\n%.*s\n",
                 std::string(l7px::http::ErrorName(again.error())).c_str(), static_cast<int>(n),
                 copy.get());
    L7PX_FUZZ_CHECK(r.status != Parser::Status::kError);
  }
  L7PX_FUZZ_CHECK(again.head_done());
  L7PX_FUZZ_CHECK(again.head().status == head.status);
  if (decode) L7PX_FUZZ_CHECK(again.head().framing != Framing::kChunked);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t flags = data[0];
  const uint8_t split_byte = data[1];
  data += 2;
  size -= 2;
  std::unique_ptr<char[]> buf(new char[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(buf.get(), data, size);

  Parser::Limits limits;
  if (flags & 0x10) limits = Parser::Limits{.max_header_bytes = 256, .max_target_bytes = 64};
  Parser parser(Parser::Kind::kResponse, limits);
  const bool head_request = (flags & 1) != 0;
  const bool decode = (flags & 2) != 0;
  auto begin = [&](const char* base) {
    parser.Begin(base);
    parser.set_head_request(head_request);
    parser.set_decode_body(decode);
  };

  const size_t split = size * split_byte / 255;
  const size_t ends[2] = {split, size};
  size_t pos = 0;
  size_t budget = 8 * (size + 4);
  uint64_t decoded_total = 0;
  const char* base = buf.get();
  begin(base);
  for (size_t end : ends) {
    while (true) {
      L7PX_FUZZ_CHECK(budget-- > 0);
      const Parser::Result r = parser.Parse(buf.get() + pos, end - pos);
      if (r.status == Parser::Status::kError) {
        L7PX_FUZZ_CHECK(parser.error() != l7px::http::ParseError::kNone);
        return 0;
      }
      L7PX_FUZZ_CHECK(r.consumed <= end - pos);
      L7PX_FUZZ_CHECK(r.decoded <= r.consumed);
      if (parser.head_done() && r.status != Parser::Status::kHeadDone) decoded_total += r.decoded;
      pos += r.consumed;
      if (r.status == Parser::Status::kNeedMore) {
        L7PX_FUZZ_CHECK(pos == end);
        break;
      }
      if (r.status == Parser::Status::kHeadDone) {
        const MessageHead& head = parser.head();
        L7PX_FUZZ_CHECK(head.base == base);
        L7PX_FUZZ_CHECK(base + head.head_len == buf.get() + pos);
        for (int i = 0; i < head.header_count; ++i) {
          L7PX_FUZZ_CHECK(head.headers[i].value.off + head.headers[i].value.len <= head.head_len);
        }
        L7PX_FUZZ_CHECK(head.status >= 100 && head.status <= 999);
        if (head_request) L7PX_FUZZ_CHECK(head.framing == Framing::kNone);
        CheckRewrite(head, flags, decode && head.framing == Framing::kChunked);
        continue;
      }
      // kMessageDone: in decode mode every payload byte was handed out exactly once.
      if (decode && parser.head().framing == Framing::kChunked) {
        L7PX_FUZZ_CHECK(decoded_total == parser.body_bytes());
      }
      decoded_total = 0;
      base = buf.get() + pos;
      begin(base);
    }
  }
  (void)parser.Finish();
  return 0;
}
