#pragma once

#include <cstdint>

namespace l7px {

// Intrusive doubly linked list of deadlines. Every list holds timers of one fixed duration, so
// appending at the tail keeps it sorted and expiry only ever looks at the head: O(1) per
// operation, no allocation, no heap.
struct TimerNode {
  TimerNode* prev = nullptr;
  TimerNode* next = nullptr;
  int64_t deadline_ns = 0;
  void* list = nullptr;  // the TimerList holding it, nullptr when unlinked
  bool linked() const { return list != nullptr; }
};

class TimerList {
 public:
  explicit TimerList(int64_t duration_ns = 0) : duration_ns_(duration_ns) {}
  TimerList(const TimerList&) = delete;
  TimerList& operator=(const TimerList&) = delete;

  int64_t duration_ns() const { return duration_ns_; }
  bool empty() const { return head_ == nullptr; }
  TimerNode* front() const { return head_; }
  uint32_t size() const { return size_; }

  // (Re)starts a timer: now + duration, at the tail.
  void Start(TimerNode* node, int64_t now_ns) {
    Unlink(node);
    node->deadline_ns = now_ns + duration_ns_;
    node->list = this;
    node->prev = tail_;
    node->next = nullptr;
    if (tail_ != nullptr)
      tail_->next = node;
    else
      head_ = node;
    tail_ = node;
    ++size_;
  }

  static void Unlink(TimerNode* node) {
    auto* list = static_cast<TimerList*>(node->list);
    if (list == nullptr) return;
    if (node->prev != nullptr)
      node->prev->next = node->next;
    else
      list->head_ = node->next;
    if (node->next != nullptr)
      node->next->prev = node->prev;
    else
      list->tail_ = node->prev;
    node->prev = node->next = nullptr;
    node->list = nullptr;
    --list->size_;
  }

  // Head if its deadline passed, else nullptr.
  TimerNode* Expired(int64_t now_ns) const {
    return (head_ != nullptr && head_->deadline_ns <= now_ns) ? head_ : nullptr;
  }

 private:
  int64_t duration_ns_;
  TimerNode* head_ = nullptr;
  TimerNode* tail_ = nullptr;
  uint32_t size_ = 0;
};

}  // namespace l7px
