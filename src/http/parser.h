#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>

#include "http/chunked.h"
#include "http/message.h"

namespace l7px::http {

// Sans-I/O incremental HTTP/1.x parser built on llhttp, one message at a time; never allocates.
//
// Usage for one message:
//   parser.Begin(buf);                       // head bytes will be stored contiguously from buf
//   loop: append received bytes to the buffer, then
//         r = parser.Parse(p, n)             // p = first byte not yet consumed
//   kNeedMore       all n bytes consumed (head bytes, or raw body bytes to forward)
//   kHeadDone       head complete: r.consumed bytes ended the head; head() is valid. The rest is
//                   body or the next message: call Parse again with it (even with n == 0).
//   kMessageDone    message complete: r.consumed bytes (raw body, possibly 0) ended it; bytes
//                   after that belong to the next message. Call Begin() before parsing them.
//   kError          error() says why; the connection must be closed after any answer.
//
// During the head, successive Parse() inputs must be adjacent in memory and inside the buffer
// given to Begin() (spans are offsets from it). During the body, input may be anywhere.
// Body bytes are reported raw (chunk framing included) so they can be forwarded unchanged; the
// framing is validated as they pass (ChunkedDecoder, chunked.h). With set_decode_body(true)
// (HTTP/1.0 clients of chunked responses; the admin API), the decoded body is instead moved in
// place to the front of the input: r.decoded bytes at p are the payload. With
// set_reframe_chunked(true) (requests to services), a chunked body is re-framed canonically in
// place instead (see ChunkedDecoder::Mode::kReframe): r.decoded bytes at p are the body to
// forward, and r.consumed may stop short of n while a chunk-size line or a CRLF is incomplete;
// the caller passes the rest again, unchanged, with what follows. ParseInPlace() does that
// bookkeeping on a buffer.
//
// Besides llhttp's own checks it rejects what RFC 9112 requires of a proxy and llhttp accepts:
// whitespace before ':', obs-fold, several Host fields or none on HTTP/1.1, unsupported versions.
// An HTTP/0.9 line ("GET /") or another protocol name ("RTSP/1.0") is kMalformed; a well-formed
// "HTTP/x.y" other than 1.0 and 1.1 is kVersionNotSupported. Transfer-Encoding in an HTTP/1.0
// message, or one not ending in chunked (responses too), is kAmbiguousFraming. Transfer-Encoding
// is read as the list RFC 9110 5.6.1 defines over all its field lines (OWS around elements,
// empty elements ignored); a field line with an empty value, a list without a coding, chunked
// twice, or chunked with parameters is kAmbiguousFraming too. An Upgrade in an HTTP/1.0 request
// is ignored (head().upgrade false), per RFC 9110 7.8. A request head that reaches
// max_header_bytes while its target is still being read is kUriTooLong (414), not
// kHeaderTooLarge. An OPTIONS or TRACE request with several Max-Forwards fields, or one that is
// not 1*DIGIT, is kMalformed.
class Parser {
 public:
  enum class Kind { kRequest, kResponse };
  struct Limits {
    uint32_t max_header_bytes = 16384;
    uint32_t max_target_bytes = 8192;
    uint64_t max_body_bytes = UINT64_MAX;  // requests only
    // Header fields (clamped to kMaxHeadFields). Peers get kMaxHeaders; a head l7px wrote
    // (kMaxHeaders fields plus what the rewrite added) parses with kMaxHeadFields.
    int max_fields = kMaxHeaders;
  };
  enum class Status { kNeedMore, kHeadDone, kMessageDone, kError };
  struct Result {
    Status status;
    size_t consumed = 0;
    size_t decoded = 0;  // with set_decode_body / set_reframe_chunked: output bytes at the input
  };

  Parser(Kind kind, const Limits& limits);
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  void set_limits(const Limits& limits) { limits_ = limits; }
  // Responses only, before the head completes: the request was HEAD (no body follows).
  // Begin() resets it, so set it after Begin() for every response.
  void set_head_request(bool head) { head_request_ = head; }
  // Reset by Begin() as well.
  void set_decode_body(bool decode) { decode_body_ = decode; }
  // Requests: re-frame every chunked body canonically in place (kept across Begin()). Set it
  // before a message's body is parsed, never while one is.
  void set_reframe_chunked(bool reframe) { reframe_chunked_ = reframe; }

  void Begin(const char* head_base);
  Result Parse(const char* data, size_t len);
  // Parse() on buf[*scan, *len), for a caller that keeps a message in one buffer: bytes before
  // *scan are parsed (the head, then the body to forward), bytes from *scan on are not. Advances
  // *scan past what was parsed; when a chunked body is re-framed (set_reframe_chunked) it also
  // moves the unparsed bytes down over what the re-framing removed and lowers *len to match.
  // Never touches bytes before the *scan it was given.
  Result ParseInPlace(char* buf, uint32_t* scan, uint32_t* len);
  // The peer closed the connection: completes a kUntilClose body (returns kMessageDone) or
  // reports a truncated message as an error. kNeedMore when no message was in progress (nothing
  // but blank lines since Begin(), or the message already done): a clean close.
  Result Finish();

  const MessageHead& head() const { return head_; }
  bool head_done() const { return head_done_; }
  bool in_body() const { return head_done_ && !message_done_; }
  ParseError error() const { return error_; }
  // Body bytes (decoded payload) seen so far.
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  // llhttp callbacks (static trampolines defined in parser.cc).
  friend struct ParserCallbacks;

  Result ParseChunked(const char* data, size_t len);

  Kind kind_;
  Limits limits_;
  llhttp_t llhttp_;
  MessageHead head_;
  ParseError error_ = ParseError::kNone;
  bool head_request_ = false;
  bool decode_body_ = false;
  bool reframe_chunked_ = false;
  bool head_done_ = false;
  bool message_done_ = false;
  bool message_done_pending_ = false;
  uint64_t body_bytes_ = 0;
  // Head scanning state.
  Span version_;                         // "1.1" of "HTTP/1.1"
  const char* last_span_end_ = nullptr;  // end of the last header name/value span
  bool in_value_ = false;
  bool target_done_ = false;  // the request target was read whole
  int host_count_ = 0;
  uint32_t cl_count_ = 0;
  char* decode_out_ = nullptr;  // next write position when decoding in place
  bool chunked_started_ = false;
  ChunkedDecoder chunked_;
};

}  // namespace l7px::http
