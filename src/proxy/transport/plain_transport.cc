#include "proxy/transport/plain_transport.h"

#include <cstring>

namespace l7px::proxy::transport {

Decoded PlainTransport::Decode(const char* wire, uint32_t wire_len, char* out, uint32_t room) {
  const uint32_t n = wire_len < room ? wire_len : room;
  if (n > 0) std::memcpy(out, wire, n);
  return Decoded{.consumed = n, .produced = n};
}

Encoded PlainTransport::Encode(const iovec* plain, int plain_count, iovec* wire) {
  Encoded e;
  for (int i = 0; i < plain_count && e.iov_count < kMaxWireIov; ++i) {
    if (plain[i].iov_len == 0) continue;
    wire[e.iov_count++] = plain[i];
    e.plaintext += static_cast<uint32_t>(plain[i].iov_len);
  }
  return e;
}

}  // namespace l7px::proxy::transport
