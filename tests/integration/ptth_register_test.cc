// Integration: registration in the form of draft-kazuho-ptth-ptth (HTTP/1.1 "Upgrade: ptth"),
// written by hand on a raw socket as a reverse-tunnel client would: the 101 echoes ptth and
// names HTTP/1.1 in ALPN, then the client's requests arrive on that socket; the refusals are
// the v1 ones; a malformed PTTH head is a 400 whose body says why.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <future>
#include <string>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

constexpr char kPtthPools[] =
    "[[pool]]\nname = \"default\"\n"
    "[[pool]]\nname = \"api\"\ntoken = \"s3cret\"\n"
    "[[route]]\nhost = \"*\"\npath = \"/\"\npool = \"default\"\n"
    "[[route]]\nhost = \"api.example\"\npath = \"/\"\npool = \"api\"\n";

// A PTTH registration head as the draft's example has it (its Authorization and ALPN lines
// given here), to the pool named by `path`.
std::string PtthHead(const std::string& path, const std::string& more) {
  return "GET " + path +
         " HTTP/1.1\r\nHost: l7px.example\r\nConnection: upgrade\r\nUpgrade: ptth\r\n" + more +
         "\r\n";
}

class PtthRegisterTest : public IntegrationTest {
 protected:
  // Registers by hand with `head`; expects a refusal with `status` and `reason` as its body,
  // then the connection closed.
  void ExpectRefused(const std::string& head, int status, const std::string& reason) {
    SCOPED_TRACE(::testing::Message() << "head: " << ::testing::PrintToString(head));
    std::string answer;
    UniqueFd fd = RegisterByHand(h().register_port(), head, &answer);
    ASSERT_TRUE(fd);
    std::string rest;
    EXPECT_TRUE(WaitPeerClosed(fd.get(), kIo, &rest)) << "refused registration left open";
    EXPECT_EQ(StatusOf(answer + rest), status) << answer + rest;
    EXPECT_EQ(BodyOf(answer + rest), reason + "\n") << answer + rest;
  }

  // The slots pool `pool` counts for service id `service` (GET /pools).
  int64_t SlotsOf(const std::string& pool, const std::string& service) {
    const Json entry = PoolEntry(h().admin_port(), pool);
    const Json* services = FindMember(entry, "services");
    const Json* n = services != nullptr ? FindMember(*services, service) : nullptr;
    return n != nullptr && n->is_number_integer() ? n->get<int64_t>() : int64_t{0};
  }
};

// Acts as the backend on a transposed connection: reads one request, answers it with `body`.
// Returns the request it read ("" when none came).
std::string ServeOnePtth(int fd, const std::string& body) {
  std::string carry;
  const std::string request = RecvHttpRequest(fd, &carry, kIo);
  if (request.empty()) return "";
  SendAll(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\nX-By: ptth\r\n\r\n" + body);
  return request;
}

TEST_F(PtthRegisterTest, RawPtthSlotServesClients) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(kPtthPools)) << h().ProxyLog();
  std::string answer;
  UniqueFd slot = RegisterByHand(
      h().register_port(),
      PtthHead("/.l7px/register/api",
               // billing-7f9c:s3cret
               "Authorization: Basic YmlsbGluZy03ZjljOnMzY3JldA==\r\nALPN: h2, http%2F1.1\r\n"),
      &answer);
  ASSERT_TRUE(slot);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  EXPECT_EQ(HeaderOf(answer, "Upgrade"), "ptth") << answer;
  EXPECT_EQ(HeaderOf(answer, "ALPN"), "http%2F1.1") << answer;
  EXPECT_EQ(HeaderOf(answer, "Connection"), "Upgrade") << answer;
  // Filed in the pool the path names, under the Basic user-id as its service id.
  EXPECT_TRUE(WaitFor([&] { return SlotsOf("api", "billing-7f9c") == 1; }, kIo))
      << AdminCall(h().admin_port(), "GET", "/pools").body;

  // Requests now flow towards the registering side, one after another on the same connection.
  for (int i = 0; i < 2; ++i) {
    const std::string body = "transposed " + std::to_string(i);
    auto served = std::async(std::launch::async, [&] { return ServeOnePtth(slot.get(), body); });
    const std::string resp =
        HttpExchange(front(), GetRequest("/p?i=" + std::to_string(i), "api.example"));
    EXPECT_EQ(StatusOf(resp), 200) << resp;
    EXPECT_EQ(BodyOf(resp), body);
    EXPECT_EQ(HeaderOf(resp, "X-By"), "ptth");
    const std::string request = served.get();
    EXPECT_THAT(request, ::testing::StartsWith("GET /p?i=" + std::to_string(i) + " HTTP/1.1\r\n"));
    EXPECT_EQ(HeaderOf(request, "Host"), "api.example");
  }
}

// The v1 fields work on a PTTH head too, and a Bearer token is the pool's token.
TEST_F(PtthRegisterTest, BearerTokenAndV1FieldsRegister) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(kPtthPools)) << h().ProxyLog();
  std::string answer;
  UniqueFd slot = RegisterByHand(
      h().register_port(),
      PtthHead("/.l7px/register",
               "L7px-Pool: api\r\nL7px-Service: bearer-1\r\nAuthorization: Bearer s3cret\r\n"
               "ALPN: http%2F1.1\r\n"),
      &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  EXPECT_EQ(HeaderOf(answer, "Upgrade"), "ptth") << answer;
  EXPECT_TRUE(WaitFor([&] { return SlotsOf("api", "bearer-1") == 1; }, kIo))
      << AdminCall(h().admin_port(), "GET", "/pools").body;
}

TEST_F(PtthRegisterTest, RefusalsAreTheV1Ones) {
  ASSERT_TRUE(StartProxy(kPtthPools)) << h().ProxyLog();
  const std::string alpn = "ALPN: http%2F1.1\r\n";
  ExpectRefused(PtthHead("/.l7px/register/api", "Authorization: Bearer wrong\r\n" + alpn), 403,
                "bad token");
  // wrong:nope
  ExpectRefused(PtthHead("/.l7px/register/api", "Authorization: Basic d3Jvbmc6bm9wZQ==\r\n" + alpn),
                403, "bad token");
  ExpectRefused(PtthHead("/.l7px/register/api", alpn), 403, "bad token");
  ExpectRefused(PtthHead("/.l7px/register/ghost", alpn), 404, "unknown pool");
}

TEST_F(PtthRegisterTest, MalformedPtthHeadsAre400) {
  ASSERT_TRUE(StartProxy(kPtthPools)) << h().ProxyLog();
  ExpectRefused(PtthHead("/.l7px/register/api", "Authorization: Bearer s3cret\r\n"), 400,
                "missing ALPN");
  ExpectRefused(PtthHead("/.l7px/register/api", "ALPN: h2\r\n"), 400, "ALPN offers no http/1.1");
  ExpectRefused(PtthHead("/reverse-endpoint", "ALPN: http%2F1.1\r\n"), 400, "bad path");
  ExpectRefused(PtthHead("/.l7px/register/api", "Authorization: Digest x\r\nALPN: http%2F1.1\r\n"),
                400, "unsupported Authorization scheme");
}

}  // namespace
}  // namespace l7px::testing
