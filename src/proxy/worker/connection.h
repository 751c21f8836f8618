#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>

#include "base/address.h"
#include "base/timer_list.h"
#include "base/unique_fd.h"
#include "http/parser.h"
#include "proxy/dispatch/dispatcher.h"
#include "proxy/transport/transport.h"
#include "slots/pool.h"
#include "slots/slot.h"

namespace l7px::proxy {

// Buffers and parsers a client connection needs only while a request is in progress. Taken
// from the worker's free list when the first byte of a request arrives and returned when the
// connection goes idle, so idle keep-alive connections hold no buffers.
struct Exchange {
  explicit Exchange(const http::Parser::Limits& request_limits)
      : req(http::Parser::Kind::kRequest, request_limits),
        resp(http::Parser::Kind::kResponse, http::Parser::Limits{}) {
    // Services get chunked request bodies in canonical framing, whatever the client sent.
    req.set_reframe_chunked(true);
  }

  http::Parser req;
  http::Parser resp;

  // Client input: [0, head_len) request head, [head_len, in_scan) parsed body bytes not yet
  // sent to the service (a chunked body re-framed), [in_scan, in_len) unparsed bytes (more body,
  // an incomplete chunk-size line, or pipelined requests).
  char* in = nullptr;
  uint32_t in_len = 0;
  uint32_t in_scan = 0;
  uint32_t head_len = 0;

  // Request head rewritten for the service.
  char* aux = nullptr;
  uint32_t aux_len = 0;
  uint32_t aux_sent = 0;
  uint32_t body_in_flight = 0;  // body bytes of the current slot send

  // Service input and the response head rewritten for the client.
  char* resp_buf = nullptr;
  uint32_t resp_len = 0;
  uint32_t resp_scan = 0;
  char* out = nullptr;
  uint32_t out_len = 0;
  uint32_t out_sent = 0;
  uint32_t fwd_off = 0;  // response body bytes (in resp_buf) of the current client send
  uint32_t fwd_len = 0;

  msghdr slot_msg{};
  iovec slot_iov[2]{};
  msghdr client_msg{};
  iovec client_iov[2]{};  // plaintext: response head, response body
  iovec client_wire[transport::Transport::kMaxWireIov]{};  // what the transport sends for it
};

enum class ConnState : uint8_t {
  kIdle,         // keep-alive, no request bytes yet
  kReadingHead,  // request head arriving
  kReadingBody,  // head parsed and routed; a small body arriving before the request takes a slot
  kQueued,       // head parsed, waiting for an idle slot
  kExchange,     // request and response moving between client and slot
  kResponding,   // sending a response l7px made itself (errors)
  kTunnel,       // after 101: raw bytes both ways
  kClosing,      // waiting for in-flight operations before the fd is closed
  kFree,         // on the worker's free list
};

// The client side of a connection: lives as long as the connection.
struct ClientSide {
  int ops = 0;  // completions still expected on the client fd (a multishot recv counts once)
  bool recv_armed = false;
  bool recv_cancel_sent = false;
  bool needs_rearm = false;  // a receive ran out of provided buffers: re-armed when some free
  bool eof = false;          // the client half-closed (or closed)
  bool close_after = false;  // close once the current response is fully sent
  bool send_busy = false;
  bool first_request = true;  // no response sent yet: the head timer runs since the accept
  uint16_t listener = 0;      // the listener it came in on (its transport factory)
  // Provided buffers received but not yet decoded into `in` (backpressure); pend_off counts
  // the wire bytes of the first one already taken.
  int32_t pend_head = -1;
  int32_t pend_tail = -1;
  uint32_t pend_off = 0;
};

// One attempt at an exchange with a slot. Reset by assignment when a request's head is parsed
// and when a slot is leased for it (a retry is a new attempt); never while a slot still drains
// (a connection whose slot drains takes no next request).
struct SlotSide {
  slots::Slot* slot = nullptr;
  int ops = 0;        // completions still expected on the slot fd
  bool dead = false;  // retire the slot once ops drains
  bool send_busy = false;
  bool recv_busy = false;
  bool probing = false;          // the lease-time look for stray bytes is in flight
  bool unusable = false;         // the service broke the protocol: do not reuse the slot
  bool retry_pending = false;    // re-dispatch once the failed slot's operations drained
  bool interim_pending = false;  // a 1xx head is being sent; parse on after it is sent
  uint8_t interim_count = 0;     // 1xx responses forwarded in this exchange
  bool head_done = false;        // the final response head was parsed
  bool done = false;             // the response is complete
  bool decode_body = false;      // de-chunk for an HTTP/1.0 client
};

// The current request. Reset by assignment when its head is parsed (OnRequestHead).
struct RequestState {
  int64_t start_ns = 0;
  int64_t queue_wait_ns = 0;
  slots::Pool* pool = nullptr;
  slots::RequestLimits limits;  // the pool's limits when the request began (a copy)
  uint32_t attempts = 0;
  int status = 0;
  uint64_t bytes_out = 0;
  bool response_started = false;    // some response byte went to the client
  bool done = false;                // request message fully parsed
  bool sent = false;                // ... and fully written to the slot
  bool abandoned = false;           // the service answered before the body was sent
  bool continue_sent = false;       // l7px answered Expect: 100-continue for this request
  bool tunnel_client_eof = false;   // the client half-closed the tunnel
  bool tunnel_slot_shut = false;    // ... and that was passed on to the slot (SHUT_WR)
  bool tunnel_slot_eof = false;     // the service half-closed; passed on to the client
  bool body_window_paused = false;  // l7px stopped reading during this body window
  uint64_t body_window_bytes = 0;   // bytes received from the client in this body window
  int64_t body_window_start_ns = 0;
  char id[32];  // X-Request-Id l7px generated
  // server.trusted_proxies held the client when the request began (ServiceRequestId).
  bool trusted_peer = false;
  char service[64];  // service id of the slot that answered (for the access log)
  uint8_t service_len = 0;
};

struct Connection {
  uint32_t index = 0;
  uint32_t generation = 0;
  ConnState state = ConnState::kIdle;
  UniqueFd fd;
  SocketAddress peer;
  char ip[INET6_ADDRSTRLEN] = {};
  uint8_t ip_len = 0;
  // Between the socket and the HTTP codec (proxy/transport): every byte received goes through
  // its Decode, every byte sent through its Encode.
  transport::Transport* transport = nullptr;

  ClientSide client;
  SlotSide upstream;
  RequestState request;

  Exchange* x = nullptr;
  TimerNode timer;       // header / keep-alive / response / send timeout
  Waiter waiter;         // place in a pool's wait queue (proxy/dispatch)
  TimerNode body_timer;  // request body pace window (body_timeout, min_body_rate)
  Connection* next_free = nullptr;
};

}  // namespace l7px::proxy
