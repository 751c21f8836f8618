#include "proxy/transport/tls_context.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace l7px::proxy::transport {

namespace {

void FreeServerName(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                    void* /*argp*/) {
  OPENSSL_free(ptr);
}
// SSL ex_data: the client's server name (OPENSSL_strndup'ed, freed with the SSL).
int ServerNameIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, FreeServerName);
  return index;
}

// Mozilla's "intermediate" TLS 1.2 suites (TLS 1.3 suites are OpenSSL's defaults, all AEAD).
constexpr char kIntermediateCiphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305";

// ALPN, in wire form: what l7px speaks to clients.
constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// OpenSSL's reasons for the last failure on this thread (its error queue), emptied.
std::string OpenSslErrors() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

// The names a leaf certificate is for: its subjectAltName DNS names, else its subject CN.
std::vector<std::string> CertificateNames(X509* leaf) {
  std::vector<std::string> names;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(leaf, NID_subject_alt_name, nullptr, nullptr));
  if (sans != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(sans, i);
      if (n->type != GEN_DNS) continue;
      const unsigned char* data = ASN1_STRING_get0_data(n->d.dNSName);
      const int len = ASN1_STRING_length(n->d.dNSName);
      if (data != nullptr && len > 0) {
        names.push_back(Lower({reinterpret_cast<const char*>(data), static_cast<size_t>(len)}));
      }
    }
    GENERAL_NAMES_free(sans);
  }
  if (names.empty()) {
    X509_NAME* subject = X509_get_subject_name(leaf);
    const int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at >= 0) {
      const ASN1_STRING* cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at));
      const unsigned char* data = ASN1_STRING_get0_data(cn);
      const int len = ASN1_STRING_length(cn);
      if (data != nullptr && len > 0) {
        names.push_back(Lower({reinterpret_cast<const char*>(data), static_cast<size_t>(len)}));
      }
    }
  }
  return names;
}

// The host name in a ClientHello's server_name extension (RFC 6066 section 3), or empty: a
// list (u16 length) of entries (u8 type, u16 length, bytes); type 0 is a host name.
std::string_view HostNameOf(const unsigned char* ext, size_t len) {
  if (len < 2 || ((size_t{ext[0]} << 8) | ext[1]) != len - 2) return {};
  size_t at = 2;
  while (at + 3 <= len) {
    const uint8_t type = ext[at];
    const size_t n = (size_t{ext[at + 1]} << 8) | ext[at + 2];
    at += 3;
    if (n > len - at) return {};
    if (type == TLSEXT_NAMETYPE_host_name) return {reinterpret_cast<const char*>(ext + at), n};
    at += n;
  }
  return {};
}

// The certificate is chosen as the ClientHello arrives, before OpenSSL looks at a session the
// client offers: a session then resumes only on the certificate (context) it was made with,
// whose session id context it carries. (The servername callback below runs after that lookup,
// too late for it; it stays for the name OpenSSL records.)
int OnClientHello(SSL* ssl, int* /*alert*/, void* arg) {
  const unsigned char* ext = nullptr;
  size_t len = 0;
  if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) != 1) {
    return SSL_CLIENT_HELLO_SUCCESS;  // no SNI: the default certificate
  }
  const std::string_view name = HostNameOf(ext, len);
  if (name.empty()) return SSL_CLIENT_HELLO_SUCCESS;
  // Kept for the access log (a HelloRetryRequest calls back again: the first name stays).
  if (SSL_get_ex_data(ssl, ServerNameIndex()) == nullptr) {
    SSL_set_ex_data(ssl, ServerNameIndex(), OPENSSL_strndup(name.data(), name.size()));
  }
  SSL_CTX* ctx = static_cast<const TlsContexts*>(arg)->ForName(name);
  if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_CLIENT_HELLO_SUCCESS;
}

int OnServerName(SSL* ssl, int* /*alert*/, void* arg) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  SSL_CTX* ctx = static_cast<const TlsContexts*>(arg)->ForName(name);
  if (ctx != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, ctx);
  return SSL_TLSEXT_ERR_OK;
}

int OnAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
           unsigned int in_len, void* /*arg*/) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, kAlpn, sizeof(kAlpn), in, in_len) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // nothing in common: go on without ALPN
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

// Seals (enc = 1) or opens (enc = 0) a session ticket with l7px's own keys (ticket_keys.h):
// AES-256-CBC and HMAC-SHA256, the scheme OpenSSL's own keys use. Returns 1 (sealed, or opened
// and good as it is), 2 (opened, and OpenSSL issues a fresh ticket), 0 (no ticket issued / an
// unknown key: a full handshake) or -1 (an error).
int OnTicket(SSL* ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
             EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int enc) {
  const auto* current = static_cast<const std::atomic<const TlsSnapshot*>*>(
      SSL_get_ex_data(ssl, TlsContexts::SnapshotIndex()));
  if (current == nullptr) return 0;
  const TlsSnapshot* snapshot = current->load(std::memory_order_acquire);
  if (snapshot == nullptr || snapshot->ticket_keys == nullptr) return 0;
  // Fetched once: the implicit fetch behind EVP_aes_256_cbc() would look it up per ticket.
  static EVP_CIPHER* const aes = EVP_CIPHER_fetch(nullptr, "AES-256-CBC", nullptr);
  if (aes == nullptr) return -1;
  const TicketKeys& keys = *snapshot->ticket_keys;
  const TicketKey* key = nullptr;
  if (enc == 1) {
    key = &keys.sealing();
    if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes)) != 1) return -1;
    std::memcpy(key_name, key->name, sizeof(key->name));
    if (EVP_EncryptInit_ex(cipher, aes, nullptr, key->aes, iv) != 1) return -1;
  } else {
    key = keys.Find(key_name);
    if (key == nullptr) return 0;
    if (EVP_DecryptInit_ex(cipher, aes, nullptr, key->aes, iv) != 1) return -1;
  }
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, const_cast<unsigned char*>(key->hmac),
                                        sizeof(key->hmac)),
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (EVP_MAC_CTX_set_params(mac, params) != 1) return -1;
  if (enc == 1) return 1;
  // Opened: 2 asks OpenSSL for a fresh ticket. TLS 1.3 gets one on every resumption (clients
  // use a ticket once, RFC 8446 C.4: without a new one their next connection is a full
  // handshake); TLS 1.2 clients keep theirs until its key is no longer the sealing one.
  return (key != &keys.sealing() || SSL_version(ssl) == TLS1_3_VERSION) ? 2 : 1;
}

// A session may resume only on the certificate it was made with (a ticket a client got for one
// name is not good for another certificate's names).
bool SetSessionContext(SSL_CTX* ctx) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(SSL_CTX_get0_certificate(ctx), EVP_sha256(), digest, &len) != 1) return false;
  return SSL_CTX_set_session_id_context(ctx, digest,
                                        std::min(len, unsigned{SSL_MAX_SID_CTX_LENGTH})) == 1;
}

}  // namespace

const char* TlsContexts::ClientServerName(const SSL* ssl) {
  return static_cast<const char*>(SSL_get_ex_data(ssl, ServerNameIndex()));
}

int TlsContexts::SnapshotIndex() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

absl::StatusOr<std::shared_ptr<const TlsContexts>> TlsContexts::Build(const config::Tls& tls) {
  std::shared_ptr<TlsContexts> out(new TlsContexts());
  for (size_t i = 0; i < tls.certificates.size(); ++i) {
    const config::TlsCertificate& c = tls.certificates[i];
    const std::string where = absl::StrCat("tls.certificate[", i, "] (line ", c.line, ")");
    ERR_clear_error();
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) return absl::InternalError(absl::StrCat(where, ": ", OpenSslErrors()));
    out->entries_.push_back({ctx, {}});  // freed with `out` from here on
    SSL_CTX_set_min_proto_version(ctx, tls.min_version == 0x0304 ? TLS1_3_VERSION : TLS1_2_VERSION);
    uint64_t options = SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
    if (!tls.session_tickets) options |= SSL_OP_NO_TICKET;
    SSL_CTX_set_options(ctx, options);
    // Resumption is by tickets only: no server-side session cache (it would be one locked
    // table per certificate shared by every worker, and lost in an upgrade).
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (tls.session_tickets) {
      SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, OnTicket);
      SSL_CTX_set_timeout(ctx, TicketKeys::kTicketLifetimeSeconds);
    } else {
      // SSL_OP_NO_TICKET alone makes TLS 1.3 send stateful tickets instead: send none.
      SSL_CTX_set_num_tickets(ctx, 0);
    }
    // Idle connections give their read and write buffers back to OpenSSL. No automatic chain:
    // the chain sent is the cert file's; OpenSSL would otherwise try to build one from this
    // context's (empty) trust store on every full handshake, finding nothing (X509_verify_cert).
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN);
    SSL_CTX_set_dh_auto(ctx, 1);
    const std::string& ciphers = tls.ciphers.empty() ? kIntermediateCiphers : tls.ciphers;
    if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("tls.ciphers: no usable cipher in \"", ciphers, "\": ", OpenSslErrors()));
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, c.cert.c_str()) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": cert ", c.cert, ": ", OpenSslErrors()));
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, c.key.c_str(), SSL_FILETYPE_PEM) != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": key ", c.key, ": ", OpenSslErrors()));
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": key ", c.key, " does not match cert ", c.cert, ": ", OpenSslErrors()));
    }
    out->entries_.back().names = CertificateNames(SSL_CTX_get0_certificate(ctx));
    if (!SetSessionContext(ctx)) {
      return absl::InternalError(absl::StrCat(where, ": session context: ", OpenSslErrors()));
    }
    SSL_CTX_set_tlsext_servername_callback(ctx, OnServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx, out.get());
    SSL_CTX_set_client_hello_cb(ctx, OnClientHello, out.get());
    SSL_CTX_set_alpn_select_cb(ctx, OnAlpn, nullptr);
  }
  if (out->entries_.empty()) return absl::InvalidArgumentError("tls: no certificate");
  return std::shared_ptr<const TlsContexts>(std::move(out));
}

TlsContexts::~TlsContexts() {
  for (Entry& e : entries_) SSL_CTX_free(e.ctx);  // live connections hold their own references
}

SSL* TlsContexts::NewConnection() const { return SSL_new(entries_.front().ctx); }

SSL_CTX* TlsContexts::ForName(std::string_view name) const {
  char buf[256];
  if (name.size() > sizeof(buf)) return entries_.front().ctx;
  for (size_t i = 0; i < name.size(); ++i) buf[i] = AsciiLower(name[i]);
  const std::string_view host(buf, name.size());
  for (const Entry& e : entries_) {
    for (const std::string& pattern : e.names) {
      if (NameMatches(pattern, host)) return e.ctx;
    }
  }
  return entries_.front().ctx;
}

bool TlsContexts::NameMatches(std::string_view pattern, std::string_view host) {
  if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
    // "*.example.com" covers "a.example.com", not "example.com" nor "a.b.example.com".
    const std::string_view suffix = pattern.substr(1);  // ".example.com"
    if (host.size() <= suffix.size() || host.substr(host.size() - suffix.size()) != suffix) {
      return false;
    }
    const std::string_view label = host.substr(0, host.size() - suffix.size());
    return label.find('.') == std::string_view::npos;
  }
  return pattern == host;
}

}  // namespace l7px::proxy::transport
