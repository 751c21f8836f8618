// Integration: server.body_buffer — a small request body is received whole before the request
// takes a slot, so a slow upload holds no slot while it trickles in; longer bodies (and every
// body with body_buffer = 0) stream from the head on and hold their slot while they arrive.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// One slot, a short queue wait: a request stuck behind a slot-holding upload is shed in 400 ms.
constexpr char kOneSlotPool[] = "[[pool]]\nname = \"default\"\nqueue_timeout = \"400ms\"\n";
// A chunked upload's head and first chunk; the rest is up to the test.
constexpr char kChunkedUploadStart[] =
    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n";

std::string UploadHead(size_t length, const std::string& extra = "") {
  return "POST /echo HTTP/1.1\r\nHost: x\r\n" + extra +
         "Content-Length: " + std::to_string(length) + "\r\n\r\n";
}

class BodyBufferTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    h().EnableAdmin();  // /stats tells when l7px has parsed a head
  }

  // Requests whose head l7px has parsed (admin /stats), or -1.
  int64_t RequestsSeen() { return StatsCounter(h().admin_port(), "requests"); }

  // Opens a connection, sends `head_and_part` (a request head and the start of its body) and
  // waits until l7px has parsed the head, so a request sent after it cannot overtake it.
  UniqueFd StartUpload(const std::string& head_and_part) {
    const int64_t before = RequestsSeen();
    UniqueFd fd = ConnectTcp(front());
    if (!fd || !SendAll(fd.get(), head_and_part)) return UniqueFd();
    if (!WaitFor([&] { return RequestsSeen() > before; }, std::chrono::seconds(5)))
      return UniqueFd();
    return fd;
  }

  // A GET on a new connection: its status and how long it took.
  std::pair<int, long> TimedGet(const std::string& path) {
    const auto start = Clock::now();
    const std::string resp = HttpExchange(front(), GetRequest(path));
    return {StatusOf(resp), MillisSince(start)};
  }

  // The other side of the rule: a body that streams holds its slot while it arrives, so a GET
  // waits in the queue and is shed after queue_timeout (which is also what the tests above
  // would see if small bodies streamed). Then the upload completes.
  void ExpectStreamingUploadHoldsTheSlot(UniqueFd upload, size_t length, size_t sent) {
    ASSERT_TRUE(upload);
    const auto start = Clock::now();
    const std::string shed = HttpExchange(front(), GetRequest("/behind"));
    EXPECT_EQ(StatusOf(shed), 503) << shed;
    EXPECT_GE(MillisSince(start), 350);
    ASSERT_TRUE(SendAll(upload.get(), std::string(length - sent, 'b')));
    std::string carry;
    const std::string resp = RecvHttpResponse(upload.get(), &carry, kIo);
    ASSERT_EQ(StatusOf(resp), 200) << resp;
    EXPECT_EQ(ParseEcho(BodyOf(resp)).body.size(), length);
  }

  struct ContinueUpload {
    std::string interim;  // what came back before the body was sent
    long interim_ms = 0;  // ... and after how long
    std::string response;
  };

  // Occupies the pool's only slot with a /delay/<busy_ms> request, then POSTs `body` with
  // Expect: 100-continue: waits for the interim answer before sending the body, as a client
  // does, and reads the final response.
  ContinueUpload UploadExpectingContinueWhileSlotBusy(int busy_ms, const std::string& body) {
    ContinueUpload r;
    busy_ = ConnectTcp(front());
    if (!busy_ || !SendAll(busy_.get(), GetRequest("/delay/" + std::to_string(busy_ms))) ||
        !WaitFor([&] { return RequestsSeen() >= 1; }, std::chrono::seconds(5))) {
      return r;
    }
    const auto start = Clock::now();
    UniqueFd client = ConnectTcp(front());
    if (!client || !SendAll(client.get(), UploadHead(body.size(), "Expect: 100-continue\r\n"))) {
      return r;
    }
    std::string carry;
    r.interim = RecvHttpResponse(client.get(), &carry, kIo);
    r.interim_ms = MillisSince(start);
    if (SendAll(client.get(), body)) r.response = RecvHttpResponse(client.get(), &carry, kIo);
    return r;
  }

  UniqueFd busy_;  // the connection holding the only slot
};

TEST_F(BodyBufferTest, SlowSmallBodyHoldsNoSlot) {
  ASSERT_TRUE(StartProxy(kOneSlotPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd upload = StartUpload(UploadHead(200) + std::string(100, 'a'));
  ASSERT_TRUE(upload);
  // Half the body is in; the one slot is free for everyone else meanwhile.
  for (int i = 0; i < 3; ++i) {
    const auto [status, ms] = TimedGet("/fast");
    EXPECT_EQ(status, 200) << "a GET behind a half-sent small upload, after " << ms << " ms";
  }
  ASSERT_TRUE(SendAll(upload.get(), std::string(100, 'b')));
  std::string carry;
  const std::string resp = RecvHttpResponse(upload.get(), &carry, kIo);
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(ParseEcho(BodyOf(resp)).body, std::string(100, 'a') + std::string(100, 'b'));
}

TEST_F(BodyBufferTest, SlowChunkedBodyIsBufferedUntilItsLastChunk) {
  ASSERT_TRUE(StartProxy(kOneSlotPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd upload = StartUpload(kChunkedUploadStart);
  ASSERT_TRUE(upload);
  const auto [status, ms] = TimedGet("/fast");
  EXPECT_EQ(status, 200) << "a GET behind a half-sent chunked upload, after " << ms << " ms";
  ASSERT_TRUE(SendAll(upload.get(), "7\r\n, world\r\n0\r\n\r\n"));
  std::string carry;
  const std::string resp = RecvHttpResponse(upload.get(), &carry, kIo);
  ASSERT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(ParseEcho(BodyOf(resp)).body, "hello, world");
}

TEST_F(BodyBufferTest, BodyBufferZeroStreamsEveryBody) {
  ASSERT_TRUE(StartProxy(kOneSlotPool, "body_buffer = 0\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  ExpectStreamingUploadHoldsTheSlot(StartUpload(UploadHead(200) + std::string(100, 'a')), 200, 100);
}

TEST_F(BodyBufferTest, BodyLongerThanTheBufferStreams) {
  ASSERT_TRUE(StartProxy(kOneSlotPool, "body_buffer = \"1KiB\"\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  ExpectStreamingUploadHoldsTheSlot(StartUpload(UploadHead(2000) + std::string(100, 'a')), 2000,
                                    100);
}

TEST_F(BodyBufferTest, ExpectContinueForASmallBodyIsAnsweredWithoutASlot) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  // The only slot is busy for 1.5 s; l7px asks for the small body at once.
  const ContinueUpload r = UploadExpectingContinueWhileSlotBusy(1500, "hello");
  EXPECT_EQ(StatusOf(r.interim), 100) << r.interim;
  EXPECT_LT(r.interim_ms, 1000) << "the 100 waited for the slot";
  ASSERT_EQ(StatusOf(r.response), 200) << r.response;
  const EchoedRequest echo = ParseEcho(BodyOf(r.response));
  EXPECT_EQ(echo.body, "hello");
  EXPECT_FALSE(echo.Has("Expect")) << "the service must not answer the Expect a second time";
}

TEST_F(BodyBufferTest, ExpectContinueForALongBodyWaitsForTheSlot) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n",
                         "body_buffer = \"1KiB\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  const std::string body(4000, 'c');
  const ContinueUpload r = UploadExpectingContinueWhileSlotBusy(800, body);
  EXPECT_EQ(StatusOf(r.interim), 100) << r.interim;
  // The client is not asked to upload 4000 bytes that would only wait for the slot.
  EXPECT_GE(r.interim_ms, 500) << "the 100 came before the slot was free";
  ASSERT_EQ(StatusOf(r.response), 200) << r.response;
  EXPECT_EQ(ParseEcho(BodyOf(r.response)).body, body);
}

TEST_F(BodyBufferTest, UploadAbandonedMidBodyNeverReachesTheService) {
  ASSERT_TRUE(StartProxy(kOneSlotPool)) << h().ProxyLog();
  std::string answer;
  UniqueFd slot = RegisterByHand(h().register_port(), RegistrationHead("", "", "by-hand"), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  {
    UniqueFd upload = StartUpload(UploadHead(300) + std::string(10, 'a'));
    ASSERT_TRUE(upload);
  }  // the client gives up mid-body
  // The next request is the first thing the slot sees, and the slot is still the same one.
  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/after")));
  std::string carry;
  const std::string request = RecvHttpRequest(slot.get(), &carry, kIo);
  EXPECT_THAT(request, ::testing::StartsWith("GET /after ")) << request;
  ASSERT_TRUE(SendAll(slot.get(), "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  std::string client_carry;
  const std::string resp = RecvHttpResponse(client.get(), &client_carry, kIo);
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "ok");
}

TEST_F(BodyBufferTest, BadChunkWhileBufferingIs400) {
  ASSERT_TRUE(StartProxy(kOneSlotPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd upload = StartUpload(kChunkedUploadStart);
  ASSERT_TRUE(upload);
  ASSERT_TRUE(SendAll(upload.get(), "zz\r\n"));  // not a chunk size
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(upload.get(), kIo, &seen));
  EXPECT_EQ(StatusOf(seen), 400) << seen;
  EXPECT_EQ(HeaderOf(seen, "Connection"), "close") << seen;
}

TEST_F(BodyBufferTest, ChunkedBodyPastMaxBodyBytesWhileBufferingIs413) {
  ASSERT_TRUE(StartProxy(kOneSlotPool, "max_body_bytes = 100\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd upload =
      StartUpload("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n32\r\n" +
                  std::string(50, 'a') + "\r\n");
  ASSERT_TRUE(upload);
  ASSERT_TRUE(SendAll(upload.get(), "64\r\n" + std::string(100, 'b') + "\r\n"));
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(upload.get(), kIo, &seen));
  EXPECT_EQ(StatusOf(seen), 413) << seen;
}

TEST_F(BodyBufferTest, PipelinedRequestAfterABufferedBodyIsAnsweredInOrder) {
  ASSERT_TRUE(StartProxy(kOneSlotPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1"}), nullptr);
  UniqueFd upload = StartUpload(UploadHead(10) + "01234");
  ASSERT_TRUE(upload);
  // The rest of the body and a whole second request in one segment.
  ASSERT_TRUE(SendAll(upload.get(), "56789" + GetRequest("/second")));
  std::string carry;
  const std::string first = RecvHttpResponse(upload.get(), &carry, kIo);
  ASSERT_EQ(StatusOf(first), 200) << first;
  EXPECT_EQ(ParseEcho(BodyOf(first)).body, "0123456789");
  const std::string second = RecvHttpResponse(upload.get(), &carry, kIo);
  ASSERT_EQ(StatusOf(second), 200) << second;
  EXPECT_EQ(BodyOf(second), "ok /second");
}

}  // namespace
}  // namespace l7px::testing
