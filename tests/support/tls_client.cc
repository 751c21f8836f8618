#include "support/tls_client.h"

#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "support/clients.h"
#include "support/net.h"
#include "support/process.h"

namespace l7px::testing {

TlsClient::TlsClient(uint16_t port, const std::string& sni, SSL_SESSION* resume, int max_version)
    : fd_(ConnectTcp(port)) {
  // OpenSSL writes with write(2): a peer that closed must give an error, not kill the test.
  static const bool ignored = [] { return signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();
  (void)ignored;
  ctx_ = SSL_CTX_new(TLS_client_method());
  if (max_version != 0) SSL_CTX_set_max_proto_version(ctx_, max_version);
  ssl_ = SSL_new(ctx_);
  if (resume != nullptr) SSL_set_session(ssl_, resume);
  if (!fd_) return;
  // Never blocks a test for good: a stalled read or write fails after 10 s.
  const timeval limit{10, 0};
  setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  setsockopt(fd_.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  SSL_set_fd(ssl_, fd_.get());
  SSL_set_tlsext_host_name(ssl_, sni.c_str());
  ok_ = SSL_connect(ssl_) == 1;
}

TlsClient::~TlsClient() {
  SSL_free(ssl_);
  SSL_CTX_free(ctx_);
}

std::string TlsClient::PeerName() const {
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (cert == nullptr) return "";
  char buf[256] = {};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof(buf));
  X509_free(cert);
  return buf;
}

std::string TlsClient::Get(const std::string& path, const std::string& host) {
  const std::string req = GetRequest(path, host);
  if (!ok_ || SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) return "";
  std::string resp;
  char buf[4096];
  while (true) {
    const size_t head = resp.find("\r\n\r\n");
    if (head != std::string::npos) {
      const std::string len = HeaderOf(resp, "Content-Length");
      if (!len.empty() && resp.size() >= head + 4 + std::stoul(len)) return resp;
    }
    const int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n <= 0) return resp;
    resp.append(buf, static_cast<size_t>(n));
  }
}

long TlsClient::GetWithKeyUpdates(const std::string& path, int updates) {
  const std::string req = GetRequest(path, "a.test");
  if (!ok_ || SSL_write(ssl_, req.data(), static_cast<int>(req.size())) <= 0) return -1;
  std::string resp;
  size_t head = std::string::npos;
  size_t want = 0;
  char buf[16384];
  while (head == std::string::npos || resp.size() < head + 4 + want) {
    const int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n <= 0) break;
    resp.append(buf, static_cast<size_t>(n));
    if (head == std::string::npos && (head = resp.find("\r\n\r\n")) != std::string::npos) {
      want = std::stoul(HeaderOf(resp, "Content-Length"));
    }
    if (updates > 0 && SSL_key_update(ssl_, SSL_KEY_UPDATE_REQUESTED) == 1) {
      --updates;
      SSL_do_handshake(ssl_);  // sends the KeyUpdate now
    }
  }
  if (head == std::string::npos) return -1;
  return static_cast<long>(resp.size() - head - 4);
}

std::string TlsClient::WriteThenCloseNotify(const std::string& bytes) {
  if (!ok_ || SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) <= 0) return "";
  SSL_shutdown(ssl_);
  std::string all;
  char buf[16384];
  while (true) {
    const int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n <= 0) return all;
    all.append(buf, static_cast<size_t>(n));
  }
}

bool TlsClient::EndsWithCloseNotify() {
  char buf[4096];
  while (true) {
    const int n = SSL_read(ssl_, buf, sizeof(buf));
    if (n > 0) continue;
    return SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN;
  }
}

SSL_SESSION* FetchSession(uint16_t port, const std::string& sni, int max_version,
                          const std::string& path) {
  TlsClient c(port, sni, nullptr, max_version);
  const std::string resp = c.Get(path);
  if (!c.ok() || resp.size() < path.size() + 3 ||
      resp.compare(resp.size() - path.size() - 3, std::string::npos, "ok " + path) != 0) {
    return nullptr;
  }
  SSL_SESSION* session = c.Session();
  c.SendCloseNotify();  // a client ends cleanly, or OpenSSL drops its session
  return session;
}

bool MakeTestCertificate(const std::string& cert_path, const std::string& key_path,
                         const std::string& cn, const std::string& extra_sans, bool rsa) {
  std::vector<std::string> argv = {"openssl", "req", "-x509", "-newkey"};
  if (rsa) {
    argv.push_back("rsa:2048");
  } else {
    argv.insert(argv.end(), {"ec", "-pkeyopt", "ec_paramgen_curve:P-256"});
  }
  const std::string sans =
      "subjectAltName=DNS:" + cn + (extra_sans.empty() ? "" : "," + extra_sans);
  argv.insert(argv.end(), {"-nodes", "-keyout", key_path, "-out", cert_path, "-days", "2", "-subj",
                           "/CN=" + cn, "-addext", sans});
  return RunCommand(argv, std::chrono::seconds(30)).exit_code == 0;
}

}  // namespace l7px::testing
