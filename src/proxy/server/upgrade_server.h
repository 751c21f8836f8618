#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "base/unique_fd.h"
#include "config/config.h"
#include "handoff/channel.h"
#include "io/mailbox.h"
#include "proxy/server/listeners.h"
#include "proxy/server/takeover.h"
#include "proxy/shared/shared_state.h"

namespace l7px::proxy {

// What the upgrade thread needs from the running server.
class HandoffHost {
 public:
  virtual ~HandoffHost() = default;
  virtual SharedState& shared() = 0;
  virtual const std::vector<ServedListener>& served_listeners() const = 0;
  virtual int64_t ClientConnections() const = 0;
  virtual void SetAdminAccepting(bool on) = 0;
  // The TLS session ticket keys to hand to a successor (opaque; "" without TLS).
  virtual std::string TicketKeys() = 0;
};

// The upgrade thread: serves upgrade.socket for a successor (`--takeover`), drains this process
// for it, and — in a process started with --takeover — first finishes taking over.
//
// Old side of a handoff (see acceptor/handoff_message.h for the messages):
//  1. check the peer (same uid, pid matches its Hello, protocol version), send every listener;
//  2. when it says Serving: stop accepting (workers, acceptor, admin) and drain: idle slots move
//     in acknowledged batches (a slot is dropped here only after the ack), busy ones as soon as
//     their response is done, but never while requests wait for a slot of their pool here (they
//     are served here first); connections close after their current response;
//  3. when no client connection and no slot is left (or upgrade.drain_timeout passed): Done,
//     and finished() turns true so the main thread exits.
// If the successor goes away before Done, everything not yet acknowledged goes back into service
// and accepting resumes: the process serves on as before. While one handoff runs, any other
// --takeover is refused.
class UpgradeServer {
 public:
  UpgradeServer(HandoffHost* host, const config::Upgrade& config);
  ~UpgradeServer();
  UpgradeServer(const UpgradeServer&) = delete;
  UpgradeServer& operator=(const UpgradeServer&) = delete;

  // Old side / plain start: `listener` is the bound upgrade socket (ListenUpgradeSocket).
  // New side: `takeover` is the handoff in progress; the socket is bound once it completes.
  void Start(UniqueFd listener, std::unique_ptr<Takeover> takeover);
  void Stop();

  // SIGQUIT: stop accepting, let every connection finish, then finished() (no successor).
  void RequestDrain() { drain_requested_.store(true); }
  // A handoff or a drain is under way (SIGUSR2 is refused meanwhile).
  bool busy() const { return busy_.load(); }
  // This process handed everything over or drained: it should exit now.
  bool finished() const { return finished_.load(); }
  // True when the process handed off to a successor (then it must not remove the pid file).
  bool handed_off() const { return handed_off_.load(); }

  // Writes upgrade.pid_file (if set) with this process's pid; RemovePidFile undoes it on a
  // normal exit.
  void WritePidFile() const;
  void RemovePidFile() const;

 private:
  struct DrainOutcome {
    bool successor_lost = false;  // the successor went away: resume service
    uint64_t moved = 0;
    bool timed_out = false;
  };

  void Run(std::unique_ptr<Takeover> takeover);
  void CompleteTakeover(Takeover& takeover);
  void Session(handoff::Channel channel);
  absl::Status SendListeners(handoff::Channel& channel);
  // Receive/Expect on `channel` that keep refusing other takeover attempts while they wait.
  absl::StatusOr<handoff::Channel::Received> Await(handoff::Channel& channel, int timeout_ms);
  absl::StatusOr<handoff::Channel::Received> AwaitType(handoff::Channel& channel,
                                                       handoff::Type type, int timeout_ms);
  DrainOutcome Drain(handoff::Channel* channel, pid_t successor);
  // Leases idle slots that can move now: none of a pool with requests queued here, and one per
  // pool stays while clients remain here.
  std::vector<slots::Slot*> CollectMovableSlots();
  // Puts leased slots back into service (the successor never confirmed them).
  void ReturnSlots(const std::vector<slots::Slot*>& slots);
  void ForgetSlots(const std::vector<slots::Slot*>& slots);
  bool SlotsLeft() const;
  void SetAccepting(bool on, bool stop_listening = false);
  void RefusePending(std::string_view reason);
  void Post(int ring_fd, uint64_t message);

  HandoffHost* host_;
  SharedState& shared_;
  config::Upgrade config_;
  UniqueFd listener_;
  io::MessagePoster poster_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> drain_requested_{false};
  std::atomic<bool> busy_{false};
  std::atomic<bool> finished_{false};
  std::atomic<bool> handed_off_{false};
  uint32_t next_batch_ = 0;
};

}  // namespace l7px::proxy
