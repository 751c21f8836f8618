// Listen/peer addresses and CIDR prefixes from config and admin input (SocketAddress::Parse,
// Cidr::Parse): accepted text must print and parse back to the same value, and a prefix must
// contain its own network address.
//
// Input: the text to parse; the same text is tried as an address and as a CIDR.

#include <arpa/inet.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/address.h"
#include "fuzz_check.h"

namespace {

using l7px::Cidr;
using l7px::SocketAddress;

void CheckAddress(std::string_view text) {
  const absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(text);
  if (!addr.ok()) return;
  const std::string printed = addr->ToString();
  const absl::StatusOr<SocketAddress> again = SocketAddress::Parse(printed);
  if (!again.ok() || !(*again == *addr)) {
    std::fprintf(stderr, "address round trip differs: %s\n", printed.c_str());
    L7PX_FUZZ_CHECK(again.ok() && *again == *addr);
  }
  L7PX_FUZZ_CHECK(again->ToString() == printed);
  char ip[128];
  L7PX_FUZZ_CHECK(addr->FormatIp(ip, sizeof(ip)) < sizeof(ip));
  (void)addr->is_loopback();
  (void)addr->port();
  // Back through the kernel form, as accept() would return it.
  const SocketAddress copy = SocketAddress::FromSockaddr(addr->sockaddr_ptr(), addr->length());
  L7PX_FUZZ_CHECK(copy == *addr);
}

void CheckCidr(std::string_view text) {
  const absl::StatusOr<Cidr> cidr = Cidr::Parse(text);
  if (!cidr.ok()) return;
  L7PX_FUZZ_CHECK(cidr->family() == AF_INET || cidr->family() == AF_INET6);
  L7PX_FUZZ_CHECK(cidr->prefix_len() >= 0 &&
                  cidr->prefix_len() <= (cidr->family() == AF_INET ? 32 : 128));
  const std::string printed = cidr->ToString();
  const absl::StatusOr<Cidr> again = Cidr::Parse(printed);
  if (!again.ok() || again->ToString() != printed || again->prefix_len() != cidr->prefix_len()) {
    std::fprintf(stderr, "CIDR round trip differs: %s\n", printed.c_str());
    L7PX_FUZZ_CHECK(false);
  }
  // The network address itself (the printed prefix without "/len") is inside the prefix.
  const std::string net = printed.substr(0, printed.find('/'));
  const std::string with_port = cidr->family() == AF_INET ? net + ":80" : "[" + net + "]:80";
  const absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(with_port);
  if (addr.ok()) L7PX_FUZZ_CHECK(cidr->Contains(*addr));
  for (const char* probe : {"127.0.0.1:1", "[::1]:1", "[::ffff:10.1.2.3]:1", "unix:/x"}) {
    const absl::StatusOr<SocketAddress> p = SocketAddress::Parse(probe);
    if (p.ok()) (void)cidr->Contains(*p);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  CheckAddress(text);
  CheckCidr(text);
  return 0;
}
