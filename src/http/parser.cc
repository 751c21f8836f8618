// Invariants:
// - One llhttp instance per message: Begin() re-initialises it, so no state leaks from one
//   message to the next (keep-alive flags, upgrade, half-parsed trailers).
// - llhttp is paused in on_headers_complete (body may follow) and in on_message_complete; while
//   paused, llhttp_get_error_pos() is the first byte not consumed. A head without body returns 1
//   from on_headers_complete instead, so on_message_complete pauses at the same position and
//   the kMessageDone is reported by the next Parse()/Finish() call with consumed 0.
// - During the head every span lies in [head_.base, head_.base + max_header_bytes); spans that
//   llhttp splits across execute calls are adjacent in memory and are merged here. A header
//   value span that does not continue the previous one is an obs-fold.
// - Callbacks after head_done_ (chunk trailers) never touch head_.
// - llhttp's default (non-strict) build takes any byte after a CR as the LF. So the head is
//   re-scanned once complete, and chunked framing bytes (everything between on_body spans) are
//   checked as they pass: CR and LF appear only as CRLF pairs.
#include "http/parser.h"

#include <cstring>

#include "base/strings.h"
#include "http/char_scan.h"
#include "http/uri.h"

namespace l7px::http {

struct ParserCallbacks {
  static Parser* Self(llhttp_t* p) { return static_cast<Parser*>(p->data); }

  static int Fail(Parser* self, ParseError error) {
    if (self->error_ == ParseError::kNone) self->error_ = error;
    return -1;
  }

  // Common checks for a span of the head; extends `span` (or starts it when empty).
  static int HeadSpan(Parser* self, Span* span, const char* at, size_t len) {
    if (len == 0) return 0;
    const char* base = self->head_.base;
    if (static_cast<size_t>(at + len - base) > self->limits_.max_header_bytes) {
      return Fail(self, ParseError::kHeaderTooLarge);
    }
    uint32_t off = static_cast<uint32_t>(at - base);
    if (span->len == 0) {
      span->off = off;
    } else if (span->off + span->len != off) {
      return Fail(self, ParseError::kMalformed);
    }
    span->len += static_cast<uint32_t>(len);
    return 0;
  }

  static int OnMethod(llhttp_t* p, const char* at, size_t len) {
    Parser* self = Self(p);
    if (self->head_done_) return 0;
    return HeadSpan(self, &self->head_.method_name, at, len);
  }

  static int OnUrl(llhttp_t* p, const char* at, size_t len) {
    Parser* self = Self(p);
    if (self->head_done_) return 0;
    if (p->method == HTTP_CONNECT) return Fail(self, ParseError::kMethodNotAllowed);
    if (self->head_.target.len + len > self->limits_.max_target_bytes) {
      return Fail(self, ParseError::kUriTooLong);
    }
    return HeadSpan(self, &self->head_.target, at, len);
  }

  static int OnStatus(llhttp_t* p, const char* at, size_t len) {
    Parser* self = Self(p);
    if (self->head_done_) return 0;
    return HeadSpan(self, &self->head_.reason, at, len);
  }

  static int OnVersion(llhttp_t* p, const char* at, size_t len) {
    Parser* self = Self(p);
    if (self->head_done_) return 0;
    return HeadSpan(self, &self->version_, at, len);
  }

  static int OnHeaderField(llhttp_t* p, const char* at, size_t len) {
    Parser* self = Self(p);
    if (self->head_done_ || len == 0) return 0;  // trailer: forwarded raw
    MessageHead& h = self->head_;
    if (static_cast<size_t>(at + len - h.base) > self->limits_.max_header_bytes) {
      return Fail(self, ParseError::kHeaderTooLarge);
    }
    uint32_t off = static_cast<uint32_t>(at - h.base);
    if (!self->in_value_ && h.header_count > 0 && at == self->last_span_end_) {
      h.headers[h.header_count - 1].name.len += static_cast<uint32_t>(len);  // continuation
    } else {
      if (h.header_count > 0 && FinishField(self) != 0) return -1;
      if (h.header_count >= self->limits_.max_fields || h.header_count == kMaxHeadFields) {
        return Fail(self, ParseError::kTooManyHeaders);
      }
      HeaderField& f = h.headers[h.header_count++];
      f.name = {off, static_cast<uint32_t>(len)};
      f.value = {off, 0};
      self->in_value_ = false;
    }
    self->last_span_end_ = at + len;
    return 0;
  }

  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
    Parser* self = Self(p);
    // llhttp reports an empty value as an empty span after the line end: nothing to merge.
    if (self->head_done_ || len == 0) return 0;
    MessageHead& h = self->head_;
    if (static_cast<size_t>(at + len - h.base) > self->limits_.max_header_bytes) {
      return Fail(self, ParseError::kHeaderTooLarge);
    }
    if (h.header_count == 0) return Fail(self, ParseError::kMalformed);
    HeaderField& f = h.headers[h.header_count - 1];
    if (!self->in_value_) {
      // Only ':' and blanks may separate the name from the first value byte; a line break in
      // between is a fold after an empty first line ("X:\r\n b").
      const char* gap = h.base + f.name.off + f.name.len;
      if (gap >= at || *gap != ':') return Fail(self, ParseError::kMalformed);
      for (++gap; gap < at; ++gap) {
        if (*gap != ' ' && *gap != '\t') return Fail(self, ParseError::kObsFold);
      }
      f.value = {static_cast<uint32_t>(at - h.base), static_cast<uint32_t>(len)};
      self->in_value_ = true;
    } else if (at == self->last_span_end_) {
      f.value.len += static_cast<uint32_t>(len);
    } else {
      return Fail(self, ParseError::kObsFold);
    }
    self->last_span_end_ = at + len;
    return 0;
  }

  // Checks and classifies the last header field once its name and value are complete.
  static int FinishField(Parser* self) {
    MessageHead& h = self->head_;
    int i = h.header_count - 1;
    HeaderField& f = h.headers[i];
    // llhttp admits only token characters in a name; checked again here (one vector scan per
    // name), since a blank smuggled into a name is how "Host : x" would pass as another field.
    const std::string_view name = h.Name(i);
    const char* const name_end = name.data() + name.size();
    if (const char* bad = SkipTokenChars(name.data(), name_end, h.base); bad != name_end) {
      return Fail(self, *bad == ' ' || *bad == '\t' ? ParseError::kSpaceBeforeColon
                                                    : ParseError::kMalformed);
    }
    std::string_view raw = h.Value(i);
    std::string_view v = TrimOws(raw);
    f.value.off += static_cast<uint32_t>(v.data() - raw.data());
    f.value.len = static_cast<uint32_t>(v.size());
    f.kind = ClassifyHeader(name);
    h.kinds_present |= 1u << static_cast<int>(f.kind);
    self->in_value_ = false;
    const bool request = self->kind_ == Parser::Kind::kRequest;
    switch (f.kind) {
      case HeaderKind::kContentLength:
        if (++self->cl_count_ > 1) return Fail(self, ParseError::kAmbiguousFraming);
        break;
      case HeaderKind::kHost:
        if (!request) break;
        if (++self->host_count_ > 1) return Fail(self, ParseError::kBadHost);
        h.host_index = static_cast<int16_t>(i);
        break;
      case HeaderKind::kExpect:
        if (request && EqualsIgnoreCase(v, "100-continue")) h.expect_continue = true;
        break;
      default:
        break;
    }
    return 0;
  }

  static bool HasHttpPrefix(const Parser* self) {
    const Span& v = self->version_;
    return v.len == 3 && v.off >= 5 && std::memcmp(self->head_.base + v.off - 5, "HTTP/", 5) == 0;
  }

  static ParseError CheckTarget(const MessageHead& h) {
    std::string_view t = h.Str(h.target);
    if (t.empty()) return ParseError::kMalformed;
    if (t.front() == '/') return ParseError::kNone;
    if (t == "*") return h.method == HTTP_OPTIONS ? ParseError::kNone : ParseError::kMalformed;
    std::string_view authority;
    std::string_view rest;
    if (!SplitAbsoluteForm(t, &authority, &rest)) return ParseError::kMalformed;
    if (!IsValidAuthority(authority)) return ParseError::kBadHost;
    // OriginFormTarget() needs the path to start the remainder ("http://h?x" has no slash).
    if (!rest.empty() && rest.front() != '/') return ParseError::kMalformed;
    return ParseError::kNone;
  }

  // Body framing from Transfer-Encoding / Content-Length, one rule set for both directions
  // (RFC 9112 6.1, 6.3): a TE must end in chunked, never comes with a CL, and means faulty
  // framing in HTTP/1.0. Leaves kNone when neither field is present.
  static ParseError ReadBodyFraming(MessageHead& h, const llhttp_t* p) {
    if (p->flags & F_TRANSFER_ENCODING) {
      if (h.is_http10() || !(p->flags & F_CHUNKED) || (p->flags & F_CONTENT_LENGTH)) {
        return ParseError::kAmbiguousFraming;
      }
      h.framing = Framing::kChunked;
    } else if (p->flags & F_CONTENT_LENGTH) {
      h.content_length = p->content_length;
      h.framing = h.content_length > 0 ? Framing::kContentLength : Framing::kNone;
    }
    return ParseError::kNone;
  }

  static ParseError CheckRequest(Parser* self, llhttp_t* p) {
    MessageHead& h = self->head_;
    h.method = p->method;
    h.is_head_request = p->method == HTTP_HEAD;
    if (p->method == HTTP_CONNECT) return ParseError::kMethodNotAllowed;
    if (ParseError e = CheckTarget(h); e != ParseError::kNone) return e;
    if (self->host_count_ == 0) {
      if (!h.is_http10()) return ParseError::kBadHost;
    } else if (!h.Value(h.host_index).empty() && !IsValidAuthority(h.Value(h.host_index))) {
      // RFC 9112 3.2: an empty Host is valid (a target without authority); a bad one is not.
      return ParseError::kBadHost;
    }
    if (ParseError e = ReadBodyFraming(h, p); e != ParseError::kNone) return e;
    if (h.framing == Framing::kContentLength && h.content_length > self->limits_.max_body_bytes) {
      return ParseError::kBodyTooLarge;
    }
    // RFC 9110 7.8: an Upgrade in an HTTP/1.0 request is ignored.
    h.upgrade = p->upgrade != 0 && !h.is_http10();
    return ParseError::kNone;
  }

  static ParseError CheckResponse(Parser* self, llhttp_t* p) {
    MessageHead& h = self->head_;
    h.status = p->status_code;
    h.is_head_request = self->head_request_;
    if (h.status < 100 || h.status > 999) return ParseError::kMalformed;
    h.upgrade = h.status == 101;
    if (self->head_request_ || h.status < 200 || h.status == 204 || h.status == 304) {
      h.framing = Framing::kNone;
      if (p->flags & F_CONTENT_LENGTH) h.content_length = p->content_length;
      return ParseError::kNone;
    }
    if (!(p->flags & (F_TRANSFER_ENCODING | F_CONTENT_LENGTH))) {
      h.framing = Framing::kUntilClose;
      return ParseError::kNone;
    }
    // Stricter than RFC 9112 6.3 (which reads a non-chunked TE response until close): a
    // response is held to the same framing rules as a request.
    return ReadBodyFraming(h, p);
  }

  static int OnHeadersComplete(llhttp_t* p) {
    Parser* self = Self(p);
    MessageHead& h = self->head_;
    if (h.header_count > 0 && FinishField(self) != 0) return -1;
    h.version_major = p->http_major;
    h.version_minor = p->http_minor;
    // No version span: an HTTP/0.9 "GET /" line. A different protocol name: "RTSP/1.0".
    if (!HasHttpPrefix(self)) return Fail(self, ParseError::kMalformed);
    if (h.version_major != 1 || h.version_minor > 1) {
      return Fail(self, ParseError::kVersionNotSupported);
    }
    ParseError e =
        self->kind_ == Parser::Kind::kRequest ? CheckRequest(self, p) : CheckResponse(self, p);
    if (e != ParseError::kNone) return Fail(self, e);
    if (self->kind_ == Parser::Kind::kResponse && self->head_request_) {
      p->flags |= F_SKIPBODY;  // so that should_keep_alive does not expect an EOF body
    }
    h.keep_alive = llhttp_should_keep_alive(p) != 0;
    self->head_done_ = true;
    // 1 = no body: llhttp completes the message at once (and pauses in on_message_complete).
    return h.framing == Framing::kNone ? 1 : HPE_PAUSED;
  }

  static int OnChunkHeader(llhttp_t* p) {
    Parser* self = Self(p);
    if (self->kind_ == Parser::Kind::kRequest &&
        p->content_length > self->limits_.max_body_bytes - self->body_bytes_) {
      return Fail(self, ParseError::kBodyTooLarge);
    }
    return 0;
  }

  // Checks chunked framing bytes [scan_pos_, end): CR and LF only as CRLF pairs. When chunk
  // data follows (`before_data`), the framing before it must end with a complete CRLF.
  static bool CheckFraming(Parser* self, const char* end, bool before_data) {
    for (const char* c = self->scan_pos_; c < end; ++c) {
      if (self->prev_cr_) {
        if (*c != '\n') return false;
        self->prev_cr_ = false;
      } else if (*c == '\r') {
        self->prev_cr_ = true;
      } else if (*c == '\n') {
        return false;
      }
    }
    self->scan_pos_ = end;
    return !(before_data && self->prev_cr_);
  }

  static int OnBody(llhttp_t* p, const char* at, size_t len) {
    Parser* self = Self(p);
    if (self->head_.framing == Framing::kChunked) {
      if (!CheckFraming(self, at, true)) return Fail(self, ParseError::kMalformed);
      self->scan_pos_ = at + len;
    }
    self->body_bytes_ += len;
    if (self->kind_ == Parser::Kind::kRequest && self->body_bytes_ > self->limits_.max_body_bytes) {
      return Fail(self, ParseError::kBodyTooLarge);
    }
    if (self->decode_body_) {
      std::memmove(self->decode_out_, at, len);
      self->decode_out_ += len;
    }
    return 0;
  }

  static int OnMessageComplete(llhttp_t* p) {
    Parser* self = Self(p);
    self->message_done_pending_ = true;
    return HPE_PAUSED;
  }

  static const llhttp_settings_t& Settings() {
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_method = OnMethod;
      s.on_url = OnUrl;
      s.on_status = OnStatus;
      s.on_version = OnVersion;
      s.on_header_field = OnHeaderField;
      s.on_header_value = OnHeaderValue;
      s.on_headers_complete = OnHeadersComplete;
      s.on_chunk_header = OnChunkHeader;
      s.on_body = OnBody;
      s.on_message_complete = OnMessageComplete;
      return s;
    }();
    return settings;
  }

  // Maps an llhttp error that no callback explained.
  static bool IsBlank(char c) { return c == ' ' || c == '\t'; }
  static bool IsTchar(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
  }

  // "Name : v" that llhttp refused itself (it does so for the fields it interprets, such as
  // Content-Length, and for tabs) at the blank or just after it: the line from its start to the
  // error is a token followed by blanks.
  static bool IsSpaceBeforeColon(const Parser* self, const char* pos, const char* end) {
    const char* base = self->head_.base;
    // llhttp may report the position just past the blank it choked on, the end of the input.
    if (self->head_done_ || pos <= base || pos > end) return false;
    if (pos < end && *pos != ':' && !IsBlank(*pos)) return false;
    const char* q = pos;
    bool blank = pos < end && IsBlank(*pos);
    while (q > base && IsBlank(q[-1])) {
      --q;
      blank = true;
    }
    const char* name_end = q;
    while (q > base && IsTchar(q[-1])) --q;
    return blank && q < name_end && q > base && q[-1] == '\n';
  }

  // Maps an llhttp error that no callback explained; `end` is the end of the input.
  static ParseError MapLlhttpError(const Parser* self, llhttp_errno_t err, const char* end) {
    switch (err) {
      case HPE_INVALID_HEADER_TOKEN:
        return IsSpaceBeforeColon(self, llhttp_get_error_pos(&self->llhttp_), end)
                   ? ParseError::kSpaceBeforeColon
                   : ParseError::kMalformed;
      case HPE_INVALID_VERSION: {
        // "HTTP/1.2", "HTTP/3.0": a well-formed version we do not speak. But a version we do
        // speak followed by junk ("HTTP/1.1 extra") is a malformed request line.
        if (!HasHttpPrefix(self)) return ParseError::kMalformed;
        const std::string_view v = self->head_.Str(self->version_);
        return (v == "1.0" || v == "1.1") ? ParseError::kMalformed
                                          : ParseError::kVersionNotSupported;
      }
      case HPE_PAUSED_H2_UPGRADE:  // the HTTP/2 connection preface
        return ParseError::kVersionNotSupported;
      case HPE_UNEXPECTED_CONTENT_LENGTH:  // duplicate CL, CL with TE
      case HPE_INVALID_TRANSFER_ENCODING:  // TE not ending in chunked
        return ParseError::kAmbiguousFraming;
      default:
        return ParseError::kMalformed;
    }
  }
};

namespace {

// Belt and braces over llhttp's own checks (its default build takes any byte after a CR for
// the LF): every CR in the head is followed by LF, every LF preceded by CR, and no line starts
// with a blank (obs-fold), whatever spans llhttp reported.
ParseError ScanLineBreaks(const char* head, size_t len) {
  const char* const end = head + len;
  for (const char* p = FindLineBreak(head, end, head); p != end;
       p = FindLineBreak(p + 1, end, head)) {
    // A CR must start a CRLF pair, and an LF can only be the second half of one.
    if (*p == '\n' || p + 1 == end || p[1] != '\n') return ParseError::kMalformed;
    ++p;
    if (p + 1 != end && (p[1] == ' ' || p[1] == '\t')) return ParseError::kObsFold;
  }
  return ParseError::kNone;
}

}  // namespace

Parser::Parser(Kind kind, const Limits& limits) : kind_(kind), limits_(limits) { Begin(nullptr); }

void Parser::Begin(const char* head_base) {
  llhttp_init(&llhttp_, kind_ == Kind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE,
              &ParserCallbacks::Settings());
  llhttp_.data = this;
  head_.Reset(head_base);
  version_ = {};
  error_ = ParseError::kNone;
  head_request_ = false;
  decode_body_ = false;
  head_done_ = false;
  message_done_ = false;
  message_done_pending_ = false;
  body_bytes_ = 0;
  last_span_end_ = nullptr;
  in_value_ = false;
  host_count_ = 0;
  cl_count_ = 0;
  decode_out_ = nullptr;
  scan_pos_ = nullptr;
  prev_cr_ = false;
}

Parser::Result Parser::Parse(const char* data, size_t len) {
  if (error_ != ParseError::kNone) return {Status::kError};
  if (message_done_) return {Status::kMessageDone};
  if (message_done_pending_) {
    message_done_pending_ = false;
    message_done_ = true;
    return {Status::kMessageDone};
  }
  const bool in_head = !head_done_;
  decode_out_ = const_cast<char*>(data);
  scan_pos_ = data;
  llhttp_resume(&llhttp_);
  llhttp_errno_t err = llhttp_execute(&llhttp_, data, len);
  Result r{Status::kNeedMore, len, 0};
  if (err == HPE_OK || err == HPE_PAUSED) {
    r.consumed = err == HPE_OK ? len : static_cast<size_t>(llhttp_get_error_pos(&llhttp_) - data);
    const bool message_done = err == HPE_PAUSED && !in_head;
    if (!in_head && head_.framing == Framing::kChunked &&
        (!ParserCallbacks::CheckFraming(this, data + r.consumed, false) ||
         (message_done && prev_cr_))) {
      error_ = ParseError::kMalformed;
      return {Status::kError};
    }
  }
  if (err == HPE_OK) {
    if (in_head && static_cast<size_t>(data + len - head_.base) >= limits_.max_header_bytes) {
      // The head is not complete yet, so it will be longer than what was consumed.
      error_ = ParseError::kHeaderTooLarge;
      return {Status::kError};
    }
  } else if (err == HPE_PAUSED && error_ == ParseError::kNone) {
    const char* pos = data + r.consumed;
    if (in_head) {
      head_.head_len = static_cast<uint32_t>(pos - head_.base);
      if (head_.head_len > limits_.max_header_bytes) {
        error_ = ParseError::kHeaderTooLarge;
        return {Status::kError};
      }
      if (ParseError e = ScanLineBreaks(head_.base, head_.head_len); e != ParseError::kNone) {
        error_ = e;
        return {Status::kError};
      }
      r.status = Status::kHeadDone;
      return r;  // a pending message completion is reported by the next call
    }
    message_done_pending_ = false;
    message_done_ = true;
    r.status = Status::kMessageDone;
  } else {
    if (error_ == ParseError::kNone) {
      error_ = ParserCallbacks::MapLlhttpError(this, err, data + len);
    }
    return {Status::kError};
  }
  if (decode_body_ && !in_head) r.decoded = static_cast<size_t>(decode_out_ - data);
  return r;
}

Parser::Result Parser::Finish() {
  if (error_ != ParseError::kNone) return {Status::kError};
  if (message_done_pending_) {
    message_done_pending_ = false;
    message_done_ = true;
    return {Status::kMessageDone};
  }
  if (message_done_) return {Status::kNeedMore};
  if (!head_done_) {
    // Nothing of a message seen (or only the blank lines llhttp skips): a clean close.
    if (llhttp_.finish == HTTP_FINISH_SAFE) return {Status::kNeedMore};
    error_ = ParseError::kMalformed;
    return {Status::kError};
  }
  if (head_.framing == Framing::kUntilClose) {
    message_done_ = true;
    return {Status::kMessageDone};
  }
  error_ = ParseError::kMalformed;  // truncated Content-Length or chunked body
  return {Status::kError};
}

}  // namespace l7px::http
