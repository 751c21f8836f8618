#include "http/char_scan.h"

#include <gtest/gtest.h>

#include <cctype>
#include <random>
#include <string>
#include <string_view>

#include "base/strings.h"

namespace l7px::http {
namespace {

// The classes as the RFCs define them, written out independently of char_scan.h.
bool RfcToken(unsigned char c) {
  return std::isalnum(c) ||
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}
bool RfcTarget(unsigned char c) {
  return std::isalnum(c) || std::string_view("-._~%!$&'()*+,;=:@/?").find(static_cast<char>(c)) !=
                                std::string_view::npos;
}
bool PrintableOrSpace(unsigned char c) { return c >= 0x20 && c <= 0x7e; }

TEST(CharScan, ClassesMatchTheirDefinitions) {
  for (int c = 0; c < 256; ++c) {
    SCOPED_TRACE(c);
    const char ch = static_cast<char>(c);
    const auto u = static_cast<unsigned char>(c);
    EXPECT_EQ(IsTokenChar(ch), RfcToken(u));
    EXPECT_EQ(IsTargetChar(ch), RfcTarget(u));
    EXPECT_EQ(IsValueChar(ch), PrintableOrSpace(u));
  }
}

// Every byte value at every position of a buffer that is otherwise all in the class, scanned
// from several starts to several ends, with a byte outside the class just before the start (which
// the scan may read but must ignore): the scan stops exactly at the first byte outside the class
// at or after the start, whichever of its vector, tail or scalar parts sees it.
template <typename Skip, typename InClass>
void ExpectExactScan(Skip skip, InClass in_class, char filler) {
  constexpr size_t kLen = 40;
  for (int c = 0; c < 256; ++c) {
    for (size_t pos = 0; pos < kLen; ++pos) {
      for (size_t start : {0, 1, 5, 15, 16, 17, 24, 31, 39}) {
        for (size_t stop_at : {kLen, kLen - 3, size_t{24}, size_t{16}, size_t{9}}) {
          if (start > stop_at) continue;
          std::string buf(kLen, filler);
          if (start > 0) buf[start - 1] = '\r';  // in no class
          buf[pos] = static_cast<char>(c);
          const char* const begin = buf.data();
          const char* const end = begin + stop_at;
          const char* expected = begin + start;
          while (expected < end && in_class(*expected)) ++expected;
          for (const char* floor : {begin, begin + start}) {
            ASSERT_EQ(skip(begin + start, end, floor), expected)
                << "byte " << c << " at " << pos << ", scan [" << start << ", " << stop_at
                << ") from " << (floor - begin);
          }
        }
      }
    }
  }
}

TEST(CharScan, ScansStopAtTheFirstByteOutsideTheClass) {
  for (char filler : {'a', 'Z', '7', '-'}) {
    ExpectExactScan(SkipTokenChars, IsTokenChar, filler);
    ExpectExactScan(SkipTargetChars, IsTargetChar, filler);
    ExpectExactScan(SkipValueChars, IsValueChar, filler);
    ExpectExactScan(
        FindLineBreak, [](char c) { return c != '\r' && c != '\n'; }, filler);
  }
  // Token characters outside the letters-digits-dash fast subset, then a stop.
  const std::string name = "X_Custom.Name!#$%&'*+^`|~0123456789abcdefghij:";
  const char* const end = name.data() + name.size();
  EXPECT_EQ(SkipTokenChars(name.data(), end, name.data()), end - 1);
  EXPECT_EQ(SkipTokenChars(name.data() + 30, end, name.data()), end - 1);
}

TEST(CharScan, EqualsLowercaseIsEqualsIgnoreCase) {
  const std::string_view literals[] = {"",
                                       "a",
                                       "te",
                                       "host",
                                       "keep-alive",
                                       "connection",
                                       "100-continue",
                                       "x-forwarded-proto",
                                       "@[`{",
                                       "proxy-authorization"};
  std::mt19937 rng(7);
  // Letters of both cases, their neighbours in ASCII and bytes >= 0x80.
  const std::string alphabet = std::string("aAzZ@[`{-09\x80\xc1\xdb\xfa\xff", 16);
  for (std::string_view lit : literals) {
    SCOPED_TRACE(lit);
    for (int round = 0; round < 2000; ++round) {
      std::string s(lit);
      // Flip the case of some letters and replace a few bytes.
      for (char& c : s) {
        if (rng() % 2 && std::isalpha(static_cast<unsigned char>(c))) c ^= 0x20;
        if (rng() % 16 == 0) c = alphabet[rng() % alphabet.size()];
      }
      if (rng() % 8 == 0) s.push_back('a');
      ASSERT_EQ(EqualsLowercase(s, lit), EqualsIgnoreCase(s, lit)) << s;
    }
  }
}

}  // namespace
}  // namespace l7px::http
