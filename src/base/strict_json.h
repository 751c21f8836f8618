#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace l7px {

// l7px's JSON: nlohmann::json (Debian nlohmann-json3-dev), built with JSON_NOEXCEPTION and
// JSON_USE_IMPLICIT_CONVERSIONS=0 (see CMakeLists.txt). Without exceptions a misuse of the
// library (get<T>() on another type, at() on a missing key, dump() of invalid UTF-8 with the
// default handler) aborts the process instead of throwing, so code in src/ reads values only
// after checking their type: is_*(), get_ptr<const T*>() (nullptr on a mismatch), FindMember.
//
// Objects keep their members in insertion (and document) order: the admin API's bodies are an
// interface (docs/operating.md, "Admin API") that people read and diff, and a route's keys are validated in
// the order they were written.
using Json = nlohmann::ordered_json;

struct JsonLimits {
  size_t max_bytes = 1 << 20;  // whole input
  int max_depth = 64;          // nested arrays/objects; clamped to 1..1000
};

// Parses untrusted text: one RFC 8259 value with optional surrounding whitespace, as nlohmann
// reads it (strings valid UTF-8 with escapes decoded, lone surrogates and raw control characters
// rejected, numbers that overflow a double rejected, no comments), and with what l7px adds:
// duplicate object keys are errors (a route with two "pool"s must not mean whichever the parser
// kept), so is a byte order mark (nlohmann skips one), nesting beyond limits.max_depth and input
// beyond limits.max_bytes. Never throws. Errors are InvalidArgument: "bad JSON at byte N: reason"
// for the grammar and the size, "bad JSON: duplicate key \"k\"", "bad JSON: nested too deeply
// (more than N levels)".
absl::StatusOr<Json> ParseJson(std::string_view text, const JsonLimits& limits = {});

// Compact JSON text (no spaces; members in order). Invalid UTF-8 in a string is written as
// U+FFFD, so the output is always valid JSON (nlohmann's default handler would throw).
std::string DumpJson(const Json& json);

// Member `key` of `object`; nullptr when `object` is not an object or has no such member.
const Json* FindMember(const Json& object, std::string_view key);

// An integer value (signed, or unsigned up to INT64_MAX) as int64; nullopt for anything else,
// including nullptr and floating-point numbers.
std::optional<int64_t> JsonInt64(const Json* value);

}  // namespace l7px
