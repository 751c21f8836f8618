// Worker::Loop, part of loop.h: Client input: receive buffers, backpressure, request heads and
// bodies.
#include "proxy/worker/loop.h"

namespace l7px::proxy {

void Worker::Loop::OnClientRecv(Connection& c, io_uring_cqe* cqe) {
  const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  if (!more) {
    c.client.recv_armed = false;
    --c.client.ops;
  }
  const int res = cqe->res;
  if (res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
    buffers_.NoteTaken();
    const auto bid = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    if (c.state == ConnState::kClosing) {
      buffers_.Recycle(bid);
      return;
    }
    AcceptBytes(c, bid, static_cast<uint32_t>(res));
    if (!more && !InputWaiting(c)) ArmClientRecv(c);
    return;
  }
  if (res == -ENOBUFS) {
    Bump(stats_->enobufs);
    c.request.body_window_paused = true;  // no receive buffer: not the client's fault
    if (!c.client.needs_rearm) {
      c.client.needs_rearm = true;
      starved_.push_back(&c);
    }
    return;
  }
  if (res == -ECANCELED) {
    // We stopped reading for backpressure. If the backlog drained while the cancel was in
    // flight, DrainPending could not re-arm (the recv still counted as armed): do it now.
    if (!InputWaiting(c) && c.state != ConnState::kClosing) ArmClientRecv(c);
    return;
  }
  if (c.state == ConnState::kClosing) return;
  if (res == 0) {
    OnClientEof(c);
    return;
  }
  if (!more) {
    // Any other error (reset by peer, ...): the connection is over.
    Close(c);
  }
}

void Worker::Loop::OnClientEof(Connection& c) {
  c.client.eof = true;
  switch (c.state) {
    case ConnState::kIdle:
      Close(c);
      break;
    case ConnState::kReadingHead:
    case ConnState::kReadingBody:
      // Truncated request, unless received bytes still wait for room in `in` (the checks
      // that consume them close once nothing more can come).
      if (InputEnded(c)) Close(c);
      break;
    case ConnState::kQueued:
    case ConnState::kExchange:
      // A half-close is not a close: a complete request is still answered (and every complete
      // request pipelined behind it; FinishRequest closes once none is left).
      if (!c.request.done && InputEnded(c)) Close(c);  // the body will never complete
      break;
    case ConnState::kTunnel:
      c.request.tunnel_client_eof = true;
      PumpTunnelToSlot(c);  // forwards what is left, then passes the half-close on
      break;
    default:
      break;  // kResponding: FinishRequest goes on with what is buffered, then closes
  }
}

void Worker::Loop::AcceptBytes(Connection& c, uint16_t bid, uint32_t len) {
  Exchange& x = EnsureExchange(c);
  c.request.body_window_bytes += len;
  if (c.client.pend_head < 0) {
    const transport::Decoded d =
        c.transport->Decode(buffers_.Buffer(bid), len, x.in + x.in_len, in_pool_.size() - x.in_len);
    if (d.failed) {
      buffers_.Recycle(bid);
      TransportFailed(c);
      return;
    }
    x.in_len += d.produced;
    if (d.consumed == len) {
      buffers_.Recycle(bid);
    } else {
      QueuePending(c, bid, len, d.consumed);
    }
  } else {
    QueuePending(c, bid, len, 0);
  }
  if (InputWaiting(c)) CancelClientRecv(c);  // stop reading until there is room
  // Bytes of the transport's own (a TLS handshake flight) go out before anything else.
  if (c.transport->has_output() && !c.client.send_busy) SendToClient(c);
  ProcessInput(c);
}

void Worker::Loop::TransportFailed(Connection& c) {
  L7PX_LOG_LIMITED(kInfo, "client {}: transport failed; connection closed",
                   std::string_view(c.ip, c.ip_len));
  DropPending(c);
  c.client.eof = true;
  ::shutdown(c.fd.get(), SHUT_RDWR);
}

void Worker::Loop::QueuePending(Connection& c, uint16_t bid, uint32_t len,
                                uint32_t already_copied) {
  c.request.body_window_paused = true;  // l7px stops reading: the client is not the slow one
  pend_next_[bid] = -1;
  pend_len_[bid] = len;
  if (c.client.pend_tail >= 0) {
    pend_next_[c.client.pend_tail] = bid;
  } else {
    c.client.pend_head = bid;
    c.client.pend_off = already_copied;
  }
  c.client.pend_tail = bid;
}

void Worker::Loop::DrainPending(Connection& c) {
  if (c.x == nullptr) return;
  Exchange& x = *c.x;
  while (c.client.pend_head >= 0) {
    const auto bid = static_cast<uint16_t>(c.client.pend_head);
    const uint32_t room = in_pool_.size() - x.in_len;
    if (room == 0) return;
    const transport::Decoded d =
        c.transport->Decode(buffers_.Buffer(bid) + c.client.pend_off,
                            pend_len_[bid] - c.client.pend_off, x.in + x.in_len, room);
    if (d.failed) {
      TransportFailed(c);
      return;
    }
    x.in_len += d.produced;
    c.client.pend_off += d.consumed;
    if (c.client.pend_off < pend_len_[bid]) {
      if (d.consumed == 0) return;  // the transport takes no more until room appears
      continue;
    }
    c.client.pend_head = pend_next_[bid];
    if (c.client.pend_head < 0) c.client.pend_tail = -1;
    c.client.pend_off = 0;
    buffers_.Recycle(bid);
  }
  // Plaintext the transport decoded earlier but had no room for.
  while (c.transport->buffered() && x.in_len < in_pool_.size()) {
    const transport::Decoded d =
        c.transport->Decode(nullptr, 0, x.in + x.in_len, in_pool_.size() - x.in_len);
    if (d.failed) {
      TransportFailed(c);
      return;
    }
    if (d.produced == 0) break;
    x.in_len += d.produced;
  }
  if (!c.client.recv_armed && !c.client.eof && !InputWaiting(c) && c.state != ConnState::kClosing) {
    ArmClientRecv(c);
  }
}

void Worker::Loop::DropPending(Connection& c) {
  while (c.client.pend_head >= 0) {
    const auto bid = static_cast<uint16_t>(c.client.pend_head);
    c.client.pend_head = pend_next_[bid];
    buffers_.Recycle(bid);
  }
  c.client.pend_tail = -1;
}

void Worker::Loop::ProcessInput(Connection& c) {
  if (c.x == nullptr) return;
  switch (c.state) {
    case ConnState::kIdle:
    case ConnState::kReadingHead:
      ParseHead(c);
      break;
    case ConnState::kReadingBody:
      ReadBodyBeforeDispatch(c);
      break;
    case ConnState::kExchange:
      if (!c.request.done && !c.request.abandoned) PumpRequestBody(c);
      break;
    case ConnState::kTunnel:
      PumpTunnelToSlot(c);
      break;
    default:
      break;  // queued or responding: bytes wait in `in`
  }
}

void Worker::Loop::ParseHead(Connection& c) {
  Exchange& x = *c.x;
  if (x.in_len == x.in_scan) return;
  if (c.state == ConnState::kIdle) {
    c.state = ConnState::kReadingHead;
    c.request.start_ns = now_ns_;
    request_limits_.max_body_bytes = limits_->max_body_bytes;
    x.req.set_limits(request_limits_);
    // The first request's head timer runs since the accept (OnAccept).
    if (!c.client.first_request) TimerFor(limits_->header_timeout_ns).Start(&c.timer, now_ns_);
  }
  const auto r = x.req.Parse(x.in + x.in_scan, x.in_len - x.in_scan);
  x.in_scan += static_cast<uint32_t>(r.consumed);
  switch (r.status) {
    case http::Parser::Status::kNeedMore:
      if (InputEnded(c)) Close(c);  // half-closed inside a request head: truncated
      return;
    case http::Parser::Status::kError:
      L7PX_LOG_LIMITED(kInfo, "client {}: bad request ({})", std::string_view(c.ip, c.ip_len),
                       http::ErrorName(x.req.error()));
      Respond(c, http::StatusForError(x.req.error()), /*close=*/true);
      return;
    case http::Parser::Status::kHeadDone:
    case http::Parser::Status::kMessageDone:
      x.head_len = x.in_scan;
      OnRequestHead(c);
      return;
  }
}

}  // namespace l7px::proxy
