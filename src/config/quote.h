#pragma once

#include <string>
#include <string_view>

namespace l7px::config {

// Quotes text for an error message: escapes quotes, backslashes and control bytes (and, unless
// `keep_utf8`, every byte >= 0x7f), and truncates long input with "...".
std::string QuoteForMessage(std::string_view text, bool keep_utf8);

}  // namespace l7px::config
