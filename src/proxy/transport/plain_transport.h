#pragma once

// Plain TCP: the identity transport. Stateless, so one instance serves every connection of a
// listener (the factory hands out the same object).

#include "proxy/transport/transport.h"

namespace l7px::proxy::transport {

class PlainTransport final : public Transport {
 public:
  // Copies as much as fits; the rest is offered again later.
  Decoded Decode(const char* wire, uint32_t wire_len, char* out, uint32_t room) override;
  bool buffered() const override { return false; }
  // The plaintext iovecs are the wire iovecs (no copy); empty ones are dropped.
  Encoded Encode(const iovec* plain, int plain_count, iovec* wire) override;
  uint32_t Sent(uint32_t wire_bytes) override { return wire_bytes; }
  bool has_output() const override { return false; }
};

class PlainTransportFactory final : public TransportFactory {
 public:
  Transport* Open() override { return &transport_; }
  void Release(Transport*) override {}
  std::string_view scheme() const override { return "http"; }

 private:
  PlainTransport transport_;
};

}  // namespace l7px::proxy::transport
