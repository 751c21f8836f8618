#include "base/strict_json.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "fmt/format.h"

namespace l7px {
namespace {

constexpr int kHardMaxDepth = 1000;
constexpr std::string_view kByteOrderMark = "\xEF\xBB\xBF";

// A key or other untrusted text in an error message: quoted, escaped, at most 200 bytes.
std::string Quoted(std::string_view s) { return DumpJson(Json(s.substr(0, 200))); }

// nlohmann's message without its "[json.exception.parse_error.101] parse error at line 1,
// column 8: " prefix (the caller reports the byte offset instead), and cut short: it quotes the
// token it was reading, which may be most of the input.
std::string Reason(std::string_view what) {
  if (const size_t id_end = what.find("] "); what.substr(0, 1) == "[" && id_end != what.npos) {
    what.remove_prefix(id_end + 2);
  }
  if (what.substr(0, 11) == "parse error") {
    if (const size_t colon = what.find(": "); colon != what.npos) what.remove_prefix(colon + 2);
  }
  constexpr size_t kMaxReason = 200;
  if (what.size() <= kMaxReason) return std::string(what);
  return fmt::format("{}...", what.substr(0, kMaxReason));
}

// One pass over the text that checks what l7px asks beyond the JSON grammar (unique keys,
// bounded nesting) and keeps nlohmann's reason for a syntax error, which its DOM parser drops
// when exceptions are off. Builds nothing; the DOM is parsed afterwards from checked text.
class StrictChecker final : public nlohmann::json_sax<Json> {
 public:
  explicit StrictChecker(int max_depth) : max_depth_(max_depth) {}

  const std::string& error() const { return error_; }

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }  // not in JSON text

  bool start_object(std::size_t) override {
    if (!Enter()) return false;
    keys_.emplace_back();
    return true;
  }
  bool key(string_t& key) override {
    if (keys_.back().insert(key).second) return true;
    error_ = fmt::format("bad JSON: duplicate key {}", Quoted(key));
    return false;
  }
  bool end_object() override {
    keys_.pop_back();
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override { return Enter(); }
  bool end_array() override {
    --depth_;
    return true;
  }

  // `position` counts the bytes read, the offending one included.
  bool parse_error(std::size_t position, const std::string&, const Json::exception& e) override {
    error_ =
        fmt::format("bad JSON at byte {}: {}", position > 0 ? position - 1 : 0, Reason(e.what()));
    return false;
  }

 private:
  bool Enter() {
    if (++depth_ <= max_depth_) return true;
    error_ = fmt::format("bad JSON: nested too deeply (more than {} levels)", max_depth_);
    return false;
  }

  const int max_depth_;
  int depth_ = 0;
  std::vector<absl::flat_hash_set<std::string>> keys_;  // of each open object
  std::string error_;
};

}  // namespace

absl::StatusOr<Json> ParseJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(fmt::format(
        "bad JSON at byte {}: document larger than {} bytes", limits.max_bytes, limits.max_bytes));
  }
  if (text.substr(0, kByteOrderMark.size()) == kByteOrderMark) {
    return absl::InvalidArgumentError("bad JSON at byte 0: byte order mark");
  }
  StrictChecker checker(std::clamp(limits.max_depth, 1, kHardMaxDepth));
  if (!Json::sax_parse(text, &checker)) {
    return absl::InvalidArgumentError(checker.error().empty() ? "bad JSON" : checker.error());
  }
  // The same grammar the checker just accepted; no exceptions, so a failure would be a discarded
  // value rather than a throw.
  Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("bad JSON");
  return json;
}

std::string DumpJson(const Json& json) {
  return json.dump(/*indent=*/-1, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

const Json* FindMember(const Json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::optional<int64_t> JsonInt64(const Json* value) {
  if (value == nullptr) return std::nullopt;
  if (value->is_number_integer() && !value->is_number_unsigned()) {
    return value->get<int64_t>();
  }
  if (value->is_number_unsigned()) {
    const uint64_t u = value->get<uint64_t>();
    if (u <= static_cast<uint64_t>(INT64_MAX)) return static_cast<int64_t>(u);
  }
  return std::nullopt;
}

}  // namespace l7px
