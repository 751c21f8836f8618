#include "http/uri.h"

#include <array>
#include <cstdint>
#include <string_view>

#include "base/strings.h"

namespace l7px::http {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsHex(char c) { return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// unreserved and sub-delims (RFC 3986 2.2, 2.3)
constexpr std::array<bool, 256> kRegNameChar = [] {
  std::array<bool, 256> t{};
  for (unsigned char c : std::string_view(
           "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=")) {
    t[c] = true;
  }
  return t;
}();

bool IsRegNameChar(char c) { return kRegNameChar[static_cast<unsigned char>(c)]; }

bool IsValidRegName(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return false;
      if (!IsHex(s[i + 1]) || !IsHex(s[i + 2])) return false;
      i += 2;
    } else if (!IsRegNameChar(s[i])) {
      return false;
    }
  }
  return true;
}

// Hex digits, ':' and an optional trailing dotted IPv4 part; at least two colons.
bool IsValidIpv6(std::string_view s) {
  if (s.size() < 2) return false;
  int colons = 0;
  for (char c : s) {
    if (c == ':') {
      ++colons;
    } else if (!IsHex(c) && c != '.') {
      return false;
    }
  }
  return colons >= 2 && colons <= 7;
}

bool IsValidPort(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  return v <= 65535;
}

}  // namespace

bool IsValidAuthority(std::string_view a) {
  std::string_view host = a;
  std::string_view port;
  bool has_port = false;
  if (!a.empty() && a.front() == '[') {
    size_t close = a.find(']');
    if (close == std::string_view::npos) return false;
    if (!IsValidIpv6(a.substr(1, close - 1))) return false;
    std::string_view after = a.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return false;
      has_port = true;
      port = after.substr(1);
    }
  } else {
    size_t colon = a.find(':');
    if (colon != std::string_view::npos) {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
      has_port = true;
    }
    // A dotted IPv4 address is also a valid reg-name, so one check covers both.
    if (!IsValidRegName(host)) return false;
  }
  return !has_port || IsValidPort(port);
}

bool SplitAbsoluteForm(std::string_view target, std::string_view* authority,
                       std::string_view* rest) {
  // Origin-form, nearly every request: no need for the scheme compares.
  if (target.empty() || target.front() == '/') return false;
  size_t scheme_len;
  if (target.size() >= 7 && EqualsIgnoreCase(target.substr(0, 7), "http://")) {
    scheme_len = 7;
  } else if (target.size() >= 8 && EqualsIgnoreCase(target.substr(0, 8), "https://")) {
    scheme_len = 8;
  } else {
    return false;
  }
  std::string_view after = target.substr(scheme_len);
  size_t end = after.find_first_of("/?#");
  if (end == std::string_view::npos) end = after.size();
  *authority = after.substr(0, end);
  *rest = after.substr(end);
  return true;
}

std::string_view StripPort(std::string_view authority) {
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    return close == std::string_view::npos ? authority : authority.substr(0, close + 1);
  }
  size_t colon = authority.find(':');
  return colon == std::string_view::npos ? authority : authority.substr(0, colon);
}

}  // namespace l7px::http
