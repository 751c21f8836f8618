#include "proxy/transport/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace l7px::proxy::transport {

namespace {

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

}  // namespace

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
    // Idle connections give their read and write buffers back to OpenSSL. No automatic chain:
    // the chain sent is the cert file's; OpenSSL would otherwise try to build one from this
    // context's (empty) trust store on every full handshake, finding nothing, for about 1.5 %
    // of a handshake's CPU (X509_verify_cert).
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
    SSL_CTX_set_tlsext_servername_callback(ctx, OnServerName);
    SSL_CTX_set_tlsext_servername_arg(ctx, out.get());
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
