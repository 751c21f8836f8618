// What l7px adds to nlohmann::json (base/strict_json.h): the strict reading of untrusted text
// (unique keys, bounded depth and size, no byte order mark, errors as values with a byte
// offset), the compact always-valid output, and the checked accessors. The grammar itself is
// the library's; InvalidCorpus pins the parts of it that l7px relies on.

#include "base/strict_json.h"

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace l7px {
namespace {

Json MustParse(std::string_view text) {
  absl::StatusOr<Json> v = ParseJson(text);
  EXPECT_TRUE(v.ok()) << text << " -> " << v.status();
  return v.ok() ? *std::move(v) : Json();
}

std::string ErrorOf(std::string_view text, const JsonLimits& limits = {}) {
  absl::StatusOr<Json> v = ParseJson(text, limits);
  if (v.ok()) return "ok";
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(v.status().message());
}

TEST(StrictJsonTest, ParsesValuesAndKeepsMemberOrder) {
  EXPECT_TRUE(MustParse("null").is_null());
  EXPECT_EQ(MustParse(" true "), Json(true));
  EXPECT_EQ(MustParse("\t\r\n 42 \n"), Json(42));
  EXPECT_EQ(MustParse(R"("a\"b\\c\/d\u00e9\ud83d\ude00")"),
            Json("a\"b\\c/d\xC3\xA9\xF0\x9F\x98\x80"));
  const Json v = MustParse(R"({"b": 1, "a": [true, null, "x"], "c": {}})");
  ASSERT_TRUE(v.is_object());
  std::vector<std::string> keys;
  for (const auto& [key, value] : v.items()) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(DumpJson(v), R"({"b":1,"a":[true,null,"x"],"c":{}})");
}

TEST(StrictJsonTest, InvalidCorpus) {
  const std::vector<std::string> bad = {
      "",
      " ",
      "nul",
      "nulll",
      "True",
      "[",
      "]",
      "{",
      "[1,]",
      "[1 2]",
      "{\"a\":1,}",
      "{\"a\" 1}",
      "{a:1}",
      "{'a':1}",
      "{\"a\":}",
      "{1:2}",
      "01",
      "-",
      "+1",
      "1.",
      ".5",
      "1e",
      "1e+",
      "0x10",
      "NaN",
      "Infinity",
      "-Infinity",
      "1e400",
      "-1e99999999999999999999",
      "1 2",
      "\"abc",
      "\"a\nb\"",
      "\"a\tb\"",
      std::string("\"a\0b\"", 5),
      R"("\x41")",
      R"("\u12")",
      R"("\u12g4")",
      R"("\ud83d")",
      R"("\ud83dx")",
      R"("\ud83d\u0041")",
      R"("\ude00")",
      "\"\xC0\xAF\"",          // overlong '/'
      "\"\xE0\x80\xAF\"",      // overlong
      "\"\xED\xA0\x80\"",      // UTF-8 encoded surrogate
      "\"\xF4\x90\x80\x80\"",  // above U+10FFFF
      "\"\xFF\"",
      "\"\xC3\"",        // truncated sequence
      "\xEF\xBB\xBF{}",  // byte order mark
      "/* c */ 1",       // comments
      "{\"a\":1}x",
      "[]]",
      "{\"a\":1,\"a\":2}",
  };
  for (const std::string& text : bad) {
    absl::StatusOr<Json> v = ParseJson(text);
    EXPECT_FALSE(v.ok()) << "accepted: " << text;
    if (!v.ok()) {
      EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_EQ(v.status().message().substr(0, 8), "bad JSON") << v.status();
    }
  }
}

TEST(StrictJsonTest, ErrorsSayWhereAndWhy) {
  EXPECT_EQ(ErrorOf("[1, 2, x]"),
            "bad JSON at byte 7: syntax error while parsing value - invalid literal; last read: "
            "'2, x'");
  EXPECT_EQ(ErrorOf("1 2").substr(0, 20), "bad JSON at byte 2: ");
  EXPECT_NE(ErrorOf("\"ab\x01\"").find("control character"), std::string::npos);
  EXPECT_NE(ErrorOf("1e400").find("number overflow"), std::string::npos);
  EXPECT_EQ(ErrorOf("\xEF\xBB\xBF{}"), "bad JSON at byte 0: byte order mark");
  // The reason quotes the token being read; a long one is cut short.
  const std::string long_token = "\"" + std::string(5000, 'a') + "\x01\"";
  EXPECT_LT(ErrorOf(long_token).size(), 300u);
}

TEST(StrictJsonTest, DuplicateKeysAreErrorsAtEveryDepth) {
  EXPECT_EQ(ErrorOf(R"({"a":1,"b":2,"a":3})"), "bad JSON: duplicate key \"a\"");
  EXPECT_EQ(ErrorOf(R"([{"x":{"k":1,"k":2}}])"), "bad JSON: duplicate key \"k\"");
  // The same key in sibling or nested objects is fine.
  EXPECT_EQ(ErrorOf(R"({"a":{"a":1},"b":[{"a":1},{"a":2}]})"), "ok");
  std::string text = "{";
  for (int i = 0; i < 50000; ++i) text += "\"k" + std::to_string(i) + "\":0,";
  text += "\"k123\":1}";
  EXPECT_EQ(ErrorOf(text), "bad JSON: duplicate key \"k123\"");
}

TEST(StrictJsonTest, DepthLimit) {
  JsonLimits limits;
  limits.max_depth = 4;
  EXPECT_EQ(ErrorOf("[[[[1]]]]", limits), "ok");
  EXPECT_EQ(ErrorOf("[[[[[1]]]]]", limits), "bad JSON: nested too deeply (more than 4 levels)");
  EXPECT_NE(ErrorOf(R"({"a":{"b":{"c":{"d":{}}}}})", limits).find("nested too deeply"),
            std::string::npos);
  EXPECT_EQ(ErrorOf(std::string(64, '[') + std::string(64, ']')), "ok");  // the default: 64
  const std::string deep(200000, '[');
  EXPECT_NE(ErrorOf(deep).find("nested too deeply"), std::string::npos);
  // An absurd limit is clamped rather than trusted.
  limits.max_depth = 1 << 30;
  EXPECT_NE(ErrorOf(deep, limits).find("more than 1000 levels"), std::string::npos);
}

TEST(StrictJsonTest, SizeLimit) {
  JsonLimits limits;
  limits.max_bytes = 8;
  EXPECT_EQ(ErrorOf("[1,2,3]", limits), "ok");
  EXPECT_EQ(ErrorOf("[1,2,3,4]", limits), "bad JSON at byte 8: document larger than 8 bytes");
}

// Every prefix of a valid document is invalid; no input may crash (or abort: the library is
// built without exceptions), mutated bytes included.
TEST(StrictJsonTest, TruncationsAndMutationsNeverCrash) {
  const std::string doc =
      R"({"id": 7, "host": "*.ex\u00e9mple.com", "path": "/a\"b", "client_cidr": ["10.0.0.0/8"],)"
      R"( "header": {"name": "X-Slice", "value": null}, "n": [-1.5e3, 0, true, false]})";
  ASSERT_TRUE(ParseJson(doc).ok());
  for (size_t i = 0; i < doc.size(); ++i) EXPECT_FALSE(ParseJson(doc.substr(0, i)).ok()) << i;
  std::mt19937 rng(12345);
  for (int round = 0; round < 20000; ++round) {
    std::string m = doc;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) m[rng() % m.size()] = static_cast<char>(rng() & 0xFF);
    absl::StatusOr<Json> v = ParseJson(m);
    if (v.ok()) (void)DumpJson(*v);
  }
}

TEST(StrictJsonTest, DumpIsCompactAndKeepsInsertionOrder) {
  Json j = Json::object();
  j["z"] = 1;
  j["a"] = Json::array({-2, uint64_t{18446744073709551615u}, true, nullptr});
  j["c"] = Json::object();
  j["d"] = Json::array();
  j["s"] = "x";
  EXPECT_EQ(DumpJson(j),
            R"({"z":1,"a":[-2,18446744073709551615,true,null],"c":{},"d":[],"s":"x"})");
}

TEST(StrictJsonTest, DumpEscapesAndAlwaysWritesValidJson) {
  EXPECT_EQ(DumpJson(Json(std::string("q\"b\\s/\b\f\n\r\t\x01\x1f\0z", 15))),
            R"("q\"b\\s/\b\f\n\r\t\u0001\u001f\u0000z")");
  EXPECT_EQ(DumpJson(Json("\xC3\xA9\xF0\x9F\x98\x80")), "\"\xC3\xA9\xF0\x9F\x98\x80\"");
  // Invalid UTF-8 (a service id is any header value) becomes U+FFFD; the result parses.
  const std::string out = DumpJson(Json("a\xFF\xC3z"));
  EXPECT_EQ(out, "\"a\xEF\xBF\xBD\xEF\xBF\xBDz\"");
  EXPECT_TRUE(ParseJson(out).ok());
  // Every ASCII byte round-trips.
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  EXPECT_EQ(MustParse(DumpJson(Json(all))), Json(all));
}

TEST(StrictJsonTest, CheckedAccessors) {
  const Json v =
      MustParse(R"({"i": -3, "u": 18446744073709551615, "f": 1.5, "s": "7", "n": null})");
  ASSERT_NE(FindMember(v, "i"), nullptr);
  EXPECT_EQ(FindMember(v, "zzz"), nullptr);
  EXPECT_EQ(FindMember(Json::array({1}), "i"), nullptr);  // not an object
  EXPECT_EQ(FindMember(Json(), "i"), nullptr);
  EXPECT_EQ(JsonInt64(FindMember(v, "i")), -3);
  EXPECT_EQ(JsonInt64(FindMember(v, "u")), std::nullopt);  // beyond int64
  EXPECT_EQ(JsonInt64(FindMember(v, "f")), std::nullopt);
  EXPECT_EQ(JsonInt64(FindMember(v, "s")), std::nullopt);
  EXPECT_EQ(JsonInt64(FindMember(v, "n")), std::nullopt);
  EXPECT_EQ(JsonInt64(nullptr), std::nullopt);
  const Json max = MustParse(R"({"x": 9223372036854775807})");
  EXPECT_EQ(JsonInt64(FindMember(max, "x")), INT64_MAX);
}

}  // namespace
}  // namespace l7px
