#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace l7px::slots {

class Slot;

// Bounded lock-free multi-producer multi-consumer LIFOs of idle slots over one pool's cells: the
// acceptor ring of docs/architecture.md, ordered most-recently-idle first. A pool keeps one LIFO
// (a Lane) per instance of its service (slots/instance.h), all over the same cells; the stack's
// own lane (Push(slot), TryPop()) is the single-LIFO form, kept for the benchmarks' baseline.
//
// Why LIFO: the slot returned last is the one whose service thread (or goroutine) is most
// likely still awake and cache-warm; handing it the next request spares the service a sleep
// and a wake-up per request. With a FIFO every slot of the pool rotates and each request wakes
// a thread that has gone to sleep; measured with the bench service behind one worker at 16
// connections that cost the service ~4 CPU-µs and l7px ~3 CPU-µs more per request (the
// service saw one poll() per request instead of one per two). Under load every slot is busy
// either way; under light load the slots deep in the stack stay idle (and watched for close).
//
// Every slot is first bound to a cell (Bind, by the acceptor thread, the only thread that
// creates and frees slots); a bound slot can always be pushed, so pushes never fail. The cells
// are owned by the stack and never freed, so a popper reading a cell another thread just took
// reads stale data, never freed memory; the top word carries a tag bumped by every successful
// push and pop, so such a popper's CAS fails (no ABA).
//
// Lanes: a bound slot is in at most one lane at a time (its holder pushes it to one), so a cell
// is linked into at most one lane; each lane's top word carries its own tag, and a popper whose
// lane's top did not change since it read it knows the cell it read is still that lane's top.
//
// Push: one CAS. Pop: one CAS. Never allocates after construction, never blocks; a CAS retry
// only follows another thread's successful push or pop.
class SlotStack {
  static constexpr uint32_t kNoCell = (1u << 24) - 1;

 public:
  // Most cells a stack may have (the index field of the top word).
  static constexpr uint32_t kMaxCells = kNoCell;

  // The top of one LIFO over the stack's cells: (tag << 24) | index of its top cell. Owned by
  // whoever keeps the lane (a pool's instance); it must outlive every slot pushed to it.
  struct Lane {
    std::atomic<uint64_t> top{kNoCell};
    // Racy hint (another thread may push or pop right after): nothing in it right now.
    bool Empty() const { return (top.load(std::memory_order_relaxed) & kNoCell) == kNoCell; }
  };

  // capacity: cells, i.e. slots that may be bound at once (clamped to 1..kMaxCells).
  explicit SlotStack(size_t capacity);
  SlotStack(const SlotStack&) = delete;
  SlotStack& operator=(const SlotStack&) = delete;

  size_t capacity() const { return capacity_; }

  // Binding: one thread only (the acceptor). Bind gives `slot` a cell; false when every cell
  // is bound. Unbind returns it; the slot must be out of the stack for good (being freed).
  bool Bind(Slot* slot);
  void Unbind(const Slot* slot);
  size_t bound() const { return bound_; }

  // `slot` must be bound and in no lane (its holder returns it exactly once).
  void Push(Lane& lane, Slot* slot);
  // The slot most recently pushed to `lane`, or nullptr when it is empty.
  Slot* TryPop(Lane& lane);

  // The stack's own lane.
  void Push(Slot* slot) { Push(own_, slot); }
  Slot* TryPop() { return TryPop(own_); }
  bool Empty() const { return own_.Empty(); }

 private:
  static constexpr uint32_t kNone = kNoCell;  // "no cell" in an index field

  struct Cell {
    std::atomic<uint32_t> next{kNone};  // cell below this one while stacked; free list if unbound
    std::atomic<Slot*> slot{nullptr};   // the bound slot (set once per binding)
  };

  static uint32_t IndexOf(uint64_t top) { return static_cast<uint32_t>(top & kMaxCells); }
  static uint64_t Next(uint64_t top, uint32_t index) { return ((top >> 24) + 1) << 24 | index; }

  const size_t capacity_;
  std::unique_ptr<Cell[]> cells_;
  // Binder-only: head of the free-cell list (through Cell::next) and the number bound.
  uint32_t free_head_ = kNone;
  size_t bound_ = 0;
  alignas(64) Lane own_;
};

}  // namespace l7px::slots
