// Integration: the order in which the idle slots of one instance take requests (most recently
// idle first) and the closing of slots that die deep in its idle stack, with slots registered by
// hand (all with one service id, so one instance) so the test sees which connection each request
// arrives on. The order across instances is instance_health_test.cc's.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>

#include <string>
#include <vector>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;

class IdleStackTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    h().EnableAdmin();
    ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"))
        << h().ProxyLog();
  }

  // Registers slots of one instance by hand, one at a time, each counted by the pool before the
  // next.
  void RegisterSlots(int n) {
    for (int i = 0; i < n; ++i) {
      std::string answer;
      slots_.push_back(
          RegisterByHand(h().register_port(), RegistrationHead("", "", "hand"), &answer));
      ASSERT_EQ(StatusOf(answer), 101) << answer;
      ASSERT_TRUE(WaitFor([&] { return Registered() == i + 1; }, kIo)) << "slot " << i;
    }
  }

  int64_t Registered() { return RegisteredSlots(h().admin_port(), "default"); }

  // Sends GET `path` on `client` and returns the index of the slot it arrives on (-1: none
  // within 10 s). The request is left unanswered.
  int SendAndFindSlot(int client, const std::string& path) {
    if (!SendAll(client, GetRequest(path))) return -1;
    std::vector<pollfd> fds;
    for (const UniqueFd& s : slots_) fds.push_back({s.get(), POLLIN, 0});
    if (poll(fds.data(), fds.size(), 10'000) <= 0) return -1;
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      std::string carry;
      EXPECT_THAT(RecvHttpRequest(slots_[i].get(), &carry, kIo), HasSubstr("GET " + path + " "));
      return static_cast<int>(i);
    }
    return -1;
  }

  int64_t Busy() { return PoolCounter(h().admin_port(), "default", "busy"); }

  // Answers the request slot `i` holds, checks the client gets it, and waits until l7px has
  // put the slot back (the client can read the response before the worker returns the slot).
  void Answer(int i, int client) {
    const int64_t busy_before = Busy();
    const std::string body = "slot " + std::to_string(i);
    ASSERT_TRUE(SendAll(slots_[i].get(), "HTTP/1.1 200 OK\r\nContent-Length: " +
                                             std::to_string(body.size()) + "\r\n\r\n" + body));
    std::string carry;
    EXPECT_EQ(BodyOf(RecvHttpResponse(client, &carry, kIo)), body);
    EXPECT_TRUE(WaitFor([&] { return Busy() == busy_before - 1; }, kIo)) << "slot not returned";
  }

  // One request, answered; returns the slot that served it.
  int ServedBy(const std::string& path) {
    UniqueFd client = ConnectTcp(front());
    const int i = SendAndFindSlot(client.get(), path);
    if (i >= 0) Answer(i, client.get());
    return i;
  }

  std::vector<UniqueFd> slots_;
};

TEST_F(IdleStackTest, MostRecentlyIdleSlotTakesTheNextRequest) {
  RegisterSlots(3);
  // The last registered is on top, and a slot returned by a response goes back on top.
  EXPECT_EQ(ServedBy("/first"), 2);
  EXPECT_EQ(ServedBy("/second"), 2);
  // While it is busy, the one below it serves; both return, the last returned on top.
  UniqueFd a = ConnectTcp(front());
  UniqueFd b = ConnectTcp(front());
  ASSERT_EQ(SendAndFindSlot(a.get(), "/held"), 2);
  ASSERT_EQ(SendAndFindSlot(b.get(), "/meanwhile"), 1);
  Answer(1, b.get());
  Answer(2, a.get());
  EXPECT_EQ(ServedBy("/third"), 2);
  EXPECT_EQ(ServedBy("/fourth"), 2);
}

// Slots deep in the stack are never popped under light load; when their service closes them,
// l7px must still close its end at once (not when a burst finally reaches them).
TEST_F(IdleStackTest, SlotsClosedDeepInTheStackAreClosedPromptly) {
  RegisterSlots(5);
  EXPECT_EQ(ServedBy("/warm"), 4);
  const pid_t pid = h().proxy().pid();
  const int fds_before = OpenFds(pid);
  ASSERT_GT(fds_before, 0);
  slots_[0].Reset();
  slots_[1].Reset();
  EXPECT_TRUE(WaitFor([&] { return Registered() == 3; }, kIo)) << Registered();
  EXPECT_TRUE(WaitFor([&] { return OpenFds(pid) <= fds_before - 2; }, std::chrono::seconds(3)))
      << OpenFds(pid) << " descriptors open in l7px, " << fds_before
      << " before two of its slots were closed";
  // The live ones keep their order and serve.
  EXPECT_EQ(ServedBy("/after"), 4);
  UniqueFd a = ConnectTcp(front());
  ASSERT_EQ(SendAndFindSlot(a.get(), "/held"), 4);
  EXPECT_EQ(ServedBy("/below"), 3);
  Answer(4, a.get());
}

}  // namespace
}  // namespace l7px::testing
