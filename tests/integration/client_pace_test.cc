// Integration: each side is timed for what it does. pool.response_timeout measures the
// service's silence, never the time l7px waits for a client to take its bytes; the client's own
// reading pace is judged by server.send_timeout, and the log blames the side that stalled. Time a
// request spends waiting for a slot never counts against server.body_timeout (an Expect:
// 100-continue client is not even asked for its body yet).

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>
#include <thread>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class ClientPaceTest : public IntegrationTest {
 protected:
  // A client socket with a small receive buffer (still a full loopback segment: a smaller one
  // makes the kernel's own zero-window probing the bottleneck), so l7px's sends wait for the
  // client's reads.
  UniqueFd SlowReader() {
    UniqueFd fd = ConnectTcp(front());
    const int rcvbuf = 64 * 1024;
    if (fd) setsockopt(fd.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    return fd;
  }
};

TEST_F(ClientPaceTest, SlowButSteadyReaderIsNotCutByResponseTimeout) {
  // The response is larger than l7px's socket send buffer can take (4 MiB at most here), so once
  // that is full every send waits for the client. The client reads at most 64 KiB per 150 ms for
  // its first MiB: l7px waits on it longer than the service may be silent each time, though the
  // service is never silent at all. Then it reads the rest at full speed.
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nresponse_timeout = \"100ms\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  constexpr uint64_t kSize = 8u << 20;
  UniqueFd client = SlowReader();
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/size/" + std::to_string(kSize))));
  const StreamedResponse r =
      ReadStreamedResponse(client.get(), 'x', std::chrono::seconds(30), [](uint64_t received) {
        if (received < (1u << 20)) std::this_thread::sleep_for(std::chrono::milliseconds(150));
      });
  ASSERT_EQ(StatusOf(r.head), 200) << r.head << h().ProxyLog();
  EXPECT_TRUE(r.complete) << r.body_bytes << " of " << kSize << "\n" << h().ProxyLog();
  EXPECT_EQ(r.unexpected, 0u);
  EXPECT_THAT(h().ProxyLog(), Not(HasSubstr("response_timeout")));
}

TEST_F(ClientPaceTest, ReaderThatStopsIsCutBySendTimeoutAndBlamed) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(kDefaultPool, "send_timeout = \"400ms\"\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd client = SlowReader();
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/size/" + std::to_string(64u << 20))));
  // The client reads nothing: once the socket buffers are full l7px waits on it.
  ASSERT_TRUE(
      WaitFor([&] { return h().ProxyLog().find("past send_timeout") != std::string::npos; }, kIo))
      << h().ProxyLog();
  EXPECT_THAT(h().ProxyLog(), HasSubstr("not reading the response"));
  EXPECT_THAT(h().ProxyLog(), Not(HasSubstr("silent past response_timeout")));
  EXPECT_TRUE(WaitPeerClosed(client.get(), kIo)) << "the stalled client was not disconnected";
  EXPECT_EQ(StatsCounter(h().admin_port(), "send_timeouts"), 1);
  // The service is unaffected for everyone else.
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/after"))), "ok /after");
}

TEST_F(ClientPaceTest, ExpectContinueWhileQueuedIsNotCutByBodyTimeout) {
  h().EnableAdmin();
  // The body is longer than body_buffer, so the 100 waits for the slot; the slot is busy for
  // longer than body_timeout.
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n",
                         "body_buffer = \"1KiB\"\nbody_timeout = \"300ms\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd busy = ConnectTcp(front());
  ASSERT_TRUE(busy);
  ASSERT_TRUE(SendAll(busy.get(), GetRequest("/delay/1200")));
  ASSERT_TRUE(WaitFor([&] { return PoolCounter(h().admin_port(), "default", "busy") == 1; }, kIo));
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  const std::string body(4000, 'e');
  ASSERT_TRUE(SendAll(client.get(),
                      "POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                      "Content-Length: 4000\r\n\r\n"));
  std::string carry;
  const std::string interim = RecvHttpResponse(client.get(), &carry, kIo);
  ASSERT_EQ(StatusOf(interim), 100) << interim << h().ProxyLog();
  ASSERT_TRUE(SendAll(client.get(), body));
  const std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(ParseEcho(BodyOf(resp)).body, body);
}

}  // namespace
}  // namespace l7px::testing
