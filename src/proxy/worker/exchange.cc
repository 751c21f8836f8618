// Worker::Loop, part of loop.h: The exchange with a slot: the lease-time look, request out,
// response in, tunnels, failures.
#include "proxy/worker/loop.h"
#include "slots/instance_health.h"

namespace l7px::proxy {

void Worker::Loop::StartExchange(Connection& c, slots::Slot* slot) {
  Exchange& x = *c.x;
  c.state = ConnState::kExchange;
  c.upstream = SlotSide{};  // a new attempt (the previous slot, if any, has drained)
  c.upstream.slot = slot;
  const std::string& service = slot->service_id();
  c.request.service_len = static_cast<uint8_t>(std::min(service.size(), sizeof(c.request.service)));
  std::memcpy(c.request.service, service.data(), c.request.service_len);
  ++c.request.attempts;
  x.aux_sent = 0;
  x.body_in_flight = 0;
  x.resp_len = x.resp_scan = 0;
  x.out_len = x.out_sent = 0;
  x.fwd_off = x.fwd_len = 0;
  if (x.resp_buf == nullptr) x.resp_buf = resp_pool_.Get();
  x.resp.Begin(x.resp_buf);
  x.resp.set_head_request(x.req.head().is_head_request);
  x.resp.set_decode_body(false);
  TimerFor(c.request.limits.response_timeout_ns).Start(&c.timer, now_ns_);
  if (!c.request.done && c.request.queue_wait_ns > 0) StartBodyWindow(c);  // the wait did not count
  ProbeSlot(c);
}

void Worker::Loop::ProbeSlot(Connection& c) {
  Exchange& x = *c.x;
  if (ack_before_probe_ && c.upstream.slot->tcp()) {
    static constexpr int kOne = 1;
    io_uring_sqe* ack = ring_.Sqe();
    io::PrepSetSockOptInt(ack, c.upstream.slot->fd(), IPPROTO_TCP, TCP_QUICKACK, &kOne);
    ack->flags |= IOSQE_CQE_SKIP_SUCCESS;  // only a failure completes
    io_uring_sqe_set_data64(ack, io::Tag{kOpSlotAck, 0, 0}.Pack());
  }
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_recv(sqe, c.upstream.slot->fd(), x.resp_buf, resp_pool_.size(), MSG_DONTWAIT);
  io_uring_sqe_set_data64(sqe, TagOf(kOpSlotProbe, c));
  c.upstream.recv_busy = c.upstream.probing = true;
  ++c.upstream.ops;
}

void Worker::Loop::OnSlotProbed(Connection& c, int res) {
  c.upstream.recv_busy = c.upstream.probing = false;
  if (c.state == ConnState::kClosing || c.upstream.dead) return;
  if (res == -EAGAIN || res == -EWOULDBLOCK) {
    SendRequest(c);
    return;
  }
  // Stray bytes, or the slot closed or failed while idle: nothing was sent on it, so the
  // request goes to another slot (or waits) whatever its method, without spending a retry.
  if (res > 0) {
    Bump(stats_->stray_slots);
    L7PX_LOG_LIMITED(kWarn,
                     "pool {}: service {} sent {} bytes on a slot before it was sent a request: "
                     "protocol violation; slot closed, request sent elsewhere",
                     c.request.pool->name(), c.upstream.slot->service_id(), res);
  } else {
    L7PX_LOG_LIMITED(kInfo, "pool {}: slot of {} {} while idle; request sent elsewhere",
                     c.request.pool->name(), c.upstream.slot->service_id(),
                     res == 0 ? "closed" : strerror(-res));
  }
  --c.request.attempts;
  c.upstream.retry_pending = true;  // RetireSlot re-dispatches once the slot's ops drained
  KillSlot(c);
}

void Worker::Loop::SendRequest(Connection& c) {
  if (!ScanBody(c)) return;
  SendToSlot(c);
  ArmSlotRecv(c, /*expect_wait=*/true);
  const http::MessageHead& req = c.x->req.head();
  if (req.expect_continue && !c.request.done && !req.is_http10() && !c.request.continue_sent) {
    SendContinue(c);  // the request has a slot now: let the client send its body
  }
}

bool Worker::Loop::ScanBody(Connection& c) {
  Exchange& x = *c.x;
  if (c.request.done) return true;
  // A chunked body is re-framed canonically in place (the parser's set_reframe_chunked).
  const auto r = x.req.ParseInPlace(x.in, &x.in_scan, &x.in_len);
  if (r.status == http::Parser::Status::kMessageDone) {
    c.request.done = true;
    TimerList::Unlink(&c.body_timer);
  }
  if (r.status == http::Parser::Status::kError) {
    L7PX_LOG_LIMITED(kInfo, "client {}: bad request body ({})", std::string_view(c.ip, c.ip_len),
                     http::ErrorName(x.req.error()));
    if (c.request.response_started) {
      Close(c);
    } else {
      Respond(c, http::StatusForError(x.req.error()), /*close=*/true);
    }
    return false;
  }
  return true;
}

void Worker::Loop::PumpRequestBody(Connection& c) {
  if (!ScanBody(c)) return;
  if (!c.request.done && InputEnded(c)) {
    Close(c);  // half-closed inside the body: it will never complete
    return;
  }
  SendToSlot(c);
}

void Worker::Loop::SendToSlot(Connection& c) {
  Exchange& x = *c.x;
  if (c.upstream.slot == nullptr || c.upstream.send_busy || c.upstream.probing || c.upstream.dead ||
      c.request.abandoned) {
    return;
  }
  const uint32_t head_left = x.aux_len - x.aux_sent;
  const uint32_t body = x.in_scan - x.head_len;
  if (head_left == 0 && body == 0) {
    if (c.request.done && !c.request.sent) {
      c.request.sent = true;
      MaybeFinishExchange(c);
    }
    return;
  }
  x.slot_iov[0] = {x.aux + x.aux_sent, head_left};
  x.slot_iov[1] = {x.in + x.head_len, body};
  x.body_in_flight = body;
  PrepSend(c.upstream.slot->fd(), x.slot_iov, &x.slot_msg, TagOf(kOpSlotSend, c));
  c.upstream.send_busy = true;
  ++c.upstream.ops;
}

void Worker::Loop::OnSlotSent(Connection& c, int res) {
  c.upstream.send_busy = false;
  if (c.state == ConnState::kClosing || c.upstream.dead) return;
  if (res < 0) {
    OnSlotFailure(c, res);
    return;
  }
  Exchange& x = *c.x;
  uint32_t n = static_cast<uint32_t>(res);
  const uint32_t head_part = std::min(n, x.aux_len - x.aux_sent);
  x.aux_sent += head_part;
  n -= head_part;
  if (n > 0) {
    // Drop the sent body bytes, keeping the head (for the access log) in front.
    const uint32_t from = x.head_len + n;
    std::memmove(x.in + x.head_len, x.in + from, x.in_len - from);
    x.in_len -= n;
    x.in_scan -= n;
  }
  x.body_in_flight = 0;
  DrainPending(c);
  if (c.state == ConnState::kTunnel) {
    PumpTunnelToSlot(c);
    return;
  }
  if (c.request.abandoned) {
    MaybeFinishExchange(c);
    return;
  }
  PumpRequestBody(c);
}

void Worker::Loop::PrepSend(int fd, iovec* iov, msghdr* msg, uint64_t tag) {
  io_uring_sqe* sqe = ring_.Sqe();
  if (iov[0].iov_len == 0 || iov[1].iov_len == 0) {
    const iovec& one = iov[0].iov_len != 0 ? iov[0] : iov[1];
    io_uring_prep_send(sqe, fd, one.iov_base, one.iov_len, MSG_NOSIGNAL);
  } else {
    *msg = {};
    msg->msg_iov = iov;
    msg->msg_iovlen = 2;
    io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
  }
  io_uring_sqe_set_data64(sqe, tag);
}

void Worker::Loop::ArmSlotRecv(Connection& c, bool expect_wait) {
  if (c.upstream.recv_busy || c.upstream.dead) return;
  Exchange& x = *c.x;
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_recv(sqe, c.upstream.slot->fd(), x.resp_buf + x.resp_len,
                     resp_pool_.size() - x.resp_len, 0);
  if (expect_wait) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
  io_uring_sqe_set_data64(sqe, TagOf(kOpSlotRecv, c));
  c.upstream.recv_busy = true;
  ++c.upstream.ops;
}

void Worker::Loop::OnSlotRecv(Connection& c, int res) {
  c.upstream.recv_busy = false;
  if (c.state == ConnState::kClosing || c.upstream.dead) return;
  Exchange& x = *c.x;
  if (res <= 0) {
    if (c.state == ConnState::kTunnel) {
      if (res < 0) {
        Close(c);
        return;
      }
      // The service half-closed: everything it sent before went out already (the slot is
      // read only once the client send is done), so the client is told now. The other
      // direction goes on until the client half-closes too.
      c.request.tunnel_slot_eof = true;
      ::shutdown(c.fd.get(), SHUT_WR);
      MaybeEndTunnel(c);
      return;
    }
    if (res == 0 && !c.upstream.done && x.resp.head_done() &&
        x.resp.head().framing == http::Framing::kUntilClose) {
      // A close-delimited body ends here.
      c.upstream.unusable = true;
      const auto r = x.resp.Finish();
      if (r.status == http::Parser::Status::kMessageDone) {
        c.upstream.done = true;
        SendToClient(c);
        return;
      }
    }
    OnSlotFailure(c, res);
    return;
  }
  x.resp_len += static_cast<uint32_t>(res);
  if (c.state == ConnState::kTunnel) {
    x.fwd_off = 0;
    x.fwd_len = x.resp_len;
    SendToClient(c);
    return;
  }
  TimerFor(c.request.limits.response_timeout_ns).Start(&c.timer, now_ns_);  // silence, per read
  if (c.client.send_busy) return;  // an interim response is going out; parsed after it
  ProcessResponse(c);
}

void Worker::Loop::ProcessResponse(Connection& c) {
  Exchange& x = *c.x;
  if (!c.upstream.head_done) {
    const auto r = x.resp.Parse(x.resp_buf + x.resp_scan, x.resp_len - x.resp_scan);
    x.resp_scan += static_cast<uint32_t>(r.consumed);
    if (r.status == http::Parser::Status::kNeedMore) {
      if (x.resp_len == resp_pool_.size()) {
        BadResponse(c, "response head too large");
      } else {
        ArmSlotRecv(c);
      }
      return;
    }
    if (r.status == http::Parser::Status::kError) {
      BadResponse(c, http::ErrorName(x.resp.error()));
      return;
    }
    const http::MessageHead& head = x.resp.head();
    const http::MessageHead& req = x.req.head();
    if (head.status < 200 && head.status != 101) {
      ForwardInterim(c);
      return;
    }
    c.upstream.head_done = true;
    c.request.status = head.status;
    if (head.status == 101 && !req.upgrade) {
      BadResponse(c, "101 without an upgrade request");
      return;
    }
    if (!c.request.sent && head.status != 101) {
      // The service answered before reading the whole request: stop sending it; neither the
      // slot nor the client connection can be reused afterwards.
      c.request.abandoned = true;
      c.client.close_after = true;
      TimerList::Unlink(&c.body_timer);  // the rest of the body no longer matters
    }
    if (!req.keep_alive || head.framing == http::Framing::kUntilClose) c.client.close_after = true;
    c.upstream.decode_body = req.is_http10() && head.framing == http::Framing::kChunked;
    if (c.upstream.decode_body) c.client.close_after = true;
    if (DrainWantsClose(c) || ClientDoneAfterThis(c)) c.client.close_after = true;
    http::ClientResponseContext ctx;
    ctx.close = c.client.close_after;
    ctx.http10_client = req.is_http10();
    ctx.decode_body = c.upstream.decode_body;
    x.out_len =
        static_cast<uint32_t>(http::WriteClientResponseHead(head, ctx, x.out, out_pool_.size()));
    x.out_sent = 0;
    if (x.out_len == 0) {
      BadResponse(c, "response head too large");
      return;
    }
    x.resp.set_decode_body(c.upstream.decode_body);
    if (head.status == 101) {
      c.upstream.done = true;
      x.fwd_off = x.resp_scan;
      x.fwd_len = x.resp_len - x.resp_scan;  // tunnel bytes that came with the 101
      SendToClient(c);
      return;
    }
  }
  // Body bytes.
  x.fwd_off = x.resp_scan;
  x.fwd_len = 0;
  if (!c.upstream.done) {
    const auto r = x.resp.Parse(x.resp_buf + x.resp_scan, x.resp_len - x.resp_scan);
    if (r.status == http::Parser::Status::kError) {
      if (c.request.response_started || x.out_len == 0) {
        L7PX_LOG_LIMITED(kWarn, "pool {}: malformed response body from {} ({})",
                         c.request.pool->name(), c.upstream.slot->service_id(),
                         http::ErrorName(x.resp.error()));
        Close(c);
      } else {
        BadResponse(c, http::ErrorName(x.resp.error()));
      }
      return;
    }
    x.fwd_len = static_cast<uint32_t>(c.upstream.decode_body ? r.decoded : r.consumed);
    x.resp_scan += static_cast<uint32_t>(r.consumed);
    if (r.status == http::Parser::Status::kMessageDone) {
      c.upstream.done = true;
      if (x.resp_scan < x.resp_len) c.upstream.unusable = true;  // bytes beyond the response
    }
  }
  SendToClient(c);
}

void Worker::Loop::ForwardInterim(Connection& c) {
  Exchange& x = *c.x;
  if (++c.upstream.interim_count > kMaxInterimResponses) {
    BadResponse(c, "more than 16 interim (1xx) responses");
    return;
  }
  const http::MessageHead& req = x.req.head();
  if (!req.is_http10()) {
    http::ClientResponseContext ctx;
    x.out_len = static_cast<uint32_t>(
        http::WriteClientResponseHead(x.resp.head(), ctx, x.out, out_pool_.size()));
    x.out_sent = 0;
  }
  // The interim message is complete; the next head must start at the buffer's front.
  const uint32_t rest = x.resp_len - x.resp_scan;
  std::memmove(x.resp_buf, x.resp_buf + x.resp_scan, rest);
  x.resp_len = rest;
  x.resp_scan = 0;
  x.resp.Begin(x.resp_buf);
  x.resp.set_head_request(req.is_head_request);
  if (x.out_len > 0) {
    c.upstream.interim_pending = true;
    x.fwd_len = 0;
    SendToClient(c);
  } else {
    ContinueResponse(c);
  }
}

void Worker::Loop::ContinueResponse(Connection& c) {
  Exchange& x = *c.x;
  if (x.resp_len > x.resp_scan) {
    ProcessResponse(c);
  } else if (!c.upstream.recv_busy) {
    x.resp_len = x.resp_scan = 0;
    ArmSlotRecv(c);
  }
}

void Worker::Loop::SendToClient(Connection& c) {
  Exchange& x = *c.x;
  if (c.client.send_busy) return;
  const uint32_t head_left = x.out_len - x.out_sent;
  if (head_left == 0 && x.fwd_len == 0) {
    AfterClientSendDone(c);
    return;
  }
  // A small body goes out in the head's buffer: one plain send instead of a two-part sendmsg
  // (OnClientSent counts it as head bytes, which is what it now is).
  if (head_left > 0 && x.fwd_len > 0 && x.fwd_len <= kCoalesceBodyBytes &&
      out_pool_.size() - x.out_len >= x.fwd_len) {
    std::memcpy(x.out + x.out_len, x.resp_buf + x.fwd_off, x.fwd_len);
    x.out_len += x.fwd_len;
    x.fwd_off += x.fwd_len;
    x.fwd_len = 0;
  }
  x.client_iov[0] = {x.out + x.out_sent, x.out_len - x.out_sent};
  // No response body bytes: no response buffer either, for l7px's own answers.
  x.client_iov[1] = {x.fwd_len > 0 ? x.resp_buf + x.fwd_off : nullptr, x.fwd_len};
  PrepSend(c.fd.get(), x.client_iov, &x.client_msg, TagOf(kOpClientSend, c));
  c.client.send_busy = true;
  // While l7px waits for the client to take bytes, the client's pace is what is timed
  // (send_timeout), not the service's silence: a slow reader is not blamed on the service.
  if (c.state == ConnState::kExchange || c.state == ConnState::kResponding) {
    TimerFor(limits_->send_timeout_ns).Start(&c.timer, now_ns_);
  }
  if (!c.upstream.interim_pending) c.request.response_started = true;
  ++c.client.ops;
}

void Worker::Loop::OnClientSent(Connection& c, int res) {
  if (c.state == ConnState::kClosing) return;
  if (res < 0) {
    Close(c);  // client went away; any slot in use is killed
    return;
  }
  Exchange& x = *c.x;
  c.request.bytes_out += static_cast<uint64_t>(res);
  uint32_t n = static_cast<uint32_t>(res);
  const uint32_t head_part = std::min(n, x.out_len - x.out_sent);
  x.out_sent += head_part;
  n -= head_part;
  x.fwd_off += n;
  x.fwd_len -= n;
  SendToClient(c);  // the rest, or AfterClientSendDone
}

void Worker::Loop::AfterClientSendDone(Connection& c) {
  Exchange& x = *c.x;
  x.out_len = x.out_sent = 0;
  const bool interim = std::exchange(c.upstream.interim_pending, false);
  switch (c.state) {
    case ConnState::kResponding:
      FinishRequest(c);
      return;
    case ConnState::kTunnel:
      x.resp_len = x.resp_scan = 0;
      ArmSlotRecv(c);
      return;
    case ConnState::kExchange:
      // The client took everything: from here the service's silence is timed again.
      TimerFor(c.request.limits.response_timeout_ns).Start(&c.timer, now_ns_);
      break;
    default:
      return;
  }
  if (interim) {
    ContinueResponse(c);
    return;
  }
  if (c.request.status == 101) {
    StartTunnel(c);
    return;
  }
  if (!c.upstream.done) {
    x.resp_len = x.resp_scan = 0;  // the body phase consumed everything
    ArmSlotRecv(c);
    return;
  }
  MaybeFinishExchange(c);
}

void Worker::Loop::MaybeFinishExchange(Connection& c) {
  if (c.state != ConnState::kExchange || !c.upstream.done || c.client.send_busy) return;
  if (c.x->out_len != 0 || c.x->fwd_len != 0) return;
  if (!c.request.sent && !c.request.abandoned) return;
  FinishExchange(c);
}

void Worker::Loop::FinishExchange(Connection& c) {
  slots::ReportResponse(*c.request.pool, c.upstream.slot, c.request.status, now_ns_);
  TimerList::Unlink(&c.timer);
  const http::MessageHead& resp = c.x->resp.head();
  const bool reusable = !c.request.abandoned && !c.upstream.unusable && resp.keep_alive &&
                        c.request.sent && !c.upstream.send_busy && !c.upstream.recv_busy;
  if (reusable) {
    slots::Slot* slot = c.upstream.slot;
    c.upstream.slot = nullptr;
    ReleaseSlot(*c.request.pool, slot);
  } else {
    KillSlot(c);
    if (c.upstream.slot != nullptr)
      c.client.close_after = true;  // still draining: no next request on it
  }
  FinishRequest(c);
}

void Worker::Loop::StartTunnel(Connection& c) {
  c.state = ConnState::kTunnel;
  TimerList::Unlink(&c.timer);
  Exchange& x = *c.x;
  // Bytes after the upgrade request are the client's first tunnel bytes.
  x.head_len = x.in_scan;
  x.resp_len = x.resp_scan = 0;
  x.fwd_len = 0;
  PumpTunnelToSlot(c);
  ArmSlotRecv(c);
}

void Worker::Loop::PumpTunnelToSlot(Connection& c) {
  Exchange& x = *c.x;
  if (c.upstream.send_busy || c.upstream.dead) return;
  x.in_scan = x.in_len;  // everything from the client is tunnel payload
  x.aux_len = x.aux_sent = 0;
  if (x.in_scan > x.head_len) {
    SendToSlot(c);
  } else {
    MaybeShutdownTunnelToSlot(c);
  }
}

void Worker::Loop::MaybeShutdownTunnelToSlot(Connection& c) {
  if (!c.request.tunnel_client_eof || c.request.tunnel_slot_shut || c.upstream.slot == nullptr ||
      c.upstream.dead)
    return;
  const Exchange& x = *c.x;
  if (c.upstream.send_busy || c.client.pend_head >= 0 || x.in_len > x.head_len) return;
  c.request.tunnel_slot_shut = true;
  ::shutdown(c.upstream.slot->fd(), SHUT_WR);
  MaybeEndTunnel(c);
}

void Worker::Loop::MaybeEndTunnel(Connection& c) {
  if (c.request.tunnel_slot_shut && c.request.tunnel_slot_eof) Close(c);
}

void Worker::Loop::OnSlotFailure(Connection& c, int res) {
  slots::ReportFailure(*c.request.pool, c.upstream.slot, now_ns_);
  Exchange& x = *c.x;
  const bool nothing_received =
      x.resp_len == 0 && !c.upstream.head_done && !c.request.response_started;
  L7PX_LOG_LIMITED(kWarn, "pool {}: slot of {} failed ({}) {}", c.request.pool->name(),
                   c.upstream.slot->service_id(), res == 0 ? "closed" : strerror(-res),
                   nothing_received ? "before any response byte" : "mid-response");
  if (c.request.response_started) {
    KillSlot(c);
    Close(c);  // headers already went out: abort the client connection
    return;
  }
  const http::MessageHead& req = x.req.head();
  const bool replayable = nothing_received && req.framing == http::Framing::kNone &&
                          http::IsIdempotentMethod(req.method);
  if (replayable && c.request.attempts <= c.request.limits.retries) {
    Bump(stats_->retries);
    Bump(stats_->pools.For(c.request.pool->id()).retries);
    c.upstream.retry_pending = true;  // RetireSlot re-dispatches once the slot's ops drained
    KillSlot(c);
    return;
  }
  KillSlot(c);
  Respond(c, 502, /*close=*/!c.request.done);
}

void Worker::Loop::BadResponse(Connection& c, std::string_view why) {
  slots::ReportFailure(*c.request.pool, c.upstream.slot, now_ns_);
  L7PX_LOG_LIMITED(kWarn, "pool {}: bad response from {}: {}", c.request.pool->name(),
                   c.upstream.slot->service_id(), why);
  KillSlot(c);
  if (c.request.response_started) {
    Close(c);
  } else {
    Respond(c, 502, /*close=*/!c.request.done);
  }
}

void Worker::Loop::KillSlot(Connection& c) {
  if (c.upstream.slot == nullptr) return;
  if (!c.upstream.dead) {
    slots::KillLeasedSlot(*c.request.pool, *c.upstream.slot);
    c.upstream.dead = true;
  }
  if (c.upstream.ops == 0) RetireSlot(c);
}

void Worker::Loop::RetireSlot(Connection& c) {
  if (c.upstream.slot == nullptr) return;
  PostRetire(c.upstream.slot);
  c.upstream.slot = nullptr;
  c.upstream.dead = false;
  if (c.upstream.retry_pending && c.state == ConnState::kExchange) {
    c.upstream.retry_pending = false;
    c.x->resp_len = c.x->resp_scan = 0;
    Dispatch(c);
  }
}

}  // namespace l7px::proxy
