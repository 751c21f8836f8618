#include "base/log.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace l7px {
namespace {

class LogLevelGuard {
 public:
  LogLevelGuard() : saved_(GetLogLevel()) {}
  ~LogLevelGuard() { SetLogLevel(saved_); }

 private:
  LogLevel saved_;
};

TEST(LogTest, ParseAndNameRoundTrip) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    LogLevel parsed = LogLevel::kDebug;
    ASSERT_TRUE(ParseLogLevel(LogLevelName(level), &parsed));
    EXPECT_EQ(parsed, level);
  }
  EXPECT_EQ(LogLevelName(LogLevel::kWarn), "warn");
  LogLevel untouched = LogLevel::kError;
  for (std::string_view bad : {"", "INFO", "warning", "info ", "trace"}) {
    EXPECT_FALSE(ParseLogLevel(bad, &untouched)) << bad;
  }
  EXPECT_EQ(untouched, LogLevel::kError);
}

TEST(LogTest, LevelGatesOutput) {
  LogLevelGuard guard;
  SetLogLevel(LogLevel::kWarn);
  EXPECT_EQ(GetLogLevel(), LogLevel::kWarn);
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kWarn));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));

  int evaluated = 0;
  auto count = [&evaluated] { return ++evaluated; };
  testing::internal::CaptureStderr();
  L7PX_LOG(kInfo, "hidden {}", count());
  L7PX_LOG(kError, "shown {}", count());
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(evaluated, 1);  // arguments of a disabled level are not evaluated
  EXPECT_THAT(out, testing::Not(testing::HasSubstr("hidden")));
  EXPECT_THAT(out, testing::HasSubstr("error shown 1\n"));
}

TEST(LogTest, LineFormat) {
  testing::internal::CaptureStderr();
  LogLine(LogLevel::kInfo, "hello world");
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_THAT(out, testing::MatchesRegex(
                       "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                       "info hello world\n"));
}

TEST(LogTest, LimiterAllowsBurstThenCounts) {
  LogLimiter limiter(3);
  int allowed = 0;
  for (int i = 0; i < 10; ++i) allowed += limiter.Allow() ? 1 : 0;
  // All ten calls fall inside one one-second window unless the machine stalls for a second.
  EXPECT_EQ(allowed, 3);
  EXPECT_EQ(limiter.suppressed(), 7u);
}

}  // namespace
}  // namespace l7px
