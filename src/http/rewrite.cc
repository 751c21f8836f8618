#include "http/rewrite.h"

#include <llhttp.h>
#include <sys/random.h>

#include <cstring>
#include <ctime>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/strings.h"
#include "http/status_text.h"
#include "http/uri.h"

namespace l7px::http {
namespace {

constexpr std::string_view kViaSelf = "1.1 l7px";

// Bounded appender: once something does not fit, every later write is dropped and Size() is 0.
class Writer {
 public:
  Writer(char* out, size_t cap) : begin_(out), p_(out), end_(out + cap) {}

  void Put(std::string_view s) {
    if (!ok_ || s.empty()) return;
    if (s.size() > static_cast<size_t>(end_ - p_)) {
      ok_ = false;
      return;
    }
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
  }

  void PutUint(uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
      tmp[sizeof(tmp) - ++n] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    Put({tmp + sizeof(tmp) - n, n});
  }

  // "name: value\r\n", with one bounds check.
  void Field(std::string_view name, std::string_view value) {
    const size_t n = name.size() + value.size() + 4;
    if (!ok_ || n > static_cast<size_t>(end_ - p_)) {
      ok_ = false;
      return;
    }
    if (!name.empty()) std::memcpy(p_, name.data(), name.size());
    p_ += name.size();
    *p_++ = ':';
    *p_++ = ' ';
    if (!value.empty()) std::memcpy(p_, value.data(), value.size());
    p_ += value.size();
    *p_++ = '\r';
    *p_++ = '\n';
  }

  size_t Size() const { return ok_ ? static_cast<size_t>(p_ - begin_) : 0; }

 private:
  char* begin_;
  char* p_;
  char* end_;
  bool ok_ = true;
};

constexpr uint32_t Bit(HeaderKind kind) { return 1u << static_cast<int>(kind); }

constexpr uint32_t kHopByHop =
    Bit(HeaderKind::kConnection) | Bit(HeaderKind::kKeepAlive) | Bit(HeaderKind::kProxyConnection) |
    Bit(HeaderKind::kTe) | Bit(HeaderKind::kTrailer) | Bit(HeaderKind::kUpgrade) |
    Bit(HeaderKind::kProxyAuthorization) | Bit(HeaderKind::kTransferEncoding);

// Fields the writers emit themselves, whatever the Connection tokens say.
constexpr uint32_t kRewritten = Bit(HeaderKind::kHost) | Bit(HeaderKind::kContentLength) |
                                Bit(HeaderKind::kVia) | Bit(HeaderKind::kXForwardedFor);

// Calls fn(token) for each non-empty element of a comma-separated list.
template <typename Fn>
void ForEachToken(std::string_view list, Fn fn) {
  while (!list.empty()) {
    size_t comma = list.find(',');
    std::string_view token = TrimOws(list.substr(0, comma));
    if (!token.empty()) fn(token);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
}

// The field names listed in the message's Connection fields (RFC 9110 7.6.1), split once per
// message rather than once per field.
class ConnectionTokens {
 public:
  explicit ConnectionTokens(const MessageHead& h) : h_(h) {
    if (!h.Has(HeaderKind::kConnection)) return;
    for (int i = 0; i < h.header_count; ++i) {
      if (h.Kind(i) != HeaderKind::kConnection) continue;
      ForEachToken(h.Value(i), [&](std::string_view token) {
        if (count_ < kMaxTokens) {
          tokens_[count_++] = {token.data(), token.size()};
        } else {
          overflow_ = true;
        }
      });
    }
  }

  // True when `name` appears in the token list of any Connection field.
  bool Names(std::string_view name) const {
    if (count_ == 0) return false;
    if (overflow_) return NamedInAnyField(name);  // more tokens than kept: read them again
    for (int i = 0; i < count_; ++i) {
      if (EqualsIgnoreCase({tokens_[i].data, tokens_[i].size}, name)) return true;
    }
    return false;
  }

 private:
  static constexpr int kMaxTokens = 16;

  bool NamedInAnyField(std::string_view name) const {
    for (int i = 0; i < h_.header_count; ++i) {
      if (h_.Kind(i) != HeaderKind::kConnection) continue;
      bool found = false;
      ForEachToken(h_.Value(i), [&](std::string_view token) {
        if (EqualsIgnoreCase(token, name)) found = true;
      });
      if (found) return true;
    }
    return false;
  }

  // Plain pointer and size: left uninitialised, only [0, count_) is read.
  struct Token {
    const char* data;
    size_t size;
  };

  const MessageHead& h_;
  Token tokens_[kMaxTokens];
  int count_ = 0;
  bool overflow_ = false;
};

// Writes "Name: v1, v2, ..., last" joining the non-empty values of every field of `kind`, or
// "Name: last" when there are none. An empty `last` is left out.
void MergedField(Writer& w, const MessageHead& h, HeaderKind kind, std::string_view name,
                 std::string_view last) {
  if (!h.Has(kind)) {
    w.Field(name, last);
    return;
  }
  w.Put(name);
  w.Put(": ");
  bool first = true;
  for (int i = 0; i < h.header_count; ++i) {
    if (h.Kind(i) != kind || h.Value(i).empty()) continue;
    if (!first) w.Put(", ");
    w.Put(h.Value(i));
    first = false;
  }
  if (!last.empty()) {
    if (!first) w.Put(", ");
    w.Put(last);
  }
  w.Put("\r\n");
}

// The bytes of field i as received when they are exactly what Writer::Field would write for it
// ("name: value" CRLF, one SP, no trailing blanks, non-empty value); empty otherwise.
std::string_view CanonicalLine(const MessageHead& h, int i) {
  const HeaderField& f = h.headers[i];
  const uint32_t name_end = f.name.off + f.name.len;
  const uint32_t value_end = f.value.off + f.value.len;
  // The parser guarantees ':' at name_end and CRLF after the value's trailing blanks.
  if (f.value.len == 0 || f.value.off != name_end + 2 || h.base[name_end + 1] != ' ' ||
      h.base[value_end] != '\r') {
    return {};
  }
  return {h.base + f.name.off, value_end + 2 - f.name.off};
}

// Copies the end-to-end fields but those of the kinds in `also_drop` and field `skip` (-1:
// none); `keep_upgrade` keeps Upgrade for a protocol switch. Runs of adjacent fields kept as
// received are copied with one memcpy.
void EndToEndFields(Writer& w, const MessageHead& h, bool keep_upgrade, uint32_t also_drop = 0,
                    int skip = -1) {
  const ConnectionTokens connection(h);
  // Kept for a protocol switch, Upgrade escapes both the hop-by-hop rule and Connection tokens.
  const uint32_t drop =
      kRewritten | also_drop | (keep_upgrade ? kHopByHop & ~Bit(HeaderKind::kUpgrade) : kHopByHop);
  const char* run_begin = nullptr;
  const char* run_end = nullptr;
  for (int i = 0; i < h.header_count; ++i) {
    const HeaderKind kind = h.Kind(i);
    if ((drop & Bit(kind)) != 0 || i == skip) continue;
    const std::string_view name = h.Name(i);
    if (!(keep_upgrade && kind == HeaderKind::kUpgrade) && connection.Names(name)) continue;
    const std::string_view line = CanonicalLine(h, i);
    if (!line.empty() && line.data() == run_end) {
      run_end += line.size();
      continue;
    }
    if (run_begin != nullptr) w.Put({run_begin, static_cast<size_t>(run_end - run_begin)});
    run_begin = run_end = nullptr;
    if (line.empty()) {
      w.Field(name, h.Value(i));
    } else {
      run_begin = line.data();
      run_end = line.data() + line.size();
    }
  }
  if (run_begin != nullptr) w.Put({run_begin, static_cast<size_t>(run_end - run_begin)});
}

// The request line as received when it is exactly what the writer would send: origin-form
// target, HTTP/1.1, single spaces. Empty otherwise.
std::string_view CanonicalRequestLine(const MessageHead& h) {
  static constexpr std::string_view kVersion = " HTTP/1.1\r\n";
  const uint32_t target_end = h.target.off + h.target.len;
  if (h.target.len == 0 || h.base[h.target.off] != '/' ||
      h.target.off != h.method_name.off + h.method_name.len + 1 ||
      target_end + kVersion.size() > h.head_len ||
      h.Str({target_end, static_cast<uint32_t>(kVersion.size())}) != kVersion) {
    return {};
  }
  return h.Str(
      {h.method_name.off, static_cast<uint32_t>(target_end + kVersion.size() - h.method_name.off)});
}

// "Transfer-Encoding: c1, c2, ..., chunked": the codings of every Transfer-Encoding field in
// order, without the empty list elements and blanks the parser tolerated, and the final chunked
// (the parser checked it is the last, once) spelled in lower case for parsers that compare
// case-sensitively.
void TransferEncodingField(Writer& w, const MessageHead& h) {
  w.Put("Transfer-Encoding: ");
  bool first = true;
  for (int i = 0; i < h.header_count; ++i) {
    if (h.Kind(i) != HeaderKind::kTransferEncoding) continue;
    ForEachToken(h.Value(i), [&](std::string_view coding) {
      if (!first) w.Put(", ");
      w.Put(EqualsIgnoreCase(coding, "chunked") ? std::string_view("chunked") : coding);
      first = false;
    });
  }
  w.Put("\r\n");
}

void FramingFields(Writer& w, const MessageHead& h, bool drop_transfer_encoding) {
  if (h.framing == Framing::kChunked) {
    // The codings received (they end in chunked, the parser checked), so that e.g.
    // "gzip, chunked" keeps meaning what it meant.
    if (!drop_transfer_encoding) TransferEncodingField(w, h);
  } else if (h.framing == Framing::kContentLength || h.Has(HeaderKind::kContentLength)) {
    // kNone with a Content-Length: "0", or the length a HEAD/304 response announces.
    w.Put("Content-Length: ");
    w.PutUint(h.content_length);
    w.Put("\r\n");
  }
}

// The target sent to the service: origin-form, or "*" for an OPTIONS to an absolute-form target
// without path and query (RFC 9112 3.2.4: the last proxy sends "*" to the origin).
std::string_view ServiceTarget(const MessageHead& request) {
  std::string_view authority;
  std::string_view rest;
  if (request.method == HTTP_OPTIONS &&
      SplitAbsoluteForm(request.Str(request.target), &authority, &rest) && rest.empty()) {
    return "*";
  }
  return request.OriginFormTarget();
}

// A field of `kind` (named `name`) reaches the service from EndToEndFields: present, and not
// made hop-by-hop by a Connection token.
bool Forwarded(const MessageHead& h, HeaderKind kind, std::string_view name) {
  if (!h.Has(kind)) return false;
  return !h.Has(HeaderKind::kConnection) || !ConnectionTokens(h).Names(name);
}

bool DecrementsMaxForwards(const MessageHead& request) {
  return request.max_forwards_index >= 0 && request.max_forwards > 0 &&
         (request.method == HTTP_OPTIONS || request.method == HTTP_TRACE);
}

}  // namespace

bool AcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string_view ServiceRequestId(const MessageHead& request, bool trusted_peer,
                                  std::string_view generated) {
  if (!trusted_peer || !Forwarded(request, HeaderKind::kXRequestId, "x-request-id")) {
    return generated;
  }
  int found = -1;
  for (int i = 0; i < request.header_count; ++i) {
    if (request.Kind(i) != HeaderKind::kXRequestId) continue;
    if (found >= 0) return generated;  // several: none of them is the request's id
    found = i;
  }
  const std::string_view id = request.Value(found);
  return AcceptableRequestId(id) ? id : generated;
}

int LocalAnswerStatus(const MessageHead& request) {
  if (request.method == HTTP_TRACE) return 405;
  if (request.method == HTTP_OPTIONS && request.max_forwards_index >= 0 &&
      request.max_forwards == 0) {
    return 200;
  }
  return 0;
}

size_t WriteServiceRequestHead(const MessageHead& request, const ServiceRequestContext& ctx,
                               char* out, size_t cap) {
  Writer w(out, cap);
  if (std::string_view line = CanonicalRequestLine(request); !line.empty()) {
    w.Put(line);
  } else {
    w.Put(request.Str(request.method_name));
    w.Put(" ");
    w.Put(ServiceTarget(request));
    w.Put(" HTTP/1.1\r\n");
  }

  std::string_view host;
  std::string_view rest;
  if (!SplitAbsoluteForm(request.Str(request.target), &host, &rest)) {
    host = request.host_index >= 0 ? request.Value(request.host_index) : std::string_view{};
  }
  w.Field("Host", host);  // an HTTP/1.0 request may lack one; HTTP/1.1 requires the field
  // X-Request-Id is always written below (the one the service sees); X-Forwarded-Proto and -Host
  // and Forwarded from the client pass only from a trusted proxy. Underscore spellings of the
  // forwarding fields never pass: a CGI-style service would read them as the real ones.
  uint32_t also_drop = Bit(HeaderKind::kXRequestId) | Bit(HeaderKind::kForwardingAlias);
  if (!ctx.trusted_peer) {
    also_drop |= Bit(HeaderKind::kXForwardedProto) | Bit(HeaderKind::kXForwardedHost) |
                 Bit(HeaderKind::kForwarded);
  }
  if (ctx.drop_expect) also_drop |= Bit(HeaderKind::kExpect);
  const bool max_forwards = DecrementsMaxForwards(request);
  EndToEndFields(w, request, request.upgrade, also_drop,
                 max_forwards ? request.max_forwards_index : -1);
  if (max_forwards) {
    w.Put("Max-Forwards: ");
    w.PutUint(request.max_forwards - 1);
    w.Put("\r\n");
  }
  FramingFields(w, request, false);
  if (request.upgrade) w.Put("Connection: upgrade\r\n");
  MergedField(w, request, HeaderKind::kXForwardedFor, "X-Forwarded-For", ctx.client_ip);
  // A trusted peer's own fields went out with the end-to-end ones; l7px's fill in for the
  // rest (also for one the peer's Connection field made hop-by-hop).
  const bool kept_proto =
      ctx.trusted_peer && Forwarded(request, HeaderKind::kXForwardedProto, "x-forwarded-proto");
  const bool kept_host =
      ctx.trusted_peer && Forwarded(request, HeaderKind::kXForwardedHost, "x-forwarded-host");
  if (!ctx.proto.empty() && !kept_proto) w.Field("X-Forwarded-Proto", ctx.proto);
  if (!host.empty() && !kept_host) w.Field("X-Forwarded-Host", host);
  if (std::string_view id = ServiceRequestId(request, ctx.trusted_peer, ctx.request_id);
      !id.empty()) {
    w.Field("X-Request-Id", id);
  }
  MergedField(w, request, HeaderKind::kVia, "Via", kViaSelf);
  w.Put("\r\n");
  return w.Size();
}

size_t WriteClientResponseHead(const MessageHead& response, const ClientResponseContext& ctx,
                               char* out, size_t cap) {
  Writer w(out, cap);
  std::string_view reason = response.Str(response.reason);
  if (reason.empty()) reason = ReasonPhrase(response.status);
  w.Put("HTTP/1.1 ");
  w.PutUint(response.status);
  w.Put(" ");
  w.Put(reason);
  w.Put("\r\n");

  const bool switching = response.status == 101;
  const bool decode = ctx.decode_body && response.framing == Framing::kChunked;
  // A body that ends with the connection leaves no choice, whatever the caller decided.
  const bool close = ctx.close || decode || response.framing == Framing::kUntilClose;
  EndToEndFields(w, response, switching);
  FramingFields(w, response, ctx.decode_body);
  if (switching) {
    w.Put("Connection: upgrade\r\n");
  } else if (close) {
    w.Put("Connection: close\r\n");
  } else if (ctx.http10_client) {
    w.Put("Connection: keep-alive\r\n");
  }
  MergedField(w, response, HeaderKind::kVia, "Via", kViaSelf);
  w.Put("\r\n");
  return w.Size();
}

size_t WriteErrorResponse(int status, bool close, int retry_after_seconds, char* out, size_t cap) {
  const uint64_t code = status < 0 ? 0 : static_cast<uint64_t>(status);
  std::string_view reason = ReasonPhrase(status);
  Writer w(out, cap);
  w.Put("HTTP/1.1 ");
  w.PutUint(code);
  w.Put(" ");
  w.Put(reason);
  w.Put("\r\n");
  if (status == 200 || status == 405) {
    w.Put("Allow: ");
    w.Put(kAllowedMethods);
    w.Put("\r\n");
  }
  // An OPTIONS answered by l7px has no content; every other answer says its status in text.
  const bool body = status != 200;
  if (body) {
    w.Put("Content-Type: text/plain\r\nContent-Length: ");
    // Body "<status> <reason>\n": a three-digit status, a space, the reason and a newline.
    uint64_t digits = code >= 100 ? (code >= 1000 ? 4 : 3) : (code >= 10 ? 2 : 1);
    w.PutUint(digits + 1 + reason.size() + 1);
    w.Put("\r\n");
  } else {
    w.Put("Content-Length: 0\r\n");
  }
  if (close) w.Put("Connection: close\r\n");
  if (retry_after_seconds > 0) {
    w.Put("Retry-After: ");
    w.PutUint(static_cast<uint64_t>(retry_after_seconds));
    w.Put("\r\n");
  }
  w.Put("\r\n");
  if (body) {
    w.PutUint(code);
    w.Put(" ");
    w.Put(reason);
    w.Put("\n");
  }
  return w.Size();
}

namespace {

// splitmix64's finaliser: a bijection on 64 bits, so distinct inputs give distinct outputs.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint64_t RandomSeed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != static_cast<ssize_t>(sizeof(seed))) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    seed = Mix(static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
               static_cast<uint64_t>(ts.tv_nsec));
  }
  return seed;
}

// 16 lowercase hex digits of v, most significant first.
void PutHex(uint64_t v, char* out) {
#if defined(__SSE2__)
  // Bytes most significant first, each split into its two nibbles (high one first), each nibble
  // turned into its digit.
  const __m128i bytes = _mm_cvtsi64_si128(static_cast<long long>(__builtin_bswap64(v)));
  const __m128i low_nibble = _mm_set1_epi8(0x0f);
  const __m128i nibbles = _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), low_nibble),
                                            _mm_and_si128(bytes, low_nibble));
  const __m128i letters =
      _mm_and_si128(_mm_cmpgt_epi8(nibbles, _mm_set1_epi8(9)), _mm_set1_epi8('a' - '0' - 10));
  const __m128i digits = _mm_add_epi8(_mm_add_epi8(nibbles, _mm_set1_epi8('0')), letters);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(out), digits);
#else
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = kHex[v & 0xf];
    v >>= 4;
  }
#endif
}

}  // namespace

// seed_ = 32 random bits (per process run) above the worker id, so (seed_, counter_) is unique
// per run and worker; the output is a bijection of that pair.
RequestIdGenerator::RequestIdGenerator(uint32_t worker_id)
    : seed_((RandomSeed() & 0xffffffff00000000ULL) | worker_id) {}

std::string_view RequestIdGenerator::Next(char out[32]) {
  uint64_t lo = Mix(counter_++ ^ Mix(~seed_));
  uint64_t hi = Mix(seed_) ^ lo;
  PutHex(hi, out);
  PutHex(lo, out + 16);
  return {out, 32};
}

}  // namespace l7px::http
