// Duration and size literals used by the config ("1.5s", "16KiB"). Integer arithmetic only,
// with explicit overflow checks: these parse untrusted text.

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "base/strings.h"
#include "config/config.h"
#include "config/quote.h"

namespace l7px::config {
namespace {

constexpr uint64_t kMaxNanos = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

std::string ShownAscii(std::string_view text) { return QuoteForMessage(text, /*keep_utf8=*/false); }

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Consumes leading digits into *value; false when there are none or they overflow.
bool TakeInteger(std::string_view* text, uint64_t* value) {
  uint64_t v = 0;
  size_t i = 0;
  for (; i < text->size() && IsDigit((*text)[i]); ++i) {
    const uint64_t d = static_cast<uint64_t>((*text)[i] - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  if (i == 0) return false;
  text->remove_prefix(i);
  *value = v;
  return true;
}

absl::Status BadDuration(std::string_view text) {
  return absl::InvalidArgumentError(
      absl::StrCat("bad duration ", ShownAscii(text), " (use e.g. 500ms, 1s, 2m)"));
}

absl::Status DurationTooLarge(std::string_view text) {
  return absl::InvalidArgumentError(absl::StrCat("duration ", ShownAscii(text), " is too large"));
}

// Nanoseconds per unit; 0 when `text` does not start with a unit. Sets *len to its length.
uint64_t TakeDurationUnit(std::string_view text, size_t* len) {
  struct Unit {
    std::string_view name;
    uint64_t nanos;
  };
  // Longer names first so "ms" is not read as "m" followed by "s".
  static constexpr Unit kUnits[] = {
      {"ns", 1},         {"us", 1'000},        {"\xc2\xb5s", 1'000},  // µs
      {"ms", 1'000'000}, {"s", 1'000'000'000}, {"m", 60'000'000'000}, {"h", 3'600'000'000'000},
  };
  for (const Unit& unit : kUnits) {
    if (text.substr(0, unit.name.size()) == unit.name) {
      *len = unit.name.size();
      return unit.nanos;
    }
  }
  return 0;
}

}  // namespace

absl::StatusOr<Duration> ParseDuration(std::string_view text) {
  if (text.empty()) return BadDuration(text);
  if (text.front() == '-') {
    return absl::InvalidArgumentError(
        absl::StrCat("bad duration ", ShownAscii(text), " (must not be negative)"));
  }
  std::string_view rest = text;
  uint64_t total = 0;
  // A bare integer is seconds.
  {
    std::string_view probe = rest;
    uint64_t seconds = 0;
    if (TakeInteger(&probe, &seconds) && probe.empty()) {
      if (seconds > kMaxNanos / 1'000'000'000) return DurationTooLarge(text);
      return Duration(static_cast<int64_t>(seconds * 1'000'000'000));
    }
  }
  // One or more "<number>[.<fraction>]<unit>" terms, e.g. "1.5s" or "1m30s".
  while (!rest.empty()) {
    uint64_t whole = 0;
    if (!IsDigit(rest.front())) return BadDuration(text);
    if (!TakeInteger(&rest, &whole)) return DurationTooLarge(text);
    std::string_view fraction;
    if (!rest.empty() && rest.front() == '.') {
      rest.remove_prefix(1);
      size_t n = 0;
      while (n < rest.size() && IsDigit(rest[n])) ++n;
      if (n == 0) return BadDuration(text);
      fraction = rest.substr(0, n);
      rest.remove_prefix(n);
    }
    size_t unit_len = 0;
    const uint64_t unit = TakeDurationUnit(rest, &unit_len);
    if (unit == 0) return BadDuration(text);
    rest.remove_prefix(unit_len);
    if (whole > kMaxNanos / unit) return DurationTooLarge(text);
    uint64_t term = whole * unit;
    // Every unit is a multiple of a power of ten, so digit-by-digit scaling is exact down
    // to the nanosecond; digits below a nanosecond are dropped.
    uint64_t scale = unit;
    for (char c : fraction) {
      scale /= 10;
      term += static_cast<uint64_t>(c - '0') * scale;  // < unit, cannot overflow uint64
    }
    if (term > kMaxNanos || total > kMaxNanos - term) return DurationTooLarge(text);
    total += term;
  }
  return Duration(static_cast<int64_t>(total));
}

absl::StatusOr<uint64_t> ParseSize(std::string_view text) {
  const auto bad = [text] {
    return absl::InvalidArgumentError(
        absl::StrCat("bad size ", ShownAscii(text), " (use e.g. 512, 16KiB, 16MiB)"));
  };
  std::string_view rest = text;
  uint64_t value = 0;
  if (rest.empty() || !IsDigit(rest.front())) return bad();
  if (!TakeInteger(&rest, &value)) {
    return absl::InvalidArgumentError(absl::StrCat("size ", ShownAscii(text), " is too large"));
  }
  std::string unit;
  for (char c : rest) unit += AsciiLower(c);
  uint64_t multiplier = 0;
  if (unit.empty() || unit == "b") {
    multiplier = 1;
  } else {
    static constexpr std::string_view kPrefixes = "kmgt";
    const size_t power = kPrefixes.find(unit.front());
    const std::string_view suffix = std::string_view(unit).substr(1);
    if (power == std::string_view::npos || !(suffix.empty() || suffix == "b" || suffix == "ib")) {
      return bad();
    }
    multiplier = uint64_t{1} << (10 * (power + 1));
  }
  if (value > std::numeric_limits<uint64_t>::max() / multiplier) {
    return absl::InvalidArgumentError(absl::StrCat("size ", ShownAscii(text), " is too large"));
  }
  return value * multiplier;
}

absl::StatusOr<uint64_t> ParseRate(std::string_view text) {
  std::string_view size = text;
  if (size.size() >= 2 && size.substr(size.size() - 2) == "/s") size.remove_suffix(2);
  absl::StatusOr<uint64_t> value = ParseSize(size);
  if (!value.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad rate ", ShownAscii(text), " (use e.g. 512B/s, 1KiB/s, 1MiB/s)"));
  }
  return *value;
}

}  // namespace l7px::config
