#include "acceptor/handshake.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

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
};

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
  if (request_line.substr(sp1 + 1, sp2 - sp1 - 1) != kRegisterPath) return "bad path";
  if (request_line.substr(sp2 + 1) != "HTTP/1.1") return "bad version";

  bool has_host = false, has_upgrade = false, connection_upgrade = false;
  bool has_pool = false, has_service = false;
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
      if (!EqualsIgnoreCase(value, kSlotProtocol)) return "unsupported Upgrade";
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
    }
  }
  if (!has_host) return "missing Host";
  if (!has_upgrade) return "missing Upgrade";
  if (!connection_upgrade) return "missing Connection: upgrade";
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

std::string_view SwitchingProtocolsResponse() {
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
