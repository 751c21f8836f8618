// Client request heads and bodies (chunked framing included) through http::Parser, and every
// head that parses through the service-request rewrite, whose output must itself parse as an
// equivalent request head. Beyond "no crash", the parse is checked against what it must mean:
//  - the same bytes give the same messages whether they arrive whole, in two pieces or in many
//    small ones, with the body decoded in place or forwarded raw (CheckSameTrace);
//  - body boundaries: a message ends exactly where its framing says, and a chunked body the
//    parser accepted decodes, by an independent strict reading, to exactly the bytes it
//    counted (CheckBodyBoundaries, ReferenceDechunk);
//  - a differential against plain llhttp (the same strict build, no l7px checks): l7px is only
//    ever stricter, so every message it accepts, llhttp accepts too, with the same head and
//    message boundaries, method, target, decoded body and keep-alive (CheckAgainstLlhttp);
//    except chunked framing RFC 9112 allows and llhttp 8.1 refuses (blanks around `;` and `=`
//    in chunk extensions, a Transfer-Encoding list with blanks or empty elements), which l7px
//    reads with its own decoder;
//  - the same bytes as the worker parses them (set_reframe_chunked, ParseInPlace on one
//    buffer): every chunked body comes out in canonical framing that llhttp reads as the same
//    payload l7px decodes from the original, and that re-framing leaves unchanged (CheckInPlace).
//
// Input: byte 0 = split position (low 7 bits, as a fraction of the rest) and small limits (top
// bit); the rest is the byte stream a client sends on one connection (pipelined messages too).

#include <llhttp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "http/chunked.h"
#include "http/message.h"
#include "http/parser.h"
#include "http/rewrite.h"

namespace {

using l7px::http::Framing;
using l7px::http::MessageHead;
using l7px::http::ParseError;
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
  // Room for the fields the rewrite adds (kMaxAddedFields): l7px reads its own output, every
  // time (an HTTP/1.0 request without Host is sent with an empty one, which RFC 9112 3.2 allows
  // and the parser accepts).
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

// ---------------------------------------------------------------- one run of the parser

// A message the parser completed, by offsets into the input.
struct Message {
  size_t head_end = 0;  // just past the head's blank line
  size_t end = 0;       // just past the message (body included)
  Framing framing = Framing::kNone;
  uint64_t content_length = 0;
  uint64_t body_bytes = 0;  // Parser::body_bytes(): decoded payload bytes
  bool keep_alive = false;
  bool upgrade = false;
  std::string method;
  std::string target;
  std::string decoded;  // decode runs: the payload the parser moved in place
};

// Everything a run says about the input.
struct Trace {
  std::vector<Message> messages;  // completed, in order
  bool error = false;             // a parse error after `messages` (or Finish() found one)
};

// Feeds `buf[0, size)` to a request parser in pieces ending at each of `ends` (ascending, the
// last one `size`), the way a connection receives it, then Finish(). With `decode`, body bytes
// are decoded in place (the buffer changes). `on_head` sees every completed head.
template <typename OnHead>
Trace Run(char* buf, size_t size, const Parser::Limits& limits, const std::vector<size_t>& ends,
          bool decode, OnHead on_head) {
  Trace t;
  Parser parser(Parser::Kind::kRequest, limits);
  size_t pos = 0;
  size_t budget = 8 * (size + 4) + 2 * ends.size();  // Parse calls: each consumes or advances
  const char* base = buf;
  Message cur;
  auto begin = [&] {
    parser.Begin(base);
    parser.set_decode_body(decode);
    cur = Message();
  };
  begin();
  for (size_t end : ends) {
    while (true) {
      L7PX_FUZZ_CHECK(budget-- > 0);
      char* const at = buf + pos;
      const Parser::Result r = parser.Parse(at, end - pos);
      if (r.status == Parser::Status::kError) {
        L7PX_FUZZ_CHECK(parser.error() != ParseError::kNone);
        (void)l7px::http::StatusForError(parser.error());
        t.error = true;
        return t;
      }
      L7PX_FUZZ_CHECK(r.consumed <= end - pos);
      L7PX_FUZZ_CHECK(r.decoded <= r.consumed);
      if (decode) cur.decoded.append(at, r.decoded);
      pos += r.consumed;
      if (r.status == Parser::Status::kNeedMore) {
        L7PX_FUZZ_CHECK(pos == end);
        break;
      }
      if (r.status == Parser::Status::kHeadDone) {
        L7PX_FUZZ_CHECK(parser.head_done());
        const MessageHead& head = parser.head();
        L7PX_FUZZ_CHECK(head.base == base);
        L7PX_FUZZ_CHECK(base + head.head_len == buf + pos);
        cur.head_end = pos;
        cur.framing = head.framing;
        cur.content_length = head.content_length;
        cur.keep_alive = head.keep_alive;
        cur.upgrade = head.upgrade;
        cur.method = std::string(head.Str(head.method_name));
        cur.target = std::string(head.Str(head.target));
        on_head(head);
        continue;
      }
      // kMessageDone: the next message starts here.
      L7PX_FUZZ_CHECK(!parser.in_body());
      cur.end = pos;
      cur.body_bytes = parser.body_bytes();
      t.messages.push_back(std::move(cur));
      base = buf + pos;
      begin();
    }
  }
  const Parser::Result fin = parser.Finish();
  // A request is never read until close: the end of the stream completes nothing.
  L7PX_FUZZ_CHECK(fin.status != Parser::Status::kMessageDone);
  if (fin.status == Parser::Status::kError) {
    L7PX_FUZZ_CHECK(parser.error() != ParseError::kNone);
    t.error = true;
  }
  return t;
}

// Piece ends of 1 to 16 bytes, from a small generator seeded by the input.
std::vector<size_t> SmallPieces(size_t size, uint32_t seed) {
  std::vector<size_t> ends;
  uint32_t x = seed | 1;
  for (size_t pos = 0; pos < size;) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    pos = std::min(size, pos + 1 + x % 16);
    ends.push_back(pos);
  }
  if (ends.empty()) ends.push_back(0);
  return ends;
}

// ---------------------------------------------------------------- invariants

// Where the input is split, and whether the body is decoded, changes nothing about what the
// messages are, nor whether the bytes after them are refused. Which error is named may differ:
// llhttp reports a span (a target, a field name) when it ends or when the piece ends, and l7px's
// checks run then (a limit passed, a second Host found as the next field starts), while a syntax
// error is found when llhttp reaches the bad byte; which comes first can depend on the pieces.
void CheckSameTrace(const Trace& a, const Trace& b) {
  L7PX_FUZZ_CHECK(a.messages.size() == b.messages.size());
  for (size_t i = 0; i < a.messages.size(); ++i) {
    const Message& x = a.messages[i];
    const Message& y = b.messages[i];
    L7PX_FUZZ_CHECK(x.head_end == y.head_end);
    L7PX_FUZZ_CHECK(x.end == y.end);
    L7PX_FUZZ_CHECK(x.framing == y.framing);
    L7PX_FUZZ_CHECK(x.content_length == y.content_length);
    L7PX_FUZZ_CHECK(x.body_bytes == y.body_bytes);
    L7PX_FUZZ_CHECK(x.keep_alive == y.keep_alive);
    L7PX_FUZZ_CHECK(x.upgrade == y.upgrade);
    L7PX_FUZZ_CHECK(x.method == y.method);
    L7PX_FUZZ_CHECK(x.target == y.target);
  }
  L7PX_FUZZ_CHECK(a.error == b.error);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool CrlfAt(std::string_view s, size_t pos) {
  return pos + 1 < s.size() && s[pos] == '\r' && s[pos + 1] == '\n';
}

// An independent, strict reading of chunked framing (RFC 9112 7.1): chunk-size is 1*HEXDIG,
// whatever follows it up to the line end is the parser's business (extensions), every line ends
// in CRLF, chunk data is followed by CRLF, trailer lines end with an empty line. Returns the
// length of the complete chunked body `raw` starts with, its payload in *payload; 0 when `raw`
// does not start with one.
size_t ReferenceDechunk(std::string_view raw, std::string* payload) {
  size_t pos = 0;
  while (true) {
    const size_t start = pos;
    uint64_t size = 0;
    for (int v; pos < raw.size() && (v = HexValue(raw[pos])) >= 0; ++pos) {
      if (size >> 59) return 0;  // larger than any input
      size = size * 16 + static_cast<uint64_t>(v);
    }
    if (pos == start) return 0;
    while (pos < raw.size() && raw[pos] != '\r' && raw[pos] != '\n') ++pos;
    if (!CrlfAt(raw, pos)) return 0;
    pos += 2;
    if (size == 0) break;
    if (raw.size() - pos < size) return 0;
    payload->append(raw.substr(pos, size));
    pos += size;
    if (!CrlfAt(raw, pos)) return 0;
    pos += 2;
  }
  while (!CrlfAt(raw, pos)) {
    while (pos < raw.size() && raw[pos] != '\r' && raw[pos] != '\n') ++pos;
    if (!CrlfAt(raw, pos)) return 0;
    pos += 2;
  }
  return pos + 2;
}

// The payload of message `m` of `input`, by its framing, read independently of the parser.
std::string ReferencePayload(std::string_view input, const Message& m) {
  const std::string_view raw = input.substr(m.head_end, m.end - m.head_end);
  if (m.framing != Framing::kChunked) return std::string(raw);
  std::string payload;
  L7PX_FUZZ_CHECK(ReferenceDechunk(raw, &payload) == raw.size());
  return payload;
}

// Each message ends exactly where its framing says, and the body bytes the parser counted are
// the payload an independent reading finds there.
void CheckBodyBoundaries(std::string_view input, const Trace& t) {
  size_t prev_end = 0;
  for (const Message& m : t.messages) {
    L7PX_FUZZ_CHECK(m.head_end > prev_end);
    L7PX_FUZZ_CHECK(m.end >= m.head_end);
    const size_t raw = m.end - m.head_end;
    switch (m.framing) {
      case Framing::kNone:
        L7PX_FUZZ_CHECK(raw == 0);
        L7PX_FUZZ_CHECK(m.body_bytes == 0);
        break;
      case Framing::kContentLength:
        L7PX_FUZZ_CHECK(m.content_length > 0);
        L7PX_FUZZ_CHECK(raw == m.content_length);
        L7PX_FUZZ_CHECK(m.body_bytes == m.content_length);
        break;
      case Framing::kChunked: {
        std::string payload;
        if (ReferenceDechunk(input.substr(m.head_end, raw), &payload) != raw) {
          std::fprintf(stderr, "accepted chunked body is not one well-framed body: %s\n",
                       std::string(input.substr(m.head_end, raw)).c_str());
          L7PX_FUZZ_CHECK(false);
        }
        L7PX_FUZZ_CHECK(payload.size() == m.body_bytes);
        break;
      }
      case Framing::kUntilClose:
        L7PX_FUZZ_CHECK(false);  // never for a request
    }
    prev_end = m.end;
  }
}

// A decode run moved exactly the payload of each message into place.
void CheckDecoded(std::string_view input, const Trace& decoded) {
  for (const Message& m : decoded.messages) {
    L7PX_FUZZ_CHECK(m.decoded == ReferencePayload(input, m));
  }
}

// ---------------------------------------------------------------- differential: plain llhttp

struct LlhttpMessage {
  size_t head_end = 0;
  size_t end = 0;
  std::string method;
  std::string target;
  std::string body;  // decoded (on_body)
  bool keep_alive = false;
  bool upgrade = false;
};

struct LlhttpRun {
  std::vector<LlhttpMessage> messages;
  bool error = false;  // llhttp refused the bytes after `messages`
  LlhttpMessage cur;
  enum class Pause { kNone, kHead, kMessage } pause = Pause::kNone;
};

LlhttpRun* RunOf(llhttp_t* p) { return static_cast<LlhttpRun*>(p->data); }

// The same bytes through llhttp alone, with default settings (the strict build l7px links),
// one continuous parser as llhttp means to be used. Stops after a message that ends the
// connection's HTTP (no keep-alive, or an upgrade): what follows is not requests.
LlhttpRun RunPlainLlhttp(const char* data, size_t size) {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_method = [](llhttp_t* p, const char* at, size_t len) {
      RunOf(p)->cur.method.append(at, len);
      return 0;
    };
    s.on_url = [](llhttp_t* p, const char* at, size_t len) {
      RunOf(p)->cur.target.append(at, len);
      return 0;
    };
    s.on_body = [](llhttp_t* p, const char* at, size_t len) {
      RunOf(p)->cur.body.append(at, len);
      return 0;
    };
    s.on_headers_complete = [](llhttp_t* p) {
      RunOf(p)->pause = LlhttpRun::Pause::kHead;
      return static_cast<int>(HPE_PAUSED);
    };
    s.on_message_complete = [](llhttp_t* p) {
      RunOf(p)->pause = LlhttpRun::Pause::kMessage;
      return static_cast<int>(HPE_PAUSED);
    };
    return s;
  }();
  LlhttpRun run;
  llhttp_t p;
  llhttp_init(&p, HTTP_REQUEST, &settings);
  p.data = &run;
  size_t pos = 0;
  while (true) {
    run.pause = LlhttpRun::Pause::kNone;
    const llhttp_errno_t err = llhttp_execute(&p, data + pos, size - pos);
    if (err == HPE_OK) return run;  // everything consumed
    if (err != HPE_PAUSED) {
      // HPE_PAUSED_UPGRADE cannot come before the upgrade message completed, where we stop.
      run.error = true;
      return run;
    }
    pos = static_cast<size_t>(llhttp_get_error_pos(&p) - data);
    if (run.pause == LlhttpRun::Pause::kHead) {
      run.cur.head_end = pos;
      run.cur.keep_alive = llhttp_should_keep_alive(&p) != 0;
      run.cur.upgrade = p.upgrade != 0;
    } else {
      run.cur.end = pos;
      const bool last = !run.cur.keep_alive || run.cur.upgrade;
      run.messages.push_back(std::move(run.cur));
      run.cur = LlhttpMessage();
      if (last) return run;
    }
    llhttp_resume(&p);
  }
}

// Every message l7px accepted, llhttp accepted as the same message. (l7px may refuse what
// llhttp takes: that is its own checks at work.) Up to the first message after which the two
// cannot be compared: one that ends the connection's HTTP for either parser.
void CheckAgainstLlhttp(std::string_view input, const Trace& t, const LlhttpRun& ll) {
  for (size_t i = 0; i < t.messages.size(); ++i) {
    const Message& m = t.messages[i];
    if (i >= ll.messages.size()) {
      // Chunked framing that RFC 9112 allows and llhttp 8.1 refuses (see the top): l7px's own
      // decoder reads it, checked by CheckBodyBoundaries and CheckInPlace instead.
      if (m.framing == Framing::kChunked) return;
      std::fprintf(stderr, "l7px accepted message %zu, llhttp did not (%s)\n", i,
                   ll.error ? "error" : "incomplete");
      L7PX_FUZZ_CHECK(i < ll.messages.size());
    }
    const LlhttpMessage& l = ll.messages[i];
    L7PX_FUZZ_CHECK(l.head_end == m.head_end);
    L7PX_FUZZ_CHECK(l.end == m.end);
    L7PX_FUZZ_CHECK(l.method == m.method);
    L7PX_FUZZ_CHECK(l.target == m.target);
    L7PX_FUZZ_CHECK(l.body == ReferencePayload(input, m));
    L7PX_FUZZ_CHECK(l.keep_alive == m.keep_alive);
    if (!m.keep_alive || m.upgrade || l.upgrade) return;
  }
  // And where llhttp refused the bytes of the next message, l7px did not take them either.
  if (ll.error && ll.messages.size() == t.messages.size()) L7PX_FUZZ_CHECK(t.error);
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
  // Exact-size heap copies: any read past the end is an ASan report. One per run, since a decode
  // run rewrites its buffer.
  auto copy = [&] {
    std::unique_ptr<char[]> buf(new char[size == 0 ? 1 : size]);
    if (size > 0) std::memcpy(buf.get(), data, size);
    return buf;
  };
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  Parser::Limits limits;
  if (ctl & 0x80)
    limits = Parser::Limits{.max_header_bytes = 256, .max_target_bytes = 64, .max_body_bytes = 100};

  // Two pieces, split where byte 0 says; every head goes through the rewrite.
  const size_t split = size * (ctl & 0x7f) / 127;
  auto buf = copy();
  const Trace two =
      Run(buf.get(), size, limits, {split, size}, /*decode=*/false, [&](const MessageHead& head) {
        CheckHead(head);
        CheckRewrite(head, (ctl * 7u) % 512);
      });
  // Whole, and in many small pieces with the body decoded in place.
  buf = copy();
  const Trace whole = Run(buf.get(), size, limits, {size}, false, [](const MessageHead&) {});
  buf = copy();
  const Trace small = Run(buf.get(), size, limits, SmallPieces(size, ctl * 2654435761u + size),
                          /*decode=*/true, [](const MessageHead&) {});
  CheckSameTrace(whole, two);
  CheckSameTrace(whole, small);
  CheckBodyBoundaries(input, whole);
  CheckDecoded(input, small);
  CheckAgainstLlhttp(input, whole, RunPlainLlhttp(input.data(), input.size()));
  CheckInPlace(data, size, split, limits);
  return 0;
}
