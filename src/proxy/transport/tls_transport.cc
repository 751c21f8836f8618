#include "proxy/transport/tls_transport.h"

#include <openssl/err.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace l7px::proxy::transport {

namespace {

// The BIO between OpenSSL and the transport: no buffer of its own. Reads take the received bytes
// Decode is offering right now (OpenSSL asks for a record header, then its body, so it never
// takes more than it can use); writes go straight into the transport's wire buffer. Memory
// BIOs would copy every record once more and grow and shrink a buffer for each.
int BioRead(BIO* bio, char* out, int len) {
  return static_cast<TlsTransport*>(BIO_get_data(bio))->ReadForOpenSsl(bio, out, len);
}
int BioWrite(BIO* bio, const char* in, int len) {
  return static_cast<TlsTransport*>(BIO_get_data(bio))->WriteForOpenSsl(bio, in, len);
}
long BioCtrl(BIO* /*bio*/, int cmd, long /*num*/, void* /*ptr*/) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // nothing is held here to flush
}
int BioCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

const BIO_METHOD* Method() {
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "l7px transport");
    BIO_meth_set_read(m, BioRead);
    BIO_meth_set_write(m, BioWrite);
    BIO_meth_set_ctrl(m, BioCtrl);
    BIO_meth_set_create(m, BioCreate);
    return m;
  }();
  return method;
}

// The reason OpenSSL gave for a failed handshake (its error queue), as l7px counts it.
TlsFailure Classify(int ssl_error) {
  const unsigned long e = ERR_peek_error();
  if (e == 0 || ERR_GET_LIB(e) != ERR_LIB_SSL) {
    return ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN
               ? TlsFailure::kClosed
               : TlsFailure::kProtocol;
  }
  switch (ERR_GET_REASON(e)) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
      return TlsFailure::kVersion;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SUITABLE_KEY_SHARE:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
      return TlsFailure::kCipher;
    case SSL_R_HTTP_REQUEST:
      return TlsFailure::kPlainHttp;
    default:
      // Alerts the peer sent are reported as reasons SSL_AD_REASON_OFFSET + the alert.
      return ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET ? TlsFailure::kAlert : TlsFailure::kProtocol;
  }
}

}  // namespace

const char* TlsFailureName(TlsFailure reason) {
  switch (reason) {
    case TlsFailure::kTimeout:
      return "timeout";
    case TlsFailure::kClosed:
      return "closed";
    case TlsFailure::kVersion:
      return "version";
    case TlsFailure::kCipher:
      return "cipher";
    case TlsFailure::kAlert:
      return "alert";
    case TlsFailure::kPlainHttp:
      return "plain_http";
    case TlsFailure::kProtocol:
    case TlsFailure::kCount:
      break;
  }
  return "protocol";
}

TlsTransport::TlsTransport(TlsTransportFactory* factory, TlsStats* stats)
    : factory_(factory), stats_(stats) {}

bool TlsTransport::Begin() {
  std::shared_ptr<const TlsContexts> contexts = factory_->Contexts();
  if (contexts == nullptr) return false;
  ssl_ = contexts->NewConnection();
  if (ssl_ == nullptr) return false;
  BIO* bio = BIO_new(Method());
  if (bio == nullptr) return false;  // the destructor frees ssl_
  BIO_set_data(bio, this);
  SSL_set_bio(ssl_, bio, bio);  // the same BIO both ways: the SSL takes the one reference
  // Session tickets are sealed with the keys published then (tls_context.h, SnapshotIndex).
  SSL_set_ex_data(ssl_, TlsContexts::SnapshotIndex(),
                  const_cast<std::atomic<const TlsSnapshot*>*>(factory_->current()));
  SSL_set_accept_state(ssl_);
  contexts_ = std::move(contexts);
  return true;
}

TlsTransport::~TlsTransport() {
  // A client that sent part of a handshake and went away. One that sent nothing at all (a TCP
  // health check, a port scan) made no handshake and is not counted.
  if (handshake_started_ && !handshake_done_) HandshakeFailed(TlsFailure::kClosed);
  ReleaseWireBuffer();
  SSL_free(ssl_);  // and its BIO
}

int TlsTransport::ReadForOpenSsl(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  if (in_len_ == 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  const uint32_t n = std::min(in_len_, static_cast<uint32_t>(len));
  std::memcpy(out, in_, n);
  in_ += n;
  in_len_ -= n;
  in_taken_ += n;
  return static_cast<int>(n);
}

int TlsTransport::WriteForOpenSsl(BIO* bio, const char* in, int len) {
  BIO_clear_retry_flags(bio);
  if (wire_ == nullptr) wire_ = factory_->GetWireBuffer();
  // Appending never moves bytes a send in flight points at. The buffer holds what one Encode
  // produces plus handshake and ticket records; a peer that makes OpenSSL write more than that
  // while a send is in flight (a KeyUpdate flood) is cut off.
  if (kWireBufferSize - wire_len_ < static_cast<uint32_t>(len)) {
    failed_ = true;
    return -1;
  }
  std::memcpy(wire_ + wire_len_, in, static_cast<size_t>(len));
  wire_len_ += static_cast<uint32_t>(len);
  return len;
}

Decoded TlsTransport::Decode(const char* wire, uint32_t wire_len, char* out, uint32_t room) {
  Decoded d;
  if (failed_) {
    d.failed = true;
    return d;
  }
  if (!handshake_started_ && wire_len > 0) {
    handshake_started_ = true;
    // A TLS connection opens with a handshake record (0x16). An upper-case letter is an HTTP
    // method: plain HTTP sent to a TLS port. It gets a plain 400 saying so, as NGINX does.
    if (wire[0] >= 'A' && wire[0] <= 'Z') {
      static constexpr std::string_view kPlainHttp =
          "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 49\r\n"
          "Connection: close\r\n\r\nThe plain HTTP request was sent to an HTTPS port\n";
      if (wire_ == nullptr) wire_ = factory_->GetWireBuffer();
      std::memcpy(wire_, kPlainHttp.data(), kPlainHttp.size());
      wire_len_ = static_cast<uint32_t>(kPlainHttp.size());
      wire_sent_ = wire_plaintext_ = 0;
      failed_ = true;
      HandshakeFailed(TlsFailure::kPlainHttp);
      d.consumed = wire_len;
      d.failed = true;
      return d;
    }
    // OpenSSL's state for the connection is made with the first byte, so a connection that
    // sends nothing (a health check, a flood of idle sockets) costs no SSL object.
    if (!Begin()) {
      failed_ = true;
      HandshakeFailed(TlsFailure::kProtocol);
      d.failed = true;
      return d;
    }
  }
  if (ssl_ == nullptr) return d;  // nothing arrived yet
  in_ = wire;
  in_len_ = wire_len;
  in_taken_ = 0;
  Pump(out, room, &d);
  d.consumed = in_taken_;
  in_ = nullptr;  // nothing OpenSSL may read outside a Decode
  in_len_ = 0;
  more_plaintext_ = d.produced == room && room > 0 && SSL_pending(ssl_) > 0;
  return d;
}

void TlsTransport::Pump(char* out, uint32_t room, Decoded* d) {
  ERR_clear_error();
  if (!handshake_done_) {
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      const int e = SSL_get_error(ssl_, r);
      if (failed_ || (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)) {
        HandshakeFailed(failed_ ? TlsFailure::kProtocol : Classify(e));
        failed_ = true;
        d->failed = true;
      }
      return;
    }
    handshake_done_ = true;
    const bool v13 = SSL_version(ssl_) == TLS1_3_VERSION;
    TlsStats::Bump(v13 ? stats_->handshakes_tls13 : stats_->handshakes_tls12);
    if (SSL_session_reused(ssl_))
      TlsStats::Bump(v13 ? stats_->resumed_tls13 : stats_->resumed_tls12);
  }
  while (d->produced < room) {
    const int r = SSL_read(ssl_, out + d->produced, static_cast<int>(room - d->produced));
    if (r > 0) {
      d->produced += static_cast<uint32_t>(r);
      continue;
    }
    const int e = SSL_get_error(ssl_, r);
    if (!failed_ && e == SSL_ERROR_ZERO_RETURN) {
      d->peer_closed = true;  // close_notify: the client sends nothing more
      break;
    }
    if (!failed_ && (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)) {
      break;  // no whole record left
    }
    failed_ = true;  // a bad record or a fatal alert
    if (d->produced == 0) d->failed = true;
    break;
  }
}

bool TlsTransport::Finish() {
  if (!handshake_done_ || failed_) return false;
  ERR_clear_error();
  SSL_shutdown(ssl_);  // writes close_notify through the BIO into the wire buffer
  return has_output();
}

void TlsTransport::HandshakeFailed(TlsFailure reason) {
  if (handshake_failed_ || handshake_done_) return;
  handshake_failed_ = true;
  stats_->Failed(reason);
}

void TlsTransport::HandshakeTimedOut() {
  // One that never sent a byte made no handshake (as for one that closes, ~TlsTransport).
  if (handshake_started_) HandshakeFailed(TlsFailure::kTimeout);
}

TransportInfo TlsTransport::info() const {
  TransportInfo info;
  if (!handshake_done_) return info;
  info.version = SSL_get_version(ssl_);
  if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl_))
    info.cipher = SSL_CIPHER_get_name(cipher);
  if (const char* name = TlsContexts::ClientServerName(ssl_)) info.server_name = name;
  info.resumed = SSL_session_reused(ssl_) == 1;
  return info;
}

bool TlsTransport::has_output() const { return wire_ != nullptr && wire_sent_ < wire_len_; }

Encoded TlsTransport::Encode(const iovec* plain, int plain_count, iovec* wire) {
  Encoded e;
  if (wire_ != nullptr && wire_sent_ < wire_len_) {
    // The records of earlier plaintext are still going out: the rest of them first.
    wire[0] = {wire_ + wire_sent_, wire_len_ - wire_sent_};
    e.iov_count = 1;
    e.plaintext = wire_plaintext_;
    return e;
  }
  if (wire_ == nullptr) wire_ = factory_->GetWireBuffer();
  wire_len_ = wire_sent_ = wire_plaintext_ = 0;
  if (handshake_done_ && !failed_) {
    uint32_t budget = kMaxPlaintextPerSend;
    ERR_clear_error();
    for (int i = 0; i < plain_count && budget > 0; ++i) {
      const char* p = static_cast<const char*>(plain[i].iov_base);
      uint32_t left = static_cast<uint32_t>(plain[i].iov_len);
      while (left > 0 && budget > 0) {
        const uint32_t chunk = std::min({left, budget, uint32_t{16384}});  // one record
        const int r = SSL_write(ssl_, p, static_cast<int>(chunk));
        if (r <= 0) {
          failed_ = true;
          break;
        }
        p += r;
        left -= static_cast<uint32_t>(r);
        budget -= static_cast<uint32_t>(r);
        wire_plaintext_ += static_cast<uint32_t>(r);
      }
      if (failed_) break;
    }
  }
  if (wire_len_ == 0) {
    ReleaseWireBuffer();
    return e;
  }
  wire[0] = {wire_, wire_len_};
  e.iov_count = 1;
  e.plaintext = wire_plaintext_;
  return e;
}

uint32_t TlsTransport::Sent(uint32_t wire_bytes) {
  wire_sent_ += wire_bytes;
  if (wire_ == nullptr || wire_sent_ < wire_len_) return 0;  // a record is still partly unsent
  const uint32_t plaintext = wire_plaintext_;
  ReleaseWireBuffer();
  return plaintext;
}

void TlsTransport::ReleaseWireBuffer() {
  if (wire_ == nullptr) return;
  factory_->PutWireBuffer(wire_);
  wire_ = nullptr;
  wire_len_ = wire_sent_ = wire_plaintext_ = 0;
}

TlsTransportFactory::~TlsTransportFactory() {
  for (char* b : free_wire_) std::free(b);
}

Transport* TlsTransportFactory::Open() {
  const TlsSnapshot* snapshot = current_->load(std::memory_order_acquire);
  if (snapshot == nullptr || snapshot->contexts == nullptr) return nullptr;
  return new TlsTransport(this, stats_);
}

std::shared_ptr<const TlsContexts> TlsTransportFactory::Contexts() const {
  const TlsSnapshot* snapshot = current_->load(std::memory_order_acquire);
  return snapshot == nullptr ? nullptr : snapshot->contexts;
}

void TlsTransportFactory::Release(Transport* transport) { delete transport; }

char* TlsTransportFactory::GetWireBuffer() {
  if (!free_wire_.empty()) {
    char* b = free_wire_.back();
    free_wire_.pop_back();
    return b;
  }
  return static_cast<char*>(std::malloc(TlsTransport::kWireBufferSize));
}

void TlsTransportFactory::PutWireBuffer(char* buffer) { free_wire_.push_back(buffer); }

}  // namespace l7px::proxy::transport
