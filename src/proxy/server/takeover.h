#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "acceptor/acceptor.h"
#include "handoff/channel.h"
#include "proxy/server/listeners.h"

namespace l7px::proxy {

// The new process's side of an upgrade handoff (`l7px -c FILE --takeover`).
//
//   Begin()         connect to upgrade.socket, exchange Hello, receive every listener
//   (Server::Start with those listeners: workers run and accept)
//   ReceiveSlots()  tell the old process we serve, then adopt its slots until it is done
//
// Anything failing before Serving is sent leaves the old process as it was; Abort() tells it why.
class Takeover {
 public:
  static absl::StatusOr<std::unique_ptr<Takeover>> Begin(const std::string& socket_path);

  std::vector<InheritedListener> TakeListeners() { return std::move(listeners_); }
  pid_t old_pid() const { return old_pid_; }
  uint64_t old_upgrades() const { return old_upgrades_; }
  size_t listener_count() const { return listener_count_; }
  // The TLS session ticket keys the old process handed over ("" if none or a version-1 peer).
  const std::string& ticket_keys() const { return ticket_keys_; }

  // Tells the old process we could not start; it keeps serving.
  void Abort(std::string_view reason);

  struct Result {
    uint64_t slots = 0;       // slots received and handed to `adopt`
    bool old_done = false;    // the old process said Done (else it went away mid-handoff)
    int64_t duration_ns = 0;  // from Begin to the end of the slot stream
  };
  // Sends Serving, then passes every slot received to `adopt` and acknowledges each batch.
  // Returns when the old process is done or gone; an error only for a protocol violation.
  absl::StatusOr<Result> ReceiveSlots(
      absl::FunctionRef<void(std::unique_ptr<acceptor::AdoptedSlot>)> adopt);

 private:
  Takeover() = default;
  // Connects, checks the peer and exchanges Hello offering handoff version `offer`.
  absl::Status Greet(const std::string& socket_path, uint16_t offer);

  handoff::Channel channel_;
  std::vector<InheritedListener> listeners_;
  size_t listener_count_ = 0;
  pid_t old_pid_ = 0;
  uint64_t old_upgrades_ = 0;
  uint16_t version_ = 0;  // the handoff version both speak
  std::string ticket_keys_;
  int64_t start_ns_ = 0;
};

}  // namespace l7px::proxy
