// Integration: upstream slots, for services that only listen. A pool's `upstreams` are dialed by
// l7px itself, upstream_slots keep-alive connections to each, and used as slots. The service is
// an unmodified HTTP/1.1 server (Python's http.server, written to the test's directory) that
// counts the connections it accepted, holds open and the requests it runs at once; the tests
// read those counts, the admin API, the log and `ss`.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/listening_service.h"
#include "support/load.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

using ServiceStats = ListeningServiceStats;

class UpstreamTest : public IntegrationTest {
 protected:
  // A SIGUSR2 successor is not our child: the one the pid file names goes, however the test ended.
  void TearDown() override {
    std::ifstream in(h().dir() + "/l7px.pid");
    long pid = 0;
    if (in >> pid && pid > 0 &&
        ReadFile("/proc/" + std::to_string(pid) + "/cmdline").find(h().dir()) !=
            std::string::npos) {
      kill(static_cast<pid_t>(pid), SIGKILL);
    }
    IntegrationTest::TearDown();
  }
  uint16_t admin() { return h().admin_port(); }
  // Starts (or restarts) the listening service `name` on `listen`; waits for its stats file.
  ChildProcess& Service(const std::string& name, const std::string& listen,
                        const std::string& idle = "0") {
    if (!listen.starts_with("unix:")) {
      TimeWaitToward(static_cast<uint16_t>(std::stoi(listen.substr(listen.rfind(':') + 1))));
    }
    return services().Start(name, listen, idle);
  }
  ServiceStats Stats(const std::string& name) { return services().Stats(name); }

  // The pool "legacy" (every route's) with these lines.
  bool Start(const std::string& pool_lines) {
    h().EnableAdmin();
    return StartProxy("[[pool]]\nname = \"legacy\"\n" + pool_lines, "",
                      "default_pool = \"legacy\"\n");
  }
  std::string Config(const std::string& pool_lines) {
    return h().WriteConfig("[[pool]]\nname = \"legacy\"\n" + pool_lines, "",
                           "default_pool = \"legacy\"\n");
  }
  static std::string Tcp(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }
  static std::string Upstreams(const std::vector<std::string>& addresses, int slots) {
    std::string out = "upstreams = [";
    for (size_t i = 0; i < addresses.size(); ++i) {
      out += (i ? ", \"" : "\"") + addresses[i] + "\"";
    }
    return out + "]\nupstream_slots = " + std::to_string(slots) + "\n";
  }
  int64_t Registered() { return RegisteredSlots(admin(), "legacy"); }
  // Slots of the pool whose service id is `address`.
  int64_t SlotsOf(const std::string& address) {
    const Json pool = PoolEntry(admin(), "legacy");
    const Json* services = FindMember(pool, "services");
    const Json* n = services != nullptr ? FindMember(*services, address) : nullptr;
    return n != nullptr ? JsonInt64(n).value_or(-1) : 0;
  }
  // A member of the pool's /pools "upstreams" entry for `address` ("" when there is none).
  std::string UpstreamField(const std::string& address, const std::string& field) {
    const Json pool = PoolEntry(admin(), "legacy");
    const Json* list = FindMember(pool, "upstreams");
    if (list == nullptr || !list->is_array()) return "";
    for (const Json& u : *list) {
      const Json* a = FindMember(u, "address");
      const Json* f = FindMember(u, field);
      if (a != nullptr && a->is_string() && a->get<std::string>() == address && f != nullptr) {
        return f->is_string() ? f->get<std::string>() : f->dump();
      }
    }
    return "";
  }
  // TIME_WAIT sockets whose peer port is `port`, l7px's side of connections to a service there,
  // beyond those there were when the test started: a port FreePort returns may have served
  // another test a moment ago, whose clients' TIME_WAIT sockets stay for a minute.
  int TimeWaitToward(uint16_t port) {
    auto [it, added] = time_wait_before_.emplace(port, 0);
    if (added) it->second = TimeWaitNow(port);
    return std::max(0, TimeWaitNow(port) - it->second);
  }
  static int TimeWaitNow(uint16_t port) {
    const CommandResult r = RunCommand(
        {"ss", "-Htan", "state", "time-wait", "( dport = :" + std::to_string(port) + " )"});
    return CountOf(r.out, "\n");
  }
  std::map<std::string, int> Load(int clients, int n, const std::string& path) {
    return CountAnswersByService(front(), clients, n, path);
  }

  // Made on first use: the harness (and its directory) exists only from SetUp on.
  ListeningServices& services() {
    if (!services_) services_ = std::make_unique<ListeningServices>(h().dir());
    return *services_;
  }
  std::unique_ptr<ListeningServices> services_;
  std::map<uint16_t, int> time_wait_before_;
};

// Item 1: at most upstream_slots connections per address, never more requests at once at the
// service, and no TIME_WAIT on l7px's side when l7px closes them (a reload removing the address,
// then l7px's exit).
// A service that writes a response in pieces with Nagle on (Python's http.server: the head,
// then the body) holds the body until l7px acknowledges the head; l7px acknowledges at once
// when part of a response is here, so the body is not held for the kernel's delayed ACK (up to
// 40 ms a response: 50 sequential requests took over 2 s without it).
TEST_F(UpstreamTest, ResponsesWrittenInPiecesAreNotHeldByNagle) {
  const uint16_t port = FreePort();
  Service("a", Tcp(port));
  ASSERT_TRUE(Start(Upstreams({Tcp(port)}, 1))) << h().ProxyLog();
  ASSERT_TRUE(WaitFor([&] { return Registered() == 1; }, kIo)) << h().ProxyLog();
  const int64_t took = MillisForSequentialRequests(front(), 50, "a");
  ASSERT_GE(took, 0);
  EXPECT_LT(took, 1000) << " ms for 50 requests";
}

TEST_F(UpstreamTest, FixedConnectionsPerAddressAndNoTimeWaitOnL7pxSide) {
  const uint16_t port = FreePort();
  Service("a", Tcp(port));
  ASSERT_TRUE(Start(Upstreams({Tcp(port)}, 4))) << h().ProxyLog();
  ASSERT_TRUE(WaitFor([&] { return Registered() == 4; }, kIo)) << h().ProxyLog();
  EXPECT_TRUE(WaitFor(
      [&] {
        return h().ProxyLog().find("upstream " + Tcp(port) + " up: 4 slots") != std::string::npos;
      },
      kIo))
      << h().ProxyLog();

  const auto seen = Load(16, 2000, "/slow");
  EXPECT_EQ(seen.size(), 1u) << ::testing::PrintToString(seen);
  EXPECT_EQ(seen.count("200 a") ? seen.at("200 a") : 0, 2000);
  const ServiceStats s = Stats("a");
  EXPECT_EQ(s.requests, 2000);
  EXPECT_EQ(s.accepted, 4);
  EXPECT_EQ(s.open, 4);
  EXPECT_LE(s.max_inflight, 4);
  EXPECT_GE(s.max_inflight, 2);  // the load did overlap
  EXPECT_EQ(SlotsOf(Tcp(port)), 4);

  // A reload that drops the address: l7px closes its 4 connections itself.
  Config("");
  h().proxy().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 0 && Stats("a").open == 0; }, kIo))
      << h().ProxyLog();
  EXPECT_THAT(h().ProxyLog(), HasSubstr("upstream " + Tcp(port) + " removed"));
  EXPECT_EQ(TimeWaitToward(port), 0);

  // Back, then l7px exits with them open.
  Config(Upstreams({Tcp(port)}, 4));
  h().proxy().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 4 && Stats("a").open == 4; }, kIo));
  h().proxy().Signal(SIGTERM);
  EXPECT_NE(h().proxy().WaitExit(seconds(10)), -1);
  EXPECT_TRUE(WaitFor([&] { return Stats("a").open == 0; }, kIo));
  EXPECT_EQ(TimeWaitToward(port), 0);
  EXPECT_EQ(Stats("a").accepted, 8);
}

// Item 2: a slot the service ends after an exchange (`Connection: close`) is dialed again at once;
// every such exchange costs one connection.
TEST_F(UpstreamTest, SlotClosedAfterAnExchangeIsRedialed) {
  const uint16_t port = FreePort();
  Service("a", Tcp(port));
  ASSERT_TRUE(Start(Upstreams({Tcp(port)}, 2))) << h().ProxyLog();
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo)) << h().ProxyLog();
  const auto seen = Load(1, 30, "/close");
  EXPECT_EQ(seen.count("200 a") ? seen.at("200 a") : 0, 30) << ::testing::PrintToString(seen);
  // Each exchange cost a connection: the first 2, then one re-dial per closed slot.
  EXPECT_TRUE(WaitFor([&] { return Stats("a").accepted == 32 && Registered() == 2; }, kIo))
      << Stats("a").accepted << " " << Registered();
  EXPECT_EQ(Stats("a").open, 2);
  EXPECT_EQ(TimeWaitToward(port), 0);  // the service closed first: its TIME_WAIT, not ours
  const auto after = Load(2, 20, "/");
  EXPECT_EQ(after.count("200 a") ? after.at("200 a") : 0, 20);
}

// Item 2: slots the service closes unused within a second (a very short idle timeout) are dialed
// again, with a back-off that grows while they keep closing unused: not in a loop.
TEST_F(UpstreamTest, SlotsClosedUnusedAreRedialedWithBackoff) {
  const uint16_t port = FreePort();
  Service("a", Tcp(port), "0.2");  // closes a connection idle for 200 ms
  ASSERT_TRUE(Start(Upstreams({Tcp(port)}, 2) + "queue_timeout = \"8s\"\n")) << h().ProxyLog();
  ASSERT_TRUE(WaitFor([&] { return Stats("a").accepted >= 4; }, kIo)) << h().ProxyLog();
  std::this_thread::sleep_for(seconds(3));  // what is measured is how little happens meanwhile
  // Re-dialed at once, 2 slots living 200 ms each would have made ~30 connections in 3 s.
  const int accepted = Stats("a").accepted;
  EXPECT_LE(accepted, 16);
  EXPECT_THAT(h().ProxyLog(), HasSubstr("closed an idle slot; pruned"));
  // And they do come back: a request is served (it may wait in the queue for a re-dial).
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/"))), 200);
}

// Item 3: an address that refuses is benched and logged once; the pool answers from the other
// one; an address that comes up is dialed without a reload; with every address down requests are
// shed at queue_timeout, and a restarted service gets its slots back.
TEST_F(UpstreamTest, DownAddressIsLoggedOnceAndComesBackWithoutAReload) {
  const uint16_t port_a = FreePort();
  const uint16_t port_b = FreePort();
  Service("a", Tcp(port_a));
  ASSERT_TRUE(Start(Upstreams({Tcp(port_a), Tcp(port_b)}, 2) + "queue_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo)) << h().ProxyLog();
  const std::string down_b =
      "pool legacy: upstream " + Tcp(port_b) + " down: Connection refused; retrying";
  ASSERT_TRUE(WaitFor([&] { return h().ProxyLog().find(down_b) != std::string::npos; }, kIo));
  std::this_thread::sleep_for(milliseconds(1500));  // several retries, none logged again
  EXPECT_EQ(CountOf(h().ProxyLog(), down_b), 1) << h().ProxyLog();
  // The admin API and the metrics tell the same.
  EXPECT_EQ(UpstreamField(Tcp(port_b), "state"), "down");
  EXPECT_EQ(UpstreamField(Tcp(port_b), "error"), "Connection refused");
  EXPECT_EQ(UpstreamField(Tcp(port_b), "slots"), "0");
  EXPECT_EQ(UpstreamField(Tcp(port_a), "state"), "up");
  EXPECT_EQ(UpstreamField(Tcp(port_a), "slots"), "2");
  const std::string metrics = AdminCall(admin(), "GET", "/metrics").body;
  EXPECT_THAT(metrics,
              HasSubstr("l7px_upstream_up{pool=\"legacy\",address=\"" + Tcp(port_b) + "\"} 0\n"));
  EXPECT_THAT(metrics,
              HasSubstr("l7px_upstream_up{pool=\"legacy\",address=\"" + Tcp(port_a) + "\"} 1\n"));
  auto seen = Load(2, 20, "/");
  EXPECT_EQ(seen.count("200 a") ? seen.at("200 a") : 0, 20) << ::testing::PrintToString(seen);

  Service("b", Tcp(port_b));
  ASSERT_TRUE(WaitFor([&] { return SlotsOf(Tcp(port_b)) == 2; }, seconds(15))) << h().ProxyLog();
  EXPECT_TRUE(WaitFor(
      [&] { return CountOf(h().ProxyLog(), "upstream " + Tcp(port_b) + " up: 2 slots") == 1; },
      kIo))
      << h().ProxyLog();
  seen = Load(4, 200, "/slow");
  EXPECT_GT(seen["200 a"], 0) << ::testing::PrintToString(seen);
  EXPECT_GT(seen["200 b"], 0) << ::testing::PrintToString(seen);
  EXPECT_EQ(seen["200 a"] + seen["200 b"], 200) << ::testing::PrintToString(seen);

  // a dies: b answers everything.
  services()["a"].Kill();
  seen = Load(2, 40, "/");
  EXPECT_EQ(seen["200 b"], 40) << ::testing::PrintToString(seen);
  EXPECT_TRUE(WaitFor(
      [&] {
        return CountOf(h().ProxyLog(), "upstream " + Tcp(port_a) + " down: Connection refused") ==
               1;
      },
      kIo))
      << h().ProxyLog();

  // Both dead: shed at queue_timeout, nobody hangs.
  services()["b"].Kill();
  ASSERT_TRUE(WaitFor([&] { return Registered() == 0; }, kIo));
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/"))), 503);
  EXPECT_LT(MillisSince(t0), 2000);

  // a is back on its port: its slots come back by themselves.
  Service("a", Tcp(port_a));
  ASSERT_TRUE(WaitFor([&] { return SlotsOf(Tcp(port_a)) == 2; }, seconds(15))) << h().ProxyLog();
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/"))), 200);
  EXPECT_TRUE(WaitFor([&] { return UpstreamField(Tcp(port_a), "state") == "up"; }, kIo));
  EXPECT_EQ(UpstreamField(Tcp(port_a), "error"), "");
  EXPECT_EQ(UpstreamField(Tcp(port_b), "state"), "down");
  EXPECT_EQ(CountOf(h().ProxyLog(), "upstream " + Tcp(port_a) + " up: 2 slots"), 2);
}

// An address that accepts connections and closes them at once is down too, with a reason, in
// /pools and the metric (it showed "up" with 0 slots), and re-dialed with back-off.
TEST_F(UpstreamTest, AnAddressThatClosesEveryConnectionAtOnceIsDown) {
  const uint16_t port = FreePort();
  const std::string script = h().dir() + "/closer.py";
  {
    std::ofstream out(script);
    out << "import socket, sys\n"
           "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
           "s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(64)\n"
           "while True:\n"
           "    c, _ = s.accept(); c.close()\n";
  }
  ChildProcess closer = ChildProcess::Start(
      {"/usr/bin/env", "python3", script, std::to_string(port)}, h().dir() + "/closer.log");
  ASSERT_TRUE(WaitForPort(port, kIo)) << ReadFile(h().dir() + "/closer.log");
  ASSERT_TRUE(Start(Upstreams({Tcp(port)}, 2) + "queue_timeout = \"300ms\"\n")) << h().ProxyLog();
  ASSERT_TRUE(WaitFor([&] { return UpstreamField(Tcp(port), "state") == "down"; }, kIo))
      << UpstreamField(Tcp(port), "state") << "\n"
      << h().ProxyLog();
  EXPECT_EQ(UpstreamField(Tcp(port), "error"),
            "the service closed its connections before any request");
  EXPECT_THAT(AdminCall(admin(), "GET", "/metrics").body,
              HasSubstr("l7px_upstream_up{pool=\"legacy\",address=\"" + Tcp(port) + "\"} 0\n"));
  // Shed, or a probe's fresh slot failed under the request: an error either way, not a hang.
  EXPECT_THAT(StatusOf(HttpExchange(front(), GetRequest("/"))),
              ::testing::AnyOf(::testing::Eq(502), ::testing::Eq(503)));
  closer.Kill();
}

// Clients that give up while the service runs their requests do not make it run more than
// upstream_slots at once: l7px keeps such a slot, reads its response away and puts it back,
// instead of closing it and dialing a new connection while the abandoned request still runs.
TEST_F(UpstreamTest, ClientsThatGiveUpDoNotRaiseTheServicesConcurrency) {
  const uint16_t port = FreePort();
  Service("a", Tcp(port));
  ASSERT_TRUE(Start(Upstreams({Tcp(port)}, 2) + "queue_timeout = \"10s\"\n")) << h().ProxyLog();
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo)) << h().ProxyLog();
  GiveUpMidRequest(front(), 4, 6, "/sleep/400", milliseconds(100));
  // Every abandoned request ends; the slots are idle again. A client that left before its
  // request went out on a slot (its lease-time look still in flight) costs that slot, which is
  // then replaced; the service never saw that request, so its concurrency is not raised.
  EXPECT_TRUE(WaitFor([&] { return PoolCounter(admin(), "legacy", "busy") == 0; }, seconds(5)));
  EXPECT_LE(Stats("a").max_inflight, 2);
  EXPECT_LE(Stats("a").accepted, 4);  // without the drain: one per abandoned request (8 here)
  EXPECT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/after"))), 200);
}

// Item 4: two addresses (one a UNIX socket) and a registered service in one pool all serve it.
TEST_F(UpstreamTest, TcpAndUnixUpstreamsAndRegisteredSlotsShareAPool) {
  const uint16_t port = FreePort();
  const std::string sock = "unix:" + h().dir() + "/b.sock";
  Service("a", Tcp(port));
  Service("b", sock);
  ASSERT_TRUE(Start(Upstreams({Tcp(port), sock}, 2))) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2", "--pool", "legacy", "--service-id", "reg"}), nullptr);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 6; }, kIo)) << h().ProxyLog();
  EXPECT_EQ(SlotsOf(Tcp(port)), 2);
  EXPECT_EQ(SlotsOf(sock), 2);
  EXPECT_EQ(SlotsOf("reg"), 2);
  auto seen = Load(6, 600, "/slow");
  EXPECT_GT(seen["200 a"], 0) << ::testing::PrintToString(seen);
  EXPECT_GT(seen["200 b"], 0) << ::testing::PrintToString(seen);
  EXPECT_GT(seen["200 reg"], 0) << ::testing::PrintToString(seen);
  EXPECT_EQ(seen["200 a"] + seen["200 b"] + seen["200 reg"], 600) << ::testing::PrintToString(seen);
  EXPECT_EQ(Stats("a").accepted, 2);
  EXPECT_EQ(Stats("b").accepted, 2);
  EXPECT_LE(Stats("a").max_inflight, 2);
  EXPECT_LE(Stats("b").max_inflight, 2);
}

// Item 5: a reload dials added addresses, grows and shrinks upstream_slots, and closes a removed
// address's slots (a busy one after its response).
TEST_F(UpstreamTest, ReloadAddsResizesAndRemovesAddresses) {
  const uint16_t port_a = FreePort();
  const uint16_t port_b = FreePort();
  Service("a", Tcp(port_a));
  Service("b", Tcp(port_b));
  ASSERT_TRUE(Start(Upstreams({Tcp(port_a)}, 4))) << h().ProxyLog();
  ASSERT_TRUE(WaitFor([&] { return Stats("a").open == 4 && Registered() == 4; }, kIo));

  Config(Upstreams({Tcp(port_a), Tcp(port_b)}, 2));
  h().proxy().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Stats("a").open == 2 && Stats("b").open == 2; }, kIo))
      << Stats("a").open << " " << Stats("b").open << "\n"
      << h().ProxyLog();
  EXPECT_TRUE(WaitFor([&] { return Registered() == 4; }, kIo));

  Config(Upstreams({Tcp(port_a), Tcp(port_b)}, 3));
  h().proxy().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return Stats("a").open == 3 && Stats("b").open == 3; }, kIo));

  // b removed while requests run: they all complete, b's connections close.
  std::atomic<bool> stop{false};
  std::map<std::string, int> seen;
  std::thread load([&] {
    while (!stop.load()) {
      for (const auto& [k, n] : Load(4, 40, "/slow")) seen[k] += n;
    }
  });
  Config(Upstreams({Tcp(port_a)}, 3));
  h().proxy().Signal(SIGHUP);
  const bool closed = WaitFor([&] { return Stats("b").open == 0; }, kIo);
  stop = true;
  load.join();
  EXPECT_TRUE(closed) << h().ProxyLog();
  EXPECT_EQ(seen.size(), seen.count("200 a") + seen.count("200 b"))
      << ::testing::PrintToString(seen);
  EXPECT_TRUE(WaitFor([&] { return Registered() == 3; }, kIo));
  EXPECT_EQ(Stats("a").open, 3);
  EXPECT_EQ(TimeWaitToward(port_a) + TimeWaitToward(port_b), 0);
}

// Item 6: an upgrade (SIGUSR2) under light load moves the upstream slots with the others; the
// successor counts them toward upstream_slots and dials only what is missing.
TEST_F(UpstreamTest, UpgradeMovesUpstreamSlotsWithoutDialingMore) {
  const uint16_t port = FreePort();
  Service("a", Tcp(port));
  const std::string pid_file = h().dir() + "/l7px.pid";
  h().SetUpgradeExtra("pid_file = \"" + pid_file + "\"\ndrain_timeout = \"10s\"\n");
  ASSERT_TRUE(Start(Upstreams({Tcp(port)}, 4) + "queue_timeout = \"5s\"\n")) << h().ProxyLog();
  ASSERT_TRUE(WaitFor([&] { return Registered() == 4 && Stats("a").open == 4; }, kIo));
  auto read_pid = [&] {
    std::ifstream in(pid_file);
    long pid = 0;
    return in >> pid ? static_cast<pid_t>(pid) : 0;
  };
  ASSERT_EQ(read_pid(), h().proxy().pid());

  LoadClient load(front(), 2, "/slow");
  load.Start();
  ASSERT_TRUE(WaitFor([&] { return load.ok() > 100; }, kIo));
  h().proxy().Signal(SIGUSR2);
  EXPECT_NE(h().proxy().WaitExit(seconds(20)), -1) << Tail(h().ProxyLog());
  const pid_t successor = read_pid();
  ASSERT_NE(successor, h().proxy().pid());
  const uint64_t before = load.ok();
  ASSERT_TRUE(WaitFor([&] { return load.ok() > before + 100; }, kIo));
  const LoadClient::Totals totals = load.Stop();
  EXPECT_EQ(totals.connection_errors, 0u) << totals.first_error;
  EXPECT_EQ(totals.bad_status, 0u) << totals.first_error;

  EXPECT_TRUE(WaitFor([&] { return Registered() == 4; }, kIo));
  // The 4 connections moved: the service was never dialed again.
  EXPECT_EQ(Stats("a").accepted, 4);
  EXPECT_EQ(Stats("a").open, 4);
  EXPECT_LE(Stats("a").max_inflight, 4);
  // The successor reports the address up with the slots it adopted.
  EXPECT_TRUE(WaitFor([&] { return UpstreamField(Tcp(port), "state") == "up"; }, kIo))
      << UpstreamField(Tcp(port), "state");
  EXPECT_EQ(UpstreamField(Tcp(port), "slots"), "4");
  kill(successor, SIGTERM);
  EXPECT_TRUE(WaitFor([&] { return Stats("a").open == 0; }, kIo));
  EXPECT_EQ(TimeWaitToward(port), 0);
}

}  // namespace
}  // namespace l7px::testing
