#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "proxy/transport/plain_transport.h"

namespace l7px::proxy::transport {
namespace {

TEST(PlainTransportTest, DecodeCopiesWhatFitsAndLeavesTheRestForLater) {
  PlainTransport t;
  const std::string wire = "GET / HTTP/1.1\r\n\r\n";
  char out[8];
  Decoded d = t.Decode(wire.data(), static_cast<uint32_t>(wire.size()), out, sizeof(out));
  EXPECT_FALSE(d.failed);
  EXPECT_EQ(d.consumed, 8u);
  EXPECT_EQ(d.produced, 8u);
  EXPECT_EQ(std::string_view(out, 8), "GET / HT");
  EXPECT_FALSE(t.buffered());  // nothing held inside: the rest is offered again by the caller

  d = t.Decode(wire.data() + 8, static_cast<uint32_t>(wire.size() - 8), out, 0);
  EXPECT_EQ(d.consumed, 0u);
  EXPECT_EQ(d.produced, 0u);

  d = t.Decode(nullptr, 0, out, sizeof(out));  // only buffered plaintext: there is none
  EXPECT_EQ(d.consumed, 0u);
  EXPECT_EQ(d.produced, 0u);
}

TEST(PlainTransportTest, EncodeSendsThePlaintextItselfSkippingEmptyParts) {
  PlainTransport t;
  char head[] = "HTTP/1.1 200 OK\r\n\r\n";
  char body[] = "hello";
  iovec plain[2] = {{head, sizeof(head) - 1}, {body, sizeof(body) - 1}};
  iovec wire[Transport::kMaxWireIov];
  Encoded e = t.Encode(plain, 2, wire);
  ASSERT_EQ(e.iov_count, 2);
  EXPECT_EQ(e.plaintext, sizeof(head) - 1 + sizeof(body) - 1);
  EXPECT_EQ(wire[0].iov_base, head);  // no copy
  EXPECT_EQ(wire[1].iov_base, body);

  plain[0].iov_len = 0;
  e = t.Encode(plain, 2, wire);
  ASSERT_EQ(e.iov_count, 1);
  EXPECT_EQ(wire[0].iov_base, body);
  EXPECT_EQ(e.plaintext, sizeof(body) - 1);

  plain[1].iov_len = 0;
  EXPECT_EQ(t.Encode(plain, 2, wire).iov_count, 0);
  EXPECT_FALSE(t.has_output());
}

TEST(PlainTransportTest, EveryWireByteSentIsAPlaintextByteSent) {
  PlainTransport t;
  EXPECT_EQ(t.Sent(0), 0u);
  EXPECT_EQ(t.Sent(7), 7u);
  EXPECT_EQ(t.Sent(65536), 65536u);
}

TEST(PlainTransportTest, FactoryServesOneStatelessTransportForHttp) {
  PlainTransportFactory f;
  Transport* a = f.Open();
  Transport* b = f.Open();
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a, b);
  EXPECT_EQ(f.scheme(), "http");
  f.Release(a);
  f.Release(b);
}

}  // namespace
}  // namespace l7px::proxy::transport
