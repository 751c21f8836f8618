#pragma once

#include <sys/socket.h>

#include <atomic>

#include "slots/pool.h"
#include "slots/slot.h"

namespace l7px::slots {

// Transitions shared by the acceptor and the workers, so the pool's gauges stay exact: whoever
// makes a slot DEAD accounts for it once and shuts the socket down (the service sees the close at
// once; the fd itself is closed later by the acceptor).

// The winner of Slot::TryKillIdle calls this. The slot stays in the idle stack until popped
// (the acceptor's compaction pops it if no worker does).
inline void AccountIdleSlotKilled(Pool& pool, Slot& slot) {
  pool.registered.fetch_sub(1, std::memory_order_relaxed);
  pool.SlotGone(slot);
  slot.ShutDown();
}

// The leaseholder handed the slot's connection to another process (upgrade handoff): it leaves
// this process's accounting, without shutting the connection down (the other process uses it).
// The caller then posts it to the acceptor with kMsgSlotMoved.
inline void AccountLeasedSlotMoved(Pool& pool, Slot& slot) {
  slot.MarkDead();
  pool.busy.fetch_sub(1, std::memory_order_relaxed);
  pool.registered.fetch_sub(1, std::memory_order_relaxed);
  pool.SlotGone(slot);
}

// A worker that leased the slot and will not return it: BUSY -> DEAD, the same accounting as a
// moved slot, and the connection shut down.
inline void KillLeasedSlot(Pool& pool, Slot& slot) {
  AccountLeasedSlotMoved(pool, slot);
  slot.ShutDown();
}

// The leaseholder's slot became a tunnel (its service answered 101): it leaves the pool's slot
// accounting as a dead slot would (registered, busy, its service's and its instance's counts),
// so the service may register a replacement within max_slots, and counts as a tunnel instead.
// The slot stays BUSY and leased: only its tunnel uses it, and the acceptor's watch still only
// flags a close. `tunnels` rises before `registered` falls, so registered + tunnels never dips
// below the stack's bound cells (the acceptor compacts when it does). The slot's instance may be
// reassigned once it has no slots: the tunnel must not report on it any more.
inline void AccountLeasedSlotTunneled(Pool& pool, Slot& slot) {
  pool.tunnels.fetch_add(1, std::memory_order_relaxed);
  pool.tunnels_total.fetch_add(1, std::memory_order_relaxed);
  pool.busy.fetch_sub(1, std::memory_order_relaxed);
  pool.registered.fetch_sub(1, std::memory_order_relaxed);
  pool.SlotGone(slot);
}

// The tunnel ended: BUSY -> DEAD, out of the tunnel count (it left the slot counts when it
// became a tunnel). The caller posts it to the acceptor for retirement, as for a killed slot.
inline void KillTunnelSlot(Pool& pool, Slot& slot) {
  slot.MarkDead();
  pool.tunnels.fetch_sub(1, std::memory_order_relaxed);
  slot.ShutDown();
}

// A worker that leased the slot returns it idle and pushes it back to the idle stack. Returns
// false when the slot is not reusable (its pool is closing, or its service closed it while it
// was busy): it is then dead, was never pushed, and the caller retires it.
//
// The close check comes before the push: once pushed, the slot may be popped, found dead and
// freed by the acceptor at any moment, so nothing here may touch it afterwards. Hence two sync
// points: one between the idle state and the close flag, one between the push and the waiters.
inline bool ReturnLeasedSlot(Pool& pool, Slot& slot) {
  if (pool.closing()) {
    KillLeasedSlot(pool, slot);  // the pool was removed or drained: not reused
    return false;
  }
  const uint64_t epoch = slot.epoch();
  slot.ReleaseIdle();
  pool.busy.fetch_sub(1, std::memory_order_relaxed);
  pool.SyncPoint();  // pairs with the acceptor's, see Slot::peer_closed
  if (slot.peer_closed.load(std::memory_order_relaxed) && slot.TryKillIdle(epoch)) {
    AccountIdleSlotKilled(pool, slot);
  }
  // Killed by us or by the acceptor's idle check: retired by the caller, never pushed. If the
  // acceptor kills it after this check, it lingers in the stack until popped or compacted.
  if (slot.state() == Slot::State::kDead) return false;
  pool.PushIdle(&slot);
  pool.SyncPoint();  // after the push, before the caller reads the waiter board (Pool)
  return true;
}

}  // namespace l7px::slots
