#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace l7px::http {

// Why a message was rejected. Each error maps to exactly one client-facing status
// (StatusForError); for service responses every error means 502.
enum class ParseError : uint8_t {
  kNone = 0,
  kMalformed,            // 400: syntax llhttp rejects, bad chunk framing, bare CR, NUL, ...
  kObsFold,              // 400: obsolete line folding
  kSpaceBeforeColon,     // 400: "Name : value"
  kAmbiguousFraming,     // 400: CL+TE, differing CLs, TE not ending in chunked
  kBadHost,              // 400: HTTP/1.1 without Host, several Host fields, invalid authority
  kTooManyHeaders,       // 431
  kHeaderTooLarge,       // 431: head longer than max_header_bytes
  kUriTooLong,           // 414: request target longer than max_target_bytes
  kBodyTooLarge,         // 413: Content-Length (or chunked total) above max_body_bytes
  kVersionNotSupported,  // 505: anything but HTTP/1.0 and HTTP/1.1
  kMethodNotAllowed,     // 405: CONNECT (l7px is a reverse proxy)
};

int StatusForError(ParseError error);
std::string_view ErrorName(ParseError error);  // "malformed", "obs_fold", ... for logs

// Offsets into the buffer that holds the message head (MessageHead::base).
struct Span {
  uint32_t off = 0;
  uint32_t len = 0;
};

// Field names the parser and the rewriters act on, recognised once while parsing.
enum class HeaderKind : uint8_t {
  kOther = 0,
  kHost,
  kContentLength,
  kTransferEncoding,
  kConnection,
  kProxyConnection,
  kKeepAlive,
  kTe,
  kTrailer,
  kUpgrade,
  kProxyAuthorization,
  kExpect,
  kVia,
  kXForwardedFor,
  kXForwardedProto,
  kXForwardedHost,
  kXRequestId,
  kForwarded,  // RFC 7239
  // X_Forwarded_For and the like: names that CGI-style servers (PHP, WSGI, Rack) read as one of
  // the forwarding fields above, since they fold '-' and '_' together.
  kForwardingAlias,
};

// The kind of a field name (case-insensitive); kOther for every name not listed above.
HeaderKind ClassifyHeader(std::string_view name);

struct HeaderField {
  Span name;
  Span value;  // trimmed of surrounding whitespace
  HeaderKind kind = HeaderKind::kOther;
};

enum class Framing : uint8_t {
  kNone,           // no body (requests without CL/TE; HEAD/1xx/204/304 responses; CL: 0)
  kContentLength,  // content_length bytes follow
  kChunked,        // Transfer-Encoding ends in chunked
  kUntilClose,     // response without CL/TE: body ends when the service closes
};

// Header fields l7px accepts in a message it receives (more: 431 for requests, 502 for
// responses).
inline constexpr int kMaxHeaders = 100;
// Fields the head rewrite (rewrite.h) may add to what it received: for a request Host (taken
// from an absolute-form target when there was no Host field), X-Forwarded-For,
// X-Forwarded-Proto, X-Forwarded-Host, X-Request-Id and Via; for a response fewer.
inline constexpr int kMaxAddedFields = 6;
// Room in a MessageHead: enough to parse again any head l7px writes (Parser::Limits::max_fields).
inline constexpr int kMaxHeadFields = kMaxHeaders + kMaxAddedFields;

// A parsed request or response head. Spans index into `base`, which the owner keeps unmoved
// until the message is done. Filled by RequestParser/ResponseParser.
struct MessageHead {
  const char* base = nullptr;
  uint32_t head_len = 0;  // bytes of the head including the blank line
  uint8_t version_major = 1;
  uint8_t version_minor = 1;

  // Requests.
  uint8_t method = 0;  // llhttp_method_t value
  Span method_name;
  Span target;  // as received (origin-form, absolute-form or '*')

  // Responses.
  uint16_t status = 0;
  Span reason;

  uint16_t header_count = 0;
  int16_t host_index = -1;     // headers[] index of Host, -1 if absent
  uint32_t kinds_present = 0;  // bit k set when a field of HeaderKind k is present

  Framing framing = Framing::kNone;
  uint64_t content_length = 0;

  bool keep_alive = true;        // after this message, per version and Connection tokens
  bool upgrade = false;          // request: Connection: upgrade + Upgrade; response: 101
  bool expect_continue = false;  // request carried Expect: 100-continue
  bool is_head_request = false;  // request method is HEAD

  // OPTIONS and TRACE requests (RFC 9110 7.6.2): headers[] index of the Max-Forwards field, -1
  // if absent (or another method), and its value, saturated at UINT64_MAX.
  int16_t max_forwards_index = -1;
  uint64_t max_forwards = 0;

  // Last, so that Reset() clears every other member with one copy. Only the first header_count
  // entries are meaningful: Reset() leaves the rest as they were. (The alignment leaves no tail
  // padding, so message.cc can assert that nothing follows.)
  alignas(8) HeaderField headers[kMaxHeadFields];

  std::string_view Str(Span s) const { return {base + s.off, s.len}; }
  std::string_view Name(int i) const { return Str(headers[i].name); }
  std::string_view Value(int i) const { return Str(headers[i].value); }
  HeaderKind Kind(int i) const { return headers[i].kind; }
  bool Has(HeaderKind kind) const { return (kinds_present >> static_cast<int>(kind)) & 1u; }
  // First header with this name (case-insensitive); -1 if none.
  int Find(std::string_view name) const;
  bool is_http10() const { return version_major == 1 && version_minor == 0; }
  // Host header value without the port, lower-cased into `buf` (cap >= value length). For an
  // absolute-form target, the authority of the target. Empty when neither exists.
  std::string_view HostForRouting(char* buf, size_t cap) const;
  // Path of the target without query ("/a/b" of "/a/b?x" or "http://h/a/b?x"). "OPTIONS *"
  // asks about the server in general (RFC 9110 9.3.7): its path is "/", so it takes the route
  // for the host's root.
  std::string_view Path() const;
  // Target in origin-form ("/a/b?x" of "http://h/a/b?x"; "*" stays "*").
  std::string_view OriginFormTarget() const;

  // Makes this the empty head (as default-constructed) of a new message stored from
  // `head_base`, without clearing the header array, which is large and read up to header_count.
  void Reset(const char* head_base);
};

// True for methods a proxy may retry on a new connection (RFC 9110 9.2.2).
bool IsIdempotentMethod(uint8_t method);

}  // namespace l7px::http
