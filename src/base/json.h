#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace l7px {

// A parsed JSON document (RFC 8259) as a small tree. Values are immutable once parsed; build
// them with ParseJson (tests may use the static constructors).
class JsonValue {
 public:
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  using Member = std::pair<std::string, JsonValue>;

  JsonValue() = default;  // null
  static JsonValue Null() { return JsonValue(); }
  static JsonValue Bool(bool b);
  static JsonValue Number(double d);
  static JsonValue Int(int64_t i);
  static JsonValue String(std::string s);
  static JsonValue Array(std::vector<JsonValue> items);
  static JsonValue Object(std::vector<Member> members);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }

  // Accessors return a neutral value (false, 0, "", empty) when the kind does not match.
  bool bool_value() const { return kind_ == Kind::kBool && bool_; }
  double number() const { return kind_ == Kind::kNumber ? number_ : 0.0; }
  // The number as an int64 when it is integral and exactly representable: an integer literal
  // in int64 range ("9007199254740993" is exact), or a fraction/exponent form with an integral
  // value within +-2^53 ("1.0", "2e3"). nullopt otherwise (also for non-numbers).
  std::optional<int64_t> int64() const;
  const std::string& string() const;
  const std::vector<JsonValue>& items() const;  // array elements
  const std::vector<Member>& members() const;   // object members, in document order

  // Object member by key (keys are unique: the parser rejects duplicates); nullptr if absent
  // or not an object.
  const JsonValue* Find(std::string_view key) const;

  // Structural equality (numbers compare by value; member order matters).
  bool operator==(const JsonValue& other) const;

 private:
  friend class JsonParser;

  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  bool is_int_ = false;  // int_ holds the exact value of an integer literal
  int64_t int_ = 0;
  double number_ = 0.0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::vector<Member> members_;
};

struct JsonLimits {
  size_t max_bytes = 1 << 20;  // whole input
  int max_depth = 64;          // nested arrays/objects; clamped to 1..1000
};

// Strict RFC 8259 parser for untrusted input: one value with optional surrounding whitespace;
// strings must be valid UTF-8, escapes (incl. \uXXXX surrogate pairs) are decoded to UTF-8,
// lone surrogates and unescaped control characters are errors; numbers follow the JSON grammar
// and must fit a double; duplicate object keys are errors. Never crashes and never throws.
// Errors are InvalidArgument "bad JSON at byte N: reason".
absl::StatusOr<JsonValue> ParseJson(std::string_view text, const JsonLimits& limits = {});

// Appends JSON to a string. Separators are inserted automatically; the caller keeps calls
// balanced (Key before every value inside an object). Strings are escaped; invalid UTF-8 is
// replaced by U+FFFD so the output is always valid JSON.
class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  JsonWriter& BeginObject();
  JsonWriter& EndObject();
  JsonWriter& BeginArray();
  JsonWriter& EndArray();
  JsonWriter& Key(std::string_view key);
  JsonWriter& String(std::string_view s);
  JsonWriter& Int(int64_t v);
  JsonWriter& Uint(uint64_t v);
  JsonWriter& Double(double v);  // shortest round-trip form; NaN/Inf are written as null
  JsonWriter& Bool(bool v);
  JsonWriter& Null();
  JsonWriter& Value(const JsonValue& v);  // a whole parsed tree

 private:
  void Separate();

  std::string* out_;
  bool need_comma_ = false;
  bool after_key_ = false;
};

// Appends `s` as a quoted JSON string.
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace l7px
