#pragma once

// TLS on a client connection: OpenSSL through a BIO of l7px's own, so it never touches the
// socket; the worker's ring moves the bytes (transport.h). Decode offers received bytes to
// OpenSSL and reads plaintext out (handshake first); Encode encrypts plaintext straight into a
// wire buffer and hands that out until it has all been sent.
//
// Invariants:
//  - OpenSSL reads received bytes only during a Decode, and only as many as it needs for the
//    records it processes (a header, then that record's body); bytes it did not take stay in the
//    worker's queue (its backpressure), so l7px holds no ciphertext of its own beyond one record
//    in OpenSSL's buffer.
//  - The wire buffer holds the records of at most kMaxPlaintextPerSend plaintext bytes (plus
//    the handshake's and session tickets' own bytes); it is taken from the factory's pool when
//    there is something to send and given back once all of it went out, so idle connections
//    hold none.

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "proxy/transport/tls_context.h"
#include "proxy/transport/transport.h"

namespace l7px::proxy::transport {

class TlsTransportFactory;

// Why a handshake failed (l7px_tls_handshakes_total{result="failed",reason}).
enum class TlsFailure : uint8_t {
  kTimeout,    // not done within handshake_timeout
  kClosed,     // the client closed the connection mid-handshake
  kVersion,    // no protocol version in common (TLS 1.1 and older, or 1.2 under min 1.3)
  kCipher,     // no cipher suite, group or signature algorithm in common
  kAlert,      // the client aborted with an alert (it did not accept the certificate, ...)
  kPlainHttp,  // an HTTP request on the TLS port
  kProtocol,   // anything else: bytes that are not TLS, a malformed handshake
  kCount,
};
const char* TlsFailureName(TlsFailure reason);

// Handshake counters of one worker's TLS connections: written by that worker only (relaxed),
// read by the admin API.
struct TlsStats {
  std::atomic<uint64_t> handshakes_tls12{0};
  std::atomic<uint64_t> handshakes_tls13{0};
  std::atomic<uint64_t> resumed_tls12{0};  // of those, handshakes that resumed a session
  std::atomic<uint64_t> resumed_tls13{0};
  std::atomic<uint64_t> failures[static_cast<size_t>(TlsFailure::kCount)] = {};

  static void Bump(std::atomic<uint64_t>& counter) {
    counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void Failed(TlsFailure reason) { Bump(failures[static_cast<size_t>(reason)]); }
};

class TlsTransport final : public Transport {
 public:
  static constexpr uint32_t kMaxPlaintextPerSend = 64 * 1024;
  static constexpr uint32_t kWireBufferSize = 80 * 1024;

  TlsTransport(TlsTransportFactory* factory, TlsStats* stats);
  ~TlsTransport() override;

  Decoded Decode(const char* wire, uint32_t wire_len, char* out, uint32_t room) override;
  bool buffered() const override { return more_plaintext_; }
  Encoded Encode(const iovec* plain, int plain_count, iovec* wire) override;
  uint32_t Sent(uint32_t wire_bytes) override;
  bool has_output() const override;

  bool handshake_done() const { return handshake_done_; }
  bool ready() const override { return handshake_done_; }
  bool Finish() override;
  void HandshakeTimedOut() override;
  TransportInfo info() const override;

  // The BIO's callbacks (tls_transport.cc): OpenSSL reads the bytes Decode is offering and
  // writes into the wire buffer.
  int ReadForOpenSsl(BIO* bio, char* out, int len);
  int WriteForOpenSsl(BIO* bio, const char* in, int len);

 private:
  // Makes the SSL object on the contexts published now (with the first byte received).
  bool Begin();
  // The handshake, then plaintext into `out`, from the bytes on offer.
  void Pump(char* out, uint32_t room, Decoded* d);
  void ReleaseWireBuffer();
  // The handshake failed: counted once, by its reason.
  void HandshakeFailed(TlsFailure reason);

  TlsTransportFactory* factory_;
  std::shared_ptr<const TlsContexts> contexts_;  // alive while the connection may need SNI
  SSL* ssl_ = nullptr;                           // from the first byte received on
  TlsStats* stats_;
  const char* in_ = nullptr;  // received bytes on offer during a Decode
  uint32_t in_len_ = 0;
  uint32_t in_taken_ = 0;
  bool handshake_started_ = false;  // the first byte arrived
  bool handshake_done_ = false;
  bool handshake_failed_ = false;  // counted as a failed handshake
  bool failed_ = false;
  bool more_plaintext_ = false;  // Decode stopped for want of room, not of records
  char* wire_ = nullptr;         // from the factory's pool while there is something to send
  uint32_t wire_len_ = 0;
  uint32_t wire_sent_ = 0;
  uint32_t wire_plaintext_ = 0;  // plaintext the records in wire_ carry
};

// One per TLS listener per worker: the contexts of [tls], a pool of transports' wire buffers.
class TlsTransportFactory final : public TransportFactory {
 public:
  // `current`: the published contexts, read at each Open; the caller reads RCU-published state
  // then (a worker within its loop pass).
  TlsTransportFactory(const std::atomic<const TlsSnapshot*>* current, int64_t handshake_timeout_ns,
                      TlsStats* stats)
      : current_(current), handshake_timeout_ns_(handshake_timeout_ns), stats_(stats) {}
  ~TlsTransportFactory() override;

  Transport* Open() override;
  void Release(Transport* transport) override;
  // The contexts published now (a worker within its loop pass), and where they are published.
  std::shared_ptr<const TlsContexts> Contexts() const;
  const std::atomic<const TlsSnapshot*>* current() const { return current_; }
  std::string_view scheme() const override { return "https"; }
  int64_t handshake_timeout_ns() const override { return handshake_timeout_ns_; }

  char* GetWireBuffer();
  void PutWireBuffer(char* buffer);

 private:
  const std::atomic<const TlsSnapshot*>* current_;
  int64_t handshake_timeout_ns_;
  TlsStats* stats_;
  std::vector<char*> free_wire_;
};

}  // namespace l7px::proxy::transport
