// Integration: services that break the slot protocol, played by hand over raw sockets. Each
// misbehaviour must stay inside its own exchange: the bad slot is closed, the client gets a
// well-formed answer (or exactly the declared response), and a well-behaved service registered
// next to it keeps serving.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <string>
#include <thread>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr auto kSlotCloseBound = std::chrono::seconds(3);

class MisbehavingServiceTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    h().EnableAdmin();
    ASSERT_TRUE(StartProxy(
        "[[pool]]\nname = \"default\"\nresponse_timeout = \"500ms\"\nqueue_timeout = \"3s\"\n"
        "retries = 0\n"))
        << h().ProxyLog();
  }

  // Registers a slot by hand and waits until the pool counts it. Registered after StartGood's,
  // it is the most recently idle slot, so the idle stack (LIFO) hands it the next request.
  UniqueFd RogueSlot() { return RegisterSlotByHand("rogue"); }

  void StartGood() { ASSERT_NE(StartService({"--slots", "1", "--service-id", "good"}), nullptr); }

  // A request on a fresh connection must be answered by the well-behaved service.
  void ExpectGoodServes(const std::string& path) {
    const std::string resp = HttpExchange(front(), GetRequest(path));
    EXPECT_EQ(StatusOf(resp), 200) << resp;
    EXPECT_EQ(BodyOf(resp), "ok " + path);
    EXPECT_EQ(HeaderOf(resp, "X-Service"), "good") << resp;
  }
};

TEST_F(MisbehavingServiceTest, BytesOnAnIdleSlotCloseIt) {
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  // Nobody asked: a response out of the blue would be read by the next client as its own.
  ASSERT_TRUE(SendAll(rogue.get(), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"));
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound)) << "the rogue slot was left open";
  EXPECT_TRUE(
      WaitFor([&] { return h().ProxyLog().find("protocol violation") != std::string::npos; },
              kSlotCloseBound))
      << "not logged";
  StartGood();
  for (int i = 0; i < 3; ++i) ExpectGoodServes("/after/" + std::to_string(i));
}

TEST_F(MisbehavingServiceTest, BytesOnASlotIdleAfterServingCloseIt) {
  StartGood();
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  // The rogue slot answers one request properly...
  auto served = AnswerOneRequest(rogue.get(), "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfine");
  const std::string first = HttpExchange(front(), GetRequest("/first"));
  ASSERT_TRUE(served.get());
  EXPECT_EQ(BodyOf(first), "fine") << first;
  // ...then sits idle long enough for the acceptor to watch it for bytes, and talks anyway.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_TRUE(SendAll(rogue.get(), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstale"));
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound)) << "the rogue slot was left open";
  for (int i = 0; i < 3; ++i) ExpectGoodServes("/after/" + std::to_string(i));
}

TEST_F(MisbehavingServiceTest, ResponseLongerThanDeclaredInTheSameWrite) {
  StartGood();
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  auto served =
      AnswerOneRequest(rogue.get(), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA BYTES");
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  std::string carry;
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/declared")));
  const std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
  ASSERT_TRUE(served.get());
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "hello");
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound)) << "the rogue slot was reused";
  // The same client connection goes on, unaffected, with the good service.
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/next")));
  const std::string next = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(BodyOf(next), "ok /next") << next;
  EXPECT_EQ(HeaderOf(next, "X-Service"), "good");
  EXPECT_TRUE(carry.empty()) << "bytes beyond the declared body reached the client: " << carry;
}

TEST_F(MisbehavingServiceTest, ResponseLongerThanDeclaredArrivingLater) {
  StartGood();
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  auto served = std::async(std::launch::async, [&] {
    std::string carry;
    if (RecvHttpRequest(rogue.get(), &carry, kIo).empty()) return false;
    if (!SendAll(rogue.get(), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")) return false;
    // After l7px saw the response complete and put the slot back.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return SendAll(rogue.get(), "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra");
  });
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  std::string carry;
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/declared")));
  const std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(BodyOf(resp), "hello") << resp;
  ASSERT_TRUE(served.get());
  const auto start = Clock::now();
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound)) << "the rogue slot was kept";
  RecordProperty("late_bytes_slot_closed_ms", static_cast<int>(MillisSince(start)));
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/next")));
  const std::string next = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(BodyOf(next), "ok /next") << next;
  EXPECT_EQ(HeaderOf(next, "X-Service"), "good");
}

// Sends `interim` 1xx responses, then a 200, as one write.
std::string InterimThenFinal(int interim) {
  std::string out;
  for (int i = 0; i < interim; ++i) out += "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n";
  return out + "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone";
}

// Reads 1xx responses up to the final one; returns it and counts the 1xx.
std::string RecvFinal(int fd, std::string* carry, int* interim) {
  while (true) {
    const std::string resp = RecvHttpResponse(fd, carry, kIo);
    const int status = StatusOf(resp);
    if (status < 100 || status >= 200) return resp;
    ++*interim;
  }
}

TEST_F(MisbehavingServiceTest, SixteenInterimResponsesAreForwarded) {
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  auto served = AnswerOneRequest(rogue.get(), InterimThenFinal(16));
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/hints")));
  std::string carry;
  int interim = 0;
  const std::string resp = RecvFinal(client.get(), &carry, &interim);
  ASSERT_TRUE(served.get());
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "done");
  EXPECT_EQ(interim, 16);
}

TEST_F(MisbehavingServiceTest, InterimFloodIs502AndClosesTheSlot) {
  StartGood();
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  auto served = AnswerOneRequest(rogue.get(), InterimThenFinal(200));
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/flood")));
  std::string carry;
  int interim = 0;
  const std::string resp = RecvFinal(client.get(), &carry, &interim);
  served.wait();
  EXPECT_EQ(StatusOf(resp), 502) << resp;
  EXPECT_LE(interim, 16);
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound));
  EXPECT_TRUE(
      WaitFor([&] { return h().ProxyLog().find("interim (1xx) responses") != std::string::npos; },
              kSlotCloseBound))
      << "not logged";
  ExpectGoodServes("/after");
}

TEST_F(MisbehavingServiceTest, SlotThatNeverAnswersIs504AndClosed) {
  StartGood();
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  std::string request;
  auto read = std::async(std::launch::async, [&] {
    std::string carry;
    request = RecvHttpRequest(rogue.get(), &carry, kIo);  // and then nothing
  });
  const auto start = Clock::now();
  const std::string resp = HttpExchange(front(), GetRequest("/silence"));
  const long elapsed = MillisSince(start);
  read.wait();
  EXPECT_THAT(request, ::testing::StartsWith("GET /silence HTTP/1.1\r\n"));
  EXPECT_EQ(StatusOf(resp), 504) << resp;
  EXPECT_GE(elapsed, 400);
  EXPECT_LT(elapsed, 2500);
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound));
  ExpectGoodServes("/after");
}

TEST_F(MisbehavingServiceTest, ResponseThatStopsMidBodyIsCutByResponseTimeout) {
  StartGood();
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  auto served = std::async(std::launch::async, [&] {
    std::string carry;
    if (RecvHttpRequest(rogue.get(), &carry, kIo).empty()) return false;
    // A chunked body that never gets its last chunk.
    return SendAll(rogue.get(),
                   "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n");
  });
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  const auto start = Clock::now();
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/endless")));
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(client.get(), kIo, &seen));
  const long elapsed = MillisSince(start);
  ASSERT_TRUE(served.get());
  // The head and the first chunk went out; then the client connection was aborted, so the
  // client can tell the body is incomplete (no last chunk).
  EXPECT_EQ(StatusOf(seen), 200) << seen;
  EXPECT_THAT(seen, HasSubstr("5\r\nfirst\r\n"));
  EXPECT_THAT(seen, ::testing::Not(HasSubstr("0\r\n\r\n")));
  EXPECT_GE(elapsed, 400);
  EXPECT_LT(elapsed, 2500);
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound));
  ExpectGoodServes("/after");
}

TEST_F(MisbehavingServiceTest, TricklingResponseStaysInItsExchange) {
  // A response that keeps coming is not silent: response_timeout (silence between reads) does
  // not cut it, like nginx's proxy_read_timeout. It holds one slot and one client, nothing else,
  // and ends with its client.
  StartGood();
  UniqueFd rogue = RogueSlot();
  ASSERT_TRUE(rogue);
  std::atomic<bool> stop{false};
  auto trickle = std::async(std::launch::async, [&] {
    std::string carry;
    if (RecvHttpRequest(rogue.get(), &carry, kIo).empty()) return 0;
    if (!SendAll(rogue.get(), "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")) return 0;
    int chunks = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!stop.load() && Clock::now() < deadline) {
      if (!SendAll(rogue.get(), "1\r\n.\r\n")) break;
      ++chunks;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return chunks;
  });
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/trickle")));
  // Well past response_timeout (500 ms), the trickle still flows...
  std::string seen;
  const auto until = Clock::now() + std::chrono::milliseconds(1200);
  char buf[4096];
  while (Clock::now() < until) {
    const ssize_t n = RecvSome(client.get(), buf, sizeof(buf), until);
    if (n <= 0) break;
    seen.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(StatusOf(seen), 200) << seen;
  EXPECT_GE(CountOf(seen, "1\r\n.\r\n"), 8) << seen;
  // ...while the other service serves everyone else.
  for (int i = 0; i < 3; ++i) ExpectGoodServes("/meanwhile/" + std::to_string(i));
  // The client leaves: the slot it was using is closed, not handed to anyone else.
  client.Reset();
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kSlotCloseBound));
  stop.store(true);
  trickle.wait();
  ExpectGoodServes("/after");
}

}  // namespace
}  // namespace l7px::testing
