#pragma once

// A stream: one client request and its exchange with a slot. The exchange engine (the worker's
// dispatch.cc and exchange.cc) works on streams only; which connection a stream came in on and
// how its bytes are framed for the client is the downstream protocol's business
// (proxy/protocol/downstream.h). HTTP/1.1 carries one stream at a time per connection; HTTP/2
// will carry many, each leasing its own slot.
//
// Invariants:
//  - A stream is reset by assignment (Reset) when its request head is parsed; its slot side is
//    reset by assignment for every attempt on a slot (a retry is a new attempt), never while a
//    slot's operations still drain (a stream whose slot drains takes no next request).
//  - `upstream.slot` is set from the lease until the slot is released or retired; every
//    operation on the slot fd counts in `upstream.ops` and holds the stream (and its buffers).

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "base/timer_list.h"
#include "http/message.h"
#include "http/parser.h"
#include "proxy/dispatch/dispatcher.h"
#include "slots/pool.h"
#include "slots/slot.h"

namespace l7px::proxy {

struct Connection;

enum class StreamState : uint8_t {
  kNone,         // no request (HTTP/1.1: between requests)
  kReadingBody,  // head parsed and routed; a small body arriving before the request takes a slot
  kQueued,       // waiting for an idle slot
  kExchange,     // request and response moving between client and slot
  kAnswering,    // l7px's own answer going out (errors, 404, 503, ...)
  kTunnel,       // after 101: raw bytes both ways
  kDraining,     // the client is gone mid-exchange: the response is read away (DrainSlot), then
                 //   the slot goes back to its pool; until then it stays busy, as the service is
};

// One attempt at an exchange with a slot.
struct SlotSide {
  slots::Slot* slot = nullptr;
  int ops = 0;        // completions still expected on the slot fd
  bool dead = false;  // retire the slot once ops drains
  bool send_busy = false;
  bool recv_busy = false;
  bool probing = false;          // the lease-time look for stray bytes is in flight
  bool unusable = false;         // the service broke the protocol: do not reuse the slot
  bool retry_pending = false;    // re-dispatch once the failed slot's operations drained
  bool interim_pending = false;  // a 1xx (or 100 Continue) is being sent; go on after it
  // Slot bytes arrived while the transport's own bytes (a TLS KeyUpdate answer) were going out:
  // the protocol has them parsed once those are sent (ContinueResponse).
  bool parse_deferred = false;
  uint8_t interim_count = 0;  // 1xx responses forwarded in this exchange
  bool head_done = false;     // the final response head was parsed
  bool done = false;          // the response is complete
  bool decode_body = false;   // the client gets the body without chunked framing
  bool released = false;      // the exchange is over for the slot (ReleaseUpstream)
  bool tunnel = false;        // the slot became a tunnel: it left its pool's slot counts
};

// A response read ahead of the client (pool.response_buffer; worker/read_ahead.cc): the
// response's bytes sit in the worker's response buffers, chunk n holding bytes
// [n * size, (n + 1) * size) of it, from its first head byte. The slot is read as fast as the
// service writes, within the limit and the worker's budget, and goes back to the pool as soon
// as the response is complete; the client is sent the bytes at its own pace.
struct ReadAhead {
  bool on = false;
  bool sending = false;       // a client send of [sent, sent + inflight) is in flight
  std::vector<char*> chunks;  // chunk numbers first, first + 1, ...; the last one receives
  uint64_t first = 0;
  uint64_t rx = 0;        // response bytes received
  uint64_t end = 0;       // ... the client gets (the message, parsed; after it nothing)
  uint64_t sent = 0;      // ... sent to the client (from the end of the head)
  uint64_t inflight = 0;  // ... in the client send now
};

// The request itself.
struct RequestState {
  int64_t start_ns = 0;
  int64_t queue_wait_ns = 0;
  slots::Pool* pool = nullptr;
  slots::RequestLimits limits;  // the pool's limits when the request began (a copy)
  uint32_t attempts = 0;
  int status = 0;
  uint64_t bytes_out = 0;
  uint64_t bytes_in = 0;          // request body (or tunnel) bytes from the client sent to the slot
  bool response_started = false;  // some response byte went to the client
  bool done = false;              // request message fully received
  bool sent = false;              // ... and fully written to the slot
  bool abandoned = false;         // the service answered before the body was sent
  bool continue_sent = false;     // l7px answered Expect: 100-continue for this request
  bool tunnel_client_eof = false;  // the client half-closed the tunnel
  bool tunnel_slot_shut = false;   // ... and that was passed on to the slot (SHUT_WR)
  bool tunnel_slot_eof = false;    // the service half-closed; passed on to the client
  bool tunnel_claimed = false;     // an upgrade request holding room for a tunnel (max_tunnels)
  bool logged = false;             // its access-log line is written (LogRequest)
  uint64_t body_window_from = 0;   // the connection's bytes_received when this window started
  int64_t body_window_start_ns = 0;
  char id[32];  // X-Request-Id l7px generated
  // server.trusted_proxies held the client when the request began (ServiceRequestId).
  bool trusted_peer = false;
  char service[64];  // service id of the slot that answered (for the access log)
  uint8_t service_len = 0;
};

struct Stream {
  // Slot operations are tagged with these (the loop's stream table): a completion for a stream
  // that ended since carries an old generation and is dropped.
  uint32_t index = 0;
  uint32_t generation = 0;
  Connection* conn = nullptr;  // the client connection it belongs to
  StreamState state = StreamState::kNone;
  // The request head, owned by the downstream protocol (HTTP/1.1: its parser, over the
  // connection's input buffer); valid from the head until the stream ends.
  const http::MessageHead* head = nullptr;
  RequestState request;
  SlotSide upstream;

  Waiter waiter;         // place in a pool's wait queue (proxy/dispatch)
  TimerNode timer;       // response_timeout: the service's silence; a tunnel's idle timeout
  TimerNode body_timer;  // request body pace window (body_timeout, min_body_rate)

  // Toward the slot: the request head rewritten for the service, then body bytes the protocol
  // hands out (Downstream::RequestBody).
  char* aux = nullptr;
  uint32_t aux_len = 0;
  uint32_t aux_sent = 0;
  uint32_t body_in_flight = 0;  // body bytes of the current slot send
  msghdr slot_msg{};
  iovec slot_iov[2]{};

  // From the slot: its bytes, parsed by `resp`; `fwd_off/fwd_len` is the part of them (body or
  // tunnel bytes) the client gets next.
  http::Parser resp{http::Parser::Kind::kResponse, http::Parser::Limits{}};
  char* resp_buf = nullptr;
  uint32_t resp_len = 0;
  uint32_t resp_scan = 0;
  uint32_t fwd_off = 0;
  uint32_t fwd_len = 0;

  // For the client: a head the protocol wrote (a response head, an interim response, l7px's
  // own answer), sent before the fwd bytes.
  char* out = nullptr;
  uint32_t out_len = 0;
  uint32_t out_sent = 0;

  // While on, resp_buf is the chunk the client is being sent from, owned by `ahead`.
  ReadAhead ahead;

  // A new request: everything but the buffers (held by the stream until it ends) and the
  // connection it belongs to. `start_ns`: when its first byte arrived.
  void Reset(int64_t start_ns) {
    state = StreamState::kNone;
    request = RequestState{};
    request.start_ns = start_ns;
    upstream = SlotSide{};
    aux_len = aux_sent = body_in_flight = 0;
    resp_len = resp_scan = fwd_off = fwd_len = 0;
    out_len = out_sent = 0;
  }
};

}  // namespace l7px::proxy
