#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>

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
// Body bytes are reported raw (chunk framing included) so they can be forwarded unchanged; llhttp
// validates the framing as they pass. With set_decode_body(true) (HTTP/1.0 clients of chunked
// responses), the decoded body is instead moved in place to the front of the input:
// r.decoded bytes at p are the payload.
//
// Besides llhttp's own checks it rejects what RFC 9112 requires of a proxy and llhttp accepts:
// whitespace before ':', obs-fold, several Host fields or none on HTTP/1.1, unsupported versions.
// An HTTP/0.9 line ("GET /") or another protocol name ("RTSP/1.0") is kMalformed; a well-formed
// "HTTP/x.y" other than 1.0 and 1.1 is kVersionNotSupported. Transfer-Encoding in an HTTP/1.0
// message, or one not ending in chunked (responses too), is kAmbiguousFraming. An Upgrade in an
// HTTP/1.0 request is ignored (head().upgrade false), per RFC 9110 7.8.
class Parser {
 public:
  enum class Kind { kRequest, kResponse };
  struct Limits {
    uint32_t max_header_bytes = 16384;
    uint32_t max_target_bytes = 8192;
    uint64_t max_body_bytes = UINT64_MAX;  // requests only
  };
  enum class Status { kNeedMore, kHeadDone, kMessageDone, kError };
  struct Result {
    Status status;
    size_t consumed = 0;
    size_t decoded = 0;  // with set_decode_body: payload bytes moved to the input's front
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

  void Begin(const char* head_base);
  Result Parse(const char* data, size_t len);
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

  Kind kind_;
  Limits limits_;
  llhttp_t llhttp_;
  MessageHead head_;
  ParseError error_ = ParseError::kNone;
  bool head_request_ = false;
  bool decode_body_ = false;
  bool head_done_ = false;
  bool message_done_ = false;
  bool message_done_pending_ = false;
  uint64_t body_bytes_ = 0;
  // Head scanning state.
  Span version_;                         // "1.1" of "HTTP/1.1"
  const char* last_span_end_ = nullptr;  // end of the last header name/value span
  bool in_value_ = false;
  int host_count_ = 0;
  uint32_t cl_count_ = 0;
  char* decode_out_ = nullptr;  // next write position when decoding in place
  // Chunked framing bytes are re-checked for strict CRLF (llhttp's default build accepts any
  // byte after CR there): start of the unchecked framing bytes, and whether the last one was CR.
  const char* scan_pos_ = nullptr;
  bool prev_cr_ = false;
};

}  // namespace l7px::http
