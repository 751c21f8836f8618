// The wait-queue policy (proxy/dispatch/dispatcher.h) on its own: real pools and slots, no
// sockets, no threads; time is a number the test chooses.
#include "proxy/dispatch/dispatcher.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
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
  slots::Slot* IdleSlot() {
    owned_.push_back(std::make_unique<slots::Slot>(UniqueFd(), pool_.id(), "svc"));
    slots::Slot* s = owned_.back().get();
    pool_.registered.fetch_add(1);
    EXPECT_TRUE(pool_.idle().Bind(s));
    pool_.idle().Push(s);
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
  pool_.idle().TryPop();
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
  pool_.idle().TryPop();
  pool_.idle().TryPop();
  pool_.idle().Push(live);
  pool_.idle().Push(dead);
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

}  // namespace
}  // namespace l7px::proxy
