#include "sdk/cpp/protocol.h"

#include <llhttp.h>

#include <cstring>

#include "base/strings.h"
#include "http/status_text.h"

namespace l7px {

std::string_view Request::Header(std::string_view name) const {
  for (const auto& [field, value] : headers) {
    if (EqualsIgnoreCase(field, name)) return value;
  }
  return {};
}

namespace sdk {
namespace {

// Body buffers up to this size are kept between requests on a connection (RequestParser::Next).
constexpr size_t kKeptBodyCapacity = 64 * 1024;

}  // namespace

std::string RegistrationHead(std::string_view pool, std::string_view token,
                             std::string_view service_id) {
  std::string head =
      "GET /.l7px/register HTTP/1.1\r\n"
      "Host: l7px\r\n"
      "Connection: Upgrade\r\n"
      "Upgrade: l7px-slot/1\r\n";
  if (!pool.empty()) head.append("L7px-Pool: ").append(pool).append("\r\n");
  if (!token.empty()) head.append("L7px-Token: ").append(token).append("\r\n");
  if (!service_id.empty()) head.append("L7px-Service: ").append(service_id).append("\r\n");
  head.append("\r\n");
  return head;
}

HandshakeReply ParseHandshakeReply(std::string_view bytes, size_t max_head) {
  HandshakeReply reply;
  const size_t end = bytes.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (bytes.size() > max_head) reply.state = HandshakeReply::State::kMalformed;
    return reply;
  }
  reply.head_len = end + 4;
  // "HTTP/1.x SSS ..." : the status is the three digits after the first space.
  const std::string_view line = bytes.substr(0, bytes.find("\r\n"));
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
    reply.state = HandshakeReply::State::kMalformed;
    return reply;
  }
  int status = 0;
  for (size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      reply.state = HandshakeReply::State::kMalformed;
      return reply;
    }
    status = status * 10 + (line[i] - '0');
  }
  if (line.size() > 12 && line[12] != ' ') {
    reply.state = HandshakeReply::State::kMalformed;
    return reply;
  }
  reply.status = status;
  reply.state = HandshakeReply::State::kComplete;
  return reply;
}

// ---- RequestParser ----

struct RequestParser::State {
  llhttp_t parser;
  llhttp_settings_t settings;
};

// llhttp callbacks: `parser->data` is the RequestParser. Returning HPE_USER stops parsing with
// our own error_status_ already set.
struct RequestParser::Callbacks {
  static RequestParser* Self(llhttp_t* p) { return static_cast<RequestParser*>(p->data); }

  static int CountHeader(RequestParser* self, size_t len) {
    self->header_bytes_ += len;
    if (self->header_bytes_ > self->max_header_bytes_) {
      self->error_status_ = 431;
      return HPE_USER;
    }
    return 0;
  }
  static int OnMessageBegin(llhttp_t* p) {
    Self(p)->mid_request_ = true;
    return 0;
  }
  static int OnUrl(llhttp_t* p, const char* at, size_t len) {
    RequestParser* self = Self(p);
    self->request_.target.append(at, len);
    return CountHeader(self, len);
  }
  static int OnHeaderField(llhttp_t* p, const char* at, size_t len) {
    RequestParser* self = Self(p);
    self->field_.append(at, len);
    return CountHeader(self, len);
  }
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
    RequestParser* self = Self(p);
    self->value_.append(at, len);
    return CountHeader(self, len);
  }
  static int OnHeaderValueComplete(llhttp_t* p) {
    RequestParser* self = Self(p);
    self->request_.headers.emplace_back(std::move(self->field_), std::move(self->value_));
    self->field_.clear();
    self->value_.clear();
    // Each header line costs a few framing bytes too; counting them bounds header count.
    return CountHeader(self, 4);
  }
  static int OnHeadersComplete(llhttp_t* p) {
    RequestParser* self = Self(p);
    Request& req = self->request_;
    req.method = llhttp_method_name(static_cast<llhttp_method_t>(llhttp_get_method(p)));
    req.version_minor = llhttp_get_http_minor(p);
    const size_t q = req.target.find('?');
    if (q == std::string::npos) {
      req.path = req.target;
    } else {
      req.path = req.target.substr(0, q);
      req.query = req.target.substr(q + 1);
    }
    if (p->content_length > self->max_body_bytes_ && (p->flags & F_CONTENT_LENGTH)) {
      self->error_status_ = 413;
      return HPE_USER;
    }
    return 0;
  }
  static int OnBody(llhttp_t* p, const char* at, size_t len) {
    RequestParser* self = Self(p);
    if (self->request_.body.size() + len > self->max_body_bytes_) {
      self->error_status_ = 413;
      return HPE_USER;
    }
    self->request_.body.append(at, len);
    return 0;
  }
  static int OnMessageComplete(llhttp_t* p) {
    RequestParser* self = Self(p);
    self->complete_ = true;
    self->upgrade_ = llhttp_get_upgrade(p) != 0;
    self->keep_alive_ = llhttp_should_keep_alive(p) != 0 && !self->upgrade_;
    return HPE_PAUSED;
  }
};

RequestParser::RequestParser(size_t max_header_bytes, size_t max_body_bytes)
    : state_(std::make_unique<State>()),
      max_header_bytes_(max_header_bytes),
      max_body_bytes_(max_body_bytes) {
  llhttp_settings_init(&state_->settings);
  llhttp_settings_t& s = state_->settings;
  s.on_message_begin = &Callbacks::OnMessageBegin;
  s.on_url = &Callbacks::OnUrl;
  s.on_header_field = &Callbacks::OnHeaderField;
  s.on_header_value = &Callbacks::OnHeaderValue;
  s.on_header_value_complete = &Callbacks::OnHeaderValueComplete;
  s.on_headers_complete = &Callbacks::OnHeadersComplete;
  s.on_body = &Callbacks::OnBody;
  s.on_message_complete = &Callbacks::OnMessageComplete;
  llhttp_init(&state_->parser, HTTP_REQUEST, &state_->settings);
  state_->parser.data = this;
}

RequestParser::~RequestParser() = default;

RequestParser::Result RequestParser::Feed(const char* data, size_t len, size_t* consumed) {
  *consumed = 0;
  if (error_status_ != 0 || complete_) return complete_ ? Result::kRequest : Result::kError;
  if (len == 0) return Result::kNeedMore;
  const llhttp_errno_t err = llhttp_execute(&state_->parser, data, len);
  switch (err) {
    case HPE_OK:
      *consumed = len;
      return Result::kNeedMore;
    case HPE_PAUSED:
    case HPE_PAUSED_UPGRADE:
      if (!complete_) break;
      *consumed = static_cast<size_t>(llhttp_get_error_pos(&state_->parser) - data);
      return Result::kRequest;
    default:
      break;
  }
  if (error_status_ == 0) error_status_ = 400;
  return Result::kError;
}

void RequestParser::Next() {
  // Cleared in place, not replaced: the next request on this connection reuses the strings' and
  // the header list's capacity instead of growing them again (an allocation per header per
  // request otherwise). A large body's buffer is let go rather than kept for the connection.
  request_.method.clear();
  request_.target.clear();
  request_.path.clear();
  request_.query.clear();
  request_.version_minor = 1;
  request_.headers.clear();
  if (request_.body.capacity() > kKeptBodyCapacity) {
    std::string().swap(request_.body);
  } else {
    request_.body.clear();
  }
  request_.slot = -1;
  request_.proxy.clear();
  field_.clear();
  value_.clear();
  header_bytes_ = 0;
  complete_ = false;
  keep_alive_ = true;
  mid_request_ = false;
  upgrade_ = false;
  // After an upgrade the connection is closed, so only a plain pause needs resuming.
  if (llhttp_get_errno(&state_->parser) == HPE_PAUSED) llhttp_resume(&state_->parser);
}

// ---- Response framing ----

bool ResponseHasNoBody(std::string_view method, int status) {
  return method == "HEAD" || (status >= 100 && status < 200) || status == 204 || status == 304;
}

std::string ResponseHead(std::string_view method, const Response& response, uint64_t body_size,
                         bool close) {
  std::string head;
  head.reserve(128 + response.headers.size() * 32);
  head.append("HTTP/1.1 ").append(std::to_string(response.status)).append(" ");
  head.append(response.reason.empty() ? http::ReasonPhrase(response.status, kUnknownReason)
                                      : response.reason);
  head.append("\r\n");
  for (const auto& [name, value] : response.headers) {
    if (EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Transfer-Encoding") ||
        EqualsIgnoreCase(name, "Connection")) {
      continue;
    }
    head.append(name).append(": ").append(value).append("\r\n");
  }
  const bool status_without_body = (response.status >= 100 && response.status < 200) ||
                                   response.status == 204 || response.status == 304;
  // HEAD announces the would-be size (RFC 9110 9.3.2), but only when there is one to announce.
  const bool head_with_size = method == "HEAD" && body_size > 0;
  if (!status_without_body && (method != "HEAD" || head_with_size)) {
    head.append("Content-Length: ").append(std::to_string(body_size)).append("\r\n");
  }
  if (response.status == 101) {
    // The handler's own Connection header was dropped above; an upgrade needs this one.
    head.append("Connection: Upgrade\r\n");
  } else if (close) {
    head.append("Connection: close\r\n");
  }
  head.append("\r\n");
  return head;
}

}  // namespace sdk
}  // namespace l7px
