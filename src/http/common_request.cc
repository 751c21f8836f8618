// Invariants:
// - Reads only [data, data + min(len, max_header_bytes)); never writes outside `head`.
// - Accepts a strict subset of what Parser's llhttp path accepts, with the same MessageHead.
//   Anything unusual is declined rather than interpreted: the llhttp path then decides, with
//   its own error for an invalid head. The parser unit tests (whole input = this path, split
//   input = llhttp path) and the request-parser fuzz target compare the two.
// - Line ends are CRLF only and no line starts with a blank, by construction: a name must start
//   with a token character, a value may not hold CR, LF or HTAB.
#include "http/common_request.h"

#include <llhttp.h>

#include <cstring>
#include <string_view>

#include "base/strings.h"
#include "http/char_scan.h"
#include "http/uri.h"

namespace l7px::http {
namespace {

bool StartsWith(const char* p, const char* end, std::string_view prefix) {
  return static_cast<size_t>(end - p) >= prefix.size() &&
         std::memcmp(p, prefix.data(), prefix.size()) == 0;
}

// The method and the SP after it; returns the method's length (0: not one handled here).
size_t MatchMethod(const char* p, const char* end, uint8_t* method) {
  struct Known {
    std::string_view with_space;
    llhttp_method_t method;
  };
  static constexpr Known kGet{"GET ", HTTP_GET}, kHead{"HEAD ", HTTP_HEAD},
      kPost{"POST ", HTTP_POST}, kPut{"PUT ", HTTP_PUT}, kPatch{"PATCH ", HTTP_PATCH},
      kDelete{"DELETE ", HTTP_DELETE}, kOptions{"OPTIONS ", HTTP_OPTIONS};
  if (p == end) return 0;
  auto try_one = [&](const Known& k) -> size_t {
    if (!StartsWith(p, end, k.with_space)) return 0;
    *method = static_cast<uint8_t>(k.method);
    return k.with_space.size() - 1;
  };
  switch (*p) {
    case 'G':
      return try_one(kGet);
    case 'H':
      return try_one(kHead);
    case 'P':
      if (size_t n = try_one(kPost)) return n;
      if (size_t n = try_one(kPut)) return n;
      return try_one(kPatch);
    case 'D':
      return try_one(kDelete);
    case 'O':
      return try_one(kOptions);
    default:
      return 0;
  }
}

// 1 to 15 decimal digits (leading zeros allowed, as llhttp reads them); false otherwise.
bool ParseLength(std::string_view v, uint64_t* out) {
  if (v.empty() || v.size() > 15) return false;
  uint64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = n;
  return true;
}

}  // namespace

uint32_t ParseCommonRequestHead(const char* data, size_t len, const CommonRequestLimits& limits,
                                MessageHead* head) {
  MessageHead& h = *head;
  const char* const end = data + (len < limits.max_header_bytes ? len : limits.max_header_bytes);
  const char* p = data;
  auto off = [data](const char* q) { return static_cast<uint32_t>(q - data); };

  // Request line.
  uint8_t method = 0;
  const size_t method_len = MatchMethod(p, end, &method);
  if (method_len == 0) return 0;
  h.method = method;
  h.method_name = {0, static_cast<uint32_t>(method_len)};
  p += method_len + 1;
  const char* const target = p;
  if (p == end || *p != '/') return 0;
  p = SkipTargetChars(p, end, data);
  if (static_cast<size_t>(p - target) > limits.max_target_bytes) return 0;
  h.target = {off(target), static_cast<uint32_t>(p - target)};
  if (!StartsWith(p, end, " HTTP/1.") || end - p < 11 || p[10] != '\n' || p[9] != '\r') return 0;
  if (p[8] == '1') {
    h.version_minor = 1;
  } else if (p[8] == '0') {
    h.version_minor = 0;
  } else {
    return 0;
  }
  h.version_major = 1;
  p += 11;

  // Fields.
  bool host = false, content_length = false, connection = false;
  bool close = false, keep_alive = false;
  uint64_t length = 0;
  while (true) {
    if (p == end) return 0;
    if (*p == '\r') {
      if (end - p < 2 || p[1] != '\n') return 0;
      p += 2;
      break;
    }
    const char* const name = p;
    p = SkipTokenChars(p, end, data);
    if (p == name || p == end || *p != ':') return 0;
    const std::string_view name_view(name, static_cast<size_t>(p - name));
    ++p;
    while (p < end && *p == ' ') ++p;
    const char* const value = p;
    p = SkipValueChars(p, end, data);
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n') return 0;
    const std::string_view value_view(value, static_cast<size_t>(p - value));
    if (!value_view.empty() && value_view.back() == ' ') return 0;
    p += 2;

    if (h.header_count == kMaxHeaders) return 0;
    const HeaderKind kind = ClassifyHeader(name_view);
    // Most fields are none of these: one predictable branch instead of the jump table.
    if (kind != HeaderKind::kOther) {
      switch (kind) {
        case HeaderKind::kTransferEncoding:
        case HeaderKind::kUpgrade:
        case HeaderKind::kProxyConnection:
          return 0;
        case HeaderKind::kContentLength:
          if (content_length || !ParseLength(value_view, &length)) return 0;
          content_length = true;
          break;
        case HeaderKind::kConnection:
          if (connection) return 0;
          connection = true;
          close = EqualsLowercase(value_view, "close");
          keep_alive = EqualsLowercase(value_view, "keep-alive");
          if (!close && !keep_alive) return 0;
          break;
        case HeaderKind::kHost:
          if (host || (!value_view.empty() && !IsValidAuthority(value_view))) return 0;
          host = true;
          h.host_index = static_cast<int16_t>(h.header_count);
          break;
        case HeaderKind::kExpect:
          if (EqualsLowercase(value_view, "100-continue")) h.expect_continue = true;
          break;
        default:
          break;
      }
    }
    // An empty value sits at the name, as the llhttp path leaves it.
    const Span value_span = value_view.empty()
                                ? Span{off(name), 0}
                                : Span{off(value), static_cast<uint32_t>(value_view.size())};
    h.headers[h.header_count++] =
        HeaderField{{off(name), static_cast<uint32_t>(name_view.size())}, value_span, kind};
    h.kinds_present |= 1u << static_cast<int>(kind);
  }

  if (!host && h.version_minor == 1) return 0;
  if (length > limits.max_body_bytes) return 0;
  h.content_length = length;
  h.framing = length > 0 ? Framing::kContentLength : Framing::kNone;
  h.keep_alive = h.version_minor == 1 ? !close : keep_alive;
  h.upgrade = false;
  h.is_head_request = method == HTTP_HEAD;
  h.head_len = off(p);
  return h.head_len;
}

}  // namespace l7px::http
