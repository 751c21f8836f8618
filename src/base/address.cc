#include "base/address.h"

#include <arpa/inet.h>

#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/strings.h"

namespace l7px {
namespace {

bool ParsePort(std::string_view text, uint16_t* port) {
  uint32_t value = 0;
  if (text.empty() || text.size() > 5) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  if (!absl::SimpleAtoi(ToAbsl(text), &value) || value > 65535) return false;
  *port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

absl::StatusOr<AddressParts> SplitAddress(std::string_view text) {
  AddressParts parts;
  // inet_pton and sun_path stop at NUL: "127.0.0.1\0junk:80" must not parse as 127.0.0.1.
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("address contains a NUL byte");
  }
  if (text.substr(0, 5) == "unix:") {
    parts.is_unix = true;
    parts.path = text.substr(5);
    if (parts.path.empty() || parts.path.size() >= sizeof(sockaddr_un::sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("unix socket path must be 1..",
                                                     sizeof(sockaddr_un::sun_path) - 1, " bytes"));
    }
    return parts;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", ToAbsl(text), "\" needs host:port, [v6]:port or unix:/path"));
  }
  parts.host = text.substr(0, colon);
  if (!ParsePort(text.substr(colon + 1), &parts.port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("address \"", ToAbsl(text), "\" has an invalid port"));
  }
  if (!parts.host.empty() && parts.host.front() == '[') {
    if (parts.host.size() < 3 || parts.host.back() != ']') {
      return absl::InvalidArgumentError(absl::StrCat("bad IPv6 address \"", ToAbsl(text), "\""));
    }
    parts.host = parts.host.substr(1, parts.host.size() - 2);
    parts.bracketed = true;
  }
  return parts;
}

absl::StatusOr<SocketAddress> SocketAddress::Parse(std::string_view text) {
  absl::StatusOr<AddressParts> parts = SplitAddress(text);
  if (!parts.ok()) return parts.status();
  SocketAddress out;
  if (parts->is_unix) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    std::memcpy(un.sun_path, parts->path.data(), parts->path.size());
    std::memcpy(&out.storage_, &un, sizeof(un));
    out.length_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + parts->path.size() + 1);
    return out;
  }
  const std::string_view host = parts->host;
  const uint16_t port = parts->port;
  if (parts->bracketed) {
    std::string ip(host);
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    if (inet_pton(AF_INET6, ip.c_str(), &in6.sin6_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("bad IPv6 address \"", ToAbsl(text), "\""));
    }
    std::memcpy(&out.storage_, &in6, sizeof(in6));
    out.length_ = sizeof(in6);
    return out;
  }
  sockaddr_in in4{};
  in4.sin_family = AF_INET;
  in4.sin_port = htons(port);
  if (host.empty() || host == "*" || host == "0.0.0.0") {
    in4.sin_addr.s_addr = htonl(INADDR_ANY);
  } else if (host == "localhost") {
    in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  } else {
    std::string ip(host);
    if (inet_pton(AF_INET, ip.c_str(), &in4.sin_addr) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad IPv4 address \"", ToAbsl(text), "\" (host names are not resolved; use an IP)"));
    }
  }
  std::memcpy(&out.storage_, &in4, sizeof(in4));
  out.length_ = sizeof(in4);
  return out;
}

SocketAddress SocketAddress::FromSockaddr(const sockaddr* sa, socklen_t len) {
  SocketAddress out;
  if (len > sizeof(out.storage_)) len = sizeof(out.storage_);
  std::memcpy(&out.storage_, sa, len);
  out.length_ = len;
  return out;
}

uint16_t SocketAddress::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (family() == AF_INET6) {
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  }
  return 0;
}

std::string_view SocketAddress::unix_path() const {
  if (!is_unix()) return {};
  const auto* un = reinterpret_cast<const sockaddr_un*>(&storage_);
  return std::string_view(un->sun_path, strnlen(un->sun_path, sizeof(un->sun_path)));
}

bool SocketAddress::is_loopback() const {
  if (family() == AF_UNIX) return true;
  if (family() == AF_INET) {
    const uint32_t ip = ntohl(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr.s_addr);
    return (ip >> 24) == 127;
  }
  if (family() == AF_INET6) {
    const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&a)) return a.s6_addr[12] == 127;
  }
  return false;
}

size_t SocketAddress::FormatIp(char* buf, size_t cap) const {
  if (cap == 0) return 0;
  const char* ok = nullptr;
  if (family() == AF_INET) {
    ok = inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf,
                   static_cast<socklen_t>(cap));
  } else if (family() == AF_INET6) {
    ok = inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
                   static_cast<socklen_t>(cap));
  } else if (family() == AF_UNIX && cap > 4) {
    std::memcpy(buf, "unix", 5);
    return 4;
  }
  if (ok == nullptr) {
    buf[0] = '\0';
    return 0;
  }
  return strlen(buf);
}

std::string SocketAddress::ToString() const {
  if (is_unix()) return absl::StrCat("unix:", ToAbsl(unix_path()));
  char ip[INET6_ADDRSTRLEN] = {};
  FormatIp(ip, sizeof(ip));
  if (family() == AF_INET6) return absl::StrCat("[", ip, "]:", port());
  return absl::StrCat(ip, ":", port());
}

bool SocketAddress::operator==(const SocketAddress& other) const {
  return length_ == other.length_ && std::memcmp(&storage_, &other.storage_, length_) == 0;
}

absl::StatusOr<Cidr> Cidr::Parse(std::string_view text) {
  Cidr out;
  if (text.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("CIDR contains a NUL byte");
  }
  std::string_view ip_text = text;
  int prefix = -1;
  const size_t slash = text.find('/');
  if (slash != std::string_view::npos) {
    ip_text = text.substr(0, slash);
    std::string_view len_text = text.substr(slash + 1);
    if (len_text.empty() || len_text.size() > 3 || !absl::SimpleAtoi(ToAbsl(len_text), &prefix) ||
        len_text.find_first_not_of("0123456789") != std::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("bad CIDR \"", ToAbsl(text), "\""));
    }
  }
  std::string ip(ip_text);
  if (inet_pton(AF_INET, ip.c_str(), out.bytes_) == 1) {
    out.family_ = AF_INET;
    if (prefix < 0) prefix = 32;
    if (prefix > 32) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad CIDR \"", ToAbsl(text), "\": /", prefix, " is longer than 32"));
    }
  } else if (inet_pton(AF_INET6, ip.c_str(), out.bytes_) == 1) {
    out.family_ = AF_INET6;
    if (prefix < 0) prefix = 128;
    if (prefix > 128) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad CIDR \"", ToAbsl(text), "\": /", prefix, " is longer than 128"));
    }
  } else {
    return absl::InvalidArgumentError(absl::StrCat("bad CIDR \"", ToAbsl(text), "\""));
  }
  out.prefix_len_ = prefix;
  // Clear host bits so Contains() can compare whole bytes.
  const int total = out.family_ == AF_INET ? 4 : 16;
  for (int i = 0; i < total; ++i) {
    const int bits_left = prefix - i * 8;
    if (bits_left >= 8) continue;
    if (bits_left <= 0) {
      out.bytes_[i] = 0;
    } else {
      out.bytes_[i] &= static_cast<uint8_t>(0xFF << (8 - bits_left));
    }
  }
  return out;
}

bool Cidr::Contains(const SocketAddress& addr) const {
  const uint8_t* ip = nullptr;
  uint8_t mapped[4];
  if (addr.family() == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(addr.sockaddr_ptr());
    if (family_ != AF_INET) return false;
    std::memcpy(mapped, &in4->sin_addr, 4);
    ip = mapped;
  } else if (addr.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr.sockaddr_ptr());
    if (family_ == AF_INET) {
      if (!IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return false;
      ip = in6->sin6_addr.s6_addr + 12;
    } else {
      ip = in6->sin6_addr.s6_addr;
    }
  } else {
    return false;
  }
  const int full = prefix_len_ / 8;
  if (std::memcmp(ip, bytes_, full) != 0) return false;
  const int rest = prefix_len_ % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xFF << (8 - rest));
  return (ip[full] & mask) == bytes_[full];
}

std::string Cidr::ToString() const {
  char ip[INET6_ADDRSTRLEN] = {};
  inet_ntop(family_, bytes_, ip, sizeof(ip));
  return absl::StrCat(ip, "/", prefix_len_);
}

}  // namespace l7px
