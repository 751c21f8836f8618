#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace l7px {

// An address as written, split into its parts and checked, but not resolved. SocketAddress::Parse
// (IP literals only) and the service SDK (which looks host names up when it dials) share this one
// reading of the text. The views point into the text given to SplitAddress.
struct AddressParts {
  bool is_unix = false;    // "unix:/path"
  std::string_view path;   // is_unix: the path, non-empty and shorter than sockaddr_un::sun_path
  std::string_view host;   // otherwise: what precedes the last ':', without the brackets of
                           // "[v6]:port"; may be empty (":8080") and is not checked further
  bool bracketed = false;  // the host was written in brackets (an IPv6 literal)
  uint16_t port = 0;       // 0..65535, at most five digits
};

// InvalidArgument when the text holds a NUL byte, is "unix:" with an empty or too long path, has
// no ':', has a port that is not 0..65535, or opens a bracket it does not close.
absl::StatusOr<AddressParts> SplitAddress(std::string_view text);

// A listen or peer address: IPv4, IPv6 or a UNIX stream socket path.
// Text forms: "127.0.0.1:8080", "[::1]:8080", "*:8080" / ":8080" (any IPv4), "unix:/path".
class SocketAddress {
 public:
  static absl::StatusOr<SocketAddress> Parse(std::string_view text);
  // From a kernel-filled sockaddr (accept/getpeername).
  static SocketAddress FromSockaddr(const sockaddr* sa, socklen_t len);

  int family() const { return storage_.ss_family; }
  bool is_unix() const { return family() == AF_UNIX; }
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&storage_); }
  socklen_t length() const { return length_; }
  uint16_t port() const;
  // UNIX path ("" for inet).
  std::string_view unix_path() const;
  bool is_loopback() const;

  // "127.0.0.1:8080", "[::1]:8080", "unix:/path".
  std::string ToString() const;
  // Just the IP ("127.0.0.1", "::1"), or "unix" for UNIX sockets. Writes into buf, returns length.
  size_t FormatIp(char* buf, size_t cap) const;

  bool operator==(const SocketAddress& other) const;

 private:
  sockaddr_storage storage_{};
  socklen_t length_ = 0;
};

// An IPv4 or IPv6 prefix, e.g. "10.0.0.0/8", "::1/128", "192.168.1.7" (host route).
class Cidr {
 public:
  static absl::StatusOr<Cidr> Parse(std::string_view text);
  // IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) match IPv4 prefixes.
  bool Contains(const SocketAddress& addr) const;
  int prefix_len() const { return prefix_len_; }
  int family() const { return family_; }
  std::string ToString() const;

 private:
  int family_ = AF_INET;
  int prefix_len_ = 0;
  uint8_t bytes_[16] = {};
};

}  // namespace l7px
