#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "base/unique_fd.h"
#include "proxy/shared/metrics.h"
#include "proxy/shared/shared_state.h"
#include "proxy/transport/tls_transport.h"

namespace l7px::proxy {

namespace protocol {
class Http1;
}  // namespace protocol

// Messages a worker takes in its ring (io/mailbox.h), besides the acceptor's kMsgSlotAvailable.
// Drain: stop accepting; every response from now on closes its connection (unless the client
// already pipelined more); connections idle for kDrainIdleGraceNs are closed. Payload
// kDrainStopListening (SIGQUIT, no successor): also shut the listening sockets down, so new
// clients are refused at once instead of waiting in a backlog nobody will accept from.
inline constexpr uint8_t kMsgDrain = 0xC1;
inline constexpr uint64_t kDrainStopListening = 1;
inline constexpr uint8_t kMsgResume = 0xC2;  // a handoff failed: accept again
// How long a draining worker leaves an idle keep-alive connection open: a client that is about to
// send its next request gets it answered (with Connection: close) instead of racing our close.
inline constexpr int64_t kDrainIdleGraceNs = 1'000'000'000;

// Per-worker counters, written only by the owning worker (relaxed), read by stats.
struct WorkerStats {
  WorkerPoolMetrics pools;
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> responses_by_class[6] = {};  // index status/100
  std::atomic<uint64_t> shed_queue_full{0};
  std::atomic<uint64_t> shed_queue_timeout{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> stale_completions{0};
  std::atomic<uint64_t> enobufs{0};                  // receives that found no provided buffer
  std::atomic<uint64_t> accept_exhausted{0};         // accepts failed with EMFILE, ENFILE, ...
  std::atomic<uint64_t> connection_limit_pauses{0};  // times accepting stopped at max_connections
  std::atomic<uint64_t> body_too_slow{0};            // requests cut by min_body_rate
  std::atomic<uint64_t> send_timeouts{0};  // responses cut because the client stopped reading
  std::atomic<uint64_t> stray_slots{0};    // slots closed for bytes sent before any request
  std::atomic<int64_t> client_connections{0};
  // Memory held for responses read ahead of their clients (pool.response_buffer).
  std::atomic<int64_t> response_buffer_bytes{0};
  transport::TlsStats tls;
};

// A worker thread: one io_uring (single issuer), its SO_REUSEPORT front listeners with
// multishot accept, multishot recv into a provided-buffer ring, and every client connection it
// accepted. Never blocks, never takes a lock on the request path.
class Worker {
 public:
  // `listeners`: the front listening sockets this worker accepts on (bound for it, or inherited
  // from the process it took over from); those from index `tls_from` on terminate TLS
  // (shared->tls).
  Worker(int id, SharedState* shared, std::vector<UniqueFd> listeners, size_t tls_from);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread, creates the ring and listeners there; returns when the ring fd is known
  // (ring_fd()) or with the error. The loop waits for Go() before serving.
  absl::Status Start();
  void Go();
  void Join();
  int ring_fd() const { return ring_fd_; }
  const WorkerStats& stats() const { return stats_; }
  int id() const { return id_; }

 private:
  class Loop;
  friend class protocol::Http1;  // a downstream protocol of the loop
  int id_;
  SharedState* shared_;
  std::vector<UniqueFd> listeners_;  // moved into the loop by Start()
  size_t tls_from_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  int ring_fd_ = -1;
  std::atomic<bool> go_{false};
  WorkerStats stats_;
};

}  // namespace l7px::proxy
