#pragma once

#include <cstddef>
#include <string_view>

#include "http/message.h"

namespace l7px::http {

// Serializers for the heads l7px writes. All write into a caller-owned buffer, never allocate, and
// return the number of bytes written, or 0 when `cap` is too small (the caller answers 431/502).

struct ServiceRequestContext {
  std::string_view client_ip;   // appended to X-Forwarded-For
  std::string_view proto;       // X-Forwarded-Proto l7px sets ("http"); empty: none
  std::string_view request_id;  // X-Request-Id l7px generated; empty: none
  // l7px answers "Expect: 100-continue" itself (when it dispatches the request), so the field
  // is not forwarded: the service sees a request whose body is already on its way.
  bool drop_expect = false;
  // The client is a proxy listed in server.trusted_proxies: its X-Forwarded-Proto and
  // X-Forwarded-Host are kept, and its X-Request-Id when AcceptableRequestId (ServiceRequestId);
  // l7px's fill in for those it did not send (or made hop-by-hop). Otherwise those fields are
  // l7px's alone: whatever the client sent is replaced.
  bool trusted_peer = false;
};

// The request head sent to a service: request line "METHOD origin-form-target HTTP/1.1" (an
// OPTIONS to an absolute-form target without path or query goes out as "OPTIONS *", RFC 9112
// 3.2.4); hop-by-hop fields (Connection, Keep-Alive, Proxy-Connection, TE, Trailer,
// Transfer-Encoding, Upgrade, Proxy-Authorization and every field named in Connection) removed;
// exactly one framing header ("Content-Length: N", or "Transfer-Encoding: <the codings
// received, as one list without empty elements>", which end in chunked); Host kept (or taken
// from an absolute-form target; empty for an HTTP/1.0 request without one); X-Forwarded-For
// appended; X-Forwarded-Proto and X-Forwarded-Host l7px's (the trusted peer's when it sent them);
// X-Request-Id = ServiceRequestId(); for OPTIONS and TRACE a Max-Forwards above 0 decremented;
// "Via: 1.1 l7px" appended; for upgrade requests "Connection: upgrade" and the client's Upgrade
// field kept. The service connection is always persistent, whatever the client asked.
size_t WriteServiceRequestHead(const MessageHead& request, const ServiceRequestContext& ctx,
                               char* out, size_t cap);

// Longest X-Request-Id l7px takes from a trusted peer.
inline constexpr size_t kMaxRequestIdBytes = 128;
// 1 to kMaxRequestIdBytes visible ASCII characters (0x21-0x7e): what a trusted peer's id must be
// to reach a service and the access log (no blanks, controls or bytes a log line would mangle).
bool AcceptableRequestId(std::string_view id);
// The X-Request-Id the service sees: the trusted peer's single acceptable X-Request-Id field
// (unless its Connection field names it), else `generated` (l7px's own; several client fields
// never pass). The access log shows this.
std::string_view ServiceRequestId(const MessageHead& request, bool trusted_peer,
                                  std::string_view generated);

// The status of an answer l7px gives itself instead of forwarding the request, or 0:
//  - 405 for TRACE, whatever its Max-Forwards: TRACE is never forwarded (as in nginx), since
//    a service reflecting it would hand a page's script the credentials the browser keeps from
//    it (cross-site tracing); the 405 is also the final-recipient answer RFC 9110 7.6.2 asks for
//    at Max-Forwards 0.
//  - 200 for OPTIONS with Max-Forwards: 0 (RFC 9110 7.6.2: the recipient at 0 answers as the
//    final recipient): no content, Allow listing the methods l7px forwards. This covers
//    "OPTIONS *" too; with no Max-Forwards (or above 0) "OPTIONS *" is forwarded as "*" to the
//    route for its host and path "/" (MessageHead::Path), for the service to answer.
int LocalAnswerStatus(const MessageHead& request);

// A buffer this large always holds WriteServiceRequestHead's output for a request the parser
// accepted with Limits{max_header_bytes, max_target_bytes <= max_header_bytes}, so a valid
// request never fails in the rewrite. Why: the received head is at most max_header_bytes (plus
// its blank line); every kept field grows by at most one byte (": " for ":"); the authority
// appears twice at most (Host and X-Forwarded-Host; it was in the target or Host once); and the
// added fields (client address, proto, request id, Via, Connection: upgrade) are short and
// bounded. 2 x max_header_bytes + 512 covers all of it with room to spare.
constexpr size_t ServiceRequestHeadCapacity(uint32_t max_header_bytes) {
  return 2 * size_t{max_header_bytes} + 512;
}

struct ClientResponseContext {
  bool close = false;  // l7px closes the client connection after this response
  bool http10_client = false;
  bool decode_body = false;  // chunked body re-framed as close-delimited (HTTP/1.0 clients)
};

// The response head sent to a client: "HTTP/1.1 <status> <reason>"; hop-by-hop fields removed
// (Upgrade kept on a 101 with "Connection: upgrade"); framing kept (Transfer-Encoding dropped
// when decode_body); "Connection: close" when closing (always for a close-delimited or decoded
// body), "Connection: keep-alive" for a persistent HTTP/1.0 client; "Via: 1.1 l7px" appended.
// Transfer-Encoding and Content-Length are written from the parsed framing (the codings of a
// chunked message as received), so no Connection token can remove them.
size_t WriteClientResponseHead(const MessageHead& response, const ClientResponseContext& ctx,
                               char* out, size_t cap);

// The same guarantee for WriteClientResponseHead and a response parsed with max_header_bytes:
// fields grow by a byte at most, an empty reason becomes the standard phrase, and Connection
// and Via are added.
constexpr size_t ClientResponseHeadCapacity(uint32_t max_header_bytes) {
  return size_t{max_header_bytes} + 512;
}

// A complete response l7px answers itself: status line, Content-Type: text/plain,
// Content-Length, "Connection: close" when `close`, "Retry-After: N" when retry_after > 0, and a
// one-line body "<status> <reason>\n". Two statuses differ: 405 carries "Allow: <the methods
// l7px forwards>" (RFC 9110 15.5.6), and 200, which l7px sends only for an OPTIONS it answers
// (LocalAnswerStatus), is that Allow field and "Content-Length: 0" without content.
size_t WriteErrorResponse(int status, bool close, int retry_after_seconds, char* out, size_t cap);

// The Allow value of l7px's own OPTIONS and 405 answers.
inline constexpr std::string_view kAllowedMethods = "GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS";

// 32 lowercase hex characters, unique per process run: worker id, counter and a random seed.
class RequestIdGenerator {
 public:
  explicit RequestIdGenerator(uint32_t worker_id);
  // Writes 32 characters into out.
  std::string_view Next(char out[32]);

 private:
  uint64_t seed_;
  uint64_t counter_ = 0;
};

}  // namespace l7px::http
