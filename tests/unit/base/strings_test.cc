#include "base/strings.h"

#include <string>

#include "absl/container/flat_hash_map.h"
#include "gtest/gtest.h"

namespace l7px {
namespace {

TEST(StringsTest, AbslRoundTrip) {
  const std::string text = "hello";
  absl::string_view a = ToAbsl(text);
  EXPECT_EQ(a.data(), text.data());
  EXPECT_EQ(a.size(), text.size());
  EXPECT_EQ(ToStd(a), "hello");
  EXPECT_TRUE(ToAbsl(std::string_view()).empty());
}

TEST(StringsTest, AsciiLowerOnlyTouchesUpperCaseLetters) {
  EXPECT_EQ(AsciiLower('A'), 'a');
  EXPECT_EQ(AsciiLower('Z'), 'z');
  EXPECT_EQ(AsciiLower('a'), 'a');
  EXPECT_EQ(AsciiLower('@'), '@');  // just below 'A'
  EXPECT_EQ(AsciiLower('['), '[');  // just above 'Z'
  EXPECT_EQ(AsciiLower('0'), '0');
  EXPECT_EQ(AsciiLower('\xc9'), '\xc9');  // non-ASCII untouched
}

TEST(StringsTest, EqualsIgnoreCase) {
  EXPECT_TRUE(EqualsIgnoreCase("Content-Length", "content-length"));
  EXPECT_TRUE(EqualsIgnoreCase("", ""));
  EXPECT_FALSE(EqualsIgnoreCase("Host", "Hosts"));
  EXPECT_FALSE(EqualsIgnoreCase("Host", "Hust"));
  EXPECT_FALSE(EqualsIgnoreCase("[", "{"));  // differ by 0x20 but are not letters
}

TEST(StringsTest, TrimOwsStripsSpacesAndTabsOnly) {
  EXPECT_EQ(TrimOws("  \tvalue\t "), "value");
  EXPECT_EQ(TrimOws("a b"), "a b");
  EXPECT_EQ(TrimOws(" \t "), "");
  EXPECT_EQ(TrimOws(""), "");
  EXPECT_EQ(TrimOws("\r\nx\r\n"), "\r\nx\r\n");
}

TEST(StringsTest, TransparentMapLookupByStringView) {
  absl::flat_hash_map<std::string, int, StringViewHash, StringViewEq> map;
  map["alpha"] = 1;
  map["beta"] = 2;
  const std::string_view key = std::string_view("xalphax").substr(1, 5);
  auto it = map.find(key);
  ASSERT_NE(it, map.end());
  EXPECT_EQ(it->second, 1);
  EXPECT_EQ(map.find(std::string_view("gamma")), map.end());
  EXPECT_EQ(StringViewHash{}(std::string_view("beta")), StringViewHash{}(std::string("beta")));
}

}  // namespace
}  // namespace l7px
