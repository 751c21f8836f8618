// The wait-queue policy (proxy/dispatch/dispatcher.h) on its own: real pools and slots, no
// sockets, no threads; time is a number the test chooses.
#include "proxy/dispatch/dispatcher.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "slots/instance_health.h"
#include "slots/slot_lifecycle.h"

namespace l7px::proxy {
namespace {

using Verdict = Dispatcher::Verdict;
using Kind = Dispatcher::Release::Kind;

class DispatcherTest : public ::testing::Test {
 protected:
  explicit DispatcherTest(int workers = 2)
      : pool_(0, "api", slots::PoolSettings{}, workers), d0_(0), d1_(1) {}

  // A registered idle slot pushed to the pool's idle stack (as the acceptor publishes one).
  slots::Slot* IdleSlot(const std::string& instance = "svc") {
    owned_.push_back(std::make_unique<slots::Slot>(UniqueFd(), pool_.id(), instance));
    slots::Slot* s = owned_.back().get();
    pool_.registered.fetch_add(1);
    EXPECT_TRUE(pool_.AttachSlot(*s, instance, ++registered_ns_));
    pool_.PushIdle(s);
    return s;
  }

  slots::RequestLimits Limits(uint32_t queue = 100, int64_t timeout_ns = 1000) {
    slots::RequestLimits l;
    l.queue = queue;
    l.queue_timeout_ns = timeout_ns;
    return l;
  }

  slots::Pool pool_;
  Dispatcher d0_;  // worker 0
  Dispatcher d1_;  // worker 1
  std::vector<std::unique_ptr<slots::Slot>> owned_;
  int64_t registered_ns_ = 0;
};

TEST_F(DispatcherTest, IdleSlotIsLeasedAtOnce) {
  slots::Slot* s = IdleSlot();
  Waiter w;
  const auto a = d0_.Admit(pool_, Limits(), w, 5);
  EXPECT_EQ(a.verdict, Verdict::kStart);
  EXPECT_EQ(a.slot, s);
  EXPECT_EQ(s->state(), slots::Slot::State::kBusy);
  EXPECT_FALSE(w.queued());
  EXPECT_EQ(pool_.busy.load(), 1);
}

TEST_F(DispatcherTest, WaitersAreServedInArrivalOrder) {
  Waiter w[3];
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(d0_.Admit(pool_, Limits(), w[i], 10 + i).verdict, Verdict::kQueued);
  }
  EXPECT_EQ(pool_.waiting.load(), 3);
  EXPECT_FALSE(d0_.ServeNext(pool_, 20)) << "no slot yet";
  for (int i = 0; i < 3; ++i) {
    slots::Slot* s = IdleSlot();
    const auto m = d0_.ServeNext(pool_, 20);
    ASSERT_TRUE(m);
    EXPECT_EQ(m.waiter, &w[i]);
    EXPECT_EQ(m.slot, s);
    EXPECT_FALSE(w[i].queued());
  }
  EXPECT_EQ(pool_.waiting.load(), 0);
  EXPECT_FALSE(d0_.ServeNext(pool_, 30)) << "nobody waits";
}

TEST_F(DispatcherTest, ANewRequestDoesNotBargePastAWaiter) {
  Waiter old_waiter;
  ASSERT_EQ(d0_.Admit(pool_, Limits(), old_waiter, 1).verdict, Verdict::kQueued);
  IdleSlot();  // freed, but not yet handed to the waiter
  Waiter newcomer;
  EXPECT_EQ(d0_.Admit(pool_, Limits(), newcomer, 2).verdict, Verdict::kQueued);
  const auto m = d0_.ServeNext(pool_, 3);
  ASSERT_TRUE(m);
  EXPECT_EQ(m.waiter, &old_waiter);
  EXPECT_TRUE(newcomer.queued());
}

TEST_F(DispatcherTest, ShedsWhenTheQueueIsFull) {
  Waiter w[3];
  EXPECT_EQ(d0_.Admit(pool_, Limits(2), w[0], 1).verdict, Verdict::kQueued);
  EXPECT_EQ(d1_.Admit(pool_, Limits(2), w[1], 2).verdict, Verdict::kQueued);
  // Two wait, on two workers together: the third is shed wherever it arrives.
  EXPECT_EQ(d0_.Admit(pool_, Limits(2), w[2], 3).verdict, Verdict::kShedFull);
  EXPECT_FALSE(w[2].queued());
  EXPECT_EQ(pool_.waiting.load(), 2);
}

TEST_F(DispatcherTest, ShedsAtQueueTimeoutEachWithItsOwnLimit) {
  Waiter short_wait, long_wait;
  ASSERT_EQ(d0_.Admit(pool_, Limits(100, 500), long_wait, 0).verdict, Verdict::kQueued);
  // A reload shortened queue_timeout: the later request keeps its own, shorter one.
  ASSERT_EQ(d0_.Admit(pool_, Limits(100, 100), short_wait, 10).verdict, Verdict::kQueued);
  EXPECT_EQ(d0_.TakeExpired(109), nullptr);
  EXPECT_EQ(d0_.TakeExpired(110), &short_wait);
  EXPECT_EQ(d0_.TakeExpired(110), nullptr);
  EXPECT_FALSE(short_wait.queued());
  EXPECT_EQ(pool_.waiting.load(), 1);
  EXPECT_EQ(d0_.TakeExpired(500), &long_wait);
  EXPECT_EQ(pool_.waiting.load(), 0);
  EXPECT_EQ(d0_.waiting(pool_.id()), 0u);
}

TEST_F(DispatcherTest, AServedWaiterNeverTimesOut) {
  Waiter w;
  ASSERT_EQ(d0_.Admit(pool_, Limits(100, 100), w, 0).verdict, Verdict::kQueued);
  IdleSlot();
  ASSERT_TRUE(d0_.ServeNext(pool_, 50));
  EXPECT_EQ(d0_.TakeExpired(1000), nullptr);
}

TEST_F(DispatcherTest, AFreedSlotGoesToTheOldestWaiterAcrossWorkers) {
  // Worker 1 has waited longer than worker 0.
  Waiter on1, on0;
  ASSERT_EQ(d1_.Admit(pool_, Limits(), on1, 10).verdict, Verdict::kQueued);
  ASSERT_EQ(d0_.Admit(pool_, Limits(), on0, 20).verdict, Verdict::kQueued);
  // Worker 0 finishes with a slot it had leased: it must not keep it for its own waiter.
  slots::Slot* s = IdleSlot();
  ASSERT_TRUE(s->TryLease());
  pool_.PopForLease(25);
  const auto r = d0_.OnRelease(pool_, *s, 30);
  EXPECT_EQ(r.kind, Kind::kReturned);
  EXPECT_EQ(r.wake_worker, 1);
  const auto m = d1_.ServeNext(pool_, 31);
  ASSERT_TRUE(m);
  EXPECT_EQ(m.waiter, &on1);
  EXPECT_EQ(m.slot, s);
  // Now worker 0 holds the oldest (only) waiter: its next freed slot stays with it.
  ASSERT_TRUE(on0.queued());
  const auto r2 = d1_.OnRelease(pool_, *s, 40);
  EXPECT_EQ(r2.kind, Kind::kReturned);
  EXPECT_EQ(r2.wake_worker, 0);
  const auto m2 = d0_.ServeNext(pool_, 41);
  ASSERT_TRUE(m2);
  EXPECT_EQ(m2.waiter, &on0);
  // A release with its own waiter being the oldest serves it directly, no stack round trip.
  Waiter again;
  ASSERT_EQ(d0_.Admit(pool_, Limits(), again, 50).verdict, Verdict::kQueued);
  const auto r3 = d0_.OnRelease(pool_, *s, 60);
  EXPECT_EQ(r3.kind, Kind::kServeLocal);
  EXPECT_EQ(r3.waiter, &again);
  EXPECT_EQ(s->state(), slots::Slot::State::kBusy);
}

TEST_F(DispatcherTest, IdleSlotLeftOverIsPassedToTheWorkerThatWaits) {
  Waiter on1;
  ASSERT_EQ(d1_.Admit(pool_, Limits(), on1, 10).verdict, Verdict::kQueued);
  IdleSlot();
  // Worker 0 was woken but has nobody waiting: worker 1 must be told.
  EXPECT_FALSE(d0_.ServeNext(pool_, 11));
  EXPECT_EQ(d0_.WorkerToPassOn(pool_), 1);
  ASSERT_TRUE(d1_.ServeNext(pool_, 12));
  EXPECT_EQ(d0_.WorkerToPassOn(pool_), -1) << "no idle slot left";
}

TEST_F(DispatcherTest, AClosingPoolShedsNewAndQueuedRequests) {
  Waiter w[2];
  ASSERT_EQ(d0_.Admit(pool_, Limits(), w[0], 1).verdict, Verdict::kQueued);
  ASSERT_EQ(d0_.Admit(pool_, Limits(), w[1], 2).verdict, Verdict::kQueued);
  EXPECT_EQ(d0_.ShedNextClosing(pool_, 3), nullptr) << "open pools shed nothing";
  pool_.set_closing(true);
  Waiter late;
  EXPECT_EQ(d0_.Admit(pool_, Limits(), late, 4).verdict, Verdict::kShedClosing);
  EXPECT_EQ(d0_.ShedNextClosing(pool_, 5), &w[0]);
  EXPECT_EQ(d0_.ShedNextClosing(pool_, 5), &w[1]);
  EXPECT_EQ(d0_.ShedNextClosing(pool_, 5), nullptr);
  EXPECT_EQ(pool_.waiting.load(), 0);
}

TEST_F(DispatcherTest, ASlotReleasedIntoAClosingPoolIsRetired) {
  slots::Slot* s = IdleSlot();
  Waiter w;
  ASSERT_EQ(d0_.Admit(pool_, Limits(), w, 1).verdict, Verdict::kStart);
  pool_.set_closing(true);
  EXPECT_EQ(d0_.OnRelease(pool_, *s, 2).kind, Kind::kRetire);
  EXPECT_EQ(s->state(), slots::Slot::State::kDead);
}

TEST_F(DispatcherTest, DeadIdleSlotsAreHandedBackNotLeased) {
  slots::Slot* dead = IdleSlot();
  ASSERT_TRUE(dead->TryKillIdle(dead->epoch()));  // the acceptor saw its service close it
  slots::Slot* live = IdleSlot();
  // The stack is LIFO: make the dead one the top.
  pool_.PopAnyIdle();
  pool_.PopAnyIdle();
  pool_.PushIdle(live);
  pool_.PushIdle(dead);
  Waiter w;
  const auto a = d0_.Admit(pool_, Limits(), w, 1);
  EXPECT_EQ(a.verdict, Verdict::kStart);
  EXPECT_EQ(a.slot, live);
  ASSERT_EQ(d0_.dead_slots().size(), 1u);
  EXPECT_EQ(d0_.dead_slots()[0], dead);
}

TEST_F(DispatcherTest, RemovingTheOldestWaiterRepublishesTheNext) {
  Waiter first, second;
  ASSERT_EQ(d0_.Admit(pool_, Limits(), first, 10).verdict, Verdict::kQueued);
  ASSERT_EQ(d0_.Admit(pool_, Limits(), second, 20).verdict, Verdict::kQueued);
  Waiter other;
  ASSERT_EQ(d1_.Admit(pool_, Limits(), other, 15).verdict, Verdict::kQueued);
  pool_.SyncPoint();
  EXPECT_EQ(pool_.PickWorkerToWake(-1), 0);  // 10 is the oldest
  d0_.Remove(first);                         // its client went away
  EXPECT_FALSE(first.queued());
  pool_.SyncPoint();
  EXPECT_EQ(pool_.PickWorkerToWake(-1), 1);  // now 15 (worker 1) before 20 (worker 0)
  d0_.Remove(first);                         // a second removal changes nothing
  EXPECT_EQ(pool_.waiting.load(), 2);
  IdleSlot();
  const auto m = d0_.ServeNext(pool_, 30);
  ASSERT_TRUE(m);
  EXPECT_EQ(m.waiter, &second);
}

// Instances: the lease takes turns across them, and a benched one's slots go to nobody.

TEST_F(DispatcherTest, AdmittedRequestsTakeTurnsAcrossInstances) {
  IdleSlot("a");
  IdleSlot("a");
  IdleSlot("b");
  std::string order;
  for (int i = 0; i < 6; ++i) {
    Waiter w;
    const auto a = d0_.Admit(pool_, Limits(), w, 100 + i);
    ASSERT_EQ(a.verdict, Verdict::kStart);
    order += a.slot->service_id();
    EXPECT_EQ(d0_.OnRelease(pool_, *a.slot, 100 + i).kind, Kind::kReturned);
  }
  EXPECT_EQ(order, "bababa");  // the newest instance (b) first
}

// Fails `slot`'s instance until it is benched (the default eject_after is 5).
void Bench(slots::Pool& pool, slots::Slot* slot) {
  for (int i = 0; i < 5; ++i) slots::ReportResponse(pool, slot, 503, 1);
  ASSERT_TRUE(pool.Benched(*slot));
}

TEST_F(DispatcherTest, ABenchedInstanceIsSkippedAndItsFreedSlotGoesToNoWaiter) {
  slots::Slot* bad = IdleSlot("bad");
  slots::Slot* good = IdleSlot("good");
  Waiter w1;
  const auto a1 = d0_.Admit(pool_, Limits(), w1, 10);  // the newest instance first: good
  ASSERT_EQ(a1.slot, good);
  Waiter w2;
  const auto a2 = d0_.Admit(pool_, Limits(), w2, 11);
  ASSERT_EQ(a2.slot, bad);
  Bench(pool_, bad);
  // A request waits (good is busy); bad's slot frees: it must not be handed to the waiter.
  Waiter w3;
  ASSERT_EQ(d0_.Admit(pool_, Limits(), w3, 12).verdict, Verdict::kQueued);
  EXPECT_FALSE(d0_.ServeNext(pool_, 12));
  const auto r = d0_.OnRelease(pool_, *bad, 13);
  EXPECT_EQ(r.kind, Kind::kReturned);
  EXPECT_TRUE(w3.queued());
  EXPECT_FALSE(d0_.ServeNext(pool_, 14)) << "only a benched slot is idle";
  EXPECT_EQ(d1_.WorkerToPassOn(pool_), -1) << "nothing leasable to pass on";
  EXPECT_EQ(bad->state(), slots::Slot::State::kIdle);  // still registered, idle
  // Good's slot frees: the waiter gets it.
  const auto r2 = d0_.OnRelease(pool_, *good, 15);
  EXPECT_EQ(r2.kind, Kind::kServeLocal);
  EXPECT_EQ(r2.waiter, &w3);
  // Back from the bench, its idle slot is leased again.
  EXPECT_EQ(slots::ReturnBenched(pool_, 1 + pool_.settings().eject.time_ns), 1);
  Waiter w4;
  const auto a4 = d0_.Admit(pool_, Limits(), w4, 20);
  ASSERT_EQ(a4.verdict, Verdict::kStart);
  EXPECT_EQ(a4.slot, bad);
}

}  // namespace
}  // namespace l7px::proxy
