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
// - Callbacks after head_done_ never touch head_.
// - llhttp's default (non-strict) build takes any byte after a CR as the LF. So the head is
//   re-scanned once complete: CR and LF appear only as CRLF pairs.
// - llhttp never sees a chunked body: Transfer-Encoding is read here (a list, RFC 9110 5.6.1;
//   llhttp's lenient-TE flag keeps it from refusing valid lists such as "chunked ,"), llhttp stays
//   paused after a chunked head, and ChunkedDecoder parses the body. Begin() re-initialises
//   llhttp for the next message.
#include "http/parser.h"

#include <cstring>
#include <limits>

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

  // The head outgrew max_header_bytes: a request whose target is still being read gets 414
  // (RFC 9110 15.5.15), like nginx, whatever the configured target limit; others 431.
  static ParseError HeadTooLarge(const Parser* self) {
    const bool in_target =
        self->kind_ == Parser::Kind::kRequest && !self->target_done_ && self->head_.target.len > 0;
    return in_target ? ParseError::kUriTooLong : ParseError::kHeaderTooLarge;
  }

  // Common checks for a span of the head; extends `span` (or starts it when empty).
  static int HeadSpan(Parser* self, Span* span, const char* at, size_t len) {
    if (len == 0) return 0;
    const char* base = self->head_.base;
    if (static_cast<size_t>(at + len - base) > self->limits_.max_header_bytes) {
      return Fail(self, HeadTooLarge(self));
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
    if (len > 0 &&
        static_cast<size_t>(at + len - self->head_.base) > self->limits_.max_header_bytes) {
      return Fail(self, ParseError::kUriTooLong);  // the target is what overflows the head
    }
    return HeadSpan(self, &self->head_.target, at, len);
  }

  static int OnUrlComplete(llhttp_t* p) {
    Self(p)->target_done_ = true;
    return 0;
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

  // A transfer-coding (RFC 9112 7): token *( OWS ";" OWS token "=" ( token / quoted-string ) ),
  // already trimmed of OWS.
  static bool IsTransferCoding(std::string_view e) {
    size_t i = 0;
    auto token = [&] {
      const size_t start = i;
      while (i < e.size() && IsTokenChar(e[i])) ++i;
      return i > start;
    };
    auto ows = [&] {
      while (i < e.size() && IsBlank(e[i])) ++i;
    };
    if (!token()) return false;
    while (true) {
      ows();
      if (i == e.size()) return true;
      if (e[i] != ';') return false;
      ++i;
      ows();
      if (!token() || i == e.size() || e[i] != '=') return false;
      ++i;
      if (i < e.size() && e[i] == '"') {
        for (++i; i < e.size() && e[i] != '"'; ++i) {
          if (e[i] == '\\') ++i;
        }
        if (i >= e.size()) return false;
        ++i;
      } else if (!token()) {
        return false;
      }
    }
  }

  // Transfer-Encoding, all its field lines read as one list (RFC 9110 5.6.1: OWS around
  // elements, empty elements ignored). True when the codings end in chunked (RFC 9112 6.3) and
  // chunked is that last one only, bare. A field line with no coding at all ("", ", ,") is
  // refused rather than skipped: a recipient that reads it as "no Transfer-Encoding" would take
  // the body for the next request.
  static bool EndsInChunked(const MessageHead& h) {
    bool chunked_last = false;
    for (int i = 0; i < h.header_count; ++i) {
      if (h.Kind(i) != HeaderKind::kTransferEncoding) continue;
      std::string_view list = h.Value(i);
      bool field_has_coding = false;
      while (true) {
        const size_t comma = list.find(',');
        const std::string_view coding = TrimOws(list.substr(0, comma));
        if (!coding.empty()) {
          if (chunked_last || !IsTransferCoding(coding)) return false;  // chunked not last
          chunked_last = EqualsIgnoreCase(coding, "chunked");
          field_has_coding = true;
        }
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
      if (!field_has_coding) return false;
    }
    return chunked_last;
  }

  // Body framing from Transfer-Encoding / Content-Length, one rule set for both directions
  // (RFC 9112 6.1, 6.3): a TE must end in chunked, never comes with a CL, and means faulty
  // framing in HTTP/1.0. Leaves kNone when neither field is present.
  static ParseError ReadBodyFraming(MessageHead& h, llhttp_t* p) {
    if (h.Has(HeaderKind::kTransferEncoding)) {
      if (h.is_http10() || h.Has(HeaderKind::kContentLength) || !EndsInChunked(h)) {
        return ParseError::kAmbiguousFraming;
      }
      h.framing = Framing::kChunked;
      // llhttp's own reading of the list may differ ("chunked ,"): its keep-alive answer must
      // not expect a close-delimited body.
      p->flags |= F_CHUNKED;
    } else if (p->flags & F_CONTENT_LENGTH) {
      h.content_length = p->content_length;
      h.framing = h.content_length > 0 ? Framing::kContentLength : Framing::kNone;
    }
    return ParseError::kNone;
  }

  // OPTIONS and TRACE (RFC 9110 7.6.2): at most one Max-Forwards field, 1*DIGIT.
  static ParseError ReadMaxForwards(MessageHead& h) {
    for (int i = 0; i < h.header_count; ++i) {
      if (!EqualsIgnoreCase(h.Name(i), "max-forwards")) continue;
      if (h.max_forwards_index >= 0) return ParseError::kMalformed;
      const std::string_view v = h.Value(i);
      if (v.empty()) return ParseError::kMalformed;
      uint64_t n = 0;
      for (char c : v) {
        if (c < '0' || c > '9') return ParseError::kMalformed;
        const uint64_t d = static_cast<uint64_t>(c - '0');
        n = n > (UINT64_MAX - d) / 10 ? UINT64_MAX : n * 10 + d;
      }
      h.max_forwards_index = static_cast<int16_t>(i);
      h.max_forwards = n;
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
    if (p->method == HTTP_OPTIONS || p->method == HTTP_TRACE) {
      if (ParseError e = ReadMaxForwards(h); e != ParseError::kNone) return e;
    }
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
    if (!h.Has(HeaderKind::kTransferEncoding) && !(p->flags & F_CONTENT_LENGTH)) {
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

  // Content-Length and close-delimited bodies (ChunkedDecoder reads chunked ones).
  static int OnBody(llhttp_t* p, const char* at, size_t len) {
    Parser* self = Self(p);
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
      s.on_url_complete = OnUrlComplete;
      s.on_status = OnStatus;
      s.on_version = OnVersion;
      s.on_header_field = OnHeaderField;
      s.on_header_value = OnHeaderValue;
      s.on_headers_complete = OnHeadersComplete;
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
  // Transfer-Encoding is judged in ReadBodyFraming (as a list): llhttp's strict check would
  // refuse valid lists such as "chunked ,". Responses are lenient there already.
  llhttp_set_lenient_transfer_encoding(&llhttp_, 1);
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
  target_done_ = false;
  host_count_ = 0;
  cl_count_ = 0;
  decode_out_ = nullptr;
  chunked_started_ = false;
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
  if (!in_head && head_.framing == Framing::kChunked) return ParseChunked(data, len);
  decode_out_ = const_cast<char*>(data);
  llhttp_resume(&llhttp_);
  llhttp_errno_t err = llhttp_execute(&llhttp_, data, len);
  Result r{Status::kNeedMore, len, 0};
  if (err == HPE_PAUSED) {
    r.consumed = static_cast<size_t>(llhttp_get_error_pos(&llhttp_) - data);
  }
  if (err == HPE_OK) {
    if (in_head && static_cast<size_t>(data + len - head_.base) >= limits_.max_header_bytes) {
      // The head is not complete yet, so it will be longer than what was consumed.
      error_ = ParserCallbacks::HeadTooLarge(this);
      return {Status::kError};
    }
  } else if (err == HPE_PAUSED && error_ == ParseError::kNone) {
    const char* pos = data + r.consumed;
    if (in_head) {
      head_.head_len = static_cast<uint32_t>(pos - head_.base);
      if (head_.head_len > limits_.max_header_bytes) {
        error_ = ParserCallbacks::HeadTooLarge(this);
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

Parser::Result Parser::ParseChunked(const char* data, size_t len) {
  if (!chunked_started_) {
    const uint64_t max_body =
        kind_ == Kind::kRequest ? limits_.max_body_bytes : std::numeric_limits<uint64_t>::max();
    chunked_.Reset(max_body, limits_.max_header_bytes);
    chunked_started_ = true;
  }
  using Mode = ChunkedDecoder::Mode;
  const Mode mode = decode_body_ ? Mode::kDecode : reframe_chunked_ ? Mode::kReframe : Mode::kRaw;
  // Decode and reframe write into the input, which the caller owns (as with decode_out_).
  const ChunkedDecoder::Result c = chunked_.Decode(const_cast<char*>(data), len, mode);
  body_bytes_ = chunked_.body_bytes();
  switch (c.status) {
    case ChunkedDecoder::Status::kError:
      error_ = chunked_.error();
      return {Status::kError};
    case ChunkedDecoder::Status::kDone:
      message_done_ = true;
      return {Status::kMessageDone, c.consumed, c.out};
    case ChunkedDecoder::Status::kNeedMore:
      break;
  }
  return {Status::kNeedMore, c.consumed, c.out};
}

Parser::Result Parser::ParseInPlace(char* buf, uint32_t* scan, uint32_t* len) {
  const bool reframing = reframe_chunked_ && !decode_body_ && head_done_ && !message_done_ &&
                         !message_done_pending_ && head_.framing == Framing::kChunked;
  const Result r = Parse(buf + *scan, *len - *scan);
  if (r.status == Status::kError) return r;
  if (!reframing) {
    *scan += static_cast<uint32_t>(r.consumed);
    return r;
  }
  // [*scan, +decoded) is the re-framed body, [+decoded, +consumed) what the re-framing removed,
  // and the rest is unparsed: close the gap.
  const uint32_t to = *scan + static_cast<uint32_t>(r.decoded);
  const uint32_t from = *scan + static_cast<uint32_t>(r.consumed);
  if (from != to) {
    std::memmove(buf + to, buf + from, *len - from);
    *len -= from - to;
  }
  *scan = to;
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
