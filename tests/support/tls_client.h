#pragma once

// A blocking TLS client over one TCP connection (OpenSSL directly) for integration tests:
// requests on a connection that stays open across whatever the test does to l7px meanwhile.
// It trusts any certificate (tests check which one was served by name).

#include <openssl/ssl.h>

#include <cstdint>
#include <string>

#include "base/unique_fd.h"

namespace l7px::testing {

class TlsClient {
 public:
  // `resume`: a session from an earlier connection to offer (its ticket); `max_version`: e.g.
  // TLS1_2_VERSION to speak TLS 1.2 (0: the highest OpenSSL speaks).
  TlsClient(uint16_t port, const std::string& sni, SSL_SESSION* resume = nullptr,
            int max_version = 0);
  ~TlsClient();
  TlsClient(const TlsClient&) = delete;
  TlsClient& operator=(const TlsClient&) = delete;

  // The handshake completed.
  bool ok() const { return ok_; }

  // The handshake resumed the offered session.
  bool resumed() const { return ok_ && SSL_session_reused(ssl_) == 1; }

  // This connection's session (with the ticket the server sent: call it after a response was
  // read, which is when TLS 1.3 tickets have arrived); the caller frees it (SSL_SESSION_free).
  SSL_SESSION* Session() const { return SSL_get1_session(ssl_); }

  // The subject CN of the certificate the server sent ("" when none).
  std::string PeerName() const;

  // One GET for `path` with Host `host`: the whole response (Content-Length framed), or what
  // arrived before the connection ended ("" when the request could not be sent).
  std::string Get(const std::string& path, const std::string& host = "a.test");

  // As Get, but after each read of the response asks the server to update its keys (a TLS 1.3
  // KeyUpdate, answered by one of the server's own), up to `updates` times. Returns the body's
  // length as received (or -1 when the response head never came).
  long GetWithKeyUpdates(const std::string& path, int updates);

  // Writes `bytes` (e.g. many pipelined requests) and close_notify right behind them, then
  // reads until the server ends the connection; returns everything read.
  std::string WriteThenCloseNotify(const std::string& bytes);

  // Sends close_notify (the TLS end of this side), leaving the TCP connection open.
  void SendCloseNotify() { SSL_shutdown(ssl_); }

  int fd() const { return fd_.get(); }

  // Reads until the server ends the connection: true when it ended it with close_notify (a
  // clean TLS end), false for a bare TCP close or an error.
  bool EndsWithCloseNotify();

 private:
  UniqueFd fd_;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
};

// One connection that GETs `path` (expecting "ok <path>"), then ends with close_notify: its
// session (with the server's ticket), or nullptr. The caller frees it (SSL_SESSION_free).
SSL_SESSION* FetchSession(uint16_t port, const std::string& sni, int max_version,
                          const std::string& path = "/s");

// Makes a self-signed certificate and key (PEM) for `cn` (also its subjectAltName, plus any
// `extra_sans` "DNS:..." entries) with the openssl command: ECDSA P-256, or RSA 2048 when `rsa`.
// True when both files were written.
bool MakeTestCertificate(const std::string& cert_path, const std::string& key_path,
                         const std::string& cn, const std::string& extra_sans = "",
                         bool rsa = false);

}  // namespace l7px::testing
