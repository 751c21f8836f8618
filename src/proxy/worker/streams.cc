// Worker::Loop, part of loop.h: streams: their table and buffers, their timers (response
// timeout, body pace), the access log, and the tick that expires every timer.
#include "proxy/worker/loop.h"
#include "slots/instance_health.h"

namespace l7px::proxy {

void Worker::Loop::RegisterStream(Stream& s) {
  s.index = static_cast<uint32_t>(streams_.size());
  streams_.push_back(&s);
  // Room to read ahead a response of the default response_buffer (1 MiB) without allocating
  // on the request path; a larger one grows it once for this stream object.
  s.ahead.chunks.reserve((size_t{1} << 20) / resp_pool_.size() + 2);
}

void Worker::Loop::EnsureStreamBuffers(Stream& s) {
  if (s.aux == nullptr) s.aux = aux_pool_.Get();
  if (s.out == nullptr) s.out = out_pool_.Get();
}

void Worker::Loop::ReleaseStream(Stream& s) {
  DropReadAhead(s);
  TimerList::Unlink(&s.timer);
  TimerList::Unlink(&s.body_timer);
  aux_pool_.Put(s.aux);
  out_pool_.Put(s.out);
  resp_pool_.Put(s.resp_buf);
  s.aux = s.out = s.resp_buf = nullptr;
  s.state = StreamState::kNone;
  s.head = nullptr;
  s.conn = nullptr;
  ++s.generation;
}

Stream* Worker::Loop::FromWaiter(Waiter* w) {
  return reinterpret_cast<Stream*>(reinterpret_cast<char*>(w) - offsetof(Stream, waiter));
}

Stream* Worker::Loop::FromStreamTimer(TimerNode* node) {
  return reinterpret_cast<Stream*>(reinterpret_cast<char*>(node) - offsetof(Stream, timer));
}

Stream* Worker::Loop::FromBodyTimer(TimerNode* node) {
  return reinterpret_cast<Stream*>(reinterpret_cast<char*>(node) - offsetof(Stream, body_timer));
}

Connection* Worker::Loop::FromConnectionTimer(TimerNode* node) {
  return reinterpret_cast<Connection*>(reinterpret_cast<char*>(node) - offsetof(Connection, timer));
}

void Worker::Loop::TimeService(Stream& s) {
  stream_timers_.For(s.request.limits.response_timeout_ns).Start(&s.timer, now_ns_);
}

void Worker::Loop::OnResponseTimeout(Stream& s) {
  if (s.state == StreamState::kTunnel) {
    OnTunnelIdle(s);
    return;
  }
  if (s.state == StreamState::kDraining) {  // its client is gone: only the slot is left to end
    L7PX_LOG_LIMITED(kWarn, "pool {}: service {} silent past response_timeout (client gone)",
                     s.request.pool->name(),
                     std::string_view(s.request.service, s.request.service_len));
    slots::ReportFailure(*s.request.pool, s.upstream.dead ? nullptr : s.upstream.slot, now_ns_);
    EndDrain(s);
    return;
  }
  if (s.state != StreamState::kExchange) return;
  slots::ReportFailure(*s.request.pool, s.upstream.dead ? nullptr : s.upstream.slot, now_ns_);
  L7PX_LOG_LIMITED(kWarn, "pool {}: service {} silent past response_timeout",
                   s.request.pool->name(),
                   std::string_view(s.request.service, s.request.service_len));
  if (s.request.response_started) {
    s.conn->protocol->Abort(s);
  } else {
    s.conn->protocol->Answer(s, 504, /*close=*/!s.request.done);
  }
}

void Worker::Loop::LogRequest(Stream& s, bool answered) {
  if (s.request.logged) return;
  s.request.logged = true;
  if (!answered) s.request.status = 499;
  const int cls = s.request.status / 100;
  if (answered && cls >= 1 && cls <= 5) {
    Bump(stats_->responses_by_class[cls]);
  }
  if (answered && s.request.pool != nullptr && s.request.status >= 100 && s.request.status < 600) {
    PoolMetrics& m = stats_->pools.For(s.request.pool->id());
    Bump(m.responses[s.request.status]);
    if (s.state != StreamState::kTunnel) {  // a tunnel's life is no response time
      m.duration.Observe(now_ns_ - s.request.start_ns);
      m.queue_wait.Observe(s.request.queue_wait_ns);
    }
  }
  ReleaseTunnelClaim(s);
  if (!access_log_.enabled()) return;
  const Connection& c = *s.conn;
  AccessLog::Entry e{};
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  e.unix_ms = int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
  e.client_ip = std::string_view(c.ip, c.ip_len);
  if (s.head != nullptr) {
    const http::MessageHead& req = *s.head;
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
  e.status = s.request.status;
  e.bytes_sent = s.request.bytes_out;
  e.bytes_received = s.request.bytes_in;
  e.duration_us = (now_ns_ - s.request.start_ns) / 1000;
  e.queue_wait_us = s.request.queue_wait_ns / 1000;
  e.pool =
      s.request.pool != nullptr ? std::string_view(s.request.pool->name()) : std::string_view("-");
  e.service = s.request.service_len > 0 ? std::string_view(s.request.service, s.request.service_len)
                                        : std::string_view("-");
  // The id the service saw: a trusted proxy's, or l7px's own.
  e.request_id = s.request.pool != nullptr
                     ? http::ServiceRequestId(*s.head, s.request.trusted_peer,
                                              std::string_view(s.request.id, 32))
                     : std::string_view("-");
  const transport::TransportInfo tls = c.transport->info();
  e.tls_version = tls.version;
  e.tls_cipher = tls.cipher;
  e.tls_sni = tls.server_name;
  e.tls_resumed = tls.resumed;
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
  timers_.Expire(now_ns_, [](TimerNode* n) {
    Connection& c = *FromConnectionTimer(n);
    c.protocol->OnTimeout(c);
  });
  stream_timers_.Expire(now_ns_, [this](TimerNode* n) { OnResponseTimeout(*FromStreamTimer(n)); });
  while (Waiter* w = dispatcher_.TakeExpired(now_ns_)) {
    Stream& s = Dequeued(w);
    Bump(stats_->shed_queue_timeout);
    Bump(stats_->pools.For(s.request.pool->id()).shed_queue_timeout);
    L7PX_LOG_LIMITED(kWarn, "pool {}: request waited past queue_timeout; 503",
                     s.request.pool->name());
    s.conn->protocol->Answer(s, 503, /*close=*/false);
  }
  body_timers_.Expire(now_ns_, [this](TimerNode* n) { OnBodyWindow(*FromBodyTimer(n)); });
}

void Worker::Loop::StartBodyWindow(Stream& s) {
  Connection& c = *s.conn;
  s.request.body_window_from = c.client.bytes_received;
  c.client.read_paused = ReadingPaused(c);
  s.request.body_window_start_ns = now_ns_;
  body_timers_.For(limits_->body_timeout_ns).Start(&s.body_timer, now_ns_);
}

void Worker::Loop::OnBodyWindow(Stream& s) {
  Connection& c = *s.conn;
  if (s.state == StreamState::kQueued) {
    // Waiting for a slot is not the client's delay (with Expect: 100-continue it is not even
    // asked to send yet): the window restarts when the request gets a slot.
    StartBodyWindow(s);
    return;
  }
  const bool waiting_for_body =
      !s.request.done && !s.request.abandoned &&
      (s.state == StreamState::kReadingBody || s.state == StreamState::kExchange);
  if (!waiting_for_body) return;
  const int64_t elapsed = now_ns_ - s.request.body_window_start_ns;
  const uint64_t bytes = c.client.bytes_received - s.request.body_window_from;
  switch (JudgeBodyWindow(bytes, c.client.read_paused || ReadingPaused(c), elapsed,
                          limits_->min_body_rate)) {
    case BodyPace::kKeptUp:
    case BodyPace::kNotJudged:
      StartBodyWindow(s);
      return;
    case BodyPace::kTooSlow:
      break;
  }
  Bump(stats_->body_too_slow);
  L7PX_LOG_LIMITED(kInfo,
                   "client {}: request body too slow ({} bytes in {} ms, server.min_body_rate "
                   "{}/s); 408",
                   std::string_view(c.ip, c.ip_len), bytes, elapsed / 1'000'000,
                   limits_->min_body_rate);
  if (s.request.response_started) {
    c.protocol->Abort(s);
  } else {
    c.protocol->Answer(s, 408, /*close=*/true);
  }
}

}  // namespace l7px::proxy
