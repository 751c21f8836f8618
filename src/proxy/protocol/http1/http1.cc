// HTTP/1.1 toward clients (http1.h): requests parsed from the connection's input one at a time,
// responses and l7px's own answers written as HTTP/1.1 text.
#include "proxy/protocol/http1/http1.h"

#include <cstring>
#include <string_view>
#include <utility>

#include "base/reserve.h"
#include "http/rewrite.h"
#include "proxy/worker/loop.h"

namespace l7px::proxy::protocol {

Http1::~Http1() {
  for (Http1Exchange* x : free_) delete x;
}

Http1Exchange& Http1::Ensure(Connection& c) {
  if (c.session != nullptr) return *Of(c);
  Http1Exchange* x;
  if (!free_.empty()) {
    x = free_.back();
    free_.pop_back();
  } else {
    x = new Http1Exchange(loop_.request_limits_);
    // Room to park it too: ReleaseExchange never grows the free list mid-request.
    ReserveAtLeast(free_, ++made_);
    loop_.RegisterStream(x->stream);
  }
  loop_.EnsureInput(c);
  x->stream.conn = &c;
  x->head_len = 0;
  x->sending = x->send_wanted = false;
  x->req.Begin(c.in);
  c.session = x;
  return *x;
}

void Http1::ReleaseExchange(Connection& c) {
  Http1Exchange* x = Of(c);
  if (x == nullptr) return;
  loop_.ReleaseStream(x->stream);
  free_.push_back(x);
  c.session = nullptr;
  loop_.ReleaseInput(c);
}

void Http1::Release(Connection& c) { ReleaseExchange(c); }

// ------------------------------------------------------------------ input

void Http1::OnInput(Connection& c) {
  if (c.in == nullptr) return;
  switch (c.state) {
    case ConnState::kIdle:
    case ConnState::kReadingHead:
      ParseHead(c);
      return;
    case ConnState::kActive:
      break;
    default:
      return;
  }
  Stream& s = Of(c)->stream;
  switch (s.state) {
    case StreamState::kReadingBody:
      ReadBodyBeforeDispatch(c);
      break;
    case StreamState::kExchange:
      if (s.request.done || s.request.abandoned) break;
      // Parsed now, not when the slot can take it: a body that is complete before the client
      // half-closes is a complete request.
      if (!ScanBody(s)) break;
      if (!s.request.done && loop_.InputEnded(c)) {
        loop_.Close(c);  // half-closed inside the body: it will never complete
        break;
      }
      loop_.PumpRequestBody(s);
      break;
    case StreamState::kTunnel:
      loop_.PumpRequestBody(s);
      break;
    default:
      break;  // queued or answering: bytes wait in `in`
  }
}

void Http1::OnEof(Connection& c) {
  switch (c.state) {
    case ConnState::kIdle:
      // Between requests: a clean end, answered in kind (TLS: the client's close_notify gets
      // ours, as a client that waits for it expects).
      loop_.CloseGracefully(c);
      return;
    case ConnState::kReadingHead:
      // Truncated request, unless received bytes still wait for room in `in` (the checks
      // that consume them close once nothing more can come).
      if (loop_.InputEnded(c)) loop_.Close(c);
      return;
    case ConnState::kActive:
      break;
    default:
      return;
  }
  Stream& s = Of(c)->stream;
  switch (s.state) {
    case StreamState::kReadingBody:
      if (loop_.InputEnded(c)) loop_.Close(c);
      break;
    case StreamState::kQueued:
    case StreamState::kExchange:
      // A half-close is not a close: a complete request is still answered (and every complete
      // request pipelined behind it; FinishRequest closes once none is left).
      if (!s.request.done && loop_.InputEnded(c)) loop_.Close(c);  // the body will never end
      break;
    case StreamState::kTunnel:
      s.request.tunnel_client_eof = true;
      loop_.PumpRequestBody(s);  // forwards what is left, then passes the half-close on
      break;
    default:
      break;  // answering: FinishRequest goes on with what is buffered, then closes
  }
}

void Http1::ParseHead(Connection& c) {
  Http1Exchange& x = Ensure(c);
  Stream& s = x.stream;
  if (c.in_len == c.in_scan) return;
  if (c.state == ConnState::kIdle) {
    c.state = ConnState::kReadingHead;
    s.Reset(loop_.now_ns_);
    s.head = nullptr;
    loop_.request_limits_.max_body_bytes = loop_.limits_->max_body_bytes;
    x.req.set_limits(loop_.request_limits_);
    // The first request's head timer runs since the accept (Loop::OnAccept).
    if (!c.client.first_request) {
      loop_.TimerFor(loop_.limits_->header_timeout_ns).Start(&c.timer, loop_.now_ns_);
    }
  }
  const auto r = x.req.Parse(c.in + c.in_scan, c.in_len - c.in_scan);
  c.in_scan += static_cast<uint32_t>(r.consumed);
  switch (r.status) {
    case http::Parser::Status::kNeedMore:
      if (loop_.InputEnded(c)) loop_.Close(c);  // half-closed inside a request head: truncated
      return;
    case http::Parser::Status::kError:
      L7PX_LOG_LIMITED(kInfo, "client {}: bad request ({})", std::string_view(c.ip, c.ip_len),
                       http::ErrorName(x.req.error()));
      Answer(s, http::StatusForError(x.req.error()), /*close=*/true);
      return;
    case http::Parser::Status::kHeadDone:
    case http::Parser::Status::kMessageDone:
      x.head_len = c.in_scan;
      OnRequestHead(c);
      return;
  }
}

void Http1::OnRequestHead(Connection& c) {
  Http1Exchange& x = *Of(c);
  Stream& s = x.stream;
  TimerList::Unlink(&c.timer);
  Bump(loop_.stats_->requests);
  // A new request, and no exchange yet: both start from scratch (no slot drains here: a
  // connection whose slot still drains takes no next request).
  s.Reset(s.request.start_ns);  // start_ns: when its first byte arrived
  s.head = &x.req.head();
  c.state = ConnState::kActive;
  // Body bytes already here are parsed now, so we know whether the request is complete.
  if (!ScanBody(s)) return;
  if (!s.request.done && loop_.InputEnded(c)) {
    loop_.Close(c);  // half-closed inside the body: it will never complete
    return;
  }
  if (!s.request.done) loop_.StartBodyWindow(s);
  if (!loop_.RouteStream(s)) return;
  if (WaitForBody(s)) return;
  loop_.Dispatch(s);
}

bool Http1::WaitForBody(Stream& s) {
  if (BodyBuffered(s)) return false;
  const http::MessageHead& head = *s.head;
  const bool small = head.framing == http::Framing::kChunked ||
                     (head.framing == http::Framing::kContentLength &&
                      head.content_length <= loop_.limits_->body_buffer);
  if (!small) return false;
  s.state = StreamState::kReadingBody;
  // l7px asks for the body itself now; the service never sees the Expect (drop_expect).
  if (head.expect_continue && !head.is_http10()) SendContinue(s);
  return true;
}

bool Http1::BodyBuffered(const Stream& s) const {
  const Connection& c = *s.conn;
  return s.request.done || c.in_scan - Of(s).head_len >= loop_.limits_->body_buffer ||
         c.in_len == loop_.in_pool_.size();
}

void Http1::ReadBodyBeforeDispatch(Connection& c) {
  Stream& s = Of(c)->stream;
  if (!ScanBody(s)) return;
  if (BodyBuffered(s)) {
    loop_.Dispatch(s);
  } else if (loop_.InputEnded(c)) {
    loop_.Close(c);  // half-closed inside the body: it will never complete
  }
}

bool Http1::ScanBody(Stream& s) {
  if (s.request.done) return true;
  Connection& c = *s.conn;
  Http1Exchange& x = Of(s);
  // A chunked body is re-framed canonically in place (the parser's set_reframe_chunked).
  const auto r = x.req.ParseInPlace(c.in, &c.in_scan, &c.in_len);
  if (r.status == http::Parser::Status::kMessageDone) {
    s.request.done = true;
    TimerList::Unlink(&s.body_timer);
  }
  if (r.status == http::Parser::Status::kError) {
    L7PX_LOG_LIMITED(kInfo, "client {}: bad request body ({})", std::string_view(c.ip, c.ip_len),
                     http::ErrorName(x.req.error()));
    if (s.request.response_started) {
      loop_.Close(c);
    } else {
      Answer(s, http::StatusForError(x.req.error()), /*close=*/true);
    }
    return false;
  }
  return true;
}

bool Http1::RequestBody(Stream& s, iovec* body) {
  Connection& c = *s.conn;
  Http1Exchange& x = Of(s);
  if (s.state == StreamState::kTunnel) {
    c.in_scan = c.in_len;  // everything from the client is tunnel payload
  } else {
    if (!ScanBody(s)) return false;
    if (!s.request.done && loop_.InputEnded(c)) {
      loop_.Close(c);  // half-closed inside the body: it will never complete
      return false;
    }
  }
  *body = {c.in + x.head_len, c.in_scan - x.head_len};
  return true;
}

void Http1::RequestBodySent(Stream& s, uint32_t n) {
  Connection& c = *s.conn;
  const uint32_t head_len = Of(s).head_len;
  if (n > 0) {
    // Drop the sent body bytes, keeping the head (for the access log) in front.
    const uint32_t from = head_len + n;
    std::memmove(c.in + head_len, c.in + from, c.in_len - from);
    c.in_len -= n;
    c.in_scan -= n;
  }
  loop_.DrainPending(c);
}

void Http1::StartTunnel(Stream& s) {
  // Bytes after the upgrade request are the client's first tunnel bytes.
  Of(s).head_len = s.conn->in_scan;
}

// ------------------------------------------------------------------ output

void Http1::BodyWanted(Stream& s) {
  const http::MessageHead& req = *s.head;
  if (req.expect_continue && !s.request.done && !req.is_http10() && !s.request.continue_sent) {
    SendContinue(s);
  }
}

void Http1::SendContinue(Stream& s) {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  s.request.continue_sent = true;
  loop_.StartBodyWindow(s);  // the client was told to wait for this: its body pace counts now
  std::memcpy(s.out, kContinue.data(), kContinue.size());
  s.out_len = static_cast<uint32_t>(kContinue.size());
  s.out_sent = 0;
  s.upstream.interim_pending = true;
  SendHead(s);
}

bool Http1::StartResponse(Stream& s) {
  Connection& c = *s.conn;
  const http::MessageHead& head = s.resp.head();
  const http::MessageHead& req = *s.head;
  // The service answered before reading the whole request: the rest of it would be read as
  // the next request.
  if (s.request.abandoned) c.client.close_after = true;
  if (!req.keep_alive || head.framing == http::Framing::kUntilClose) c.client.close_after = true;
  s.upstream.decode_body = req.is_http10() && head.framing == http::Framing::kChunked;
  if (s.upstream.decode_body) c.client.close_after = true;
  if (DrainWantsClose(c) || ClientDoneAfterThis(c)) c.client.close_after = true;
  http::ClientResponseContext ctx;
  ctx.close = c.client.close_after;
  ctx.http10_client = req.is_http10();
  ctx.decode_body = s.upstream.decode_body;
  s.out_len = static_cast<uint32_t>(
      http::WriteClientResponseHead(head, ctx, s.out, loop_.out_pool_.size()));
  s.out_sent = 0;
  return s.out_len != 0;
}

bool Http1::WriteInterim(Stream& s) {
  if (s.head->is_http10()) return false;  // HTTP/1.0 has no interim responses
  http::ClientResponseContext ctx;
  s.out_len = static_cast<uint32_t>(
      http::WriteClientResponseHead(s.resp.head(), ctx, s.out, loop_.out_pool_.size()));
  s.out_sent = 0;
  return true;
}

void Http1::SendResponse(Stream& s) { SendHead(s); }

void Http1::SendHead(Stream& s) {
  Connection& c = *s.conn;
  Http1Exchange& x = Of(s);
  if (c.client.send_busy) {
    if (!x.sending) x.send_wanted = true;  // a transport flush: go on after it
    return;
  }
  x.send_wanted = false;
  const uint32_t head_left = s.out_len - s.out_sent;
  if (head_left == 0 && s.fwd_len == 0) {
    AfterSent(c);
    return;
  }
  // A small body goes out in the head's buffer: one plain send instead of a two-part sendmsg
  // (OnSent counts it as head bytes, which is what it now is).
  if (head_left > 0 && s.fwd_len > 0 && s.fwd_len <= kCoalesceBodyBytes &&
      loop_.out_pool_.size() - s.out_len >= s.fwd_len) {
    std::memcpy(s.out + s.out_len, s.resp_buf + s.fwd_off, s.fwd_len);
    s.out_len += s.fwd_len;
    s.fwd_off += s.fwd_len;
    s.fwd_len = 0;
  }
  x.sending = true;
  // No response body bytes: no response buffer either, for l7px's own answers.
  loop_.SendToClient(c, {s.out + s.out_sent, s.out_len - s.out_sent},
                     {s.fwd_len > 0 ? s.resp_buf + s.fwd_off : nullptr, s.fwd_len});
  if (c.state == ConnState::kClosing) return;
  // While l7px waits for the client to take bytes, the client's pace is what is timed
  // (send_timeout), not the service's silence: a slow reader is not blamed on the service.
  if (s.state == StreamState::kExchange || s.state == StreamState::kAnswering) {
    TimerList::Unlink(&s.timer);
    loop_.TimerFor(loop_.limits_->send_timeout_ns).Start(&c.timer, loop_.now_ns_);
  }
  if (!s.upstream.interim_pending) s.request.response_started = true;
}

void Http1::OnSent(Connection& c, uint32_t plaintext) {
  Http1Exchange* x = Of(c);
  if (x == nullptr) return;
  if (!x->sending) {  // the transport's own bytes went out
    Stream& s = x->stream;
    if (x->send_wanted) {
      SendHead(s);
    } else if (s.upstream.parse_deferred) {
      s.upstream.parse_deferred = false;
      loop_.ContinueResponse(s);  // slot bytes that came meanwhile
    }
    return;
  }
  x->sending = false;
  Stream& s = x->stream;
  s.request.bytes_out += plaintext;
  uint32_t n = plaintext;
  const uint32_t head_part = std::min(n, s.out_len - s.out_sent);
  s.out_sent += head_part;
  n -= head_part;
  s.fwd_off += n;
  s.fwd_len -= n;
  SendHead(s);  // the rest, or AfterSent
}

void Http1::AfterSent(Connection& c) {
  Stream& s = Of(c)->stream;
  s.out_len = s.out_sent = 0;
  TimerList::Unlink(&c.timer);  // the send timeout
  if (s.state == StreamState::kAnswering) {
    FinishRequest(c);
    return;
  }
  loop_.ResponseSent(s);
}

void Http1::EndTunnelOutput(Stream& s) { ::shutdown(s.conn->fd.get(), SHUT_WR); }

void Http1::Answer(Stream& s, int status, bool close) {
  Connection& c = *s.conn;
  loop_.CancelStream(s);  // off the queue, its slot killed
  // A response read ahead but not begun (a malformed body): its buffers go; nothing of them is
  // being sent (an answer comes only before any response byte went out).
  loop_.DropReadAhead(s);
  if (s.upstream.slot != nullptr) close = true;  // still draining its ops: no next request here
  loop_.EnsureStreamBuffers(s);
  if (!s.request.done) close = true;  // unread body bytes would be taken for the next request
  // The request's own connection semantics hold for l7px's answers too: after a request that
  // said Connection: close (or an HTTP/1.0 one without keep-alive) nothing pipelined behind
  // it is executed.
  const bool have_head = s.head != nullptr;
  if (have_head && !s.head->keep_alive) close = true;
  c.client.close_after |= close || DrainWantsClose(c) || ClientDoneAfterThis(c);
  s.request.status = status;
  s.state = StreamState::kAnswering;
  c.state = ConnState::kActive;
  TimerList::Unlink(&c.timer);
  // An interim response (100 Continue) may still be going out: the answer follows it.
  const uint32_t at = c.client.send_busy ? s.out_len : 0;
  const size_t n = http::WriteErrorResponse(status, c.client.close_after, status == 503 ? 1 : 0,
                                            s.out + at, loop_.out_pool_.size() - at);
  s.out_len = at + static_cast<uint32_t>(
                       have_head && s.head->is_head_request ? HeadLength(s.out + at, n) : n);
  if (!c.client.send_busy) s.out_sent = 0;
  s.fwd_off = s.fwd_len = 0;
  SendHead(s);
}

void Http1::Abort(Stream& s) { loop_.Close(*s.conn); }

void Http1::Finish(Stream& s) {
  // The slot still drains its operations: this connection takes no next request.
  if (s.upstream.slot != nullptr) s.conn->client.close_after = true;
  FinishRequest(*s.conn);
}

void Http1::FinishRequest(Connection& c) {
  Http1Exchange& x = *Of(c);
  Stream& s = x.stream;
  TimerList::Unlink(&s.body_timer);
  loop_.LogRequest(s);
  if (c.client.close_after || ClientDoneAfterThis(c)) {
    loop_.CloseGracefully(c);  // a complete response: TLS says so with close_notify
    return;
  }
  // Pipelined bytes of the next request move to the front of `in`.
  const uint32_t rest = c.in_len - c.in_scan;
  std::memmove(c.in, c.in + c.in_scan, rest);
  c.in_len = rest;
  c.in_scan = 0;
  x.head_len = 0;
  x.req.Begin(c.in);
  s.request.pool = nullptr;
  s.state = StreamState::kNone;
  s.head = nullptr;
  c.state = ConnState::kIdle;
  c.client.first_request = false;
  loop_.DrainPending(c);
  if (c.in_len == 0 && !loop_.InputWaiting(c)) {
    ReleaseExchange(c);
    loop_.IdleTimer().Start(&c.timer, loop_.now_ns_);
    return;
  }
  OnInput(c);
}

void Http1::OnTimeout(Connection& c) {
  switch (c.state) {
    case ConnState::kIdle:
      // keepalive_timeout (or the handshake's); a second expiry while the closing bytes wait
      // for the client ends it for good.
      if (c.client.handshaking) {
        c.transport->HandshakeTimedOut();
        L7PX_LOG_LIMITED(kInfo, "client {}: handshake not done within handshake_timeout; closed",
                         std::string_view(c.ip, c.ip_len));
      }
      if (c.client.transport_failed) {
        loop_.Close(c);
      } else {
        loop_.CloseGracefully(c);
      }
      return;
    case ConnState::kReadingHead:
      L7PX_LOG_LIMITED(kInfo, "client {}: header_timeout", std::string_view(c.ip, c.ip_len));
      Answer(Ensure(c).stream, 408, /*close=*/true);
      return;
    case ConnState::kActive:
      break;
    default:
      return;
  }
  // The send timeout: the client stopped taking what l7px sends.
  const Stream& s = Of(c)->stream;
  if (s.state == StreamState::kAnswering) {
    L7PX_LOG_LIMITED(kInfo, "client {}: not reading l7px's answer past send_timeout; closed",
                     std::string_view(c.ip, c.ip_len));
  } else {
    Bump(loop_.stats_->send_timeouts);
    L7PX_LOG_LIMITED(kInfo,
                     "client {}: not reading the response of pool {} past send_timeout ({} "
                     "bytes sent); closed",
                     std::string_view(c.ip, c.ip_len),
                     s.request.pool != nullptr ? s.request.pool->name() : "-", s.request.bytes_out);
  }
  loop_.Close(c);
}

void Http1::OnClose(Connection& c) { loop_.EndStreamOnClose(Of(c)->stream); }

bool Http1::DrainWantsClose(const Connection& c) const {
  if (!loop_.draining_) return false;
  const bool more_buffered = Worker::Loop::InputWaiting(c) || c.in_len > c.in_scan;
  return !more_buffered;
}

bool Http1::ClientDoneAfterThis(const Connection& c) const {
  if (!c.client.eof) return false;
  return !Worker::Loop::InputWaiting(c) && c.in_len == c.in_scan;
}

size_t Http1::HeadLength(const char* response, size_t len) {
  const std::string_view r(response, len);
  const size_t end = r.find("\r\n\r\n");
  return end == std::string_view::npos ? len : end + 4;
}

}  // namespace l7px::proxy::protocol
