#include "acceptor/idle_watch.h"

#include <sys/socket.h>

#include <cerrno>

namespace l7px::acceptor {

IdleSlotCheck PeekIdleSlot(int fd) {
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return IdleSlotCheck::kBytes;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    return IdleSlotCheck::kQuiet;
  }
  return IdleSlotCheck::kClosed;
}

bool IdleSinceLastTick(slots::Slot& slot) {
  const uint64_t epoch = slot.epoch();
  const bool idle = slot.state() == slots::Slot::State::kIdle;
  const bool since = idle && slot.watch_seen_idle && epoch == slot.watch_epoch;
  slot.watch_seen_idle = idle;
  slot.watch_epoch = epoch;
  return since;
}

}  // namespace l7px::acceptor
