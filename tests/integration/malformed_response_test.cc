// Integration: malformed and ambiguous responses from a service (README "What clients see when
// things go wrong": "malformed response from the service | 502 (slot closed)"; "responses from
// services are held to the same rules, so a smuggled response never reaches the next client").
// A slot registered by hand answers with the bad bytes; the client gets a 502, the slot is
// closed, and the next client, on the same connection or a new one, is served by a well-behaved
// service and sees nothing of what the bad one sent.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;

struct BadResponse {
  const char* name;
  std::string bytes;  // everything the service writes, as one write
};

void PrintTo(const BadResponse& r, std::ostream* os) { *os << r.name; }

// Each one, if taken at face value by a lenient parser, would leave "SMUGGLED" (or a second
// response) where the next client could read it.
const BadResponse kBadResponses[] = {
    {"ContentLengthAndChunked",
     "HTTP/1.1 200 OK\r\nContent-Length: 39\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
     "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"},
    {"ChunkedAndContentLength",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
     "SMUGGLED"},
    {"DifferingContentLengths",
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 10\r\n\r\nokSMUGGLED"},
    {"ContentLengthList", "HTTP/1.1 200 OK\r\nContent-Length: 2, 10\r\n\r\nokSMUGGLED"},
    {"NegativeContentLength", "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nSMUGGLED"},
    {"ContentLengthWithJunk", "HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nokSMUGGLED"},
    {"TransferEncodingNotEndingInChunked",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\nSMUGGLED"},
    {"TransferEncodingXchunked",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nSMUGGLED"},
    {"ChunkedInHttp10", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED"},
    {"SpaceBeforeColon", "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nokSMUGGLED"},
    {"ObsFold", "HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\nContent-Length: 2\r\n\r\nokSMUGGLED"},
    {"BareLf", "HTTP/1.1 200 OK\nContent-Length: 2\n\nokSMUGGLED"},
    {"BareCrInHeader", "HTTP/1.1 200 OK\r\nX-A: a\rb\r\nContent-Length: 2\r\n\r\nokSMUGGLED"},
    {"NulInHeader", "HTTP/1.1 200 OK\r\nX-A: a" + std::string(1, '\0') +
                        "b\r\nContent-Length: 2\r\n\r\nokSMUGGLED"},
    {"BadStatusCode", "HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\nokSMUGGLED"},
    {"UnsupportedVersion", "HTTP/2.0 200 OK\r\nContent-Length: 2\r\n\r\nokSMUGGLED"},
    {"NotHttpAtAll", "SSH-2.0-OpenSSH_9.2\r\n\r\nSMUGGLED"},
    {"SwitchingProtocolsUnasked",
     "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nSMUGGLED"},
};

class MalformedResponseTest : public IntegrationTest,
                              public ::testing::WithParamInterface<BadResponse> {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    h().EnableAdmin();
    // retries = 0: a 502 is the proxy's answer to these bytes, not a second try elsewhere.
    ASSERT_TRUE(StartProxy(
        "[[pool]]\nname = \"default\"\nresponse_timeout = \"3s\"\nqueue_timeout = \"3s\"\n"
        "retries = 0\n"))
        << h().ProxyLog();
    ASSERT_NE(StartService({"--slots", "1", "--service-id", "good"}), nullptr);
    ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 1; }, kIo));
  }

  int64_t Registered() { return RegisteredSlots(h().admin_port(), "default"); }
};

TEST_P(MalformedResponseTest, Is502ClosesTheSlotAndTheNextClientIsUnaffected) {
  const BadResponse& bad = GetParam();
  // Registered after the good service's slot: the most recently idle, it takes the next request.
  std::string answer;
  UniqueFd rogue = RegisterByHand(h().register_port(), RegistrationHead("", "", "rogue"), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  ASSERT_TRUE(WaitFor([&] { return Registered() == 2; }, kIo));
  auto served = AnswerOneRequest(rogue.get(), bad.bytes);

  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  ASSERT_TRUE(SendAll(client.get(), GetRequest("/bad")));
  std::string carry;
  const std::string resp = RecvHttpResponse(client.get(), &carry, kIo);
  ASSERT_TRUE(served.get()) << "the request never reached the rogue slot";
  EXPECT_EQ(StatusOf(resp), 502) << resp;
  EXPECT_THAT(resp, ::testing::Not(HasSubstr("SMUGGLED")));

  // The slot is closed, and counted out.
  EXPECT_TRUE(WaitPeerClosed(rogue.get(), kIo)) << "the slot that answered badly was kept";
  EXPECT_TRUE(WaitFor([&] { return Registered() == 1; }, kIo)) << Registered();
  EXPECT_THAT(h().ProxyLog(), HasSubstr("bad response from rogue"));

  // The same client connection, if l7px kept it, goes on with the good service.
  if (HeaderOf(resp, "Connection") != "close") {
    ASSERT_TRUE(SendAll(client.get(), GetRequest("/same")));
    const std::string same = RecvHttpResponse(client.get(), &carry, kIo);
    EXPECT_EQ(StatusOf(same), 200) << same;
    EXPECT_EQ(BodyOf(same), "ok /same") << same;
    EXPECT_EQ(HeaderOf(same, "X-Service"), "good") << same;
  } else {
    EXPECT_TRUE(WaitPeerClosed(client.get(), kIo));
  }
  EXPECT_TRUE(carry.empty()) << "bytes after the last response: " << carry;

  // A new client is served by the good service, with nothing of the bad response.
  for (int i = 0; i < 3; ++i) {
    const std::string path = "/next/" + std::to_string(i);
    const std::string next = HttpExchange(front(), GetRequest(path));
    EXPECT_EQ(StatusOf(next), 200) << next;
    EXPECT_EQ(BodyOf(next), "ok " + path) << next;
    EXPECT_EQ(HeaderOf(next, "X-Service"), "good") << next;
  }
}

INSTANTIATE_TEST_SUITE_P(Responses, MalformedResponseTest, ::testing::ValuesIn(kBadResponses),
                         [](const ::testing::TestParamInfo<BadResponse>& p) {
                           return std::string(p.param.name);
                         });

}  // namespace
}  // namespace l7px::testing
