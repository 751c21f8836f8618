#include "config/route_rules.h"

#include <arpa/inet.h>

#include <algorithm>

#include "base/strings.h"

namespace l7px::config {
namespace {

// Labels of [a-z0-9_-], 1..63 bytes, total <= 253; already lower-cased.
bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
  }
  return label > 0;
}

bool IsBracketedIpv6(std::string_view host) {
  if (host.size() < 3 || host.size() > 64 || host.front() != '[' || host.back() != ']') {
    return false;
  }
  std::string ip(host.substr(1, host.size() - 2));
  if (ip.find('\0') != std::string::npos) return false;
  in6_addr addr;
  return inet_pton(AF_INET6, ip.c_str(), &addr) == 1;
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsPoolNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

}  // namespace

bool NormalizeRouteHost(std::string* host) {
  for (char& c : *host) c = AsciiLower(c);
  const std::string_view h = *host;
  if (h == "*") return true;
  if (h.size() > 2 && h[0] == '*' && h[1] == '.') return IsHostName(h.substr(2));
  if (!h.empty() && h.front() == '[') return IsBracketedIpv6(h);
  return IsHostName(h);
}

bool IsValidRoutePath(std::string_view path) {
  if (path.empty() || path.front() != '/' || path.size() > 4096) return false;
  return std::none_of(path.begin(), path.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '?' || c == '#';
  });
}

bool IsValidPoolName(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         std::all_of(name.begin(), name.end(), IsPoolNameChar);
}

bool IsValidHeaderName(std::string_view name) {
  return !name.empty() && name.size() <= 256 && std::all_of(name.begin(), name.end(), IsTokenChar);
}

bool IsValidHeaderValue(std::string_view value) {
  if (value.size() > 4096) return false;
  return std::none_of(value.begin(), value.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return (u < 0x20 && c != '\t') || u == 0x7f;
  });
}

}  // namespace l7px::config
