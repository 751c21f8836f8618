#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/address.h"
#include "base/unique_fd.h"
#include "handoff/message.h"

namespace l7px::proxy {

// A listening socket received from the process this one takes over from.
struct InheritedListener {
  handoff::ListenerEntry entry;
  UniqueFd fd;
};

// A listening socket this process serves, as the upgrade handoff describes it to a successor.
// The fd stays owned by the worker, acceptor or admin thread that accepts on it.
struct ServedListener {
  handoff::ListenerEntry entry;
  int fd = -1;
};

// Builds the listening sockets a Server needs: inherited ones first (same kind and configured
// address keep their socket, so its identity and backlog survive an upgrade), freshly bound
// ones for the rest. Inherited sockets nobody asked for are closed when this is destroyed.
class ListenerSet {
 public:
  explicit ListenerSet(std::vector<InheritedListener> inherited = {});
  ~ListenerSet();

  // Front listeners, one list per worker: every inherited socket for each address is used
  // (spread over the workers; closing one would reset the connections in its backlog), and a
  // worker left without one for an address gets a new SO_REUSEPORT socket. `kind`: kFront
  // (server.listen, plain HTTP) or kTls (tls.listen).
  absl::StatusOr<std::vector<std::vector<UniqueFd>>> Front(
      const std::vector<SocketAddress>& addrs, int workers,
      handoff::ListenerKind kind = handoff::ListenerKind::kFront);
  absl::StatusOr<UniqueFd> Register(const SocketAddress& addr);
  absl::StatusOr<UniqueFd> Admin(const SocketAddress& addr);

  // Every socket handed out, for a later handoff.
  const std::vector<ServedListener>& served() const { return served_; }
  int inherited_used() const { return inherited_used_; }

 private:
  std::vector<UniqueFd> Take(handoff::ListenerKind kind, const std::string& address);
  absl::StatusOr<UniqueFd> One(handoff::ListenerKind kind, const SocketAddress& addr,
                               const char* what, int backlog);

  std::vector<InheritedListener> inherited_;
  std::vector<ServedListener> served_;
  int inherited_used_ = 0;
};

}  // namespace l7px::proxy
