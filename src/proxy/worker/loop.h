#pragma once

// A worker: one io_uring, its client connections, and the exchanges between them and slots.
//
// Invariants:
//  - Only this thread touches its connections, buffers, timers and wait queues.
//  - A Connection is freed (fd closed, generation bumped) only in kClosing once ops == 0 and
//    slot_ops == 0: no completion can refer to a recycled connection except through a stale
//    generation, which is counted and dropped.
//  - Every provided buffer carried by a completion is recycled exactly once: right after its
//    bytes are copied into the connection's own input buffer.
//  - A leased slot is either returned idle (ReturnLeasedSlot), handed to a local waiter, or
//    killed and posted to the acceptor for retirement once no operation on it is in flight.
//  - The exchange is done when the response is complete and the request was fully sent (or
//    abandoned because the service answered early, in which case the slot is not reused).
//
// The loop's members are defined by job: loop.cc (ring plumbing, accepting, connections),
// client_input.cc (reading and parsing requests), dispatch.cc (the Dispatcher's verdicts
// carried out), exchange.cc (the exchange with a slot, tunnels, failures), responses.cc
// (l7px's own answers, the end of a request, timers, body pace). Worker thread only.

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <future>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "acceptor/acceptor.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/reserve.h"
#include "base/thread_name.h"
#include "base/timer_lists.h"
#include "http/rewrite.h"
#include "io/accept_gate.h"
#include "io/mailbox.h"
#include "io/ring.h"
#include "io/socket.h"
#include "proxy/transport/plain_transport.h"
#include "proxy/worker/access_log.h"
#include "proxy/worker/body_rate.h"
#include "proxy/worker/buffer_pool.h"
#include "proxy/worker/connection.h"
#include "proxy/worker/worker.h"
#include "slots/slot_lifecycle.h"

namespace l7px::proxy {

// Internal to the worker loop (its .cc files).
enum Op : uint8_t {
  kOpAccept = 1,
  kOpClientRecv = 2,
  kOpClientSend = 3,
  kOpSlotSend = 4,
  kOpSlotRecv = 5,
  kOpCancel = 6,
  kOpTick = 7,
  kOpLogWrite = 8,
  kOpPostFailed = 9,
  kOpAcceptCancel = 10,
  kOpSlotProbe = 11,
  kOpSlotAck = 12,
};

// A listener's accept: not armed, armed, or being cancelled.
enum class AcceptState : uint8_t { kIdle, kArmed, kCancelling };

constexpr int64_t kTickNs = 50'000'000;
constexpr uint32_t kProvidedBufferCount = 512;
constexpr uint32_t kProvidedBufferSize = 16 * 1024;
// Client body bytes buffered beyond the head: room for the largest server.body_buffer.
constexpr uint32_t kBodyWindow = config::kMaxBodyBuffer;
constexpr uint32_t kResponseBufferSize = 64 * 1024;
// Response bodies up to this size are copied behind the head and sent with it in one buffer.
constexpr uint32_t kCoalesceBodyBytes = 4096;
constexpr uint16_t kBufferGroup = 1;
// Interim (1xx) responses forwarded per exchange; one more is a 1xx flood: 502, slot closed.
constexpr int kMaxInterimResponses = 16;
// Free provided buffers kept back when re-arming receives that ran out of them.
constexpr uint32_t kStarvedRearmReserve = 16;

class Worker::Loop {
 public:
  Loop(int id, SharedState* shared, WorkerStats* stats, std::vector<UniqueFd> listeners);

  ~Loop();

  absl::Status Init();

  int ring_fd() const { return ring_.fd(); }

  void Run(std::atomic<bool>& go);

 private:
  // ---------------------------------------------------------------- plumbing

  static uint64_t TagOf(Op op, const Connection& c);

  // server.busy_poll: polls the ring (a non-blocking io_uring_enter each pass) for up to the
  // configured time before the worker goes to sleep; true when completions arrived. A sleep
  // and its wake-up cost a context switch each and tens of microseconds of latency; when the
  // next completion is that close, polling is cheaper. Spent once per sleep, so an idle worker
  // polls once per tick.
  bool BusyPoll(int64_t budget_ns);

  void ArmAccept(uint32_t listener, bool multishot);

  void CancelAccept(uint32_t listener);

  // Arms or cancels the listeners' accepts to match the gate: closed at max_connections (until
  // a connection closes) and for a backoff after running out of descriptors. While closed, new
  // connections wait in the kernel's listen backlog. Without a limit a listener has one
  // multishot accept; with one, single-shot accepts counted against it, since a multishot
  // accept takes the whole backlog at once and a burst would overshoot the limit by its size.
  // Runs after every batch of completions (and so at least every tick).
  void UpdateAccepting();

  void ArmTick();

  void ArmClientRecv(Connection& c);

  void CancelClientRecv(Connection& c);

  void Handle(io_uring_cqe* cqe);

  // ---------------------------------------------------------------- accept & connections

  // Re-arming happens in UpdateAccepting, after the batch.
  void OnAccept(uint32_t listener, int res, bool more);

  // An idle connection's timer: keepalive_timeout, or the drain grace while draining.
  TimerList& IdleTimer();

  // Upgrade handoff or SIGQUIT: stop accepting and let connections finish (or undo that).
  void SetDraining(bool on, bool stop_listening);

  // While draining, a response closes its connection unless the client already sent more
  // (pipelined bytes are answered first; the last response closes).
  bool DrainWantsClose(const Connection& c) const;

  // The client half-closed (sent its last byte) and no further request is buffered: the
  // response being made is its last, so it says Connection: close.
  bool ClientDoneAfterThis(const Connection& c) const;

  // Received bytes not yet decoded into `in`: provided buffers waiting for room, or plaintext
  // the transport holds.
  static bool InputWaiting(const Connection& c) {
    return c.client.pend_head >= 0 || (c.transport != nullptr && c.transport->buffered());
  }

  // The client half-closed and every byte it sent is in `in`: nothing more will arrive.
  static bool InputEnded(const Connection& c) { return c.client.eof && !InputWaiting(c); }

  // The head of a response l7px wrote (through its blank line): what a HEAD request gets.
  static size_t HeadLength(const char* response, size_t len);

  Connection& NewConnection(UniqueFd fd);

  Exchange& EnsureExchange(Connection& c);

  // The buffers a request needs once its head is parsed: the rewritten head and l7px's own
  // answers. The response buffer, the largest, waits for a slot (StartExchange): a request
  // that waits in the queue or for its body does not hold one.
  Exchange& EnsureExchangeBuffers(Connection& c);

  // Idle connections hold no buffers.
  void ReleaseExchange(Connection& c);

  void Close(Connection& c);

  void MaybeFree(Connection& c);

  // ---------------------------------------------------------------- client input

  void OnClientRecv(Connection& c, io_uring_cqe* cqe);

  void OnClientEof(Connection& c);

  // Decodes a provided buffer into the connection's input buffer (or queues it when full).
  void AcceptBytes(Connection& c, uint16_t bid, uint32_t len);

  // The transport cannot go on (a bad TLS record, a fatal alert): the connection ends without
  // an answer. Shut down rather than closed here, since callers still hold it: every pending
  // operation then completes with an error or end of input and the usual paths close it.
  void TransportFailed(Connection& c);

  void QueuePending(Connection& c, uint16_t bid, uint32_t len, uint32_t already_copied);

  // Decodes pending provided buffers (and plaintext the transport holds) into `in` as room
  // allows; re-arms the recv once drained.
  void DrainPending(Connection& c);

  void DropPending(Connection& c);

  void ProcessInput(Connection& c);

  void ParseHead(Connection& c);

  // ---------------------------------------------------------------- dispatch

  void OnRequestHead(Connection& c);

  // A small body is received whole before the request takes a slot or a place in the queue
  // (server.body_buffer), so a slow upload holds its own connection only, not one of the
  // service's slots, and the service gets the body at its own pace. Longer bodies stream.
  bool WaitForBody(Connection& c);

  // The whole body is here, or as much of it as server.body_buffer (or the input buffer) holds.
  bool BodyBuffered(const Connection& c) const;

  void ReadBodyBeforeDispatch(Connection& c);

  void SendContinue(Connection& c);

  void Dispatch(Connection& c);

  // Idle slots the dispatcher found killed when it popped them: the acceptor frees them.
  void RetireDeadSlots();

  void PostRetire(slots::Slot* slot);

  void PostSlotAvailable(int worker, uint32_t pool_id);

  // The connection whose waiter the dispatcher took off its queue: the wait is over.
  Connection& Dequeued(Waiter* w);

  // The client of a queued request went away or is answered otherwise.
  void Dequeue(Connection& c);

  static Connection* FromWaiter(Waiter* w);
  static Connection* FromTimerNode(TimerNode* node);
  static Connection* FromBodyNode(TimerNode* node);

  // A slot became idle somewhere and this worker had the oldest waiter for the pool (or the
  // pool is closing: the control plane then posts this to every worker).
  void OnSlotAvailable(uint32_t pool_id);

  // A slot this worker used is free again: its own oldest waiter first, else back to the stack
  // and wake the worker with the oldest waiter.
  void ReleaseSlot(slots::Pool& pool, slots::Slot* slot);

  // ---------------------------------------------------------------- exchange

  void StartExchange(Connection& c, slots::Slot* slot);

  // Before the request goes out, the slot must hold no bytes: the service cannot have answered
  // a request it has not been sent, so anything already there is stray (a second response, or
  // bytes written after the last one) and would otherwise be read as this client's response.
  // A non-blocking receive looks, and the request is sent only once it found nothing
  // (OnSlotProbed), so a request never reaches a slot caught with stray bytes.
  //
  // A TCP service may hold such bytes back (Nagle) until l7px acknowledges its last response,
  // and l7px's kernel delays that acknowledgement to ride on the next request: the stray bytes
  // would then arrive just after the request went out, be read as its response, and leave the
  // slot one response behind for good. So the probe is preceded, in the same submission, by a
  // TCP_QUICKACK that sends the pending acknowledgement now: the service's held bytes are
  // released before the look (on loopback, delivered within that same call).
  void ProbeSlot(Connection& c);

  void OnSlotProbed(Connection& c, int res);

  // The slot is clean: the rewritten head (and any body bytes here) go out, and the response is
  // awaited.
  void SendRequest(Connection& c);

  // Parses request body bytes waiting in `in` (up to the end of the message). False when the
  // body is malformed (the connection was answered/closed).
  bool ScanBody(Connection& c);

  void PumpRequestBody(Connection& c);

  // Sends what is ready: the rest of the rewritten head, then parsed body bytes.
  void SendToSlot(Connection& c);

  void OnSlotSent(Connection& c, int res);

  // Sends iov[0] then iov[1] (either may be empty, not both): a plain send when only one has
  // bytes (cheaper in the kernel than sendmsg: no msghdr copy, no iovec import), else sendmsg
  // through `msg`, which must live until the completion.
  void PrepSend(int fd, iovec* iov, msghdr* msg, uint64_t tag);

  // expect_wait: the service cannot have answered yet (the request is only now being sent), so
  // the kernel waits for readiness first instead of trying a receive that would find nothing.
  void ArmSlotRecv(Connection& c, bool expect_wait = false);

  void OnSlotRecv(Connection& c, int res);

  void ProcessResponse(Connection& c);

  // 1xx (not 101): forwarded to HTTP/1.1 clients, then the parser starts on the next response.
  void ForwardInterim(Connection& c);

  // After an interim response went out: parse what is buffered or read more from the slot.
  void ContinueResponse(Connection& c);

  void SendToClient(Connection& c);

  void OnClientSent(Connection& c, int res);

  void AfterClientSendDone(Connection& c);

  void MaybeFinishExchange(Connection& c);

  void FinishExchange(Connection& c);

  // ---------------------------------------------------------------- tunnel (after 101)

  void StartTunnel(Connection& c);

  void PumpTunnelToSlot(Connection& c);

  // A client half-close is passed on to the service (SHUT_WR) once every byte the client sent
  // before it has been forwarded.
  void MaybeShutdownTunnelToSlot(Connection& c);

  // The tunnel ends when both directions are done.
  void MaybeEndTunnel(Connection& c);

  // ---------------------------------------------------------------- failures

  // The slot failed (closed, reset, send error) during the exchange.
  void OnSlotFailure(Connection& c, int res);

  void BadResponse(Connection& c, std::string_view why);

  // The slot will not be reused: dead now, retired to the acceptor once no op references it.
  void KillSlot(Connection& c);

  void RetireSlot(Connection& c);

  // ---------------------------------------------------------------- responses & request end

  // Answers the current request with a response l7px makes itself.
  void Respond(Connection& c, int status, bool close);

  void FinishRequest(Connection& c);

  void LogRequest(Connection& c);

  void FlushAccessLog();

  // ---------------------------------------------------------------- timers

  void OnTick();

  // ---------------------------------------------------------------- request body pace

  // l7px is not reading the client now: received bytes wait for room in `in` (backpressure from
  // the service or the queue), or the receive ran out of provided buffers.
  bool ReadingPaused(const Connection& c) const;

  // A body_timeout window starts (see body_rate.h).
  void StartBodyWindow(Connection& c);

  void OnBodyWindow(Connection& c);

  // The one timer of a connection fired; what it meant depends on the state.
  void OnTimeout(Connection& c);

  // The connection's one timer (header, keep-alive, queue or response timeout).
  TimerList& TimerFor(int64_t duration_ns) { return timers_.For(duration_ns); }

  // Receives that ended for want of provided buffers (ENOBUFS) are re-armed oldest first, only
  // as many as there are free buffers: re-arming them all at once would mostly fail again and
  // spin through the same list every loop pass while the ring stays short.
  void RearmStarved();

  int id_;
  SharedState* shared_;
  WorkerStats* stats_;
  const config::Config& cfg_;
  io::Ring ring_;
  io::BufferRing buffers_;
  std::vector<int32_t> pend_next_;
  std::vector<uint32_t> pend_len_;
  std::vector<UniqueFd> listeners_;
  // By listener: the transport its connections get (plain for every listener so far).
  std::vector<std::unique_ptr<transport::TransportFactory>> transports_;
  bool draining_ = false;
  std::vector<std::unique_ptr<Connection>> conns_;
  Connection* free_conns_ = nullptr;
  std::vector<Exchange*> free_exchanges_;
  size_t exchanges_ = 0;  // Exchanges created: free_exchanges_ has room for all of them
  std::vector<Connection*> starved_;
  BufferPool in_pool_;
  BufferPool aux_pool_;  // request heads for services (ServiceRequestHeadCapacity)
  BufferPool out_pool_;  // response heads for clients, and l7px's own answers
  BufferPool resp_pool_;
  TimerLists timers_;       // Connection::timer
  TimerLists body_timers_;  // Connection::body_timer
  io::AcceptGate accept_gate_;
  std::vector<AcceptState> accept_state_;  // by listener
  std::vector<bool> accept_multishot_;     // by listener: the armed accept is multishot
  bool at_connection_limit_ = false;
  bool ack_before_probe_ = true;          // cleared if the kernel cannot set TCP_QUICKACK by ring
  Dispatcher dispatcher_{id_};            // this worker's wait queues and their policy
  const ServerLimits* limits_ = nullptr;  // read each loop pass (RCU)
  http::Parser::Limits request_limits_;
  http::RequestIdGenerator request_ids_;
  AccessLog access_log_;
  bool log_write_inflight_ = false;
  int64_t now_ns_ = 0;
  __kernel_timespec tick_ts_{};
};

}  // namespace l7px::proxy
