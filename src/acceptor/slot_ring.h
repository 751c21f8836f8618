#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace l7px::acceptor {

class Slot;

// Bounded lock-free multi-producer multi-consumer FIFO of idle slots (one per pool).
// Producers: workers returning a slot, the acceptor publishing a new one. Consumers: workers
// leasing, the acceptor when it compacts dead entries. FIFO so the slots of many service
// processes rotate fairly. Never allocates after construction; TryPush/TryPop never block and
// never spin on another thread's progress longer than a CAS retry.
class SlotRing {
 public:
  // capacity is rounded up to a power of two (minimum 2).
  explicit SlotRing(size_t capacity);
  SlotRing(const SlotRing&) = delete;
  SlotRing& operator=(const SlotRing&) = delete;

  // False only when full by count: capacity() pushes not yet popped (a slow popper cannot make
  // it fail).
  bool TryPush(Slot* slot);
  // nullptr when empty. Also nullptr while the oldest push is still being written, even if later
  // pushes completed; that pusher finishes on its own, so callers must re-check after it wakes
  // them (the Pool's waiter protocol), never spin here.
  Slot* TryPop();
  size_t capacity() const { return mask_ + 1; }
  // Approximate (racy) number of entries, for stats only.
  size_t SizeApprox() const;

 private:
  struct Cell {
    std::atomic<uint64_t> sequence;
    Slot* slot;  // accessed through std::atomic_ref (see slot_ring.cc)
  };
  size_t mask_;
  std::unique_ptr<Cell[]> cells_;
  alignas(64) std::atomic<uint64_t> head_{0};  // next pop position
  alignas(64) std::atomic<uint64_t> tail_{0};  // next push position
};

}  // namespace l7px::acceptor
