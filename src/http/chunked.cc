// Invariants:
// - state_ says what the next input byte may be; every byte is checked exactly once, also in
//   kReframe, where the bytes of a split element are passed again but skipped (pending_).
// - kReframe output: `out` never passes the first byte not yet read. Chunk data is copied 1:1,
//   and each canonical framing piece is written only once the element it replaces is complete,
//   all of it in the current input (a split element is re-presented whole): "<hex>\r\n" replaces
//   a size line of at least as many digits plus CRLF, "0\r\n" a last-chunk line of at least 3
//   bytes, "\r\n" a CRLF. The check in Emit() is a second line of defence, never taken.
// - body_bytes_ <= max_body_bytes_: a chunk size is checked against the room left before any
//   of its data is accepted.
#include "http/chunked.h"

#include <cstring>

#include "http/char_scan.h"

namespace l7px::http {
namespace {

bool IsBlank(char c) { return c == ' ' || c == '\t'; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// qdtext (RFC 9110 5.6.4): HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text.
bool IsQdText(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) ||
         (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

// HTAB / SP / VCHAR / obs-text: the byte after a backslash in a quoted string, and any byte of
// a field value.
bool IsTextOrBlank(char ch) {
  const auto c = static_cast<unsigned char>(ch);
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

// Lowercase hex of v > 0 without leading zeros; returns the digit count (at most 16).
size_t WriteHex(uint64_t v, char* out) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t n = 0;
  for (uint64_t t = v; t != 0; t >>= 4) ++n;
  for (size_t i = n; i-- > 0; v >>= 4) out[i] = kHex[v & 0xf];
  return n;
}

}  // namespace

void ChunkedDecoder::Reset(uint64_t max_body_bytes, uint32_t max_trailer_bytes) {
  *this = ChunkedDecoder();
  max_body_bytes_ = max_body_bytes;
  max_trailer_bytes_ = max_trailer_bytes;
}

bool ChunkedDecoder::InSplitElement(State s) {
  switch (s) {
    case State::kSize:
    case State::kBwsBeforeSemi:
    case State::kExtStart:
    case State::kExtName:
    case State::kExtNameBws:
    case State::kExtValueStart:
    case State::kExtToken:
    case State::kExtQuoted:
    case State::kExtQuotedPair:
    case State::kExtAfterQuoted:
    case State::kSizeLf:
    case State::kDataLf:
    case State::kFinalLf:
      return true;
    default:
      return false;
  }
}

ChunkedDecoder::Result ChunkedDecoder::Fail(ParseError error) {
  state_ = State::kError;
  error_ = error;
  return {Status::kError, 0, 0};
}

ChunkedDecoder::Result ChunkedDecoder::Decode(char* data, size_t len, Mode mode) {
  if (state_ == State::kError) return {Status::kError, 0, 0};
  if (state_ == State::kDone) return {Status::kDone, 0, 0};
  size_t pos = 0;
  if (pending_ > 0) {
    // kReframe: data starts with the split element seen last time, unchanged.
    if (len < pending_) return {Status::kNeedMore, 0, 0};
    pos = pending_;
    pending_ = 0;
  }
  size_t element_start = 0;  // where the split element in progress began
  char* out = data;
  // Writes a canonical framing piece (kReframe only); pos is just past the element it replaces.
  auto emit = [&](const char* piece, size_t n) {
    if (mode != Mode::kReframe) return true;
    if (out + n > data + pos) return false;
    std::memmove(out, piece, n);
    out += n;
    return true;
  };
  // After the size, an extension name, a token value or a quoted value.
  auto after_item = [&](char c) {
    if (IsBlank(c)) {
      state_ = State::kBwsBeforeSemi;
    } else if (c == ';') {
      state_ = State::kExtStart;
    } else if (c == '\r') {
      state_ = State::kSizeLf;
    } else {
      return false;
    }
    return true;
  };

  while (pos < len) {
    const char c = data[pos];
    if (state_ >= State::kSize && state_ <= State::kSizeLf && ++line_bytes_ > kMaxSizeLine) {
      return Fail(ParseError::kMalformed);
    }
    if (state_ >= State::kTrailerLine && state_ <= State::kFinalLf &&
        ++trailer_bytes_ > max_trailer_bytes_) {
      return Fail(ParseError::kHeaderTooLarge);
    }
    switch (state_) {
      case State::kSizeFirst: {
        const int d = HexValue(c);
        if (d < 0) return Fail(ParseError::kMalformed);
        element_start = pos;
        size_ = static_cast<uint64_t>(d);
        size_digits_ = d != 0 ? 1 : 0;
        line_bytes_ = 1;
        state_ = State::kSize;
        break;
      }
      case State::kSize: {
        const int d = HexValue(c);
        if (d >= 0) {
          if (size_digits_ > 0 || d != 0) {
            if (size_digits_ == 16) return Fail(ParseError::kMalformed);  // over 64 bits
            ++size_digits_;
          }
          size_ = (size_ << 4) | static_cast<uint64_t>(d);
          break;
        }
        if (size_ > max_body_bytes_ - body_bytes_) return Fail(ParseError::kBodyTooLarge);
        if (!after_item(c)) return Fail(ParseError::kMalformed);
        break;
      }
      case State::kBwsBeforeSemi:
        if (c == ';') {
          state_ = State::kExtStart;
        } else if (!IsBlank(c)) {
          return Fail(ParseError::kMalformed);
        }
        break;
      case State::kExtStart:
        if (IsTokenChar(c)) {
          state_ = State::kExtName;
        } else if (!IsBlank(c)) {
          return Fail(ParseError::kMalformed);
        }
        break;
      case State::kExtName:
        if (IsTokenChar(c)) break;
        if (c == '=') {
          state_ = State::kExtValueStart;
        } else if (IsBlank(c)) {
          state_ = State::kExtNameBws;
        } else if (!after_item(c)) {
          return Fail(ParseError::kMalformed);
        }
        break;
      case State::kExtNameBws:
        if (c == '=') {
          state_ = State::kExtValueStart;
        } else if (c == ';') {
          state_ = State::kExtStart;
        } else if (!IsBlank(c)) {
          return Fail(ParseError::kMalformed);
        }
        break;
      case State::kExtValueStart:
        if (c == '"') {
          state_ = State::kExtQuoted;
        } else if (IsTokenChar(c)) {
          state_ = State::kExtToken;
        } else if (!IsBlank(c)) {
          return Fail(ParseError::kMalformed);
        }
        break;
      case State::kExtToken:
        if (!IsTokenChar(c) && !after_item(c)) return Fail(ParseError::kMalformed);
        break;
      case State::kExtQuoted:
        if (c == '"') {
          state_ = State::kExtAfterQuoted;
        } else if (c == '\\') {
          state_ = State::kExtQuotedPair;
        } else if (!IsQdText(c)) {
          return Fail(ParseError::kMalformed);
        }
        break;
      case State::kExtQuotedPair:
        if (!IsTextOrBlank(c)) return Fail(ParseError::kMalformed);
        state_ = State::kExtQuoted;
        break;
      case State::kExtAfterQuoted:
        if (!after_item(c)) return Fail(ParseError::kMalformed);
        break;
      case State::kSizeLf: {
        if (c != '\n') return Fail(ParseError::kMalformed);
        ++pos;
        if (size_ == 0) {
          if (!emit("0\r\n", 3)) return Fail(ParseError::kMalformed);
          trailer_bytes_ = 0;
          state_ = State::kTrailerLine;
        } else {
          char piece[18];
          const size_t n = WriteHex(size_, piece);
          piece[n] = '\r';
          piece[n + 1] = '\n';
          if (!emit(piece, n + 2)) return Fail(ParseError::kMalformed);
          remaining_ = size_;
          state_ = State::kData;
        }
        continue;
      }
      case State::kData: {
        const size_t avail = len - pos;
        const size_t n = remaining_ < avail ? static_cast<size_t>(remaining_) : avail;
        if (mode != Mode::kRaw) {
          if (out != data + pos) std::memmove(out, data + pos, n);
          out += n;
        }
        pos += n;
        remaining_ -= n;
        body_bytes_ += n;
        if (remaining_ == 0) state_ = State::kDataCr;
        continue;
      }
      case State::kDataCr:
        if (c != '\r') return Fail(ParseError::kMalformed);
        element_start = pos;
        state_ = State::kDataLf;
        break;
      case State::kDataLf:
        if (c != '\n') return Fail(ParseError::kMalformed);
        ++pos;
        if (!emit("\r\n", 2)) return Fail(ParseError::kMalformed);
        state_ = State::kSizeFirst;
        continue;
      case State::kTrailerLine:
        if (c == '\r') {
          element_start = pos;
          state_ = State::kFinalLf;
        } else if (IsTokenChar(c)) {
          state_ = State::kTrailerName;
        } else {
          return Fail(ParseError::kMalformed);  // a fold, an empty name, a stray byte
        }
        break;
      case State::kTrailerName:
        if (c == ':') {
          state_ = State::kTrailerValue;
        } else if (!IsTokenChar(c)) {
          return Fail(ParseError::kMalformed);
        }
        break;
      case State::kTrailerValue:
        if (c == '\r') {
          state_ = State::kTrailerLf;
        } else if (!IsTextOrBlank(c)) {
          return Fail(ParseError::kMalformed);
        }
        break;
      case State::kTrailerLf:
        if (c != '\n') return Fail(ParseError::kMalformed);
        state_ = State::kTrailerLine;
        break;
      case State::kFinalLf:
        if (c != '\n') return Fail(ParseError::kMalformed);
        ++pos;
        if (!emit("\r\n", 2)) return Fail(ParseError::kMalformed);
        state_ = State::kDone;
        return {Status::kDone, pos, static_cast<size_t>(out - data)};
      case State::kDone:
      case State::kError:
        return {Status::kError, 0, 0};  // unreachable: handled before the loop
    }
    ++pos;
  }
  size_t consumed = len;
  if (mode == Mode::kReframe && InSplitElement(state_)) {
    consumed = element_start;
    pending_ = static_cast<uint32_t>(len - element_start);
  }
  return {Status::kNeedMore, consumed, static_cast<size_t>(out - data)};
}

}  // namespace l7px::http
