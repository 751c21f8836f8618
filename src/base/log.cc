#include "base/log.h"

#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "base/clock.h"

namespace l7px {

std::atomic<int> g_log_level{static_cast<int>(LogLevel::kInfo)};

bool ParseLogLevel(std::string_view text, LogLevel* out) {
  if (text == "debug") {
    *out = LogLevel::kDebug;
  } else if (text == "info") {
    *out = LogLevel::kInfo;
  } else if (text == "warn") {
    *out = LogLevel::kWarn;
  } else if (text == "error") {
    *out = LogLevel::kError;
  } else {
    return false;
  }
  return true;
}

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "?";
}

void SetLogLevel(LogLevel level) { g_log_level.store(static_cast<int>(level)); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_log_level.load()); }

void LogLine(LogLevel level, std::string_view message) {
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm parts;
  gmtime_r(&tv.tv_sec, &parts);
  fmt::memory_buffer line;
  fmt::format_to(std::back_inserter(line), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} {}\n",
                 parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min,
                 parts.tm_sec, tv.tv_usec / 1000, LogLevelName(level), message);
  // One write per line so lines from different threads never interleave.
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

bool LogLimiter::Allow() {
  const int64_t now = MonotonicNanos();
  int64_t start = window_start_.load(std::memory_order_relaxed);
  if (now - start > 1'000'000'000) {
    if (window_start_.compare_exchange_strong(start, now, std::memory_order_relaxed)) {
      used_.store(0, std::memory_order_relaxed);
    }
  }
  if (used_.fetch_add(1, std::memory_order_relaxed) < burst_) return true;
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace l7px
