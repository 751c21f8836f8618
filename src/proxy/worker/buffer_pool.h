#pragma once

#include <cstdint>
#include <cstdlib>
#include <vector>

#include "base/reserve.h"

namespace l7px::proxy {

// Per-worker free list of fixed-size buffers. Buffers are allocated on first need and recycled
// forever after, so the steady-state request path never touches the heap. Single-threaded.
class BufferPool {
 public:
  explicit BufferPool(uint32_t size) : size_(size) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  ~BufferPool() {
    for (char* b : free_) std::free(b);
  }

  uint32_t size() const { return size_; }
  char* Get() {
    ++in_use_;
    if (!free_.empty()) {
      char* b = free_.back();
      free_.pop_back();
      return b;
    }
    // A new buffer (every other one is in use): room for it in the free list too, so that Put
    // never grows the list later (when every buffer is free at once for the first time).
    ReserveAtLeast(free_, in_use_);
    return static_cast<char*>(std::malloc(size_));
  }
  void Put(char* b) {
    if (b == nullptr) return;
    --in_use_;
    free_.push_back(b);
  }
  uint32_t in_use() const { return in_use_; }

 private:
  uint32_t size_;
  uint32_t in_use_ = 0;
  std::vector<char*> free_;
};

}  // namespace l7px::proxy
