#include "proxy/dispatch/dispatcher.h"

#include <cstddef>

#include "base/reserve.h"
#include "slots/slot_lifecycle.h"

namespace l7px::proxy {

Waiter* Dispatcher::FromFifo(TimerNode* node) {
  return reinterpret_cast<Waiter*>(reinterpret_cast<char*>(node) - offsetof(Waiter, fifo));
}

Waiter* Dispatcher::FromTimeout(TimerNode* node) {
  return reinterpret_cast<Waiter*>(reinterpret_cast<char*>(node) - offsetof(Waiter, timeout));
}

TimerList& Dispatcher::QueueFor(uint32_t pool_id) {
  if (pool_id >= queues_.size()) queues_.resize(pool_id + 1);
  if (queues_[pool_id] == nullptr) queues_[pool_id] = std::make_unique<TimerList>(0);
  return *queues_[pool_id];
}

uint32_t Dispatcher::waiting(uint32_t pool_id) const {
  return pool_id < queues_.size() && queues_[pool_id] != nullptr ? queues_[pool_id]->size() : 0;
}

slots::Slot* Dispatcher::LeaseIdle(slots::Pool& pool, int64_t now_ns) {
  while (slots::Slot* slot = pool.PopForLease(now_ns)) {
    if (slot->TryLease()) {
      pool.busy.fetch_add(1, std::memory_order_relaxed);
      return slot;
    }
    // Killed while idle: the acceptor frees it once the caller posts it back. Room for every
    // slot the pool may hold, so this never allocates mid-request after the first few.
    ReserveAtLeast(dead_slots_, dead_slots_.size() + 1);
    dead_slots_.push_back(slot);
  }
  return nullptr;
}

Dispatcher::Admission Dispatcher::Admit(slots::Pool& pool, const slots::RequestLimits& limits,
                                        Waiter& w, int64_t now_ns) {
  if (pool.closing()) return {Verdict::kShedClosing};
  // No barging: while anyone waits, a new request queues behind them.
  if (pool.waiting.load(std::memory_order_relaxed) == 0) {
    if (slots::Slot* slot = LeaseIdle(pool, now_ns)) return {Verdict::kStart, slot};
  }
  if (pool.waiting.load(std::memory_order_relaxed) >= static_cast<int64_t>(limits.queue)) {
    return {Verdict::kShedFull};
  }
  Enqueue(pool, limits, w, now_ns);
  return {Verdict::kQueued};
}

void Dispatcher::Enqueue(slots::Pool& pool, const slots::RequestLimits& limits, Waiter& w,
                         int64_t now_ns) {
  TimerList& q = QueueFor(pool.id());
  const bool was_empty = q.empty();
  w.pool = &pool;
  w.enqueued_ns = now_ns;
  q.Start(&w.fifo, now_ns);
  timeouts_.For(limits.queue_timeout_ns).Start(&w.timeout, now_ns);
  pool.waiting.fetch_add(1, std::memory_order_relaxed);
  if (was_empty) pool.PublishOldestWait(worker_id_, now_ns);
  // A slot pushed before this wait was published woke nobody: the caller serves once more.
  pool.SyncPoint();
}

void Dispatcher::Remove(Waiter& w) {
  if (!w.queued()) return;
  slots::Pool& pool = *w.pool;
  TimerList& q = QueueFor(pool.id());
  const bool was_head = q.front() == &w.fifo;
  TimerList::Unlink(&w.fifo);
  TimerList::Unlink(&w.timeout);
  pool.waiting.fetch_sub(1, std::memory_order_relaxed);
  if (was_head) {
    const TimerNode* next = q.front();
    pool.PublishOldestWait(worker_id_, next == nullptr ? 0 : next->deadline_ns);
  }
}

Dispatcher::Match Dispatcher::ServeNext(slots::Pool& pool, int64_t now_ns) {
  TimerList& q = QueueFor(pool.id());
  if (q.empty()) return {};
  slots::Slot* slot = LeaseIdle(pool, now_ns);
  if (slot == nullptr) return {};
  Waiter* w = FromFifo(q.front());
  Remove(*w);
  return {w, slot};
}

Waiter* Dispatcher::ShedNextClosing(slots::Pool& pool, int64_t /*now_ns*/) {
  if (!pool.closing()) return nullptr;
  TimerList& q = QueueFor(pool.id());
  if (q.empty()) return nullptr;
  Waiter* w = FromFifo(q.front());
  Remove(*w);
  return w;
}

int Dispatcher::WorkerToPassOn(slots::Pool& pool) {
  if (!QueueFor(pool.id()).empty() || !pool.HasLeasableIdle()) return -1;
  pool.SyncPoint();  // pairs with a waiter's, as a releaser's does (Pool)
  return pool.PickWorkerToWake(worker_id_);
}

Dispatcher::Release Dispatcher::OnRelease(slots::Pool& pool, slots::Slot& slot,
                                          int64_t /*now_ns*/) {
  TimerList& q = QueueFor(pool.id());
  if (!q.empty() && !pool.closing() && !slot.peer_closed.load(std::memory_order_relaxed) &&
      !pool.Benched(slot)) {
    // Keep the slot (no stack round trip) only if this worker holds the pool's oldest waiter;
    // otherwise it goes to whoever has waited longest, so no worker's clients starve. A slot
    // of a benched instance goes back to its lane, where no lease takes it.
    pool.SyncPoint();
    const int oldest = pool.PickWorkerToWake(-1);
    if (oldest < 0 || oldest == worker_id_) {
      Waiter* w = FromFifo(q.front());
      Remove(*w);
      return {Release::Kind::kServeLocal, w};
    }
  }
  if (!slots::ReturnLeasedSlot(pool, slot)) return {Release::Kind::kRetire};
  // ReturnLeasedSlot passed the pool's SyncPoint after the push.
  return {Release::Kind::kReturned, nullptr, pool.PickWorkerToWake(-1)};
}

Waiter* Dispatcher::TakeExpired(int64_t now_ns) {
  TimerNode* n = timeouts_.TakeExpired(now_ns);
  if (n == nullptr) return nullptr;
  Waiter* w = FromTimeout(n);
  Remove(*w);
  return w;
}

}  // namespace l7px::proxy
