// Worker::Loop, part of loop.h: the exchange of a stream with a slot: the lease-time look,
// request out, response in, tunnels, failures. Client-facing framing is the protocol's
// (c.protocol); this file never writes to a client.
#include "proxy/worker/loop.h"
#include "slots/instance_health.h"

namespace l7px::proxy {

void Worker::Loop::StartExchange(Stream& s, slots::Slot* slot) {
  s.state = StreamState::kExchange;
  s.upstream = SlotSide{};  // a new attempt (the previous slot, if any, has drained)
  s.upstream.slot = slot;
  const std::string& service = slot->service_id();
  s.request.service_len = static_cast<uint8_t>(std::min(service.size(), sizeof(s.request.service)));
  std::memcpy(s.request.service, service.data(), s.request.service_len);
  ++s.request.attempts;
  s.aux_sent = 0;
  s.body_in_flight = 0;
  s.resp_len = s.resp_scan = 0;
  s.out_len = s.out_sent = 0;
  s.fwd_off = s.fwd_len = 0;
  if (s.resp_buf == nullptr) s.resp_buf = resp_pool_.Get();
  s.resp.Begin(s.resp_buf);
  s.resp.set_head_request(s.head->is_head_request);
  s.resp.set_decode_body(false);
  TimeService(s);
  if (!s.request.done && s.request.queue_wait_ns > 0) StartBodyWindow(s);  // the wait did not count
  ProbeSlot(s);
}

void Worker::Loop::ProbeSlot(Stream& s) {
  AckSlotNow(s);
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_recv(sqe, s.upstream.slot->fd(), s.resp_buf, resp_pool_.size(), MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, TagOf(kOpSlotProbe, s));
  s.upstream.recv_busy = s.upstream.probing = true;
  SlotOpStarted(s);
}

void Worker::Loop::OnSlotProbed(Stream& s, int res) {
  s.upstream.recv_busy = s.upstream.probing = false;
  if (s.conn->state == ConnState::kClosing || s.upstream.dead) return;
  if (res == -EAGAIN || res == -EWOULDBLOCK) {
    SendRequest(s);
    return;
  }
  // Stray bytes, or the slot closed or failed while idle: nothing was sent on it, so the
  // request goes to another slot (or waits) whatever its method, without spending a retry.
  if (res > 0) {
    Bump(stats_->stray_slots);
    L7PX_LOG_LIMITED(kWarn,
                     "pool {}: service {} sent {} bytes on a slot before it was sent a request: "
                     "protocol violation; slot closed, request sent elsewhere",
                     s.request.pool->name(), s.upstream.slot->service_id(), res);
  } else {
    L7PX_LOG_LIMITED(kInfo, "pool {}: slot of {} {} while idle; request sent elsewhere",
                     s.request.pool->name(), s.upstream.slot->service_id(),
                     res == 0 ? "closed" : strerror(-res));
  }
  --s.request.attempts;
  s.upstream.retry_pending = true;  // RetireSlot re-dispatches once the slot's ops drained
  KillSlot(s);
}

void Worker::Loop::SendRequest(Stream& s) {
  SendToSlot(s);
  if (s.conn->state == ConnState::kClosing || s.state != StreamState::kExchange) return;
  ArmSlotRecv(s, /*expect_wait=*/true);
  if (!s.request.done) s.conn->protocol->BodyWanted(s);  // the request has a slot now
}

void Worker::Loop::PumpRequestBody(Stream& s) {
  if (s.state == StreamState::kTunnel) {
    if (s.upstream.send_busy || s.upstream.dead) return;
    TimeTunnel(s);               // client bytes (or its half-close) arrived
    s.aux_len = s.aux_sent = 0;  // everything from the client is tunnel payload
    SendToSlot(s);
    if (!s.upstream.send_busy) MaybeShutdownTunnelToSlot(s);
    return;
  }
  SendToSlot(s);
}

void Worker::Loop::SendToSlot(Stream& s) {
  if (s.upstream.slot == nullptr || s.upstream.send_busy || s.upstream.probing || s.upstream.dead ||
      s.request.abandoned) {
    return;
  }
  iovec body;
  if (!s.conn->protocol->RequestBody(s, &body)) return;  // answered, or the connection closed
  const uint32_t head_left = s.aux_len - s.aux_sent;
  if (head_left == 0 && body.iov_len == 0) {
    if (s.request.done && !s.request.sent && s.state == StreamState::kExchange) {
      s.request.sent = true;
      MaybeFinishExchange(s);
    }
    return;
  }
  s.slot_iov[0] = {s.aux + s.aux_sent, head_left};
  s.slot_iov[1] = body;
  s.body_in_flight = static_cast<uint32_t>(body.iov_len);
  PrepSend(s.upstream.slot->fd(), s.slot_iov, &s.slot_msg, TagOf(kOpSlotSend, s));
  s.upstream.send_busy = true;
  SlotOpStarted(s);
}

void Worker::Loop::OnSlotSent(Stream& s, int res) {
  s.upstream.send_busy = false;
  if (s.conn->state == ConnState::kClosing || s.upstream.dead) return;
  if (res < 0) {
    OnSlotFailure(s, res);
    return;
  }
  uint32_t n = static_cast<uint32_t>(res);
  const uint32_t head_part = std::min(n, s.aux_len - s.aux_sent);
  s.aux_sent += head_part;
  n -= head_part;
  s.request.bytes_in += n;
  s.body_in_flight = 0;
  s.conn->protocol->RequestBodySent(s, n);
  if (s.conn->state == ConnState::kClosing) return;
  if (s.request.abandoned) {
    MaybeFinishExchange(s);
    return;
  }
  PumpRequestBody(s);
}

void Worker::Loop::AckSlotNow(Stream& s) {
  if (!ack_before_probe_ || !s.upstream.slot->tcp()) return;
  static constexpr int kOne = 1;
  io_uring_sqe* ack = ring_.Sqe();
  io::PrepSetSockOptInt(ack, s.upstream.slot->fd(), IPPROTO_TCP, TCP_QUICKACK, &kOne);
  ack->flags |= IOSQE_CQE_SKIP_SUCCESS;  // only a failure completes
  io_uring_sqe_set_data64(ack, io::Tag{kOpSlotAck, 0, 0}.Pack());
}

void Worker::Loop::ArmSlotRecv(Stream& s, bool expect_wait) {
  if (s.upstream.recv_busy || s.upstream.dead) return;
  // Part of a response is here and l7px reads on: acknowledge what came at once (see AckSlotNow).
  if (!expect_wait && s.state == StreamState::kExchange) AckSlotNow(s);
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_recv(sqe, s.upstream.slot->fd(), s.resp_buf + s.resp_len,
                     resp_pool_.size() - s.resp_len, 0);
  if (expect_wait) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  io_uring_sqe_set_data64(sqe, TagOf(kOpSlotRecv, s));
  s.upstream.recv_busy = true;
  SlotOpStarted(s);
}

void Worker::Loop::OnSlotRecv(Stream& s, int res) {
  s.upstream.recv_busy = false;
  if (s.state == StreamState::kDraining && !s.upstream.dead) {
    if (res <= 0) {
      // A close-delimited body ends with the close; anything else failed. Either way the
      // slot is gone, and the service is no longer working on the request.
      EndDrain(s);
      return;
    }
    s.resp_len += static_cast<uint32_t>(res);
    TimeService(s);
    DrainSlot(s);
    return;
  }
  if (s.conn->state == ConnState::kClosing || s.upstream.dead) return;
  if (s.ahead.on) {
    OnAheadRecv(s, res);
    return;
  }
  if (res <= 0) {
    if (s.state == StreamState::kTunnel) {
      if (res < 0) {
        s.conn->protocol->Abort(s);
        return;
      }
      // The service half-closed: everything it sent before went out already (the slot is
      // read only once the client send is done), so the client is told now. The other
      // direction goes on until the client half-closes too.
      s.request.tunnel_slot_eof = true;
      s.conn->protocol->EndTunnelOutput(s);
      MaybeEndTunnel(s);
      return;
    }
    if (res == 0 && !s.upstream.done && s.resp.head_done() &&
        s.resp.head().framing == http::Framing::kUntilClose) {
      // A close-delimited body ends here.
      s.upstream.unusable = true;
      const auto r = s.resp.Finish();
      if (r.status == http::Parser::Status::kMessageDone) {
        s.upstream.done = true;
        s.conn->protocol->SendResponse(s);
        return;
      }
    }
    OnSlotFailure(s, res);
    return;
  }
  s.resp_len += static_cast<uint32_t>(res);
  if (s.state == StreamState::kTunnel) {
    TimeTunnel(s);  // service bytes arrived
    s.fwd_off = 0;
    s.fwd_len = s.resp_len;
    s.conn->protocol->SendResponse(s);
    return;
  }
  TimeService(s);  // silence, per read
  // An interim response (or l7px's 100 Continue) is going out: parsed after it (ResponseSent).
  // Or the transport's own bytes are: parsed once they went out (the protocol's OnSent).
  if (s.conn->client.send_busy) {
    s.upstream.parse_deferred = true;
    return;
  }
  ProcessResponse(s);
}

void Worker::Loop::ProcessResponse(Stream& s) {
  if (!s.upstream.head_done) {
    const auto r = s.resp.Parse(s.resp_buf + s.resp_scan, s.resp_len - s.resp_scan);
    s.resp_scan += static_cast<uint32_t>(r.consumed);
    if (r.status == http::Parser::Status::kNeedMore) {
      if (s.resp_len == resp_pool_.size()) {
        BadResponse(s, "response head too large");
      } else {
        ArmSlotRecv(s);
      }
      return;
    }
    if (r.status == http::Parser::Status::kError) {
      BadResponse(s, http::ErrorName(s.resp.error()));
      return;
    }
    const http::MessageHead& head = s.resp.head();
    if (head.status < 200 && head.status != 101) {
      ForwardInterim(s);
      return;
    }
    s.upstream.head_done = true;
    s.request.status = head.status;
    if (head.status == 101 && !s.head->upgrade) {
      BadResponse(s, "101 without an upgrade request");
      return;
    }
    if (!s.request.sent && head.status != 101) {
      // The service answered before reading the whole request: stop sending it; the slot
      // cannot be reused afterwards (nor, for HTTP/1.1, the client connection).
      s.request.abandoned = true;
      TimerList::Unlink(&s.body_timer);  // the rest of the body no longer matters
    }
    if (!s.conn->protocol->StartResponse(s)) {
      BadResponse(s, "response head too large");
      return;
    }
    s.resp.set_decode_body(s.upstream.decode_body);
    if (ReadAheadFits(s)) {
      StartReadAhead(s);
      return;
    }
    if (head.status == 101) {
      // Out of the pool's counts now, before the 101 reaches the client: an SDK dials the
      // replacement as soon as it wrote the 101, and its registration must find room.
      slots::AccountLeasedSlotTunneled(*s.request.pool, *s.upstream.slot);
      s.upstream.tunnel = true;
      s.upstream.done = true;
      s.fwd_off = s.resp_scan;
      s.fwd_len = s.resp_len - s.resp_scan;  // tunnel bytes that came with the 101
      s.conn->protocol->SendResponse(s);
      return;
    }
  }
  // Body bytes.
  s.fwd_off = s.resp_scan;
  s.fwd_len = 0;
  if (!s.upstream.done) {
    const auto r = s.resp.Parse(s.resp_buf + s.resp_scan, s.resp_len - s.resp_scan);
    if (r.status == http::Parser::Status::kError) {
      if (s.request.response_started || s.out_len == 0) {
        L7PX_LOG_LIMITED(kWarn, "pool {}: malformed response body from {} ({})",
                         s.request.pool->name(), s.upstream.slot->service_id(),
                         http::ErrorName(s.resp.error()));
        s.conn->protocol->Abort(s);
      } else {
        BadResponse(s, http::ErrorName(s.resp.error()));
      }
      return;
    }
    s.fwd_len = static_cast<uint32_t>(s.upstream.decode_body ? r.decoded : r.consumed);
    s.resp_scan += static_cast<uint32_t>(r.consumed);
    if (r.status == http::Parser::Status::kMessageDone) {
      s.upstream.done = true;
      if (s.resp_scan < s.resp_len) s.upstream.unusable = true;  // bytes beyond the response
    }
  }
  s.conn->protocol->SendResponse(s);
}

void Worker::Loop::NextResponseHead(Stream& s) {
  const uint32_t rest = s.resp_len - s.resp_scan;
  std::memmove(s.resp_buf, s.resp_buf + s.resp_scan, rest);
  s.resp_len = rest;
  s.resp_scan = 0;
  s.resp.Begin(s.resp_buf);
  s.resp.set_head_request(s.head->is_head_request);
}

void Worker::Loop::ForwardInterim(Stream& s) {
  if (++s.upstream.interim_count > kMaxInterimResponses) {
    BadResponse(s, "more than 16 interim (1xx) responses");
    return;
  }
  const bool forwarded = s.conn->protocol->WriteInterim(s);
  NextResponseHead(s);
  if (forwarded && s.out_len > 0) {
    s.upstream.interim_pending = true;
    s.fwd_len = 0;
    s.conn->protocol->SendResponse(s);
  } else {
    ContinueResponse(s);
  }
}

void Worker::Loop::ContinueResponse(Stream& s) {
  if (s.resp_len > s.resp_scan) {
    ProcessResponse(s);
  } else if (!s.upstream.recv_busy) {
    s.resp_len = s.resp_scan = 0;
    ArmSlotRecv(s);
  }
}

void Worker::Loop::ResponseSent(Stream& s) {
  if (s.ahead.on && s.state == StreamState::kExchange) {
    AheadSent(s);
    return;
  }
  const bool interim = std::exchange(s.upstream.interim_pending, false);
  s.upstream.parse_deferred = false;  // ContinueResponse below parses what waits
  switch (s.state) {
    case StreamState::kTunnel:
      s.resp_len = s.resp_scan = 0;
      ArmSlotRecv(s);
      return;
    case StreamState::kExchange:
      TimeService(s);  // the client took everything: the service's silence is timed again
      break;
    default:
      return;
  }
  if (interim) {
    ContinueResponse(s);
    return;
  }
  if (s.request.status == 101) {
    StartTunnel(s);
    return;
  }
  if (!s.upstream.done) {
    s.resp_len = s.resp_scan = 0;  // the body phase consumed everything
    ArmSlotRecv(s);
    return;
  }
  MaybeFinishExchange(s);
}

void Worker::Loop::MaybeFinishExchange(Stream& s) {
  if (s.state != StreamState::kExchange || !s.upstream.done) return;
  if (s.out_len != 0 || s.fwd_len != 0) return;  // the client has not taken all of it yet
  if (s.ahead.on && (s.ahead.sending || s.ahead.sent < s.ahead.end)) return;
  if (!s.request.sent && !s.request.abandoned) return;
  FinishExchange(s);
}

void Worker::Loop::FinishExchange(Stream& s) {
  TimerList::Unlink(&s.timer);
  ReleaseUpstream(s);
  DropReadAhead(s);
  s.conn->protocol->Finish(s);
}

void Worker::Loop::ReleaseUpstream(Stream& s) {
  if (s.upstream.released) return;
  s.upstream.released = true;
  Bump(stats_->pools.For(s.request.pool->id()).served);
  slots::ReportResponse(*s.request.pool, s.upstream.slot, s.request.status, now_ns_);
  TimerList::Unlink(&s.timer);
  const http::MessageHead& resp = s.resp.head();
  const bool reusable = !s.request.abandoned && !s.upstream.unusable && resp.keep_alive &&
                        s.request.sent && !s.upstream.send_busy && !s.upstream.recv_busy;
  if (reusable) {
    slots::Slot* slot = s.upstream.slot;
    s.upstream.slot = nullptr;
    ReleaseSlot(*s.request.pool, slot);
  } else {
    KillSlot(s);  // s.upstream.slot stays set while its operations drain
  }
}

void Worker::Loop::EndStreamOnClose(Stream& s) {
  // A request cut short (the client went away, or its response was aborted mid-body) still gets
  // its access-log line: the status sent with the bytes that went out, or 499 when nothing did.
  // A tunnel's line is written when it ends (EndTunnel).
  if (s.head != nullptr && s.state != StreamState::kNone && s.state != StreamState::kTunnel) {
    if (s.state == StreamState::kQueued) {
      s.request.queue_wait_ns += now_ns_ - s.waiter.enqueued_ns;  // its wait until it left
    }
    LogRequest(s, s.request.response_started || s.state == StreamState::kAnswering);
  }
  // The whole request reached the service, which is working on it: the slot is kept, and the
  // response read away, instead of closed. A closed one would be replaced at once (an SDK or
  // the dialer dials again) while the service still runs the abandoned request, so clients
  // that give up could make it run more requests than it has slots.
  const bool drainable = s.state == StreamState::kExchange && s.upstream.slot != nullptr &&
                         !s.upstream.dead && !s.upstream.tunnel && !s.upstream.done &&
                         !s.upstream.released && !s.upstream.send_busy && !s.upstream.probing &&
                         !s.upstream.retry_pending && s.request.sent && !s.request.abandoned &&
                         !s.ahead.on;
  if (drainable) {
    s.state = StreamState::kDraining;
    ReleaseTunnelClaim(s);
    TimerList::Unlink(&s.body_timer);  // s.timer goes on timing the service's silence
    s.fwd_off = s.fwd_len = 0;
    if (!s.upstream.recv_busy) DrainSlot(s);
    return;
  }
  CancelStream(s);
}

void Worker::Loop::DrainSlot(Stream& s) {
  while (!s.upstream.done) {
    const auto r = s.resp.Parse(s.resp_buf + s.resp_scan, s.resp_len - s.resp_scan);
    if (r.status == http::Parser::Status::kError) {
      EndDrain(s);
      return;
    }
    s.resp_scan += static_cast<uint32_t>(r.consumed);
    if (r.status == http::Parser::Status::kNeedMore) break;
    if (r.status == http::Parser::Status::kMessageDone) {
      s.upstream.done = true;
      if (s.resp_scan < s.resp_len) s.upstream.unusable = true;  // bytes beyond the response
      break;
    }
    if (s.upstream.head_done) continue;  // cannot happen: a body gives no second head
    const http::MessageHead& head = s.resp.head();
    if (head.status == 101) {  // no tunnel without a client
      EndDrain(s);
      return;
    }
    if (head.status < 200) {  // interim: the next head starts at the buffer's front
      if (++s.upstream.interim_count > kMaxInterimResponses) {
        EndDrain(s);
        return;
      }
      NextResponseHead(s);
      continue;
    }
    s.upstream.head_done = true;
    s.request.status = head.status;
  }
  if (s.upstream.done) {
    ReleaseUpstream(s);  // back to the pool (or retired, when it cannot be reused)
    s.state = StreamState::kNone;
    return;
  }
  if (!s.upstream.head_done && s.resp_len == resp_pool_.size()) {
    EndDrain(s);  // a head too large
    return;
  }
  if (s.upstream.head_done) s.resp_len = s.resp_scan = 0;  // body bytes read away
  ArmSlotRecv(s, /*expect_wait=*/true);
}

void Worker::Loop::EndDrain(Stream& s) {
  TimerList::Unlink(&s.timer);
  KillSlot(s);  // retired once its operations are over; then the connection is freed
  s.state = StreamState::kNone;
}

void Worker::Loop::CancelStream(Stream& s) {
  if (s.state == StreamState::kTunnel) EndTunnel(s);
  ReleaseTunnelClaim(s);
  if (s.state == StreamState::kQueued) Dequeue(s);
  s.state = StreamState::kNone;
  TimerList::Unlink(&s.timer);
  TimerList::Unlink(&s.body_timer);
  if (s.upstream.slot != nullptr) KillSlot(s);
}

void Worker::Loop::StartTunnel(Stream& s) {
  s.state = StreamState::kTunnel;
  OpenTunnel(s);  // out of the pool; s.timer is its idle timer now
  s.conn->protocol->StartTunnel(s);
  s.resp_len = s.resp_scan = 0;
  s.fwd_len = 0;
  PumpRequestBody(s);
  ArmSlotRecv(s);
}

void Worker::Loop::MaybeShutdownTunnelToSlot(Stream& s) {
  if (!s.request.tunnel_client_eof || s.request.tunnel_slot_shut || s.upstream.slot == nullptr ||
      s.upstream.dead) {
    return;
  }
  // Every byte the client sent before its half-close was forwarded (nothing is being sent, and
  // PumpRequestBody found nothing more).
  if (s.upstream.send_busy || InputWaiting(*s.conn)) return;
  s.request.tunnel_slot_shut = true;
  ::shutdown(s.upstream.slot->fd(), SHUT_WR);
  MaybeEndTunnel(s);
}

void Worker::Loop::MaybeEndTunnel(Stream& s) {
  if (s.request.tunnel_slot_shut && s.request.tunnel_slot_eof) s.conn->protocol->Abort(s);
}

void Worker::Loop::OnSlotFailure(Stream& s, int res) {
  if (s.upstream.tunnel) {  // a send into the tunnel failed: it ends (no instance to report to)
    s.conn->protocol->Abort(s);
    return;
  }
  slots::ReportFailure(*s.request.pool, s.upstream.slot, now_ns_);
  const bool nothing_received =
      s.resp_len == 0 && !s.upstream.head_done && !s.request.response_started;
  L7PX_LOG_LIMITED(kWarn, "pool {}: slot of {} failed ({}) {}", s.request.pool->name(),
                   s.upstream.slot->service_id(), res == 0 ? "closed" : strerror(-res),
                   nothing_received ? "before any response byte" : "mid-response");
  if (s.request.response_started) {
    KillSlot(s);
    s.conn->protocol->Abort(s);  // headers already went out
    return;
  }
  const http::MessageHead& req = *s.head;
  const bool replayable = nothing_received && req.framing == http::Framing::kNone &&
                          http::IsIdempotentMethod(req.method);
  if (replayable && s.request.attempts <= s.request.limits.retries) {
    Bump(stats_->retries);
    Bump(stats_->pools.For(s.request.pool->id()).retries);
    s.upstream.retry_pending = true;  // RetireSlot re-dispatches once the slot's ops drained
    KillSlot(s);
    return;
  }
  KillSlot(s);
  s.conn->protocol->Answer(s, 502, /*close=*/!s.request.done);
}

void Worker::Loop::BadResponse(Stream& s, std::string_view why) {
  slots::ReportFailure(*s.request.pool, s.upstream.slot, now_ns_);
  L7PX_LOG_LIMITED(kWarn, "pool {}: bad response from {}: {}", s.request.pool->name(),
                   s.upstream.slot->service_id(), why);
  KillSlot(s);
  if (s.request.response_started) {
    s.conn->protocol->Abort(s);
  } else {
    s.conn->protocol->Answer(s, 502, /*close=*/!s.request.done);
  }
}

void Worker::Loop::KillSlot(Stream& s) {
  if (s.upstream.slot == nullptr) return;
  if (!s.upstream.dead) {
    if (s.upstream.tunnel) {
      slots::KillTunnelSlot(*s.request.pool, *s.upstream.slot);
    } else {
      slots::KillLeasedSlot(*s.request.pool, *s.upstream.slot);
    }
    s.upstream.dead = true;
  }
  if (s.upstream.ops == 0) RetireSlot(s);
}

void Worker::Loop::RetireSlot(Stream& s) {
  if (s.upstream.slot == nullptr) return;
  PostRetire(s.upstream.slot);
  s.upstream.slot = nullptr;
  s.upstream.dead = false;
  if (s.upstream.retry_pending && s.state == StreamState::kExchange &&
      s.conn->state != ConnState::kClosing) {
    s.upstream.retry_pending = false;
    s.resp_len = s.resp_scan = 0;
    Dispatch(s);
  }
}

}  // namespace l7px::proxy
