#include "base/timer_list.h"

#include <gtest/gtest.h>

namespace l7px {
namespace {

TEST(TimerListTest, ExpiresInStartOrder) {
  TimerList list(100);
  TimerNode a, b, c;
  list.Start(&a, 0);
  list.Start(&b, 10);
  list.Start(&c, 20);
  EXPECT_EQ(list.size(), 3u);
  EXPECT_EQ(list.Expired(99), nullptr);
  EXPECT_EQ(list.Expired(100), &a);
  TimerList::Unlink(&a);
  EXPECT_EQ(list.Expired(105), nullptr);
  EXPECT_EQ(list.Expired(110), &b);
}

TEST(TimerListTest, RestartMovesToTheTail) {
  TimerList list(100);
  TimerNode a, b;
  list.Start(&a, 0);
  list.Start(&b, 10);
  list.Start(&a, 50);  // activity: deadline 150, behind b
  EXPECT_EQ(list.front(), &b);
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(list.Expired(120), &b);
}

TEST(TimerListTest, UnlinkFromMiddleAndTwiceIsSafe) {
  TimerList list(1);
  TimerNode a, b, c;
  list.Start(&a, 0);
  list.Start(&b, 0);
  list.Start(&c, 0);
  TimerList::Unlink(&b);
  TimerList::Unlink(&b);
  EXPECT_FALSE(b.linked());
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(list.front(), &a);
  TimerList::Unlink(&a);
  EXPECT_EQ(list.front(), &c);
  TimerList::Unlink(&c);
  EXPECT_TRUE(list.empty());
}

TEST(TimerListTest, MovingBetweenLists) {
  TimerList short_list(10), long_list(1000);
  TimerNode a;
  short_list.Start(&a, 0);
  long_list.Start(&a, 0);
  EXPECT_TRUE(short_list.empty());
  EXPECT_EQ(long_list.front(), &a);
  EXPECT_EQ(a.deadline_ns, 1000);
}

}  // namespace
}  // namespace l7px
