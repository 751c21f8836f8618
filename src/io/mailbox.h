#pragma once

#include <liburing.h>

#include <cstdint>

#include "absl/status/status.h"
#include "io/ring.h"

#if defined(__SANITIZE_THREAD__)
#define L7PX_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define L7PX_TSAN 1
#endif
#endif
#if defined(L7PX_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace l7px::io {

// Cross-thread messages travel as completions posted straight into the target thread's ring
// (IORING_OP_MSG_RING): no locks, no eventfd, and the target wakes from its normal wait.
// The message is the target CQE's user_data (op kind in the top 8 bits, payload below) and res.
inline uint64_t PackMessage(uint8_t op, uint64_t payload56) {
  return (uint64_t{op} << 56) | (payload56 & ((uint64_t{1} << 56) - 1));
}
inline uint64_t MessagePayload(uint64_t user_data) { return user_data & ((uint64_t{1} << 56) - 1); }

// A message that hands an object to the target thread. MSG_RING orders everything the sender
// did before the post before the target sees the completion, but ThreadSanitizer cannot see
// through the kernel; these two tell it (and compile to nothing otherwise).
inline uint64_t PackPointerMessage(uint8_t op, const void* object) {
#if defined(L7PX_TSAN)
  __tsan_release(const_cast<void*>(object));
#endif
  return PackMessage(op, reinterpret_cast<uint64_t>(object));
}
template <typename T>
T* MessagePointer(uint64_t user_data) {
  T* object = reinterpret_cast<T*>(MessagePayload(user_data));
#if defined(L7PX_TSAN)
  __tsan_acquire(object);
#endif
  return object;
}

// Preps a message to `target_ring_fd`. Success posts no completion on the sender's ring; a
// failure (target gone, CQ overflow) completes on the sender with `failure_tag`.
inline void PrepPostMessage(io_uring_sqe* sqe, int target_ring_fd, uint64_t message, uint32_t value,
                            uint64_t failure_tag) {
  io_uring_prep_msg_ring(sqe, target_ring_fd, value, message, 0);
  sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
  io_uring_sqe_set_data64(sqe, failure_tag);
}

// For a thread without an event loop (the upgrade thread): a tiny ring of its own, each post
// submitted at once and its result awaited (MSG_RING completes inline, so this never blocks long).
class MessagePoster {
 public:
  // On the posting thread.
  absl::Status Init() { return ring_.Init(8); }
  absl::Status Post(int target_ring_fd, uint64_t message);

 private:
  Ring ring_;
};

}  // namespace l7px::io
