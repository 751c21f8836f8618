#pragma once

// The transport seam: what lies between a client socket and the downstream protocol's codec.
//
// The worker owns the socket and every io_uring operation on it; a transport owns none. It sees
// the bytes the worker received before the protocol parser does (Decode) and the bytes the
// protocol writer produced before they go out (Encode, then Sent). Plain TCP is the identity
// (plain_transport.h); TLS (OpenSSL over memory BIOs) plugs in beside it, decrypting in Decode
// and encrypting in Encode, with no socket I/O of its own.
//
// The worker's contract towards a transport (worker/client_input.cc, worker/exchange.cc):
//  - Received bytes ("wire") are offered to Decode in the order they arrived. Wire bytes Decode
//    did not consume (no room for plaintext) are offered again, from the first unconsumed byte,
//    once the protocol has taken plaintext out of the input buffer.
//  - A transport may keep plaintext it decoded but had no room for (TLS: a record is decrypted
//    whole); while buffered() is true the worker calls Decode with no new wire bytes whenever
//    room appears.
//  - Encode is given the plaintext to send next, always starting at the first byte Sent has not
//    yet reported. It returns the wire bytes to send now. A transport that already encoded part
//    of that plaintext (its wire bytes not all sent yet) returns the rest of those wire bytes
//    and encodes nothing twice.
//  - After each send completes the worker reports the wire bytes that went out to Sent, which
//    answers how much plaintext is now fully on the wire: the worker advances its buffers (and
//    counts bytes_sent) by that, never by the wire count.
//  - has_output(): bytes the transport itself must send though the protocol has none (TLS
//    handshake flights, alerts, session tickets). The worker sends them through Encode with
//    empty plaintext before reading on. Plain never has any.
//  - A transport that fails (Decoded::failed: a bad record, a fatal alert) ends the connection;
//    the worker closes it without an answer.
//
// Threading: a transport belongs to one connection of one worker and is touched only by it.

#include <sys/uio.h>

#include <cstdint>
#include <string_view>

namespace l7px::proxy::transport {

struct Decoded {
  uint32_t consumed = 0;     // wire bytes taken
  uint32_t produced = 0;     // plaintext bytes written to `out`
  bool failed = false;       // the connection cannot go on (nothing to answer on it)
  bool peer_closed = false;  // the peer said it sends nothing more (TLS close_notify): as EOF
};

struct Encoded {
  int iov_count = 0;       // wire iovecs filled (0: nothing to send)
  uint32_t plaintext = 0;  // plaintext bytes these wire bytes carry (newly encoded or not)
};

// What a connection's transport negotiated, for the access log (views valid while the
// connection lives; all empty for plain TCP).
struct TransportInfo {
  std::string_view version;      // "TLSv1.3"
  std::string_view cipher;       // "TLS_AES_128_GCM_SHA256"
  std::string_view server_name;  // the client's SNI ("" without one)
  bool resumed = false;          // the handshake resumed a session
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Turns received wire bytes into plaintext at `out` (room for `room` bytes). `wire` may be
  // empty: then only plaintext buffered inside the transport is produced.
  virtual Decoded Decode(const char* wire, uint32_t wire_len, char* out, uint32_t room) = 0;

  // Plaintext decoded but not yet handed out (TLS: the rest of a record).
  virtual bool buffered() const = 0;

  // Wire iovecs (at most kMaxWireIov) for the plaintext in `plain[0..plain_count)`; they point
  // into `plain` (plain) or into the transport's own buffer (TLS) and stay valid until Sent.
  static constexpr int kMaxWireIov = 2;
  virtual Encoded Encode(const iovec* plain, int plain_count, iovec* wire) = 0;

  // `wire_bytes` of the last Encode went out; returns the plaintext bytes now fully sent.
  virtual uint32_t Sent(uint32_t wire_bytes) = 0;

  // The transport has bytes of its own to send (see the header comment).
  virtual bool has_output() const = 0;

  // The protocol ends the connection cleanly (a response with Connection: close went out, a
  // keep-alive connection timed out): the transport queues its own closing bytes (TLS:
  // close_notify, so a client can tell a complete close-delimited body from a cut one) and
  // says whether there are any. Not called when the connection is aborted.
  virtual bool Finish() { return false; }

  // The transport carries application bytes now (TLS: the handshake is done). Until then the
  // connection is timed by the factory's handshake_timeout_ns, after it by header_timeout.
  virtual bool ready() const { return true; }

  // The handshake did not complete within the factory's handshake_timeout_ns; the worker
  // closes the connection next (the transport counts and classifies its failures).
  virtual void HandshakeTimedOut() {}

  virtual TransportInfo info() const { return {}; }
};

// One per listener per worker: gives each accepted connection its transport.
class TransportFactory {
 public:
  virtual ~TransportFactory() = default;

  // The transport of a new connection, or nullptr when none can be made now (the worker then
  // closes the connection). Lives until Release.
  virtual Transport* Open() = 0;

  // The connection is closed: the transport is not used again.
  virtual void Release(Transport* transport) = 0;

  // The scheme clients use on this listener: X-Forwarded-Proto, logs ("http", "https").
  virtual std::string_view scheme() const = 0;

  // Time a new connection gets for its handshake (0: no handshake); its first request head
  // then gets header_timeout from the moment the transport is ready.
  virtual int64_t handshake_timeout_ns() const { return 0; }
};

}  // namespace l7px::proxy::transport
