// The TLS transport's glue (proxy/transport/tls_transport.h) under hostile bytes: what a client
// sends on a TLS listener, fed to Decode in pieces of input-chosen sizes with input-chosen room,
// interleaved with Encode and partial Sent reports, as the worker would. OpenSSL parses the
// records; this checks that the glue around it keeps its contract (never consumes or produces
// more than it may, never loses track of its wire buffer) and never crashes or leaks.
//
// Input: byte 0 = piece size seed, byte 1 = room seed; the rest is the client's byte stream.

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "config/config.h"
#include "fuzz_check.h"
#include "proxy/transport/tls_transport.h"

namespace {

using l7px::proxy::transport::Decoded;
using l7px::proxy::transport::Encoded;
using l7px::proxy::transport::TlsContexts;
using l7px::proxy::transport::TlsSnapshot;
using l7px::proxy::transport::TlsStats;
using l7px::proxy::transport::TlsTransportFactory;
using l7px::proxy::transport::Transport;

std::atomic<const TlsSnapshot*> g_snapshot{nullptr};
TlsStats g_stats;

// A throwaway P-256 key and self-signed certificate, written where TlsContexts can read them.
bool MakeCertificate(const std::string& dir, l7px::config::Tls* tls) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  if (key == nullptr || cert == nullptr) return false;
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("fuzz.test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  if (X509_sign(cert, key, EVP_sha256()) == 0) return false;
  const std::string cert_path = dir + "/cert.pem";
  const std::string key_path = dir + "/key.pem";
  FILE* f = std::fopen(cert_path.c_str(), "w");
  if (f == nullptr || PEM_write_X509(f, cert) != 1) return false;
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  if (f == nullptr || PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return false;
  }
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
  tls->certificates.push_back({cert_path, key_path, 1});
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char dir[] = "/tmp/l7px-tls-fuzz-XXXXXX";
  if (mkdtemp(dir) == nullptr) std::abort();
  l7px::config::Tls tls;
  if (!MakeCertificate(dir, &tls)) std::abort();
  auto contexts = TlsContexts::Build(tls);
  if (!contexts.ok()) std::abort();
  g_snapshot.store(new TlsSnapshot{*contexts});
  unlink((std::string(dir) + "/cert.pem").c_str());
  unlink((std::string(dir) + "/key.pem").c_str());
  rmdir(dir);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  uint32_t piece_seed = data[0];
  uint32_t room_seed = data[1];
  data += 2;
  size -= 2;
  TlsTransportFactory factory(&g_snapshot, 0, &g_stats);
  Transport* t = factory.Open();
  L7PX_FUZZ_CHECK(t != nullptr);
  static char out[8192];
  size_t pos = 0;
  int rounds = 0;
  while (pos < size && rounds++ < 4096) {
    piece_seed = piece_seed * 1103515245u + 12345u;
    room_seed = room_seed * 69069u + 1u;
    const uint32_t piece = 1 + (piece_seed >> 16) % 2048;
    const uint32_t len = static_cast<uint32_t>(std::min<size_t>(piece, size - pos));
    const uint32_t room = (room_seed >> 16) % sizeof(out);
    const Decoded d = t->Decode(reinterpret_cast<const char*>(data + pos), len, out, room);
    L7PX_FUZZ_CHECK(d.consumed <= len);
    L7PX_FUZZ_CHECK(d.produced <= room);
    if (d.failed) break;
    // Bytes it did not take are offered again (the worker's backpressure), so only what it
    // consumed moves on; a transport that takes nothing and has no room to drain is done.
    if (d.consumed == 0 && d.produced == 0 && !t->buffered()) break;
    pos += d.consumed;
    // What a handshake made the transport send, sent in two parts like a busy socket would.
    for (int i = 0; i < 4 && t->has_output(); ++i) {
      iovec none[2] = {};
      iovec wire[Transport::kMaxWireIov];
      const Encoded e = t->Encode(none, 2, wire);
      if (e.iov_count == 0) break;
      L7PX_FUZZ_CHECK(e.iov_count <= Transport::kMaxWireIov);
      L7PX_FUZZ_CHECK(e.plaintext == 0);
      const uint32_t half = static_cast<uint32_t>(wire[0].iov_len / 2);
      L7PX_FUZZ_CHECK(t->Sent(half) == 0 || half == 0);
      t->Sent(static_cast<uint32_t>(wire[0].iov_len) - half);
    }
  }
  factory.Release(t);
  return 0;
}
