#pragma once

// A worker: one io_uring, its client connections, and the exchanges of their streams with slots.
//
// Invariants:
//  - Only this thread touches its connections, streams, buffers, timers and wait queues.
//  - A Connection is freed (fd closed, generation bumped) only in kClosing once no operation on
//    its fd or on a slot of one of its streams is in flight: no completion can refer to a
//    recycled connection except through a stale generation, which is counted and dropped.
//  - Every provided buffer carried by a completion is recycled exactly once: right after its
//    bytes are decoded into the connection's own input buffer.
//  - A leased slot is either returned idle (ReleaseSlot), handed to a local waiter, or killed
//    and posted to the acceptor for retirement once no operation on it is in flight.
//  - An exchange is done when the response is complete and the request was fully sent (or
//    abandoned because the service answered early, in which case the slot is not reused).
//
// Three layers, each in its own files (see protocol/downstream.h for how they meet):
//  - the loop: loop.cc (ring plumbing, accepting, connections), client_io.cc (receiving and
//    decoding through the transport, sending to clients, backpressure);
//  - the exchange engine, on streams: dispatch.cc (routing, the Dispatcher's verdicts carried
//    out), exchange.cc (the exchange with a slot, tunnels, failures), streams.cc (stream
//    buffers, timers, body pace, the access log), tunnel.cc (a tunnel's limit, idle timer and
//    end);
//  - the downstream protocol: protocol/http1/ (a friend of the loop, using its services).
// Worker thread only.

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
#include "proxy/protocol/downstream.h"
#include "proxy/protocol/http1/http1.h"
#include "proxy/transport/plain_transport.h"
#include "proxy/transport/tls_transport.h"
#include "proxy/worker/access_log.h"
#include "proxy/worker/body_rate.h"
#include "proxy/worker/buffer_pool.h"
#include "proxy/worker/connection.h"
#include "proxy/worker/stream.h"
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
  kOpClientHangup = 13,
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
  Loop(int id, SharedState* shared, WorkerStats* stats, std::vector<UniqueFd> listeners,
       size_t tls_from);

  ~Loop();

  absl::Status Init();

  int ring_fd() const { return ring_.fd(); }

  void Run(std::atomic<bool>& go);

 private:
  // The downstream protocols use the loop's services (sending, closing, starting streams).
  friend class protocol::Http1;

  // ---------------------------------------------------------------- plumbing (loop.cc)

  static uint64_t TagOf(Op op, const Connection& c);
  static uint64_t TagOf(Op op, const Stream& s);

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

  void Handle(io_uring_cqe* cqe);

  // A completion of an operation on a stream's slot.
  void HandleSlotOp(const io::Tag& tag, int res);

  // ---------------------------------------------------------------- connections (loop.cc)

  // Re-arming happens in UpdateAccepting, after the batch.
  void OnAccept(uint32_t listener, int res, bool more);

  // An idle connection's timer: keepalive_timeout, or the drain grace while draining.
  TimerList& IdleTimer();

  // Upgrade handoff or SIGQUIT: stop accepting and let connections finish (or undo that).
  void SetDraining(bool on, bool stop_listening);

  Connection& NewConnection(UniqueFd fd);

  // Ends the connection: its streams are cancelled (the protocol's OnClose), the socket shut
  // down; it is freed once no operation on it or its streams' slots is in flight.
  void Close(Connection& c);

  void MaybeFree(Connection& c);

  // Ends the connection cleanly: the transport's closing bytes (TLS close_notify) go out first,
  // within send_timeout, then Close. Plain connections close at once.
  void CloseGracefully(Connection& c);

  // The connection's input buffer, taken when bytes arrive.
  void EnsureInput(Connection& c);

  // Idle connections hold no buffers.
  void ReleaseInput(Connection& c);

  // ---------------------------------------------------------------- client I/O (client_io.cc)

  void ArmClientRecv(Connection& c);

  void CancelClientRecv(Connection& c);

  // While l7px does not read a client (backpressure: its input waits for room), a poll notices
  // the client's reset so a queued request of a client that is gone leaves the queue at once.
  // The transport saw the client's end (TLS close_notify): the protocol hears it as an EOF.
  // Called where no protocol code is running (after a completion was handled), since the end
  // may be decoded deep inside it (DrainPending, which only records it).
  void DeliverPeerClose(Connection& c);
  void WatchClientHangup(Connection& c);
  void OnClientHangup(Connection& c, int res);
  void OnClientRecv(Connection& c, io_uring_cqe* cqe);

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

  // Received bytes not yet decoded into `in`: provided buffers waiting for room, or plaintext
  // the transport holds.
  static bool InputWaiting(const Connection& c) {
    return c.client.pend_head >= 0 || (c.transport != nullptr && c.transport->buffered());
  }

  // The client half-closed and every byte it sent is in `in`: nothing more will arrive.
  static bool InputEnded(const Connection& c) { return c.client.eof && !InputWaiting(c); }

  // l7px is not reading the client now: received bytes wait for room in `in` (backpressure from
  // the service or the queue), or the receive ran out of provided buffers.
  bool ReadingPaused(const Connection& c) const;

  // Sends `head` then `body` (either may be empty, not both) through the transport; the
  // protocol's OnSent hears how much plaintext went out. One send at a time per connection.
  void SendToClient(Connection& c, iovec head, iovec body);

  void OnClientSent(Connection& c, int res);

  // Sends iov[0] then iov[1] (either may be empty, not both): a plain send when only one has
  // bytes (cheaper in the kernel than sendmsg: no msghdr copy, no iovec import), else sendmsg
  // through `msg`, which must live until the completion.
  void PrepSend(int fd, iovec* iov, msghdr* msg, uint64_t tag);

  // Receives that ended for want of provided buffers (ENOBUFS) are re-armed oldest first, only
  // as many as there are free buffers: re-arming them all at once would mostly fail again and
  // spin through the same list every loop pass while the ring stays short.
  void RearmStarved();

  // ---------------------------------------------------------------- streams (streams.cc)

  // A stream joins the loop's table (its slot operations are tagged by its index). Once per
  // stream object: the protocols pool them.
  void RegisterStream(Stream& s);

  // The buffers a stream needs once its head is parsed: the rewritten head and the head for the
  // client. The response buffer, the largest, waits for a slot (StartExchange): a request that
  // waits in the queue or for its body does not hold one.
  void EnsureStreamBuffers(Stream& s);

  // The stream ended: its buffers go back to the pools and completions still tagged for it
  // are stale.
  void ReleaseStream(Stream& s);

  static Stream* FromWaiter(Waiter* w);
  static Stream* FromStreamTimer(TimerNode* node);
  static Stream* FromBodyTimer(TimerNode* node);
  static Connection* FromConnectionTimer(TimerNode* node);

  // A body_timeout window starts (see body_rate.h).
  void StartBodyWindow(Stream& s);

  void OnBodyWindow(Stream& s);

  // The service was silent past response_timeout.
  void OnResponseTimeout(Stream& s);

  // The stream's response_timeout starts (again): the service's silence is timed.
  void TimeService(Stream& s);

  // Writes the request's access-log line and counts its response, once per request (later
  // calls do nothing). `answered` false: the client went away before any response byte (status
  // 499 in the log, as NGINX writes it; no response is counted).
  void LogRequest(Stream& s, bool answered = true);

  void FlushAccessLog();

  void OnTick();

  // The timer list for a duration (header, keep-alive, send timeouts on connections).
  TimerList& TimerFor(int64_t duration_ns) { return timers_.For(duration_ns); }

  // ---------------------------------------------------------------- dispatch (dispatch.cc)

  // A request head is parsed (s.head, s.request.start_ns set): local answers (TRACE, OPTIONS
  // *), routing, the head rewritten for the service. False when the stream was answered here.
  bool RouteStream(Stream& s);

  // The stream asks for a slot: it starts, waits, or is shed.
  void Dispatch(Stream& s);

  // Idle slots the dispatcher found killed when it popped them: the acceptor frees them.
  void RetireDeadSlots();

  void PostRetire(slots::Slot* slot);

  void PostSlotAvailable(int worker, uint32_t pool_id);

  // The stream whose waiter the dispatcher took off its queue: the wait is over.
  Stream& Dequeued(Waiter* w);

  // A queued stream's client went away or is answered otherwise.
  void Dequeue(Stream& s);

  // A slot became idle somewhere and this worker had the oldest waiter for the pool (or the
  // pool is closing: the control plane then posts this to every worker).
  void OnSlotAvailable(uint32_t pool_id);

  // A slot this worker used is free again: its own oldest waiter first, else back to the stack
  // and wake the worker with the oldest waiter.
  void ReleaseSlot(slots::Pool& pool, slots::Slot* slot);

  // ---------------------------------------------------------------- exchange (exchange.cc)

  void StartExchange(Stream& s, slots::Slot* slot);

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
  void ProbeSlot(Stream& s);

  // TCP_QUICKACK on a TCP slot, in the next submission: the kernel acknowledges what the slot
  // received at once instead of up to 40 ms later. Before a probe (above), and whenever part of
  // a response is here and l7px reads on: a service that writes a response in pieces with Nagle
  // on (Python's http.server writes the head and the body apart) holds the last small piece
  // until that acknowledgement, and no request of l7px's follows for it to ride on.
  void AckSlotNow(Stream& s);

  void OnSlotProbed(Stream& s, int res);

  // The slot is clean: the rewritten head (and any body bytes here) go out, and the response is
  // awaited.
  void SendRequest(Stream& s);

  // More request body (or tunnel) bytes may be ready: sends them if the slot is free to take
  // them. The protocol calls this when client bytes arrived for a stream in kExchange/kTunnel.
  void PumpRequestBody(Stream& s);

  // Sends what is ready: the rest of the rewritten head, then body bytes from the protocol.
  void SendToSlot(Stream& s);

  void OnSlotSent(Stream& s, int res);

  // expect_wait: the service cannot have answered yet (the request is only now being sent), so
  // the kernel waits for readiness first instead of trying a receive that would find nothing.
  void ArmSlotRecv(Stream& s, bool expect_wait = false);

  void OnSlotRecv(Stream& s, int res);

  void ProcessResponse(Stream& s);

  // 1xx (not 101): forwarded if the protocol can, then the parser starts on the next response.
  void ForwardInterim(Stream& s);

  // After an interim response went out: parse what is buffered or read more from the slot.
  void ContinueResponse(Stream& s);

  // The client took what SendResponse was given (the protocol calls this).
  void ResponseSent(Stream& s);

  void MaybeFinishExchange(Stream& s);

  void FinishExchange(Stream& s);

  // The exchange is over for the slot: its outcome reported, the slot released (or killed when
  // it cannot be reused). Once per exchange; early when the response was read ahead.
  void ReleaseUpstream(Stream& s);

  // ---------------------------------------------------------------- read ahead (read_ahead.cc)

  // Whether the response whose head was just parsed is read ahead of the client.
  bool ReadAheadFits(const Stream& s) const;

  // The head is parsed and written for the client: from here the slot is read as fast as the
  // service sends (within limits) and the client sent what is here.
  void StartReadAhead(Stream& s);

  // Parses response bytes just received into chunk `chunk` at `off`. False when the response
  // is malformed (the stream was ended).
  bool ParseAhead(Stream& s, char* chunk, uint32_t off, uint32_t len);

  // Releases the slot once the response is whole, reads on while there is room, sends the
  // client what is ready, and ends the exchange when everything went out.
  void PumpReadAhead(Stream& s);

  void OnAheadRecv(Stream& s, int res);

  // The client took the last send.
  void AheadSent(Stream& s);

  // Returns the stream's read-ahead buffers.
  void DropReadAhead(Stream& s);

  // WorkerStats::response_buffer_bytes from ahead_chunks_.
  void PublishReadAheadBytes();

  // The client is gone or the stream is answered otherwise: off the queue, its slot killed.
  void CancelStream(Stream& s);
  // The stream's connection is closing (the protocol's OnClose): a request cut short gets its
  // access-log line (LogRequest; 499 when no answer went out), then CancelStream.
  void EndStreamOnClose(Stream& s);
  // A stream whose client left mid-exchange (kDraining): parses what the slot sent, reads on
  // until the response is complete, then releases the slot (or kills it on any failure). The
  // connection, closing, is freed once the slot's operations are over (MaybeFree).
  void DrainSlot(Stream& s);
  // An interim (1xx) response is complete: the next head is parsed from the buffer's front.
  void NextResponseHead(Stream& s);
  // Ends a drain that failed: the slot is killed (the service closed it, broke the protocol,
  // or went silent past response_timeout).
  void EndDrain(Stream& s);

  // ---------------------------------------------------------------- tunnel (after 101)

  void StartTunnel(Stream& s);

  // tunnel.cc: an upgrade request claims room for a tunnel in its pool when it is routed
  // (max_tunnels; false: answer 503 before it takes a slot); the claim is given back when the
  // request ends without a tunnel or the tunnel ends. Idempotent.
  bool ClaimTunnel(Stream& s);
  void ReleaseTunnelClaim(Stream& s);

  // tunnel.cc: the 101 went out: the stream is a tunnel (its slot left the pool's counts when
  // the 101 arrived), its idle timer started.
  void OpenTunnel(Stream& s);

  // tunnel.cc: bytes moved one way or the other: the idle timer starts over.
  void TimeTunnel(Stream& s);

  // tunnel.cc: no byte either way for tunnel_idle_timeout: the tunnel is closed.
  void OnTunnelIdle(Stream& s);

  // tunnel.cc: the tunnel is over (its connection closes): its access-log line and counts.
  void EndTunnel(Stream& s);

  // A client half-close is passed on to the service (SHUT_WR) once every byte the client sent
  // before it has been forwarded.
  void MaybeShutdownTunnelToSlot(Stream& s);

  // The tunnel ends when both directions are done.
  void MaybeEndTunnel(Stream& s);

  // ---------------------------------------------------------------- failures

  // The slot failed (closed, reset, send error) during the exchange.
  void OnSlotFailure(Stream& s, int res);

  void BadResponse(Stream& s, std::string_view why);

  // The slot will not be reused: dead now, retired to the acceptor once no op references it.
  void KillSlot(Stream& s);

  void RetireSlot(Stream& s);

  void SlotOpStarted(Stream& s) {
    ++s.upstream.ops;
    ++s.conn->slot_ops;
  }

  int id_;
  SharedState* shared_;
  WorkerStats* stats_;
  const config::Config& cfg_;
  io::Ring ring_;
  io::BufferRing buffers_;
  std::vector<int32_t> pend_next_;
  std::vector<uint32_t> pend_len_;
  std::vector<UniqueFd> listeners_;
  // By listener: the transport its connections get (plain, or TLS for tls.listen).
  std::vector<std::unique_ptr<transport::TransportFactory>> transports_;
  bool draining_ = false;
  std::vector<std::unique_ptr<Connection>> conns_;
  Connection* free_conns_ = nullptr;
  std::vector<Stream*> streams_;  // by Stream::index
  std::vector<Connection*> starved_;
  BufferPool in_pool_;
  BufferPool aux_pool_;  // request heads for services (ServiceRequestHeadCapacity)
  BufferPool out_pool_;  // response heads for clients, and l7px's own answers
  BufferPool resp_pool_;
  uint64_t ahead_chunks_ = 0;  // response buffers held by streams reading ahead
  TimerLists timers_;          // Connection::timer
  TimerLists stream_timers_;   // Stream::timer
  TimerLists body_timers_;     // Stream::body_timer
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
  std::unique_ptr<protocol::Http1> http1_;  // after the pools and timers it uses
};

}  // namespace l7px::proxy
