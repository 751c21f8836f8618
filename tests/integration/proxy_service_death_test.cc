// Integration: services that die before or during a response, get killed, or are replaced; the
// client sees 502 / an aborted connection, and the pool recovers as services (re-)register.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;

class ProxyServiceDeathTest : public IntegrationTest {};

TEST_F(ProxyServiceDeathTest, DieBeforeResponseOnPostIs502ThenSlotReRegisters) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nretries = 1\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  ChildProcess* service = StartService({"--slots", "1", "--service-id", "phoenix"});
  ASSERT_NE(service, nullptr);

  const std::string resp = HttpExchange(
      front(), "POST /die-before HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody");
  EXPECT_EQ(StatusOf(resp), 502) << resp;

  // The only slot died; the SDK re-dials it and a request waiting in the queue is served.
  const std::string ok = HttpExchange(front(), GetRequest("/alive-again"));
  EXPECT_EQ(StatusOf(ok), 200) << ok;
  EXPECT_EQ(BodyOf(ok), "ok /alive-again");
  EXPECT_EQ(HeaderOf(ok, "X-Service"), "phoenix");
  EXPECT_TRUE(service->running());
}

TEST_F(ProxyServiceDeathTest, DieBeforeResponseOnGetRetriedThen502) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nretries = 1\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1", "--service-id", "first"}), nullptr);
  ASSERT_NE(StartService({"--slots", "1", "--service-id", "second"}), nullptr);

  // Every slot dies on this path: the first attempt and the one retry both fail.
  const std::string resp = HttpExchange(front(), GetRequest("/die-before"));
  EXPECT_EQ(StatusOf(resp), 502) << resp;

  // Both services re-register their slot (each after its SDK's backoff)...
  auto registered = [&] {
    const Json pool = PoolEntry(h().admin_port(), "default");
    const Json* services = FindMember(pool, "services");
    return services != nullptr && FindMember(*services, "first") != nullptr &&
           FindMember(*services, "second") != nullptr;
  };
  EXPECT_TRUE(WaitFor(registered, std::chrono::seconds(5))) << h().ProxyLog();
  // ...and both serve again: a second request while the first is in flight needs the other.
  UniqueFd a = ConnectTcp(front());
  UniqueFd b = ConnectTcp(front());
  ASSERT_TRUE(SendAll(a.get(), GetRequest("/delay/300")));
  ASSERT_TRUE(WaitFor([&] { return PoolCounter(h().admin_port(), "default", "busy") == 1; }, kIo))
      << "the first request never started";
  ASSERT_TRUE(SendAll(b.get(), GetRequest("/again/b")));
  std::string carry_a;
  std::string carry_b;
  const std::string ra = RecvHttpResponse(a.get(), &carry_a, kIo);
  const std::string rb = RecvHttpResponse(b.get(), &carry_b, kIo);
  EXPECT_EQ(StatusOf(ra), 200) << ra;
  EXPECT_EQ(StatusOf(rb), 200) << rb;
  EXPECT_NE(HeaderOf(ra, "X-Service"), HeaderOf(rb, "X-Service")) << ra << rb;
}

class ProxyRetryTest : public IntegrationTest {
 protected:
  // A slot registered by hand takes the request (the idle stack is LIFO and it registered
  // last, after the real service's) and closes without answering. Returns the client's response.
  std::string HandSlotDiesBeforeResponse(const std::string& request) {
    h().EnableAdmin();
    if (!StartProxy("[[pool]]\nname = \"default\"\nretries = 1\nqueue_timeout = \"5s\"\n")) {
      ADD_FAILURE() << h().ProxyLog();
      return "";
    }
    if (StartService({"--slots", "1", "--service-id", "real"}) == nullptr) {
      ADD_FAILURE() << "service not ready";
      return "";
    }
    std::string answer;
    UniqueFd slot =
        RegisterByHand(h().register_port(), RegistrationHead("", "", "by-hand"), &answer);
    EXPECT_EQ(StatusOf(answer), 101) << answer;
    EXPECT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 2; }, kIo))
        << "the hand slot was not counted";
    UniqueFd client = ConnectTcp(front());
    if (!client || !SendAll(client.get(), request)) return "";
    std::string carry;
    const std::string forwarded = RecvHttpRequest(slot.get(), &carry, kIo);
    EXPECT_THAT(forwarded, ::testing::HasSubstr(" /retry-me HTTP/1.1\r\n"))
        << "the hand slot was not the first one used";
    slot.Reset();  // dies before any response byte
    std::string client_carry;
    return RecvHttpResponse(client.get(), &client_carry, kIo);
  }
};

TEST_F(ProxyRetryTest, GetRetriedOnAnotherSlot) {
  const std::string resp = HandSlotDiesBeforeResponse("GET /retry-me HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(HeaderOf(resp, "X-Service"), "real") << resp;
}

TEST_F(ProxyRetryTest, PostNotRetried) {
  const std::string resp = HandSlotDiesBeforeResponse(
      "POST /retry-me HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(StatusOf(resp), 502) << resp;
}

TEST_F(ProxyServiceDeathTest, DieDuringResponseAbortsClient) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);

  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(SendAll(fd.get(), GetRequest("/die-during")));
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(fd.get(), kIo, &seen)) << "client connection not aborted: " << seen;
  // Either the head with a truncated body, or nothing at all — never a complete response.
  if (!seen.empty()) {
    EXPECT_EQ(StatusOf(seen), 200) << seen;
    EXPECT_EQ(HeaderOf(seen, "Content-Length"), "1000") << seen;
    EXPECT_LT(BodyOf(seen).size(), 1000u) << seen;
  }

  const CurlResult curl = RunCurl({FrontUrl(front(), "/die-during")});
  EXPECT_NE(curl.exit_code, 0) << "curl accepted a truncated response: " << curl.out;

  const std::string ok = HttpExchange(front(), GetRequest("/after"));
  EXPECT_EQ(StatusOf(ok), 200) << ok;
}

// The line of the (JSON) access log that names `target`; "" while there is none.
std::string AccessLogLineOf(const std::string& log, const std::string& target) {
  const size_t at = log.find("\"target\":\"" + target + "\"");
  if (at == std::string::npos) return "";
  const size_t begin = log.rfind('\n', at);
  const size_t end = log.find('\n', at);
  return log.substr(begin == std::string::npos ? 0 : begin + 1,
                    end == std::string::npos ? std::string::npos : end - begin - 1);
}

// Requests cut short are logged too, as NGINX logs them: a response the service aborted
// mid-body with the status that went out and the bytes sent; a request whose client went away
// before any answer with 499.
TEST_F(ProxyServiceDeathTest, RequestsCutShortGetTheirAccessLogLine) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);

  UniqueFd aborted = ConnectTcp(front());
  ASSERT_TRUE(SendAll(aborted.get(), GetRequest("/die-during")));
  std::string seen;
  ASSERT_TRUE(WaitPeerClosed(aborted.get(), kIo, &seen)) << seen;
  std::string line;
  ASSERT_TRUE(WaitFor(
      [&] { return !(line = AccessLogLineOf(h().AccessLog(), "/die-during")).empty(); }, kIo))
      << "no access-log line for a response aborted mid-body:\n"
      << h().AccessLog();
  EXPECT_THAT(line, HasSubstr("\"status\":200,")) << line;

  // The only slot (re-dialed) is busy for a while; a second client queues and resets.
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/up"))), 200);
  UniqueFd busy = ConnectTcp(front());
  ASSERT_TRUE(SendAll(busy.get(), GetRequest("/delay/1500")));
  ASSERT_TRUE(WaitFor([&] { return PoolCounter(h().admin_port(), "default", "busy") == 1; }, kIo));
  UniqueFd gone = ConnectTcp(front());
  ASSERT_TRUE(SendAll(gone.get(), GetRequest("/left-the-queue")));
  ASSERT_TRUE(
      WaitFor([&] { return PoolCounter(h().admin_port(), "default", "waiting") == 1; }, kIo));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // its time in the queue
  const linger reset{1, 0};
  setsockopt(gone.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  gone.Reset();
  ASSERT_TRUE(WaitFor(
      [&] { return !(line = AccessLogLineOf(h().AccessLog(), "/left-the-queue")).empty(); }, kIo))
      << "no access-log line for a client that left the queue:\n"
      << h().AccessLog();
  EXPECT_THAT(line, HasSubstr("\"status\":499,")) << line;
  // Its time in the queue, until it left.
  const size_t q = line.find("\"queue_ms\":");
  ASSERT_NE(q, std::string::npos) << line;
  EXPECT_GE(std::atof(line.c_str() + q + 11), 250.0) << line;
  std::string carry;
  EXPECT_EQ(StatusOf(RecvHttpResponse(busy.get(), &carry, kIo)), 200);
}

// l7px's own answers after a request took a slot are logged with their status, not as 499: a
// 502 (the service died before answering) and a 504 (silent past response_timeout).
TEST_F(ProxyServiceDeathTest, OwnAnswersAfterASlotWasTakenAreLoggedWithTheirStatus) {
  ASSERT_TRUE(
      StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"
                 "response_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  EXPECT_EQ(StatusOf(HttpExchange(
                front(), "POST /die-before HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nx")),
            502);
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/delay/1500"))), 504);
  std::string died;
  std::string silent;
  ASSERT_TRUE(WaitFor(
      [&] {
        died = AccessLogLineOf(h().AccessLog(), "/die-before");
        silent = AccessLogLineOf(h().AccessLog(), "/delay/1500");
        return !died.empty() && !silent.empty();
      },
      kIo))
      << h().AccessLog();
  EXPECT_THAT(died, HasSubstr("\"status\":502,")) << died;
  EXPECT_THAT(silent, HasSubstr("\"status\":504,")) << silent;
}

TEST_F(ProxyServiceDeathTest, ServiceKilledAndReplaced) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  ChildProcess* old_service = StartService({"--slots", "2", "--service-id", "old"});
  ASSERT_NE(old_service, nullptr);
  for (int i = 0; i < 3; ++i) {
    const std::string resp = HttpExchange(front(), GetRequest("/before"));
    ASSERT_EQ(StatusOf(resp), 200) << resp;
    EXPECT_EQ(HeaderOf(resp, "X-Service"), "old");
  }
  old_service->Kill();
  ASSERT_NE(StartService({"--slots", "2", "--service-id", "new"}), nullptr);
  for (int i = 0; i < 6; ++i) {
    const std::string resp = HttpExchange(front(), GetRequest("/after/" + std::to_string(i)));
    ASSERT_EQ(StatusOf(resp), 200) << "request " << i << ": " << resp;
    EXPECT_EQ(HeaderOf(resp, "X-Service"), "new");
  }
}

// The acceptor prunes an idle slot whose service went away before a worker can lease it. The dead
// slot is the most recently idle one (registered last; the idle stack is LIFO), so a proxy that
// kept it would hand it the next request: a POST, never retried, would get a 502, and a GET would
// pass only through a retry, which l7px_retries_total counts.
TEST_F(ProxyServiceDeathTest, DeadIdleSlotNeverServesNextRequest) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1", "--service-id", "second"}), nullptr);
  ChildProcess* first = StartService({"--slots", "1", "--service-id", "first"});
  ASSERT_NE(first, nullptr);
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 2; }, kIo));

  first->Kill();
  // "l7px notices at once": the pool counts one slot as soon as the acceptor saw the close.
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 1; }, kIo))
      << "the dead idle slot was never pruned";
  const std::string post =
      HttpExchange(front(), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
  EXPECT_EQ(StatusOf(post), 200) << post;
  EXPECT_EQ(HeaderOf(post, "X-Service"), "second") << post;
  const std::string get = HttpExchange(front(), GetRequest("/next"));
  EXPECT_EQ(StatusOf(get), 200) << get;
  EXPECT_EQ(HeaderOf(get, "X-Service"), "second") << get;
  const AdminResponse metrics = AdminCall(h().admin_port(), "GET", "/metrics");
  EXPECT_THAT(metrics.body, ::testing::HasSubstr("\nl7px_retries_total{pool=\"default\"} 0\n"))
      << metrics.body;
}

TEST_F(ProxyServiceDeathTest, ServiceClosingSlotWithConnectionCloseKeepsPoolServing) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  std::string carry;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(SendAll(fd.get(), GetRequest("/close")));
    const std::string resp = RecvHttpResponse(fd.get(), &carry, kIo);
    ASSERT_EQ(StatusOf(resp), 200) << "round " << i << ": " << resp;
    EXPECT_EQ(BodyOf(resp), "closing");
    // The service's Connection: close ends the slot, not the client connection.
    EXPECT_NE(HeaderOf(resp, "Connection"), "close") << resp;
  }
}

}  // namespace
}  // namespace l7px::testing
