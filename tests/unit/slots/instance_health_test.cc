// The instance choice of a lease (Pool::PopForLease) and passive outlier ejection
// (slots/instance_health.h) on their own: real pools and slots, no sockets; time is a number the
// test chooses.
#include "slots/instance_health.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "slots/pool.h"
#include "slots/slot.h"

namespace l7px::slots {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1000 * kMs;

class InstanceHealthTest : public ::testing::Test {
 protected:
  explicit InstanceHealthTest(uint32_t after = 3, int64_t time_ns = 10 * kSec,
                              uint32_t max_percent = 50)
      : pool_(0, "api", Settings(after, time_ns, max_percent), 1) {}

  static PoolSettings Settings(uint32_t after, int64_t time_ns, uint32_t max_percent) {
    PoolSettings s;
    s.eject.after = after;
    s.eject.time_ns = time_ns;
    s.eject.max_percent = max_percent;
    return s;
  }

  // A slot of `instance`, registered at `now_ns` and pushed idle (as the acceptor does).
  Slot* Register(const std::string& instance, int64_t now_ns = 1) {
    owned_.push_back(std::make_unique<Slot>(UniqueFd(), pool_.id(), instance));
    Slot* s = owned_.back().get();
    EXPECT_TRUE(pool_.AttachSlot(*s, instance, now_ns));
    pool_.PushIdle(s);
    return s;
  }

  const Instance& Of(const Slot* s) { return pool_.instances().at(s->instance); }

  // Fails `n` exchanges on `slot` at `now_ns`.
  void Fail(const Slot* slot, int n, int64_t now_ns) {
    for (int i = 0; i < n; ++i) ReportResponse(pool_, slot, 500, now_ns);
  }

  Pool pool_;
  std::vector<std::unique_ptr<Slot>> owned_;
};

TEST_F(InstanceHealthTest, LeasesTakeTurnsAcrossInstances) {
  Register("a", 1);
  Register("a", 1);
  Register("b", 2);
  Register("b", 2);
  std::map<std::string, int> seen;
  for (int64_t t = 10; t < 110; ++t) {
    Slot* s = pool_.PopForLease(t);
    ASSERT_NE(s, nullptr);
    ++seen[s->service_id()];
    pool_.PushIdle(s);  // back at once: the pool is never saturated
  }
  EXPECT_EQ(seen["a"], 50);
  EXPECT_EQ(seen["b"], 50);
}

TEST_F(InstanceHealthTest, WithinAnInstanceTheMostRecentlyIdleSlotGoesFirst) {
  Slot* first = Register("a");
  Slot* second = Register("a");
  EXPECT_EQ(pool_.PopForLease(10), second);
  EXPECT_EQ(pool_.PopForLease(11), first);
  pool_.PushIdle(first);
  pool_.PushIdle(second);
  EXPECT_EQ(pool_.PopForLease(12), second);
}

TEST_F(InstanceHealthTest, ANewInstanceGoesFirstTheNewestFirst) {
  Slot* old = Register("old", 1);
  pool_.PushIdle(pool_.PopForLease(5));  // "old" had a turn
  Slot* a = Register("a", 10);
  Slot* b = Register("b", 20);
  EXPECT_EQ(pool_.PopForLease(30), b);
  EXPECT_EQ(pool_.PopForLease(31), a);
  EXPECT_EQ(pool_.PopForLease(32), old);
  EXPECT_EQ(pool_.PopForLease(33), nullptr);
}

TEST_F(InstanceHealthTest, AFastInstanceDoesNotTakeEveryTurn) {
  // "fast" returns its slot at once; "slow" holds each of its slots for a while. Every turn of
  // slow's that finds one of its slots idle is taken.
  Register("fast", 1);
  Register("slow", 1);
  Register("slow", 1);
  std::map<std::string, int> seen;
  std::vector<Slot*> held;
  for (int64_t t = 10; t < 210; ++t) {
    if (t % 4 == 0 && !held.empty()) {  // slow finishes one every 4 ticks
      pool_.PushIdle(held.front());
      held.erase(held.begin());
    }
    Slot* s = pool_.PopForLease(t);
    if (s == nullptr) continue;
    ++seen[s->service_id()];
    if (s->service_id() == "slow") {
      held.push_back(s);
    } else {
      pool_.PushIdle(s);
    }
  }
  EXPECT_GE(seen["slow"], 45) << seen["fast"];
}

TEST_F(InstanceHealthTest, FailuresInARowBenchTheInstance) {
  Slot* bad = Register("bad");
  Slot* good = Register("good");
  Fail(bad, 2, 100);
  ReportResponse(pool_, bad, 404, 100);  // a success: the count starts over
  Fail(bad, 2, 100);
  EXPECT_EQ(Of(bad).ejected_until_ns.load(), 0);
  EXPECT_EQ(Of(bad).failures.load(), 2u);
  ReportFailure(pool_, bad, 200);  // a reset or a response_timeout counts the same
  EXPECT_EQ(Of(bad).ejected_until_ns.load(), 200 + 10 * kSec);
  EXPECT_EQ(Of(bad).failures.load(), 0u);
  EXPECT_EQ(pool_.instances().ejected.load(), 1);
  EXPECT_EQ(pool_.ejections_total.load(), 1u);
  EXPECT_TRUE(pool_.Benched(*bad));
  EXPECT_FALSE(pool_.Benched(*good));
  // No lease takes its slots, and a slot it registers now is benched too.
  Slot* again = Register("bad", 300);
  EXPECT_EQ(again->instance, bad->instance);
  EXPECT_EQ(pool_.PopForLease(400), good);
  EXPECT_EQ(pool_.PopForLease(401), nullptr);
  EXPECT_FALSE(pool_.HasLeasableIdle());
  EXPECT_TRUE(pool_.AnyIdle());
  // Outcomes of exchanges already under way do not lengthen the bench.
  Fail(bad, 10, 500);
  EXPECT_EQ(Of(bad).ejected_until_ns.load(), 200 + 10 * kSec);
  EXPECT_EQ(pool_.ejections_total.load(), 1u);
}

TEST_F(InstanceHealthTest, TheBenchEndsAtEjectTime) {
  Slot* bad = Register("bad");
  Register("good");
  Fail(bad, 3, 0);
  EXPECT_EQ(ReturnBenched(pool_, 10 * kSec - 1), 0);
  EXPECT_TRUE(pool_.Benched(*bad));
  EXPECT_EQ(ReturnBenched(pool_, 10 * kSec), 1);
  EXPECT_FALSE(pool_.Benched(*bad));
  EXPECT_EQ(pool_.instances().ejected.load(), 0);
  EXPECT_TRUE(pool_.HasLeasableIdle());
  // Its slot is leased again.
  Slot* s1 = pool_.PopForLease(10 * kSec + 1);
  Slot* s2 = pool_.PopForLease(10 * kSec + 2);
  EXPECT_TRUE(s1 == bad || s2 == bad);
}

TEST_F(InstanceHealthTest, FailingSoonAfterReturningDoublesTheBenchUpToFiveMinutes) {
  Slot* bad = Register("bad");
  Register("good");
  int64_t now = 0;
  int64_t expected = 10 * kSec;
  for (int round = 0; round < 8; ++round) {
    Fail(bad, 3, now);
    ASSERT_EQ(Of(bad).ejected_until_ns.load(), now + expected) << "round " << round;
    now += expected;
    ASSERT_EQ(ReturnBenched(pool_, now), 1);
    now += kSec;  // fails again a second after it returned
    expected = std::min(2 * expected, kMaxBenchNs);
  }
  EXPECT_EQ(Of(bad).last_bench_ns.load(), kMaxBenchNs);
  // Back for as long as its last bench lasted: the next bench is eject_time again.
  now += kMaxBenchNs;
  Fail(bad, 3, now);
  EXPECT_EQ(Of(bad).ejected_until_ns.load(), now + 10 * kSec);
}

TEST_F(InstanceHealthTest, MaxEjectedIsAShareOfTheInstancesAndNeverAll) {
  EXPECT_EQ(MaxEjected(0, 50), 0);
  EXPECT_EQ(MaxEjected(1, 50), 0);
  EXPECT_EQ(MaxEjected(1, 100), 0);
  EXPECT_EQ(MaxEjected(2, 50), 1);
  EXPECT_EQ(MaxEjected(2, 49), 0);
  EXPECT_EQ(MaxEjected(2, 100), 1);
  EXPECT_EQ(MaxEjected(3, 50), 1);
  EXPECT_EQ(MaxEjected(4, 50), 2);
  EXPECT_EQ(MaxEjected(10, 0), 0);
}

TEST_F(InstanceHealthTest, AnInstanceAloneIsNeverBenched) {
  Slot* only = Register("only");
  Fail(only, 20, 100);
  EXPECT_FALSE(pool_.Benched(*only));
  EXPECT_EQ(pool_.PopForLease(200), only);
}

TEST_F(InstanceHealthTest, WhenEveryInstanceFailsOneStaysInService) {
  Slot* a = Register("a");
  Slot* b = Register("b");
  Fail(a, 3, 100);
  Fail(b, 3, 100);
  EXPECT_TRUE(pool_.Benched(*a));
  EXPECT_FALSE(pool_.Benched(*b)) << "50% of 2 instances is 1";
  EXPECT_EQ(pool_.PopForLease(200), b);
  EXPECT_EQ(pool_.instances().ejected.load(), 1);
}

TEST_F(InstanceHealthTest, InstancesWithoutSlotsDoNotCountTowardsTheShare) {
  Slot* a = Register("a");
  Slot* b = Register("b");
  // b's only slot dies: one instance with slots left, so a cannot be benched.
  pool_.PopForLease(10);
  pool_.PopForLease(11);
  pool_.SlotGone(*b);
  EXPECT_EQ(pool_.instances().live(), 1);
  Fail(a, 3, 100);
  EXPECT_FALSE(pool_.Benched(*a));
}

class NoEjectionTest : public InstanceHealthTest {
 protected:
  NoEjectionTest() : InstanceHealthTest(/*after=*/0) {}
};

TEST_F(NoEjectionTest, EjectAfterZeroTurnsEjectionOff) {
  Slot* bad = Register("bad");
  Register("good");
  Fail(bad, 100, 100);
  EXPECT_FALSE(pool_.Benched(*bad));
  EXPECT_EQ(pool_.ejections_total.load(), 0u);
}

}  // namespace
}  // namespace l7px::slots
