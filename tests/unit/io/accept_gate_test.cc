#include "io/accept_gate.h"

#include <gtest/gtest.h>

namespace l7px::io {
namespace {

constexpr int64_t kMs = 1'000'000;

TEST(AcceptGateTest, ConnectionLimit) {
  AcceptGate gate;
  EXPECT_TRUE(gate.Open(0, 0, 0));
  EXPECT_TRUE(gate.Open(0, 1'000'000, 0));  // 0 = no limit
  EXPECT_TRUE(gate.Open(0, 9, 10));
  EXPECT_FALSE(gate.Open(0, 10, 10));
  EXPECT_FALSE(gate.Open(0, 11, 10));  // accepts already in flight may overshoot
}

TEST(AcceptGateTest, ExhaustionPausesWithGrowingBackoffAndLogsOnce) {
  AcceptGate gate;
  EXPECT_TRUE(AcceptGate::IsExhaustion(EMFILE));
  EXPECT_TRUE(AcceptGate::IsExhaustion(ENFILE));
  EXPECT_FALSE(AcceptGate::IsExhaustion(ECONNABORTED));

  int64_t now = 1000 * kMs;
  EXPECT_TRUE(gate.Exhausted(now));  // starts the episode: the one log line
  EXPECT_FALSE(gate.Open(now, 0, 0));
  EXPECT_FALSE(gate.Open(now + 49 * kMs, 0, 0));
  EXPECT_TRUE(gate.Open(now + 50 * kMs, 0, 0));

  // Still failing: 100, 200, 400, 800 ms, then capped at 1 s.
  int64_t expected = 50 * kMs;
  for (int i = 0; i < 8; ++i) {
    now += expected;
    EXPECT_FALSE(gate.Exhausted(now)) << "logged again on failure " << i;
    expected = expected * 2 < 1000 * kMs ? expected * 2 : 1000 * kMs;
    EXPECT_EQ(gate.backoff_ns(), expected);
    EXPECT_FALSE(gate.Open(now + expected - 1, 0, 0));
    EXPECT_TRUE(gate.Open(now + expected, 0, 0));
  }
  EXPECT_EQ(gate.failures(), 9u);
  EXPECT_EQ(gate.episode_start_ns(), 1000 * kMs);

  // The first accept that works ends the episode; the next failure starts over at 50 ms.
  EXPECT_TRUE(gate.Accepted());
  EXPECT_FALSE(gate.Accepted());
  EXPECT_FALSE(gate.exhausted());
  EXPECT_TRUE(gate.Exhausted(now));
  EXPECT_EQ(gate.backoff_ns(), 50 * kMs);
  EXPECT_EQ(gate.failures(), 1u);
}

TEST(AcceptGateTest, LimitAndBackoffBothApply) {
  AcceptGate gate;
  gate.Exhausted(0);
  EXPECT_FALSE(gate.Open(60 * kMs, 10, 10));  // backoff over, still at the limit
  EXPECT_TRUE(gate.Open(60 * kMs, 9, 10));
}

}  // namespace
}  // namespace l7px::io
