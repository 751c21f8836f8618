#pragma once

#include <cstddef>
#include <cstdint>

#include "http/message.h"

namespace l7px::http {

// Sans-I/O incremental decoder of one chunked message body (RFC 9112 7.1), from the first byte
// after the head through the end of the trailer section; never allocates. Parser runs it for
// every chunked body, requests and responses.
//
// Why not llhttp's: llhttp 8.1 (strict build) refuses the BWS that RFC 9112 7.1.1 allows around
// ';' and '=' in chunk extensions (and any extension after one with a token value, "a=1;b"), has
// no lenient flag for it, and gives no way to re-frame a body in place. This one reads the
// grammar exactly:
//
//   chunk-size [ chunk-ext ] CRLF   chunk-size = 1*HEXDIG (at most 16 significant digits)
//   chunk-ext  = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
//   chunk-data CRLF ... last-chunk [ chunk-ext ] CRLF *( field-line CRLF ) CRLF
//
// CR and LF appear only as CRLF pairs; a trailer field is `token ":" *(VCHAR / obs-text / SP /
// HTAB)`, never folded. A chunk-size line longer than kMaxSizeLine bytes is malformed; a trailer
// section longer than max_trailer_bytes is kHeaderTooLarge; for requests a chunk that would take
// the body past max_body_bytes is kBodyTooLarge as soon as its size is read.
//
// Output modes (each Decode call says which; Parser keeps one per message):
//   kRaw      validate only: out is 0, the caller forwards the bytes as received.
//   kDecode   the payload is moved to the front of the input: `out` bytes at data.
//   kReframe  the body is written back to the front of the input in canonical framing: each
//             chunk as "<lowercase hex size without leading zeros>\r\n<data>\r\n", no
//             extensions, and the end as "0\r\n\r\n" with the trailer fields dropped (RFC 9110
//             6.5.1 lets an intermediary discard them; the head's Trailer field is hop-by-hop and
//             removed too). A canonical piece is never longer than the bytes it replaces, so the
//             output never overtakes the input. To keep that true across calls, in this mode a
//             framing element split across calls (a chunk-size line, the CRLF after chunk data,
//             the final CRLF) is not reported consumed until it is complete: the caller passes
//             those bytes again, unchanged, at the start of the next call (Decode remembers how
//             many it already checked, so nothing is scanned twice).
// In kRaw and kDecode every byte given is consumed (up to the end of the body).
class ChunkedDecoder {
 public:
  enum class Mode : uint8_t { kRaw, kDecode, kReframe };
  enum class Status : uint8_t { kNeedMore, kDone, kError };
  struct Result {
    Status status = Status::kNeedMore;
    size_t consumed = 0;  // input bytes consumed (the body ended within them when kDone)
    size_t out = 0;       // kDecode / kReframe: output bytes written from data
  };

  // Chunk-size line bytes (digits, extensions and CRLF) accepted.
  static constexpr size_t kMaxSizeLine = 4096;

  // Starts a new body. max_body_bytes bounds the payload (requests); max_trailer_bytes the
  // trailer section, its final CRLF included.
  void Reset(uint64_t max_body_bytes, uint32_t max_trailer_bytes);
  Result Decode(char* data, size_t len, Mode mode);

  ParseError error() const { return error_; }
  uint64_t body_bytes() const { return body_bytes_; }  // payload bytes seen so far

 private:
  enum class State : uint8_t {
    kSizeFirst,      // a chunk-size line starts: a hex digit
    kSize,           // more hex digits, or what follows them
    kBwsBeforeSemi,  // BWS after the size or an extension: only more BWS or ';'
    kExtStart,       // after ';': BWS, then an extension name
    kExtName,
    kExtNameBws,     // BWS after a name: '=' or ';'
    kExtValueStart,  // after '=': BWS, then a token or a quoted string
    kExtToken,
    kExtQuoted,
    kExtQuotedPair,  // after a backslash in a quoted string
    kExtAfterQuoted,
    kSizeLf,  // the CR of the chunk-size line was seen
    kData,    // chunk data bytes
    kDataCr,  // the CRLF after chunk data
    kDataLf,
    kTrailerLine,  // a trailer field line starts, or the final CRLF
    kTrailerName,
    kTrailerValue,
    kTrailerLf,
    kFinalLf,
    kDone,
    kError,
  };

  // True while a framing element that kReframe does not report consumed before it is complete
  // is partly seen.
  static bool InSplitElement(State s);
  Result Fail(ParseError error);

  State state_ = State::kSizeFirst;
  ParseError error_ = ParseError::kNone;
  uint64_t max_body_bytes_ = UINT64_MAX;
  uint32_t max_trailer_bytes_ = 0;
  uint64_t size_ = 0;        // of the current chunk
  uint64_t remaining_ = 0;   // data bytes of the current chunk still to come
  uint64_t body_bytes_ = 0;  // payload seen so far
  uint32_t line_bytes_ = 0;  // of the current chunk-size line
  uint32_t trailer_bytes_ = 0;
  uint32_t size_digits_ = 0;  // significant hex digits of the current size
  uint32_t pending_ = 0;      // kReframe: bytes of a split element already checked
};

}  // namespace l7px::http
