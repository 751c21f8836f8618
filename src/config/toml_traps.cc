#include "config/toml_traps.h"

#include <string>

namespace l7px::config {

std::optional<Trap> FindTomlTrap(std::string_view text) {
  const size_t n = text.size();
  size_t i = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;  // UTF-8 BOM
  std::string open;        // the [ and { open inside values, innermost last
  char last = '\n';        // last significant byte outside strings and comments
  bool line_start = true;  // at the start of a statement (no open brackets, after a newline)
  bool in_header = false;  // rest of a [table] line: its brackets are not values
  const auto starts = [&](size_t at, std::string_view what) {
    return text.substr(at, what.size()) == what;
  };
  const auto blank = [&](size_t at) { return at < n && (text[at] == ' ' || text[at] == '\t'); };
  const auto high = [&](size_t at) {
    return at < n && static_cast<unsigned char>(text[at]) >= 0x80;
  };
  while (i < n) {
    const char c = text[i];
    if (line_start) {
      if (blank(i)) {
        ++i;
        continue;
      }
      line_start = false;
      if (c == '[') {
        size_t j = i + 1;
        const bool spaced = blank(j);
        while (blank(j)) ++j;
        // "[ [" is an error toml++ reports itself; otherwise look past an optional second '['.
        if (!(spaced && j < n && text[j] == '[')) {
          if (j < n && text[j] == '[') {
            ++j;
            while (blank(j)) ++j;
          }
          if (j < n) {
            const char k = text[j];
            const bool key_start = (k >= 'a' && k <= 'z') || (k >= 'A' && k <= 'Z') ||
                                   (k >= '0' && k <= '9') || k == '_' || k == '-' || k == '"' ||
                                   k == '\'' || k == ']';
            if (!key_start) {
              return Trap{j, "bad table header: expected a key after '['", ']'};
            }
          }
        }
        in_header = true;
        i = j;
        continue;
      }
    }
    if (c == '\n') {
      if (open.empty()) {
        line_start = true;
        last = '\n';
      }
      in_header = false;
      ++i;
    } else if (c == '#') {
      while (i < n && text[i] != '\n') ++i;
    } else if (c == '"' || c == '\'') {
      last = c;
      const bool basic = c == '"';
      const std::string_view triple = basic ? "\"\"\"" : "'''";
      if (starts(i, triple)) {
        for (i += 3; i < n;) {
          if (basic && text[i] == '\\') {
            // A backslash may end a line; toml++ then classifies what follows as whitespace.
            ++i;
            const auto space = [&] {
              return blank(i) || (i < n && (text[i] == '\n' || text[i] == '\r'));
            };
            const bool line_end = space();
            while (space()) ++i;
            if (high(i)) {
              return Trap{i, "non-ASCII character after a backslash in a multi-line string"};
            }
            if (!line_end && i < n) ++i;  // the escaped character
          } else if (starts(i, triple)) {
            // Up to two quotes may precede the closing delimiter: consume the whole run.
            size_t run = 0;
            while (i + run < n && text[i + run] == c && run < 5) ++run;
            i += run;
            break;
          } else {
            ++i;
          }
        }
      } else {
        for (++i; i < n && text[i] != '\n';) {
          if (basic && text[i] == '\\') {
            i += 2;
          } else if (text[i] == c) {
            ++i;
            break;
          } else {
            ++i;
          }
        }
      }
    } else if ((c == '[' || c == '{') && !in_header) {
      open += c;
      last = c;
      ++i;
    } else if ((c == ']' || c == '}') && !in_header) {
      if (!open.empty()) {
        if (c == '}' && open.back() == '[' && (last == '[' || last == ',')) {
          return Trap{i, "expected a value or ']' in the array, got '}'"};
        }
        open.pop_back();
      }
      last = c;
      ++i;
    } else if (!in_header && !blank(i) && c != '\r' &&
               (last == '=' ||
                ((last == '[' || last == ',') && !open.empty() && open.back() == '['))) {
      // A bare value (number, date, boolean): toml++ reads it up to a terminator, quotes and
      // all, testing every byte for whitespace. The first byte is always taken (it may be a
      // stray ','), so the scan advances.
      do {
        if (high(i)) {
          return Trap{i, "non-ASCII character outside a string"};
        }
        ++i;
      } while (i < n && std::string_view(" \t\r\n]},#").find(text[i]) == std::string_view::npos);
      last = text[i - 1];
    } else if (high(i)) {
      return Trap{i, "non-ASCII character outside a string"};
    } else {
      if (!blank(i) && c != '\r') last = c;
      ++i;
    }
  }
  return std::nullopt;
}

}  // namespace l7px::config
