#pragma once

// `l7px connect`: the agent beside a service that only listens. It registers `slots` slots with
// every proxy while the service answers, forwards requests through Relay and LocalPool, and
// withdraws (closes every slot) while the service does not.
//
// Threads: the caller's (Run: signals, health, supervision), one per slot per proxy while
// registered, one per tunnel.
//
// Invariants:
// - Slot threads exist only inside a Generation: one registration period, started when the
//   service answered and withdrawn (its Stopper quit) when it stopped answering. A withdrawn
//   generation's idle slots close at once; busy ones finish their exchange first; the
//   generation is joined once all its threads ended (never blocking Run on a busy one).
// - Every wait of every thread watches the process Stopper (SIGTERM: quit; grace over: abort)
//   and its generation's, so a stop ends them all without signals reaching the threads.
// - Each proxy's state is logged when it changes, not per attempt; so is the service's (up,
//   down). A proxy's state is that of its N slots, which may differ (a pool at max_slots takes
//   some and refuses the rest): "registered" is logged when the first slot registers after
//   none was, and each problem (down: why, refused: status) once until every slot is
//   registered again; a slot re-registering or meeting the same refusal in turn logs nothing.
// - running_ counts every slot and tunnel thread not yet finished; it changes under mu_ and
//   each change notifies cv_ (the grace wait at exit).

#include <atomic>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "connect/local_pool.h"
#include "connect/options.h"
#include "connect/relay.h"

namespace l7px::connect {

class Agent : public RelayHooks {
 public:
  explicit Agent(ConnectOptions options);
  ~Agent() override;
  // Runs until SIGTERM or SIGINT (which the caller has blocked in every thread, see
  // RunConnect), then stops within the grace; returns the exit code.
  int Run(int signal_fd);

  void LocalUnreachable(const std::string& error) override;
  void StartTunnel(UniqueFd slot, UniqueFd local, std::string to_local,
                   std::string to_slot) override;

 private:
  struct Generation {
    Stopper stop;
    std::vector<std::thread> threads;
    std::atomic<int> running{0};
  };
  struct TunnelThread {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  enum class SlotEnd { kStop, kFailed, kSlowFailed, kClosedEarly, kServed };

  bool ProbeService(std::string* error);
  void StartGeneration();
  void Withdraw();
  void Reap(bool all);
  void SlotThread(size_t proxy, int index, Generation* gen);
  SlotEnd RunSlot(size_t proxy, int index, Relay& relay, const Stops& stops);
  // Records slot `index`'s state with `proxy` and logs `line` when the proxy's state changed
  // (see the invariants).
  void LogProxy(size_t proxy, int index, const std::string& state, const std::string& line);
  void ThreadEnded();

  const ConnectOptions o_;
  const std::string registration_head_;
  Stopper process_stop_;
  LocalPool pool_;
  UniqueFd wake_;  // eventfd: a slot thread saw the service unreachable
  std::atomic<bool> down_reported_{false};
  std::string down_error_;  // under mu_

  std::unique_ptr<Generation> current_;
  std::vector<std::unique_ptr<Generation>> retired_;

  std::mutex mu_;
  std::condition_variable cv_;
  int running_ = 0;
  std::list<TunnelThread> tunnels_;  // under mu_
  struct ProxyLog {
    std::vector<std::string> slot;    // each slot's last state ("" before its first attempt)
    std::vector<std::string> logged;  // problems logged since every slot was registered
  };
  std::vector<ProxyLog> proxy_log_;  // under mu_
};

// `l7px connect ARGS`: parses the flags (exit 2 with a message on a bad one), blocks the
// signals, runs an Agent. `argv` are the words after "connect".
int RunConnect(int argc, char** argv);

}  // namespace l7px::connect
