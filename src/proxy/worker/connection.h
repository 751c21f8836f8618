#pragma once

// A client connection, whatever its transport and downstream protocol: the socket, the bytes
// received and decoded but not yet parsed, and the client send in flight. Its requests are
// streams (stream.h), kept by the protocol (protocol/downstream.h).

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstdint>

#include "base/address.h"
#include "base/timer_list.h"
#include "base/unique_fd.h"
#include "proxy/transport/transport.h"
#include "proxy/worker/stream.h"

namespace l7px::proxy {

namespace protocol {
class Downstream;
struct DownstreamState;
}  // namespace protocol

enum class ConnState : uint8_t {
  kIdle,         // keep-alive, no request bytes yet
  kReadingHead,  // request head arriving
  kActive,       // a request is in progress: its stream's state says where
  kClosing,      // waiting for in-flight operations before the fd is closed
  kFree,         // on the worker's free list
};

// The client side of a connection: lives as long as the connection.
struct ClientSide {
  int ops = 0;  // completions still expected on the client fd (a multishot recv counts once)
  bool recv_armed = false;
  bool recv_cancel_sent = false;
  bool hangup_watched = false;  // a poll for the client's reset is armed (while not reading)
  bool needs_rearm = false;     // a receive ran out of provided buffers: re-armed when some free
  bool eof = false;             // the client half-closed (or closed)
  bool close_after = false;     // close once the current response is fully sent
  bool send_busy = false;
  bool first_request = true;  // no response sent yet: the head timer runs since the accept
  // The transport gave up, or the connection ends cleanly (CloseGracefully): close once the
  // transport's own bytes (an alert, close_notify) went out.
  bool transport_failed = false;
  bool handshaking = false;  // timed by handshake_timeout until the transport is ready
  bool peer_closed = false;  // the transport saw the client's end (TLS close_notify)
  uint16_t listener = 0;     // the listener it came in on (its transport factory)
  // l7px stopped reading (no room, no receive buffer) since the last body window started:
  // a body that came slowly then is not the client's fault (body_rate.h).
  bool read_paused = false;
  uint64_t bytes_received = 0;  // wire bytes, for the body pace
  // Provided buffers received but not yet decoded into `in` (backpressure); pend_off counts
  // the wire bytes of the first one already taken.
  int32_t pend_head = -1;
  int32_t pend_tail = -1;
  uint32_t pend_off = 0;
};

struct Connection {
  uint32_t index = 0;
  uint32_t generation = 0;
  ConnState state = ConnState::kIdle;
  UniqueFd fd;
  SocketAddress peer;
  char ip[INET6_ADDRSTRLEN] = {};
  uint8_t ip_len = 0;
  // Between the socket and the protocol (proxy/transport): every byte received goes through its
  // Decode, every byte sent through its Encode.
  transport::Transport* transport = nullptr;
  // What the bytes mean (proxy/protocol), and its state for this connection (taken when a
  // request begins, returned when the connection goes idle).
  protocol::Downstream* protocol = nullptr;
  protocol::DownstreamState* session = nullptr;

  ClientSide client;
  int slot_ops = 0;  // operations in flight on the slots of its streams (all of them)

  // Decoded input: [0, in_scan) parsed by the protocol, [in_scan, in_len) not yet. Taken from
  // the worker's pool when bytes arrive and returned when the connection goes idle, so idle
  // keep-alive connections hold no buffers.
  char* in = nullptr;
  uint32_t in_len = 0;
  uint32_t in_scan = 0;

  // The client send in flight: plaintext (a head, then body bytes), and what the transport
  // sends for it.
  msghdr client_msg{};
  iovec client_iov[2]{};
  iovec client_wire[transport::Transport::kMaxWireIov]{};

  TimerNode timer;  // header / keep-alive / send timeout
  Connection* next_free = nullptr;
};

}  // namespace l7px::proxy
