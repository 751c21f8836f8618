// The registration handshake a service sends (acceptor::HandshakeParser), in all three modes,
// fed in pieces whose sizes come from the input.
//
// Input: byte 0 = mode (% 3: upgrade, none, mxproxy) and small head limit (bit 7), byte 1 = piece
// size seed; the rest is the byte stream from the service.

#include <cstdint>
#include <cstring>
#include <memory>

#include "acceptor/handshake.h"
#include "fuzz_check.h"

namespace {

using l7px::acceptor::HandshakeParser;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t ctl = data[0];
  uint32_t piece_seed = data[1];
  data += 2;
  size -= 2;
  std::unique_ptr<char[]> buf(new char[size == 0 ? 1 : size]);
  if (size > 0) std::memcpy(buf.get(), data, size);

  static constexpr HandshakeParser::Mode kModes[3] = {HandshakeParser::Mode::kUpgrade,
                                                      HandshakeParser::Mode::kNone,
                                                      HandshakeParser::Mode::kMxproxy};
  const HandshakeParser::Mode mode = kModes[(ctl & 0x7f) % 3];
  HandshakeParser parser(mode, (ctl & 0x80) ? 64 : 8192);
  if (mode == HandshakeParser::Mode::kNone) {
    L7PX_FUZZ_CHECK(parser.status() == HandshakeParser::Status::kDone);
  }

  size_t pos = 0;
  HandshakeParser::Status status = parser.status();
  size_t done_at = 0;
  bool done_seen = status == HandshakeParser::Status::kDone;
  while (pos < size) {
    piece_seed = piece_seed * 1103515245u + 12345u;
    size_t piece = 1 + (piece_seed >> 16) % 64;
    if (piece > size - pos) piece = size - pos;
    // An exact-size copy of the piece: the parser must not read beyond what it is given.
    std::unique_ptr<char[]> chunk(new char[piece]);
    std::memcpy(chunk.get(), buf.get() + pos, piece);
    size_t consumed = SIZE_MAX;
    const HandshakeParser::Status prev = status;
    status = parser.Feed(chunk.get(), piece, &consumed);
    L7PX_FUZZ_CHECK(status == parser.status());
    L7PX_FUZZ_CHECK(consumed <= piece);
    if (prev == HandshakeParser::Status::kRejected) {
      L7PX_FUZZ_CHECK(status == HandshakeParser::Status::kRejected);
    }
    if (status == HandshakeParser::Status::kNeedMore) L7PX_FUZZ_CHECK(consumed == piece);
    if (status == HandshakeParser::Status::kRejected) {
      L7PX_FUZZ_CHECK(!parser.reject_reason().empty());
      break;
    }
    if (status == HandshakeParser::Status::kDone && !done_seen) {
      done_seen = true;
      done_at = pos + consumed;
      // Bytes after the head are a protocol violation in upgrade mode, reported on the next Feed.
      if (mode == HandshakeParser::Mode::kUpgrade && consumed < piece) {
        size_t more = 0;
        L7PX_FUZZ_CHECK(parser.Feed(chunk.get() + consumed, piece - consumed, &more) ==
                        HandshakeParser::Status::kRejected);
        break;
      }
    }
    pos += piece;
  }
  if (parser.status() == HandshakeParser::Status::kDone) {
    L7PX_FUZZ_CHECK(done_at <= size);
    if (mode == HandshakeParser::Mode::kMxproxy) L7PX_FUZZ_CHECK(!parser.service().empty());
    (void)parser.pool();
    (void)parser.token();
    (void)parser.has_token();
    // Only an upgrade head can ask for PTTH; the 101 always exists for what was asked.
    if (mode != HandshakeParser::Mode::kUpgrade) {
      L7PX_FUZZ_CHECK(parser.protocol() == HandshakeParser::Protocol::kSlotV1);
    }
    L7PX_FUZZ_CHECK(!l7px::acceptor::SwitchingProtocolsResponse(parser.protocol()).empty());
  }
  (void)l7px::acceptor::RefusalResponse(400, parser.reject_reason());
  return 0;
}
