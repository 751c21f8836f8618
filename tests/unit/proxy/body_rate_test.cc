#include "proxy/worker/body_rate.h"

#include <gtest/gtest.h>

namespace l7px::proxy {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

TEST(BodyRateTest, NothingInAWindowIsTooSlowEvenWithoutARate) {
  EXPECT_EQ(JudgeBodyWindow(0, false, kSecond, 0), BodyPace::kTooSlow);
  EXPECT_EQ(JudgeBodyWindow(1, false, kSecond, 0), BodyPace::kKeptUp);
}

TEST(BodyRateTest, RateOverTheElapsedTime) {
  // 1 KiB/s over 2 s wants 2048 bytes.
  EXPECT_EQ(JudgeBodyWindow(2047, false, 2 * kSecond, 1024), BodyPace::kTooSlow);
  EXPECT_EQ(JudgeBodyWindow(2048, false, 2 * kSecond, 1024), BodyPace::kKeptUp);
  // A window judged late (tick granularity) wants proportionally more.
  EXPECT_EQ(JudgeBodyWindow(2048, false, 2 * kSecond + kSecond / 10, 1024), BodyPace::kTooSlow);
}

TEST(BodyRateTest, PausedWindowsAreNotJudged) {
  EXPECT_EQ(JudgeBodyWindow(0, true, 10 * kSecond, 1 << 20), BodyPace::kNotJudged);
}

TEST(BodyRateTest, NoOverflowAtTheLimits) {
  const uint64_t rate = uint64_t{1} << 40;  // the config maximum
  const int64_t day = 24 * 3600 * kSecond;
  EXPECT_EQ(JudgeBodyWindow(UINT64_MAX, false, day, rate), BodyPace::kKeptUp);
  EXPECT_EQ(JudgeBodyWindow(rate * 86399, false, day, rate), BodyPace::kTooSlow);
}

}  // namespace
}  // namespace l7px::proxy
