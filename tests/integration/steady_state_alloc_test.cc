// Integration: "no allocation per request in steady state", checked on the real binary. l7px
// runs with tests/support/preload/alloc_counter.cc preloaded, which counts every heap
// allocation of the process into a shared file. Once connections, slots and buffers are warm,
// thousands more requests (plain, with a request body, with a chunked request body that l7px
// re-frames, with a chunked response, pipelined, on a new connection each, and waiting in the
// queue for a slot) must not allocate at all.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

#ifdef L7PX_ALLOC_COUNTER

constexpr int kClients = 4;
// Connections of the warm-up's busiest moment: with two workers, each gets more than the
// measured rounds ever hold at once (kClients + a one-shot client or two), but for odds of
// 1e-11 (one worker getting at most 6 of 64 connections).
constexpr int kCrowd = 64;

class SteadyStateAllocTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    count_path_ = h().dir() + "/alloc-count";
    UniqueFd fd(open(count_path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd);
    ASSERT_EQ(ftruncate(fd.get(), 2 * sizeof(uint64_t)), 0);
    void* word =
        mmap(nullptr, 2 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
    ASSERT_NE(word, MAP_FAILED);
    count_ = static_cast<volatile uint64_t*>(word);
    h().SetProxyLauncher(
        {"/usr/bin/env", "LD_PRELOAD=" L7PX_ALLOC_COUNTER, "L7PX_ALLOC_COUNT_FILE=" + count_path_});
  }
  void TearDown() override {
    if (count_ != nullptr) munmap(const_cast<uint64_t*>(count_), 2 * sizeof(uint64_t));
    IntegrationTest::TearDown();
  }

  uint64_t Allocations() const { return count_[0]; }
  // While on, l7px logs the call stack of each allocation (the preloaded counter's trace).
  void Trace(bool on) { count_[1] = on ? 1 : 0; }

  // One round: every client sends each kind of request once and reads the answers. Returns
  // what went wrong, or "" when every answer was right.
  std::string Round(std::vector<UniqueFd>& clients, std::vector<std::string>& carry) {
    static const std::string kPost =
        "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: 11\r\n\r\nhello world";
    static const std::string kChunkedPost =
        "POST /echo HTTP/1.1\r\nHost: test.local\r\nTransfer-Encoding: chunked\r\n\r\n"
        "006 ; a = b\r\nchunky\r\n0\r\nX-T: 1\r\n\r\n";
    for (size_t i = 0; i < clients.size(); ++i) {
      const int fd = clients[i].get();
      std::string r;
      if (!SendAll(fd, GetRequest("/plain")) ||
          StatusOf(r = RecvHttpResponse(fd, &carry[i], kIo)) != 200) {
        return "GET /plain: " + r;
      }
      if (!SendAll(fd, kPost) ||
          (r = RecvHttpResponse(fd, &carry[i], kIo)).find("hello world") == std::string::npos) {
        return "POST /echo: " + r;
      }
      if (!SendAll(fd, kChunkedPost) ||
          (r = RecvHttpResponse(fd, &carry[i], kIo)).find("chunky") == std::string::npos) {
        return "chunked POST /echo: " + r;
      }
      if (!SendAll(fd, GetRequest("/chunked")) ||
          (r = RecvHttpResponse(fd, &carry[i], kIo)).find("chunked\r\n") == std::string::npos) {
        return "GET /chunked: " + r;
      }
      {  // A client that connects for one request.
        UniqueFd once = ConnectTcp(front());
        std::string c2;
        if (!SendAll(once.get(), GetRequest("/once", "test.local", "Connection: close\r\n")) ||
            StatusOf(r = RecvHttpResponse(once.get(), &c2, kIo)) != 200) {
          return "one-shot connection: " + r;
        }
      }
      // Two requests in one segment.
      if (!SendAll(fd, GetRequest("/a") + GetRequest("/b")) ||
          StatusOf(r = RecvHttpResponse(fd, &carry[i], kIo)) != 200 ||
          StatusOf(r = RecvHttpResponse(fd, &carry[i], kIo)) != 200) {
        return "pipelined GET /a, /b: " + r;
      }
    }
    // Every client at once, twice as many requests as slots, each holding its slot for 1 ms:
    // half of them wait in the pool's queue.
    for (size_t i = 0; i < clients.size(); ++i) {
      if (!SendAll(clients[i].get(), GetRequest("/delay/1"))) return "concurrent GET: send";
    }
    for (size_t i = 0; i < clients.size(); ++i) {
      std::string r = RecvHttpResponse(clients[i].get(), &carry[i], kIo);
      if (StatusOf(r) != 200) return "concurrent GET: " + r;
    }
    return "";
  }

  // Starts l7px with `workers` workers and a 2-slot service, warms kClients keep-alive
  // connections up, then expects no allocation while they send 8,000 more requests.
  void ExpectNoAllocationsWhenWarm(int workers) {
    h().SetLogExtra("format = \"json\"\n");  // queue_ms: which requests waited for a slot
    ASSERT_TRUE(StartProxy(kDefaultPool, "", "", workers)) << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "2"}), nullptr);
    ASSERT_GT(Allocations(), 0u) << "the counter is not preloaded: nothing counted at start-up";

    std::vector<UniqueFd> clients;
    std::vector<std::string> carry(kClients);
    for (int i = 0; i < kClients; ++i) {
      clients.push_back(ConnectTcp(front()));
      ASSERT_TRUE(clients.back());
    }
    for (int i = 0; i < 50; ++i) ASSERT_EQ(Round(clients, carry), "") << "warm-up round " << i;
    // l7px keeps what it allocated for its busiest moment (connections, exchanges, buffers) and
    // reuses it: warm up to a busier moment than the measured rounds will reach, on every
    // worker (the clients land on either), so that they never need more. The crowd's responses
    // are larger than a socket takes at once and read only when all were sent: each is read
    // ahead (pool.response_buffer) and held while its client does not read, so the response
    // buffers reach a peak the measured rounds (a response released early while the next
    // exchange on its slot starts) stay far below.
    std::vector<UniqueFd> crowd;
    for (int i = 0; i < kCrowd; ++i) {
      crowd.push_back(ConnectTcp(front()));
      ASSERT_TRUE(crowd.back());
      ASSERT_TRUE(SendAll(crowd.back().get(), GetRequest("/size/300000")));
    }
    for (UniqueFd& fd : crowd) {
      const StreamedResponse r = ReadStreamedResponse(fd.get(), 'x', kIo);
      ASSERT_EQ(StatusOf(r.head), 200);
      ASSERT_TRUE(r.complete);
    }
    crowd.clear();

    const uint64_t before = Allocations();
    Trace(true);
    constexpr int kRounds = 250;  // 8 requests per client per round: 8,000 requests
    for (int i = 0; i < kRounds; ++i) ASSERT_EQ(Round(clients, carry), "") << "round " << i;
    const uint64_t allocated = Allocations() - before;
    Trace(false);
    EXPECT_EQ(allocated, 0u) << allocated << " allocations over " << kRounds * kClients * 8
                             << " requests; where (l7px's log):\n"
                             << Tail(h().ProxyLog());
    // The queue was used, not only idle slots: the access log has requests that waited.
    EXPECT_TRUE(WaitFor(
        [&] {
          return CountOf(h().AccessLog(), "\"queue_ms\":0.000,") <
                 CountOf(h().AccessLog(), "\"queue_ms\":");
        },
        kIo))
        << Tail(h().AccessLog());
  }

  std::string count_path_;
  volatile uint64_t* count_ = nullptr;
};

TEST_F(SteadyStateAllocTest, WarmProxyServesRequestsWithoutAllocating) {
  ExpectNoAllocationsWhenWarm(/*workers=*/1);
}

// Two workers (the clients land on either), leasing the same slots in turn.
TEST_F(SteadyStateAllocTest, TwoWorkersSharingSlotsDoNotAllocate) {
  ExpectNoAllocationsWhenWarm(/*workers=*/2);
}

#else

TEST(SteadyStateAllocTest, WarmProxyServesRequestsWithoutAllocating) {
  GTEST_SKIP() << "sanitizer builds: their runtimes interpose malloc, so the counter is not built";
}

TEST(SteadyStateAllocTest, TwoWorkersSharingSlotsDoNotAllocate) {
  GTEST_SKIP() << "sanitizer builds: their runtimes interpose malloc, so the counter is not built";
}

#endif

}  // namespace
}  // namespace l7px::testing
