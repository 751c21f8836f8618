#include "io/ring.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace l7px::io {

Ring::~Ring() {
  if (initialized_) io_uring_queue_exit(&ring_);
}

absl::Status Ring::Init(unsigned entries) {
  const unsigned flag_sets[] = {
      IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
      0,
  };
  int ret = 0;
  for (unsigned flags : flag_sets) {
    io_uring_params params{};
    params.flags = flags | IORING_SETUP_CQSIZE;
    params.cq_entries = entries * 4;
    ret = io_uring_queue_init_params(entries, &ring_, &params);
    if (ret == 0) {
      initialized_ = true;
      // Every io_uring_enter then finds the ring by index instead of looking its fd up (and
      // counting a reference) per call. Per thread, like the ring. Optional: without it
      // (kernels before 5.18) the ring works the same, one fd lookup per call dearer.
      io_uring_register_ring_fd(&ring_);
      return absl::OkStatus();
    }
  }
  return absl::InternalError(absl::StrCat("io_uring_queue_init: ", strerror(-ret)));
}

io_uring_sqe* Ring::Sqe() {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  while (sqe == nullptr) {
    io_uring_submit(&ring_);
    sqe = io_uring_get_sqe(&ring_);
  }
  return sqe;
}

void Ring::Submit() { io_uring_submit(&ring_); }

int Ring::SubmitAndPoll() {
  io_uring_submit_and_get_events(&ring_);
  return static_cast<int>(io_uring_cq_ready(&ring_));
}

int Ring::SubmitAndWait(int64_t timeout_ns) {
  io_uring_cqe* cqe = nullptr;
  int ret;
  if (timeout_ns < 0) {
    ret = io_uring_submit_and_wait(&ring_, 1);
  } else {
    __kernel_timespec ts{};
    ts.tv_sec = timeout_ns / 1'000'000'000;
    ts.tv_nsec = timeout_ns % 1'000'000'000;
    ret = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  (void)ret;
  return static_cast<int>(io_uring_cq_ready(&ring_));
}

BufferRing::~BufferRing() {
  if (br_ != nullptr) {
    io_uring_unregister_buf_ring(ring_->raw(), group_id_);
    munmap(br_, ring_bytes_);
  }
  free(base_);
}

absl::Status BufferRing::Init(Ring* ring, uint16_t group_id, uint32_t count, uint32_t size) {
  ring_ = ring;
  group_id_ = group_id;
  count_ = count;
  size_ = size;
  ring_bytes_ = count * sizeof(io_uring_buf);
  void* mem =
      mmap(nullptr, ring_bytes_, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
  if (mem == MAP_FAILED) return absl::InternalError("mmap buffer ring failed");
  br_ = static_cast<io_uring_buf_ring*>(mem);
  io_uring_buf_ring_init(br_);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(br_);
  reg.ring_entries = count;
  reg.bgid = group_id;
  const int ret = io_uring_register_buf_ring(ring->raw(), &reg, 0);
  if (ret != 0) {
    munmap(br_, ring_bytes_);
    br_ = nullptr;
    return absl::InternalError(absl::StrCat("io_uring_register_buf_ring: ", strerror(-ret)));
  }
  base_ = static_cast<char*>(aligned_alloc(4096, static_cast<size_t>(count) * size));
  if (base_ == nullptr) return absl::ResourceExhaustedError("buffer ring memory");
  const int mask = io_uring_buf_ring_mask(count);
  for (uint32_t i = 0; i < count; ++i) {
    io_uring_buf_ring_add(br_, Buffer(static_cast<uint16_t>(i)), size, static_cast<uint16_t>(i),
                          mask, static_cast<int>(i));
  }
  io_uring_buf_ring_advance(br_, static_cast<int>(count));
  return absl::OkStatus();
}

void BufferRing::Recycle(uint16_t bid) {
  io_uring_buf_ring_add(br_, Buffer(bid), size_, bid, io_uring_buf_ring_mask(count_), 0);
  io_uring_buf_ring_advance(br_, 1);
  --outstanding_;
}

void PrepSetSockOptInt(io_uring_sqe* sqe, int fd, int level, int optname, const int* value) {
  constexpr uint32_t kSocketUringOpSetSockOpt = 3;  // enum io_uring_socket_op (Linux 6.7)
  io_uring_prep_rw(IORING_OP_URING_CMD, sqe, fd, nullptr, 0, 0);
  sqe->cmd_op = kSocketUringOpSetSockOpt;
  // The kernel's layout for socket commands: level and optname share `addr`, optlen is
  // `file_index`, optval is `addr3`.
  sqe->addr = static_cast<uint64_t>(static_cast<uint32_t>(level)) |
              (static_cast<uint64_t>(static_cast<uint32_t>(optname)) << 32);
  sqe->file_index = sizeof(int);
  sqe->addr3 = reinterpret_cast<uintptr_t>(value);
}

}  // namespace l7px::io
