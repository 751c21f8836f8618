// Integration: `l7px connect`, the agent beside a service that only listens. The service is an
// unmodified Python http.server (support/listening_service.h) that counts its connections and
// the requests it runs at once; the agent registers slots with one or two real l7px processes
// and forwards to it. The tests read the service's counts, l7px's /pools and the agent's log.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "support/admin.h"
#include "support/clients.h"
#include "support/connect_agent.h"
#include "support/integration.h"
#include "support/listening_service.h"
#include "support/load.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

// Many requests over many clients: every one answered by the service, which never sees more
// than N connections or N requests at once.
TEST_F(ConnectTest, ForwardsOverAtMostNConnectionsAndRequests) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 4);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 4; }, kIo));
  const auto seen = CountAnswersByService(front(), 16, 1500, "/slow");
  EXPECT_EQ(seen.size(), 1u) << ::testing::PrintToString(seen);
  EXPECT_EQ(seen.count("200 a") ? seen.at("200 a") : 0, 1500);
  const ListeningServiceStats s = services().Stats("a");
  EXPECT_EQ(s.requests, 1500);
  EXPECT_LE(s.accepted, 4);  // reused: no connect() per request
  EXPECT_LE(s.max_inflight, 4);
  EXPECT_GE(s.max_inflight, 2);  // the load did overlap
  EXPECT_EQ(Registered(), 4);

  // One client, one request after the other: the service's response, written in two pieces
  // with Nagle on, is acknowledged at once rather than after the kernel's delayed ACK (up to
  // 40 ms a response).
  const int64_t took = MillisForSequentialRequests(front(), 50, "a");
  ASSERT_GE(took, 0);
  EXPECT_LT(took, 1000) << " ms for 50 requests";
}

// One agent, two l7px: both route to the service, and the bound is shared.
TEST_F(ConnectTest, TwoProxiesShareOneBound) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  ProxyHarness second("ConnectTwoProxiesSecond");
  second.EnableAdmin();
  ASSERT_TRUE(second.StartProxy(second.WriteConfig(SvcPool(), "", kSvcRegister)))
      << second.ProxyLog();
  StartAgent({h().register_port(), second.register_port()}, port, 3);
  ASSERT_TRUE(
      WaitFor([&] { return Registered() == 3 && Registered(second.admin_port()) == 3; }, kIo));
  auto other = std::async(std::launch::async, [&] {
    return CountAnswersByService(second.front_port(), 8, 600, "/slow");
  });
  const auto seen = CountAnswersByService(front(), 8, 600, "/slow");
  const auto seen_second = other.get();
  EXPECT_EQ(seen.count("200 a") ? seen.at("200 a") : 0, 600) << ::testing::PrintToString(seen);
  EXPECT_EQ(seen_second.count("200 a") ? seen_second.at("200 a") : 0, 600)
      << ::testing::PrintToString(seen_second);
  const ListeningServiceStats s = services().Stats("a");
  EXPECT_EQ(s.requests, 1200);
  EXPECT_LE(s.accepted, 3);
  EXPECT_LE(s.max_inflight, 3);
  EXPECT_GE(s.max_inflight, 2);
}

// The service goes away: the agent withdraws every slot (requests are shed with 503 at once,
// not held), logs it once, and registers again when the service is back.
TEST_F(ConnectTest, WithdrawsWhileTheServiceIsDownAndReturns) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px("300ms")) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 2);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/x"))), 200);

  services()["a"].Kill();
  ASSERT_TRUE(WaitFor([&] { return Registered() == 0; }, kIo)) << agent_.ReadLog();
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/x"))), 503);
  EXPECT_LT(MillisSince(start), 2000);
  // Probing goes on meanwhile, logged once.
  std::this_thread::sleep_for(milliseconds(1500));
  EXPECT_EQ(Registered(), 0);
  EXPECT_EQ(CountOf(agent_.ReadLog(), "unreachable"), 1) << agent_.ReadLog();

  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo)) << agent_.ReadLog();
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/back"))), "a /back");
  EXPECT_TRUE(agent_.running());
  EXPECT_THAT(agent_.ReadLog(), HasSubstr("withdrawing"));
}

// What passes through: the client's address (X-Forwarded-For, set by l7px), a body of a few MB
// and a chunked one streamed both ways, HEAD, and answers that close their connection.
TEST_F(ConnectTest, ClientAddressBodiesHeadAndClosingAnswers) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 2);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));

  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/xff"))), "127.0.0.1");

  std::string big(5 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 23);
  const std::string file = h().dir() + "/body";
  std::ofstream(file, std::ios::binary) << big;
  const std::string expected =
      "len=" + std::to_string(big.size()) + " sum=" + std::to_string(ByteSum(big));
  CurlResult r = RunCurl({"--data-binary", "@" + file, FrontUrl(front(), "/post")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected);
  r = RunCurl({"-H", "Transfer-Encoding: chunked", "--data-binary", "@" + file,
               FrontUrl(front(), "/chunked")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, expected);

  r = RunCurl({"-I", FrontUrl(front(), "/head")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("200"));
  EXPECT_THAT(r.out, HasSubstr("Content-Length: 7"));  // "a /head"

  // Answers that end their connection at the service: each costs a local connection, and the
  // client's keep-alive connection and the slots stay.
  const int accepted = services().Stats("a").accepted;
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  std::string carry;
  for (const std::string path : {"/close1", "/http10", "/close2", "/plain"}) {
    ASSERT_TRUE(SendAll(client.get(), GetRequest(path)));
    const std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
    EXPECT_EQ(BodyOf(resp), "a " + path) << resp;
  }
  EXPECT_GE(services().Stats("a").accepted, accepted + 2);
  EXPECT_EQ(Registered(), 2);
  // (the service counts a request after its answer is out)
  EXPECT_TRUE(WaitFor([&] { return services().Stats("a").requests == 8; }, kIo))
      << services().Stats("a").requests;
}

// SIGTERM: idle slots close at once, the request in flight finishes, and the agent exits 0.
TEST_F(ConnectTest, SigtermLetsTheRequestInFlightFinish) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 3, {"--grace", "5s"});
  ASSERT_TRUE(WaitFor([&] { return Registered() == 3; }, kIo));
  auto slow = std::async(std::launch::async,
                         [&] { return HttpExchange(front(), GetRequest("/sleep/1500")); });
  ASSERT_TRUE(WaitFor([&] { return services().Stats("a").requests == 1; }, kIo));
  const auto start = std::chrono::steady_clock::now();
  agent_.Signal(SIGTERM);
  // The idle slots go at once; the busy one stays until its answer is out.
  EXPECT_TRUE(WaitFor([&] { return PoolCounter(h().admin_port(), "svc", "idle") == 0; },
                      milliseconds(1000)));
  const std::string resp = slow.get();
  EXPECT_EQ(BodyOf(resp), "a /sleep/1500") << resp;
  const int status = agent_.WaitExit(kIo);
  EXPECT_LT(MillisSince(start), 4000);
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_TRUE(WaitFor([&] { return Registered() == 0; }, kIo));
}

// A 101 answer turns the slot into a tunnel both ways; the agent dials a replacement slot.
TEST_F(ConnectTest, UpgradeBecomesATunnelAndTheSlotIsReplaced) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 2);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(),
                      GetRequest("/ws", "test.local", "Connection: Upgrade\r\nUpgrade: echo\r\n")));
  const std::string head = RecvUntil(client.get(), "\r\n\r\n", kIo);
  ASSERT_THAT(head, HasSubstr(" 101 "));
  ASSERT_TRUE(SendAll(client.get(), "ping through the tunnel"));
  EXPECT_EQ(RecvUntil(client.get(), "tunnel", kIo), "ping through the tunnel");
  // The tunnel left the pool; the agent's replacement keeps 2 slots.
  EXPECT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo)) << Registered();
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/after"))), "a /after");
  client.Reset();
}

// A service that writes an unasked response late, with Nagle on, must not leave the agent one
// response behind (every later client getting the one before's answer): before it reuses an
// idle connection the agent acknowledges what it received, so bytes the service's kernel holds
// back arrive, and the look that follows finds them and drops the connection. The service here
// is a few lines of raw Python that answer every GET with its path, and, for /stray, a second
// response 50 ms later (a service bug).
constexpr char kStrayService[] = R"(
import socket, sys, threading, time
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1]))); srv.listen(64)
def answer(body):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
def serve(c):
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = c.recv(65536)
            if not d: return
            buf += d
        head, buf = buf.split(b"\r\n\r\n", 1)
        path = head.split(b" ")[1]
        c.sendall(answer(path))
        if path == b"/stray":
            time.sleep(0.05); c.sendall(answer(b"stray"))
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
)";

TEST_F(ConnectTest, ALateStrayResponseDoesNotLeaveTheAgentOneBehind) {
  const uint16_t port = FreePort();
  const std::string script = h().dir() + "/stray_service.py";
  {
    std::ofstream out(script);
    out << kStrayService;
  }
  ChildProcess service = ChildProcess::Start(
      {"/usr/bin/env", "python3", script, std::to_string(port)}, h().dir() + "/stray_service.log");
  ASSERT_TRUE(WaitForPort(port, kIo)) << ReadFile(h().dir() + "/stray_service.log");
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 2);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo)) << h().ProxyLog();
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/stray"))), 200);
  int wrong = 0;
  std::string first_wrong;
  for (int i = 0; i < 200; ++i) {
    const std::string path = "/tag/" + std::to_string(i);
    const std::string resp = HttpExchange(front(), GetRequest(path));
    if (BodyOf(resp) != path && wrong++ < 4) first_wrong += path + " got " + BodyOf(resp) + "; ";
  }
  // The request sent before the stray response was written gets it; no other one may.
  EXPECT_LE(wrong, 2) << first_wrong;
  service.Kill();
}

// Clients that give up while the service works on their requests do not let more than N run
// there: l7px closes the slot, and the agent keeps that request's connection (and its place in
// the bound) until the service's answer is complete, instead of starting another request on a
// fresh one at once.
TEST_F(ConnectTest, ClientsThatGiveUpDoNotRaiseTheBound) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px("10s")) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 2);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo)) << h().ProxyLog();
  GiveUpMidRequest(front(), 4, 6, "/sleep/400", milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_LE(services().Stats("a").max_inflight, 2);
  EXPECT_LE(services().Stats("a").accepted, 2);  // the connections were kept, too
  // And the agent serves on.
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/after"))), "a /after");
}

TEST_F(ConnectTest, BadFlagsExitTwoWithAMessage) {
  const std::vector<std::vector<std::string>> cases = {
      {"--slots", "2", "--to", "127.0.0.1:1"},                               // no --proxy
      {"--proxy", "127.0.0.1:1", "--to", "127.0.0.1:1"},                     // no --slots
      {"--proxy", "127.0.0.1:1", "--slots", "2"},                            // no --to
      {"--proxy", "127.0.0.1:1", "--slots", "zero", "--to", "127.0.0.1:1"},  // not a number
      {"--proxy", "127.0.0.1:1", "--slots", "0", "--to", "127.0.0.1:1"},
      {"--proxy", "nocolon", "--slots", "2", "--to", "127.0.0.1:1"},
      {"--proxy", "127.0.0.1:1", "--slots", "2", "--to", "127.0.0.1:99999"},
      {"--proxy", "127.0.0.1:1", "--slots", "2", "--to", "127.0.0.1:1", "--grace", "soon"},
      {"--proxy", "127.0.0.1:1", "--slots", "2", "--slots", "3", "--to", "127.0.0.1:1"},
      {"--proxy", "127.0.0.1:1", "--slots", "2", "--to", "127.0.0.1:1", "--bogus", "x"},
      {"--proxy", "127.0.0.1:1", "--slots", "2", "--to"},
  };
  for (const auto& args : cases) {
    std::vector<std::string> argv = {L7PX_BINARY, "connect"};
    argv.insert(argv.end(), args.begin(), args.end());
    const CommandResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 2) << ::testing::PrintToString(args) << r.err;
    EXPECT_THAT(r.err, HasSubstr("l7px connect: ")) << ::testing::PrintToString(args);
    EXPECT_THAT(r.err, HasSubstr("usage: l7px connect"));
  }
  const CommandResult help = RunCommand({L7PX_BINARY, "connect", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_THAT(help.out, HasSubstr("--slots N"));
}

}  // namespace
}  // namespace l7px::testing
