// Worker::Loop, part of loop.h: l7px's own answers, the end of a request, the access log, timers
// and body pace.
#include "proxy/worker/loop.h"
#include "slots/instance_health.h"

namespace l7px::proxy {

void Worker::Loop::Respond(Connection& c, int status, bool close) {
  if (c.state == ConnState::kQueued) Dequeue(c);
  if (c.upstream.slot != nullptr) KillSlot(c);
  if (c.upstream.slot != nullptr) close = true;  // still draining its ops: no next request here
  Exchange& x = EnsureExchangeBuffers(c);
  if (!c.request.done) close = true;  // unread body bytes would be taken for the next request
  // The request's own connection semantics hold for l7px's answers too: after a request that
  // said Connection: close (or an HTTP/1.0 one without keep-alive) nothing pipelined behind
  // it is executed.
  const bool have_head = x.req.head_done();
  if (have_head && !x.req.head().keep_alive) close = true;
  c.client.close_after |= close || DrainWantsClose(c) || ClientDoneAfterThis(c);
  c.request.status = status;
  c.state = ConnState::kResponding;
  TimerList::Unlink(&c.timer);
  TimerList::Unlink(&c.body_timer);
  // An interim response (100 Continue) may still be going out: the answer follows it.
  const uint32_t at = c.client.send_busy ? x.out_len : 0;
  const size_t n = http::WriteErrorResponse(status, c.client.close_after, status == 503 ? 1 : 0,
                                            x.out + at, out_pool_.size() - at);
  x.out_len = at + static_cast<uint32_t>(
                       have_head && x.req.head().is_head_request ? HeadLength(x.out + at, n) : n);
  if (!c.client.send_busy) x.out_sent = 0;
  x.fwd_off = x.fwd_len = 0;
  SendToClient(c);
}

void Worker::Loop::FinishRequest(Connection& c) {
  Exchange& x = *c.x;
  TimerList::Unlink(&c.body_timer);
  LogRequest(c);
  if (c.client.close_after || ClientDoneAfterThis(c)) {
    Close(c);
    return;
  }
  // Pipelined bytes of the next request move to the front of `in`.
  const uint32_t rest = x.in_len - x.in_scan;
  std::memmove(x.in, x.in + x.in_scan, rest);
  x.in_len = rest;
  x.in_scan = 0;
  x.head_len = 0;
  x.req.Begin(x.in);
  c.request.pool = nullptr;
  c.state = ConnState::kIdle;
  c.client.first_request = false;
  DrainPending(c);
  if (x.in_len == 0 && c.client.pend_head < 0) {
    ReleaseExchange(c);
    IdleTimer().Start(&c.timer, now_ns_);
    return;
  }
  ProcessInput(c);
}

void Worker::Loop::LogRequest(Connection& c) {
  const int cls = c.request.status / 100;
  if (cls >= 1 && cls <= 5) {
    Bump(stats_->responses_by_class[cls]);
  }
  if (c.request.pool != nullptr && c.request.status >= 100 && c.request.status < 600) {
    PoolMetrics& m = stats_->pools.For(c.request.pool->id());
    Bump(m.responses[c.request.status]);
    m.duration.Observe(now_ns_ - c.request.start_ns);
    m.queue_wait.Observe(c.request.queue_wait_ns);
  }
  if (!access_log_.enabled() || c.x == nullptr) return;
  const http::MessageHead& req = c.x->req.head();
  const bool have_head = c.x->req.head_done();
  AccessLog::Entry e{};
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  e.unix_ms = int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
  e.client_ip = std::string_view(c.ip, c.ip_len);
  if (have_head) {
    e.method = req.Str(req.method_name);
    e.target = req.Str(req.target);
    const int host = req.host_index;
    if (host >= 0) e.host = req.Value(host);
    const int ua = req.Find("user-agent");
    if (ua >= 0) e.user_agent = req.Value(ua);
    const int ref = req.Find("referer");
    if (ref >= 0) e.referer = req.Value(ref);
    e.version_minor = req.version_minor;
  } else {
    e.method = "-";
    e.target = "-";
    e.version_minor = 1;
  }
  e.status = c.request.status;
  e.bytes_sent = c.request.bytes_out;
  e.duration_us = (now_ns_ - c.request.start_ns) / 1000;
  e.queue_wait_us = c.request.queue_wait_ns / 1000;
  e.pool =
      c.request.pool != nullptr ? std::string_view(c.request.pool->name()) : std::string_view("-");
  e.service = c.request.service_len > 0 ? std::string_view(c.request.service, c.request.service_len)
                                        : std::string_view("-");
  // The id the service saw: a trusted proxy's, or l7px's own.
  e.request_id =
      c.request.pool != nullptr
          ? http::ServiceRequestId(req, c.request.trusted_peer, std::string_view(c.request.id, 32))
          : std::string_view("-");
  access_log_.Append(e);
}

void Worker::Loop::FlushAccessLog() {
  if (log_write_inflight_) return;
  const char* data;
  size_t len;
  if (!access_log_.NextWrite(&data, &len)) return;
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_write(sqe, access_log_.fd(), data, static_cast<unsigned>(len), -1);
  io_uring_sqe_set_data64(sqe, io::Tag{kOpLogWrite, 0, 0}.Pack());
  log_write_inflight_ = true;
}

void Worker::Loop::OnTick() {
  if (!shared_->stop.load()) ArmTick();
  now_ns_ = MonotonicNanos();
  timers_.Expire(now_ns_, [this](TimerNode* n) { OnTimeout(*FromTimerNode(n)); });
  while (Waiter* w = dispatcher_.TakeExpired(now_ns_)) {
    Connection& c = Dequeued(w);
    Bump(stats_->shed_queue_timeout);
    Bump(stats_->pools.For(c.request.pool->id()).shed_queue_timeout);
    L7PX_LOG_LIMITED(kWarn, "pool {}: request waited past queue_timeout; 503",
                     c.request.pool->name());
    Respond(c, 503, /*close=*/false);
  }
  body_timers_.Expire(now_ns_, [this](TimerNode* n) { OnBodyWindow(*FromBodyNode(n)); });
}

bool Worker::Loop::ReadingPaused(const Connection& c) const {
  return c.client.pend_head >= 0 || c.client.needs_rearm ||
         (c.x != nullptr && c.x->in_len == in_pool_.size());
}

void Worker::Loop::StartBodyWindow(Connection& c) {
  c.request.body_window_bytes = 0;
  c.request.body_window_paused = ReadingPaused(c);
  c.request.body_window_start_ns = now_ns_;
  body_timers_.For(limits_->body_timeout_ns).Start(&c.body_timer, now_ns_);
}

void Worker::Loop::OnBodyWindow(Connection& c) {
  if (c.state == ConnState::kQueued) {
    // Waiting for a slot is not the client's delay (with Expect: 100-continue it is not even
    // asked to send yet): the window restarts when the request gets a slot.
    StartBodyWindow(c);
    return;
  }
  const bool waiting_for_body = !c.request.done && !c.request.abandoned &&
                                (c.state == ConnState::kReadingBody ||
                                 c.state == ConnState::kQueued || c.state == ConnState::kExchange);
  if (!waiting_for_body) return;
  const int64_t elapsed = now_ns_ - c.request.body_window_start_ns;
  switch (JudgeBodyWindow(c.request.body_window_bytes,
                          c.request.body_window_paused || ReadingPaused(c), elapsed,
                          limits_->min_body_rate)) {
    case BodyPace::kKeptUp:
    case BodyPace::kNotJudged:
      StartBodyWindow(c);
      return;
    case BodyPace::kTooSlow:
      break;
  }
  Bump(stats_->body_too_slow);
  L7PX_LOG_LIMITED(kInfo,
                   "client {}: request body too slow ({} bytes in {} ms, server.min_body_rate "
                   "{}/s); 408",
                   std::string_view(c.ip, c.ip_len), c.request.body_window_bytes,
                   elapsed / 1'000'000, limits_->min_body_rate);
  if (c.request.response_started) {
    Close(c);
  } else {
    Respond(c, 408, /*close=*/true);
  }
}

void Worker::Loop::OnTimeout(Connection& c) {
  switch (c.state) {
    case ConnState::kIdle:
      Close(c);  // keepalive_timeout
      break;
    case ConnState::kReadingHead:
      L7PX_LOG_LIMITED(kInfo, "client {}: header_timeout", std::string_view(c.ip, c.ip_len));
      Respond(c, 408, /*close=*/true);
      break;
    case ConnState::kResponding:
      L7PX_LOG_LIMITED(kInfo, "client {}: not reading l7px's answer past send_timeout; closed",
                       std::string_view(c.ip, c.ip_len));
      Close(c);
      break;
    case ConnState::kExchange:
      if (c.client.send_busy) {
        Bump(stats_->send_timeouts);
        L7PX_LOG_LIMITED(kInfo,
                         "client {}: not reading the response of pool {} past send_timeout ({} "
                         "bytes sent); closed",
                         std::string_view(c.ip, c.ip_len), c.request.pool->name(),
                         c.request.bytes_out);
        Close(c);
        break;
      }
      slots::ReportFailure(*c.request.pool, c.upstream.dead ? nullptr : c.upstream.slot, now_ns_);
      L7PX_LOG_LIMITED(kWarn, "pool {}: service {} silent past response_timeout",
                       c.request.pool->name(),
                       std::string_view(c.request.service, c.request.service_len));
      if (c.request.response_started) {
        Close(c);
      } else {
        Respond(c, 504, /*close=*/!c.request.done);
      }
      break;
    default:
      break;
  }
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
    if (c->state != ConnState::kClosing && c->client.pend_head < 0) {
      ArmClientRecv(*c);
      --budget;
    }
  }
  starved_.erase(starved_.begin(), starved_.begin() + static_cast<ptrdiff_t>(done));
}

}  // namespace l7px::proxy
