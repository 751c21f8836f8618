#pragma once

#include <string>
#include <string_view>

namespace l7px::config {

// The rules a route's fields obey, shared by the config loader and the admin API so a route
// posted at runtime is accepted exactly when the same route in the file would be.

// Lower-cases `host` in place; true for "*", "*.suffix", a host name, or a bracketed IPv6.
bool NormalizeRouteHost(std::string* host);
// Starts with '/', no spaces, control characters, '?' or '#', at most 4096 bytes.
bool IsValidRoutePath(std::string_view path);
// 1..64 of A-Z a-z 0-9 _ - .
bool IsValidPoolName(std::string_view name);
// An RFC 9110 token of 1..256 bytes.
bool IsValidHeaderName(std::string_view name);
// No control characters other than tab, at most 4096 bytes.
bool IsValidHeaderValue(std::string_view value);

inline constexpr std::string_view kHostRule = "use \"*\", \"*.example.com\" or \"example.com\"";
inline constexpr std::string_view kPathRule =
    "must start with '/'; no spaces, control characters, '?' or '#'; at most 4096 bytes";
inline constexpr std::string_view kPoolNameRule = "1..64 of A-Z a-z 0-9 _ - .";

}  // namespace l7px::config
