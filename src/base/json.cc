#include "base/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"

namespace l7px {
namespace {

const std::string kEmptyString;
const std::vector<JsonValue> kEmptyItems;
const std::vector<JsonValue::Member> kEmptyMembers;

constexpr int kHardMaxDepth = 1000;

// Length of the valid UTF-8 sequence at s[i] (RFC 3629: no overlongs, no surrogates, at most
// U+10FFFF), or 0 when the bytes there are not one.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t len = 0;
  unsigned char lo = 0x80;
  unsigned char hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (s.size() - i < len) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (size_t k = 2; k < len; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return len;
}

void AppendUtf8(std::string* out, uint32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

// Recursive descent; recursion depth is bounded by JsonLimits::max_depth (<= kHardMaxDepth),
// and every read checks the position against the end first.
class JsonParser {
 public:
  JsonParser(std::string_view text, int max_depth) : s_(text), max_depth_(max_depth) {}

  absl::StatusOr<JsonValue> ParseDocument() {
    JsonValue value;
    SkipWhitespace();
    if (!ParseValue(&value, 0)) return Error();
    SkipWhitespace();
    if (pos_ != s_.size()) {
      Fail("unexpected data after the value");
      return Error();
    }
    return value;
  }

 private:
  absl::Status Error() const {
    return absl::InvalidArgumentError(fmt::format("bad JSON at byte {}: {}", error_pos_, error_));
  }

  bool Fail(std::string_view reason) { return FailAt(pos_, reason); }
  bool FailAt(size_t pos, std::string_view reason) {
    error_pos_ = pos;
    error_ = reason;
    return false;
  }

  bool AtEnd() const { return pos_ >= s_.size(); }

  void SkipWhitespace() {
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
      ++pos_;
    }
  }

  bool ConsumeLiteral(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool ParseValue(JsonValue* out, int depth) {
    if (AtEnd()) return Fail("unexpected end of input");
    switch (s_[pos_]) {
      case '{':
        return ParseObject(out, depth + 1);
      case '[':
        return ParseArray(out, depth + 1);
      case '"':
        out->kind_ = JsonValue::Kind::kString;
        return ParseString(&out->string_);
      case 't':
        out->kind_ = JsonValue::Kind::kBool;
        out->bool_ = true;
        return ConsumeLiteral("true");
      case 'f':
        out->kind_ = JsonValue::Kind::kBool;
        out->bool_ = false;
        return ConsumeLiteral("false");
      case 'n':
        out->kind_ = JsonValue::Kind::kNull;
        return ConsumeLiteral("null");
      default:
        if (s_[pos_] == '-' || IsDigit(s_[pos_])) return ParseNumber(out);
        return Fail("expected a value");
    }
  }

  bool ParseObject(JsonValue* out, int depth) {
    if (depth > max_depth_) return Fail("nested too deeply");
    out->kind_ = JsonValue::Kind::kObject;
    std::vector<size_t> key_positions;
    ++pos_;  // '{'
    SkipWhitespace();
    if (!AtEnd() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipWhitespace();
      if (AtEnd() || s_[pos_] != '"') return Fail("expected a string key");
      key_positions.push_back(pos_);
      std::string key;
      if (!ParseString(&key)) return false;
      SkipWhitespace();
      if (AtEnd() || s_[pos_] != ':') return Fail("expected ':'");
      ++pos_;
      SkipWhitespace();
      out->members_.emplace_back(std::move(key), JsonValue());
      if (!ParseValue(&out->members_.back().second, depth)) return false;
      SkipWhitespace();
      if (AtEnd()) return Fail("unexpected end of input in an object");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        return CheckUniqueKeys(*out, key_positions);
      }
      return Fail("expected ',' or '}'");
    }
  }

  // Sorting keeps this O(n log n): a 1 MiB object can hold ~100k keys.
  bool CheckUniqueKeys(const JsonValue& object, const std::vector<size_t>& key_positions) {
    const std::vector<JsonValue::Member>& members = object.members_;
    std::vector<uint32_t> order(members.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
      if (members[a].first != members[b].first) return members[a].first < members[b].first;
      return a < b;
    });
    for (size_t k = 1; k < order.size(); ++k) {
      if (members[order[k]].first == members[order[k - 1]].first) {
        return FailAt(key_positions[order[k]], "duplicate key");
      }
    }
    return true;
  }

  bool ParseArray(JsonValue* out, int depth) {
    if (depth > max_depth_) return Fail("nested too deeply");
    out->kind_ = JsonValue::Kind::kArray;
    ++pos_;  // '['
    SkipWhitespace();
    if (!AtEnd() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    for (;;) {
      SkipWhitespace();
      out->items_.emplace_back();
      if (!ParseValue(&out->items_.back(), depth)) return false;
      SkipWhitespace();
      if (AtEnd()) return Fail("unexpected end of input in an array");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        return true;
      }
      return Fail("expected ',' or ']'");
    }
  }

  // Reads 4 hex digits after "\u" at pos_.
  bool ParseHex4(uint32_t* out) {
    if (s_.size() - pos_ < 4) return Fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const int d = HexDigit(s_[pos_ + k]);
      if (d < 0) return FailAt(pos_ + k, "bad hex digit in \\u escape");
      v = (v << 4) | static_cast<uint32_t>(d);
    }
    pos_ += 4;
    *out = v;
    return true;
  }

  bool ParseString(std::string* out) {
    ++pos_;  // opening quote
    for (;;) {
      // Copy the run of plain bytes in one go.
      const size_t run_start = pos_;
      while (pos_ < s_.size()) {
        const unsigned char c = static_cast<unsigned char>(s_[pos_]);
        if (c == '"' || c == '\\' || c < 0x20) break;
        if (c < 0x80) {
          ++pos_;
          continue;
        }
        const size_t len = Utf8SequenceLength(s_, pos_);
        if (len == 0) return Fail("invalid UTF-8 in a string");
        pos_ += len;
      }
      out->append(s_.data() + run_start, pos_ - run_start);
      if (AtEnd()) return Fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c != '\\') return Fail("control character in a string");
      const size_t escape_pos = pos_;
      ++pos_;
      if (AtEnd()) return Fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out->push_back('"');
          break;
        case '\\':
          out->push_back('\\');
          break;
        case '/':
          out->push_back('/');
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          uint32_t cp = 0;
          if (!ParseHex4(&cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return FailAt(escape_pos, "lone low surrogate");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.size() - pos_ < 2 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') {
              return FailAt(escape_pos, "high surrogate without a low surrogate");
            }
            pos_ += 2;
            uint32_t low = 0;
            if (!ParseHex4(&low)) return false;
            if (low < 0xDC00 || low > 0xDFFF) {
              return FailAt(escape_pos, "high surrogate without a low surrogate");
            }
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          return FailAt(escape_pos, "bad escape");
      }
    }
  }

  bool ParseNumber(JsonValue* out) {
    const size_t start = pos_;
    bool negative = false;
    if (s_[pos_] == '-') {
      negative = true;
      ++pos_;
    }
    if (AtEnd() || !IsDigit(s_[pos_])) return Fail("expected a digit");
    const size_t int_start = pos_;
    if (s_[pos_] == '0') {
      ++pos_;
      if (!AtEnd() && IsDigit(s_[pos_])) return Fail("leading zero in a number");
    } else {
      while (!AtEnd() && IsDigit(s_[pos_])) ++pos_;
    }
    const size_t int_len = pos_ - int_start;
    bool integral = true;
    size_t frac_leading_zeros = 0;
    bool frac_nonzero = false;
    if (!AtEnd() && s_[pos_] == '.') {
      integral = false;
      ++pos_;
      if (AtEnd() || !IsDigit(s_[pos_])) return Fail("expected a digit after '.'");
      while (!AtEnd() && IsDigit(s_[pos_])) {
        if (s_[pos_] != '0') frac_nonzero = true;
        if (!frac_nonzero) ++frac_leading_zeros;
        ++pos_;
      }
    }
    int64_t exponent = 0;
    if (!AtEnd() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      integral = false;
      ++pos_;
      bool exp_negative = false;
      if (!AtEnd() && (s_[pos_] == '+' || s_[pos_] == '-')) {
        exp_negative = s_[pos_] == '-';
        ++pos_;
      }
      if (AtEnd() || !IsDigit(s_[pos_])) return Fail("expected a digit in the exponent");
      while (!AtEnd() && IsDigit(s_[pos_])) {
        if (exponent < 1'000'000'000) exponent = exponent * 10 + (s_[pos_] - '0');  // saturates
        ++pos_;
      }
      if (exp_negative) exponent = -exponent;
    }
    const std::string_view lexeme = s_.substr(start, pos_ - start);
    out->kind_ = JsonValue::Kind::kNumber;
    double d = 0.0;
    const auto r = std::from_chars(lexeme.data(), lexeme.data() + lexeme.size(), d);
    if (r.ec == std::errc::result_out_of_range) {
      // Decimal magnitude of the leading significant digit decides overflow vs underflow.
      const bool int_is_zero = s_[int_start] == '0';
      const int64_t magnitude = (int_is_zero ? -static_cast<int64_t>(frac_leading_zeros)
                                             : static_cast<int64_t>(int_len)) +
                                exponent;
      if (magnitude > 0) return FailAt(start, "number out of range");
      d = negative ? -0.0 : 0.0;
    } else if (r.ec != std::errc() || r.ptr != lexeme.data() + lexeme.size()) {
      return FailAt(start, "bad number");
    }
    out->number_ = d;
    if (integral) {
      int64_t i = 0;
      const auto ri = std::from_chars(lexeme.data(), lexeme.data() + lexeme.size(), i);
      if (ri.ec == std::errc() && ri.ptr == lexeme.data() + lexeme.size()) {
        out->is_int_ = true;
        out->int_ = i;
      }
    }
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  int max_depth_;
  size_t error_pos_ = 0;
  std::string_view error_;
};

JsonValue JsonValue::Bool(bool b) {
  JsonValue v;
  v.kind_ = Kind::kBool;
  v.bool_ = b;
  return v;
}

JsonValue JsonValue::Number(double d) {
  JsonValue v;
  v.kind_ = Kind::kNumber;
  v.number_ = d;
  return v;
}

JsonValue JsonValue::Int(int64_t i) {
  JsonValue v;
  v.kind_ = Kind::kNumber;
  v.number_ = static_cast<double>(i);
  v.is_int_ = true;
  v.int_ = i;
  return v;
}

JsonValue JsonValue::String(std::string s) {
  JsonValue v;
  v.kind_ = Kind::kString;
  v.string_ = std::move(s);
  return v;
}

JsonValue JsonValue::Array(std::vector<JsonValue> items) {
  JsonValue v;
  v.kind_ = Kind::kArray;
  v.items_ = std::move(items);
  return v;
}

JsonValue JsonValue::Object(std::vector<Member> members) {
  JsonValue v;
  v.kind_ = Kind::kObject;
  v.members_ = std::move(members);
  return v;
}

std::optional<int64_t> JsonValue::int64() const {
  if (kind_ != Kind::kNumber) return std::nullopt;
  if (is_int_) return int_;
  constexpr double kExact = 9007199254740992.0;  // 2^53
  if (std::isfinite(number_) && number_ == std::trunc(number_) && number_ >= -kExact &&
      number_ <= kExact) {
    return static_cast<int64_t>(number_);
  }
  return std::nullopt;
}

const std::string& JsonValue::string() const {
  return kind_ == Kind::kString ? string_ : kEmptyString;
}

const std::vector<JsonValue>& JsonValue::items() const {
  return kind_ == Kind::kArray ? items_ : kEmptyItems;
}

const std::vector<JsonValue::Member>& JsonValue::members() const {
  return kind_ == Kind::kObject ? members_ : kEmptyMembers;
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  if (kind_ != Kind::kObject) return nullptr;
  for (const Member& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

bool JsonValue::operator==(const JsonValue& other) const {
  if (kind_ != other.kind_) return false;
  switch (kind_) {
    case Kind::kNull:
      return true;
    case Kind::kBool:
      return bool_ == other.bool_;
    case Kind::kNumber:
      if (is_int_ && other.is_int_) return int_ == other.int_;
      return number_ == other.number_;
    case Kind::kString:
      return string_ == other.string_;
    case Kind::kArray:
      return items_ == other.items_;
    case Kind::kObject:
      return members_ == other.members_;
  }
  return false;
}

absl::StatusOr<JsonValue> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("bad JSON at byte ", limits.max_bytes,
                                                   ": document larger than ", limits.max_bytes,
                                                   " bytes"));
  }
  const int depth = std::clamp(limits.max_depth, 1, kHardMaxDepth);
  JsonParser parser(text, depth);
  return parser.ParseDocument();
}

void AppendJsonString(std::string* out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t len = Utf8SequenceLength(s, i);
      if (len == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD for each invalid byte
        ++i;
      } else {
        out->append(s.data() + i, len);
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 0xF]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
  out->push_back('"');
}

void JsonWriter::Separate() {
  if (after_key_) {
    after_key_ = false;
  } else if (need_comma_) {
    out_->push_back(',');
  }
}

JsonWriter& JsonWriter::BeginObject() {
  Separate();
  out_->push_back('{');
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::EndObject() {
  out_->push_back('}');
  need_comma_ = true;
  after_key_ = false;
  return *this;
}

JsonWriter& JsonWriter::BeginArray() {
  Separate();
  out_->push_back('[');
  need_comma_ = false;
  return *this;
}

JsonWriter& JsonWriter::EndArray() {
  out_->push_back(']');
  need_comma_ = true;
  after_key_ = false;
  return *this;
}

JsonWriter& JsonWriter::Key(std::string_view key) {
  Separate();
  AppendJsonString(out_, key);
  out_->push_back(':');
  after_key_ = true;
  return *this;
}

JsonWriter& JsonWriter::String(std::string_view s) {
  Separate();
  AppendJsonString(out_, s);
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::Int(int64_t v) {
  Separate();
  fmt::format_to(std::back_inserter(*out_), "{}", v);
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::Uint(uint64_t v) {
  Separate();
  fmt::format_to(std::back_inserter(*out_), "{}", v);
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::Double(double v) {
  if (!std::isfinite(v)) return Null();
  Separate();
  fmt::format_to(std::back_inserter(*out_), "{}", v);
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::Bool(bool v) {
  Separate();
  out_->append(v ? "true" : "false");
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::Null() {
  Separate();
  out_->append("null");
  need_comma_ = true;
  return *this;
}

JsonWriter& JsonWriter::Value(const JsonValue& v) {
  switch (v.kind()) {
    case JsonValue::Kind::kNull:
      return Null();
    case JsonValue::Kind::kBool:
      return Bool(v.bool_value());
    case JsonValue::Kind::kNumber: {
      const std::optional<int64_t> i = v.int64();
      if (i.has_value() && static_cast<double>(*i) == v.number()) return Int(*i);
      return Double(v.number());
    }
    case JsonValue::Kind::kString:
      return String(v.string());
    case JsonValue::Kind::kArray:
      BeginArray();
      for (const JsonValue& item : v.items()) Value(item);
      return EndArray();
    case JsonValue::Kind::kObject:
      BeginObject();
      for (const JsonValue::Member& m : v.members()) Key(m.first).Value(m.second);
      return EndObject();
  }
  return *this;
}

}  // namespace l7px
