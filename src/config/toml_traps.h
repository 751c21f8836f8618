#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace l7px::config {

// Where toml++ must not look, what is wrong there, and a byte that toml++ rejects cleanly in
// its place.
struct Trap {
  size_t offset;
  std::string_view problem;
  char sentinel = '\x01';
};

// toml++ 3.3 asserts (and, under clang with NDEBUG, assumes) things that invalid input breaks:
// a table header's first key character ("[#a]", "[=]"), an array element not starting with '}'
// ("a = [}"); and its non-ASCII whitespace table reaches __builtin_unreachable for most
// non-ASCII characters where whitespace may appear (outside strings, and after a backslash in
// a multi-line basic string). Finds the first such spot so Parse() can keep it from toml++.
// Mirrors toml++'s view of strings, comments and brackets for every input it accepts up to
// there; a divergence can only follow a syntax error toml++ reports first.
std::optional<Trap> FindTomlTrap(std::string_view text);

}  // namespace l7px::config
