// A worker: one io_uring, its client connections, and the exchanges between them and slots.
//
// Invariants:
//  - Only this thread touches its connections, buffers, timers and wait queues.
//  - A Connection is freed (fd closed, generation bumped) only in kClosing once ops == 0 and
//    slot_ops == 0: no completion can refer to a recycled connection except through a stale
//    generation, which is counted and dropped.
//  - Every provided buffer carried by a completion is recycled exactly once: right after its
//    bytes are copied into the connection's own input buffer.
//  - A leased slot is either returned idle (ReturnLeasedSlot), handed to a local waiter, or
//    killed and posted to the acceptor for retirement once no operation on it is in flight.
//  - The exchange is done when the response is complete and the request was fully sent (or
//    abandoned because the service answered early, in which case the slot is not reused).
#include "proxy/worker/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <future>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "acceptor/acceptor.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/reserve.h"
#include "base/thread_name.h"
#include "base/timer_lists.h"
#include "http/rewrite.h"
#include "io/accept_gate.h"
#include "io/mailbox.h"
#include "io/ring.h"
#include "io/socket.h"
#include "proxy/worker/access_log.h"
#include "proxy/worker/body_rate.h"
#include "proxy/worker/buffer_pool.h"
#include "proxy/worker/connection.h"
#include "slots/slot_lifecycle.h"

namespace l7px::proxy {
namespace {

enum Op : uint8_t {
  kOpAccept = 1,
  kOpClientRecv = 2,
  kOpClientSend = 3,
  kOpSlotSend = 4,
  kOpSlotRecv = 5,
  kOpCancel = 6,
  kOpTick = 7,
  kOpLogWrite = 8,
  kOpPostFailed = 9,
  kOpAcceptCancel = 10,
  kOpSlotProbe = 11,
  kOpSlotAck = 12,
};

// A listener's accept: not armed, armed, or being cancelled.
enum class AcceptState : uint8_t { kIdle, kArmed, kCancelling };

constexpr int64_t kTickNs = 50'000'000;
constexpr uint32_t kProvidedBufferCount = 512;
constexpr uint32_t kProvidedBufferSize = 16 * 1024;
// Client body bytes buffered beyond the head: room for the largest server.body_buffer.
constexpr uint32_t kBodyWindow = config::kMaxBodyBuffer;
constexpr uint32_t kResponseBufferSize = 64 * 1024;
// Response bodies up to this size are copied behind the head and sent with it in one buffer.
constexpr uint32_t kCoalesceBodyBytes = 4096;
constexpr uint16_t kBufferGroup = 1;
// Interim (1xx) responses forwarded per exchange; one more is a 1xx flood: 502, slot closed.
constexpr int kMaxInterimResponses = 16;
// Free provided buffers kept back when re-arming receives that ran out of them.
constexpr uint32_t kStarvedRearmReserve = 16;

}  // namespace

class Worker::Loop {
 public:
  Loop(int id, SharedState* shared, WorkerStats* stats, std::vector<UniqueFd> listeners)
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
    request_limits_.max_header_bytes = cfg_.server.max_header_bytes;
    request_limits_.max_target_bytes = cfg_.server.max_header_bytes;
    request_limits_.max_body_bytes = cfg_.server.max_body_bytes;
  }

  ~Loop() {
    // Stopped with requests in flight (SIGTERM): their buffers go back to the pools first, so
    // the pools free every buffer.
    for (auto& c : conns_) {
      if (c && c->x != nullptr) ReleaseExchange(*c);
    }
    for (Exchange* x : free_exchanges_) delete x;
  }

  absl::Status Init() {
    if (auto s = ring_.Init(4096); !s.ok()) return s;
    if (auto s = buffers_.Init(&ring_, kBufferGroup, kProvidedBufferCount, kProvidedBufferSize);
        !s.ok()) {
      return s;
    }
    pend_next_.assign(kProvidedBufferCount, -1);
    pend_len_.assign(kProvidedBufferCount, 0);
    return absl::OkStatus();
  }

  int ring_fd() const { return ring_.fd(); }

  void Run(std::atomic<bool>& go) {
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

 private:
  // ---------------------------------------------------------------- plumbing

  static uint64_t TagOf(Op op, const Connection& c) {
    return io::Tag{op, c.generation, c.index}.Pack();
  }

  // server.busy_poll: polls the ring (a non-blocking io_uring_enter each pass) for up to the
  // configured time before the worker goes to sleep; true when completions arrived. A sleep
  // and its wake-up cost a context switch each and tens of microseconds of latency; when the
  // next completion is that close, polling is cheaper. Spent once per sleep, so an idle worker
  // polls once per tick.
  bool BusyPoll(int64_t budget_ns) {
    if (budget_ns <= 0) return false;
    const int64_t until = MonotonicNanos() + budget_ns;
    do {
      if (ring_.SubmitAndPoll() > 0) return true;
    } while (MonotonicNanos() < until);
    return false;
  }

  void ArmAccept(uint32_t listener, bool multishot) {
    io_uring_sqe* sqe = ring_.Sqe();
    if (multishot) {
      io_uring_prep_multishot_accept(sqe, listeners_[listener].get(), nullptr, nullptr,
                                     SOCK_CLOEXEC);
    } else {
      io_uring_prep_accept(sqe, listeners_[listener].get(), nullptr, nullptr, SOCK_CLOEXEC);
    }
    io_uring_sqe_set_data64(sqe, io::Tag{kOpAccept, 0, listener}.Pack());
    accept_state_[listener] = AcceptState::kArmed;
    accept_multishot_[listener] = multishot;
  }

  void CancelAccept(uint32_t listener) {
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_cancel64(sqe, io::Tag{kOpAccept, 0, listener}.Pack(), 0);
    io_uring_sqe_set_data64(sqe, io::Tag{kOpAcceptCancel, 0, listener}.Pack());
    accept_state_[listener] = AcceptState::kCancelling;
  }

  // Arms or cancels the listeners' accepts to match the gate: closed at max_connections (until
  // a connection closes) and for a backoff after running out of descriptors. While closed, new
  // connections wait in the kernel's listen backlog. Without a limit a listener has one
  // multishot accept; with one, single-shot accepts counted against it, since a multishot
  // accept takes the whole backlog at once and a burst would overshoot the limit by its size.
  // Runs after every batch of completions (and so at least every tick).
  void UpdateAccepting() {
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

  void ArmTick() {
    tick_ts_.tv_sec = 0;
    tick_ts_.tv_nsec = kTickNs;
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_timeout(sqe, &tick_ts_, 0, 0);
    io_uring_sqe_set_data64(sqe, io::Tag{kOpTick, 0, 0}.Pack());
  }

  void ArmClientRecv(Connection& c) {
    if (c.recv_armed || c.state == ConnState::kClosing || c.client_eof) return;
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_recv_multishot(sqe, c.fd.get(), nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufferGroup;
    io_uring_sqe_set_data64(sqe, TagOf(kOpClientRecv, c));
    c.recv_armed = true;
    c.recv_cancel_sent = false;
    ++c.ops;
  }

  void CancelClientRecv(Connection& c) {
    if (!c.recv_armed || c.recv_cancel_sent) return;
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_cancel64(sqe, TagOf(kOpClientRecv, c), 0);
    io_uring_sqe_set_data64(sqe, TagOf(kOpCancel, c));
    c.recv_cancel_sent = true;
    ++c.ops;
  }

  void Handle(io_uring_cqe* cqe) {
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
      L7PX_LOG_LIMITED(kWarn, "worker {}: cross-thread message failed: {}", id_,
                       strerror(-cqe->res));
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
        --c.ops;
        c.client_send_busy = false;
        OnClientSent(c, cqe->res);
        break;
      case kOpSlotSend:
      case kOpSlotRecv:
      case kOpSlotProbe:
        if (c.slot == nullptr) {  // cannot happen: slot ops hold the slot until they complete
          Bump(stats_->stale_completions);
          L7PX_LOG_LIMITED(kError, "worker {}: slot completion without a slot", id_);
          return;
        }
        --c.slot_ops;
        if (tag.op == kOpSlotSend) {
          OnSlotSent(c, cqe->res);
        } else if (tag.op == kOpSlotProbe) {
          OnSlotProbed(c, cqe->res);
        } else {
          OnSlotRecv(c, cqe->res);
        }
        break;
      case kOpCancel:
        --c.ops;
        break;
      default:
        break;
    }
    if (c.slot != nullptr && c.slot_dead && c.slot_ops == 0) RetireSlot(c);
    MaybeFree(c);
  }

  // ---------------------------------------------------------------- accept & connections

  // Re-arming happens in UpdateAccepting, after the batch.
  void OnAccept(uint32_t listener, int res, bool more) {
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
    Bump(stats_->accepted);
    stats_->client_connections.store(stats_->client_connections.load(std::memory_order_relaxed) + 1,
                                     std::memory_order_relaxed);
    io::TuneStreamSocket(c.fd.get());
    c.peer = io::PeerAddress(c.fd.get());
    c.ip_len = static_cast<uint8_t>(c.peer.FormatIp(c.ip, sizeof(c.ip)));
    c.state = ConnState::kIdle;
    // A new connection gets header_timeout for its whole first request head, counted from
    // here (not from its first byte): holding a connection open costs the same either way.
    TimerFor(limits_->header_timeout_ns).Start(&c.timer, now_ns_);
    ArmClientRecv(c);
  }

  // An idle connection's timer: keepalive_timeout, or the drain grace while draining.
  TimerList& IdleTimer() {
    return TimerFor(draining_ ? kDrainIdleGraceNs : limits_->keepalive_timeout_ns);
  }

  // Upgrade handoff or SIGQUIT: stop accepting and let connections finish (or undo that).
  void SetDraining(bool on, bool stop_listening) {
    if (on && stop_listening) {
      // Nobody takes over these sockets: stop listening (queued connections are reset).
      for (const UniqueFd& l : listeners_) ::shutdown(l.get(), SHUT_RDWR);
    }
    if (draining_ == on) return;
    draining_ = on;
    UpdateAccepting();  // cancels the accepts, or re-arms them when a handoff failed
    if (!on) return;
    // Idle connections get the short grace instead of keepalive_timeout; busy ones close after
    // their response (DrainWantsClose).
    for (auto& c : conns_) {
      if (c == nullptr || c->state != ConnState::kIdle) continue;
      TimerList::Unlink(&c->timer);
      IdleTimer().Start(&c->timer, now_ns_);
    }
  }

  // While draining, a response closes its connection unless the client already sent more
  // (pipelined bytes are answered first; the last response closes).
  bool DrainWantsClose(const Connection& c) const {
    if (!draining_) return false;
    const bool more_buffered = c.pend_head >= 0 || (c.x != nullptr && c.x->in_len > c.x->in_scan);
    return !more_buffered;
  }

  // The client half-closed (sent its last byte) and no further request is buffered: the
  // response being made is its last, so it says Connection: close.
  bool ClientDoneAfterThis(const Connection& c) const {
    if (!c.client_eof) return false;
    return c.pend_head < 0 && (c.x == nullptr || c.x->in_len == c.x->in_scan);
  }

  // The client half-closed and every byte it sent is in `in`: nothing more will arrive.
  static bool InputEnded(const Connection& c) { return c.client_eof && c.pend_head < 0; }

  // The head of a response l7px wrote (through its blank line): what a HEAD request gets.
  static size_t HeadLength(const char* response, size_t len) {
    const std::string_view r(response, len);
    const size_t end = r.find("\r\n\r\n");
    return end == std::string_view::npos ? len : end + 4;
  }

  Connection& NewConnection(UniqueFd fd) {
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

  Exchange& EnsureExchange(Connection& c) {
    if (c.x == nullptr) {
      if (!free_exchanges_.empty()) {
        c.x = free_exchanges_.back();
        free_exchanges_.pop_back();
      } else {
        c.x = new Exchange(request_limits_);
        // Room to park it too: ReleaseExchange never grows the free list mid-request.
        ReserveAtLeast(free_exchanges_, ++exchanges_);
      }
      c.x->in = in_pool_.Get();
      c.x->in_len = c.x->in_scan = c.x->head_len = 0;
      c.x->req.Begin(c.x->in);
    }
    return *c.x;
  }

  // The buffers a request needs once its head is parsed: the rewritten head and l7px's own
  // answers. The response buffer, the largest, waits for a slot (StartExchange): a request
  // that waits in the queue or for its body does not hold one.
  Exchange& EnsureExchangeBuffers(Connection& c) {
    Exchange& x = EnsureExchange(c);
    if (x.aux == nullptr) x.aux = aux_pool_.Get();
    if (x.out == nullptr) x.out = out_pool_.Get();
    return x;
  }

  // Idle connections hold no buffers.
  void ReleaseExchange(Connection& c) {
    if (c.x == nullptr) return;
    Exchange& x = *c.x;
    in_pool_.Put(x.in);
    aux_pool_.Put(x.aux);
    out_pool_.Put(x.out);
    resp_pool_.Put(x.resp_buf);
    x.in = x.aux = x.out = x.resp_buf = nullptr;
    free_exchanges_.push_back(&x);
    c.x = nullptr;
  }

  void Close(Connection& c) {
    if (c.state == ConnState::kClosing || c.state == ConnState::kFree) return;
    if (c.state == ConnState::kQueued) Dequeue(c);
    c.state = ConnState::kClosing;
    TimerList::Unlink(&c.timer);
    TimerList::Unlink(&c.body_timer);
    if (c.slot != nullptr) KillSlot(c);
    ::shutdown(c.fd.get(), SHUT_RDWR);  // completes every pending op on the client fd
    MaybeFree(c);
  }

  void MaybeFree(Connection& c) {
    if (c.state == ConnState::kClosing && c.slot != nullptr && c.slot_ops == 0) RetireSlot(c);
    if (c.state != ConnState::kClosing || c.ops > 0 || c.slot_ops > 0) return;
    DropPending(c);
    ReleaseExchange(c);
    c.fd.Reset();
    c.state = ConnState::kFree;  // freed once: later MaybeFree calls in this call chain no-op
    ++c.generation;
    stats_->client_connections.store(stats_->client_connections.load(std::memory_order_relaxed) - 1,
                                     std::memory_order_relaxed);
    c.next_free = free_conns_;
    free_conns_ = &c;
  }

  // ---------------------------------------------------------------- client input

  void OnClientRecv(Connection& c, io_uring_cqe* cqe) {
    const bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    if (!more) {
      c.recv_armed = false;
      --c.ops;
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
      if (!more && c.pend_head < 0) ArmClientRecv(c);
      return;
    }
    if (res == -ENOBUFS) {
      Bump(stats_->enobufs);
      c.body_window_paused = true;  // no receive buffer: not the client's fault
      if (!c.needs_rearm) {
        c.needs_rearm = true;
        starved_.push_back(&c);
      }
      return;
    }
    if (res == -ECANCELED) {
      // We stopped reading for backpressure. If the backlog drained while the cancel was in
      // flight, DrainPending could not re-arm (the recv still counted as armed): do it now.
      if (c.pend_head < 0 && c.state != ConnState::kClosing) ArmClientRecv(c);
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

  void OnClientEof(Connection& c) {
    c.client_eof = true;
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
        if (!c.req_done && InputEnded(c)) Close(c);  // the body will never complete
        break;
      case ConnState::kTunnel:
        c.tunnel_client_eof = true;
        PumpTunnelToSlot(c);  // forwards what is left, then passes the half-close on
        break;
      default:
        break;  // kResponding: FinishRequest goes on with what is buffered, then closes
    }
  }

  // Copies a provided buffer into the connection's input buffer (or queues it when full).
  void AcceptBytes(Connection& c, uint16_t bid, uint32_t len) {
    Exchange& x = EnsureExchange(c);
    c.body_window_bytes += len;
    if (c.pend_head < 0) {
      const uint32_t room = in_pool_.size() - x.in_len;
      const uint32_t n = len < room ? len : room;
      std::memcpy(x.in + x.in_len, buffers_.Buffer(bid), n);
      x.in_len += n;
      if (n == len) {
        buffers_.Recycle(bid);
      } else {
        QueuePending(c, bid, len, n);
      }
    } else {
      QueuePending(c, bid, len, 0);
    }
    if (c.pend_head >= 0) CancelClientRecv(c);  // stop reading until there is room
    ProcessInput(c);
  }

  void QueuePending(Connection& c, uint16_t bid, uint32_t len, uint32_t already_copied) {
    c.body_window_paused = true;  // l7px stops reading: the client is not the slow one
    pend_next_[bid] = -1;
    pend_len_[bid] = len;
    if (c.pend_tail >= 0) {
      pend_next_[c.pend_tail] = bid;
    } else {
      c.pend_head = bid;
      c.pend_off = already_copied;
    }
    c.pend_tail = bid;
  }

  // Moves pending provided buffers into `in` as room allows; re-arms the recv once drained.
  void DrainPending(Connection& c) {
    if (c.x == nullptr) return;
    Exchange& x = *c.x;
    while (c.pend_head >= 0) {
      const auto bid = static_cast<uint16_t>(c.pend_head);
      const uint32_t avail = pend_len_[bid] - c.pend_off;
      const uint32_t room = in_pool_.size() - x.in_len;
      if (room == 0) return;
      const uint32_t n = avail < room ? avail : room;
      std::memcpy(x.in + x.in_len, buffers_.Buffer(bid) + c.pend_off, n);
      x.in_len += n;
      c.pend_off += n;
      if (c.pend_off < pend_len_[bid]) return;
      c.pend_head = pend_next_[bid];
      if (c.pend_head < 0) c.pend_tail = -1;
      c.pend_off = 0;
      buffers_.Recycle(bid);
    }
    if (!c.recv_armed && !c.client_eof && c.state != ConnState::kClosing) ArmClientRecv(c);
  }

  void DropPending(Connection& c) {
    while (c.pend_head >= 0) {
      const auto bid = static_cast<uint16_t>(c.pend_head);
      c.pend_head = pend_next_[bid];
      buffers_.Recycle(bid);
    }
    c.pend_tail = -1;
  }

  void ProcessInput(Connection& c) {
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
        if (!c.req_done && !c.abandon_request) PumpRequestBody(c);
        break;
      case ConnState::kTunnel:
        PumpTunnelToSlot(c);
        break;
      default:
        break;  // queued or responding: bytes wait in `in`
    }
  }

  void ParseHead(Connection& c) {
    Exchange& x = *c.x;
    if (x.in_len == x.in_scan) return;
    if (c.state == ConnState::kIdle) {
      c.state = ConnState::kReadingHead;
      c.start_ns = now_ns_;
      request_limits_.max_body_bytes = limits_->max_body_bytes;
      x.req.set_limits(request_limits_);
      // The first request's head timer runs since the accept (OnAccept).
      if (!c.first_request) TimerFor(limits_->header_timeout_ns).Start(&c.timer, now_ns_);
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

  // ---------------------------------------------------------------- dispatch

  void OnRequestHead(Connection& c) {
    Exchange& x = *c.x;
    TimerList::Unlink(&c.timer);
    Bump(stats_->requests);
    const http::MessageHead& head = x.req.head();
    c.attempts = 0;
    c.status = 0;
    c.bytes_out = 0;
    c.response_started = c.resp_head_done = c.resp_done = false;
    c.req_done = c.req_sent = c.abandon_request = c.continue_sent = false;
    c.queue_wait_ns = 0;
    c.pool = nullptr;
    c.service_len = 0;
    // Body bytes already here are parsed now, so we know whether the request is complete.
    if (!ScanBody(c)) return;
    if (!c.req_done && InputEnded(c)) {
      Close(c);  // half-closed inside the body: it will never complete
      return;
    }
    if (const int status = http::LocalAnswerStatus(head); status != 0) {  // TRACE, OPTIONS at 0
      Respond(c, status, /*close=*/false);
      return;
    }
    if (!c.req_done) StartBodyWindow(c);
    char host_buf[256];
    const std::string_view host = head.HostForRouting(host_buf, sizeof(host_buf));
    const RouteTable* routes = shared_->routes.load(std::memory_order_acquire);
    const int pool_id = routes->Match(RouteRequest{host, head.Path(), &c.peer, &head});
    if (pool_id < 0) {
      Respond(c, 404, /*close=*/false);
      return;
    }
    c.pool = shared_->pools.at(static_cast<uint32_t>(pool_id));
    c.settings = c.pool->settings().request;  // a copy: kept across a reload, freed with c
    EnsureExchangeBuffers(c);
    http::ServiceRequestContext ctx;
    ctx.client_ip = std::string_view(c.ip, c.ip_len);
    ctx.proto = "http";
    ctx.request_id = request_ids_.Next(c.request_id);
    ctx.trusted_peer = c.trusted_peer = limits_->TrustsProxy(c.peer);
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

  // A small body is received whole before the request takes a slot or a place in the queue
  // (server.body_buffer), so a slow upload holds its own connection only, not one of the
  // service's slots, and the service gets the body at its own pace. Longer bodies stream.
  bool WaitForBody(Connection& c) {
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

  // The whole body is here, or as much of it as server.body_buffer (or the input buffer) holds.
  bool BodyBuffered(const Connection& c) const {
    const Exchange& x = *c.x;
    return c.req_done || x.in_scan - x.head_len >= limits_->body_buffer ||
           x.in_len == in_pool_.size();
  }

  void ReadBodyBeforeDispatch(Connection& c) {
    if (!ScanBody(c)) return;
    if (BodyBuffered(c)) {
      Dispatch(c);
    } else if (InputEnded(c)) {
      Close(c);  // half-closed inside the body: it will never complete
    }
  }

  void SendContinue(Connection& c) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    Exchange& x = *c.x;
    c.continue_sent = true;
    StartBodyWindow(c);  // the client was told to wait for this: its body pace counts from here
    std::memcpy(x.out, kContinue.data(), kContinue.size());
    x.out_len = static_cast<uint32_t>(kContinue.size());
    x.out_sent = 0;
    c.interim_pending = true;
    SendToClient(c);
  }

  void Dispatch(Connection& c) {
    slots::Pool& pool = *c.pool;
    const Dispatcher::Admission a = dispatcher_.Admit(pool, c.settings, c.waiter, now_ns_);
    RetireDeadSlots();
    switch (a.verdict) {
      case Dispatcher::Verdict::kStart:
        StartExchange(c, a.slot);
        return;
      case Dispatcher::Verdict::kQueued:
        c.state = ConnState::kQueued;
        // A slot pushed before the wait was published would wake nobody: look once more,
        // serving this worker's waiters in order.
        OnSlotAvailable(pool.id());
        return;
      case Dispatcher::Verdict::kShedFull:
        Bump(stats_->shed_queue_full);
        Bump(stats_->pools.For(pool.id()).shed_queue_full);
        L7PX_LOG_LIMITED(kWarn, "pool {}: queue full ({} waiting); shedding with 503", pool.name(),
                         c.settings.queue);
        Respond(c, 503, /*close=*/false);
        return;
      case Dispatcher::Verdict::kShedClosing:  // drained or removed: no slot will come back
        Bump(stats_->pools.For(pool.id()).shed_closing);
        Respond(c, 503, /*close=*/false);
        return;
    }
  }

  // Idle slots the dispatcher found killed when it popped them: the acceptor frees them.
  void RetireDeadSlots() {
    std::vector<slots::Slot*>& dead = dispatcher_.dead_slots();
    for (slots::Slot* slot : dead) PostRetire(slot);
    dead.clear();
  }

  void PostRetire(slots::Slot* slot) {
    io::PrepPostMessage(ring_.Sqe(), shared_->acceptor_ring_fd.load(std::memory_order_relaxed),
                        io::PackPointerMessage(acceptor::kMsgRetireSlot, slot), 0,
                        io::Tag{kOpPostFailed, 0, 0}.Pack());
  }

  void PostSlotAvailable(int worker, uint32_t pool_id) {
    io::PrepPostMessage(ring_.Sqe(), shared_->worker_ring_fds[worker],
                        io::PackMessage(acceptor::kMsgSlotAvailable, pool_id), 0,
                        io::Tag{kOpPostFailed, 0, 0}.Pack());
  }

  // The connection whose waiter the dispatcher took off its queue: the wait is over.
  Connection& Dequeued(Waiter* w) {
    Connection& c = *FromWaiter(w);
    c.queue_wait_ns += now_ns_ - w->enqueued_ns;
    c.state = ConnState::kReadingHead;  // transitional; the caller sets the next state
    return c;
  }

  // The client of a queued request went away or is answered otherwise.
  void Dequeue(Connection& c) {
    dispatcher_.Remove(c.waiter);
    Dequeued(&c.waiter);
  }

  static Connection* FromWaiter(Waiter* w) {
    return reinterpret_cast<Connection*>(reinterpret_cast<char*>(w) - offsetof(Connection, waiter));
  }
  static Connection* FromTimerNode(TimerNode* node) {
    return reinterpret_cast<Connection*>(reinterpret_cast<char*>(node) -
                                         offsetof(Connection, timer));
  }
  static Connection* FromBodyNode(TimerNode* node) {
    return reinterpret_cast<Connection*>(reinterpret_cast<char*>(node) -
                                         offsetof(Connection, body_timer));
  }

  // A slot became idle somewhere and this worker had the oldest waiter for the pool (or the
  // pool is closing: the control plane then posts this to every worker).
  void OnSlotAvailable(uint32_t pool_id) {
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

  // A slot this worker used is free again: its own oldest waiter first, else back to the stack
  // and wake the worker with the oldest waiter.
  void ReleaseSlot(slots::Pool& pool, slots::Slot* slot) {
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

  // ---------------------------------------------------------------- exchange

  void StartExchange(Connection& c, slots::Slot* slot) {
    Exchange& x = *c.x;
    c.state = ConnState::kExchange;
    c.slot = slot;
    const std::string& service = slot->service_id();
    c.service_len = static_cast<uint8_t>(std::min(service.size(), sizeof(c.service)));
    std::memcpy(c.service, service.data(), c.service_len);
    c.slot_dead = c.slot_unusable = c.retry_pending = c.interim_pending = false;
    c.interim_count = 0;
    ++c.attempts;
    x.aux_sent = 0;
    x.body_in_flight = 0;
    x.resp_len = x.resp_scan = 0;
    x.out_len = x.out_sent = 0;
    x.fwd_off = x.fwd_len = 0;
    c.resp_head_done = c.resp_done = false;
    c.decode_body = false;
    if (x.resp_buf == nullptr) x.resp_buf = resp_pool_.Get();
    x.resp.Begin(x.resp_buf);
    x.resp.set_head_request(x.req.head().is_head_request);
    x.resp.set_decode_body(false);
    TimerFor(c.settings.response_timeout_ns).Start(&c.timer, now_ns_);
    if (!c.req_done && c.queue_wait_ns > 0) StartBodyWindow(c);  // the wait did not count
    ProbeSlot(c);
  }

  // Before the request goes out, the slot must hold no bytes: the service cannot have answered
  // a request it has not been sent, so anything already there is stray (a second response, or
  // bytes written after the last one) and would otherwise be read as this client's response.
  // A non-blocking receive looks, and the request is sent only once it found nothing
  // (OnSlotProbed), so a request never reaches a slot caught with stray bytes.
  //
  // A TCP service may hold such bytes back (Nagle) until l7px acknowledges its last response,
  // and l7px's kernel delays that acknowledgement to ride on the next request: the stray bytes
  // would then arrive just after the request went out, be read as its response, and leave the
  // slot one response behind for good. So the probe is preceded, in the same submission, by a
  // TCP_QUICKACK that sends the pending acknowledgement now: the service's held bytes are
  // released before the look (on loopback, delivered within that same call).
  void ProbeSlot(Connection& c) {
    Exchange& x = *c.x;
    if (ack_before_probe_ && c.slot->tcp()) {
      static constexpr int kOne = 1;
      io_uring_sqe* ack = ring_.Sqe();
      io::PrepSetSockOptInt(ack, c.slot->fd(), IPPROTO_TCP, TCP_QUICKACK, &kOne);
      ack->flags |= IOSQE_CQE_SKIP_SUCCESS;  // only a failure completes
      io_uring_sqe_set_data64(ack, io::Tag{kOpSlotAck, 0, 0}.Pack());
    }
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_recv(sqe, c.slot->fd(), x.resp_buf, resp_pool_.size(), MSG_DONTWAIT);
    io_uring_sqe_set_data64(sqe, TagOf(kOpSlotProbe, c));
    c.slot_recv_busy = c.slot_probing = true;
    ++c.slot_ops;
  }

  void OnSlotProbed(Connection& c, int res) {
    c.slot_recv_busy = c.slot_probing = false;
    if (c.state == ConnState::kClosing || c.slot_dead) return;
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
                       c.pool->name(), c.slot->service_id(), res);
    } else {
      L7PX_LOG_LIMITED(kInfo, "pool {}: slot of {} {} while idle; request sent elsewhere",
                       c.pool->name(), c.slot->service_id(), res == 0 ? "closed" : strerror(-res));
    }
    --c.attempts;
    c.retry_pending = true;  // RetireSlot re-dispatches once the slot's ops drained
    KillSlot(c);
  }

  // The slot is clean: the rewritten head (and any body bytes here) go out, and the response is
  // awaited.
  void SendRequest(Connection& c) {
    if (!ScanBody(c)) return;
    SendToSlot(c);
    ArmSlotRecv(c, /*expect_wait=*/true);
    const http::MessageHead& req = c.x->req.head();
    if (req.expect_continue && !c.req_done && !req.is_http10() && !c.continue_sent) {
      SendContinue(c);  // the request has a slot now: let the client send its body
    }
  }

  // Parses request body bytes waiting in `in` (up to the end of the message). False when the
  // body is malformed (the connection was answered/closed).
  bool ScanBody(Connection& c) {
    Exchange& x = *c.x;
    if (c.req_done) return true;
    // A chunked body is re-framed canonically in place (the parser's set_reframe_chunked).
    const auto r = x.req.ParseInPlace(x.in, &x.in_scan, &x.in_len);
    if (r.status == http::Parser::Status::kMessageDone) {
      c.req_done = true;
      TimerList::Unlink(&c.body_timer);
    }
    if (r.status == http::Parser::Status::kError) {
      L7PX_LOG_LIMITED(kInfo, "client {}: bad request body ({})", std::string_view(c.ip, c.ip_len),
                       http::ErrorName(x.req.error()));
      if (c.response_started) {
        Close(c);
      } else {
        Respond(c, http::StatusForError(x.req.error()), /*close=*/true);
      }
      return false;
    }
    return true;
  }

  void PumpRequestBody(Connection& c) {
    if (!ScanBody(c)) return;
    if (!c.req_done && InputEnded(c)) {
      Close(c);  // half-closed inside the body: it will never complete
      return;
    }
    SendToSlot(c);
  }

  // Sends what is ready: the rest of the rewritten head, then parsed body bytes.
  void SendToSlot(Connection& c) {
    Exchange& x = *c.x;
    if (c.slot == nullptr || c.slot_send_busy || c.slot_probing || c.slot_dead ||
        c.abandon_request) {
      return;
    }
    const uint32_t head_left = x.aux_len - x.aux_sent;
    const uint32_t body = x.in_scan - x.head_len;
    if (head_left == 0 && body == 0) {
      if (c.req_done && !c.req_sent) {
        c.req_sent = true;
        MaybeFinishExchange(c);
      }
      return;
    }
    x.slot_iov[0] = {x.aux + x.aux_sent, head_left};
    x.slot_iov[1] = {x.in + x.head_len, body};
    x.body_in_flight = body;
    PrepSend(c.slot->fd(), x.slot_iov, &x.slot_msg, TagOf(kOpSlotSend, c));
    c.slot_send_busy = true;
    ++c.slot_ops;
  }

  void OnSlotSent(Connection& c, int res) {
    c.slot_send_busy = false;
    if (c.state == ConnState::kClosing || c.slot_dead) return;
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
    if (c.abandon_request) {
      MaybeFinishExchange(c);
      return;
    }
    PumpRequestBody(c);
  }

  // Sends iov[0] then iov[1] (either may be empty, not both): a plain send when only one has
  // bytes (cheaper in the kernel than sendmsg: no msghdr copy, no iovec import), else sendmsg
  // through `msg`, which must live until the completion.
  void PrepSend(int fd, iovec* iov, msghdr* msg, uint64_t tag) {
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

  // expect_wait: the service cannot have answered yet (the request is only now being sent), so
  // the kernel waits for readiness first instead of trying a receive that would find nothing.
  void ArmSlotRecv(Connection& c, bool expect_wait = false) {
    if (c.slot_recv_busy || c.slot_dead) return;
    Exchange& x = *c.x;
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_recv(sqe, c.slot->fd(), x.resp_buf + x.resp_len, resp_pool_.size() - x.resp_len,
                       0);
    if (expect_wait) sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
    io_uring_sqe_set_data64(sqe, TagOf(kOpSlotRecv, c));
    c.slot_recv_busy = true;
    ++c.slot_ops;
  }

  void OnSlotRecv(Connection& c, int res) {
    c.slot_recv_busy = false;
    if (c.state == ConnState::kClosing || c.slot_dead) return;
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
        c.tunnel_slot_eof = true;
        ::shutdown(c.fd.get(), SHUT_WR);
        MaybeEndTunnel(c);
        return;
      }
      if (res == 0 && !c.resp_done && x.resp.head_done() &&
          x.resp.head().framing == http::Framing::kUntilClose) {
        // A close-delimited body ends here.
        c.slot_unusable = true;
        const auto r = x.resp.Finish();
        if (r.status == http::Parser::Status::kMessageDone) {
          c.resp_done = true;
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
    TimerFor(c.settings.response_timeout_ns).Start(&c.timer, now_ns_);  // silence, per read
    if (c.client_send_busy) return;  // an interim response is going out; parsed after it
    ProcessResponse(c);
  }

  void ProcessResponse(Connection& c) {
    Exchange& x = *c.x;
    if (!c.resp_head_done) {
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
      c.resp_head_done = true;
      c.status = head.status;
      if (head.status == 101 && !req.upgrade) {
        BadResponse(c, "101 without an upgrade request");
        return;
      }
      if (!c.req_sent && head.status != 101) {
        // The service answered before reading the whole request: stop sending it; neither the
        // slot nor the client connection can be reused afterwards.
        c.abandon_request = true;
        c.close_after = true;
        TimerList::Unlink(&c.body_timer);  // the rest of the body no longer matters
      }
      if (!req.keep_alive || head.framing == http::Framing::kUntilClose) c.close_after = true;
      c.decode_body = req.is_http10() && head.framing == http::Framing::kChunked;
      if (c.decode_body) c.close_after = true;
      if (DrainWantsClose(c) || ClientDoneAfterThis(c)) c.close_after = true;
      http::ClientResponseContext ctx;
      ctx.close = c.close_after;
      ctx.http10_client = req.is_http10();
      ctx.decode_body = c.decode_body;
      x.out_len =
          static_cast<uint32_t>(http::WriteClientResponseHead(head, ctx, x.out, out_pool_.size()));
      x.out_sent = 0;
      if (x.out_len == 0) {
        BadResponse(c, "response head too large");
        return;
      }
      x.resp.set_decode_body(c.decode_body);
      if (head.status == 101) {
        c.resp_done = true;
        x.fwd_off = x.resp_scan;
        x.fwd_len = x.resp_len - x.resp_scan;  // tunnel bytes that came with the 101
        SendToClient(c);
        return;
      }
    }
    // Body bytes.
    x.fwd_off = x.resp_scan;
    x.fwd_len = 0;
    if (!c.resp_done) {
      const auto r = x.resp.Parse(x.resp_buf + x.resp_scan, x.resp_len - x.resp_scan);
      if (r.status == http::Parser::Status::kError) {
        if (c.response_started || x.out_len == 0) {
          L7PX_LOG_LIMITED(kWarn, "pool {}: malformed response body from {} ({})", c.pool->name(),
                           c.slot->service_id(), http::ErrorName(x.resp.error()));
          Close(c);
        } else {
          BadResponse(c, http::ErrorName(x.resp.error()));
        }
        return;
      }
      x.fwd_len = static_cast<uint32_t>(c.decode_body ? r.decoded : r.consumed);
      x.resp_scan += static_cast<uint32_t>(r.consumed);
      if (r.status == http::Parser::Status::kMessageDone) {
        c.resp_done = true;
        if (x.resp_scan < x.resp_len) c.slot_unusable = true;  // bytes beyond the response
      }
    }
    SendToClient(c);
  }

  // 1xx (not 101): forwarded to HTTP/1.1 clients, then the parser starts on the next response.
  void ForwardInterim(Connection& c) {
    Exchange& x = *c.x;
    if (++c.interim_count > kMaxInterimResponses) {
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
      c.interim_pending = true;
      x.fwd_len = 0;
      SendToClient(c);
    } else {
      ContinueResponse(c);
    }
  }

  // After an interim response went out: parse what is buffered or read more from the slot.
  void ContinueResponse(Connection& c) {
    Exchange& x = *c.x;
    if (x.resp_len > x.resp_scan) {
      ProcessResponse(c);
    } else if (!c.slot_recv_busy) {
      x.resp_len = x.resp_scan = 0;
      ArmSlotRecv(c);
    }
  }

  void SendToClient(Connection& c) {
    Exchange& x = *c.x;
    if (c.client_send_busy) return;
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
    c.client_send_busy = true;
    // While l7px waits for the client to take bytes, the client's pace is what is timed
    // (send_timeout), not the service's silence: a slow reader is not blamed on the service.
    if (c.state == ConnState::kExchange || c.state == ConnState::kResponding) {
      TimerFor(limits_->send_timeout_ns).Start(&c.timer, now_ns_);
    }
    if (!c.interim_pending) c.response_started = true;
    ++c.ops;
  }

  void OnClientSent(Connection& c, int res) {
    if (c.state == ConnState::kClosing) return;
    if (res < 0) {
      Close(c);  // client went away; any slot in use is killed
      return;
    }
    Exchange& x = *c.x;
    c.bytes_out += static_cast<uint64_t>(res);
    uint32_t n = static_cast<uint32_t>(res);
    const uint32_t head_part = std::min(n, x.out_len - x.out_sent);
    x.out_sent += head_part;
    n -= head_part;
    x.fwd_off += n;
    x.fwd_len -= n;
    SendToClient(c);  // the rest, or AfterClientSendDone
  }

  void AfterClientSendDone(Connection& c) {
    Exchange& x = *c.x;
    x.out_len = x.out_sent = 0;
    const bool interim = std::exchange(c.interim_pending, false);
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
        TimerFor(c.settings.response_timeout_ns).Start(&c.timer, now_ns_);
        break;
      default:
        return;
    }
    if (interim) {
      ContinueResponse(c);
      return;
    }
    if (c.status == 101) {
      StartTunnel(c);
      return;
    }
    if (!c.resp_done) {
      x.resp_len = x.resp_scan = 0;  // the body phase consumed everything
      ArmSlotRecv(c);
      return;
    }
    MaybeFinishExchange(c);
  }

  void MaybeFinishExchange(Connection& c) {
    if (c.state != ConnState::kExchange || !c.resp_done || c.client_send_busy) return;
    if (c.x->out_len != 0 || c.x->fwd_len != 0) return;
    if (!c.req_sent && !c.abandon_request) return;
    FinishExchange(c);
  }

  void FinishExchange(Connection& c) {
    TimerList::Unlink(&c.timer);
    const http::MessageHead& resp = c.x->resp.head();
    const bool reusable = !c.abandon_request && !c.slot_unusable && resp.keep_alive && c.req_sent &&
                          !c.slot_send_busy && !c.slot_recv_busy;
    if (reusable) {
      slots::Slot* slot = c.slot;
      c.slot = nullptr;
      ReleaseSlot(*c.pool, slot);
    } else {
      KillSlot(c);
      if (c.slot != nullptr) c.close_after = true;  // still draining: no next request on it
    }
    FinishRequest(c);
  }

  // ---------------------------------------------------------------- tunnel (after 101)

  void StartTunnel(Connection& c) {
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

  void PumpTunnelToSlot(Connection& c) {
    Exchange& x = *c.x;
    if (c.slot_send_busy || c.slot_dead) return;
    x.in_scan = x.in_len;  // everything from the client is tunnel payload
    x.aux_len = x.aux_sent = 0;
    if (x.in_scan > x.head_len) {
      SendToSlot(c);
    } else {
      MaybeShutdownTunnelToSlot(c);
    }
  }

  // A client half-close is passed on to the service (SHUT_WR) once every byte the client sent
  // before it has been forwarded.
  void MaybeShutdownTunnelToSlot(Connection& c) {
    if (!c.tunnel_client_eof || c.tunnel_slot_shut || c.slot == nullptr || c.slot_dead) return;
    const Exchange& x = *c.x;
    if (c.slot_send_busy || c.pend_head >= 0 || x.in_len > x.head_len) return;
    c.tunnel_slot_shut = true;
    ::shutdown(c.slot->fd(), SHUT_WR);
    MaybeEndTunnel(c);
  }

  // The tunnel ends when both directions are done.
  void MaybeEndTunnel(Connection& c) {
    if (c.tunnel_slot_shut && c.tunnel_slot_eof) Close(c);
  }

  // ---------------------------------------------------------------- failures

  // The slot failed (closed, reset, send error) during the exchange.
  void OnSlotFailure(Connection& c, int res) {
    Exchange& x = *c.x;
    const bool nothing_received = x.resp_len == 0 && !c.resp_head_done && !c.response_started;
    L7PX_LOG_LIMITED(kWarn, "pool {}: slot of {} failed ({}) {}", c.pool->name(),
                     c.slot->service_id(), res == 0 ? "closed" : strerror(-res),
                     nothing_received ? "before any response byte" : "mid-response");
    if (c.response_started) {
      KillSlot(c);
      Close(c);  // headers already went out: abort the client connection
      return;
    }
    const http::MessageHead& req = x.req.head();
    const bool replayable = nothing_received && req.framing == http::Framing::kNone &&
                            http::IsIdempotentMethod(req.method);
    if (replayable && c.attempts <= c.settings.retries) {
      Bump(stats_->retries);
      Bump(stats_->pools.For(c.pool->id()).retries);
      c.retry_pending = true;  // RetireSlot re-dispatches once the slot's ops drained
      KillSlot(c);
      return;
    }
    KillSlot(c);
    Respond(c, 502, /*close=*/!c.req_done);
  }

  void BadResponse(Connection& c, std::string_view why) {
    L7PX_LOG_LIMITED(kWarn, "pool {}: bad response from {}: {}", c.pool->name(),
                     c.slot->service_id(), why);
    KillSlot(c);
    if (c.response_started) {
      Close(c);
    } else {
      Respond(c, 502, /*close=*/!c.req_done);
    }
  }

  // The slot will not be reused: dead now, retired to the acceptor once no op references it.
  void KillSlot(Connection& c) {
    if (c.slot == nullptr) return;
    if (!c.slot_dead) {
      slots::KillLeasedSlot(*c.pool, *c.slot);
      c.slot_dead = true;
    }
    if (c.slot_ops == 0) RetireSlot(c);
  }

  void RetireSlot(Connection& c) {
    if (c.slot == nullptr) return;
    PostRetire(c.slot);
    c.slot = nullptr;
    c.slot_dead = false;
    if (c.retry_pending && c.state == ConnState::kExchange) {
      c.retry_pending = false;
      c.x->resp_len = c.x->resp_scan = 0;
      Dispatch(c);
    }
  }

  // ---------------------------------------------------------------- responses & request end

  // Answers the current request with a response l7px makes itself.
  void Respond(Connection& c, int status, bool close) {
    if (c.state == ConnState::kQueued) Dequeue(c);
    if (c.slot != nullptr) KillSlot(c);
    if (c.slot != nullptr) close = true;  // still draining its ops: no next request here
    Exchange& x = EnsureExchangeBuffers(c);
    if (!c.req_done) close = true;  // unread body bytes would be taken for the next request
    // The request's own connection semantics hold for l7px's answers too: after a request that
    // said Connection: close (or an HTTP/1.0 one without keep-alive) nothing pipelined behind
    // it is executed.
    const bool have_head = x.req.head_done();
    if (have_head && !x.req.head().keep_alive) close = true;
    c.close_after |= close || DrainWantsClose(c) || ClientDoneAfterThis(c);
    c.status = status;
    c.state = ConnState::kResponding;
    TimerList::Unlink(&c.timer);
    TimerList::Unlink(&c.body_timer);
    // An interim response (100 Continue) may still be going out: the answer follows it.
    const uint32_t at = c.client_send_busy ? x.out_len : 0;
    const size_t n = http::WriteErrorResponse(status, c.close_after, status == 503 ? 1 : 0,
                                              x.out + at, out_pool_.size() - at);
    x.out_len = at + static_cast<uint32_t>(
                         have_head && x.req.head().is_head_request ? HeadLength(x.out + at, n) : n);
    if (!c.client_send_busy) x.out_sent = 0;
    x.fwd_off = x.fwd_len = 0;
    SendToClient(c);
  }

  void FinishRequest(Connection& c) {
    Exchange& x = *c.x;
    TimerList::Unlink(&c.body_timer);
    LogRequest(c);
    if (c.close_after || ClientDoneAfterThis(c)) {
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
    c.pool = nullptr;
    c.state = ConnState::kIdle;
    c.first_request = false;
    DrainPending(c);
    if (x.in_len == 0 && c.pend_head < 0) {
      ReleaseExchange(c);
      IdleTimer().Start(&c.timer, now_ns_);
      return;
    }
    ProcessInput(c);
  }

  void LogRequest(Connection& c) {
    const int cls = c.status / 100;
    if (cls >= 1 && cls <= 5) {
      Bump(stats_->responses_by_class[cls]);
    }
    if (c.pool != nullptr && c.status >= 100 && c.status < 600) {
      PoolMetrics& m = stats_->pools.For(c.pool->id());
      Bump(m.responses[c.status]);
      m.duration.Observe(now_ns_ - c.start_ns);
      m.queue_wait.Observe(c.queue_wait_ns);
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
    e.status = c.status;
    e.bytes_sent = c.bytes_out;
    e.duration_us = (now_ns_ - c.start_ns) / 1000;
    e.queue_wait_us = c.queue_wait_ns / 1000;
    e.pool = c.pool != nullptr ? std::string_view(c.pool->name()) : std::string_view("-");
    e.service =
        c.service_len > 0 ? std::string_view(c.service, c.service_len) : std::string_view("-");
    // The id the service saw: a trusted proxy's, or l7px's own.
    e.request_id = c.pool != nullptr ? http::ServiceRequestId(req, c.trusted_peer,
                                                              std::string_view(c.request_id, 32))
                                     : std::string_view("-");
    access_log_.Append(e);
  }

  void FlushAccessLog() {
    if (log_write_inflight_) return;
    const char* data;
    size_t len;
    if (!access_log_.NextWrite(&data, &len)) return;
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_write(sqe, access_log_.fd(), data, static_cast<unsigned>(len), -1);
    io_uring_sqe_set_data64(sqe, io::Tag{kOpLogWrite, 0, 0}.Pack());
    log_write_inflight_ = true;
  }

  // ---------------------------------------------------------------- timers

  void OnTick() {
    if (!shared_->stop.load()) ArmTick();
    now_ns_ = MonotonicNanos();
    timers_.Expire(now_ns_, [this](TimerNode* n) { OnTimeout(*FromTimerNode(n)); });
    while (Waiter* w = dispatcher_.TakeExpired(now_ns_)) {
      Connection& c = Dequeued(w);
      Bump(stats_->shed_queue_timeout);
      Bump(stats_->pools.For(c.pool->id()).shed_queue_timeout);
      L7PX_LOG_LIMITED(kWarn, "pool {}: request waited past queue_timeout; 503", c.pool->name());
      Respond(c, 503, /*close=*/false);
    }
    body_timers_.Expire(now_ns_, [this](TimerNode* n) { OnBodyWindow(*FromBodyNode(n)); });
  }

  // ---------------------------------------------------------------- request body pace

  // l7px is not reading the client now: received bytes wait for room in `in` (backpressure from
  // the service or the queue), or the receive ran out of provided buffers.
  bool ReadingPaused(const Connection& c) const {
    return c.pend_head >= 0 || c.needs_rearm || (c.x != nullptr && c.x->in_len == in_pool_.size());
  }

  // A body_timeout window starts (see body_rate.h).
  void StartBodyWindow(Connection& c) {
    c.body_window_bytes = 0;
    c.body_window_paused = ReadingPaused(c);
    c.body_window_start_ns = now_ns_;
    body_timers_.For(limits_->body_timeout_ns).Start(&c.body_timer, now_ns_);
  }

  void OnBodyWindow(Connection& c) {
    if (c.state == ConnState::kQueued) {
      // Waiting for a slot is not the client's delay (with Expect: 100-continue it is not even
      // asked to send yet): the window restarts when the request gets a slot.
      StartBodyWindow(c);
      return;
    }
    const bool waiting_for_body =
        !c.req_done && !c.abandon_request &&
        (c.state == ConnState::kReadingBody || c.state == ConnState::kQueued ||
         c.state == ConnState::kExchange);
    if (!waiting_for_body) return;
    const int64_t elapsed = now_ns_ - c.body_window_start_ns;
    switch (JudgeBodyWindow(c.body_window_bytes, c.body_window_paused || ReadingPaused(c), elapsed,
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
                     std::string_view(c.ip, c.ip_len), c.body_window_bytes, elapsed / 1'000'000,
                     limits_->min_body_rate);
    if (c.response_started) {
      Close(c);
    } else {
      Respond(c, 408, /*close=*/true);
    }
  }

  // The one timer of a connection fired; what it meant depends on the state.
  void OnTimeout(Connection& c) {
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
        if (c.client_send_busy) {
          Bump(stats_->send_timeouts);
          L7PX_LOG_LIMITED(kInfo,
                           "client {}: not reading the response of pool {} past send_timeout ({} "
                           "bytes sent); closed",
                           std::string_view(c.ip, c.ip_len), c.pool->name(), c.bytes_out);
          Close(c);
          break;
        }
        L7PX_LOG_LIMITED(kWarn, "pool {}: service {} silent past response_timeout", c.pool->name(),
                         std::string_view(c.service, c.service_len));
        if (c.response_started) {
          Close(c);
        } else {
          Respond(c, 504, /*close=*/!c.req_done);
        }
        break;
      default:
        break;
    }
  }

  // The connection's one timer (header, keep-alive, queue or response timeout).
  TimerList& TimerFor(int64_t duration_ns) { return timers_.For(duration_ns); }

  // Receives that ended for want of provided buffers (ENOBUFS) are re-armed oldest first, only
  // as many as there are free buffers: re-arming them all at once would mostly fail again and
  // spin through the same list every loop pass while the ring stays short.
  void RearmStarved() {
    if (starved_.empty()) return;
    const uint32_t outstanding = buffers_.outstanding();
    if (outstanding + kStarvedRearmReserve > kProvidedBufferCount) return;
    uint32_t budget = kProvidedBufferCount - kStarvedRearmReserve - outstanding;
    size_t done = 0;
    for (; done < starved_.size() && budget > 0; ++done) {
      Connection* c = starved_[done];
      if (!c->needs_rearm) continue;  // closed (and maybe reused) since
      c->needs_rearm = false;
      if (c->state != ConnState::kClosing && c->pend_head < 0) {
        ArmClientRecv(*c);
        --budget;
      }
    }
    starved_.erase(starved_.begin(), starved_.begin() + static_cast<ptrdiff_t>(done));
  }

  int id_;
  SharedState* shared_;
  WorkerStats* stats_;
  const config::Config& cfg_;
  io::Ring ring_;
  io::BufferRing buffers_;
  std::vector<int32_t> pend_next_;
  std::vector<uint32_t> pend_len_;
  std::vector<UniqueFd> listeners_;
  bool draining_ = false;
  std::vector<std::unique_ptr<Connection>> conns_;
  Connection* free_conns_ = nullptr;
  std::vector<Exchange*> free_exchanges_;
  size_t exchanges_ = 0;  // Exchanges created: free_exchanges_ has room for all of them
  std::vector<Connection*> starved_;
  BufferPool in_pool_;
  BufferPool aux_pool_;  // request heads for services (ServiceRequestHeadCapacity)
  BufferPool out_pool_;  // response heads for clients, and l7px's own answers
  BufferPool resp_pool_;
  TimerLists timers_;       // Connection::timer
  TimerLists body_timers_;  // Connection::body_timer
  io::AcceptGate accept_gate_;
  std::vector<AcceptState> accept_state_;  // by listener
  std::vector<bool> accept_multishot_;     // by listener: the armed accept is multishot
  bool at_connection_limit_ = false;
  bool ack_before_probe_ = true;          // cleared if the kernel cannot set TCP_QUICKACK by ring
  Dispatcher dispatcher_{id_};            // this worker's wait queues and their policy
  const ServerLimits* limits_ = nullptr;  // read each loop pass (RCU)
  http::Parser::Limits request_limits_;
  http::RequestIdGenerator request_ids_;
  AccessLog access_log_;
  bool log_write_inflight_ = false;
  int64_t now_ns_ = 0;
  __kernel_timespec tick_ts_{};
};

Worker::Worker(int id, SharedState* shared, std::vector<UniqueFd> listeners)
    : id_(id), shared_(shared), listeners_(std::move(listeners)) {}

Worker::~Worker() { Join(); }

absl::Status Worker::Start() {
  loop_ = std::make_unique<Loop>(id_, shared_, &stats_, std::move(listeners_));
  std::promise<absl::Status> started;
  std::future<absl::Status> result = started.get_future();
  thread_ = std::thread([this, started = std::move(started)]() mutable {
    NameThisThread(absl::StrCat("l7px-worker-", id_));
    absl::Status status = loop_->Init();
    if (status.ok()) ring_fd_ = loop_->ring_fd();
    const bool ok = status.ok();
    started.set_value(std::move(status));
    if (ok) loop_->Run(go_);
  });
  absl::Status status = result.get();
  if (!status.ok()) thread_.join();
  return status;
}

void Worker::Go() {
  go_.store(true, std::memory_order_release);
  go_.notify_all();
}

void Worker::Join() {
  if (thread_.joinable()) {
    Go();  // a worker never released still has to leave its wait
    thread_.join();
  }
}

}  // namespace l7px::proxy
