#pragma once

// Sans-I/O pieces of the service SDK: the registration head, its answer, the request parser
// (llhttp) and response framing. No sockets here, so every piece is testable byte by byte.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "l7px/service.h"

namespace l7px::sdk {

// The v1 registration request head (ends with the blank line). Pool and token lines are
// omitted when empty.
std::string RegistrationHead(std::string_view pool, std::string_view token,
                             std::string_view service_id);

// Result of looking for a complete response head to the registration request.
struct HandshakeReply {
  enum class State { kIncomplete, kComplete, kMalformed };
  State state = State::kIncomplete;
  int status = 0;       // valid when kComplete
  size_t head_len = 0;  // bytes of the head including the blank line; the rest is slot traffic
};
// `max_head` bounds the search: longer without a blank line -> kMalformed.
HandshakeReply ParseHandshakeReply(std::string_view bytes, size_t max_head = 16 * 1024);

// Incremental HTTP/1.1 request parser for one slot connection. Feed bytes as they arrive; it
// stops after each complete request so the caller can answer before parsing the next one.
class RequestParser {
 public:
  enum class Result {
    kNeedMore,  // all input consumed, no complete request yet
    kRequest,   // a request is complete: request(), keep_alive(); call Next() before feeding more
    kError,     // unrecoverable: answer error_status() (if nonzero) and close
  };

  RequestParser(size_t max_header_bytes, size_t max_body_bytes);
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Parses up to `len` bytes; `*consumed` tells how many were used (the rest belongs to the next
  // request when the result is kRequest).
  Result Feed(const char* data, size_t len, size_t* consumed);

  Request& request() { return request_; }
  // Whether the connection may carry another request after this one (HTTP version,
  // Connection header, no Upgrade).
  bool keep_alive() const { return keep_alive_; }
  // True when some bytes of a not-yet-complete request have been seen.
  bool mid_request() const { return mid_request_; }
  // 400, 413 or 431 after kError.
  int error_status() const { return error_status_; }
  // Prepares for the next request on the same connection.
  void Next();

 private:
  struct Callbacks;
  struct State;
  std::unique_ptr<State> state_;
  Request request_;
  std::string field_;
  std::string value_;
  size_t header_bytes_ = 0;
  size_t max_header_bytes_;
  size_t max_body_bytes_;
  bool complete_ = false;
  bool keep_alive_ = true;
  bool mid_request_ = false;
  bool upgrade_ = false;
  int error_status_ = 0;
};

// The reason phrase the SDK sends, and logs, for a status without a registered one (the phrases
// themselves are http::ReasonPhrase's).
inline constexpr std::string_view kUnknownReason = "Unknown";

// Whether a response to `method` with `status` carries no body by definition.
bool ResponseHasNoBody(std::string_view method, int status);

// Builds the response head for `response` answering a `method` request. `body_size` is the body
// length to announce; `close` adds "Connection: close", except on a 101, which gets
// "Connection: Upgrade" instead.
std::string ResponseHead(std::string_view method, const Response& response, uint64_t body_size,
                         bool close);

}  // namespace l7px::sdk
