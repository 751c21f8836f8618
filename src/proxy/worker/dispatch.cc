// Worker::Loop, part of loop.h: the exchange engine's front: routing a stream, and carrying out
// the Dispatcher's verdicts (start, queue, shed, wake).
#include "proxy/worker/loop.h"

namespace l7px::proxy {

bool Worker::Loop::RouteStream(Stream& s) {
  Connection& c = *s.conn;
  const http::MessageHead& head = *s.head;
  if (const int status = http::LocalAnswerStatus(head); status != 0) {  // TRACE, OPTIONS at 0
    c.protocol->Answer(s, status, /*close=*/false);
    return false;
  }
  char host_buf[256];
  const std::string_view host = head.HostForRouting(host_buf, sizeof(host_buf));
  const RouteTable* routes = shared_->routes.load(std::memory_order_acquire);
  const int pool_id = routes->Match(RouteRequest{host, head.Path(), &c.peer, &head});
  if (pool_id < 0) {
    c.protocol->Answer(s, 404, /*close=*/false);
    return false;
  }
  s.request.pool = shared_->pools.at(static_cast<uint32_t>(pool_id));
  s.request.limits = s.request.pool->settings().request;  // a copy: kept across a reload
  if (head.upgrade && !ClaimTunnel(s)) {  // max_tunnels: refused before it takes a slot
    L7PX_LOG_LIMITED(kWarn, "pool {}: max_tunnels ({}) reached; upgrade request answered 503",
                     s.request.pool->name(), s.request.pool->settings().max_tunnels);
    c.protocol->Answer(s, 503, /*close=*/false);
    return false;
  }
  EnsureStreamBuffers(s);
  http::ServiceRequestContext ctx;
  ctx.client_ip = std::string_view(c.ip, c.ip_len);
  ctx.proto = transports_[c.client.listener]->scheme();  // X-Forwarded-Proto
  ctx.request_id = request_ids_.Next(s.request.id);
  ctx.trusted_peer = s.request.trusted_peer = limits_->TrustsProxy(c.peer);
  ctx.drop_expect = head.expect_continue;
  s.aux_len =
      static_cast<uint32_t>(http::WriteServiceRequestHead(head, ctx, s.aux, aux_pool_.size()));
  if (s.aux_len == 0) {  // cannot happen: aux holds ServiceRequestHeadCapacity bytes
    L7PX_LOG_LIMITED(kError, "client {}: rewritten request head did not fit",
                     std::string_view(c.ip, c.ip_len));
    c.protocol->Answer(s, 431, /*close=*/true);
    return false;
  }
  return true;
}

void Worker::Loop::Dispatch(Stream& s) {
  slots::Pool& pool = *s.request.pool;
  const Dispatcher::Admission a = dispatcher_.Admit(pool, s.request.limits, s.waiter, now_ns_);
  RetireDeadSlots();
  switch (a.verdict) {
    case Dispatcher::Verdict::kStart:
      StartExchange(s, a.slot);
      return;
    case Dispatcher::Verdict::kQueued:
      s.state = StreamState::kQueued;
      // A retried request may still carry its failed exchange's response timer; the wait has
      // its own (the dispatcher's queue_timeout).
      TimerList::Unlink(&s.timer);
      // A slot pushed before the wait was published would wake nobody: look once more,
      // serving this worker's waiters in order.
      OnSlotAvailable(pool.id());
      return;
    case Dispatcher::Verdict::kShedFull:
      Bump(stats_->shed_queue_full);
      Bump(stats_->pools.For(pool.id()).shed_queue_full);
      L7PX_LOG_LIMITED(kWarn, "pool {}: queue full ({} waiting); shedding with 503", pool.name(),
                       s.request.limits.queue);
      s.conn->protocol->Answer(s, 503, /*close=*/false);
      return;
    case Dispatcher::Verdict::kShedClosing:  // drained or removed: no slot will come back
      Bump(stats_->pools.For(pool.id()).shed_closing);
      s.conn->protocol->Answer(s, 503, /*close=*/false);
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

Stream& Worker::Loop::Dequeued(Waiter* w) {
  Stream& s = *FromWaiter(w);
  s.request.queue_wait_ns += now_ns_ - w->enqueued_ns;
  s.state = StreamState::kNone;  // transitional; the caller sets the next state
  return s;
}

void Worker::Loop::Dequeue(Stream& s) {
  dispatcher_.Remove(s.waiter);
  Dequeued(&s.waiter);
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
    Stream& s = Dequeued(w);
    s.conn->protocol->Answer(s, 503, /*close=*/false);
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
