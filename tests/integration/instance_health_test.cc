// Integration: pools that stay healthy. An instance (the slots of one L7px-Service id) that keeps
// failing is benched (passive outlier ejection), never more than max_ejected of them at once, and
// every instance in service gets its turn at low load. Real l7px, real test services; the test
// follows the ejection through the admin API (/pools, /metrics), `l7px ctl` and the log.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/strict_json.h"
#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

class InstanceHealthTest : public IntegrationTest {
 protected:
  uint16_t admin() { return h().admin_port(); }

  // Starts l7px with the default pool and these extra pool lines.
  void Start(const std::string& pool_lines) {
    h().EnableAdmin();
    ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n" + pool_lines))
        << h().ProxyLog();
  }

  // Starts an instance of `slots` slots named `id`, waits until the pool counts them.
  void StartInstance(const std::string& id, int slots, std::vector<std::string> extra = {}) {
    const int64_t before = RegisteredSlots(admin(), "default");
    std::vector<std::string> args = {"--slots", std::to_string(slots), "--service-id", id};
    args.insert(args.end(), extra.begin(), extra.end());
    ASSERT_NE(StartService(args), nullptr) << id;
    ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "default") == before + slots; }, kIo))
        << id;
  }

  // The /pools entry of instance `id` of the default pool (null when not listed).
  Json InstanceEntry(const std::string& id) {
    const Json pool = PoolEntry(admin(), "default");
    const Json* list = FindMember(pool, "instances");
    if (list == nullptr || !list->is_array()) return Json();
    for (const Json& in : *list) {
      const Json* name = FindMember(in, "id");
      if (name != nullptr && name->is_string() && name->get<std::string>() == id) return in;
    }
    return Json();
  }
  std::string StateOf(const std::string& id) {
    const Json in = InstanceEntry(id);
    const Json* state = FindMember(in, "state");
    return state != nullptr && state->is_string() ? state->get<std::string>() : "";
  }

  // One GET on a fresh connection: "<status> <X-Service>".
  std::string Get(const std::string& path) {
    const std::string resp = HttpExchange(front(), GetRequest(path));
    return std::to_string(StatusOf(resp)) + " " + HeaderOf(resp, "X-Service");
  }

  // `clients` threads, each sending up to `per_client` sequential requests until `done()` holds
  // (checked between requests); the answers by "<status> <X-Service>".
  std::map<std::string, int> Load(
      int clients, int per_client, const std::function<bool()>& done = [] { return false; }) {
    std::mutex mu;
    std::map<std::string, int> seen;
    std::atomic<bool> stop{false};
    std::atomic<int> running{clients};
    std::vector<std::thread> threads;
    for (int t = 0; t < clients; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < per_client && !stop.load(); ++i) {
          const std::string answer = Get("/c" + std::to_string(t) + "/" + std::to_string(i));
          std::lock_guard<std::mutex> lock(mu);
          ++seen[answer];
        }
        --running;
      });
    }
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (running.load() > 0 && !stop.load() && Clock::now() < deadline) {
      if (done()) stop = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    stop = true;
    for (auto& th : threads) th.join();
    return seen;
  }

  std::string Metrics() { return AdminCall(admin(), "GET", "/metrics").body; }
};

// (a) A healthy instance (answers after 2 ms) and one that answers 500 at once: the failing one is
// benched after eject_after failures, and then nearly every answer is the healthy one's 200.
TEST_F(InstanceHealthTest, AFailingInstanceIsEjectedAndTheHealthyOneServes) {
  ASSERT_NO_FATAL_FAILURE(Start("eject_after = 3\neject_time = \"60s\"\n"));
  ASSERT_NO_FATAL_FAILURE(StartInstance("good", 2, {"--delay-ms", "2"}));
  ASSERT_NO_FATAL_FAILURE(StartInstance("bad", 2, {"--status", "500"}));
  EXPECT_EQ(StateOf("bad"), "healthy");

  // A few concurrent clients until the bad instance is benched.
  const auto before = Load(4, 100, [&] { return StateOf("bad") == "ejected"; });
  ASSERT_EQ(StateOf("bad"), "ejected")
      << "never ejected; answers: " << ::testing::PrintToString(before) << "\n"
      << Tail(h().ProxyLog());
  EXPECT_GT(before.count("500 bad") ? before.at("500 bad") : 0, 0);

  const auto after = Load(4, 50);
  const int ok = after.count("200 good") ? after.at("200 good") : 0;
  EXPECT_GE(ok, 198) << ::testing::PrintToString(after);
  EXPECT_EQ(after.count("500 bad"), 0u) << ::testing::PrintToString(after);

  // What operators see.
  const Json bad = InstanceEntry("bad");
  EXPECT_EQ(JsonInt64(FindMember(bad, "slots")).value_or(-1), 2) << DumpJson(bad);
  EXPECT_EQ(JsonInt64(FindMember(bad, "ejections")).value_or(-1), 1) << DumpJson(bad);
  const Json* until = FindMember(bad, "ejected_until");
  ASSERT_NE(until, nullptr);
  EXPECT_TRUE(until->is_string()) << DumpJson(bad);
  EXPECT_GT(JsonInt64(FindMember(bad, "ejected_ms_left")).value_or(-1), 50'000) << DumpJson(bad);
  EXPECT_EQ(StateOf("good"), "healthy");
  EXPECT_EQ(PoolCounter(admin(), "default", "instances_ejected"), 1);
  EXPECT_EQ(PoolCounter(admin(), "default", "ejections"), 1);
  const std::string metrics = Metrics();
  EXPECT_THAT(metrics, HasSubstr("l7px_ejections_total{pool=\"default\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("l7px_instances_ejected{pool=\"default\"} 1\n"));
  const CommandResult ctl = RunCtl(admin(), {"pools"});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_THAT(ctl.out, ::testing::ContainsRegex("default +bad +ejected +2 "));
  EXPECT_THAT(h().ProxyLog(), HasSubstr("pool default: instance bad ejected for 60000 ms after 3 "
                                        "failures in a row (1 of 2 instances benched)"));
}

// (a, at 12 clients) More clients than the healthy instance has slots: requests queue for its
// slots rather than go to the failing instance.
TEST_F(InstanceHealthTest, AtTwelveClientsTheEjectedInstanceStillGetsNothing) {
  ASSERT_NO_FATAL_FAILURE(Start("eject_after = 3\neject_time = \"60s\"\n"));
  ASSERT_NO_FATAL_FAILURE(StartInstance("good", 8, {"--delay-ms", "2"}));
  ASSERT_NO_FATAL_FAILURE(StartInstance("bad", 8, {"--status", "500"}));
  Load(12, 100, [&] { return StateOf("bad") == "ejected"; });
  ASSERT_EQ(StateOf("bad"), "ejected") << Tail(h().ProxyLog());
  const auto after = Load(12, 50);
  const int ok = after.count("200 good") ? after.at("200 good") : 0;
  EXPECT_GE(ok, 594) << ::testing::PrintToString(after);  // >= 99% of 600
  EXPECT_EQ(after.count("500 bad"), 0u) << ::testing::PrintToString(after);
}

// A broken instance is redeployed healthy under the same id: its new slots wait out the bench,
// then it gets its share again.
TEST_F(InstanceHealthTest, ABrokenInstanceThatHealsGetsItsShareBack) {
  ASSERT_NO_FATAL_FAILURE(Start("eject_after = 3\neject_time = \"500ms\"\n"));
  ASSERT_NO_FATAL_FAILURE(StartInstance("good", 2));
  ChildProcess* broken = StartService({"--slots", "2", "--service-id", "flaky", "--status", "500"});
  ASSERT_NE(broken, nullptr);
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "default") == 4; }, kIo));
  for (int i = 0; i < 50 && StateOf("flaky") != "ejected"; ++i) Get("/break/" + std::to_string(i));
  ASSERT_EQ(StateOf("flaky"), "ejected") << Tail(h().ProxyLog());
  // The fix is deployed: the broken process goes, a healthy one registers under the same id.
  broken->Kill();
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "default") == 2; }, kIo));
  ASSERT_NO_FATAL_FAILURE(StartInstance("flaky", 2));
  ASSERT_TRUE(WaitFor([&] { return StateOf("flaky") == "healthy"; }, std::chrono::seconds(5)))
      << DumpJson(InstanceEntry("flaky"));
  std::map<std::string, int> seen;
  for (int i = 0; i < 200; ++i) ++seen[Get("/healed/" + std::to_string(i))];
  EXPECT_GE(seen["200 flaky"], 50) << ::testing::PrintToString(seen);  // >= 25%
  EXPECT_GE(seen["200 good"], 50) << ::testing::PrintToString(seen);
  EXPECT_EQ(seen["200 flaky"] + seen["200 good"], 200) << ::testing::PrintToString(seen);
}

// (b) Two healthy instances at low load (one client, one request at a time): both get a fair
// share, not only the one whose slot happens to be most recently idle.
TEST_F(InstanceHealthTest, EveryInstanceGetsItsTurnAtLowLoad) {
  ASSERT_NO_FATAL_FAILURE(Start(""));
  ASSERT_NO_FATAL_FAILURE(StartInstance("one", 2));
  ASSERT_NO_FATAL_FAILURE(StartInstance("two", 2));
  std::map<std::string, int> seen;
  for (int i = 0; i < 200; ++i) ++seen[Get("/turn/" + std::to_string(i))];
  EXPECT_GE(seen["200 one"], 60) << ::testing::PrintToString(seen);
  EXPECT_GE(seen["200 two"], 60) << ::testing::PrintToString(seen);
  EXPECT_EQ(seen["200 one"] + seen["200 two"], 200) << ::testing::PrintToString(seen);
}

// (c) Every instance fails: max_ejected keeps one in service, so clients get the services' own
// 500s, never l7px's 503.
TEST_F(InstanceHealthTest, WhenEveryInstanceFailsClientsGetTheirErrorsNot503) {
  ASSERT_NO_FATAL_FAILURE(Start("eject_after = 2\neject_time = \"60s\"\nmax_ejected = \"50%\"\n"));
  ASSERT_NO_FATAL_FAILURE(StartInstance("red", 2, {"--status", "500"}));
  ASSERT_NO_FATAL_FAILURE(StartInstance("blue", 2, {"--status", "500"}));
  const auto seen = Load(3, 40);
  int total = 0;
  for (const auto& [answer, n] : seen) {
    total += n;
    EXPECT_EQ(answer.substr(0, 4), "500 ") << ::testing::PrintToString(seen);
  }
  EXPECT_EQ(total, 120);
  EXPECT_EQ(PoolCounter(admin(), "default", "instances_ejected"), 1) << "the cap is 1 of 2";
  EXPECT_EQ(PoolCounter(admin(), "default", "ejections"), 1);
  EXPECT_THAT(h().ProxyLog(), HasSubstr("stays in service: 1 of 2 instances are benched already"));
}

// (d) Registering anew is no way around the bench: a fresh slot of a benched instance is benched
// too (and stays registered).
TEST_F(InstanceHealthTest, ASlotRegisteredByABenchedInstanceIsBenched) {
  ASSERT_NO_FATAL_FAILURE(Start("eject_after = 2\neject_time = \"60s\"\n"));
  ASSERT_NO_FATAL_FAILURE(StartInstance("good", 2));
  ASSERT_NO_FATAL_FAILURE(StartInstance("bad", 1, {"--status", "500"}));
  Load(1, 50, [&] { return StateOf("bad") == "ejected"; });
  ASSERT_EQ(StateOf("bad"), "ejected") << Tail(h().ProxyLog());
  // The same instance comes back with a slot that would answer 200.
  ASSERT_NO_FATAL_FAILURE(StartInstance("bad", 1));
  EXPECT_EQ(JsonInt64(FindMember(InstanceEntry("bad"), "slots")).value_or(-1), 2);
  EXPECT_EQ(StateOf("bad"), "ejected");
  std::map<std::string, int> seen;
  for (int i = 0; i < 60; ++i) ++seen[Get("/again/" + std::to_string(i))];
  EXPECT_EQ(seen["200 good"], 60) << ::testing::PrintToString(seen);
  EXPECT_EQ(PoolCounter(admin(), "default", "registered"), 4);
}

// (e) After eject_time the instance is back; failing again right after, its next bench is twice
// as long. (That the doubling resets once it stays back as long as its last bench lasted is
// unit-tested, tests/unit/slots/instance_health_test.cc.)
TEST_F(InstanceHealthTest, ABenchedInstanceReturnsAndItsNextBenchDoubles) {
  ASSERT_NO_FATAL_FAILURE(Start("eject_after = 2\neject_time = \"400ms\"\n"));
  ASSERT_NO_FATAL_FAILURE(StartInstance("good", 1));
  ASSERT_NO_FATAL_FAILURE(StartInstance("bad", 1, {"--status", "500"}));
  std::atomic<bool> stop{false};
  std::thread client([&] {
    for (int i = 0; i < 20'000 && !stop.load(); ++i) Get("/e/" + std::to_string(i));
  });
  // When each of the first two benches was first seen in /pools, and how long it had left then.
  struct Seen {
    Clock::time_point at;
    int64_t left_ms = -1;
  };
  std::vector<Seen> benches;
  const auto deadline = Clock::now() + std::chrono::seconds(20);
  while (benches.size() < 2 && Clock::now() < deadline) {
    const Json bad = InstanceEntry("bad");
    const int64_t ejections = JsonInt64(FindMember(bad, "ejections")).value_or(0);
    if (ejections > static_cast<int64_t>(benches.size())) {
      benches.push_back({Clock::now(), JsonInt64(FindMember(bad, "ejected_ms_left")).value_or(-1)});
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  client.join();
  ASSERT_EQ(benches.size(), 2u) << Tail(h().ProxyLog());
  // Seen within a few ms of each start (a loaded machine may take longer: hence the margins).
  EXPECT_GT(benches[0].left_ms, 100);
  EXPECT_LE(benches[0].left_ms, 400);
  EXPECT_GT(benches[1].left_ms, 400) << "the second bench is not longer than the first";
  EXPECT_LE(benches[1].left_ms, 800);
  // The second bench starts only after the first has passed (its return is seen within a tick).
  EXPECT_GE(
      std::chrono::duration_cast<std::chrono::milliseconds>(benches[1].at - benches[0].at).count(),
      400 - 100);
  // The worker logs just after /pools can show the bench: wait for the last line.
  EXPECT_TRUE(WaitFor(
      [&] {
        return h().ProxyLog().find("instance bad ejected for 800 ms after 2 failures in a row") !=
               std::string::npos;
      },
      kIo))
      << h().ProxyLog();
  const std::string log = h().ProxyLog();
  EXPECT_THAT(log, HasSubstr("instance bad ejected for 400 ms after 2 failures in a row"));
  EXPECT_THAT(log, HasSubstr("instance bad back in service after a 400 ms bench"));
}

}  // namespace
}  // namespace l7px::testing
