// Worker::Loop, part of loop.h: Dispatch: carrying out the Dispatcher's verdicts (start, queue,
// shed, wake).
#include "proxy/worker/loop.h"

namespace l7px::proxy {

void Worker::Loop::OnRequestHead(Connection& c) {
  Exchange& x = *c.x;
  TimerList::Unlink(&c.timer);
  Bump(stats_->requests);
  const http::MessageHead& head = x.req.head();
  // A new request, and no exchange yet: both start from scratch (no slot drains here: a
  // connection whose slot still drains takes no next request).
  const int64_t start_ns = c.request.start_ns;  // set when its first byte arrived
  c.request = RequestState{};
  c.request.start_ns = start_ns;
  c.upstream = SlotSide{};
  // Body bytes already here are parsed now, so we know whether the request is complete.
  if (!ScanBody(c)) return;
  if (!c.request.done && InputEnded(c)) {
    Close(c);  // half-closed inside the body: it will never complete
    return;
  }
  if (const int status = http::LocalAnswerStatus(head); status != 0) {  // TRACE, OPTIONS at 0
    Respond(c, status, /*close=*/false);
    return;
  }
  if (!c.request.done) StartBodyWindow(c);
  char host_buf[256];
  const std::string_view host = head.HostForRouting(host_buf, sizeof(host_buf));
  const RouteTable* routes = shared_->routes.load(std::memory_order_acquire);
  const int pool_id = routes->Match(RouteRequest{host, head.Path(), &c.peer, &head});
  if (pool_id < 0) {
    Respond(c, 404, /*close=*/false);
    return;
  }
  c.request.pool = shared_->pools.at(static_cast<uint32_t>(pool_id));
  c.request.limits =
      c.request.pool->settings().request;  // a copy: kept across a reload, freed with c
  EnsureExchangeBuffers(c);
  http::ServiceRequestContext ctx;
  ctx.client_ip = std::string_view(c.ip, c.ip_len);
  ctx.proto = transports_[c.client.listener]->scheme();  // X-Forwarded-Proto
  ctx.request_id = request_ids_.Next(c.request.id);
  ctx.trusted_peer = c.request.trusted_peer = limits_->TrustsProxy(c.peer);
  ctx.drop_expect = head.expect_continue;
  x.aux_len =
      static_cast<uint32_t>(http::WriteServiceRequestHead(head, ctx, x.aux, aux_pool_.size()));
  if (x.aux_len == 0) {  // cannot happen: aux holds ServiceRequestHeadCapacity bytes
    L7PX_LOG_LIMITED(kError, "client {}: rewritten request head did not fit",
                     std::string_view(c.ip, c.ip_len));
    Respond(c, 431, /*close=*/true);
    return;
  }
  if (WaitForBody(c)) return;
  Dispatch(c);
}

bool Worker::Loop::WaitForBody(Connection& c) {
  if (BodyBuffered(c)) return false;
  const http::MessageHead& head = c.x->req.head();
  const bool small =
      head.framing == http::Framing::kChunked || (head.framing == http::Framing::kContentLength &&
                                                  head.content_length <= limits_->body_buffer);
  if (!small) return false;
  c.state = ConnState::kReadingBody;
  // l7px asks for the body itself now; the service never sees the Expect (drop_expect).
  if (head.expect_continue && !head.is_http10()) SendContinue(c);
  return true;
}

bool Worker::Loop::BodyBuffered(const Connection& c) const {
  const Exchange& x = *c.x;
  return c.request.done || x.in_scan - x.head_len >= limits_->body_buffer ||
         x.in_len == in_pool_.size();
}

void Worker::Loop::ReadBodyBeforeDispatch(Connection& c) {
  if (!ScanBody(c)) return;
  if (BodyBuffered(c)) {
    Dispatch(c);
  } else if (InputEnded(c)) {
    Close(c);  // half-closed inside the body: it will never complete
  }
}

void Worker::Loop::SendContinue(Connection& c) {
  static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
  Exchange& x = *c.x;
  c.request.continue_sent = true;
  StartBodyWindow(c);  // the client was told to wait for this: its body pace counts from here
  std::memcpy(x.out, kContinue.data(), kContinue.size());
  x.out_len = static_cast<uint32_t>(kContinue.size());
  x.out_sent = 0;
  c.upstream.interim_pending = true;
  SendToClient(c);
}

void Worker::Loop::Dispatch(Connection& c) {
  slots::Pool& pool = *c.request.pool;
  const Dispatcher::Admission a = dispatcher_.Admit(pool, c.request.limits, c.waiter, now_ns_);
  RetireDeadSlots();
  switch (a.verdict) {
    case Dispatcher::Verdict::kStart:
      StartExchange(c, a.slot);
      return;
    case Dispatcher::Verdict::kQueued:
      c.state = ConnState::kQueued;
      // A retried request may still carry its failed exchange's response timer; the wait has
      // its own (the dispatcher's queue_timeout).
      TimerList::Unlink(&c.timer);
      // A slot pushed before the wait was published would wake nobody: look once more,
      // serving this worker's waiters in order.
      OnSlotAvailable(pool.id());
      return;
    case Dispatcher::Verdict::kShedFull:
      Bump(stats_->shed_queue_full);
      Bump(stats_->pools.For(pool.id()).shed_queue_full);
      L7PX_LOG_LIMITED(kWarn, "pool {}: queue full ({} waiting); shedding with 503", pool.name(),
                       c.request.limits.queue);
      Respond(c, 503, /*close=*/false);
      return;
    case Dispatcher::Verdict::kShedClosing:  // drained or removed: no slot will come back
      Bump(stats_->pools.For(pool.id()).shed_closing);
      Respond(c, 503, /*close=*/false);
      return;
  }
}

void Worker::Loop::RetireDeadSlots() {
  std::vector<slots::Slot*>& dead = dispatcher_.dead_slots();
  for (slots::Slot* slot : dead) PostRetire(slot);
  dead.clear();
}

void Worker::Loop::PostRetire(slots::Slot* slot) {
  io::PrepPostMessage(ring_.Sqe(), shared_->acceptor_ring_fd.load(std::memory_order_relaxed),
                      io::PackPointerMessage(acceptor::kMsgRetireSlot, slot), 0,
                      io::Tag{kOpPostFailed, 0, 0}.Pack());
}

void Worker::Loop::PostSlotAvailable(int worker, uint32_t pool_id) {
  io::PrepPostMessage(ring_.Sqe(), shared_->worker_ring_fds[worker],
                      io::PackMessage(acceptor::kMsgSlotAvailable, pool_id), 0,
                      io::Tag{kOpPostFailed, 0, 0}.Pack());
}

Connection& Worker::Loop::Dequeued(Waiter* w) {
  Connection& c = *FromWaiter(w);
  c.request.queue_wait_ns += now_ns_ - w->enqueued_ns;
  c.state = ConnState::kReadingHead;  // transitional; the caller sets the next state
  return c;
}

void Worker::Loop::Dequeue(Connection& c) {
  dispatcher_.Remove(c.waiter);
  Dequeued(&c.waiter);
}

Connection* Worker::Loop::FromWaiter(Waiter* w) {
  return reinterpret_cast<Connection*>(reinterpret_cast<char*>(w) - offsetof(Connection, waiter));
}

Connection* Worker::Loop::FromTimerNode(TimerNode* node) {
  return reinterpret_cast<Connection*>(reinterpret_cast<char*>(node) - offsetof(Connection, timer));
}

Connection* Worker::Loop::FromBodyNode(TimerNode* node) {
  return reinterpret_cast<Connection*>(reinterpret_cast<char*>(node) -
                                       offsetof(Connection, body_timer));
}

void Worker::Loop::OnSlotAvailable(uint32_t pool_id) {
  if (pool_id >= shared_->pools.size()) return;
  slots::Pool& pool = *shared_->pools.at(pool_id);
  while (const Dispatcher::Match m = dispatcher_.ServeNext(pool, now_ns_)) {
    StartExchange(Dequeued(m.waiter), m.slot);
  }
  RetireDeadSlots();
  // Drained or removed: no slot comes back, so whoever still waits is answered now rather
  // than at queue_timeout.
  while (Waiter* w = dispatcher_.ShedNextClosing(pool, now_ns_)) {
    Bump(stats_->pools.For(pool_id).shed_closing);
    Respond(Dequeued(w), 503, /*close=*/false);
  }
  // Slots freed at about the same time each wake the worker with the oldest waiter, which may
  // be this one every time: what it could not use must not idle while another worker's
  // requests wait (until some other slot frees, or their queue_timeout), so pass it on.
  if (const int next = dispatcher_.WorkerToPassOn(pool); next >= 0) {
    PostSlotAvailable(next, pool_id);
  }
}

void Worker::Loop::ReleaseSlot(slots::Pool& pool, slots::Slot* slot) {
  const Dispatcher::Release r = dispatcher_.OnRelease(pool, *slot, now_ns_);
  switch (r.kind) {
    case Dispatcher::Release::Kind::kServeLocal:
      StartExchange(Dequeued(r.waiter), slot);
      return;
    case Dispatcher::Release::Kind::kRetire:
      PostRetire(slot);
      return;
    case Dispatcher::Release::Kind::kReturned:
      if (r.wake_worker == id_) {
        OnSlotAvailable(pool.id());
      } else if (r.wake_worker >= 0) {
        PostSlotAvailable(r.wake_worker, pool.id());
      }
      return;
  }
}

}  // namespace l7px::proxy
