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

// Every byte value at every position of a buffer that is otherwise all in the class: the scan
// stops exactly at the first byte outside it, whether the vector or the scalar part sees it.
template <typename Skip, typename InClass>
void ExpectExactScan(Skip skip, InClass in_class, char filler) {
  constexpr size_t kLen = 40;
  for (int c = 0; c < 256; ++c) {
    for (size_t pos = 0; pos < kLen; ++pos) {
      std::string buf(kLen, filler);
      buf[pos] = static_cast<char>(c);
      const char* end = buf.data() + buf.size();
      const char* stop = skip(buf.data(), end);
      const char* expected = in_class(static_cast<char>(c)) ? end : buf.data() + pos;
      ASSERT_EQ(stop, expected) << "byte " << c << " at " << pos;
      // A shorter input ends the scan at its end.
      ASSERT_EQ(skip(buf.data(), buf.data() + pos), buf.data() + pos);
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
  EXPECT_EQ(SkipTokenChars(name.data(), name.data() + name.size()), name.data() + name.size() - 1);
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
