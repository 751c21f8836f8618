#pragma once

#include <string_view>

namespace l7px::http {

// Request-target and authority syntax helpers shared by the parser, MessageHead and the
// rewriters (RFC 3986 section 3.2, RFC 9112 section 3.2).

// host [":" port] where host is a reg-name (unreserved / pct-encoded / sub-delims, non-empty),
// an IPv4 address or a bracketed IPv6 address, and port is 1-5 digits up to 65535. No userinfo.
bool IsValidAuthority(std::string_view authority);

// Splits an absolute-form target "http://authority/path?query" (scheme "http" or "https",
// case-insensitive). Returns false when `target` does not start with such a scheme. `rest` is
// everything after the authority: empty, or starting with '/', '?' or '#'.
bool SplitAbsoluteForm(std::string_view target, std::string_view* authority,
                       std::string_view* rest);

// "host" of "host:port" / "[v6]" of "[v6]:port".
std::string_view StripPort(std::string_view authority);

}  // namespace l7px::http
