// Worker::Loop, part of loop.h: The loop itself: ring plumbing, the completion switch, accepting,
// connections.
#include "proxy/worker/loop.h"

namespace l7px::proxy {

Worker::Loop::Loop(int id, SharedState* shared, WorkerStats* stats, std::vector<UniqueFd> listeners,
                   size_t tls_from)
    : id_(id),
      shared_(shared),
      stats_(stats),
      cfg_(shared->config),
      listeners_(std::move(listeners)),
      in_pool_(cfg_.server.max_header_bytes + kBodyWindow),
      aux_pool_(
          static_cast<uint32_t>(http::ServiceRequestHeadCapacity(cfg_.server.max_header_bytes))),
      out_pool_(static_cast<uint32_t>(
          http::ClientResponseHeadCapacity(http::Parser::Limits{}.max_header_bytes))),
      resp_pool_(kResponseBufferSize),
      request_ids_(static_cast<uint32_t>(id)),
      access_log_(shared->access_log_fd.load(), cfg_.log.format) {
  for (size_t i = 0; i < listeners_.size(); ++i) {
    if (i >= tls_from && shared->tls.load() != nullptr) {
      transports_.push_back(std::make_unique<transport::TlsTransportFactory>(
          &shared->tls, ToNanos(cfg_.tls.handshake_timeout), &stats->tls));
    } else {
      transports_.push_back(std::make_unique<transport::PlainTransportFactory>());
    }
  }
  request_limits_.max_header_bytes = cfg_.server.max_header_bytes;
  request_limits_.max_target_bytes = cfg_.server.max_header_bytes;
  request_limits_.max_body_bytes = cfg_.server.max_body_bytes;
  http1_ = std::make_unique<protocol::Http1>(*this);
}

Worker::Loop::~Loop() {
  // Stopped with requests in flight (SIGTERM): their buffers go back to the pools first, so
  // the pools free every buffer.
  for (auto& c : conns_) {
    if (c == nullptr) continue;
    if (c->session != nullptr) c->protocol->Release(*c);
    ReleaseInput(*c);
  }
  http1_.reset();
}

absl::Status Worker::Loop::Init() {
  if (auto s = ring_.Init(4096); !s.ok()) return s;
  if (auto s = buffers_.Init(&ring_, kBufferGroup, kProvidedBufferCount, kProvidedBufferSize);
      !s.ok()) {
    return s;
  }
  pend_next_.assign(kProvidedBufferCount, -1);
  pend_len_.assign(kProvidedBufferCount, 0);
  return absl::OkStatus();
}

void Worker::Loop::Run(std::atomic<bool>& go) {
  while (!go.load(std::memory_order_acquire)) go.wait(false);
  now_ns_ = MonotonicNanos();
  limits_ = shared_->limits.load(std::memory_order_acquire);
  accept_state_.assign(listeners_.size(), AcceptState::kIdle);
  accept_multishot_.assign(listeners_.size(), false);
  UpdateAccepting();
  ArmTick();
  while (!shared_->stop.load(std::memory_order_relaxed)) {
    FlushAccessLog();
    const int64_t busy_poll_ns = limits_->busy_poll_ns;  // limits_ is a snapshot: read online
    shared_->rcu.Offline(id_);                           // holds no snapshot while waiting
    if (!BusyPoll(busy_poll_ns)) ring_.SubmitAndWait(-1);
    shared_->rcu.Online(id_);
    now_ns_ = MonotonicNanos();
    limits_ = shared_->limits.load(std::memory_order_acquire);
    ring_.Drain([this](io_uring_cqe* cqe) { Handle(cqe); });
    RearmStarved();
    UpdateAccepting();
  }
  shared_->rcu.Offline(id_);
}

uint64_t Worker::Loop::TagOf(Op op, const Connection& c) {
  return io::Tag{op, c.generation, c.index}.Pack();
}

uint64_t Worker::Loop::TagOf(Op op, const Stream& s) {
  return io::Tag{op, s.generation, s.index}.Pack();
}

bool Worker::Loop::BusyPoll(int64_t budget_ns) {
  if (budget_ns <= 0) return false;
  const int64_t until = MonotonicNanos() + budget_ns;
  do {
    if (ring_.SubmitAndPoll() > 0) return true;
  } while (MonotonicNanos() < until);
  return false;
}

void Worker::Loop::ArmAccept(uint32_t listener, bool multishot) {
  io_uring_sqe* sqe = ring_.Sqe();
  if (multishot) {
    io_uring_prep_multishot_accept(sqe, listeners_[listener].get(), nullptr, nullptr, SOCK_CLOEXEC);
  } else {
    io_uring_prep_accept(sqe, listeners_[listener].get(), nullptr, nullptr, SOCK_CLOEXEC);
  }
  io_uring_sqe_set_data64(sqe, io::Tag{kOpAccept, 0, listener}.Pack());
  accept_state_[listener] = AcceptState::kArmed;
  accept_multishot_[listener] = multishot;
}

void Worker::Loop::CancelAccept(uint32_t listener) {
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_cancel64(sqe, io::Tag{kOpAccept, 0, listener}.Pack(), 0);
  io_uring_sqe_set_data64(sqe, io::Tag{kOpAcceptCancel, 0, listener}.Pack());
  accept_state_[listener] = AcceptState::kCancelling;
}

void Worker::Loop::UpdateAccepting() {
  if (shared_->stop.load(std::memory_order_relaxed)) return;
  const uint32_t max = limits_->max_connections;
  const bool multishot = max == 0;
  const int64_t open_connections = stats_->client_connections.load(std::memory_order_relaxed);
  int64_t expected = open_connections;  // and one more per single-shot accept armed
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    if (accept_state_[i] == AcceptState::kArmed && !accept_multishot_[i]) ++expected;
  }
  for (uint32_t i = 0; i < listeners_.size(); ++i) {
    // A draining worker accepts nothing: the listeners belong to its successor now.
    const bool open = !draining_ && accept_gate_.Open(now_ns_, expected, max);
    if (accept_state_[i] == AcceptState::kIdle) {
      if (!open) continue;
      ArmAccept(i, multishot);
      if (!multishot) ++expected;
    } else if (accept_state_[i] == AcceptState::kArmed &&
               (draining_ || (accept_multishot_[i] && (!multishot || !open)))) {
      CancelAccept(i);  // draining, a limit was set by a reload, or out of descriptors
    }
  }
  const bool at_limit = max != 0 && open_connections >= static_cast<int64_t>(max);
  if (at_limit && !at_connection_limit_) {
    Bump(stats_->connection_limit_pauses);
    L7PX_LOG_LIMITED(kWarn,
                     "worker {}: {} client connections (server.max_connections); not "
                     "accepting until one closes",
                     id_, open_connections);
  }
  at_connection_limit_ = at_limit;
}

void Worker::Loop::ArmTick() {
  tick_ts_.tv_sec = 0;
  tick_ts_.tv_nsec = kTickNs;
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_timeout(sqe, &tick_ts_, 0, 0);
  io_uring_sqe_set_data64(sqe, io::Tag{kOpTick, 0, 0}.Pack());
}

void Worker::Loop::Handle(io_uring_cqe* cqe) {
  const uint64_t data = cqe->user_data;
  const uint8_t msg = static_cast<uint8_t>(data >> 56);
  if (msg == acceptor::kMsgSlotAvailable) {
    OnSlotAvailable(static_cast<uint32_t>(io::MessagePayload(data)));
    return;
  }
  if (msg == kMsgDrain || msg == kMsgResume) {
    SetDraining(msg == kMsgDrain, io::MessagePayload(data) == kDrainStopListening);
    return;
  }
  const io::Tag tag = io::Tag::Unpack(data);
  if (tag.op == kOpAccept) {
    OnAccept(tag.index, cqe->res, (cqe->flags & IORING_CQE_F_MORE) != 0);
    return;
  }
  if (tag.op == kOpTick) {
    OnTick();
    return;
  }
  if (tag.op == kOpAcceptCancel) return;  // the accept itself reports -ECANCELED
  if (tag.op == kOpLogWrite) {
    log_write_inflight_ = false;
    access_log_.WriteCompleted(cqe->res);
    return;
  }
  if (tag.op == kOpSlotAck) {  // only failures complete: this kernel cannot do it
    ack_before_probe_ = false;
    L7PX_LOG(kWarn,
             "worker {}: TCP_QUICKACK through io_uring failed ({}); slots are probed without "
             "it (Linux 6.7+ has it)",
             id_, strerror(-cqe->res));
    return;
  }
  if (tag.op == kOpPostFailed) {
    L7PX_LOG_LIMITED(kWarn, "worker {}: cross-thread message failed: {}", id_, strerror(-cqe->res));
    return;
  }
  if (tag.op == kOpSlotSend || tag.op == kOpSlotRecv || tag.op == kOpSlotProbe) {
    HandleSlotOp(tag, cqe->res);
    return;
  }
  if (tag.index >= conns_.size() || conns_[tag.index] == nullptr ||
      (conns_[tag.index]->generation & 0xFFFFFF) != tag.generation) {
    Bump(stats_->stale_completions);
    if (cqe->flags & IORING_CQE_F_BUFFER) {
      buffers_.NoteTaken();
      buffers_.Recycle(static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
    }
    return;
  }
  Connection& c = *conns_[tag.index];
  switch (tag.op) {
    case kOpClientRecv:
      OnClientRecv(c, cqe);
      break;
    case kOpClientSend:
      --c.client.ops;
      c.client.send_busy = false;
      OnClientSent(c, cqe->res);
      break;
    case kOpCancel:
      --c.client.ops;
      break;
    case kOpClientHangup:
      --c.client.ops;
      OnClientHangup(c, cqe->res);
      break;
    default:
      break;
  }
  DeliverPeerClose(c);
  MaybeFree(c);
}

void Worker::Loop::HandleSlotOp(const io::Tag& tag, int res) {
  if (tag.index >= streams_.size() ||
      (streams_[tag.index]->generation & 0xFFFFFF) != tag.generation) {
    // Cannot happen: a stream ends only once its slot's operations drained.
    Bump(stats_->stale_completions);
    L7PX_LOG_LIMITED(kError, "worker {}: slot completion for an ended stream", id_);
    return;
  }
  Stream& s = *streams_[tag.index];
  Connection& c = *s.conn;
  if (s.upstream.slot == nullptr) {  // cannot happen: slot ops hold the slot until they complete
    Bump(stats_->stale_completions);
    L7PX_LOG_LIMITED(kError, "worker {}: slot completion without a slot", id_);
    return;
  }
  --s.upstream.ops;
  --c.slot_ops;
  if (tag.op == kOpSlotSend) {
    OnSlotSent(s, res);
  } else if (tag.op == kOpSlotProbe) {
    OnSlotProbed(s, res);
  } else {
    OnSlotRecv(s, res);
  }
  if (s.upstream.slot != nullptr && s.upstream.dead && s.upstream.ops == 0) RetireSlot(s);
  DeliverPeerClose(c);  // a close_notify decoded from queued input meanwhile (DrainPending)
  MaybeFree(c);
}

void Worker::Loop::OnAccept(uint32_t listener, int res, bool more) {
  if (!more) accept_state_[listener] = AcceptState::kIdle;
  if (res < 0) {
    if (res == -ECANCELED) return;
    if (io::AcceptGate::IsExhaustion(-res)) {
      Bump(stats_->accept_exhausted);
      if (accept_gate_.Exhausted(now_ns_)) {
        L7PX_LOG(kWarn,
                 "worker {}: accept: {}; pausing accepts ({} ms, backing off to 1 s) until "
                 "descriptors free up; open connections are still served",
                 id_, strerror(-res), accept_gate_.backoff_ns() / 1'000'000);
      }
      return;
    }
    L7PX_LOG_LIMITED(kWarn, "worker {}: accept: {}", id_, strerror(-res));
    return;
  }
  if (accept_gate_.Accepted()) {
    L7PX_LOG(kInfo, "worker {}: accepting again after {} failed accepts in {} ms", id_,
             accept_gate_.failures(), (now_ns_ - accept_gate_.episode_start_ns()) / 1'000'000);
  }
  Connection& c = NewConnection(UniqueFd(res));
  c.client.listener = static_cast<uint16_t>(listener);
  c.transport = transports_[listener]->Open();
  c.protocol = http1_.get();  // (ALPN will choose between protocols on TLS listeners)
  Bump(stats_->accepted);
  stats_->client_connections.store(stats_->client_connections.load(std::memory_order_relaxed) + 1,
                                   std::memory_order_relaxed);
  io::TuneStreamSocket(c.fd.get());
  c.peer = io::PeerAddress(c.fd.get());
  c.ip_len = static_cast<uint8_t>(c.peer.FormatIp(c.ip, sizeof(c.ip)));
  c.state = ConnState::kIdle;
  if (c.transport == nullptr) {
    L7PX_LOG_LIMITED(kWarn, "worker {}: no transport for a new connection; closed", id_);
    Close(c);
    return;
  }
  // A new connection gets header_timeout for its whole first request head, counted from
  // here (not from its first byte): holding a connection open costs the same either way.
  const int64_t handshake_ns = transports_[listener]->handshake_timeout_ns();
  c.client.handshaking = handshake_ns > 0;
  TimerFor(c.client.handshaking ? handshake_ns : limits_->header_timeout_ns)
      .Start(&c.timer, now_ns_);
  ArmClientRecv(c);
}

TimerList& Worker::Loop::IdleTimer() {
  return TimerFor(draining_ ? kDrainIdleGraceNs : limits_->keepalive_timeout_ns);
}

void Worker::Loop::SetDraining(bool on, bool stop_listening) {
  if (on && stop_listening) {
    // Nobody takes over these sockets: stop listening (queued connections are reset).
    for (const UniqueFd& l : listeners_) ::shutdown(l.get(), SHUT_RDWR);
  }
  if (draining_ == on) return;
  draining_ = on;
  UpdateAccepting();  // cancels the accepts, or re-arms them when a handoff failed
  if (!on) return;
  // Idle connections get the short grace instead of keepalive_timeout; busy ones close after
  // their response (DrainWantsClose). A connection still in its handshake, or yet to send its
  // first request, keeps its timer (handshake_timeout, header_timeout): it is a client on its
  // way in, not an idle one, and cutting it would fail a request the upgrade should not touch.
  for (auto& c : conns_) {
    if (c == nullptr || c->state != ConnState::kIdle) continue;
    if (c->client.handshaking || c->client.first_request) continue;
    TimerList::Unlink(&c->timer);
    IdleTimer().Start(&c->timer, now_ns_);
  }
}

Connection& Worker::Loop::NewConnection(UniqueFd fd) {
  Connection* c;
  if (free_conns_ != nullptr) {
    c = free_conns_;
    free_conns_ = c->next_free;
  } else {
    conns_.push_back(std::make_unique<Connection>());
    // Every connection may wait for a receive buffer at once: room for all in starved_.
    ReserveAtLeast(starved_, conns_.size());
    c = conns_.back().get();
    c->index = static_cast<uint32_t>(conns_.size() - 1);
  }
  const uint32_t index = c->index;
  const uint32_t generation = c->generation;
  *c = Connection();
  c->index = index;
  c->generation = generation;
  c->fd = std::move(fd);
  return *c;
}

void Worker::Loop::EnsureInput(Connection& c) {
  if (c.in != nullptr) return;
  c.in = in_pool_.Get();
  c.in_len = c.in_scan = 0;
}

void Worker::Loop::ReleaseInput(Connection& c) {
  in_pool_.Put(c.in);
  c.in = nullptr;
  c.in_len = c.in_scan = 0;
}

void Worker::Loop::Close(Connection& c) {
  if (c.state == ConnState::kClosing || c.state == ConnState::kFree) return;
  c.state = ConnState::kClosing;
  TimerList::Unlink(&c.timer);
  if (c.session != nullptr) c.protocol->OnClose(c);  // cancels its streams, kills their slots
  ::shutdown(c.fd.get(), SHUT_RDWR);                 // completes every pending op on the client fd
  MaybeFree(c);
}

void Worker::Loop::CloseGracefully(Connection& c) {
  if (c.state == ConnState::kClosing || c.state == ConnState::kFree) return;
  if (c.client.transport_failed || !c.transport->Finish()) {
    Close(c);
    return;
  }
  // Read nothing more; the send of the closing bytes ends it (OnClientSent, or the timer).
  c.client.transport_failed = true;
  c.client.eof = true;
  CancelClientRecv(c);
  TimerFor(limits_->send_timeout_ns).Start(&c.timer, now_ns_);
  if (!c.client.send_busy) SendToClient(c, {}, {});
}

void Worker::Loop::MaybeFree(Connection& c) {
  if (c.state != ConnState::kClosing || c.client.ops > 0 || c.slot_ops > 0) return;
  DropPending(c);
  if (c.session != nullptr) c.protocol->Release(c);
  ReleaseInput(c);
  if (c.transport != nullptr) transports_[c.client.listener]->Release(c.transport);
  c.transport = nullptr;
  c.fd.Reset();
  c.state = ConnState::kFree;  // freed once: later MaybeFree calls in this call chain no-op
  ++c.generation;
  stats_->client_connections.store(stats_->client_connections.load(std::memory_order_relaxed) - 1,
                                   std::memory_order_relaxed);
  c.next_free = free_conns_;
  free_conns_ = &c;
}

}  // namespace l7px::proxy
