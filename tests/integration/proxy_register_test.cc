// Integration: the registration side — slot protocol v1 refusals seen by an independent raw
// client, pools with tokens and max_slots, and the two compatibility handshakes ("none" with
// the test service's --bare, "mxproxy" with a preamble written by hand).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

constexpr char kPools[] =
    "[[pool]]\nname = \"default\"\n"
    "[[pool]]\nname = \"secure\"\ntoken = \"s3cret\"\n"
    "[[pool]]\nname = \"tiny\"\nmax_slots = 1\n"
    "[[route]]\nhost = \"*\"\npath = \"/\"\npool = \"default\"\n"
    "[[route]]\nhost = \"secure.example\"\npath = \"/\"\npool = \"secure\"\n"
    "[[route]]\nhost = \"tiny.example\"\npath = \"/\"\npool = \"tiny\"\n";

class ProxyRegisterTest : public IntegrationTest {
 protected:
  // Registers by hand with `head`; expects `status` and, for a refusal, the connection closed.
  void ExpectRegistration(const std::string& head, int status) {
    SCOPED_TRACE(::testing::Message() << "head: " << ::testing::PrintToString(head));
    std::string answer;
    UniqueFd fd = RegisterByHand(h().register_port(), head, &answer);
    ASSERT_TRUE(fd);
    if (status == 101) {
      EXPECT_EQ(StatusOf(answer), 101) << answer;
      EXPECT_EQ(HeaderOf(answer, "Upgrade"), "l7px-slot/1") << answer;
      kept_.push_back(std::move(fd));
      return;
    }
    std::string rest;
    EXPECT_TRUE(WaitPeerClosed(fd.get(), kIo, &rest)) << "refused registration left open";
    EXPECT_EQ(StatusOf(answer + rest), status) << answer + rest;
  }

  std::vector<UniqueFd> kept_;  // accepted hand-made slots, closed at the end of the test
};

TEST_F(ProxyRegisterTest, MalformedHeadIs400) {
  ASSERT_TRUE(StartProxy(kPools)) << h().ProxyLog();
  ExpectRegistration("GARBAGE\r\n\r\n", 400);
  ExpectRegistration(
      "GET /not-register HTTP/1.1\r\nHost: l7px\r\nConnection: Upgrade\r\n"
      "Upgrade: l7px-slot/1\r\n\r\n",
      400);
  ExpectRegistration("GET /.l7px/register HTTP/1.1\r\nHost: l7px\r\n\r\n", 400);
  ExpectRegistration(
      "GET /.l7px/register HTTP/1.1\r\nHost: l7px\r\nConnection: Upgrade\r\n"
      "Upgrade: websocket\r\n\r\n",
      400);
}

TEST_F(ProxyRegisterTest, TokenChecked) {
  ASSERT_TRUE(StartProxy(kPools)) << h().ProxyLog();
  ExpectRegistration(RegistrationHead("secure", "wrong"), 403);
  ExpectRegistration(RegistrationHead("secure"), 403);
  ExpectRegistration(RegistrationHead("secure", "s3cret"), 101);
}

TEST_F(ProxyRegisterTest, UnknownPoolIs404) {
  ASSERT_TRUE(StartProxy(kPools)) << h().ProxyLog();
  ExpectRegistration(RegistrationHead("no-such-pool"), 404);
}

TEST_F(ProxyRegisterTest, FullPoolIs503) {
  ASSERT_TRUE(StartProxy(kPools)) << h().ProxyLog();
  ExpectRegistration(RegistrationHead("tiny", "", "one"), 101);
  ExpectRegistration(RegistrationHead("tiny", "", "two"), 503);
  // Once the registered slot closes, the pool has room again.
  kept_.clear();
  bool accepted = WaitFor(
      [&] {
        std::string answer;
        UniqueFd fd =
            RegisterByHand(h().register_port(), RegistrationHead("tiny", "", "three"), &answer);
        if (StatusOf(answer) != 101) return false;
        kept_.push_back(std::move(fd));
        return true;
      },
      std::chrono::seconds(5));
  EXPECT_TRUE(accepted);
}

TEST_F(ProxyRegisterTest, RefusalsLeaveServingIntact) {
  ASSERT_TRUE(StartProxy(kPools)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2", "--pool", "secure", "--token", "s3cret", "--service-id",
                          "secure-svc"}),
            nullptr);
  ExpectRegistration("GARBAGE\r\n\r\n", 400);
  ExpectRegistration(RegistrationHead("secure", "nope"), 403);
  ExpectRegistration(RegistrationHead("ghost"), 404);
  const std::string resp = HttpExchange(front(), GetRequest("/s", "secure.example"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(HeaderOf(resp, "X-Service"), "secure-svc");
}

// Acts as the service on a registered slot: answers one request with `body`. Returns the
// request it read.
std::string ServeOneByHand(int slot_fd, const std::string& body) {
  std::string carry;
  const std::string request = RecvHttpRequest(slot_fd, &carry, kIo);
  if (request.empty()) return "";
  SendAll(slot_fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                       "\r\nX-By-Hand: yes\r\n\r\n" + body);
  return request;
}

TEST_F(ProxyRegisterTest, HandMadeUpgradeSlotServes) {
  ASSERT_TRUE(StartProxy(kPools)) << h().ProxyLog();
  std::string answer;
  UniqueFd slot = RegisterByHand(h().register_port(), RegistrationHead("", "", "hand"), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  auto served =
      std::async(std::launch::async, [&] { return ServeOneByHand(slot.get(), "served by hand"); });
  const std::string resp = HttpExchange(front(), GetRequest("/hand?q=1", "x.example"));
  EXPECT_EQ(StatusOf(resp), 200) << resp;
  EXPECT_EQ(BodyOf(resp), "served by hand");
  EXPECT_EQ(HeaderOf(resp, "X-By-Hand"), "yes");
  const std::string request = served.get();
  EXPECT_THAT(request, ::testing::StartsWith("GET /hand?q=1 HTTP/1.1\r\n"));
  EXPECT_EQ(HeaderOf(request, "Host"), "x.example");
}

TEST_F(ProxyRegisterTest, BareHandshakeWithBareService) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\n", "", "handshake = \"none\"\n"))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--bare", "--slots", "2", "--service-id", "bare"}), nullptr);
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  std::string carry;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(SendAll(fd.get(), GetRequest("/bare/" + std::to_string(i))));
    const std::string resp = RecvHttpResponse(fd.get(), &carry, kIo);
    ASSERT_EQ(StatusOf(resp), 200) << resp;
    EXPECT_EQ(BodyOf(resp), "ok /bare/" + std::to_string(i));
    EXPECT_EQ(HeaderOf(resp, "X-Service"), "bare");
  }
  const std::string echo =
      HttpExchange(front(), "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbare");
  EXPECT_EQ(ParseEcho(BodyOf(echo)).body, "bare") << echo;
}

TEST_F(ProxyRegisterTest, MxproxyPreambleWithShortReads) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n", "",
                         "handshake = \"mxproxy\"\n"))
      << h().ProxyLog();
  UniqueFd slot = ConnectTcp(h().register_port());
  ASSERT_TRUE(slot);
  // Signature, version byte, family (IPv4), length 6, then 10.1.2.3:8080.
  const std::string preamble("\r\n\r\nMXPROXY\n\x11\x11\x00\x06\x0a\x01\x02\x03\x1f\x90", 22);
  ASSERT_TRUE(SendAll(slot.get(), preamble.substr(0, 7)));
  // Let the first piece be read on its own, so the handshake sees a short read.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(SendAll(slot.get(), preamble.substr(7, 9)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(SendAll(slot.get(), preamble.substr(16)));

  for (int i = 0; i < 2; ++i) {
    auto served = std::async(std::launch::async,
                             [&] { return ServeOneByHand(slot.get(), "mx " + std::to_string(i)); });
    const std::string resp = HttpExchange(front(), GetRequest("/mx"));
    EXPECT_EQ(StatusOf(resp), 200) << resp;
    EXPECT_EQ(BodyOf(resp), "mx " + std::to_string(i));
    EXPECT_THAT(served.get(), ::testing::StartsWith("GET /mx HTTP/1.1\r\n"));
  }
}

TEST_F(ProxyRegisterTest, MxproxyBadSignatureRefused) {
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"300ms\"\n", "",
                         "handshake = \"mxproxy\"\n"))
      << h().ProxyLog();
  UniqueFd bad = ConnectTcp(h().register_port());
  ASSERT_TRUE(bad);
  ASSERT_TRUE(SendAll(bad.get(), std::string("\r\n\r\nNOTPROX\n\x11\x11\x00\x06\x0a\x01\x02\x03"
                                             "\x1f\x90",
                                             22)));
  EXPECT_TRUE(WaitPeerClosed(bad.get(), kIo));
  // It never became a slot: a request finds no slot and is shed after queue_timeout.
  const std::string resp = HttpExchange(front(), GetRequest("/x"));
  EXPECT_EQ(StatusOf(resp), 503) << resp;
}

// Reads responses until a final (non-1xx) one; counts the interim ones.
std::string RecvFinalResponse(int fd, std::string* carry, int* interim) {
  while (true) {
    const std::string resp = RecvHttpResponse(fd, carry, kIo);
    const int status = StatusOf(resp);
    if (status < 100 || status >= 200) return resp;
    ++*interim;
  }
}

TEST_F(ProxyRegisterTest, ExpectContinueNeverDeadlocks) {
  // RFC 9110 10.1.1: on "Expect: 100-continue" a proxy either answers itself or forwards the
  // head without waiting for the body. Either way the client hears a 100 (from the proxy or,
  // forwarded, from the service) without having sent the body.
  ASSERT_TRUE(StartProxy(kPools)) << h().ProxyLog();
  std::string answer;
  UniqueFd slot = RegisterByHand(h().register_port(), RegistrationHead(), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;

  UniqueFd client = ConnectTcp(front());
  ASSERT_TRUE(client);
  const std::string body(2048, 'c');
  ASSERT_TRUE(SendAll(client.get(),
                      "POST /upload HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
                      "Content-Length: 2048\r\n\r\n"));
  std::string client_seen;
  std::string slot_carry;
  std::string forwarded_head;
  ASSERT_TRUE(WaitFor(
      [&] {
        client_seen += RecvUntil(client.get(), "\r\n\r\n", std::chrono::milliseconds(10));
        if (client_seen.find("\r\n\r\n") != std::string::npos) return true;
        forwarded_head = RecvHttpRequest(slot.get(), &slot_carry, std::chrono::milliseconds(10),
                                         /*read_body=*/false);
        return !forwarded_head.empty();
      },
      std::chrono::seconds(3)))
      << "neither a 100 from the proxy nor the head forwarded to the service";
  if (!forwarded_head.empty()) {
    EXPECT_EQ(HeaderOf(forwarded_head, "Content-Length"), "2048");
    ASSERT_TRUE(SendAll(slot.get(), "HTTP/1.1 100 Continue\r\n\r\n"));
  }
  std::string client_carry = client_seen;
  const std::string interim = RecvHttpResponse(client.get(), &client_carry, kIo);
  EXPECT_EQ(StatusOf(interim), 100) << interim;

  ASSERT_TRUE(SendAll(client.get(), body));
  if (forwarded_head.empty()) {
    forwarded_head = RecvHttpRequest(slot.get(), &slot_carry, kIo, /*read_body=*/false);
    ASSERT_THAT(forwarded_head, ::testing::StartsWith("POST /upload HTTP/1.1\r\n"));
  }
  std::string received = slot_carry;
  ASSERT_TRUE(WaitFor(
      [&] {
        if (received.size() >= body.size()) return true;
        received += RecvUntilClose(slot.get(), std::chrono::milliseconds(20),
                                   body.size() - received.size());
        return received.size() >= body.size();
      },
      kIo));
  EXPECT_EQ(received, body);
  ASSERT_TRUE(SendAll(slot.get(), "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"));
  int more_interim = 0;
  const std::string final_response = RecvFinalResponse(client.get(), &client_carry, &more_interim);
  EXPECT_EQ(StatusOf(final_response), 201) << final_response;
  EXPECT_EQ(BodyOf(final_response), "ok");
  EXPECT_LE(more_interim, 1);
}

// README: "register.allow lists the CIDRs allowed to register (empty = loopback only)"; DESIGN:
// "a refused peer is closed". Every 127.0.0.0/8 address is loopback on Linux, so a list naming
// 127.0.0.2 alone tells peers apart: 127.0.0.3, and 127.0.0.1 too (the list replaces the loopback
// default), are closed without an answer and never become slots; 127.0.0.2 registers and serves.
class RegisterAllowTest : public IntegrationTest {
 protected:
  // Connects from `ip` and sends `hello` (may be empty); true when l7px closed the connection
  // without a byte of answer.
  bool ClosedWithoutAnswer(const std::string& ip, const std::string& hello) {
    UniqueFd fd = ConnectFrom(ip, h().register_port());
    if (!fd) {
      ADD_FAILURE() << "cannot connect from " << ip;
      return false;
    }
    if (!hello.empty()) SendAll(fd.get(), hello);  // fails if l7px closed it already
    std::string seen;
    const bool closed = WaitPeerClosed(fd.get(), kIo, &seen);
    EXPECT_EQ(seen, "") << ip << " got an answer";
    return closed && seen.empty();
  }

  int64_t Registered() { return RegisteredSlots(h().admin_port(), "default"); }
};

TEST_F(RegisterAllowTest, PeersOutsideTheListAreClosedAndNeverServe) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nqueue_timeout = \"300ms\"\n", "",
                         "allow = [\"127.0.0.2/32\"]\n"))
      << h().ProxyLog();
  for (const char* ip : {"127.0.0.3", "127.0.0.1"}) {
    EXPECT_TRUE(ClosedWithoutAnswer(ip, RegistrationHead("", "", "intruder"))) << ip;
    EXPECT_TRUE(WaitFor(
        [&] {
          return h().ProxyLog().find(std::string("registration from ") + ip) != std::string::npos;
        },
        kIo))
        << "refusal of " << ip << " not logged";
  }
  EXPECT_THAT(h().ProxyLog(), HasSubstr("refused: not in register.allow"));
  EXPECT_EQ(Registered(), 0);
  // No slot at all: the request is shed, never answered by a refused peer.
  EXPECT_EQ(StatusOf(HttpExchange(front(), GetRequest("/x"))), 503);

  // A peer in the list registers and serves.
  UniqueFd slot = ConnectFrom("127.0.0.2", h().register_port());
  ASSERT_TRUE(slot);
  ASSERT_TRUE(SendAll(slot.get(), RegistrationHead("", "", "allowed")));
  const std::string answer = RecvUntil(slot.get(), "\r\n\r\n", kIo);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  ASSERT_TRUE(WaitFor([&] { return Registered() == 1; }, kIo));
  auto served = std::async(std::launch::async, [&] {
    std::string carry;
    const std::string request = RecvHttpRequest(slot.get(), &carry, kIo);
    SendAll(slot.get(), "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nallowed");
    return request;
  });
  const std::string resp = HttpExchange(front(), GetRequest("/y"));
  EXPECT_THAT(served.get(), ::testing::StartsWith("GET /y HTTP/1.1\r\n"));
  EXPECT_EQ(BodyOf(resp), "allowed") << resp;
}

TEST_F(RegisterAllowTest, AppliesToBareConnectionsToo) {
  // DESIGN: "Whatever the mode, register.allow decides who may register at all": with
  // handshake = "none" a connection is a slot as soon as it is accepted, unless refused.
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\n", "",
                         "handshake = \"none\"\nallow = [\"127.0.0.2/32\"]\n"))
      << h().ProxyLog();
  EXPECT_TRUE(ClosedWithoutAnswer("127.0.0.3", ""));
  EXPECT_EQ(Registered(), 0);
  UniqueFd slot = ConnectFrom("127.0.0.2", h().register_port());
  ASSERT_TRUE(slot);
  EXPECT_TRUE(WaitFor([&] { return Registered() == 1; }, kIo)) << Registered();
}

}  // namespace
}  // namespace l7px::testing
