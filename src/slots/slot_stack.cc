#include "slots/slot_stack.h"

#include <algorithm>

#include "slots/slot.h"

// Treiber stacks (lanes) over one fixed array of cells, one cell per bound slot.
//
// Invariants, for each lane's top word `top`:
//  I1. top = (tag << 24) | i, where i is the top cell or kNone. Every successful CAS of top
//      (push or pop) increments the tag, so a top value is never seen twice in practice (the
//      40-bit tag would have to wrap while one thread sits between its load and its CAS).
//  I2. A cell is in at most one lane, at most once: only the holder of a slot pushes it, and it
//      holds the slot from its pop (or its binding) to its push.
//  I3. Push writes cell.next before the release CAS that makes the cell the top; a popper that
//      loads that top value with acquire reads that next. If the cell was popped and pushed
//      again in between (to this lane or, rebound, to another), the tag of this lane differs
//      and the popper's CAS fails (I1), whatever it read.
//  I4. Cells are never freed, so the stale reads of I3 are reads of live atomics.
//
// Memory ordering: every RMW on a lane's top is part of the release sequence of the pushes before
// it, so a pop (acquire) sees everything the pusher wrote before its push (the slot's state, and
// the data of the request it carried).

namespace l7px::slots {

SlotStack::SlotStack(size_t capacity)
    : capacity_(std::clamp<size_t>(capacity, 1, kMaxCells)),
      cells_(std::make_unique<Cell[]>(capacity_)) {
  // Free list 0, 1, 2, ... so cells are bound in order.
  for (size_t i = capacity_; i-- > 0;) {
    cells_[i].next.store(free_head_, std::memory_order_relaxed);
    free_head_ = static_cast<uint32_t>(i);
  }
  // Published to other threads by whatever hands them the pointer (thread start, a release
  // store); no fence is needed here.
}

bool SlotStack::Bind(Slot* slot) {
  if (free_head_ == kNone) return false;
  const uint32_t i = free_head_;
  Cell& cell = cells_[i];
  free_head_ = cell.next.load(std::memory_order_relaxed);
  cell.slot.store(slot, std::memory_order_relaxed);  // published by the slot's first push
  slot->stack_cell = i;
  ++bound_;
  return true;
}

void SlotStack::Unbind(const Slot* slot) {
  const uint32_t i = slot->stack_cell;
  if (i >= capacity_ || cells_[i].slot.load(std::memory_order_relaxed) != slot) return;
  Cell& cell = cells_[i];
  cell.slot.store(nullptr, std::memory_order_relaxed);
  cell.next.store(free_head_, std::memory_order_relaxed);
  free_head_ = i;
  --bound_;
}

void SlotStack::Push(Lane& lane, Slot* slot) {
  const uint32_t i = slot->stack_cell;
  Cell& cell = cells_[i];
  uint64_t top = lane.top.load(std::memory_order_relaxed);
  do {
    cell.next.store(IndexOf(top), std::memory_order_relaxed);
  } while (!lane.top.compare_exchange_weak(top, Next(top, i), std::memory_order_release,
                                           std::memory_order_relaxed));
}

Slot* SlotStack::TryPop(Lane& lane) {
  uint64_t top = lane.top.load(std::memory_order_acquire);
  while (IndexOf(top) != kNone) {
    const uint32_t i = IndexOf(top);
    const uint32_t below = cells_[i].next.load(std::memory_order_relaxed);
    if (lane.top.compare_exchange_weak(top, Next(top, below), std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
      // Ours (I2): nobody else pushes, binds or unbinds this cell until we push it again.
      return cells_[i].slot.load(std::memory_order_relaxed);
    }
  }
  return nullptr;
}

}  // namespace l7px::slots
