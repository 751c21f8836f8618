// Integration: bodies are streamed with backpressure, never buffered whole — a 50 MB response
// to a slow client and a 20 MB upload pass through l7px without its memory growing by their
// size.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstdio>
#include <string>
#include <thread>

#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

#if defined(__SANITIZE_THREAD__)
// ThreadSanitizer's shadow memory grows with every byte the proxy touches: the bound only
// catches whole-body buffering there.
constexpr long kMaxGrowthKiB = 128 * 1024;
#else
constexpr long kMaxGrowthKiB = 32 * 1024;
#endif

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

}  // namespace
}  // namespace l7px::testing
