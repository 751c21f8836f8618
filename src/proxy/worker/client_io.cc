// Worker::Loop, part of loop.h: client I/O: receives decoded through the transport into the
// connection's input buffer, backpressure, sends to clients through the transport.
#include <poll.h>

#include "proxy/worker/loop.h"

namespace l7px::proxy {

void Worker::Loop::ArmClientRecv(Connection& c) {
  if (c.client.recv_armed || c.state == ConnState::kClosing || c.client.eof) return;
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_recv_multishot(sqe, c.fd.get(), nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = kBufferGroup;
  io_uring_sqe_set_data64(sqe, TagOf(kOpClientRecv, c));
  c.client.recv_armed = true;
  c.client.recv_cancel_sent = false;
  ++c.client.ops;
}

void Worker::Loop::CancelClientRecv(Connection& c) {
  if (!c.client.recv_armed || c.client.recv_cancel_sent) return;
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_cancel64(sqe, TagOf(kOpClientRecv, c), 0);
  io_uring_sqe_set_data64(sqe, TagOf(kOpCancel, c));
  c.client.recv_cancel_sent = true;
  ++c.client.ops;
}

void Worker::Loop::WatchClientHangup(Connection& c) {
  if (c.client.hangup_watched || c.state == ConnState::kClosing) return;
  io_uring_sqe* sqe = ring_.Sqe();
  // Errors and hang-ups are always reported; no POLLIN, so bytes arriving do not wake it.
  io_uring_prep_poll_add(sqe, c.fd.get(), POLLRDHUP);
  io_uring_sqe_set_data64(sqe, TagOf(kOpClientHangup, c));
  c.client.hangup_watched = true;
  ++c.client.ops;
}

void Worker::Loop::OnClientHangup(Connection& c, int res) {
  c.client.hangup_watched = false;
  if (c.state == ConnState::kClosing || res <= 0) return;
  // A reset (or both directions shut): nothing can reach the client any more, so what it
  // started is given up now, not when a queue_timeout or a response finds the socket dead. A
  // half-close alone (POLLRDHUP) is not acted on: complete requests may still wait unread
  // before it, and reading on finds the end in order.
  if ((res & (POLLERR | POLLHUP)) != 0) {
    L7PX_LOG_LIMITED(kInfo, "client {}: reset while l7px was not reading; connection closed",
                     std::string_view(c.ip, c.ip_len));
    Close(c);
  }
}

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
    c.client.read_paused = true;  // no receive buffer: not the client's fault
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
    c.client.eof = true;
    c.protocol->OnEof(c);
    return;
  }
  if (!more) {
    // Any other error (reset by peer, ...): the connection is over.
    Close(c);
  }
}

void Worker::Loop::AcceptBytes(Connection& c, uint16_t bid, uint32_t len) {
  // Until its handshake is done a transport produces no plaintext: no input buffer yet, so a
  // connection that never finishes its handshake holds none.
  const bool ready = c.transport->ready();
  if (ready) EnsureInput(c);
  c.client.bytes_received += len;
  if (c.client.pend_head < 0) {
    const transport::Decoded d =
        ready ? c.transport->Decode(buffers_.Buffer(bid), len, c.in + c.in_len,
                                    in_pool_.size() - c.in_len)
              : c.transport->Decode(buffers_.Buffer(bid), len, nullptr, 0);
    if (d.failed) {
      buffers_.Recycle(bid);
      TransportFailed(c);
      return;
    }
    if (d.peer_closed) c.client.peer_closed = true;
    c.in_len += d.produced;
    if (d.consumed == len) {
      buffers_.Recycle(bid);
    } else {
      QueuePending(c, bid, len, d.consumed);
    }
  } else {
    QueuePending(c, bid, len, 0);
  }
  if (InputWaiting(c)) {
    CancelClientRecv(c);  // stop reading until there is room
    WatchClientHangup(c);
  }
  // Bytes of the transport's own (a TLS handshake flight) go out before anything else.
  if (c.transport->has_output() && !c.client.send_busy) {
    SendToClient(c, {}, {});
    if (c.state == ConnState::kClosing || c.state == ConnState::kFree) return;
  }
  // The handshake is done: from now on the first request head is timed by header_timeout.
  if (c.client.handshaking && c.transport->ready()) {
    c.client.handshaking = false;
    if (c.state == ConnState::kIdle) TimerFor(limits_->header_timeout_ns).Start(&c.timer, now_ns_);
  }
  // Records that followed the handshake's last one (a TLS 1.3 client's first request often
  // shares a segment with its Finished) wait in the queue: decode them now.
  if (!ready && c.transport->ready() && c.client.pend_head >= 0) {
    EnsureInput(c);
    DrainPending(c);
    if (c.state == ConnState::kClosing || c.state == ConnState::kFree) return;
  }
  // A handshake record gives the protocol nothing to read (yet).
  if (c.in_len > c.in_scan || c.session != nullptr) c.protocol->OnInput(c);
  DeliverPeerClose(c);
}

void Worker::Loop::DeliverPeerClose(Connection& c) {
  // The client closed its sending side inside the transport (TLS close_notify): as a TCP EOF.
  if (c.client.peer_closed && !c.client.eof && c.state != ConnState::kClosing &&
      c.state != ConnState::kFree) {
    c.client.eof = true;
    CancelClientRecv(c);
    c.protocol->OnEof(c);
  }
}

void Worker::Loop::TransportFailed(Connection& c) {
  L7PX_LOG_LIMITED(kInfo, "client {}: transport failed; connection closed",
                   std::string_view(c.ip, c.ip_len));
  DropPending(c);
  c.client.eof = true;
  c.client.transport_failed = true;
  // Its last words first (a TLS alert, or the 400 for plain HTTP on a TLS port), then the end.
  if (c.transport->has_output()) {
    if (!c.client.send_busy) SendToClient(c, {}, {});  // else after the send in flight
    return;
  }
  Close(c);  // its streams end now: a slot waiting on a response is not held for nothing
}

void Worker::Loop::QueuePending(Connection& c, uint16_t bid, uint32_t len,
                                uint32_t already_copied) {
  c.client.read_paused = true;  // l7px stops reading: the client is not the slow one
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
  if (c.in == nullptr) return;
  while (c.client.pend_head >= 0) {
    const auto bid = static_cast<uint16_t>(c.client.pend_head);
    const uint32_t room = in_pool_.size() - c.in_len;
    if (room == 0) return;
    const transport::Decoded d =
        c.transport->Decode(buffers_.Buffer(bid) + c.client.pend_off,
                            pend_len_[bid] - c.client.pend_off, c.in + c.in_len, room);
    if (d.failed) {
      TransportFailed(c);
      return;
    }
    if (d.peer_closed) c.client.peer_closed = true;  // told after this (DeliverPeerClose)
    c.in_len += d.produced;
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
  while (c.transport->buffered() && c.in_len < in_pool_.size()) {
    const transport::Decoded d =
        c.transport->Decode(nullptr, 0, c.in + c.in_len, in_pool_.size() - c.in_len);
    if (d.failed) {
      TransportFailed(c);
      return;
    }
    if (d.peer_closed) c.client.peer_closed = true;
    if (d.produced == 0) break;
    c.in_len += d.produced;
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

bool Worker::Loop::ReadingPaused(const Connection& c) const {
  return InputWaiting(c) || c.client.needs_rearm ||
         (c.in != nullptr && c.in_len == in_pool_.size());
}

void Worker::Loop::SendToClient(Connection& c, iovec head, iovec body) {
  c.client_iov[0] = head;
  c.client_iov[1] = body;
  // The transport turns the plaintext into what goes on the wire (plain: the same iovecs).
  const transport::Encoded wire = c.transport->Encode(c.client_iov, 2, c.client_wire);
  if (wire.iov_count == 0) {  // cannot happen: a transport encodes what it is given
    L7PX_LOG_LIMITED(kError, "client {}: nothing to send", std::string_view(c.ip, c.ip_len));
    Close(c);
    return;
  }
  if (wire.iov_count == 1) c.client_wire[1] = {nullptr, 0};
  PrepSend(c.fd.get(), c.client_wire, &c.client_msg, TagOf(kOpClientSend, c));
  c.client.send_busy = true;
  ++c.client.ops;
}

void Worker::Loop::OnClientSent(Connection& c, int res) {
  if (c.state == ConnState::kClosing) return;
  if (res < 0) {
    Close(c);  // client went away; the slots of its streams are killed
    return;
  }
  // Counted by plaintext: for TLS the wire bytes include record overhead, and a record partly
  // sent has sent none of its plaintext yet.
  const uint32_t plaintext = c.transport->Sent(static_cast<uint32_t>(res));
  if (c.client.transport_failed) {
    // The transport gave up (or the connection ends cleanly): only its own last bytes (an
    // alert, close_notify) still go out, then the connection closes; a response in progress
    // cannot go on through a failed transport.
    if (c.transport->has_output()) {
      SendToClient(c, {}, {});
    } else {
      Close(c);
    }
    return;
  }
  c.protocol->OnSent(c, plaintext);
  // Bytes of the transport's own still to go (the rest of a handshake flight, an alert).
  // (OnSent may have closed the connection, and freed it when nothing else was in flight.)
  if (c.state == ConnState::kClosing || c.state == ConnState::kFree || c.client.send_busy) return;
  if (c.transport->has_output()) {
    SendToClient(c, {}, {});
  } else if (c.client.transport_failed) {
    Close(c);  // its last words went out
  }
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

void Worker::Loop::RearmStarved() {
  if (starved_.empty()) return;
  const uint32_t outstanding = buffers_.outstanding();
  if (outstanding + kStarvedRearmReserve > kProvidedBufferCount) return;
  uint32_t budget = kProvidedBufferCount - kStarvedRearmReserve - outstanding;
  size_t done = 0;
  for (; done < starved_.size() && budget > 0; ++done) {
    Connection* c = starved_[done];
    if (!c->client.needs_rearm) continue;  // closed (and maybe reused) since
    c->client.needs_rearm = false;
    if (c->state != ConnState::kClosing && c->state != ConnState::kFree && !InputWaiting(*c)) {
      ArmClientRecv(*c);
      --budget;
    }
  }
  starved_.erase(starved_.begin(), starved_.begin() + static_cast<ptrdiff_t>(done));
}

}  // namespace l7px::proxy
