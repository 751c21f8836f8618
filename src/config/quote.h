#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace l7px::config {

// Quotes text for an error message: escapes quotes, backslashes and control bytes (and, unless
// `keep_utf8`, every byte >= 0x7f), and truncates long input with "...".
std::string QuoteForMessage(std::string_view text, bool keep_utf8);

// Edit distance, for "did you mean" hints on misspelt keys (inputs are short).
size_t EditDistance(std::string_view a, std::string_view b);

// Whether `s` holds a control character (below 0x20, or 0x7f).
bool HasControlChar(std::string_view s);

}  // namespace l7px::config
