#pragma once

#include <liburing.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace l7px::io {

// Missing from liburing 2.3 headers; the kernel supports them.
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif

// One io_uring owned by one thread (single issuer). Thin: callers prep SQEs themselves;
// Sqe() never returns null (it submits to make room), so ops are never dropped.
class Ring {
 public:
  Ring() = default;
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring();

  // entries: SQ size (power of two); the CQ is 4x. Uses SINGLE_ISSUER | DEFER_TASKRUN when the
  // kernel allows, falling back to COOP_TASKRUN, then to no flags, and registers the ring's fd
  // with itself when it can. Must be called on the thread that will submit.
  absl::Status Init(unsigned entries);

  io_uring* raw() { return &ring_; }
  int fd() const { return ring_.ring_fd; }

  io_uring_sqe* Sqe();
  // Submits queued SQEs and waits until at least one completion or `timeout_ns` (<0 = forever).
  // Returns the number of completions ready (0 on timeout / interrupt).
  int SubmitAndWait(int64_t timeout_ns);
  // Submits without waiting.
  void Submit();
  // Submits and collects what has completed (runs the ring's deferred task work) without ever
  // sleeping. Returns the number of completions ready.
  int SubmitAndPoll();

  // Calls fn(cqe) for every ready completion, then marks them seen. Returns how many.
  template <typename Fn>
  unsigned Drain(Fn&& fn) {
    unsigned head;
    unsigned n = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      fn(cqe);
      ++n;
    }
    io_uring_cq_advance(&ring_, n);
    return n;
  }

 private:
  io_uring ring_{};
  bool initialized_ = false;
};

// A provided-buffer ring (IORING_REGISTER_PBUF_RING) of `count` buffers of `size` bytes each.
// Receives with IOSQE_BUFFER_SELECT pick a buffer; the owner returns it with Recycle() once the
// bytes are no longer needed (exactly once per completion that carried it).
class BufferRing {
 public:
  BufferRing() = default;
  BufferRing(const BufferRing&) = delete;
  BufferRing& operator=(const BufferRing&) = delete;
  ~BufferRing();

  absl::Status Init(Ring* ring, uint16_t group_id, uint32_t count, uint32_t size);
  uint32_t buffer_size() const { return size_; }
  char* Buffer(uint16_t bid) { return base_ + static_cast<size_t>(bid) * size_; }
  void Recycle(uint16_t bid);
  uint32_t outstanding() const { return outstanding_; }
  void NoteTaken() { ++outstanding_; }

 private:
  Ring* ring_ = nullptr;
  io_uring_buf_ring* br_ = nullptr;
  char* base_ = nullptr;
  size_t ring_bytes_ = 0;
  uint32_t count_ = 0;
  uint32_t size_ = 0;
  uint32_t outstanding_ = 0;
  uint16_t group_id_ = 0;
};

// Prepares `sqe` to set an int socket option through the ring (IORING_OP_URING_CMD with
// SOCKET_URING_OP_SETSOCKOPT, Linux 6.7+; liburing 2.3 has no helper). No syscall of its own:
// it runs when the ring submits, so `fd` must still be open then and `value` must live until
// then. On a kernel without it the completion carries -EOPNOTSUPP or -EINVAL.
void PrepSetSockOptInt(io_uring_sqe* sqe, int fd, int level, int optname, const int* value);

// Completion tags: {op kind: 8 bits, generation: 24 bits, index: 32 bits} in user_data.
// A completion whose generation does not match the object's current one is stale.
struct Tag {
  uint8_t op;
  uint32_t generation;  // low 24 bits used
  uint32_t index;

  uint64_t Pack() const {
    return (uint64_t{op} << 56) | (uint64_t{generation & 0xFFFFFF} << 32) | index;
  }
  static Tag Unpack(uint64_t v) {
    return Tag{static_cast<uint8_t>(v >> 56), static_cast<uint32_t>((v >> 32) & 0xFFFFFF),
               static_cast<uint32_t>(v)};
  }
};

}  // namespace l7px::io
