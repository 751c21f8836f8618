#include "proxy/server/listeners.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "io/socket.h"

namespace l7px::proxy {

using handoff::ListenerKind;

ListenerSet::ListenerSet(std::vector<InheritedListener> inherited)
    : inherited_(std::move(inherited)) {}

ListenerSet::~ListenerSet() {
  for (const InheritedListener& l : inherited_) {
    if (l.fd) {
      L7PX_LOG(kWarn, "takeover: closing inherited listener {}: not in this config",
               l.entry.address);
    }
  }
}

std::vector<UniqueFd> ListenerSet::Take(ListenerKind kind, const std::string& address) {
  std::vector<UniqueFd> out;
  for (InheritedListener& l : inherited_) {
    if (l.fd && l.entry.kind == kind && l.entry.address == address) out.push_back(std::move(l.fd));
  }
  inherited_used_ += static_cast<int>(out.size());
  return out;
}

absl::StatusOr<std::vector<std::vector<UniqueFd>>> ListenerSet::Front(
    const std::vector<SocketAddress>& addrs, int workers, ListenerKind kind) {
  std::vector<std::vector<UniqueFd>> per_worker(static_cast<size_t>(workers));
  const char* what = kind == ListenerKind::kTls ? "tls.listen" : "server.listen";
  for (const SocketAddress& addr : addrs) {
    const std::string name = addr.ToString();
    std::vector<UniqueFd> taken = Take(kind, name);
    const size_t inherited = taken.size();
    for (size_t i = 0; i < taken.size(); ++i) {
      served_.push_back({{kind, name}, taken[i].get()});
      per_worker[i % per_worker.size()].push_back(std::move(taken[i]));
    }
    for (size_t w = inherited; w < per_worker.size(); ++w) {
      auto fd = io::Listen(addr, /*reuse_port=*/true);
      if (!fd.ok()) {
        return absl::Status(fd.status().code(), absl::StrCat(what, ": ", fd.status().message()));
      }
      served_.push_back({{kind, name}, fd->get()});
      per_worker[w].push_back(std::move(*fd));
    }
  }
  return per_worker;
}

absl::StatusOr<UniqueFd> ListenerSet::One(ListenerKind kind, const SocketAddress& addr,
                                          const char* what, int backlog) {
  const std::string name = addr.ToString();
  std::vector<UniqueFd> taken = Take(kind, name);
  UniqueFd fd;
  if (!taken.empty()) {
    fd = std::move(taken.front());  // only one is ever sent; extras close here
  } else {
    auto bound = io::Listen(addr, /*reuse_port=*/false, backlog);
    if (!bound.ok()) {
      return absl::Status(bound.status().code(),
                          absl::StrCat(what, ": ", bound.status().message()));
    }
    fd = std::move(*bound);
  }
  served_.push_back({{kind, name}, fd.get()});
  return fd;
}

absl::StatusOr<UniqueFd> ListenerSet::Register(const SocketAddress& addr) {
  return One(ListenerKind::kRegister, addr, "register.listen", 4096);
}

absl::StatusOr<UniqueFd> ListenerSet::Admin(const SocketAddress& addr) {
  return One(ListenerKind::kAdmin, addr, "admin.listen", 64);
}

}  // namespace l7px::proxy
