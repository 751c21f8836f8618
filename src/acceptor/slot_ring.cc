#include "acceptor/slot_ring.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>

// Bounded MPMC FIFO built on per-cell sequence numbers.
//
// Positions: tail_ is the next position a producer will claim; head_ is the next position to
// consume (a hint that may lag, see I4). Both only grow (64-bit, never wrap in practice).
// Position p lives in cell p & mask_; C = capacity, a power of two >= 2.
//
// Invariants:
//  I1. A cell's sequence only grows. For the cell of position p it is
//        p       free for p: no item, or a producer claimed p and is still writing the slot;
//        p + 1   full: holds the item pushed at p;
//        p + C   consumed, i.e. free for position p + C (the next lap).
//  I2. Producers claim a position with one CAS of tail_ (p -> p + 1) while the cell reads p, then
//      write the slot and publish with a release store of p + 1. Only the winner of that CAS
//      writes the slot, and only while the cell is free for p.
//  I3. Consumers claim the item itself, with one CAS of the cell's sequence (p + 1 -> p + C);
//      the slot is read (atomically) just before that CAS. The CAS succeeds only if the sequence
//      never left p + 1 (I1), so the value read is the item of p; the release in the CAS orders
//      that read before the next lap's write (whose producer acquires p + C).
//  I4. head_ advances past p only once p is consumed: by the consumer that claimed it, or by any
//      consumer that finds the cell at p + C or beyond (it helps, then retries). So head_ <= tail_,
//      and a consumer stalled after its claim blocks nobody.
//  I5. C >= 2: with C == 1, "full at p" (p + 1) and "free for p + 1" (p + C) would be the same
//      value.
//
// Consequences for callers:
//  - TryPush fails only when all C positions from head are claimed by pushes not yet consumed
//    (the ring is full by count). A slow consumer cannot make a push fail, because claiming an
//    item and freeing its cell are the same atomic step (I3).
//  - TryPop returns nullptr when the cell at head_ has no published item. That includes a push
//    that claimed the head position but has not published yet, even if later pushes completed;
//    that producer finishes on its own (and then wakes waiters, see Pool), nobody waits for it.
//  - Neither call waits for another thread: every retry follows a CAS lost to, or a position
//    already taken by, a thread that made progress.
//
// Memory: cells are allocated once in the constructor; TryPush/TryPop never allocate.

namespace l7px::acceptor {

SlotRing::SlotRing(size_t capacity) {
  const size_t rounded = std::bit_ceil(std::max<size_t>(capacity, 2));
  mask_ = rounded - 1;
  cells_ = std::make_unique<Cell[]>(rounded);
  for (size_t i = 0; i < rounded; ++i) {
    cells_[i].sequence.store(i, std::memory_order_relaxed);
    cells_[i].slot = nullptr;
  }
  // The ring is published to other threads by whatever hands them the pointer (thread start,
  // a release store); no fence is needed here.
}

bool SlotRing::TryPush(Slot* slot) {
  uint64_t pos = tail_.load(std::memory_order_relaxed);
  for (;;) {
    Cell& cell = cells_[pos & mask_];
    // Acquire: the previous lap's consumer read its slot before freeing the cell (I3).
    const uint64_t seq = cell.sequence.load(std::memory_order_acquire);
    const int64_t diff = static_cast<int64_t>(seq - pos);
    if (diff == 0) {
      // Free for this lap: claim position `pos`. On failure `pos` is reloaded.
      if (tail_.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
        std::atomic_ref<Slot*>(cell.slot).store(slot, std::memory_order_relaxed);
        cell.sequence.store(pos + 1, std::memory_order_release);
        return true;
      }
    } else if (diff < 0) {
      // The cell still holds the item of pos - C (or its push is in flight): full.
      return false;
    } else {
      // Another producer already claimed `pos`; catch up.
      pos = tail_.load(std::memory_order_relaxed);
    }
  }
}

Slot* SlotRing::TryPop() {
  uint64_t pos = head_.load(std::memory_order_relaxed);
  for (;;) {
    Cell& cell = cells_[pos & mask_];
    uint64_t seq = cell.sequence.load(std::memory_order_acquire);
    if (seq == pos + 1) {
      Slot* slot = std::atomic_ref<Slot*>(cell.slot).load(std::memory_order_relaxed);
      if (cell.sequence.compare_exchange_strong(seq, pos + mask_ + 1, std::memory_order_acq_rel,
                                                std::memory_order_acquire)) {
        // Ours. Move head_ on unless a helper already did.
        uint64_t expected = pos;
        head_.compare_exchange_strong(expected, pos + 1, std::memory_order_relaxed);
        return slot;
      }
      // Another consumer took it: seq now reads consumed, fall through to help.
    }
    if (static_cast<int64_t>(seq - pos) <= 0) {
      // Nothing published at `pos` yet: empty.
      return nullptr;
    }
    // `pos` was consumed (seq >= pos + C). Help head_ past it; either way `pos` is reloaded.
    if (head_.compare_exchange_strong(pos, pos + 1, std::memory_order_relaxed)) ++pos;
  }
}

size_t SlotRing::SizeApprox() const {
  // head first: tail only grows, so the later tail read is >= any tail that head had reached.
  const uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t n = tail >= head ? tail - head : 0;
  return static_cast<size_t>(std::min<uint64_t>(n, mask_ + 1));
}

}  // namespace l7px::acceptor
