#pragma once

// Byte-level helpers of the head parsers and writers: byte classes of a request head and scans
// over runs of them, 16 bytes at a time where SSE2 is available (every x86-64) and one byte at a
// time elsewhere (both give the same answer); case-insensitive compares with lower-case
// literals, 8 bytes at a time.

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace l7px::http {

namespace char_scan_internal {

inline constexpr uint8_t kToken = 1;    // tchar (RFC 9110 5.6.2)
inline constexpr uint8_t kTarget = 2;   // origin-form target: pchar, '/', '?' (RFC 3986 3.3, 3.4)
inline constexpr uint8_t kValue = 4;    // field value byte taken by the fast path: 0x20-0x7e
inline constexpr uint8_t kNotCrLf = 8;  // anything but CR and LF

inline constexpr std::array<uint8_t, 256> kClass = [] {
  std::array<uint8_t, 256> t{};
  for (int c = 0x20; c < 0x7f; ++c) t[c] |= kValue;
  for (int c = 0; c < 256; ++c) {
    if (c != '\r' && c != '\n') t[c] |= kNotCrLf;
  }
  auto add = [&t](std::string_view chars, uint8_t cls) {
    for (char c : chars) t[static_cast<unsigned char>(c)] |= cls;
  };
  constexpr std::string_view kAlnum =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  add(kAlnum, kToken | kTarget);
  add("!#$%&'*+-.^_`|~", kToken);
  add("-._~%!$&'()*+,;=:@/?", kTarget);
  return t;
}();

#if defined(__SSE2__)
// Bytes of v in [lo, hi], both at most 0x7e. As signed bytes, those >= 0x80 are negative and
// never match.
inline __m128i InRange(__m128i v, char lo, char hi) {
  return _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8(static_cast<char>(lo - 1))),
                       _mm_cmpgt_epi8(_mm_set1_epi8(static_cast<char>(hi + 1)), v));
}
inline __m128i Eq(__m128i v, char c) { return _mm_cmpeq_epi8(v, _mm_set1_epi8(c)); }

// Vector predicates: the bytes of v in a class, or (for tokens) in a common subset of it.
inline __m128i ValueBytes(__m128i v) { return InRange(v, 0x20, 0x7e); }
// Letters, digits and '-': nearly every field name. The scalar loop takes over at any other
// token character.
inline __m128i CommonTokenBytes(__m128i v) {
  const __m128i letters = InRange(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'z');
  return _mm_or_si128(_mm_or_si128(letters, InRange(v, '0', '9')), Eq(v, '-'));
}
inline __m128i NotCrLfBytes(__m128i v) {
  return _mm_andnot_si128(_mm_or_si128(Eq(v, '\r'), Eq(v, '\n')), _mm_set1_epi8(-1));
}
// Printable and not one of  " # < > [ \ ] ^ ` { | }
inline __m128i TargetBytes(__m128i v) {
  __m128i not_target = _mm_or_si128(InRange(v, '"', '#'), _mm_or_si128(Eq(v, '<'), Eq(v, '>')));
  not_target = _mm_or_si128(not_target, InRange(v, '[', '^'));
  not_target = _mm_or_si128(not_target, _mm_or_si128(Eq(v, '`'), InRange(v, '{', '}')));
  return _mm_andnot_si128(not_target, InRange(v, 0x21, 0x7e));
}
#endif

// The first byte in [p, end) outside class `cls`, or end; [begin, end) is readable and
// begin <= p. `in_class` is a vector predicate for the class (`exact`) or for a subset of it,
// in which case the scalar loop goes on where it stops. Fewer than 16 bytes before `end` are
// read with one load ending at `end` when the buffer allows, ignoring the bytes before p.
// Inlined into the parser's loop, so that the vector constants are set up once per head.
template <uint8_t cls, bool exact, typename VectorClass>
[[gnu::always_inline]] inline const char* Skip(const char* p, const char* end,
                                               [[maybe_unused]] const char* begin,
                                               [[maybe_unused]] VectorClass in_class) {
#if defined(__SSE2__)
  auto outside = [&in_class](const char* at) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(at));
    return ~static_cast<unsigned>(_mm_movemask_epi8(in_class(v))) & 0xffffu;
  };
  while (end - p >= 16) {
    const unsigned out = outside(p);
    if (out == 0) {
      p += 16;
      continue;
    }
    p += std::countr_zero(out);
    if (exact) return p;
    break;  // a token character outside the subset, or the end of the run: the scalar loop decides
  }
  if (p < end && end - p < 16 && end - begin >= 16) {
    const char* const at = end - 16;
    const unsigned out = outside(at) >> (p - at);
    if (out == 0) return end;
    p += std::countr_zero(out);
    if (exact) return p;
  }
#endif
  while (p < end && (kClass[static_cast<unsigned char>(*p)] & cls) != 0) ++p;
  return p;
}

}  // namespace char_scan_internal

inline bool IsTokenChar(char c) {
  return (char_scan_internal::kClass[static_cast<unsigned char>(c)] & char_scan_internal::kToken);
}
inline bool IsTargetChar(char c) {
  return (char_scan_internal::kClass[static_cast<unsigned char>(c)] & char_scan_internal::kTarget);
}
inline bool IsValueChar(char c) {
  return (char_scan_internal::kClass[static_cast<unsigned char>(c)] & char_scan_internal::kValue);
}

// The first byte in [p, end) that is not a token / target / value character, or the first CR
// or LF: end if none. [begin, end) must be readable, begin <= p (the scans may read bytes
// before p, never before begin).
inline const char* SkipTokenChars(const char* p, const char* end, const char* begin) {
  using namespace char_scan_internal;
#if defined(__SSE2__)
  return Skip<kToken, false>(p, end, begin, [](__m128i v) { return CommonTokenBytes(v); });
#else
  return Skip<kToken, false>(p, end, begin, 0);
#endif
}
inline const char* SkipTargetChars(const char* p, const char* end, const char* begin) {
  using namespace char_scan_internal;
#if defined(__SSE2__)
  return Skip<kTarget, true>(p, end, begin, [](__m128i v) { return TargetBytes(v); });
#else
  return Skip<kTarget, true>(p, end, begin, 0);
#endif
}
inline const char* SkipValueChars(const char* p, const char* end, const char* begin) {
  using namespace char_scan_internal;
#if defined(__SSE2__)
  return Skip<kValue, true>(p, end, begin, [](__m128i v) { return ValueBytes(v); });
#else
  return Skip<kValue, true>(p, end, begin, 0);
#endif
}
inline const char* FindLineBreak(const char* p, const char* end, const char* begin) {
  using namespace char_scan_internal;
#if defined(__SSE2__)
  return Skip<kNotCrLf, true>(p, end, begin, [](__m128i v) { return NotCrLfBytes(v); });
#else
  return Skip<kNotCrLf, true>(p, end, begin, 0);
#endif
}

namespace char_scan_internal {

// The 8 bytes of x with ASCII upper-case letters lowered. A byte's high bit is cleared before
// the range test, so no carry crosses bytes; bytes >= 0x80 are left alone.
inline uint64_t LowerWord(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  const uint64_t y = x & ~kHigh;
  const uint64_t upper = (y + (0x80 - 'A') * kOnes) & ~(y + (0x80 - 'Z' - 1) * kOnes) & ~x & kHigh;
  return x | (upper >> 2);
}

inline uint64_t Load8(const char* p) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  return x;
}

}  // namespace char_scan_internal

// s equals `lower` ignoring ASCII case; `lower` must hold no upper-case letter.
inline bool EqualsLowercase(std::string_view s, std::string_view lower) {
  using namespace char_scan_internal;
  const size_t n = s.size();
  if (n != lower.size()) return false;
  if (n < 8) {
    for (size_t i = 0; i < n; ++i) {
      const char c = s[i];
      if (((c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c) != lower[i]) return false;
    }
    return true;
  }
  // Whole words, then a last word that may overlap the one before.
  for (size_t i = 0; i + 8 <= n; i += 8) {
    if (LowerWord(Load8(s.data() + i)) != Load8(lower.data() + i)) return false;
  }
  return LowerWord(Load8(s.data() + n - 8)) == Load8(lower.data() + n - 8);
}

}  // namespace l7px::http
