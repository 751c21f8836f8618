// Integration: server.busy_poll. A worker that forwarded a request and has nothing else to do
// normally sleeps until the service answers, and again until the client's next request; with
// busy_poll it polls its ring instead, and those sleeps (voluntary context switches) go away.

#include <gtest/gtest.h>
#include <signal.h>

#include <string>

#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

constexpr int kRequests = 300;

class BusyPollTest : public IntegrationTest {
 protected:
  // Voluntary context switches of the worker thread per request, over kRequests sequential
  // requests on one keep-alive connection; -1 when a request failed. (Not the process's: the
  // access log's file writes go through io_uring's own kernel threads, which sleep per write.)
  double SleepsPerRequest() {
    UniqueFd client = ConnectTcp(front());
    std::string carry;
    const long before = VoluntarySwitches(h().proxy().pid(), "l7px-worker-");
    for (int i = 0; i < kRequests; ++i) {
      if (!SendAll(client.get(), GetRequest("/poll")) ||
          StatusOf(RecvHttpResponse(client.get(), &carry, kIo)) != 200) {
        return -1;
      }
    }
    const long after = VoluntarySwitches(h().proxy().pid(), "l7px-worker-");
    return static_cast<double>(after - before) / kRequests;
  }
};

TEST_F(BusyPollTest, WorkerPollsInsteadOfSleepingAndAReloadTurnsItOn) {
  ASSERT_TRUE(StartProxy(kDefaultPool, "", "", /*workers=*/1)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1", "--service-id", "poll"}), nullptr);

  const double sleeping = SleepsPerRequest();
  ASSERT_GE(sleeping, 0) << "a request failed";

  h().WriteConfig(kDefaultPool, "busy_poll = \"10ms\"", "", /*workers=*/1);
  h().proxy().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return CountOf(h().ProxyLog(), "config reloaded") == 1; }, kIo))
      << h().ProxyLog();

  const double polling = SleepsPerRequest();
  ASSERT_GE(polling, 0) << "a request failed";
  // Without polling a worker sleeps about twice per request (waiting for the service, then
  // for the client); with it, only when 10 ms pass without a completion.
  EXPECT_LT(polling, 0.5) << "without busy_poll: " << sleeping << " per request";
  EXPECT_LT(polling, sleeping) << "without busy_poll: " << sleeping << " per request";
}

}  // namespace
}  // namespace l7px::testing
