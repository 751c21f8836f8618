#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace l7px::acceptor {

// Sans-I/O parser for the first bytes a service sends on a registration connection
// (slot protocol v1, its PTTH form, and the two compatibility modes). Never reads sockets; fed by
// the acceptor.
//
//  kUpgrade: one HTTP/1.1 request head, exactly
//      GET /.l7px/register HTTP/1.1
//      Host: <anything>
//      Connection: Upgrade            (token list containing "upgrade", case-insensitive)
//      Upgrade: l7px-slot/1           (case-insensitive)
//      L7px-Pool: api                 (optional; empty/absent = default pool)
//      L7px-Token: <secret>           (optional here; the acceptor checks it against the pool)
//      L7px-Service: billing-7f9c     (optional instance id)
//    or the same head in the form of draft-kazuho-ptth-ptth (Protocol for Transposed Transactions
//    over HTTP, HTTP/1.1 upgrade), protocol() == kPtth:
//      GET /.l7px/register[/<pool>] HTTP/1.1   (the path segment names the pool: 1..64 of
//                                               A-Z a-z 0-9 _ - . but not "." or "..")
//      Host, Connection as above
//      Upgrade: ptth                  (case-insensitive)
//      ALPN: h2, http%2F1.1           (RFC 7639; required, must offer http/1.1: slots carry it)
//      Authorization: Bearer <token>  (optional; the token)
//        or Authorization: Basic base64(<service>:<token>)  (an empty user-id names no service)
//      L7px-Pool / L7px-Token / L7px-Service as above; naming the pool, token or service both
//      ways is refused, as is any other Authorization scheme.
//    For l7px-slot/1, Authorization and ALPN are ignored (as any other unknown field) and the
//    path has no pool segment.
//    Anything else (other method/path/version, missing Upgrade, a body, bytes after the head,
//    head > max_head_bytes) is rejected with 400.
//  kNone: no bytes at all; Feed() is never needed (Done immediately, empty fields).
//  kMxproxy: the seed implementation's preamble: 12-byte signature "\r\n\r\nMXPROXY\n",
//    byte 0x11, family byte (0x11 = IPv4, 0x21 = IPv6), 16-bit big-endian length (6 for IPv4,
//    18 for IPv6), then the declared address (4 or 16 bytes) and port (2 bytes, big-endian).
//    Short reads are fine (feed as bytes arrive). The declared "ip:port" / "[ip]:port" becomes
//    the service id.
class HandshakeParser {
 public:
  enum class Mode { kUpgrade, kNone, kMxproxy };
  enum class Status { kNeedMore, kDone, kRejected };
  // Which upgrade the service asked for (kUpgrade mode); decides the 101's Upgrade field.
  enum class Protocol { kSlotV1, kPtth };

  explicit HandshakeParser(Mode mode, size_t max_head_bytes = 8192);

  // Consumes bytes. After kDone, `consumed` tells how many bytes the handshake used; any bytes
  // beyond it are a protocol violation for kUpgrade (the service must wait for requests) and
  // are reported as kRejected by the next Feed.
  Status Feed(const char* data, size_t len, size_t* consumed);
  Status status() const { return status_; }

  // Valid after kDone.
  const std::string& pool() const { return pool_; }
  const std::string& token() const { return token_; }
  bool has_token() const { return has_token_; }
  const std::string& service() const { return service_; }
  // kSlotV1 unless a kUpgrade head asked for "ptth".
  Protocol protocol() const { return protocol_; }
  // Valid after kRejected: a short reason for logs ("bad request line", "missing Upgrade", ...).
  const std::string& reject_reason() const { return reject_reason_; }

 private:
  Mode mode_;
  size_t max_head_bytes_;
  Status status_ = Status::kNeedMore;
  std::string buffer_;
  std::string pool_;
  std::string token_;
  bool has_token_ = false;
  std::string service_;
  Protocol protocol_ = Protocol::kSlotV1;
  std::string reject_reason_;
};

// The 101 that accepts a registration, echoing the protocol asked for. kSlotV1:
//   "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: l7px-slot/1\r\n\r\n"
// kPtth: the same with "Upgrade: ptth", plus "ALPN: http%2F1.1" (the draft requires the chosen
// protocol in the 101; a slot always speaks HTTP/1.1).
std::string_view SwitchingProtocolsResponse(
    HandshakeParser::Protocol protocol = HandshakeParser::Protocol::kSlotV1);
// A refusal that closes the connection: 400 / 403 / 404 / 503 with a one-line text body.
std::string RefusalResponse(int status, std::string_view detail);

}  // namespace l7px::acceptor
