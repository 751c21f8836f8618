#pragma once

// One slot's forwarding loop for `l7px connect`: reads each request l7px writes on a registered
// slot and streams it to the local service over a leased keep-alive connection (LocalPool),
// streaming the response back, never holding a whole body. One Relay per slot thread; its
// buffers and parsers are allocated once and reused for every request.
//
// Invariants:
// - A request is written to the service only on a leased connection, and the lease is held
//   until its response is complete (or the exchange failed): the pool's bound is the bound on
//   requests at the service.
// - Request bytes go to the service exactly as l7px wrote them (head and body framing
//   unchanged: X-Forwarded-For and the rest reach the service as l7px set them). Response
//   bytes go to l7px unchanged, except that a final response that ends its connection
//   (`Connection: close`, HTTP/1.0) but has its own framing gets its head re-written as a
//   persistent HTTP/1.1 one (Connection and the fields it names removed): the slot stays,
//   only the local connection is closed. A close-delimited response can only end by closing,
//   so its slot is closed after it (l7px reads it to the close; the slot thread re-dials).
// - Nothing is written to the slot before the service's response head is complete; so when
//   the service fails before that, l7px gets one whole answer: the response re-sent on a fresh
//   connection (once, only if the failed connection was a reused idle one, the request is
//   still whole in the buffer and replayable), or a 502.
// - A 101 answer to an upgrade request turns both connections into a tunnel (RelayHooks):
//   the slot is then no longer a slot and its thread dials a replacement at once.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/unique_fd.h"
#include "connect/local_pool.h"
#include "connect/net.h"
#include "http/parser.h"

namespace l7px::connect {

// What a Relay asks of the agent around it. Called from slot threads.
class RelayHooks {
 public:
  virtual ~RelayHooks() = default;
  // A fresh connection to the service could not be made: the service may be down.
  virtual void LocalUnreachable(const std::string& error) = 0;
  // The exchange became a tunnel: relay bytes both ways until either side closes. `to_local`
  // and `to_slot` are bytes already read that belong to the other side.
  virtual void StartTunnel(UniqueFd slot, UniqueFd local, std::string to_local,
                           std::string to_slot) = 0;
};

class Relay {
 public:
  // Buffer size for each direction; a request head from l7px (server.max_header_bytes plus
  // the fields it adds) and a response head from the service must fit.
  static constexpr uint32_t kBufferSize = 64 * 1024;

  Relay(LocalPool& pool, RelayHooks& hooks, Stops stops);
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  enum class End {
    kStopped,  // a stop came while the slot was idle: closed by the caller
    kClosed,   // l7px closed the slot, an exchange failed, or the slot had to close
    kTunnel,   // the slot became a tunnel (the fd was moved to it)
  };
  struct Result {
    End end = End::kClosed;
    uint64_t exchanges = 0;  // responses relayed completely
  };
  // Serves requests on a registered slot until it ends. `pending` are bytes read after the
  // registration's 101 (already slot traffic).
  Result Serve(UniqueFd& slot, std::string_view pending);

 private:
  enum class Outcome {
    kDone,         // response relayed; slot_keep_ says whether the slot goes on
    kFailedEarly,  // the service failed before any response byte (nothing sent to the slot)
    kBadResponse,  // the service sent something that is not a response (nothing sent yet)
    kSlotGone,     // the slot failed or closed, or a response broke off after bytes were sent
    kTunnel,
    kAborted,
  };
  Outcome Exchange(UniqueFd& slot, UniqueFd& local, bool* local_keep);
  bool ParseRequest();
  bool ParseResponse(int slot_fd, Outcome* fail);
  bool StartTunnel(UniqueFd& slot, UniqueFd& local);
  void WriteError(int slot_fd, int status, bool close);
  // l7px closed the slot mid-exchange (its client left, or it gave up at response_timeout)
  // after the whole request reached the service, which is still working on it. The connection
  // stays leased until the answer is complete and read away (at most kDrainLimit), so the
  // service never runs more than N requests: letting the lease go at once would start another
  // one while this one runs. Returns whether the connection can be reused.
  bool DrainResponse(int lfd);
  static constexpr std::chrono::seconds kDrainLimit{60};

  LocalPool& pool_;
  RelayHooks& hooks_;
  const Stops stops_;
  std::unique_ptr<char[]> req_;
  std::unique_ptr<char[]> resp_;
  std::unique_ptr<char[]> head_out_;
  http::Parser req_parser_;
  http::Parser resp_parser_;
  // Request side: req_[0, rlen_) read from the slot, parsed up to rscan_, sent to the service
  // up to rsent_.
  uint32_t rlen_ = 0, rscan_ = 0, rsent_ = 0;
  bool req_done_ = false;
  bool req_discard_ = false;  // the service stopped reading: the rest of the request is dropped
  bool req_intact_ = true;    // req_[0, rscan_) is the whole request so far (resendable)
  bool head_request_ = false;
  bool upgrade_request_ = false;
  // Response side: resp_[0, plen_) read from the service, parsed up to pscan_, sent to the slot
  // up to psent_ (only once the head is complete); head_out_[hsent_, hlen_) a re-written head
  // going out first.
  uint32_t plen_ = 0, pscan_ = 0, psent_ = 0, hlen_ = 0, hsent_ = 0;
  bool resp_head_ = false;
  bool resp_done_ = false;
  bool slot_written_ = false;  // some response byte went to the slot
  bool slot_keep_ = true;
  bool tunnel_ = false;
  const bool quick_ack_;  // the service is reached over TCP
};

// Relays bytes both ways between `a` and `b` until both directions ended (an EOF is passed on
// as a half-close) or either fails; `to_b` and `to_a` go out first. Ends early on an abort in
// `stops`.
void PumpTunnel(int a, int b, std::string to_b, std::string to_a, const Stops& stops);

}  // namespace l7px::connect
