// Integration: bodies are streamed with backpressure, never buffered whole — a 50 MB response
// to a slow client, a 20 MB upload, and a 128 MB upload to a service that stops reading pass
// through l7px without its memory growing by more than its receive buffers explain.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <future>
#include <string>
#include <thread>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"
#include "support/sanitizers.h"

namespace l7px::testing {
namespace {

// What the buffers explain. Each worker receives into a ring of 512 provided buffers of 16 KiB
// (README "Receive buffers"; kProvidedBufferCount/Size in src/proxy/worker.cc): one connection
// moving megabytes cycles through all of them, and one whose input is full may hold them all, so
// 8 MiB of growth is the ring's. Per-connection buffers (input, heads, a response buffer) are
// under 1 MiB.
constexpr long kReceiveRingKiB = 512 * 16;
// Measured, plain build: the 20 MiB upload +8,264 KiB, the stalled upload +8,292 KiB at its
// peak, the 50 MiB response +4 KiB; the ring plus 2 MiB of margin. Under ASan (clang and gcc) about
// +8,300 and +8,550 KiB: the same bound. Under TSan, whose shadow memory costs about five bytes per
// byte the proxy touches, +42,728 and +44,552 KiB: seven rings. A proxy that holds a 20 MiB body
// whole grows by 20 MiB more than the ring (about 100 MiB more under TSan) and fails.
constexpr long kMaxGrowthKiB =
    PerBuild(kReceiveRingKiB + 2 * 1024, kReceiveRingKiB + 2 * 1024, 7 * kReceiveRingKiB);

class ProxyStreamingTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\n", "max_body_bytes = \"64MiB\"\n"))
        << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "2"}), nullptr);
    // Warm up every worker path once so the baseline includes steady-state buffers.
    for (int i = 0; i < 4; ++i) {
      ASSERT_EQ(StatusOf(HttpExchange(front(), GetRequest("/size/100000"))), 200);
    }
    baseline_kib_ = h().ProxyRssKiB();
    ASSERT_GT(baseline_kib_, 0);
  }

  long baseline_kib_ = 0;
};

TEST_F(ProxyStreamingTest, FiftyMegabyteResponseToSlowClient) {
  constexpr uint64_t kSize = 50ull * 1024 * 1024;
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  const int rcvbuf = 64 * 1024;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  ASSERT_TRUE(SendAll(fd.get(), GetRequest("/size/" + std::to_string(kSize))));

  // Stall after the first megabyte: a proxy without backpressure would now pull the whole body
  // from the service into memory. Then read the rest at full speed.
  bool stalled = false;
  long rss_while_stalled = 0;
  const StreamedResponse r =
      ReadStreamedResponse(fd.get(), 'x', std::chrono::seconds(60), [&](uint64_t received) {
        if (!stalled && received >= (1u << 20)) {
          stalled = true;
          std::this_thread::sleep_for(std::chrono::milliseconds(500));
          rss_while_stalled = h().ProxyRssKiB();
        }
      });
  ASSERT_EQ(StatusOf(r.head), 200) << r.head;
  EXPECT_EQ(HeaderOf(r.head, "Content-Length"), std::to_string(kSize));
  EXPECT_TRUE(r.complete) << r.body_bytes << " of " << kSize;
  EXPECT_EQ(r.body_bytes, kSize);
  EXPECT_EQ(r.unexpected, 0u);

  const long peak_kib = h().ProxyPeakRssKiB();
  RecordProperty("baseline_kib", static_cast<int>(baseline_kib_));
  RecordProperty("stalled_kib", static_cast<int>(rss_while_stalled));
  RecordProperty("peak_kib", static_cast<int>(peak_kib));
  EXPECT_LT(rss_while_stalled - baseline_kib_, kMaxGrowthKiB)
      << "baseline " << baseline_kib_ << " KiB, while stalled " << rss_while_stalled << " KiB";
  EXPECT_LT(peak_kib - baseline_kib_, kMaxGrowthKiB)
      << "baseline " << baseline_kib_ << " KiB, peak " << peak_kib << " KiB";

  // The connection and the slot are reusable afterwards.
  ASSERT_TRUE(SendAll(fd.get(), GetRequest("/after")));
  std::string carry;
  const std::string next = RecvHttpResponse(fd.get(), &carry, std::chrono::seconds(10));
  EXPECT_EQ(BodyOf(next), "ok /after") << next;
}

TEST_F(ProxyStreamingTest, TwentyMegabyteUploadStreamedToService) {
  constexpr size_t kSize = 20u * 1024 * 1024;
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(SendAll(fd.get(), "POST /echo HTTP/1.1\r\nHost: test.local\r\nContent-Length: " +
                                    std::to_string(kSize) + "\r\n\r\n"));
  const std::string block(1 << 20, 'y');
  for (size_t sent = 0; sent < kSize; sent += block.size()) {
    ASSERT_TRUE(SendAll(fd.get(), block)) << "after " << sent << " bytes";
  }
  std::string carry;
  const std::string resp = RecvHttpResponse(fd.get(), &carry, std::chrono::seconds(60));
  ASSERT_EQ(StatusOf(resp), 200) << resp.substr(0, 300);
  const EchoedRequest echo = ParseEcho(BodyOf(resp));
  EXPECT_EQ(echo.request_line, "POST /echo");
  EXPECT_THAT(echo.All("Content-Length"), ::testing::ElementsAre(std::to_string(kSize)));
  EXPECT_EQ(echo.body.size(), kSize);
  EXPECT_EQ(echo.body.find_first_not_of('y'), std::string::npos);

  const long peak_kib = h().ProxyPeakRssKiB();
  std::printf("[ measure  ] 20 MiB upload: RSS baseline %ld KiB, peak %ld KiB (+%ld KiB)\n",
              baseline_kib_, peak_kib, peak_kib - baseline_kib_);
  EXPECT_LT(peak_kib - baseline_kib_, kMaxGrowthKiB)
      << "baseline " << baseline_kib_ << " KiB, peak " << peak_kib << " KiB";
}

TEST_F(ProxyStreamingTest, ChunkedUploadOfSeveralMegabytes) {
  constexpr size_t kChunks = 64;
  constexpr size_t kChunk = 64 * 1024;
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(
      SendAll(fd.get(), "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"));
  std::string expected;
  for (size_t i = 0; i < kChunks; ++i) {
    const std::string data(kChunk, static_cast<char>('a' + i % 26));
    expected += data;
    char size_line[32];
    snprintf(size_line, sizeof(size_line), "%zx\r\n", data.size());
    ASSERT_TRUE(SendAll(fd.get(), size_line + data + "\r\n"));
  }
  ASSERT_TRUE(SendAll(fd.get(), "0\r\n\r\n"));
  std::string carry;
  const std::string resp = RecvHttpResponse(fd.get(), &carry, std::chrono::seconds(30));
  ASSERT_EQ(StatusOf(resp), 200) << resp.substr(0, 300);
  EXPECT_TRUE(ParseEcho(BodyOf(resp)).body == expected) << "echoed body differs";
}

TEST_F(ProxyStreamingTest, ChunkedResponsePassesThrough) {
  const std::string resp = HttpExchange(front(), GetRequest("/chunked"));
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "hello chunked world") << resp;
  const CurlResult r = RunCurl({FrontUrl(front(), "/chunked")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "hello chunked world");
}

// README: "an upload of any size costs no more memory than the buffer". Here the service takes
// the request and then reads nothing: the client pushes a 128 MiB body until backpressure stops
// it, and l7px, which must not read what it cannot pass on, holds at most its receive buffers.
// A proxy that read the body into memory would take it all (the client would never block).
class UploadMemoryTest : public IntegrationTest {};

TEST_F(UploadMemoryTest, UploadToAServiceThatStopsReadingHoldsOnlyTheBuffers) {
  constexpr size_t kSize = 128u << 20;
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(kDefaultPool, "max_body_bytes = \"256MiB\"\n", "", /*workers=*/1))
      << h().ProxyLog();
  std::string answer;
  UniqueFd slot = RegisterByHand(h().register_port(), RegistrationHead(), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 1; }, kIo));
  // Small kernel buffers on both ends, so that the kernel holds little of the body.
  const int small = 256 * 1024;
  setsockopt(slot.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
  const long baseline_kib = h().ProxyRssKiB();

  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  setsockopt(client.get(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  ASSERT_TRUE(SendAll(client.get(), "POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: " +
                                        std::to_string(kSize) + "\r\n\r\n"));
  // The service sees the request start (its head, past body_buffer), then stops reading.
  const std::string first = RecvUntil(slot.get(), "\r\n\r\n", kIo);
  ASSERT_THAT(first, ::testing::HasSubstr("POST /up "));
  const std::string early_body = first.substr(first.find("\r\n\r\n") + 4);

  // Push until nothing moves for 500 ms (bounded: 30 s, never the whole body unless l7px reads
  // what it cannot forward).
  const std::string block(1 << 16, 'u');
  size_t sent = 0;
  const auto start = std::chrono::steady_clock::now();
  while (sent < kSize && std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    const ssize_t n = send(client.get(), block.data(), std::min(block.size(), kSize - sent),
                           MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    ASSERT_TRUE(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) << "send failed: " << errno;
    pollfd p{client.get(), POLLOUT, 0};
    if (poll(&p, 1, 500) == 0) break;  // stalled: backpressure reached the client
  }
  const long stalled_kib = h().ProxyRssKiB();
  std::printf("[ measure  ] stalled upload: %zu KiB sent; RSS %ld -> %ld KiB (+%ld KiB)\n",
              sent >> 10, baseline_kib, stalled_kib, stalled_kib - baseline_kib);
  EXPECT_LT(sent, kSize) << "the client sent the whole body to a service that read none of it";
  EXPECT_LT(stalled_kib - baseline_kib, kMaxGrowthKiB)
      << "baseline " << baseline_kib << " KiB, with the stalled upload " << stalled_kib << " KiB";

  // The service reads on: every byte arrives, and the client gets the answer.
  auto service = std::async(std::launch::async, [&]() -> uint64_t {
    uint64_t got = early_body.size();
    uint64_t wrong = early_body.find_first_not_of('u') == std::string::npos ? 0 : 1;
    char buf[65536];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (got < kSize) {
      const ssize_t n = RecvSome(slot.get(), buf, sizeof(buf), deadline);
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) wrong += buf[i] != 'u';
      got += static_cast<uint64_t>(n);
    }
    SendAll(slot.get(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    return wrong == 0 ? got : 0;
  });
  while (sent < kSize) {
    const size_t n = std::min(block.size(), kSize - sent);
    ASSERT_TRUE(SendAll(client.get(), block.substr(0, n))) << "after " << sent << " bytes";
    sent += n;
  }
  EXPECT_EQ(service.get(), kSize);
  std::string carry;
  const std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  const long peak_kib = h().ProxyPeakRssKiB();
  std::printf("[ measure  ] stalled upload: RSS peak %ld KiB (+%ld KiB)\n", peak_kib,
              peak_kib - baseline_kib);
  EXPECT_LT(peak_kib - baseline_kib, kMaxGrowthKiB)
      << "baseline " << baseline_kib << " KiB, peak " << peak_kib << " KiB";
}

}  // namespace
}  // namespace l7px::testing
