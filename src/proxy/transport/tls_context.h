#pragma once

// The server side of TLS as [tls] configures it: one OpenSSL context per [[tls.certificate]],
// the first the default. A client's SNI name picks the context whose certificate carries that
// name (its subjectAltName DNS names, wildcards "*.example.com" matching one label; the subject
// CN only when there are none); no SNI, or a name no certificate carries, gets the default.
// TLS 1.2 and 1.3 only (min_version may raise it to 1.3); no renegotiation, no compression;
// ALPN "http/1.1" (a client that offers only protocols l7px does not speak gets none).
//
// Immutable once built, and shared (std::shared_ptr): every TLS connection holds the contexts it
// started with until it ends, so a reload that builds new ones never frees these under it.

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "config/config.h"
#include "proxy/transport/ticket_keys.h"

namespace l7px::proxy::transport {

class TlsContexts;

// What a TLS listener's new connections start with: published by the control plane (at start,
// on each reload that builds new contexts and on each ticket key rotation) and read by workers
// (proxy/shared/rcu.h rules).
struct TlsSnapshot {
  std::shared_ptr<const TlsContexts> contexts;
  // Null when session_tickets is off: no tickets are issued or accepted then.
  std::shared_ptr<const TicketKeys> ticket_keys;
};

class TlsContexts {
 public:
  // Reads every certificate chain and key and checks that they match. Errors name the
  // certificate's config entry, the file and OpenSSL's reason.
  static absl::StatusOr<std::shared_ptr<const TlsContexts>> Build(const config::Tls& tls);

  ~TlsContexts();
  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;

  // A new server connection object on the default context (nullptr when OpenSSL cannot make
  // one). SNI switches it to another context during the handshake.
  SSL* NewConnection() const;

  // The context for a client's SNI name (any case): the first certificate that carries it, else
  // the default.
  SSL_CTX* ForName(std::string_view name) const;

  // Where a connection's SSL finds the published snapshot, for its session tickets: the
  // connection sets SSL ex_data slot SnapshotIndex() to the `const std::atomic<const
  // TlsSnapshot*>*` it was opened from. OpenSSL calls for ticket keys only inside SSL calls a
  // worker makes within its loop pass, where reading the snapshot is safe.
  static int SnapshotIndex();

  // The server name this connection's client sent (SNI), as the handshake found it; nullptr
  // when it sent none. (SSL_get_servername gives a resumed TLS 1.2 session's original name.)
  static const char* ClientServerName(const SSL* ssl);

  // The DNS names (lower case) the certificate of entry `i` is chosen for.
  const std::vector<std::string>& names(size_t i) const { return entries_[i].names; }
  size_t size() const { return entries_.size(); }

  // Whether a certificate name (lower case, maybe "*.suffix") covers a host name (lower case).
  static bool NameMatches(std::string_view pattern, std::string_view host);

 private:
  TlsContexts() = default;

  struct Entry {
    SSL_CTX* ctx = nullptr;
    std::vector<std::string> names;
  };
  std::vector<Entry> entries_;
};

}  // namespace l7px::proxy::transport
