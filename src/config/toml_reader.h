#pragma once

// Reading typed values out of a parsed TOML document with errors that name the place: the
// base of the config loader (config.cc). Internal to src/config; it includes toml++ (a heavy
// header), so only the loader's translation units include it.
//
// Every reader returns false after recording the first error as
// "<source>:<line>: <key path>: <problem>" (error()); callers `return` that false at once.

#include <toml++/toml.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "config/config.h"

namespace l7px::config {

// The longest timeout a duration key takes.
inline constexpr Duration kMaxTimeout = std::chrono::hours(24);

// A value as error messages show it (quoted, control bytes escaped).
std::string Shown(std::string_view text);
int LineOf(const toml::node& node);
// "a string", "an integer", ...: what a node is, for "expected X, got Y".
std::string_view TypeName(toml::node_type type);

class TomlReader {
 public:
  explicit TomlReader(std::string_view source) : source_(source) {}
  const std::string& error() const { return error_; }

 protected:
  // Records an error; returns false so callers can `return Fail(...)`.
  bool Fail(int line, std::string_view path, std::string_view problem);
  bool Fail(const toml::node& node, std::string_view path, std::string_view problem);
  bool FailStatus(const toml::node& node, std::string_view path, const absl::Status& status);
  bool WrongType(const toml::node& node, std::string_view path, std::string_view expected);
  static std::string Join(std::string_view path, std::string_view key);
  static std::string Index(std::string_view path, size_t i);
  bool UnknownKey(const toml::key& key, const toml::node& node, std::string_view path,
                  std::initializer_list<std::string_view> allowed);
  bool GetTable(const toml::node& node, std::string_view path, const toml::table** out);
  bool GetString(const toml::node& node, std::string_view path, std::string* out);
  // A string without control characters (it may end up in headers, logs or paths).
  bool GetCleanString(const toml::node& node, std::string_view path, std::string* out);
  bool GetInt(const toml::node& node, std::string_view path, int64_t lo, int64_t hi, int64_t* out);
  bool GetU32(const toml::node& node, std::string_view path, uint32_t lo, uint32_t hi,
              uint32_t* out);
  bool GetDuration(const toml::node& node, std::string_view path, Duration min, Duration* out);
  bool GetSize(const toml::node& node, std::string_view path, uint64_t lo, uint64_t hi,
               uint64_t* out);
  // Bytes per second: an integer, or a string "<size>/s".
  bool GetRate(const toml::node& node, std::string_view path, uint64_t hi, uint64_t* out);
  // A share: a string "0%".."100%" (whole percents).
  bool GetPercent(const toml::node& node, std::string_view path, uint32_t* out);
  bool GetPoolName(const toml::node& node, std::string_view path, std::string* out);

  // A string or an array of strings, each handed to `each(node, path, text)`.
  template <typename Fn>
  bool ForEachString(const toml::node& node, std::string_view path, Fn each) {
    if (const auto* s = node.as_string()) return each(node, path, s->get());
    const auto* array = node.as_array();
    if (array == nullptr) return WrongType(node, path, "a string or an array of strings");
    for (size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string element_path = Index(path, i);
      const auto* s = element.as_string();
      if (s == nullptr) return WrongType(element, element_path, "a string");
      if (!each(element, element_path, s->get())) return false;
    }
    return true;
  }

  std::string source_;
  std::string error_;
};

}  // namespace l7px::config
