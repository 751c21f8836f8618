#pragma once

#include <poll.h>

#include <cstdint>

#include "slots/slot.h"

namespace l7px::acceptor {

// The acceptor's watch on a slot's socket: one io_uring poll per slot, armed until the slot is
// retired, in one of two modes.
//  - wide (POLLIN | POLLRDHUP): the slot is idle. Any readiness is news: the service closed the
//    connection, or it sent bytes while no request was outstanding, which the slot protocol
//    forbids (a response without a request, or bytes beyond the last response's end). Either way
//    the slot must go before a worker leases it, or the next client would read those bytes as
//    its response.
//  - narrow (POLLRDHUP): the slot was seen busy. Responses arrive on it all the time, and a
//    POLLIN watch would wake the acceptor for every one of them; only a close matters.
// A wide watch that fires on a busy slot is re-armed narrow; a narrow one is widened (a poll
// update) once a tick finds the slot idle with the same lease epoch as the tick before, so a
// slot in steady use costs the acceptor nothing and one idle for a tick is fully watched.
inline constexpr unsigned kWideWatch = POLLIN | POLLRDHUP;
inline constexpr unsigned kNarrowWatch = POLLRDHUP;

// What readiness on a slot with no request outstanding turned out to be.
enum class IdleSlotCheck {
  kQuiet,   // nothing to read (the readiness was a response a worker has since consumed)
  kBytes,   // bytes with no request outstanding: protocol violation
  kClosed,  // end of stream or a socket error
};

// Looks without consuming (recv MSG_PEEK | MSG_DONTWAIT; acceptor thread only).
IdleSlotCheck PeekIdleSlot(int fd);

// Acceptor-thread bookkeeping for the tick that widens narrow watches: true when `slot` has been
// idle, unleased, since the previous call (which recorded what it saw).
bool IdleSinceLastTick(slots::Slot& slot);

}  // namespace l7px::acceptor
