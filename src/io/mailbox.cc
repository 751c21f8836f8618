#include "io/mailbox.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace l7px::io {

absl::Status MessagePoster::Post(int target_ring_fd, uint64_t message) {
  io_uring_sqe* sqe = ring_.Sqe();
  io_uring_prep_msg_ring(sqe, target_ring_fd, 0, message, 0);
  io_uring_sqe_set_data64(sqe, 1);
  io_uring_cqe* cqe = nullptr;
  const int ret = io_uring_submit_and_wait(ring_.raw(), 1);
  if (ret < 0) return absl::InternalError(absl::StrCat("MSG_RING submit: ", strerror(-ret)));
  if (io_uring_peek_cqe(ring_.raw(), &cqe) != 0 || cqe == nullptr) {
    return absl::InternalError("MSG_RING: no completion");
  }
  const int res = cqe->res;
  io_uring_cqe_seen(ring_.raw(), cqe);
  if (res < 0) return absl::UnavailableError(absl::StrCat("MSG_RING: ", strerror(-res)));
  return absl::OkStatus();
}

}  // namespace l7px::io
