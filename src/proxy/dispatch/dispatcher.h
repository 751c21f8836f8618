#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/timer_list.h"
#include "base/timer_lists.h"
#include "slots/pool.h"
#include "slots/slot.h"

namespace l7px::proxy {

// One request's place in a wait queue. Embedded in whatever owns the request (a worker's
// connection); the dispatcher links and unlinks it and never owns it.
struct Waiter {
  TimerNode fifo;     // position in its pool's queue on this worker (deadline_ns = enqueue time)
  TimerNode timeout;  // its queue_timeout
  slots::Pool* pool = nullptr;
  int64_t enqueued_ns = 0;
  bool queued() const { return fifo.linked(); }
};

// Which request gets which slot: the wait-queue policy of one worker, apart from any I/O. It
// decides and returns; it never calls back into the worker that owns it. Worker thread only.
//
// Invariants (the model is HAProxy's queue):
//  - Bounded: a request that finds `queue` requests already waiting for its pool, on all
//    workers together, is shed (kShedFull).
//  - FIFO, no barging: while anyone waits for a pool (on any worker), a new request queues
//    behind them instead of taking a slot that appeared; this worker serves its waiters of a
//    pool in enqueue order.
//  - Oldest first across workers: each worker publishes the enqueue time of its oldest waiter
//    per pool (Pool::PublishOldestWait). A slot that frees goes to the worker holding the
//    globally oldest waiter: kept here when that is this worker, else pushed to the pool's idle
//    stack and that worker woken (Release::wake_worker).
//  - No lost wake-up: a new waiter is published, then the pool's SyncPoint, then the caller
//    serves once more (ServeNext); a releaser pushes, passes SyncPoint, then reads the board.
//  - Only this worker removes its own waiters (served, shed, timed out, or gone).
//  - A closing pool (drained or removed) takes no new waiters and sheds the ones it has.
//  - Idle slots found dead when popped are not this class's to free: they are handed back
//    through TakeDeadSlots() for the caller to retire.
//  - Which idle slot a request gets is the pool's choice (Pool::PopForLease: the instance in
//    service whose turn is oldest, its most recently idle slot). A freed slot of a benched
//    instance is never handed to a waiter; it goes back to its lane.
class Dispatcher {
 public:
  explicit Dispatcher(int worker_id) : worker_id_(worker_id) {}
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  enum class Verdict {
    kStart,        // `slot` is leased to the request: start the exchange
    kQueued,       // the request waits; call ServeNext next (no lost wake-up)
    kShedFull,     // `queue` requests already wait: 503
    kShedClosing,  // the pool is drained or removed: 503
  };
  struct Admission {
    Verdict verdict;
    slots::Slot* slot = nullptr;
  };
  // A request wants a slot of `pool`, within the limits it was admitted with.
  Admission Admit(slots::Pool& pool, const slots::RequestLimits& limits, Waiter& w, int64_t now_ns);

  // This worker's oldest waiter for `pool` and an idle slot leased for it (both taken off their
  // queue and stack), or {nullptr, nullptr} when either is missing.
  struct Match {
    Waiter* waiter = nullptr;
    slots::Slot* slot = nullptr;
    explicit operator bool() const { return waiter != nullptr; }
  };
  Match ServeNext(slots::Pool& pool, int64_t now_ns);

  // The pool is closing: the next of this worker's waiters for it, taken off the queue (to be
  // answered 503), or nullptr.
  Waiter* ShedNextClosing(slots::Pool& pool, int64_t now_ns);

  // After ServeNext ran out of waiters: when idle slots remain, the worker with the oldest
  // waiter elsewhere, to be woken (several slots freed at once may all have woken this worker);
  // -1 for none.
  int WorkerToPassOn(slots::Pool& pool);

  // A slot this worker leased is free again (its exchange ended and it can be reused).
  struct Release {
    enum class Kind {
      kServeLocal,  // hand it straight to `waiter` (this worker holds the oldest waiter)
      kReturned,    // pushed to the idle stack; wake `wake_worker` (-1: nobody waits)
      kRetire,      // killed meanwhile (the service closed it): retire it
    } kind;
    Waiter* waiter = nullptr;
    int wake_worker = -1;
  };
  Release OnRelease(slots::Pool& pool, slots::Slot& slot, int64_t now_ns);

  // A waiter whose queue_timeout passed, taken off its queue, or nullptr. Call until nullptr.
  Waiter* TakeExpired(int64_t now_ns);

  // Takes a waiter off its queue (its client went away, or it is answered otherwise).
  void Remove(Waiter& w);

  // Idle slots found dead when popped since the last call; the caller retires and clears them.
  std::vector<slots::Slot*>& dead_slots() { return dead_slots_; }

  // Waiters this worker holds for the pool.
  uint32_t waiting(uint32_t pool_id) const;

 private:
  TimerList& QueueFor(uint32_t pool_id);
  slots::Slot* LeaseIdle(slots::Pool& pool, int64_t now_ns);
  void Enqueue(slots::Pool& pool, const slots::RequestLimits& limits, Waiter& w, int64_t now_ns);
  static Waiter* FromFifo(TimerNode* node);
  static Waiter* FromTimeout(TimerNode* node);

  const int worker_id_;
  std::vector<std::unique_ptr<TimerList>> queues_;  // by pool id
  TimerLists timeouts_;                             // Waiter::timeout, by queue_timeout
  std::vector<slots::Slot*> dead_slots_;
};

}  // namespace l7px::proxy
