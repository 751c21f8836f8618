#include "base/json.h"

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace l7px {
namespace {

JsonValue MustParse(std::string_view text) {
  absl::StatusOr<JsonValue> v = ParseJson(text);
  EXPECT_TRUE(v.ok()) << text << " -> " << v.status();
  return v.ok() ? *std::move(v) : JsonValue();
}

std::string ErrorOf(std::string_view text, const JsonLimits& limits = {}) {
  absl::StatusOr<JsonValue> v = ParseJson(text, limits);
  if (v.ok()) return "ok";
  EXPECT_EQ(v.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(v.status().message());
}

TEST(JsonParseTest, Scalars) {
  EXPECT_TRUE(MustParse("null").is_null());
  EXPECT_TRUE(MustParse(" true ").bool_value());
  EXPECT_TRUE(MustParse("false").is_bool());
  EXPECT_FALSE(MustParse("false").bool_value());
  EXPECT_EQ(MustParse("\"hi\"").string(), "hi");
  EXPECT_EQ(MustParse("\t\r\n 42 \n").int64(), 42);
}

TEST(JsonParseTest, ObjectKeepsMemberOrderAndFinds) {
  const JsonValue v = MustParse(R"({"b": 1, "a": [true, null, "x"], "c": {}})");
  ASSERT_TRUE(v.is_object());
  ASSERT_EQ(v.members().size(), 3u);
  EXPECT_EQ(v.members()[0].first, "b");
  EXPECT_EQ(v.members()[1].first, "a");
  EXPECT_EQ(v.members()[2].first, "c");
  const JsonValue* a = v.Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->items().size(), 3u);
  EXPECT_TRUE(a->items()[0].bool_value());
  EXPECT_TRUE(a->items()[1].is_null());
  EXPECT_EQ(a->items()[2].string(), "x");
  EXPECT_TRUE(v.Find("c")->is_object());
  EXPECT_TRUE(v.Find("c")->members().empty());
  EXPECT_EQ(v.Find("zzz"), nullptr);
  EXPECT_EQ(a->Find("b"), nullptr);  // not an object
}

TEST(JsonParseTest, MismatchedAccessorsAreNeutral) {
  const JsonValue v = MustParse("[1]");
  EXPECT_EQ(v.string(), "");
  EXPECT_TRUE(v.members().empty());
  EXPECT_FALSE(v.bool_value());
  EXPECT_EQ(v.number(), 0.0);
  EXPECT_EQ(v.int64(), std::nullopt);
  EXPECT_TRUE(MustParse("\"s\"").items().empty());
}

TEST(JsonParseTest, Numbers) {
  EXPECT_EQ(MustParse("0").int64(), 0);
  EXPECT_EQ(MustParse("-0").int64(), 0);
  EXPECT_EQ(MustParse("-17").int64(), -17);
  EXPECT_DOUBLE_EQ(MustParse("3.25").number(), 3.25);
  EXPECT_EQ(MustParse("3.25").int64(), std::nullopt);
  EXPECT_EQ(MustParse("1.0").int64(), 1);
  EXPECT_EQ(MustParse("2e3").int64(), 2000);
  EXPECT_EQ(MustParse("2E+3").int64(), 2000);
  EXPECT_DOUBLE_EQ(MustParse("-1.5e-3").number(), -0.0015);
  EXPECT_EQ(MustParse("9223372036854775807").int64(), INT64_MAX);
  EXPECT_EQ(MustParse("-9223372036854775808").int64(), INT64_MIN);
  // Integer literals are exact even beyond 2^53.
  EXPECT_EQ(MustParse("9007199254740993").int64(), 9007199254740993);
  // Beyond int64: still a valid number, but not an int64.
  const JsonValue big = MustParse("9223372036854775808");
  EXPECT_EQ(big.int64(), std::nullopt);
  EXPECT_DOUBLE_EQ(big.number(), 9223372036854775808.0);
  EXPECT_EQ(MustParse("1e300").int64(), std::nullopt);
  // Underflow is zero; overflow is an error.
  EXPECT_EQ(MustParse("1e-400").number(), 0.0);
  EXPECT_EQ(MustParse("0.0000001e-400").number(), 0.0);
  EXPECT_NE(ErrorOf("1e400").find("out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("-1e99999999999999999999").find("out of range"), std::string::npos);
  EXPECT_NE(ErrorOf("0.001e312").find("out of range"), std::string::npos);
  EXPECT_EQ(MustParse("0.001e310").number(), 1e307);
}

TEST(JsonParseTest, StringEscapes) {
  EXPECT_EQ(MustParse(R"("a\"b\\c\/d\b\f\n\r\t")").string(), "a\"b\\c/d\b\f\n\r\t");
  EXPECT_EQ(MustParse(R"("\u0041\u00e9\u20AC")").string(), "A\xC3\xA9\xE2\x82\xAC");
  EXPECT_EQ(MustParse(R"("\u0000")").string(), std::string(1, '\0'));
  // Surrogate pair -> U+1F600 as 4-byte UTF-8.
  EXPECT_EQ(MustParse(R"("\ud83d\ude00")").string(), "\xF0\x9F\x98\x80");
  EXPECT_EQ(MustParse(R"("\uDBFF\uDFFF")").string(), "\xF4\x8F\xBF\xBF");
  // Raw UTF-8 passes through.
  EXPECT_EQ(MustParse("\"\xC3\xA9\xF0\x9F\x98\x80\"").string(), "\xC3\xA9\xF0\x9F\x98\x80");
}

TEST(JsonParseTest, InvalidCorpus) {
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
      "\xEF\xBB\xBF{}",  // BOM
      "{\"a\":1}x",
      "[]]",
      "{\"a\":1,\"a\":2}",
  };
  for (const std::string& text : bad) {
    absl::StatusOr<JsonValue> v = ParseJson(text);
    EXPECT_FALSE(v.ok()) << "accepted: " << text;
    if (!v.ok()) {
      EXPECT_EQ(v.status().message().substr(0, 16), "bad JSON at byte");
    }
  }
}

TEST(JsonParseTest, ErrorsCarryTheByteOffset) {
  EXPECT_EQ(ErrorOf("[1, 2, x]"), "bad JSON at byte 7: expected a value");
  EXPECT_EQ(ErrorOf("{\"a\":1,\"b\":2,\"a\":3}"), "bad JSON at byte 13: duplicate key");
  EXPECT_EQ(ErrorOf("\"\\ud83d\""), "bad JSON at byte 1: high surrogate without a low surrogate");
  EXPECT_EQ(ErrorOf("1 2"), "bad JSON at byte 2: unexpected data after the value");
  EXPECT_EQ(ErrorOf("\"ab\x01\""), "bad JSON at byte 3: control character in a string");
}

TEST(JsonParseTest, DepthLimit) {
  JsonLimits limits;
  limits.max_depth = 4;
  EXPECT_EQ(ErrorOf("[[[[1]]]]", limits), "ok");
  EXPECT_NE(ErrorOf("[[[[[1]]]]]", limits).find("nested too deeply"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"a":{"b":{"c":{"d":{}}}}})", limits).find("nested too deeply"),
            std::string::npos);
  // The default limit holds against very deep input without exhausting the stack.
  const std::string deep(200000, '[');
  EXPECT_NE(ErrorOf(deep).find("nested too deeply"), std::string::npos);
  // An absurd limit is clamped rather than trusted.
  limits.max_depth = 1 << 30;
  EXPECT_NE(ErrorOf(deep, limits).find("nested too deeply"), std::string::npos);
}

TEST(JsonParseTest, SizeLimit) {
  JsonLimits limits;
  limits.max_bytes = 8;
  EXPECT_EQ(ErrorOf("[1,2,3]", limits), "ok");
  EXPECT_NE(ErrorOf("[1,2,3,4]", limits).find("larger than 8 bytes"), std::string::npos);
}

TEST(JsonParseTest, ManyKeysAreCheckedForDuplicatesQuickly) {
  std::string text = "{";
  for (int i = 0; i < 50000; ++i) text += "\"k" + std::to_string(i) + "\":0,";
  text += "\"k123\":1}";
  EXPECT_NE(ErrorOf(text).find("duplicate key"), std::string::npos);
}

// Every prefix of a valid document is either invalid or a complete smaller value; no input may
// crash. Mutated bytes must not crash either.
TEST(JsonParseTest, TruncationsAndMutationsNeverCrash) {
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
    (void)ParseJson(m);
  }
}

TEST(JsonWriterTest, CommasAndNesting) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("a").Int(1);
  w.Key("b").BeginArray().Int(-2).Uint(18446744073709551615ull).Bool(true).Null().EndArray();
  w.Key("c").BeginObject().EndObject();
  w.Key("d").BeginArray().EndArray();
  w.Key("e").BeginArray().BeginObject().Key("x").String("y").EndObject().BeginArray().EndArray();
  w.EndArray();
  w.Key("f").Double(0.5);
  w.Key("g").Double(std::numeric_limits<double>::infinity());
  w.EndObject();
  EXPECT_EQ(out, R"({"a":1,"b":[-2,18446744073709551615,true,null],"c":{},"d":[],)"
                 R"("e":[{"x":"y"},[]],"f":0.5,"g":null})");
  EXPECT_TRUE(ParseJson(out).ok());
}

TEST(JsonWriterTest, TopLevelSequenceOfValues) {
  std::string out;
  JsonWriter(&out).String("x");
  EXPECT_EQ(out, "\"x\"");
}

TEST(JsonWriterTest, Escaping) {
  std::string out;
  AppendJsonString(&out, std::string("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f\0z", 16));
  EXPECT_EQ(out, R"("q\"b\\s/\b\f\n\r\t\u0001\u001f\u007f\u0000z")");
  out.clear();
  AppendJsonString(&out, "\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(out, "\"\xC3\xA9\xF0\x9F\x98\x80\"");
  out.clear();
  // Invalid UTF-8 becomes U+FFFD per bad byte; the result parses.
  AppendJsonString(&out, "a\xFF\xC3z");
  EXPECT_EQ(out, "\"a\xEF\xBF\xBD\xEF\xBF\xBDz\"");
  EXPECT_TRUE(ParseJson(out).ok());
}

TEST(JsonWriterTest, EveryByteStringRoundTrips) {
  std::string all;
  for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  all += "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  std::string out;
  JsonWriter(&out).String(all);
  const JsonValue v = MustParse(out);
  EXPECT_EQ(v.string(), all);
}

TEST(JsonWriterTest, DocumentRoundTrip) {
  const std::string doc =
      R"({"routes":[{"id":7,"host":"*","path":"/","client_cidr":[],"header":null,"pool":"default"},)"
      R"({"id":9007199254740993,"host":"a\u00e9","path":"/x\"y","client_cidr":["::1/128"],)"
      R"("header":{"name":"X-Slice","value":"slow"},"pool":"p"}],"f":-0.25,"e":1e-7,"t":true})";
  const JsonValue v = MustParse(doc);
  std::string out;
  JsonWriter(&out).Value(v);
  const JsonValue again = MustParse(out);
  EXPECT_EQ(again, v);
  EXPECT_EQ(again.Find("routes")->items()[1].Find("id")->int64(), 9007199254740993);
  std::string out2;
  JsonWriter(&out2).Value(again);
  EXPECT_EQ(out2, out);  // stable
}

TEST(JsonValueTest, EqualityDistinguishesKindsAndValues) {
  EXPECT_EQ(JsonValue::Int(1), JsonValue::Number(1.0));
  EXPECT_FALSE(JsonValue::Int(1) == JsonValue::String("1"));
  EXPECT_FALSE(JsonValue::Bool(true) == JsonValue::Bool(false));
  EXPECT_FALSE(JsonValue::Array({JsonValue::Int(1)}) == JsonValue::Array({}));
  EXPECT_EQ(JsonValue::Object({{"a", JsonValue::Null()}}), MustParse(R"({"a":null})"));
}

}  // namespace
}  // namespace l7px
