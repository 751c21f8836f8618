// Integration: pool.response_buffer. A response that fits it is read from the slot as fast as
// the service writes it and the slot goes back to the pool at once, so clients that read slowly
// hold l7px's memory, not the service's slots; longer responses, and responses beyond the
// worker's server.response_buffer_memory, stream at the client's pace as before. The responses
// here are larger than what the kernel's socket buffers absorb (l7px's send buffer grows to
// 4 MiB here), so a slot held for a slow reader stays held.

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

constexpr uint64_t kLarge = 8u << 20;

class ResponseBufferTest : public IntegrationTest {
 protected:
  // A client that asks for kLarge bytes and reads nothing yet (small receive buffer).
  UniqueFd SlowReader() {
    UniqueFd fd = ConnectTcp(front());
    if (!fd) return fd;
    const int rcvbuf = 64 * 1024;
    setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    if (!SendAll(fd.get(), GetRequest("/size/" + std::to_string(kLarge)))) fd.Reset();
    return fd;
  }

  int64_t Pool(const std::string& key) { return PoolCounter(h().admin_port(), "default", key); }

  // Every slow reader finally reads its whole response, byte for byte.
  void ReadAll(std::vector<UniqueFd>& readers) {
    for (UniqueFd& fd : readers) {
      const StreamedResponse r = ReadStreamedResponse(fd.get(), 'x', std::chrono::seconds(30));
      EXPECT_EQ(StatusOf(r.head), 200) << r.head;
      EXPECT_TRUE(r.complete) << r.body_bytes << " of " << kLarge;
      EXPECT_EQ(r.unexpected, 0u);
    }
  }
};

TEST_F(ResponseBufferTest, SlowReadersDoNotHoldTheServicesSlots) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(
      "[[pool]]\nname = \"default\"\nresponse_buffer = \"16MiB\"\nqueue_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  std::vector<UniqueFd> readers;
  for (int i = 0; i < 3; ++i) {  // more slow readers than the service has slots
    readers.push_back(SlowReader());
    ASSERT_TRUE(readers.back());
  }
  // Every response is read whole into l7px: both slots are idle again while no client reads.
  ASSERT_TRUE(WaitFor([&] { return Pool("idle") == 2 && Pool("waiting") == 0; }, kIo))
      << "idle " << Pool("idle") << " busy " << Pool("busy") << " waiting " << Pool("waiting");
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/fast"))), "ok /fast");
  }
  ReadAll(readers);
}

TEST_F(ResponseBufferTest, WithoutOneSlowReadersHoldTheSlots) {
  // response_buffer = 0: responses stream at the client's pace, as l7px did before the option;
  // what the option is for.
  h().EnableAdmin();
  ASSERT_TRUE(
      StartProxy("[[pool]]\nname = \"default\"\nresponse_buffer = 0\nqueue_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  std::vector<UniqueFd> readers;
  for (int i = 0; i < 2; ++i) {
    readers.push_back(SlowReader());
    ASSERT_TRUE(readers.back());
  }
  ASSERT_TRUE(WaitFor([&] { return Pool("busy") == 2; }, kIo));
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/fast"))), 503);
  EXPECT_EQ(Pool("busy"), 2);
  ReadAll(readers);
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/after"))), "ok /after");
}

TEST_F(ResponseBufferTest, LongerResponsesStreamAtTheClientsPace) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(
      "[[pool]]\nname = \"default\"\nresponse_buffer = \"1MiB\"\nqueue_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  std::vector<UniqueFd> readers;
  readers.push_back(SlowReader());
  ASSERT_TRUE(readers.back());
  // 8 MiB by Content-Length is more than the buffer: the slot stays with the slow reader.
  ASSERT_TRUE(WaitFor([&] { return Pool("busy") == 1; }, kIo));
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/fast"))), 503);
  ReadAll(readers);
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/after"))), "ok /after");
}

TEST_F(ResponseBufferTest, TheWorkersBudgetBoundsWhatIsReadAhead) {
  // Two 8 MiB responses may each be read ahead (response_buffer), but the worker (one, so both
  // share its budget) may hold only 1 MiB of them: neither fits, so both stream and hold their
  // slots. The first takes the whole budget before the second starts; the second must still
  // make progress with the one buffer it has, and both complete.
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(
      "[[pool]]\nname = \"default\"\nresponse_buffer = \"16MiB\"\nqueue_timeout = \"300ms\"\n",
      "response_buffer_memory = \"1MiB\"\n", "", /*workers=*/1))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  auto held = [&] { return StatsCounter(h().admin_port(), "response_buffer_bytes"); };
  std::vector<UniqueFd> readers;
  readers.push_back(SlowReader());
  ASSERT_TRUE(readers.back());
  ASSERT_TRUE(WaitFor([&] { return held() == (1 << 20); }, kIo)) << held();
  readers.push_back(SlowReader());
  ASSERT_TRUE(readers.back());
  ASSERT_TRUE(WaitFor([&] { return Pool("busy") == 2; }, kIo));
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/fast"))), 503);
  EXPECT_LE(held(), (1 << 20) + 64 * 1024) << "more than the budget (and one buffer) held";
  ReadAll(readers);
  EXPECT_EQ(held(), 0);
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/after"))), "ok /after");
}

}  // namespace
}  // namespace l7px::testing
