// The acceptor's dialer (dialer.h).
//
// Invariants:
//  - An entry (one address of one pool) lists exactly the slots filed for it that the acceptor
//    has not freed yet (dead ones included until freed); `dialing` counts its attempts in
//    flight. It is freed only when it has neither and no longer is declared (target 0), so no
//    slot or attempt ever refers to a freed entry.
//  - An attempt owns its socket until its connect completes: then the socket becomes a slot
//    (AddSlotFn) or is closed. Its linked timeout's completion is ignored.
//  - A slot counts toward its address's target while it is not dead: a dead one is already shut
//    down for the service (slots::Slot::ShutDown) even if the acceptor frees it a tick later.
#include "acceptor/dialer.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/clock.h"
#include "base/log.h"
#include "io/socket.h"
#include "slots/slot_lifecycle.h"

namespace l7px::acceptor {

struct Dialer::Entry {
  uint32_t pool_id = 0;
  SocketAddress address;
  std::string key;  // the address as text: the slots' service id and instance
  uint32_t target = 0;
  uint32_t dialing = 0;
  uint32_t failures = 0;  // in a row: failed connects and slots gone unused
  int64_t next_dial_ns = 0;
  State state = State::kStarting;
  std::string error;      // the last connect error while down
  bool declared = false;  // scratch for Tick
  std::vector<slots::Slot*> slots;
};

struct Dialer::Attempt {
  UniqueFd fd;
  uint32_t entry = kNone;
  uint32_t generation = 0;
  __kernel_timespec timeout{};
};

Dialer::Dialer(slots::PoolRegistry* pools, io::Ring* ring, AddSlotFn add, uint8_t connect_op,
               uint8_t ignored_op)
    : pools_(pools),
      ring_(ring),
      add_(std::move(add)),
      connect_op_(connect_op),
      ignored_op_(ignored_op),
      random_(static_cast<uint64_t>(MonotonicNanos()) | 1) {}

Dialer::~Dialer() = default;

void Dialer::Tick(int64_t now_ns) {
  for (auto& e : entries_) {
    if (e) e->declared = false;
  }
  for (uint32_t id = 0; id < pools_->size(); ++id) {
    const slots::Pool& pool = *pools_->at(id);
    if (pool.closing()) continue;
    const slots::PoolSettings& settings = pool.settings();
    for (const SocketAddress& address : settings.upstreams) {
      Entry& e = *entries_[FindOrAdd(id, address)];
      e.declared = true;
      if (e.target != settings.upstream_slots) {
        if (e.target != 0) {
          L7PX_LOG(kInfo, "pool {}: upstream {}: upstream_slots {} -> {}", pool.name(), e.key,
                   e.target, settings.upstream_slots);
        }
        e.target = settings.upstream_slots;
        dirty_ = true;
      }
    }
  }
  for (auto& e : entries_) {
    if (!e || e->declared || e->target == 0) continue;
    L7PX_LOG(kInfo, "pool {}: upstream {} removed: closing its {} slots as they become idle",
             pools_->at(e->pool_id)->name(), e->key, Alive(*e));
    pools_->at(e->pool_id)->ForgetUpstream(e->key);
    e->target = 0;
    dirty_ = true;
  }
  // A busy slot beyond its target is closed once idle: look again every tick while any is left.
  for (auto& e : entries_) {
    if (e && Alive(*e) > e->target) dirty_ = true;
  }
  Pump(now_ns);
}

uint32_t Dialer::FindOrAdd(uint32_t pool_id, const SocketAddress& address) {
  uint32_t free = kNone;
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    const Entry* e = entries_[i].get();
    if (e == nullptr) {
      if (free == kNone) free = i;
      continue;
    }
    if (e->pool_id == pool_id && e->address == address) return i;
  }
  auto e = std::make_unique<Entry>();
  e->pool_id = pool_id;
  e->address = address;
  e->key = address.ToString();
  L7PX_LOG(kInfo, "pool {}: upstream {}: dialing {} slots", pools_->at(pool_id)->name(), e->key,
           pools_->at(pool_id)->settings().upstream_slots);
  if (free == kNone) {
    free = static_cast<uint32_t>(entries_.size());
    entries_.push_back(nullptr);
  }
  Publish(*e);
  entries_[free] = std::move(e);
  return free;
}

void Dialer::Publish(const Entry& e) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  slots::Pool::UpstreamStatus status;
  status.state = e.state == State::kUp ? "up" : e.state == State::kDown ? "down" : "starting";
  if (e.state == State::kDown) status.error = e.error;
  status.changed_ms = int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
  pools_->at(e.pool_id)->SetUpstreamStatus(e.key, std::move(status));
}

uint32_t Dialer::Find(const slots::Pool& pool, const std::string& service) {
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    const Entry* e = entries_[i].get();
    if (e != nullptr && e->pool_id == pool.id() && e->target > 0 && e->key == service) return i;
  }
  return kNone;
}

void Dialer::Attach(slots::Slot& slot) {
  slot.filed_ns = MonotonicNanos();
  entries_[slot.upstream]->slots.push_back(&slot);
  dirty_ = true;
}

void Dialer::SlotGone(const slots::Slot& slot, int64_t now_ns) {
  if (slot.upstream >= entries_.size() || !entries_[slot.upstream]) return;
  Entry& e = *entries_[slot.upstream];
  auto it = std::find(e.slots.begin(), e.slots.end(), &slot);
  if (it == e.slots.end()) return;
  *it = e.slots.back();
  e.slots.pop_back();
  dirty_ = true;
  if (e.slots.size() >= e.target) return;  // closed because it was beyond the target
  if (slot.epoch() > 0 || now_ns - slot.filed_ns >= kIdleCloseNs) {
    // It carried an exchange, or lived long enough to be closed by an idle timeout of the
    // service: the address works, replace it now.
    e.failures = 0;
    e.next_dial_ns = now_ns;
  } else {
    // Closed unused and soon (a service that ends fresh connections, or one whose idle
    // timeout is shorter than kIdleCloseNs): do not dial it again in a loop.
    ++e.failures;
    e.next_dial_ns = now_ns + Backoff(e.failures);
    // Connects work but every connection ends at once, unused (a service that closes them
    // as it accepts them, or sends bytes unasked): nothing is left to serve with, so the
    // address is down all the same. (One that lives a while is a short idle timeout: not down.)
    if (now_ns - slot.filed_ns < kClosedAtOnceNs && Alive(e) == 0 && e.dialing == 0) {
      MarkDown(e, "the service closed its connections before any request");
    }
  }
}

uint32_t Dialer::Alive(const Entry& e) const {
  uint32_t n = 0;
  for (const slots::Slot* s : e.slots) n += s->state() != slots::Slot::State::kDead;
  return n;
}

void Dialer::Pump(int64_t now_ns) {
  if (!dirty_ && (next_due_ns_ == 0 || now_ns < next_due_ns_)) return;
  dirty_ = false;
  next_due_ns_ = 0;
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    Entry* e = entries_[i].get();
    if (e == nullptr) continue;
    const uint32_t alive = Alive(*e);
    if (alive > e->target) CloseExcess(*e, alive);
    if (e->target == 0) {
      if (e->slots.empty() && e->dialing == 0) entries_[i].reset();
      continue;
    }
    if (!held_ && !paused_) DialMissing(*e, i, now_ns);
    // Slots adopted in an upgrade fill the target without a dial of this process.
    if (e->state == State::kStarting && e->dialing == 0 && alive >= e->target) MaybeUp(*e);
  }
}

void Dialer::DialMissing(Entry& e, uint32_t index, int64_t now_ns) {
  const uint32_t have = Alive(e) + e.dialing;
  if (have >= e.target) return;
  if (now_ns < e.next_dial_ns) {
    if (next_due_ns_ == 0 || e.next_dial_ns < next_due_ns_) next_due_ns_ = e.next_dial_ns;
    return;
  }
  uint32_t want = e.target - have;
  if (e.state == State::kDown) want = e.dialing == 0 ? 1 : 0;  // one probe at a time
  const slots::Pool& pool = *pools_->at(e.pool_id);
  const int64_t room = std::min<int64_t>(pool.settings().max_slots, pool.slot_capacity()) -
                       pool.registered.load(std::memory_order_relaxed) - e.dialing;
  if (room < want) {
    if (room <= 0) {
      L7PX_LOG_LIMITED(kWarn, "pool {}: upstream {}: pool is at max_slots; not dialing",
                       pool.name(), e.key);
      e.next_dial_ns = now_ns + kMaxBackoffNs;
      if (next_due_ns_ == 0 || e.next_dial_ns < next_due_ns_) next_due_ns_ = e.next_dial_ns;
      return;
    }
    want = static_cast<uint32_t>(room);
  }
  for (uint32_t k = 0; k < want; ++k) {
    StartDial(e, index);
    if (e.state == State::kDown && e.dialing == 0) break;  // the socket could not be made
  }
}

void Dialer::StartDial(Entry& e, uint32_t index) {
  UniqueFd fd(::socket(e.address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) {
    Failed(e, errno, MonotonicNanos());
    return;
  }
  if (!e.address.is_unix()) {
    // close() resets instead of sending a FIN: no TIME_WAIT on l7px's side (dialer.h).
    linger no_linger{1, 0};
    setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &no_linger, sizeof(no_linger));
    io::TuneStreamSocket(fd.get());
  }
  uint32_t a;
  if (!free_attempts_.empty()) {
    a = free_attempts_.back();
    free_attempts_.pop_back();
  } else {
    a = static_cast<uint32_t>(attempts_.size());
    attempts_.push_back(std::make_unique<Attempt>());
  }
  Attempt& attempt = *attempts_[a];
  attempt.fd = std::move(fd);
  attempt.entry = index;
  attempt.generation = ++generation_ & 0xFFFFFF;
  attempt.timeout.tv_sec = kConnectTimeoutNs / 1'000'000'000;
  attempt.timeout.tv_nsec = kConnectTimeoutNs % 1'000'000'000;
  // The connect and its timeout must go in one submission, or the link would break.
  if (io_uring_sq_space_left(ring_->raw()) < 2) ring_->Submit();
  io_uring_sqe* sqe = ring_->Sqe();
  io_uring_prep_connect(sqe, attempt.fd.get(), e.address.sockaddr_ptr(), e.address.length());
  sqe->flags |= IOSQE_IO_LINK;
  io_uring_sqe_set_data64(sqe, io::Tag{connect_op_, attempt.generation, a}.Pack());
  io_uring_sqe* timeout = ring_->Sqe();
  io_uring_prep_link_timeout(timeout, &attempt.timeout, 0);
  io_uring_sqe_set_data64(timeout, io::Tag{ignored_op_, 0, 0}.Pack());
  ++e.dialing;
}

void Dialer::OnConnect(uint32_t a, uint32_t generation, int res, int64_t now_ns) {
  if (a >= attempts_.size() || attempts_[a]->generation != generation || !attempts_[a]->fd) {
    return;
  }
  Attempt& attempt = *attempts_[a];
  UniqueFd fd = std::move(attempt.fd);
  Entry& e = *entries_[attempt.entry];
  const uint32_t index = attempt.entry;
  attempt.entry = kNone;
  free_attempts_.push_back(a);
  --e.dialing;
  dirty_ = true;
  if (res < 0) {
    // -ECANCELED: its linked timeout fired first.
    Failed(e, res == -ECANCELED ? ETIMEDOUT : -res, now_ns);
    return;
  }
  if (Alive(e) >= e.target) return;  // removed or lowered meanwhile; the fd closes here
  slots::Pool& pool = *pools_->at(e.pool_id);
  slots::Slot* slot = add_(std::move(fd), pool, e.key, index);
  if (slot == nullptr) {
    ++e.failures;
    e.next_dial_ns = now_ns + Backoff(e.failures);
    return;
  }
  if (e.state == State::kDown) {
    e.state = State::kStarting;  // it answers again: dial the rest now
    Publish(e);
    e.next_dial_ns = now_ns;
    if (!held_ && !paused_) DialMissing(e, index, now_ns);
  }
  MaybeUp(e);
}

void Dialer::MaybeUp(Entry& e) {
  if (e.state != State::kStarting || e.dialing > 0) return;
  e.state = State::kUp;
  Publish(e);
  L7PX_LOG(kInfo, "pool {}: upstream {} up: {} slots", pools_->at(e.pool_id)->name(), e.key,
           Alive(e));
}

void Dialer::Failed(Entry& e, int error, int64_t now_ns) {
  ++e.failures;
  e.next_dial_ns = now_ns + Backoff(e.failures);
  if (next_due_ns_ == 0 || e.next_dial_ns < next_due_ns_) next_due_ns_ = e.next_dial_ns;
  MarkDown(e, strerror(error));
}

void Dialer::MarkDown(Entry& e, std::string_view why) {
  if (e.target == 0) return;
  if (e.state == State::kDown) {
    if (e.error != why) {  // a different reason now (refused -> timed out)
      e.error = std::string(why);
      Publish(e);
    }
    return;
  }
  e.state = State::kDown;
  e.error = std::string(why);
  Publish(e);
  L7PX_LOG(kWarn, "pool {}: upstream {} down: {}; retrying", pools_->at(e.pool_id)->name(), e.key,
           why);
}

void Dialer::CloseExcess(Entry& e, uint32_t alive) {
  slots::Pool& pool = *pools_->at(e.pool_id);
  // Idle ones only: a busy one is closed on a later tick, once its response is complete. A
  // killed slot stays in the idle stack until the acceptor compacts it (next tick) and frees it.
  for (slots::Slot* s : e.slots) {
    if (alive <= e.target) break;
    if (s->state() != slots::Slot::State::kIdle) continue;
    if (s->TryKillIdle(s->epoch())) {
      slots::AccountIdleSlotKilled(pool, *s);
      --alive;
    }
  }
}

int64_t Dialer::Backoff(uint32_t failures) {
  int64_t d = kFirstBackoffNs;
  for (uint32_t i = 1; i < failures && d < kMaxBackoffNs; ++i) d *= 2;
  d = std::min(d, kMaxBackoffNs);
  // Jitter in [d/2, d] (xorshift64), so many slots or many proxies do not dial in step.
  random_ ^= random_ << 13;
  random_ ^= random_ >> 7;
  random_ ^= random_ << 17;
  return d / 2 + static_cast<int64_t>(random_ % static_cast<uint64_t>(d / 2 + 1));
}

}  // namespace l7px::acceptor
