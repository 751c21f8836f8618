#pragma once

#include "absl/status/statusor.h"
#include "base/address.h"
#include "base/unique_fd.h"

namespace l7px::io {

// A listening stream socket (non-blocking, close-on-exec). TCP listeners get SO_REUSEADDR and,
// when `reuse_port`, SO_REUSEPORT (one listener per worker). A UNIX path that exists and is a
// stale socket (nobody accepting) is replaced; a live one is an error.
absl::StatusOr<UniqueFd> Listen(const SocketAddress& addr, bool reuse_port, int backlog = 4096);

// TCP_NODELAY etc. on an accepted or registered stream socket (no-op for UNIX sockets).
void TuneStreamSocket(int fd);

// The local address a socket is bound to (to learn kernel-chosen ports).
SocketAddress LocalAddress(int fd);
SocketAddress PeerAddress(int fd);

}  // namespace l7px::io
