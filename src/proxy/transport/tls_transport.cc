#include "proxy/transport/tls_transport.h"

#include <openssl/err.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace l7px::proxy::transport {

TlsTransport::TlsTransport(TlsTransportFactory* factory,
                           std::shared_ptr<const TlsContexts> contexts, SSL* ssl, TlsStats* stats)
    : factory_(factory), contexts_(std::move(contexts)), ssl_(ssl), stats_(stats) {
  rbio_ = SSL_get_rbio(ssl_);
  wbio_ = SSL_get_wbio(ssl_);
}

TlsTransport::~TlsTransport() {
  ReleaseWireBuffer();
  SSL_free(ssl_);  // and its BIOs
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
      wire_ = factory_->GetWireBuffer();
      std::memcpy(wire_, kPlainHttp.data(), kPlainHttp.size());
      wire_len_ = static_cast<uint32_t>(kPlainHttp.size());
      wire_sent_ = wire_plaintext_ = 0;
      failed_ = true;
      TlsStats::Bump(stats_->failures);
      d.consumed = wire_len;
      d.failed = true;
      return d;
    }
  }
  if (wire_len > 0 && BIO_ctrl_pending(rbio_) < kMaxReadAhead) {
    const int n = BIO_write(rbio_, wire, static_cast<int>(wire_len));
    if (n > 0) d.consumed = static_cast<uint32_t>(n);
  }
  ERR_clear_error();
  if (!handshake_done_) {
    const int r = SSL_do_handshake(ssl_);
    if (r != 1) {
      const int e = SSL_get_error(ssl_, r);
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        failed_ = true;
        d.failed = true;
        TlsStats::Bump(stats_->failures);
      }
      more_plaintext_ = false;
      return d;
    }
    handshake_done_ = true;
    TlsStats::Bump(SSL_version(ssl_) == TLS1_3_VERSION ? stats_->handshakes_tls13
                                                       : stats_->handshakes_tls12);
    if (SSL_session_reused(ssl_)) TlsStats::Bump(stats_->resumptions);
  }
  while (d.produced < room) {
    const int r = SSL_read(ssl_, out + d.produced, static_cast<int>(room - d.produced));
    if (r > 0) {
      d.produced += static_cast<uint32_t>(r);
      continue;
    }
    const int e = SSL_get_error(ssl_, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_ZERO_RETURN) {
      break;  // no whole record left (or close_notify: the TCP end follows)
    }
    failed_ = true;  // a bad record or a fatal alert
    if (d.produced == 0) d.failed = true;
    break;
  }
  more_plaintext_ = d.produced == room && (SSL_pending(ssl_) > 0 || BIO_ctrl_pending(rbio_) > 0);
  return d;
}

bool TlsTransport::has_output() const {
  return (wire_ != nullptr && wire_sent_ < wire_len_) || BIO_ctrl_pending(wbio_) > 0;
}

void TlsTransport::CollectOutput() {
  while (wire_len_ < kWireBufferSize) {
    const int n = BIO_read(wbio_, wire_ + wire_len_, static_cast<int>(kWireBufferSize - wire_len_));
    if (n <= 0) break;
    wire_len_ += static_cast<uint32_t>(n);
  }
}

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
  CollectOutput();  // handshake flights, session tickets
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
    CollectOutput();
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
  wire_len_ = wire_sent_ = wire_plaintext_ = 0;
  if (BIO_ctrl_pending(wbio_) == 0) ReleaseWireBuffer();
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
  std::shared_ptr<const TlsContexts> contexts = snapshot->contexts;
  SSL* ssl = contexts->NewConnection();
  if (ssl == nullptr) return nullptr;
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  if (rbio == nullptr || wbio == nullptr) {
    BIO_free(rbio);
    BIO_free(wbio);
    SSL_free(ssl);
    return nullptr;
  }
  // An empty memory BIO reports "retry", not end of file: OpenSSL then asks for more bytes.
  BIO_set_mem_eof_return(rbio, -1);
  BIO_set_mem_eof_return(wbio, -1);
  SSL_set_bio(ssl, rbio, wbio);
  SSL_set_accept_state(ssl);
  return new TlsTransport(this, std::move(contexts), ssl, stats_);
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
