#include "acceptor/handshake.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "base/strings.h"
#include "fmt/format.h"
#include "http/status_text.h"

// Parser state lives in buffer_ and status_ only:
//  - kUpgrade: buffer_ holds the head received so far. Every byte is checked as it arrives for
//    line-ending errors (a CR must be followed by LF, an LF must follow a CR) and for the size
//    limit, so a bad or oversized head is refused without waiting for its end. The head is
//    parsed once, when buffer_ ends with the blank line.
//  - kMxproxy: buffer_ holds the preamble received so far; each byte is checked at its offset.
//  - kNone: done from construction.
// kRejected is terminal. kDone is terminal except that, in kUpgrade, any later byte turns it
// into kRejected (the service must wait for requests after registering).

namespace l7px::acceptor {
namespace {

constexpr std::string_view kRegisterPath = "/.l7px/register";
constexpr std::string_view kSlotProtocol = "l7px-slot/1";
// draft-kazuho-ptth-ptth, HTTP/1.1: the upgrade token, and the one protocol a slot speaks, as an
// ALPN field (RFC 7639) spells it.
constexpr std::string_view kPtthProtocol = "ptth";
constexpr std::string_view kHttp11AlpnId = "http/1.1";
constexpr size_t kMaxPoolName = 64;  // the config's rule for pool names

constexpr char kMxSignature[12] = {'\r', '\n', '\r', '\n', 'M', 'X', 'P', 'R', 'O', 'X', 'Y', '\n'};
constexpr size_t kMxFixedBytes = 16;  // signature, version, family, 16-bit length
constexpr unsigned char kMxVersion = 0x11;

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// field-value characters: VCHAR, obs-text, SP, HTAB.
bool IsValueChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u == '\t' || (u >= 0x20 && u != 0x7f);
}

bool ListContainsToken(std::string_view list, std::string_view token) {
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = TrimOws(list.substr(0, comma));
    if (EqualsIgnoreCase(item, token)) return true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return false;
}

struct HeadFields {
  std::string pool;
  std::string token;
  bool has_token = false;
  std::string service;
  HandshakeParser::Protocol protocol = HandshakeParser::Protocol::kSlotV1;
};

// A pool name as the config allows it (1..64 of A-Z a-z 0-9 _ - .), minus the two dot-segments a
// client library might normalise away before sending.
bool IsPoolPathSegment(std::string_view s) {
  if (s.empty() || s.size() > kMaxPoolName || s == "." || s == "..") return false;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// RFC 7639: the ALPN field is a list of protocol ids, each a token in which "%" starts a
// percent-encoded octet. Sets *offers_http11 when one of them decodes to "http/1.1". False when
// an item is not such a token.
bool ParseAlpnList(std::string_view list, bool* offers_http11) {
  *offers_http11 = false;
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view item = TrimOws(list.substr(0, comma));
    std::string id;
    for (size_t i = 0; i < item.size(); ++i) {
      if (item[i] == '%') {
        if (i + 2 >= item.size()) return false;
        const int hi = HexValue(item[i + 1]), lo = HexValue(item[i + 2]);
        if (hi < 0 || lo < 0) return false;
        id.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
      } else if (IsTokenChar(item[i])) {
        id.push_back(item[i]);
      } else {
        return false;
      }
    }
    if (id == kHttp11AlpnId) *offers_http11 = true;
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return true;
}

// Strict base64 (RFC 4648 alphabet, padded, nothing else), so that what a service meant is never
// a guess.
bool IsStrictBase64(std::string_view s) {
  if (s.empty() || s.size() % 4 != 0) return false;
  size_t pad = 0;
  while (pad < 2 && s[s.size() - 1 - pad] == '=') ++pad;
  for (size_t i = 0; i < s.size() - pad; ++i) {
    const char c = s[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '+' || c == '/';
    if (!ok) return false;
  }
  return true;
}

// The token (and, for Basic, the service id) a PTTH head carries in Authorization (RFC 9110
// 11.6.2: scheme, then credentials after one or more SP). Returns a reject reason or nullptr.
const char* ParseAuthorization(std::string_view value, std::string* token, std::string* service) {
  const size_t sp = value.find(' ');
  if (sp == std::string_view::npos) return "bad Authorization";
  const std::string_view scheme = value.substr(0, sp);
  std::string_view credentials = value.substr(sp);
  while (!credentials.empty() && credentials.front() == ' ') credentials.remove_prefix(1);
  if (credentials.empty() || credentials.find_first_of(" \t") != std::string_view::npos) {
    return "bad Authorization";
  }
  if (EqualsIgnoreCase(scheme, "Bearer")) {
    token->assign(credentials);
    return nullptr;
  }
  if (!EqualsIgnoreCase(scheme, "Basic")) return "unsupported Authorization scheme";
  std::string decoded;
  if (!IsStrictBase64(credentials) ||
      !absl::Base64Unescape(absl::string_view(credentials.data(), credentials.size()), &decoded)) {
    return "bad Authorization";
  }
  const size_t colon = decoded.find(':');
  if (colon == std::string::npos) return "bad Authorization";
  for (char c : decoded) {  // RFC 7617: no control characters in user-id or password
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return "bad Authorization";
  }
  service->assign(decoded, 0, colon);
  token->assign(decoded, colon + 1);
  return nullptr;
}

// Parses a complete head (request line and header lines, CRLF-separated, without the final
// blank line). CR and LF only occur as CRLF pairs here. Returns a reject reason or nullptr.
const char* ParseHead(std::string_view head, HeadFields* out) {
  auto next_line = [&head]() {
    const size_t end = head.find("\r\n");
    std::string_view line = head.substr(0, end);
    head.remove_prefix(end == std::string_view::npos ? head.size() : end + 2);
    return line;
  };

  const std::string_view request_line = next_line();
  const size_t sp1 = request_line.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return "bad request line";
  }
  if (request_line.substr(0, sp1) != "GET") return "bad method";
  // The target is the register path, or (PTTH only, checked once Upgrade is known) the register
  // path with one more segment naming the pool.
  const std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view path_pool;
  if (target != kRegisterPath) {
    if (!target.starts_with(kRegisterPath) || target.size() < kRegisterPath.size() + 2 ||
        target[kRegisterPath.size()] != '/' ||
        !IsPoolPathSegment(target.substr(kRegisterPath.size() + 1))) {
      return "bad path";
    }
    path_pool = target.substr(kRegisterPath.size() + 1);
  }
  if (request_line.substr(sp2 + 1) != "HTTP/1.1") return "bad version";

  bool has_host = false, has_upgrade = false, connection_upgrade = false;
  bool has_pool = false, has_service = false, has_alpn = false, has_authorization = false;
  std::string alpn;
  std::string_view authorization;
  while (!head.empty()) {
    const std::string_view line = next_line();
    if (line.empty()) return "malformed header";  // cannot happen: the blank line ends the head
    if (line.front() == ' ' || line.front() == '\t') return "obs-fold";
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return "header without colon";
    const std::string_view name = line.substr(0, colon);
    if (name.empty()) return "empty header name";
    if (name.back() == ' ' || name.back() == '\t') return "whitespace before colon";
    for (char c : name) {
      if (!IsTokenChar(c)) return "bad header name";
    }
    const std::string_view value = TrimOws(line.substr(colon + 1));
    for (char c : value) {
      if (!IsValueChar(c)) return "bad header value";
    }

    if (EqualsIgnoreCase(name, "Host")) {
      if (has_host) return "duplicate Host";
      has_host = true;
    } else if (EqualsIgnoreCase(name, "Connection")) {
      if (ListContainsToken(value, "upgrade")) connection_upgrade = true;
    } else if (EqualsIgnoreCase(name, "Upgrade")) {
      if (has_upgrade) return "duplicate Upgrade";
      if (EqualsIgnoreCase(value, kSlotProtocol)) {
        out->protocol = HandshakeParser::Protocol::kSlotV1;
      } else if (EqualsIgnoreCase(value, kPtthProtocol)) {
        out->protocol = HandshakeParser::Protocol::kPtth;
      } else {
        return "unsupported Upgrade";
      }
      has_upgrade = true;
    } else if (EqualsIgnoreCase(name, "Content-Length") ||
               EqualsIgnoreCase(name, "Transfer-Encoding")) {
      return "body not allowed";
    } else if (EqualsIgnoreCase(name, "L7px-Pool")) {
      if (has_pool) return "duplicate L7px-Pool";
      has_pool = true;
      out->pool.assign(value);
    } else if (EqualsIgnoreCase(name, "L7px-Token")) {
      if (out->has_token) return "duplicate L7px-Token";
      out->has_token = true;
      out->token.assign(value);
    } else if (EqualsIgnoreCase(name, "L7px-Service")) {
      if (has_service) return "duplicate L7px-Service";
      has_service = true;
      out->service.assign(value);
    } else if (EqualsIgnoreCase(name, "ALPN")) {
      // A list field: several lines are one list (RFC 9110 5.3).
      if (has_alpn) alpn.push_back(',');
      has_alpn = true;
      alpn.append(value);
    } else if (EqualsIgnoreCase(name, "Authorization")) {
      if (has_authorization) return "duplicate Authorization";
      has_authorization = true;
      authorization = value;
    }
  }
  if (!has_host) return "missing Host";
  if (!has_upgrade) return "missing Upgrade";
  if (!connection_upgrade) return "missing Connection: upgrade";
  if (out->protocol == HandshakeParser::Protocol::kSlotV1) {
    // v1 stays exactly as specified: Authorization and ALPN mean nothing to it.
    if (!path_pool.empty()) return "pool in path needs Upgrade: ptth";
    return nullptr;
  }

  // PTTH: the draft requires ALPN; slots speak HTTP/1.1 only.
  if (!has_alpn) return "missing ALPN";
  bool offers_http11 = false;
  if (!ParseAlpnList(alpn, &offers_http11)) return "bad ALPN";
  if (!offers_http11) return "ALPN offers no http/1.1";
  if (!path_pool.empty()) {
    if (has_pool) return "pool in both path and L7px-Pool";
    out->pool.assign(path_pool);
  }
  if (has_authorization) {
    std::string token, service;
    if (const char* reason = ParseAuthorization(authorization, &token, &service)) return reason;
    if (out->has_token) return "token in both Authorization and L7px-Token";
    out->has_token = true;
    out->token = std::move(token);
    if (!service.empty()) {
      if (has_service) return "service in both Authorization and L7px-Service";
      out->service = std::move(service);
    }
  }
  return nullptr;
}

uint16_t LoadBe16(const char* p) {
  return static_cast<uint16_t>((static_cast<unsigned char>(p[0]) << 8) |
                               static_cast<unsigned char>(p[1]));
}

// A refusal's status line and body never go without words.
constexpr std::string_view kUnknownReason = "Error";

}  // namespace

HandshakeParser::HandshakeParser(Mode mode, size_t max_head_bytes)
    : mode_(mode), max_head_bytes_(max_head_bytes) {
  if (mode_ == Mode::kNone) status_ = Status::kDone;
}

HandshakeParser::Status HandshakeParser::Feed(const char* data, size_t len, size_t* consumed) {
  size_t used = 0;
  auto finish = [&](Status s) {
    status_ = s;
    if (consumed != nullptr) *consumed = used;
    return s;
  };
  auto reject = [&](const char* reason) {
    reject_reason_ = reason;
    return finish(Status::kRejected);
  };

  if (status_ == Status::kRejected) return finish(Status::kRejected);
  if (status_ == Status::kDone) {
    if (mode_ == Mode::kUpgrade && len > 0) return reject("bytes after request head");
    return finish(Status::kDone);
  }

  if (mode_ == Mode::kUpgrade) {
    for (; used < len; ++used) {
      const char c = data[used];
      if (buffer_.size() >= max_head_bytes_) return reject("request head too large");
      const bool after_cr = !buffer_.empty() && buffer_.back() == '\r';
      if (after_cr && c != '\n') return reject("bare CR");
      if (c == '\n' && !after_cr) return reject("bare LF");
      buffer_.push_back(c);
      if (c == '\n' && buffer_.size() >= 4 && buffer_.ends_with("\r\n\r\n")) {
        ++used;
        HeadFields fields;
        const std::string_view head(buffer_.data(), buffer_.size() - 4);
        if (const char* reason = ParseHead(head, &fields)) return reject(reason);
        pool_ = std::move(fields.pool);
        token_ = std::move(fields.token);
        has_token_ = fields.has_token;
        service_ = std::move(fields.service);
        protocol_ = fields.protocol;
        buffer_.clear();
        buffer_.shrink_to_fit();
        return finish(Status::kDone);
      }
    }
    return finish(Status::kNeedMore);
  }

  // kMxproxy
  for (; used < len; ++used) {
    const char c = data[used];
    const auto u = static_cast<unsigned char>(c);
    const size_t at = buffer_.size();
    if (at < sizeof(kMxSignature)) {
      if (c != kMxSignature[at]) return reject("bad mxproxy signature");
    } else if (at == 12) {
      if (u != kMxVersion) return reject("bad mxproxy version");
    }
    buffer_.push_back(c);
    if (buffer_.size() < kMxFixedBytes) continue;

    // The length decides the address family (6: IPv4 + port, 18: IPv6 + port). The family byte
    // (0x11 / 0x21 in the seed implementation) is not checked: its encoding is not part of the
    // documented preamble, and a service is identified by what it declares, not by that byte.
    const uint16_t declared = LoadBe16(&buffer_[14]);
    if (declared != 6 && declared != 18) return reject("bad mxproxy length");
    const bool v6 = declared == 18;
    const size_t addr_len = v6 ? 16 : 4;
    if (buffer_.size() < kMxFixedBytes + addr_len + 2) continue;

    ++used;
    const char* addr = buffer_.data() + kMxFixedBytes;
    const uint16_t port = LoadBe16(addr + addr_len);
    char ip[INET6_ADDRSTRLEN] = {};
    unsigned char raw[16];
    std::memcpy(raw, addr, addr_len);
    if (inet_ntop(v6 ? AF_INET6 : AF_INET, raw, ip, sizeof(ip)) == nullptr) {
      return reject("bad mxproxy address");
    }
    service_ = v6 ? fmt::format("[{}]:{}", ip, port) : fmt::format("{}:{}", ip, port);
    buffer_.clear();
    return finish(Status::kDone);
  }
  return finish(Status::kNeedMore);
}

std::string_view SwitchingProtocolsResponse(HandshakeParser::Protocol protocol) {
  if (protocol == HandshakeParser::Protocol::kPtth) {
    return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ptth\r\n"
           "ALPN: http%2F1.1\r\n\r\n";
  }
  return "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: l7px-slot/1\r\n\r\n";
}

std::string RefusalResponse(int status, std::string_view detail) {
  if (status < 100 || status > 999) status = 500;
  // One line of text: control characters would only confuse whoever reads it.
  std::string body;
  body.reserve(detail.size() + 1);
  const std::string_view reason = http::ReasonPhrase(status, kUnknownReason);
  for (char c : detail.empty() ? reason : detail) {
    const auto u = static_cast<unsigned char>(c);
    body.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  body.push_back('\n');
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: "
      "close\r\n\r\n{}",
      status, reason, body.size(), body);
}

}  // namespace l7px::acceptor
