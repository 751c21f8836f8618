// Integration: how `l7px connect` is set up and refused: a wrong token (403), an unknown pool
// (404) and a full pool (503) logged once and retried at their pace, the token from
// L7PX_TOKEN, a service on a UNIX socket, and no heap allocation per request in steady state.
// Real l7px processes, the agent and the Python listening service.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "support/admin.h"
#include "support/clients.h"
#include "support/connect_agent.h"
#include "support/integration.h"
#include "support/listening_service.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class ConnectSetupTest : public ConnectTest {
 protected:
  // Rewrites l7px's config with this pool section and reloads it (SIGHUP).
  void Reload(const std::string& pool, int reloads_before) {
    h().WriteConfig(pool, "", kSvcRegister);
    h().proxy().Signal(SIGHUP);
    ASSERT_TRUE(WaitFor(
        [&] { return CountOf(h().ProxyLog(), "config reloaded") == reloads_before + 1; }, kIo))
        << h().ProxyLog();
  }
};

// A wrong token: l7px refuses with 403; the agent logs it once as an error, tries again only
// every few seconds, and registers once l7px's config takes its token (a reload).
TEST_F(ConnectSetupTest, AWrongTokenIsLoggedOnceRetriedSlowlyAndRegistersAfterAReload) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px("2s", "token = \"right\"\n")) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 3, {"--token", "wrong"});
  // Each of the 3 slots tried once and was refused.
  ASSERT_TRUE(
      WaitFor([&] { return RegistrationsMetric(h().admin_port(), "svc", "refused") >= 3; }, kIo));
  std::this_thread::sleep_for(milliseconds(2000));  // the span over which retries are counted
  // The slow pace waits 2.5 s to 5 s before the second try: none yet (at the normal pace,
  // 100 ms doubling, each slot would have tried 4 or 5 times more).
  EXPECT_EQ(RegistrationsMetric(h().admin_port(), "svc", "refused"), 3);
  EXPECT_EQ(Registered(), 0);
  const std::string log = agent_.ReadLog();
  EXPECT_EQ(CountOf(log, "refused the registration"), 1) << log;
  EXPECT_THAT(log, HasSubstr("403 Forbidden: the token is wrong or missing"));
  EXPECT_TRUE(agent_.running());

  Reload(SvcPool("2s", "token = \"wrong\"\n"), 0);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 3; }, milliseconds(12000)));
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/x"))), "a /x");
  EXPECT_EQ(CountOf(agent_.ReadLog(), "refused the registration"), 1);
  EXPECT_THAT(agent_.ReadLog(), HasSubstr("registered with proxy"));
}

// An unknown pool (404) is a configuration error too: logged once, retried slowly.
TEST_F(ConnectSetupTest, AnUnknownPoolIsLoggedOnceAndRetriedSlowly) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 2, {"--pool", "nosuch"});
  // l7px logs each refusal (up to 10 a second): one per slot so far.
  ASSERT_TRUE(
      WaitFor([&] { return CountOf(h().ProxyLog(), "refused with 404: unknown pool") == 2; }, kIo))
      << h().ProxyLog();
  std::this_thread::sleep_for(milliseconds(2000));  // the span over which retries are counted
  // The slow pace waits 2.5 s to 5 s before the second try: none yet.
  EXPECT_EQ(CountOf(h().ProxyLog(), "refused with 404: unknown pool"), 2) << h().ProxyLog();
  const std::string log = agent_.ReadLog();
  EXPECT_EQ(CountOf(log, "refused the registration"), 1) << log;
  EXPECT_THAT(log, HasSubstr("404 Not Found: it has no pool \"nosuch\" (--pool)"));
  EXPECT_TRUE(agent_.running());
  EXPECT_EQ(Registered(), 0);
}

// A pool at max_slots: the slots over it are refused with 503 and tried again at the normal
// pace; the others serve; logged once.
TEST_F(ConnectSetupTest, APoolAtMaxSlotsRefusesTheRestAndTheOthersServe) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px("2s", "max_slots = 2\n")) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 3);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  ASSERT_TRUE(
      WaitFor([&] { return RegistrationsMetric(h().admin_port(), "svc", "refused") >= 1; }, kIo));
  const int64_t refused = RegistrationsMetric(h().admin_port(), "svc", "refused");
  std::this_thread::sleep_for(milliseconds(2000));
  // 100 ms doubling, jittered: a few more tries in 2 s, not a spin.
  const int64_t more = RegistrationsMetric(h().admin_port(), "svc", "refused") - refused;
  EXPECT_GE(more, 1);
  EXPECT_LE(more, 8);
  EXPECT_EQ(Registered(), 2);
  const std::string log = agent_.ReadLog();
  EXPECT_EQ(CountOf(log, "503 Service Unavailable: the pool is at max_slots"), 1) << log;
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/x"))), "a /x");

  // A slot that ends (a close-delimited answer closes it) registers again, and the one left
  // over meets the 503 in turn: the proxy's state is the same, so no new line either time.
  for (int i = 0; i < 2; ++i) {
    const int64_t before = RegistrationsMetric(h().admin_port(), "svc", "refused");
    const CurlResult r = RunCurl({FrontUrl(front(), "/until-close")});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(WaitFor(
        [&] { return RegistrationsMetric(h().admin_port(), "svc", "refused") > before; }, kIo));
  }
  EXPECT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  const std::string after = agent_.ReadLog();
  EXPECT_EQ(CountOf(after, "503 Service Unavailable: the pool is at max_slots"), 1) << after;
  EXPECT_EQ(CountOf(after, "registered with proxy"), 1) << after;
}

// The token from L7PX_TOKEN (off the command line).
TEST_F(ConnectSetupTest, TheTokenComesFromTheEnvironment) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px("2s", "token = \"s3cret\"\n")) << h().ProxyLog();
  StartAgentTo({h().register_port()}, LoopbackAddr(port), 2, {},
               {"/usr/bin/env", "L7PX_TOKEN=s3cret"});
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/x"))), "a /x");
  EXPECT_EQ(RegistrationsMetric(h().admin_port(), "svc", "refused"), 0);
  EXPECT_THAT(ReadFile("/proc/" + std::to_string(agent_.pid()) + "/cmdline"),
              ::testing::Not(HasSubstr("s3cret")));
}

// A service on a UNIX socket (--to unix:/path).
TEST_F(ConnectSetupTest, ForwardsToAServiceOnAUnixSocket) {
  const std::string path = h().dir() + "/svc.sock";
  services().Start("a", "unix:" + path);
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgentTo({h().register_port()}, "unix:" + path, 2);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  std::string carry;
  for (int i = 0; i < 20; ++i) {
    const std::string p = "/u" + std::to_string(i);
    ASSERT_TRUE(SendAll(client.get(), GetRequest(p)));
    ASSERT_EQ(BodyOf(RecvHttpResponse(client.get(), &carry, kIo)), "a " + p);
  }
  const std::string body(100000, 'u');
  const std::string resp = HttpExchange(
      front(), "POST /post HTTP/1.1\r\nHost: test.local\r\nContent-Length: 100000\r\n\r\n" + body);
  EXPECT_EQ(BodyOf(resp), "len=100000 sum=" + std::to_string(ByteSum(body))) << resp;
  const ListeningServiceStats s = services().Stats("a");
  EXPECT_EQ(s.requests, 21);
  EXPECT_LE(s.accepted, 2);  // kept alive over the socket too
}

#ifdef L7PX_ALLOC_COUNTER
// The agent's per-request path allocates nothing once warm: the agent runs with the
// allocation counter preloaded (tests/support/preload/alloc_counter.cc, as l7px in
// steady_state_alloc_test) and 600 more requests (GET and POST, keep-alive, two clients
// through two slots) leave its count where it was.
TEST_F(ConnectSetupTest, SteadyStateRequestsAllocateNothingInTheAgent) {
  const std::string count_path = h().dir() + "/alloc-count";
  UniqueFd fd(open(count_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  ASSERT_TRUE(fd);
  ASSERT_EQ(ftruncate(fd.get(), 2 * sizeof(uint64_t)), 0);
  void* word = mmap(nullptr, 2 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  ASSERT_NE(word, MAP_FAILED);
  volatile uint64_t* count = static_cast<volatile uint64_t*>(word);

  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgentTo(
      {h().register_port()}, LoopbackAddr(port), 2, {},
      {"/usr/bin/env", "LD_PRELOAD=" L7PX_ALLOC_COUNTER, "L7PX_ALLOC_COUNT_FILE=" + count_path});
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  UniqueFd clients[2] = {ConnectTcp(front()), ConnectTcp(front())};
  std::string carry[2];
  auto round = [&](int n) {
    for (int i = 0; i < n; ++i) {
      for (int c = 0; c < 2; ++c) {
        const bool post = i % 2 == 1;
        const std::string req =
            post ? "POST /p HTTP/1.1\r\nHost: test.local\r\nContent-Length: 3\r\n\r\nabc"
                 : GetRequest("/g");
        if (!SendAll(clients[c].get(), req)) return false;
      }
      for (int c = 0; c < 2; ++c) {
        const std::string resp = RecvHttpResponse(clients[c].get(), &carry[c], kIo);
        if (StatusOf(resp) != 200) return false;
      }
    }
    return true;
  };
  ASSERT_TRUE(clients[0] && clients[1]);
  ASSERT_TRUE(round(100));  // warm: both slots, both local connections
  const uint64_t before = *count;
  EXPECT_GT(before, 0u);  // the counter is attached
  ASSERT_TRUE(round(300));
  const uint64_t after = *count;
  EXPECT_EQ(after, before) << "allocations in 600 requests";
  munmap(word, 2 * sizeof(uint64_t));
}
#endif

}  // namespace
}  // namespace l7px::testing
