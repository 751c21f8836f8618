#include "config/toml_reader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/strings.h"
#include "config/quote.h"
#include "config/route_rules.h"

namespace l7px::config {

std::string_view TypeName(toml::node_type type) {
  switch (type) {
    case toml::node_type::none:
      return "nothing";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
  }
  return "an unknown type";
}

std::string Shown(std::string_view text) { return QuoteForMessage(text, /*keep_utf8=*/true); }

int LineOf(const toml::node& node) { return static_cast<int>(node.source().begin.line); }

bool TomlReader::Fail(int line, std::string_view path, std::string_view problem) {
  if (path.empty()) {
    error_ = absl::StrCat(ToAbsl(source_), ":", line, ": ", ToAbsl(problem));
  } else {
    error_ = absl::StrCat(ToAbsl(source_), ":", line, ": ", ToAbsl(path), ": ", ToAbsl(problem));
  }
  return false;
}

bool TomlReader::Fail(const toml::node& node, std::string_view path, std::string_view problem) {
  return Fail(LineOf(node), path, problem);
}

bool TomlReader::FailStatus(const toml::node& node, std::string_view path,
                            const absl::Status& status) {
  return Fail(node, path, ToStd(status.message()));
}

bool TomlReader::WrongType(const toml::node& node, std::string_view path,
                           std::string_view expected) {
  return Fail(node, path,
              absl::StrCat("expected ", ToAbsl(expected), ", got ", ToAbsl(TypeName(node.type()))));
}

std::string TomlReader::Join(std::string_view path, std::string_view key) {
  if (path.empty()) return std::string(key);
  return absl::StrCat(ToAbsl(path), ".", ToAbsl(key));
}

std::string TomlReader::Index(std::string_view path, size_t i) {
  return absl::StrCat(ToAbsl(path), "[", i, "]");
}

bool TomlReader::UnknownKey(const toml::key& key, const toml::node& node, std::string_view path,
                            std::initializer_list<std::string_view> allowed) {
  std::string problem = absl::StrCat("unknown key ", Shown(key.str()));
  std::string_view best;
  size_t best_distance = 3;
  if (key.str().size() <= 64) {
    for (std::string_view candidate : allowed) {
      size_t d = EditDistance(key.str(), candidate);
      // "retry" -> "retries": a long shared prefix is as good a hint as a typo.
      const std::string_view k = key.str();
      size_t common = 0;
      while (common < k.size() && common < candidate.size() && k[common] == candidate[common]) {
        ++common;
      }
      if (common >= 4 || (common >= 3 && common == k.size())) d = std::min<size_t>(d, 2);
      if (d < best_distance) {
        best_distance = d;
        best = candidate;
      }
    }
  }
  if (!best.empty()) {
    absl::StrAppend(&problem, " (did you mean \"", ToAbsl(best), "\"?)");
  } else {
    std::vector<std::string> names(allowed.begin(), allowed.end());
    absl::StrAppend(&problem, " (expected one of: ", absl::StrJoin(names, ", "), ")");
  }
  const int line =
      key.source().begin.line != 0 ? static_cast<int>(key.source().begin.line) : LineOf(node);
  if (!path.empty()) return Fail(line, path, problem);
  // A top-level key is its own path, unless it is unprintable (then the problem names it).
  const bool plain = key.str().size() <= 64 && !HasControlChar(key.str());
  return Fail(line, plain ? key.str() : std::string_view(), problem);
}

bool TomlReader::GetTable(const toml::node& node, std::string_view path, const toml::table** out) {
  *out = node.as_table();
  return *out != nullptr || WrongType(node, path, "a table");
}

bool TomlReader::GetString(const toml::node& node, std::string_view path, std::string* out) {
  const auto* s = node.as_string();
  if (s == nullptr) return WrongType(node, path, "a string");
  *out = s->get();
  return true;
}

bool TomlReader::GetCleanString(const toml::node& node, std::string_view path, std::string* out) {
  if (!GetString(node, path, out)) return false;
  if (HasControlChar(*out)) return Fail(node, path, "must not contain control characters");
  return true;
}

bool TomlReader::GetInt(const toml::node& node, std::string_view path, int64_t lo, int64_t hi,
                        int64_t* out) {
  const auto* i = node.as_integer();
  if (i == nullptr) return WrongType(node, path, "an integer");
  const int64_t v = i->get();
  if (v < lo || v > hi) {
    return Fail(node, path, absl::StrCat(v, " is out of range (", lo, "..", hi, ")"));
  }
  *out = v;
  return true;
}

bool TomlReader::GetU32(const toml::node& node, std::string_view path, uint32_t lo, uint32_t hi,
                        uint32_t* out) {
  int64_t v = 0;
  if (!GetInt(node, path, lo, hi, &v)) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool TomlReader::GetDuration(const toml::node& node, std::string_view path, Duration min,
                             Duration* out) {
  Duration d{};
  if (const auto* i = node.as_integer()) {
    const int64_t seconds = i->get();
    if (seconds < 0) {
      return Fail(node, path, absl::StrCat("bad duration ", seconds, " (must not be negative)"));
    }
    if (seconds > std::chrono::duration_cast<std::chrono::seconds>(kMaxTimeout).count()) {
      return Fail(node, path, absl::StrCat("duration ", seconds, "s is longer than 24h"));
    }
    d = std::chrono::seconds(seconds);
  } else if (const auto* s = node.as_string()) {
    absl::StatusOr<Duration> parsed = ParseDuration(s->get());
    if (!parsed.ok()) return FailStatus(node, path, parsed.status());
    d = *parsed;
    if (d > kMaxTimeout) {
      return Fail(node, path, absl::StrCat("duration ", Shown(s->get()), " is longer than 24h"));
    }
  } else {
    return WrongType(node, path, "a duration (\"500ms\", \"1s\") or integer seconds");
  }
  if (d < min) {
    return Fail(node, path, absl::StrCat("must be at least ", ToNanos(min) / 1'000'000, "ms"));
  }
  *out = d;
  return true;
}

bool TomlReader::GetSize(const toml::node& node, std::string_view path, uint64_t lo, uint64_t hi,
                         uint64_t* out) {
  uint64_t v = 0;
  if (const auto* i = node.as_integer()) {
    if (i->get() < 0) return Fail(node, path, absl::StrCat("bad size ", i->get()));
    v = static_cast<uint64_t>(i->get());
  } else if (const auto* s = node.as_string()) {
    absl::StatusOr<uint64_t> parsed = ParseSize(s->get());
    if (!parsed.ok()) return FailStatus(node, path, parsed.status());
    v = *parsed;
  } else {
    return WrongType(node, path, "a size (integer bytes or \"16KiB\")");
  }
  if (v < lo || v > hi) {
    return Fail(node, path, absl::StrCat("size ", v, " is out of range (", lo, "..", hi, ")"));
  }
  *out = v;
  return true;
}

bool TomlReader::GetRate(const toml::node& node, std::string_view path, uint64_t hi,
                         uint64_t* out) {
  uint64_t v = 0;
  if (const auto* i = node.as_integer()) {
    if (i->get() < 0) return Fail(node, path, absl::StrCat("bad rate ", i->get()));
    v = static_cast<uint64_t>(i->get());
  } else if (const auto* s = node.as_string()) {
    absl::StatusOr<uint64_t> parsed = ParseRate(s->get());
    if (!parsed.ok()) return FailStatus(node, path, parsed.status());
    v = *parsed;
  } else {
    return WrongType(node, path, "a rate (integer bytes per second or \"1KiB/s\")");
  }
  if (v > hi) return Fail(node, path, absl::StrCat("rate ", v, "/s is too large"));
  *out = v;
  return true;
}

bool TomlReader::GetPercent(const toml::node& node, std::string_view path, uint32_t* out) {
  const auto* s = node.as_string();
  if (s == nullptr) return WrongType(node, path, "a percentage (\"50%\")");
  const std::string_view text = s->get();
  uint32_t v = 0;
  bool ok = text.size() >= 2 && text.size() <= 4 && text.back() == '%';
  for (size_t i = 0; ok && i + 1 < text.size(); ++i) {
    ok = text[i] >= '0' && text[i] <= '9';
    v = v * 10 + static_cast<uint32_t>(text[i] - '0');
  }
  if (!ok || v > 100) {
    return Fail(node, path,
                absl::StrCat("bad percentage ", Shown(text), " (use \"0%\"..\"100%\")"));
  }
  *out = v;
  return true;
}

bool TomlReader::GetPoolName(const toml::node& node, std::string_view path, std::string* out) {
  if (!GetString(node, path, out)) return false;
  if (!IsValidPoolName(*out)) {
    return Fail(node, path,
                absl::StrCat("bad pool name ", Shown(*out), " (1..64 of A-Z a-z 0-9 _ - .)"));
  }
  return true;
}

}  // namespace l7px::config
