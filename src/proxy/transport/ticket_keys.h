#pragma once

// The keys that seal TLS session tickets (TLS 1.2 tickets and TLS 1.3 resumption tickets).
//
// l7px makes and rotates them itself rather than leaving them to OpenSSL, for two reasons: every
// worker's connections must accept one another's tickets (OpenSSL's own keys are per SSL_CTX,
// and a reload builds new contexts), and an upgrade hands them to the successor so a client
// resumes after a binary upgrade as it did before it.
//
// A ring is immutable: the first key seals new tickets, the others (up to kKept - 1 older ones)
// still open tickets sealed earlier; a ticket opened with an older key is renewed. A new key
// comes every kRotateSeconds, so a ticket stays good for between (kKept - 1) and kKept of those
// periods, more than the session lifetime l7px announces (kTicketLifetimeSeconds).
//
// Serialize/Parse carry a ring between processes (the upgrade handoff): secret material, so it
// only travels over the upgrade socket, which is checked to belong to the same user.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace l7px::proxy::transport {

struct TicketKey {
  unsigned char name[16];  // sent in the clear in the ticket: which key sealed it
  unsigned char aes[32];   // AES-256-CBC
  unsigned char hmac[32];  // HMAC-SHA256
  int64_t created_unix = 0;
};

class TicketKeys {
 public:
  static constexpr int64_t kRotateSeconds = 3600;
  static constexpr size_t kKept = 3;
  static constexpr int64_t kTicketLifetimeSeconds = 7200;

  // A ring of one new random key.
  static absl::StatusOr<std::shared_ptr<const TicketKeys>> Fresh(int64_t now_unix);

  // Whether the sealing key is older than kRotateSeconds (or from the future: a clock that
  // jumped back rotates too, so no key lives on indefinitely).
  bool RotationDue(int64_t now_unix) const;
  // This ring with a new sealing key in front and the oldest dropped beyond kKept.
  absl::StatusOr<std::shared_ptr<const TicketKeys>> Rotated(int64_t now_unix) const;

  ~TicketKeys();  // wipes the keys
  TicketKeys(const TicketKeys&) = delete;
  TicketKeys& operator=(const TicketKeys&) = delete;

  const TicketKey& sealing() const { return keys_.front(); }
  // The key whose name a ticket carries, or nullptr.
  const TicketKey* Find(const unsigned char name[16]) const;
  size_t size() const { return keys_.size(); }

  // Wire form: u8 count, then per key name, aes, hmac and a big-endian i64 creation time.
  std::string Serialize() const;
  // Rejects a malformed ring; keys past their use (older than kKept rotations) are dropped, and
  // a ring left empty is an error (the caller makes a fresh one).
  static absl::StatusOr<std::shared_ptr<const TicketKeys>> Parse(std::string_view wire,
                                                                 int64_t now_unix);

 private:
  TicketKeys() = default;
  std::vector<TicketKey> keys_;  // newest first, never empty
};

}  // namespace l7px::proxy::transport
