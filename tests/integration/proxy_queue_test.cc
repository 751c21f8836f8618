// Integration: the per-pool wait queue and shedding (queue_timeout, queue full), and throughput
// bounded by the slots the service declared.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using Clock = std::chrono::steady_clock;

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

class ProxyQueueTest : public IntegrationTest {};

// /pools "served" counts the services' complete responses, nothing else. Requests queued
// behind a busy slot whose clients reset after l7px stopped reading their bodies are shed at
// queue_timeout with a 503 that never reaches them: "served" stays as it was (it used to be
// "logged requests less shed ones", and went down by one for each).
TEST_F(ProxyQueueTest, ServedCountsServiceResponsesNotShedRequests) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/ok"))), "ok /ok");
  }
  ASSERT_TRUE(
      WaitFor([&] { return PoolCounter(h().admin_port(), "default", "served") == 3; }, kIo));
  UniqueFd busy = ConnectTcp(front());
  ASSERT_TRUE(SendAll(busy.get(), GetRequest("/delay/1500")));
  ASSERT_TRUE(WaitFor([&] { return PoolCounter(h().admin_port(), "default", "busy") == 1; }, kIo));
  std::vector<UniqueFd> uploads;
  for (int i = 0; i < 4; ++i) {
    uploads.push_back(ConnectTcp(front()));
    ASSERT_TRUE(uploads.back());
    ASSERT_TRUE(SendAll(uploads.back().get(),
                        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" +
                            std::string(200000, 'b')));
  }
  // l7px has stopped reading them (its input buffer is full); then each client resets.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  for (UniqueFd& c : uploads) {
    const linger reset{1, 0};
    setsockopt(c.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    c.Reset();
  }
  std::string rest;
  EXPECT_EQ(BodyOf(RecvHttpResponse(busy.get(), &rest, kIo)), "ok /delay/1500");
  ASSERT_TRUE(
      WaitFor([&] { return PoolCounter(h().admin_port(), "default", "waiting") == 0; }, kIo));
  EXPECT_EQ(PoolCounter(h().admin_port(), "default", "served"), 4)
      << AdminCall(h().admin_port(), "GET", "/pools").body;
}

// A queued upload whose client resets while l7px has stopped reading it (its input is full)
// leaves the queue at once, not when queue_timeout (here 20 s) ends it: l7px watches for the
// reset while it does not read. The request on the busy slot is not disturbed, and the next
// request gets the slot as soon as it frees.
TEST_F(ProxyQueueTest, AQueuedClientThatResetsLeavesTheQueueAtOnce) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"20s\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd busy = ConnectTcp(front());
  ASSERT_TRUE(SendAll(busy.get(), GetRequest("/delay/3000")));
  ASSERT_TRUE(WaitFor([&] { return PoolCounter(h().admin_port(), "default", "busy") == 1; }, kIo));
  UniqueFd upload = ConnectTcp(front());
  ASSERT_TRUE(
      SendAll(upload.get(), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\n\r\n" +
                                std::string(200000, 'b')));
  ASSERT_TRUE(
      WaitFor([&] { return PoolCounter(h().admin_port(), "default", "waiting") == 1; }, kIo));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // l7px stops reading it
  const linger reset{1, 0};
  setsockopt(upload.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  upload.Reset();
  // Well before the busy request's 3 s end, let alone queue_timeout.
  const auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitFor([&] { return PoolCounter(h().admin_port(), "default", "waiting") == 0; },
                      std::chrono::milliseconds(1500)))
      << h().ProxyLog();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1500));
  std::string rest;
  EXPECT_EQ(BodyOf(RecvHttpResponse(busy.get(), &rest, kIo)), "ok /delay/3000");
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/next"))), "ok /next");
}

TEST_F(ProxyQueueTest, NoSlotsLeftIs503AfterQueueTimeout) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  ChildProcess* service = StartService({"--slots", "2", "--service-id", "doomed"});
  ASSERT_NE(service, nullptr);
  ASSERT_EQ(StatusOf(HttpExchange(front(), GetRequest("/warm"))), 200);

  service->Kill();
  // The proxy notices the closed idle slots (logged once per slot); a bounded wait, not a sleep.
  WaitFor([&] { return Count(h().ProxyLog(), "closed an idle slot") >= 2; },
          std::chrono::seconds(3));

  const auto start = Clock::now();
  const std::string resp = HttpExchange(front(), GetRequest("/nobody-home"));
  const long elapsed = MillisSince(start);
  EXPECT_EQ(StatusOf(resp), 503) << resp;
  EXPECT_FALSE(HeaderOf(resp, "Retry-After").empty()) << resp;
  EXPECT_GE(elapsed, 250);
  EXPECT_LT(elapsed, 3000);
}

TEST_F(ProxyQueueTest, EmptyPoolFromStartIs503AfterQueueTimeout) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  const auto start = Clock::now();
  const std::string resp = HttpExchange(front(), GetRequest("/nobody"));
  const long elapsed = MillisSince(start);
  EXPECT_EQ(StatusOf(resp), 503) << resp;
  EXPECT_FALSE(HeaderOf(resp, "Retry-After").empty()) << resp;
  EXPECT_GE(elapsed, 250);
  EXPECT_LT(elapsed, 3000);
}

TEST_F(ProxyQueueTest, QueuedRequestServedWhenSlotArrives) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(SendAll(fd.get(), GetRequest("/waited")));
  // The request waits in the queue; a service registering now takes it.
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  std::string carry;
  const std::string resp = RecvHttpResponse(fd.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "ok /waited");
}

TEST_F(ProxyQueueTest, QueueFullShedsAtOnce) {
  // One worker, so the three connections are handled in the order they were opened.
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue = 1\nqueue_timeout = \"5s\"\n", "",
                         "", /*workers=*/1))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);

  UniqueFd busy = ConnectTcp(front());
  ASSERT_TRUE(busy);
  ASSERT_TRUE(SendAll(busy.get(), GetRequest("/delay/1000")));
  UniqueFd waiter = ConnectTcp(front());
  ASSERT_TRUE(waiter);
  ASSERT_TRUE(SendAll(waiter.get(), GetRequest("/queued")));
  // Both requests reached the proxy once a third connection's request is read after them; the
  // slot is busy for a second, the queue holds one.
  const auto start = Clock::now();
  const std::string shed = HttpExchange(front(), GetRequest("/shed"));
  const long elapsed = MillisSince(start);
  EXPECT_EQ(StatusOf(shed), 503) << shed;
  EXPECT_FALSE(HeaderOf(shed, "Retry-After").empty()) << shed;
  EXPECT_LT(elapsed, 500);

  std::string carry;
  const std::string first = RecvHttpResponse(busy.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(first), 200) << first;
  EXPECT_EQ(BodyOf(first), "ok /delay/1000");
  carry.clear();
  const std::string second = RecvHttpResponse(waiter.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(second), 200) << second;
  EXPECT_EQ(BodyOf(second), "ok /queued");
}

TEST_F(ProxyQueueTest, ThroughputBoundedByDeclaredSlots) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"10s\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2", "--delay-ms", "50"}), nullptr);

  constexpr int kClients = 16;
  const auto run_for = std::chrono::seconds(2);
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::vector<std::thread> clients;
  const auto start = Clock::now();
  const auto deadline = start + run_for;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back([&, i] {
      UniqueFd fd = ConnectTcp(front());
      std::string carry;
      int n = 0;
      while (fd && Clock::now() < deadline) {
        if (!SendAll(fd.get(), GetRequest("/t/" + std::to_string(i) + "/" + std::to_string(n++)))) {
          ++failed;
          return;
        }
        const std::string resp = RecvHttpResponse(fd.get(), &carry, kIo);
        if (StatusOf(resp) == 200) {
          ++ok;
        } else {
          ++failed;
          return;
        }
      }
    });
  }
  for (std::thread& t : clients) t.join();
  const double elapsed_s = MillisSince(start) / 1000.0;
  const double rate = ok.load() / elapsed_s;
  EXPECT_EQ(failed.load(), 0);
  // 2 slots x (1 request / 50 ms) = 40 requests/s.
  EXPECT_GE(rate, 25.0) << ok.load() << " requests in " << elapsed_s << " s";
  EXPECT_LE(rate, 45.0) << ok.load() << " requests in " << elapsed_s << " s";

  const std::string conc = HttpExchange(front(), GetRequest("/concurrency"));
  ASSERT_EQ(StatusOf(conc), 200) << conc;
  const std::string body = BodyOf(conc);
  const size_t max_pos = body.find("max=");
  ASSERT_NE(max_pos, std::string::npos) << body;
  const int max_inflight = std::atoi(body.c_str() + max_pos + 4);
  EXPECT_GE(max_inflight, 1);
  EXPECT_LE(max_inflight, 2) << body;
}

}  // namespace
}  // namespace l7px::testing
