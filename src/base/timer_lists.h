#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/timer_list.h"

namespace l7px {

// Timer lists by duration. Timers of one duration share a list, so each list stays sorted by
// deadline whatever a reload changes; lists are created on first use and kept (there are few
// distinct durations). One TimerLists per kind of TimerNode, so an expiry knows which member of
// its owner the node is.
class TimerLists {
 public:
  TimerList& For(int64_t duration_ns) {
    std::unique_ptr<TimerList>& list = by_duration_[duration_ns];
    if (list == nullptr) {
      list = std::make_unique<TimerList>(duration_ns);
      lists_.push_back(list.get());
    }
    return *list;
  }

  // Unlinks and returns one expired node (the earliest of its list), or nullptr.
  TimerNode* TakeExpired(int64_t now_ns) {
    for (TimerList* list : lists_) {
      if (TimerNode* n = list->Expired(now_ns)) {
        TimerList::Unlink(n);
        return n;
      }
    }
    return nullptr;
  }

  // Unlinks every expired node and calls fn(node). By index: fn may create a list (For) while
  // the lists are walked.
  template <typename Fn>
  void Expire(int64_t now_ns, Fn&& fn) {
    for (size_t i = 0; i < lists_.size(); ++i) {
      while (TimerNode* n = lists_[i]->Expired(now_ns)) {
        TimerList::Unlink(n);
        fn(n);
      }
    }
  }

 private:
  absl::flat_hash_map<int64_t, std::unique_ptr<TimerList>> by_duration_;
  std::vector<TimerList*> lists_;  // the same lists, in creation order
};

}  // namespace l7px
