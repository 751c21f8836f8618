// The acceptor thread.
//
// Invariants:
//  - Every Slot is created here and freed here, and its fd is closed only here (FinishRetire),
//    after the liveness poll on it has completed.
//  - A registered slot has exactly one liveness poll armed until the slot is retired: wide
//    (POLLIN | POLLRDHUP) while it is idle, narrow (POLLRDHUP) once seen busy, so response bytes
//    on a slot in use do not wake this thread (idle_watch.h).
//  - A pending registration owns its fd until it becomes a Slot or is refused; at most one recv is
//    in flight for it, and it is freed only after that recv completed.
//  - A slot l7px dialed (a pool's upstreams, dialer.h) is a slot like any other here; the Dialer
//    hears of each one filed (AddSlot) and freed (FinishRetire).
#include "acceptor/acceptor.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <future>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "acceptor/dialer.h"
#include "acceptor/idle_watch.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/reserve.h"
#include "base/strings.h"
#include "base/thread_name.h"
#include "io/accept_gate.h"
#include "io/mailbox.h"
#include "io/ring.h"
#include "io/socket.h"
#include "slots/instance_health.h"
#include "slots/slot_lifecycle.h"

namespace l7px::acceptor {
namespace {

enum Op : uint8_t {
  kOpAccept = 1,
  kOpHandshakeRecv = 2,
  kOpPoll = 3,
  kOpTick = 4,
  kOpPostFailed = 5,
  kOpPollUpdate = 6,
  kOpPollRemove = 7,  // completions of cancels (and linked timeouts) we do not need to see
  kOpConnect = 8,     // a dial of the Dialer
};

constexpr int64_t kTickNs = 100'000'000;

void SendSmall(int fd, std::string_view bytes) {
  // The socket's send buffer is empty at this point, so a non-blocking send writes it whole.
  const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  (void)n;
}

}  // namespace

class Acceptor::Loop {
 public:
  Loop(AcceptorOptions& options, std::atomic<bool>& stop)
      : options_(options),
        stop_(stop),
        dialer_(
            options.pools, &ring_,
            [this](UniqueFd fd, slots::Pool& pool, const std::string& service, uint32_t entry) {
              return AddDialed(std::move(fd), pool, service, entry);
            },
            kOpConnect, kOpPollRemove) {}

  absl::Status Init() { return ring_.Init(256); }

  int ring_fd() const { return ring_.fd(); }

  void Run() {
    Quiescent(false);
    accept_armed_.assign(options_.listeners.size(), false);
    UpdateAccepting();
    ArmTick();
    dialer_.set_held(options_.hold_dials);
    dialer_.Tick(MonotonicNanos());
    while (!stop_.load(std::memory_order_acquire)) {
      Quiescent(true);  // holds no pool settings while it waits
      ring_.SubmitAndWait(-1);
      Quiescent(false);
      ring_.Drain([this](io_uring_cqe* cqe) { Handle(cqe); });
      UpdateAccepting();
      dialer_.Pump(MonotonicNanos());
    }
    Shutdown();
    Quiescent(true);
  }

 private:
  struct Pending {
    UniqueFd fd;
    SocketAddress peer;
    HandshakeParser parser;
    int64_t deadline_ns;
    uint32_t generation;
    bool closing = false;
    char buf[2048];
    Pending(UniqueFd f, SocketAddress p, HandshakeParser::Mode mode, int64_t deadline, uint32_t gen)
        : fd(std::move(f)), peer(p), parser(mode), deadline_ns(deadline), generation(gen) {}
  };

  void Quiescent(bool quiescent) {
    if (options_.quiescent) options_.quiescent(quiescent);
  }

  void ArmAccept(uint32_t listener) {
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_multishot_accept(sqe, options_.listeners[listener].fd.get(), nullptr, nullptr,
                                   SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, io::Tag{kOpAccept, 0, listener}.Pack());
    accept_armed_[listener] = true;
  }

  // Re-arms ended accepts unless out of descriptors (io::AcceptGate); runs after every batch,
  // and so at least every tick.
  void UpdateAccepting() {
    if (stop_.load(std::memory_order_relaxed) || !accepting_) return;
    if (!accept_gate_.Open(MonotonicNanos(), 0, 0)) return;
    for (uint32_t i = 0; i < accept_armed_.size(); ++i) {
      if (!accept_armed_[i]) ArmAccept(i);
    }
  }

  void ArmTick() {
    tick_ts_.tv_sec = 0;
    tick_ts_.tv_nsec = kTickNs;
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_timeout(sqe, &tick_ts_, 0, 0);
    io_uring_sqe_set_data64(sqe, io::Tag{kOpTick, 0, 0}.Pack());
  }

  void ArmHandshakeRecv(uint32_t index) {
    Pending& p = *pending_[index];
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_recv(sqe, p.fd.get(), p.buf, sizeof(p.buf), 0);
    io_uring_sqe_set_data64(sqe, io::Tag{kOpHandshakeRecv, p.generation, index}.Pack());
  }

  static uint64_t PollTag(const slots::Slot& slot) {
    return io::Tag{kOpPoll, slot.poll_generation, slot.table_index}.Pack();
  }

  // Arms the slot's liveness watch, wide or narrow (idle_watch.h).
  void ArmPoll(slots::Slot& slot, bool wide) {
    slot.poll_armed = true;
    slot.watch_wide = wide;
    slot.watch_seen_idle = false;
    slot.poll_generation = ++poll_generation_ & 0xFFFFFF;
    io_uring_sqe* sqe = ring_.Sqe();
    io_uring_prep_poll_add(sqe, slot.fd(), wide ? kWideWatch : kNarrowWatch);
    io_uring_sqe_set_data64(sqe, PollTag(slot));
  }

  // Tick: narrow watches on slots idle since the previous tick become wide. If the poll fired
  // meanwhile the update finds nothing (its own completion is ignored) and OnPoll re-arms.
  void WidenIdleWatches() {
    for (slots::Slot* slot : slots_) {
      if (slot == nullptr || slot->retiring || !slot->poll_armed || slot->watch_wide) continue;
      if (!IdleSinceLastTick(*slot)) continue;
      slot->watch_wide = true;
      io_uring_sqe* sqe = ring_.Sqe();
      // new_user_data must be 0 without IORING_POLL_UPDATE_USER_DATA (else -EINVAL).
      io_uring_prep_poll_update(sqe, PollTag(*slot), 0, kWideWatch, IORING_POLL_UPDATE_EVENTS);
      io_uring_sqe_set_data64(sqe, io::Tag{kOpPollUpdate, 0, slot->table_index}.Pack());
    }
  }

  void Handle(io_uring_cqe* cqe) {
    const uint64_t data = cqe->user_data;
    const uint8_t op = static_cast<uint8_t>(data >> 56);
    switch (op) {
      case kMsgRetireSlot:
        Retire(io::MessagePointer<slots::Slot>(data));
        return;
      case kMsgSlotMoved:
        ForgetMoved(io::MessagePointer<slots::Slot>(data));
        return;
      case kMsgAdoptSlot:
        Adopt(std::unique_ptr<AdoptedSlot>(io::MessagePointer<AdoptedSlot>(data)));
        return;
      case kMsgPauseRegistrations:
        SetAccepting(false);
        return;
      case kMsgResumeRegistrations:
        SetAccepting(true);
        return;
      case kMsgReleaseDials:
        dialer_.set_held(false);
        return;
      default:
        break;
    }
    const io::Tag tag = io::Tag::Unpack(data);
    switch (tag.op) {
      case kOpAccept:
        OnAccept(tag.index, cqe->res, (cqe->flags & IORING_CQE_F_MORE) != 0);
        break;
      case kOpHandshakeRecv:
        OnHandshakeRecv(tag.index, tag.generation, cqe->res);
        break;
      case kOpPoll:
        OnPoll(tag.index, tag.generation, cqe->res);
        break;
      case kOpPollUpdate:
        break;  // -ENOENT when the poll fired first: OnPoll handles that one
      case kOpTick:
        OnTick();
        break;
      case kOpConnect:
        dialer_.OnConnect(tag.index, tag.generation, cqe->res, MonotonicNanos());
        break;
      case kOpPostFailed:
        L7PX_LOG_LIMITED(kWarn, "acceptor: waking a worker failed: {}", strerror(-cqe->res));
        break;
      default:
        break;
    }
  }

  // Re-arming happens in UpdateAccepting, after the batch.
  void OnAccept(uint32_t listener, int res, bool more) {
    if (!more) accept_armed_[listener] = false;
    if (res < 0) {
      if (res == -ECANCELED) return;
      if (io::AcceptGate::IsExhaustion(-res)) {
        if (accept_gate_.Exhausted(MonotonicNanos())) {
          L7PX_LOG(kWarn,
                   "register accept on {}: {}; pausing registrations ({} ms, backing off to 1 s) "
                   "until descriptors free up",
                   options_.listeners[listener].address.ToString(), strerror(-res),
                   accept_gate_.backoff_ns() / 1'000'000);
        }
        return;
      }
      L7PX_LOG_LIMITED(kWarn, "register accept on {}: {}",
                       options_.listeners[listener].address.ToString(), strerror(-res));
      return;
    }
    if (accept_gate_.Accepted()) {
      L7PX_LOG(kInfo, "register accepts work again after {} failures", accept_gate_.failures());
    }
    UniqueFd fd(res);
    SocketAddress peer = options_.listeners[listener].address.is_unix()
                             ? options_.listeners[listener].address
                             : io::PeerAddress(fd.get());
    if (!Allowed(peer)) {
      ++refused_peers_;
      L7PX_LOG_LIMITED(kWarn, "registration from {} refused: not in register.allow",
                       peer.ToString());
      return;  // fd closes here
    }
    io::TuneStreamSocket(fd.get());
    if (options_.handshake == HandshakeParser::Mode::kNone) {
      Register(std::move(fd), peer, "", "", false, peer.ToString(), InstanceKey("", peer),
               HandshakeParser::Protocol::kSlotV1);
      return;
    }
    uint32_t index;
    if (!free_pending_.empty()) {
      index = free_pending_.back();
      free_pending_.pop_back();
    } else {
      index = static_cast<uint32_t>(pending_.size());
      pending_.emplace_back();
    }
    pending_[index] =
        std::make_unique<Pending>(std::move(fd), peer, options_.handshake,
                                  MonotonicNanos() + options_.handshake_timeout_ns, ++generation_);
    ArmHandshakeRecv(index);
  }

  bool Allowed(const SocketAddress& peer) const {
    if (options_.allow.empty()) return peer.is_loopback();
    if (peer.is_unix()) return true;
    for (const Cidr& cidr : options_.allow) {
      if (cidr.Contains(peer)) return true;
    }
    return false;
  }

  void FreePending(uint32_t index) {
    pending_[index].reset();
    free_pending_.push_back(index);
  }

  void Refuse(uint32_t index, int status, std::string_view why) {
    Pending& p = *pending_[index];
    L7PX_LOG_LIMITED(kWarn, "registration from {} refused with {}: {}", p.peer.ToString(), status,
                     why);
    SendSmall(p.fd.get(), RefusalResponse(status, why));
    FreePending(index);
  }

  void OnHandshakeRecv(uint32_t index, uint32_t generation, int res) {
    if (index >= pending_.size() || !pending_[index] || pending_[index]->generation != generation) {
      return;
    }
    Pending& p = *pending_[index];
    if (p.closing || res <= 0) {
      if (!p.closing && res < 0) {
        L7PX_LOG_LIMITED(kInfo, "registration from {} failed: {}", p.peer.ToString(),
                         strerror(-res));
      }
      FreePending(index);
      return;
    }
    size_t consumed = 0;
    const auto status = p.parser.Feed(p.buf, static_cast<size_t>(res), &consumed);
    if (status == HandshakeParser::Status::kNeedMore) {
      ArmHandshakeRecv(index);
      return;
    }
    if (status == HandshakeParser::Status::kRejected) {
      Refuse(index, 400, p.parser.reject_reason());
      return;
    }
    if (consumed < static_cast<size_t>(res)) {
      Refuse(index, 400, "bytes after the registration head");
      return;
    }
    const std::string service = p.parser.service().empty() ? p.peer.ToString() : p.parser.service();
    const std::string instance = InstanceKey(p.parser.service(), p.peer);
    UniqueFd fd = std::move(p.fd);
    const SocketAddress peer = p.peer;
    const std::string pool = p.parser.pool();
    const std::string token = p.parser.token();
    const bool has_token = p.parser.has_token();
    const HandshakeParser::Protocol protocol = p.parser.protocol();
    FreePending(index);
    Register(std::move(fd), peer, pool, token, has_token, service, instance, protocol);
  }

  // What a slot's instance is called: its L7px-Service id, or without one its peer's IP.
  static std::string InstanceKey(const std::string& service_id, const SocketAddress& peer) {
    if (!service_id.empty()) return service_id;
    if (peer.is_unix()) return peer.ToString();
    char ip[64];
    return std::string(ip, peer.FormatIp(ip, sizeof(ip)));
  }

  void Register(UniqueFd fd, const SocketAddress& peer, const std::string& pool_name,
                const std::string& token, bool has_token, const std::string& service,
                const std::string& instance, HandshakeParser::Protocol protocol) {
    slots::Pool* pool = options_.pools->Find(pool_name.empty() ? options_.default_pool : pool_name);
    auto refuse = [&](int status, std::string_view why) {
      if (pool != nullptr) pool->registrations_refused.fetch_add(1, std::memory_order_relaxed);
      L7PX_LOG_LIMITED(kWarn, "registration of {} from {} refused with {}: {}", service,
                       peer.ToString(), status, why);
      if (options_.handshake == HandshakeParser::Mode::kUpgrade) {
        SendSmall(fd.get(), RefusalResponse(status, why));
      }
    };
    if (pool == nullptr) {
      return refuse(404, "unknown pool");
    }
    const std::string& want = pool->settings().token;
    if (!want.empty() && (!has_token || !ConstantTimeEquals(token, want))) {
      return refuse(403, "bad token");
    }
    const int64_t limit = std::min(pool->settings().max_slots, pool->slot_capacity());
    if (pool->registered.load(std::memory_order_relaxed) >= limit) {
      return refuse(503, "pool is at max_slots");
    }
    if (options_.handshake == HandshakeParser::Mode::kUpgrade) {
      SendSmall(fd.get(), SwitchingProtocolsResponse(protocol));
    }
    pool->registrations_ok.fetch_add(1, std::memory_order_relaxed);
    L7PX_LOG(kDebug, "slot registered: pool={} service={} peer={}{}", pool->name(), service,
             peer.ToString(), protocol == HandshakeParser::Protocol::kPtth ? " (ptth)" : "");
    AddSlot(std::move(fd), *pool, service, instance);
  }

  // A connection the Dialer made to one of `pool`'s upstreams (`service`, also its instance).
  slots::Slot* AddDialed(UniqueFd fd, slots::Pool& pool, const std::string& service,
                         uint32_t entry) {
    const int64_t limit = std::min<int64_t>(pool.settings().max_slots, pool.slot_capacity());
    if (pool.closing() || pool.registered.load(std::memory_order_relaxed) >= limit) return nullptr;
    L7PX_LOG(kDebug, "slot dialed: pool={} upstream={}", pool.name(), service);
    return AddSlot(std::move(fd), pool, service, service, entry);
  }

  // A registered (or dialed: `upstream` is its Dialer entry) connection becomes an idle slot of
  // `pool`, of instance `instance`. nullptr when it could not be filed (the fd is closed).
  slots::Slot* AddSlot(UniqueFd fd, slots::Pool& pool, const std::string& service,
                       const std::string& instance, uint32_t upstream = Dialer::kNone) {
    auto owned = std::make_unique<slots::Slot>(std::move(fd), pool.id(), service);
    if (!pool.AttachSlot(*owned, instance, MonotonicNanos())) {
      CompactIdle(pool);  // dead slots still in the stack give their cells back
      if (!pool.AttachSlot(*owned, instance, MonotonicNanos())) {
        // Cannot happen while fewer than half the cells hold dead slots and the pool has fewer
        // than InstanceTable::kMaxInstances instances; never leak the fd.
        L7PX_LOG(kError, "pool {}: idle stack or instance table full; closing a new slot of {}",
                 pool.name(), service);
        return nullptr;
      }
    }
    slots::Slot* slot = owned.release();
    if (!free_slots_.empty()) {
      slot->table_index = free_slots_.back();
      free_slots_.pop_back();
      slots_[slot->table_index] = slot;
    } else {
      slot->table_index = static_cast<uint32_t>(slots_.size());
      slots_.push_back(slot);
      ReserveAtLeast(compact_, slots_.size());  // CompactIdle then never allocates
    }
    if (upstream != Dialer::kNone) {
      slot->set_dialed();  // before any worker can see it
      slot->upstream = upstream;
      dialer_.Attach(*slot);
    }
    pool.CountService(service, +1);
    pool.registered.fetch_add(1, std::memory_order_relaxed);
    ArmPoll(*slot, /*wide=*/true);
    pool.PushIdle(slot);  // benched with its instance, if that is benched
    WakeWaiter(pool);
    return slot;
  }

  // A slot handed over by the process this one took over from: already upgraded, idle.
  void Adopt(std::unique_ptr<AdoptedSlot> adopted) {
    slots::Pool* pool = options_.pools->Find(adopted->pool);
    if (pool == nullptr) {
      L7PX_LOG(kWarn, "takeover: closing a slot of {} for pool {}: no such pool in this config",
               adopted->service, adopted->pool);
      return;  // the service sees the close and re-registers where it can
    }
    const int64_t limit = std::min<int64_t>(pool->settings().max_slots, pool->slot_capacity());
    if (pool->registered.load(std::memory_order_relaxed) >= limit) {
      L7PX_LOG(kWarn, "takeover: closing a slot of {}: pool {} is at max_slots", adopted->service,
               pool->name());
      return;
    }
    ++adopted_;
    // A slot the other process dialed to one of this pool's upstreams carries the address as its
    // service id: it counts toward that address's upstream_slots here.
    if (const uint32_t entry = dialer_.Find(*pool, adopted->service); entry != Dialer::kNone) {
      AddSlot(std::move(adopted->fd), *pool, adopted->service, adopted->service, entry);
      return;
    }
    // The handoff carries the service id only: one l7px wrote for a slot registered without an
    // id is its peer's "ip:port", whose instance is the IP.
    const absl::StatusOr<SocketAddress> as_peer = SocketAddress::Parse(adopted->service);
    const std::string instance =
        as_peer.ok() && !as_peer->is_unix() ? InstanceKey("", *as_peer) : adopted->service;
    AddSlot(std::move(adopted->fd), *pool, adopted->service, instance);
  }

  // Another process holds this slot's connection now: close our fd once our poll is gone,
  // without shutdown() (that would end the connection for the other process too).
  void ForgetMoved(slots::Slot* slot) {
    slot->retiring = true;
    if (slot->poll_armed) {
      io_uring_sqe* sqe = ring_.Sqe();
      io_uring_prep_poll_remove(sqe, PollTag(*slot));
      io_uring_sqe_set_data64(sqe, io::Tag{kOpPollRemove, 0, 0}.Pack());
      return;  // the poll completes with -ECANCELED; FinishRetire runs then
    }
    FinishRetire(*slot);
  }

  void SetAccepting(bool on) {
    if (accepting_ == on) return;
    accepting_ = on;
    dialer_.set_paused(!on);  // a successor takes this process's upstream slots too
    if (!on) {
      for (uint32_t i = 0; i < accept_armed_.size(); ++i) {
        if (!accept_armed_[i]) continue;
        io_uring_sqe* sqe = ring_.Sqe();
        io_uring_prep_cancel64(sqe, io::Tag{kOpAccept, 0, i}.Pack(), 0);
        io_uring_sqe_set_data64(sqe, io::Tag{kOpPollRemove, 0, 0}.Pack());
      }
    }
    UpdateAccepting();  // re-arms when resuming
    L7PX_LOG(kInfo, "acceptor: {} registrations", on ? "resumed" : "stopped");
  }

  // Pops every idle slot, retires the dead ones and pushes the live ones back in their order.
  // A slot that died while idle stays in the stack until popped, and under light load the
  // bottom of a LIFO is never popped: this is what closes such slots (OnTick) and frees their
  // cells. Workers that find the stack empty meanwhile queue their requests; WakeAllWaiters
  // serves them once the slots are back.
  void CompactIdle(slots::Pool& pool) {
    compact_.clear();
    // Bounded: every slot popped here stays ours until pushed back below.
    while (slots::Slot* s = pool.PopAnyIdle()) compact_.push_back(s);
    bool pushed = false;
    for (auto it = compact_.rbegin(); it != compact_.rend(); ++it) {
      if ((*it)->state() == slots::Slot::State::kDead) {
        Retire(*it);
      } else {
        pool.PushIdle(*it);
        pushed = true;
      }
    }
    compact_.clear();
    if (pushed) WakeAllWaiters(pool);
  }

  // True when a slot of `pool` died but was not retired yet: killed while idle and still in
  // the stack, or (briefly) on its way here from a worker. Open tunnels hold their cells too
  // (slots/slot_lifecycle.h) without being registered.
  static bool HasUnretiredDeadSlots(const slots::Pool& pool) {
    return static_cast<int64_t>(pool.idle().bound()) >
           pool.registered.load(std::memory_order_relaxed) +
               pool.tunnels.load(std::memory_order_relaxed);
  }

  // One slot became idle: wake the worker holding the pool's oldest waiter.
  void WakeWaiter(slots::Pool& pool) {
    pool.SyncPoint();
    PostSlotAvailable(pool, pool.PickWorkerToWake(-1));
  }

  // Several slots became idle at once: wake every worker with a waiter (each serves its own
  // while slots last; waking only the oldest would strand the others' waiters).
  void WakeAllWaiters(slots::Pool& pool) {
    pool.SyncPoint();
    for (int w = 0; w < static_cast<int>(options_.worker_ring_fds.size()); ++w) {
      if (pool.HasWaiter(w)) PostSlotAvailable(pool, w);
    }
  }

  void PostSlotAvailable(slots::Pool& pool, int worker) {
    if (worker < 0 || worker >= static_cast<int>(options_.worker_ring_fds.size())) return;
    io::PrepPostMessage(ring_.Sqe(), options_.worker_ring_fds[worker],
                        io::PackMessage(kMsgSlotAvailable, pool.id()), 0,
                        io::Tag{kOpPostFailed, 0, 0}.Pack());
  }

  void OnPoll(uint32_t index, uint32_t generation, int res) {
    if (index >= slots_.size() || slots_[index] == nullptr) return;
    slots::Slot& slot = *slots_[index];
    if (slot.poll_generation != generation) return;  // not this slot's current poll
    slot.poll_armed = false;
    if (slot.retiring) {
      FinishRetire(slot);
      return;
    }
    slots::Pool& pool = *options_.pools->at(slot.pool_id());
    const uint64_t epoch = slot.epoch();
    const slots::Slot::State state = slot.state();
    if (state == slots::Slot::State::kDead)
      return;  // a worker killed it; its retire message follows
    if (state == slots::Slot::State::kIdle) {
      const IdleSlotCheck check = PeekIdleSlot(slot.fd());
      if (check == IdleSlotCheck::kQuiet) {
        // A response a worker has read since: the slot is in use. Watching it wide again now
        // would wake this thread for every response; the tick widens it once it stays idle.
        ArmPoll(slot, /*wide=*/false);
        return;
      }
      // The kill fails if a worker leased the slot since `epoch`: the bytes may be its response.
      if (slot.TryKillIdle(epoch)) {
        slots::AccountIdleSlotKilled(pool, slot);
        if (check == IdleSlotCheck::kBytes) {
          pool.stray_idle.fetch_add(1, std::memory_order_relaxed);
          L7PX_LOG_LIMITED(kWarn,
                           "pool {}: service {} sent bytes on an idle slot (no request "
                           "outstanding): protocol violation; slot closed",
                           pool.name(), slot.service_id());
        } else {
          L7PX_LOG(kInfo, "pool {}: service {} closed an idle slot; pruned", pool.name(),
                   slot.service_id());
        }
        return;
      }
    }
    const bool hangup = res < 0 || (res & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
    if (!hangup) {
      ArmPoll(slot, /*wide=*/false);  // response bytes on a busy slot: watch for a close only
      return;
    }
    // Busy and closed: tell the worker holding it, then re-check in case it was released.
    slot.peer_closed.store(true, std::memory_order_relaxed);
    pool.SyncPoint();
    const uint64_t now_epoch = slot.epoch();
    if (slot.state() == slots::Slot::State::kIdle && slot.TryKillIdle(now_epoch)) {
      slots::AccountIdleSlotKilled(pool, slot);
    }
  }

  // A slot nobody will use again: close once its poll is gone, then free.
  void Retire(slots::Slot* slot) {
    slot->retiring = true;
    if (slot->poll_armed) {
      slot->ShutDown();  // completes the poll; FinishRetire runs then
      return;
    }
    FinishRetire(*slot);
  }

  void FinishRetire(slots::Slot& slot) {
    options_.pools->at(slot.pool_id())->idle().Unbind(&slot);
    if (slot.upstream != Dialer::kNone) dialer_.SlotGone(slot, MonotonicNanos());
    const uint32_t index = slot.table_index;
    slots_[index] = nullptr;
    free_slots_.push_back(index);
    delete &slot;  // closes the fd
  }

  void OnTick() {
    if (!stop_.load()) ArmTick();
    PruneClosingPools();
    CompactPoolsWithDeadSlots();
    ReturnBenchedInstances();
    WidenIdleWatches();
    const int64_t now = MonotonicNanos();
    dialer_.Tick(now);
    for (uint32_t i = 0; i < pending_.size(); ++i) {
      Pending* p = pending_[i].get();
      if (p != nullptr && !p->closing && now > p->deadline_ns) {
        L7PX_LOG_LIMITED(kWarn, "registration from {} timed out during the handshake",
                         p->peer.ToString());
        p->closing = true;
        ::shutdown(p->fd.get(), SHUT_RDWR);  // completes the recv; freed there
      }
    }
  }

  // Idle slots of removed or drained pools are closed; busy ones when their worker returns them.
  void PruneClosingPools() {
    for (uint32_t id = 0; id < options_.pools->size(); ++id) {
      slots::Pool& pool = *options_.pools->at(id);
      if (!pool.closing() || !pool.AnyIdle()) continue;
      // Re-checked per slot: a reload may reopen the pool meanwhile, and its new slots stay.
      while (pool.closing()) {
        slots::Slot* s = pool.PopAnyIdle();
        if (s == nullptr) break;
        if (s->TryKillIdle(s->epoch())) {
          slots::AccountIdleSlotKilled(pool, *s);
          L7PX_LOG(kInfo, "pool {} is closing: closed an idle slot of {}", pool.name(),
                   s->service_id());
        }
        Retire(s);
      }
    }
  }

  // Instances whose bench has passed take requests again: serve whoever waits.
  void ReturnBenchedInstances() {
    const int64_t now = MonotonicNanos();
    for (uint32_t id = 0; id < options_.pools->size(); ++id) {
      slots::Pool& pool = *options_.pools->at(id);
      if (slots::ReturnBenched(pool, now) > 0) WakeAllWaiters(pool);
    }
  }

  void CompactPoolsWithDeadSlots() {
    for (uint32_t id = 0; id < options_.pools->size(); ++id) {
      slots::Pool& pool = *options_.pools->at(id);
      if (!pool.closing() && HasUnretiredDeadSlots(pool)) CompactIdle(pool);
    }
  }

  void Shutdown() {
    // Close every slot still owned here; the kernel cancels the ring's ops on exit.
    for (slots::Slot* slot : slots_) delete slot;
    slots_.clear();
    pending_.clear();
  }

  AcceptorOptions& options_;
  std::atomic<bool>& stop_;
  io::Ring ring_;
  __kernel_timespec tick_ts_{};
  std::vector<std::unique_ptr<Pending>> pending_;
  std::vector<uint32_t> free_pending_;
  std::vector<slots::Slot*> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<slots::Slot*> compact_;  // CompactIdle's scratch, kept to reuse its capacity
  uint32_t poll_generation_ = 0;
  io::AcceptGate accept_gate_;
  std::vector<bool> accept_armed_;  // by listener
  uint32_t generation_ = 0;
  uint64_t refused_peers_ = 0;
  uint64_t adopted_ = 0;
  bool accepting_ = true;  // false while a handoff drains this process
  Dialer dialer_;          // after ring_: it submits on it
};

Acceptor::Acceptor(AcceptorOptions options) : options_(std::move(options)) {}

Acceptor::~Acceptor() { Stop(); }

absl::Status Acceptor::Start() {
  loop_ = std::make_unique<Loop>(options_, stop_);
  std::promise<absl::Status> started;
  std::future<absl::Status> result = started.get_future();
  thread_ = std::thread([this, started = std::move(started)]() mutable {
    NameThisThread("l7px-acceptor");
    absl::Status status = loop_->Init();
    if (status.ok()) ring_fd_.store(loop_->ring_fd());
    const bool ok = status.ok();
    started.set_value(std::move(status));
    if (ok) loop_->Run();
  });
  absl::Status status = result.get();
  if (!status.ok()) thread_.join();
  return status;
}

void Acceptor::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

}  // namespace l7px::acceptor
