// Integration: `l7px connect` when the service misbehaves or is slow: idle connections the
// service closed, a reused connection that fails (retried once, only when replayable), a
// failure before and after the response head, close-delimited answers, 1xx interim answers, a
// request waiting for one of the N connections, and the grace at exit. Real l7px processes,
// the agent and the Python listening service (support/listening_service.h); the tests read the
// service's counts, l7px's /pools and metrics and the agent's log.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "support/admin.h"
#include "support/clients.h"
#include "support/connect_agent.h"
#include "support/harness.h"
#include "support/integration.h"
#include "support/listening_service.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class ConnectFailuresTest : public ConnectTest {};

// A listener on a kernel-chosen loopback port, playing l7px's register listener by hand.
UniqueFd ListenLoopback(uint16_t* port) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (!fd || bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0 ||
      listen(fd.get(), 8) != 0 ||
      getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return UniqueFd();
  }
  *port = ntohs(a.sin_port);
  return fd;
}

// Accepts one registration on `listener` within the I/O bound and answers it 101: a slot.
UniqueFd AcceptSlot(int listener) {
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, static_cast<int>(milliseconds(kIo).count())) != 1) return UniqueFd();
  UniqueFd fd(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd || RecvUntil(fd.get(), "\r\n\r\n", kIo).find("\r\n\r\n") == std::string::npos ||
      !SendAll(fd.get(),
               "HTTP/1.1 101 Switching Protocols\r\nUpgrade: l7px-slot/1\r\n"
               "Connection: Upgrade\r\n\r\n")) {
    return UniqueFd();
  }
  return fd;
}

std::string PostRequest(const std::string& path, const std::string& body,
                        const std::string& extra = "") {
  return "POST " + path +
         " HTTP/1.1\r\nHost: test.local\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n" + extra + "\r\n" + body;
}

// The service closes connections idle for 200 ms; the agent must not send a request on one
// (a POST there would be lost: it is not resent). Every request is answered, each once.
TEST_F(ConnectFailuresTest, IdleConnectionsTheServiceClosedAreNotUsed) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port), "0.2");
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 1);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 1; }, kIo));
  for (int i = 0; i < 4; ++i) {
    // The agent's idle connection is closed by the service (and the agent's health check may
    // open another, which the service closes too): wait until none is open at the service.
    const int accepted = services().Stats("a").accepted;
    ASSERT_TRUE(WaitFor([&] { return services().Stats("a").open == 0; }, kIo));
    const std::string resp = HttpExchange(front(), PostRequest("/p" + std::to_string(i), "abc"));
    EXPECT_EQ(StatusOf(resp), 200) << resp;
    EXPECT_EQ(BodyOf(resp), "len=3 sum=294") << resp;
    EXPECT_GT(services().Stats("a").accepted, accepted);
    std::this_thread::sleep_for(milliseconds(250));  // longer than the service's idle timeout
    EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/g"))), 200);
  }
  const ListeningServiceStats s = services().Stats("a");
  EXPECT_EQ(s.requests, 8);
  EXPECT_EQ(s.dropped, 0);
  EXPECT_EQ(Registered(), 1);
}

// The keep-alive race: the service closes a reused connection after reading the request,
// without answering. A GET (or a request with an Idempotency-Key) is sent once more on a fresh
// connection; a POST is not (the service may have acted on it): 502, and the service saw it
// once.
TEST_F(ConnectFailuresTest, AFailedReusedConnectionIsRetriedOnlyForAReplayableRequest) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 1);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 1; }, kIo));
  // One connection (slots 1), answered once: the next request reuses it.
  ASSERT_EQ(BodyOf(HttpExchange(front(), GetRequest("/warm"))), "a /warm");

  std::string resp = HttpExchange(front(), GetRequest("/drop-reused/get"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "a /drop-reused/get");
  ListeningServiceStats s = services().Stats("a");
  EXPECT_EQ(s.dropped, 1);
  EXPECT_EQ(s.requests, 3);  // /warm, the dropped GET, the GET again

  // The fresh connection answered once: reused by the POST.
  resp = HttpExchange(front(), PostRequest("/drop-reused/post", "abc"));
  EXPECT_EQ(StatusOf(resp), 502) << resp;
  s = services().Stats("a");
  EXPECT_EQ(s.dropped, 2);
  EXPECT_EQ(s.requests, 4);  // not sent twice

  // A POST with an Idempotency-Key says it may be sent twice.
  ASSERT_EQ(BodyOf(HttpExchange(front(), GetRequest("/warm2"))), "a /warm2");
  resp = HttpExchange(front(), PostRequest("/drop-reused/key", "abc", "Idempotency-Key: k1\r\n"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "len=3 sum=294");
  s = services().Stats("a");
  EXPECT_EQ(s.dropped, 3);
  EXPECT_EQ(s.requests, 7);
  EXPECT_EQ(Registered(), 1);
  EXPECT_EQ(RegistrationsMetric(h().admin_port(), "svc", "ok"), 1);  // the slot stayed
}

// The service fails before any byte of its answer: the agent answers 502 and keeps the slot.
// It fails after the head went out: the client sees the response cut short, the slot is
// replaced, and the agent goes on serving.
TEST_F(ConnectFailuresTest, AFailureBeforeTheAnswerIs502AndAfterItAbortsTheResponse) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 2);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  ASSERT_EQ(RegistrationsMetric(h().admin_port(), "svc", "ok"), 2);

  for (const std::string& req :
       {GetRequest("/drop-always"), PostRequest("/drop-always/post", "abc")}) {
    const std::string resp = HttpExchange(front(), req);
    EXPECT_EQ(StatusOf(resp), 502) << resp;
    EXPECT_EQ(BodyOf(resp), "502 Bad Gateway\n") << resp;  // the agent's own answer
  }
  // The GET went first on the connection the agent checked the service with (reused), so it
  // was tried once more on a fresh one; the POST was not.
  EXPECT_EQ(services().Stats("a").dropped, 3);
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/ok"))), "a /ok");
  // The 502 went out on the slot, which stayed: no registration since.
  EXPECT_EQ(RegistrationsMetric(h().admin_port(), "svc", "ok"), 2);
  EXPECT_EQ(Registered(), 2);

  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/abort-mid")));
  const auto start = std::chrono::steady_clock::now();
  const std::string got = RecvUntilClose(client.get(), kIo);
  EXPECT_LT(MillisSince(start), 5000);
  EXPECT_EQ(StatusOf(got), 200) << got.substr(0, 300);
  EXPECT_EQ(HeaderOf(got, "Content-Length"), "100000");
  const size_t body_at = got.find("\r\n\r\n");
  ASSERT_NE(body_at, std::string::npos);
  EXPECT_LT(got.size() - body_at - 4, 100000u);  // cut short, and the connection closed
  // The slot closed with the response; the agent dials a replacement and goes on.
  EXPECT_TRUE(
      WaitFor([&] { return RegistrationsMetric(h().admin_port(), "svc", "ok") == 3; }, kIo));
  EXPECT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/after"))), "a /after");
  EXPECT_TRUE(agent_.running());
}

// A response delimited by its close (HTTP/1.1 with Connection: close and no length, or
// HTTP/1.0): the client gets all of it; the slot ends with it and is dialed again.
TEST_F(ConnectFailuresTest, CloseDelimitedAnswersArriveWholeAndTheSlotIsRedialed) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 2);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  int64_t registrations = RegistrationsMetric(h().admin_port(), "svc", "ok");
  for (const std::string path : {"/until-close", "/until-close10", "/until-close"}) {
    const CurlResult r = RunCurl({FrontUrl(front(), path)}, 8);
    EXPECT_EQ(r.exit_code, 0) << path << ": " << r.err;
    std::string expected;
    while (expected.size() < 200000) expected += "a " + path;
    expected.resize(200000);
    EXPECT_EQ(r.out.size(), expected.size()) << path;
    EXPECT_TRUE(r.out == expected) << path;
    ++registrations;
    EXPECT_TRUE(WaitFor(
        [&] { return RegistrationsMetric(h().admin_port(), "svc", "ok") == registrations; }, kIo))
        << path;
    EXPECT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo)) << path;
  }
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/after"))), "a /after");
}

// 1xx answers: a request with Expect: 100-continue gets its 100 Continue and its body reaches
// the service (the 100 is l7px's own: l7px answers Expect itself and drops the field, so the
// agent's interim path is not on this one's way); a 103 Early Hints from the service reaches
// the client before the 200 (the agent passes it on as it is).
TEST_F(ConnectFailuresTest, InterimAnswersPassThrough) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 1);
  ASSERT_TRUE(WaitFor([&] { return Registered() == 1; }, kIo));

  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(),
                      "POST /expect HTTP/1.1\r\nHost: test.local\r\nContent-Length: 3\r\n"
                      "Expect: 100-continue\r\n\r\n"));
  const std::string interim = RecvUntil(client.get(), "\r\n\r\n", kIo);
  EXPECT_THAT(interim, ::testing::StartsWith("HTTP/1.1 100 Continue\r\n")) << interim;
  ASSERT_TRUE(SendAll(client.get(), "abc"));
  std::string carry = interim.substr(interim.find("\r\n\r\n") + 4);
  std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "len=3 sum=294") << resp;

  ASSERT_TRUE(SendAll(client.get(), GetRequest("/early-hints")));
  const std::string all = RecvUntil(client.get(), "a /early-hints", kIo);
  EXPECT_THAT(all, ::testing::StartsWith("HTTP/1.1 103 ")) << all;
  EXPECT_THAT(all, HasSubstr("Link: </s.css>; rel=preload\r\n")) << all;
  EXPECT_THAT(all, HasSubstr("\r\n\r\nHTTP/1.1 200 ")) << all;
  // And the connection goes on.
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/next")));
  carry.clear();
  resp = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(BodyOf(resp), "a /next") << resp;
  EXPECT_EQ(Registered(), 1);
}

// Two proxies, one connection to the service (--slots 1): a request on the second waits in the
// agent while the first runs, and is served when it ends. A waiting request whose client left
// (l7px keeps the slot and drops the answer, so the agent runs it) holds no lease after: the
// next requests are served on both proxies.
TEST_F(ConnectFailuresTest, ARequestWaitsForAConnectionAndAGoneClientHoldsNone) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px("5s")) << h().ProxyLog();
  ProxyHarness second("ConnectWaitSecond");
  second.EnableAdmin();
  ASSERT_TRUE(second.StartProxy(second.WriteConfig(SvcPool("5s"), "", kSvcRegister)))
      << second.ProxyLog();
  StartAgent({h().register_port(), second.register_port()}, port, 1);
  ASSERT_TRUE(
      WaitFor([&] { return Registered() == 1 && Registered(second.admin_port()) == 1; }, kIo));

  auto slow = std::async(std::launch::async,
                         [&] { return HttpExchange(front(), GetRequest("/sleep/800")); });
  ASSERT_TRUE(WaitFor([&] { return services().Stats("a").requests == 1; }, kIo));
  auto waiting = std::async(
      std::launch::async, [&] { return HttpExchange(second.front_port(), GetRequest("/waited")); });
  EXPECT_EQ(BodyOf(slow.get()), "a /sleep/800");
  EXPECT_EQ(BodyOf(waiting.get()), "a /waited");
  EXPECT_EQ(services().Stats("a").max_inflight, 1);

  // Now the waiting request's client leaves while it waits.
  slow = std::async(std::launch::async,
                    [&] { return HttpExchange(front(), GetRequest("/sleep/1000")); });
  ASSERT_TRUE(WaitFor([&] { return services().Stats("a").requests == 3; }, kIo));
  {
    UniqueFd gone = ConnectTcp(second.front_port());
    ASSERT_TRUE(gone);
    ASSERT_TRUE(SendAll(gone.get(), GetRequest("/gone")));
    ASSERT_TRUE(WaitFor([&] { return PoolCounter(second.admin_port(), "svc", "busy") == 1; }, kIo));
  }
  EXPECT_EQ(BodyOf(slow.get()), "a /sleep/1000");
  // Served on both proxies afterwards: no lease was lost (with --slots 1, one lost lease
  // would leave every later request waiting).
  EXPECT_TRUE(WaitFor([&] { return Registered(second.admin_port()) == 1; }, kIo));
  EXPECT_EQ(BodyOf(HttpExchange(second.front_port(), GetRequest("/b1"), milliseconds(5000))),
            "a /b1");
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/a1"), milliseconds(5000))), "a /a1");
  EXPECT_EQ(services().Stats("a").max_inflight, 1);
}

// A request waiting in the agent for the one connection (--slots 1) until l7px gives up on it
// (the second l7px's response_timeout: 504, slot closed) is dropped then, never sent to the
// service when the connection frees; the slot is replaced and nothing stays leased.
TEST_F(ConnectFailuresTest, AWaitingRequestL7pxGaveUpOnIsNeverSent) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px("5s")) << h().ProxyLog();
  ProxyHarness second("ConnectGaveUpSecond");
  second.EnableAdmin();
  ASSERT_TRUE(second.StartProxy(
      second.WriteConfig(SvcPool("5s", "response_timeout = \"300ms\"\n"), "", kSvcRegister)))
      << second.ProxyLog();
  StartAgent({h().register_port(), second.register_port()}, port, 1);
  ASSERT_TRUE(
      WaitFor([&] { return Registered() == 1 && Registered(second.admin_port()) == 1; }, kIo));

  auto slow = std::async(std::launch::async,
                         [&] { return HttpExchange(front(), GetRequest("/sleep/1500")); });
  ASSERT_TRUE(WaitFor([&] { return services().Stats("a").requests == 1; }, kIo));
  const auto start = std::chrono::steady_clock::now();
  const std::string resp = HttpExchange(second.front_port(), GetRequest("/gave-up"));
  EXPECT_EQ(StatusOf(resp), 504) << resp;
  EXPECT_LT(MillisSince(start), 1400);  // answered while /sleep/1500 still runs
  // The slot l7px closed is replaced while the connection is still busy.
  EXPECT_TRUE(WaitFor([&] { return Registered(second.admin_port()) == 1; }, milliseconds(1000)));
  EXPECT_EQ(BodyOf(slow.get()), "a /sleep/1500");
  EXPECT_EQ(BodyOf(HttpExchange(second.front_port(), GetRequest("/b1"))), "a /b1");
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/a1"))), "a /a1");
  EXPECT_EQ(services().Stats("a").requests, 3) << "the service ran /gave-up";
}

// A request whose body does not parse (written by hand on a slot: l7px itself re-frames
// bodies and never sends one) ends its slot and gives its lease back: with --slots 1, the next
// request on the next slot is served.
TEST_F(ConnectFailuresTest, AMalformedRequestBodyOnASlotLeavesNoLeaseBehind) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  uint16_t proxy_port = 0;
  UniqueFd listener = ListenLoopback(&proxy_port);
  ASSERT_TRUE(listener);
  StartAgent({proxy_port}, port, 1);
  UniqueFd slot = AcceptSlot(listener.get());
  ASSERT_TRUE(slot);
  ASSERT_TRUE(SendAll(slot.get(),
                      "POST /bad HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n"
                      "\r\nzz\r\n"));
  EXPECT_TRUE(WaitPeerClosed(slot.get(), kIo));
  slot = AcceptSlot(listener.get());  // the agent dials again
  ASSERT_TRUE(slot);
  ASSERT_TRUE(SendAll(slot.get(), GetRequest("/next")));
  std::string carry;
  const std::string resp = RecvHttpResponse(slot.get(), &carry, milliseconds(5000));
  EXPECT_EQ(BodyOf(resp), "a /next") << resp;
  EXPECT_EQ(services().Stats("a").requests, 1);  // the malformed one never went out
}

// SIGTERM with a request running past --grace: the agent exits at the grace (status 0, as
// docs/connect.md says), and the client gets an error from l7px, not a hang.
TEST_F(ConnectFailuresTest, GraceOverCutsTheRequestAndTheClientGetsAnError) {
  const uint16_t port = FreePort();
  services().Start("a", LoopbackAddr(port));
  ASSERT_TRUE(StartL7px()) << h().ProxyLog();
  StartAgent({h().register_port()}, port, 2, {"--grace", "1s"});
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  auto slow = std::async(std::launch::async, [&] {
    const auto start = std::chrono::steady_clock::now();
    std::string resp = HttpExchange(front(), GetRequest("/sleep/8000"), milliseconds(9000));
    return std::make_pair(resp, MillisSince(start));
  });
  ASSERT_TRUE(WaitFor([&] { return services().Stats("a").requests == 1; }, kIo));
  const auto start = std::chrono::steady_clock::now();
  agent_.Signal(SIGTERM);
  const int status = agent_.WaitExit(kIo);
  const long exited_after = MillisSince(start);
  ASSERT_NE(status, -1);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_GE(exited_after, 900);
  EXPECT_LT(exited_after, 2500);
  const auto [resp, took] = slow.get();
  EXPECT_LT(took, 4000) << resp;
  EXPECT_GE(StatusOf(resp), 500) << resp;
  EXPECT_THAT(agent_.ReadLog(), HasSubstr("grace over"));
  EXPECT_TRUE(WaitFor([&] { return Registered() == 0; }, kIo));
}

}  // namespace
}  // namespace l7px::testing
