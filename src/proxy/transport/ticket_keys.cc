#include "proxy/transport/ticket_keys.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace l7px::proxy::transport {

namespace {

constexpr size_t kKeyWireBytes = 16 + 32 + 32 + 8;

absl::StatusOr<TicketKey> NewKey(int64_t now_unix) {
  TicketKey k;
  if (RAND_bytes(k.name, sizeof(k.name)) != 1 || RAND_bytes(k.aes, sizeof(k.aes)) != 1 ||
      RAND_bytes(k.hmac, sizeof(k.hmac)) != 1) {
    return absl::InternalError("tls: the random generator gave no session ticket key");
  }
  k.created_unix = now_unix;
  return k;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const TicketKeys>> TicketKeys::Fresh(int64_t now_unix) {
  auto key = NewKey(now_unix);
  if (!key.ok()) return key.status();
  std::shared_ptr<TicketKeys> ring(new TicketKeys());
  ring->keys_.push_back(*key);
  return std::shared_ptr<const TicketKeys>(std::move(ring));
}

TicketKeys::~TicketKeys() {
  if (!keys_.empty()) OPENSSL_cleanse(keys_.data(), keys_.size() * sizeof(TicketKey));
}

bool TicketKeys::RotationDue(int64_t now_unix) const {
  // Compared, not subtracted: a key's time came from another process and may be anything.
  const int64_t created = sealing().created_unix;
  return created <= now_unix - kRotateSeconds || created > now_unix + 60;
}

absl::StatusOr<std::shared_ptr<const TicketKeys>> TicketKeys::Rotated(int64_t now_unix) const {
  auto key = NewKey(now_unix);
  if (!key.ok()) return key.status();
  std::shared_ptr<TicketKeys> ring(new TicketKeys());
  ring->keys_.push_back(*key);
  for (size_t i = 0; i < keys_.size() && ring->keys_.size() < kKept; ++i) {
    ring->keys_.push_back(keys_[i]);
  }
  return std::shared_ptr<const TicketKeys>(std::move(ring));
}

const TicketKey* TicketKeys::Find(const unsigned char name[16]) const {
  for (const TicketKey& k : keys_) {
    if (CRYPTO_memcmp(k.name, name, sizeof(k.name)) == 0) return &k;
  }
  return nullptr;
}

std::string TicketKeys::Serialize() const {
  std::string out;
  out.reserve(1 + keys_.size() * kKeyWireBytes);
  out.push_back(static_cast<char>(keys_.size()));
  for (const TicketKey& k : keys_) {
    out.append(reinterpret_cast<const char*>(k.name), sizeof(k.name));
    out.append(reinterpret_cast<const char*>(k.aes), sizeof(k.aes));
    out.append(reinterpret_cast<const char*>(k.hmac), sizeof(k.hmac));
    const uint64_t t = static_cast<uint64_t>(k.created_unix);
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(t >> shift));
  }
  return out;
}

absl::StatusOr<std::shared_ptr<const TicketKeys>> TicketKeys::Parse(std::string_view wire,
                                                                    int64_t now_unix) {
  if (wire.empty()) return absl::InvalidArgumentError("ticket keys: empty");
  const size_t count = static_cast<unsigned char>(wire[0]);
  if (count == 0 || count > kKept || wire.size() != 1 + count * kKeyWireBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("ticket keys: ", wire.size(), " bytes do not hold ", count, " keys"));
  }
  std::shared_ptr<TicketKeys> ring(new TicketKeys());
  const char* p = wire.data() + 1;
  for (size_t i = 0; i < count; ++i) {
    TicketKey k;
    std::memcpy(k.name, p, sizeof(k.name));
    std::memcpy(k.aes, p + 16, sizeof(k.aes));
    std::memcpy(k.hmac, p + 48, sizeof(k.hmac));
    uint64_t t = 0;
    for (int j = 0; j < 8; ++j) t = (t << 8) | static_cast<unsigned char>(p[80 + j]);
    k.created_unix = static_cast<int64_t>(t);
    p += kKeyWireBytes;
    // A key that sealed its last ticket more than kKept - 1 rotations ago opens nothing valid.
    if (k.created_unix < now_unix - static_cast<int64_t>(kKept) * kRotateSeconds) continue;
    ring->keys_.push_back(k);
  }
  if (ring->keys_.empty()) return absl::InvalidArgumentError("ticket keys: all expired");
  return std::shared_ptr<const TicketKeys>(std::move(ring));
}

}  // namespace l7px::proxy::transport
