#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace l7px::testing {

// Keeps `connections` keep-alive client connections busy with "GET <path>" until Stop(), the
// way wrk does: a response carrying Connection: close makes that connection reconnect, which is
// not an error; a connect failure, a send failure, or a connection that ends before its
// response is a connection error (a refused connection is never retried: in an upgrade test a
// listener that went away must show). Bounded: every thread also stops after `max_run`.
class LoadClient {
 public:
  LoadClient(uint16_t port, int connections, std::string path,
             std::chrono::seconds max_run = std::chrono::seconds(120));
  ~LoadClient();
  LoadClient(const LoadClient&) = delete;
  LoadClient& operator=(const LoadClient&) = delete;

  void Start();

  struct Totals {
    uint64_t ok = 0;                 // 2xx responses
    uint64_t bad_status = 0;         // any other status
    uint64_t shed = 0;               // of which 503 (queue full, queue_timeout, pool closing)
    uint64_t connection_errors = 0;  // see the class comment
    uint64_t connects = 0;
    std::chrono::milliseconds slowest{0};  // the longest a response took
    std::string first_error;               // what the first failure was, for the test's message
  };
  // Stops every connection (after its current exchange) and returns the totals.
  Totals Stop();
  uint64_t ok() const { return ok_.load(); }

 private:
  void Run();
  void NoteError(std::atomic<uint64_t>& counter, const std::string& what);

  const uint16_t port_;
  const int connections_;
  const std::string path_;
  const std::chrono::seconds max_run_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ok_{0};
  std::atomic<uint64_t> bad_status_{0};
  std::atomic<uint64_t> shed_{0};
  std::atomic<uint64_t> connection_errors_{0};
  std::atomic<uint64_t> connects_{0};
  std::atomic<int64_t> slowest_ms_{0};
  std::mutex mu_;
  std::string first_error_;
};

// `n` GETs of `path` on port `port` over `clients` keep-alive connections (a connection is
// opened again after a response with Connection: close, or none). Returns how many answers
// came by "<status> <X-Service field>", and "none" for a request without an answer. Bounded:
// each response waits at most kIo.
std::map<std::string, int> CountAnswersByService(uint16_t port, int clients, int n,
                                                 const std::string& path);

// One connection to `port`, `n` GETs of "/n0", "/n1", ... one after the other; each answer must be
// the listening service's "<name> <path>" for `name` (a test failure otherwise). Returns the
// milliseconds they took (-1 when one failed).
int64_t MillisForSequentialRequests(uint16_t port, int n, const std::string& name);

// `rounds` times: `clients` connections each send GET `path` to `port`, and `after` later all
// of them leave with a reset (SO_LINGER 0) without waiting for an answer.
void GiveUpMidRequest(uint16_t port, int rounds, int clients, const std::string& path,
                      std::chrono::milliseconds after);

}  // namespace l7px::testing
