#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>

#include "fmt/format.h"

namespace l7px {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

// Parses "debug" | "info" | "warn" | "error"; returns false on anything else.
bool ParseLogLevel(std::string_view text, LogLevel* out);
std::string_view LogLevelName(LogLevel level);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
inline bool LogEnabled(LogLevel level) {
  extern std::atomic<int> g_log_level;
  return static_cast<int>(level) >= g_log_level.load(std::memory_order_relaxed);
}

// Writes one line "<time> <level> <message>" to stderr with a single write(2).
// Error logging is rare by construction; the data path rate-limits through LogLimiter.
void LogLine(LogLevel level, std::string_view message);

// Allows at most `burst` lines per second per call site; counts what it suppressed.
class LogLimiter {
 public:
  explicit LogLimiter(uint32_t burst = 10) : burst_(burst) {}
  // True when the caller may log now. Thread-safe (relaxed atomics; approximate).
  bool Allow();
  uint64_t suppressed() const { return suppressed_.load(std::memory_order_relaxed); }

 private:
  uint32_t burst_;
  std::atomic<int64_t> window_start_{0};
  std::atomic<uint32_t> used_{0};
  std::atomic<uint64_t> suppressed_{0};
};

}  // namespace l7px

#define L7PX_LOG(level, ...)                                              \
  do {                                                                    \
    if (::l7px::LogEnabled(::l7px::LogLevel::level))                      \
      ::l7px::LogLine(::l7px::LogLevel::level, fmt::format(__VA_ARGS__)); \
  } while (0)

// Logs at most a few lines per second from this call site.
#define L7PX_LOG_LIMITED(level, ...)                                          \
  do {                                                                        \
    static ::l7px::LogLimiter l7px_limiter_;                                  \
    if (::l7px::LogEnabled(::l7px::LogLevel::level) && l7px_limiter_.Allow()) \
      ::l7px::LogLine(::l7px::LogLevel::level, fmt::format(__VA_ARGS__));     \
  } while (0)
