#include "acceptor/handshake.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "llhttp.h"

namespace l7px::acceptor {
namespace {

using Mode = HandshakeParser::Mode;
using Status = HandshakeParser::Status;

const std::string kMinimalHead =
    "GET /.l7px/register HTTP/1.1\r\n"
    "Host: l7px\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: l7px-slot/1\r\n"
    "\r\n";

const std::string kFullHead =
    "GET /.l7px/register HTTP/1.1\r\n"
    "Host: l7px\r\n"
    "Connection: Upgrade\r\n"
    "Upgrade: l7px-slot/1\r\n"
    "L7px-Pool: api\r\n"
    "L7px-Token: s3cr3t\r\n"
    "L7px-Service: billing-7f9c\r\n"
    "\r\n";

struct Outcome {
  Status status = Status::kNeedMore;
  size_t consumed = 0;  // total over all feeds
  std::string reason;
  std::string pool, token, service;
  bool has_token = false;
  HandshakeParser::Protocol protocol = HandshakeParser::Protocol::kSlotV1;
};

// Feeds `input` in pieces cut at `cuts` (ascending offsets), stopping at the first non-kNeedMore.
Outcome FeedPieces(Mode mode, std::string_view input, const std::vector<size_t>& cuts,
                   size_t max_head = 8192) {
  HandshakeParser parser(mode, max_head);
  Outcome out;
  size_t begin = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(input.size());
  for (size_t end : ends) {
    size_t consumed = SIZE_MAX;
    out.status = parser.Feed(input.data() + begin, end - begin, &consumed);
    EXPECT_NE(consumed, SIZE_MAX);
    EXPECT_LE(consumed, end - begin);
    out.consumed += consumed;
    if (out.status != Status::kNeedMore) break;
    EXPECT_EQ(consumed, end - begin) << "kNeedMore must buffer everything";
    begin = end;
  }
  EXPECT_EQ(parser.status(), out.status);
  out.reason = parser.reject_reason();
  out.pool = parser.pool();
  out.token = parser.token();
  out.service = parser.service();
  out.has_token = parser.has_token();
  out.protocol = parser.protocol();
  return out;
}

Outcome FeedWhole(Mode mode, std::string_view input, size_t max_head = 8192) {
  return FeedPieces(mode, input, {}, max_head);
}

// Same outcome whether the input arrives whole, split in two at any offset, or byte by byte.
void ExpectSameAtEverySplit(Mode mode, std::string_view input, const Outcome& whole) {
  auto same = [&](const Outcome& o, const std::string& how) {
    EXPECT_EQ(o.status, whole.status) << how;
    EXPECT_EQ(o.reason, whole.reason) << how;
    EXPECT_EQ(o.pool, whole.pool) << how;
    EXPECT_EQ(o.token, whole.token) << how;
    EXPECT_EQ(o.has_token, whole.has_token) << how;
    EXPECT_EQ(o.service, whole.service) << how;
    EXPECT_EQ(o.protocol, whole.protocol) << how;
    if (whole.status == Status::kDone) {
      EXPECT_EQ(o.consumed, whole.consumed) << how;
    }
  };
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    same(FeedPieces(mode, input, {cut}), "split at " + std::to_string(cut));
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < input.size(); ++i) every.push_back(i);
  same(FeedPieces(mode, input, every), "byte by byte");
}

// ---- kUpgrade: accepted heads ----

TEST(HandshakeUpgradeTest, MinimalHeadIsAccepted) {
  const Outcome o = FeedWhole(Mode::kUpgrade, kMinimalHead);
  ASSERT_EQ(o.status, Status::kDone) << o.reason;
  EXPECT_EQ(o.consumed, kMinimalHead.size());
  EXPECT_EQ(o.pool, "");
  EXPECT_EQ(o.token, "");
  EXPECT_FALSE(o.has_token);
  EXPECT_EQ(o.service, "");
  ExpectSameAtEverySplit(Mode::kUpgrade, kMinimalHead, o);
}

TEST(HandshakeUpgradeTest, FullHeadYieldsPoolTokenService) {
  const Outcome o = FeedWhole(Mode::kUpgrade, kFullHead);
  ASSERT_EQ(o.status, Status::kDone) << o.reason;
  EXPECT_EQ(o.consumed, kFullHead.size());
  EXPECT_EQ(o.pool, "api");
  EXPECT_EQ(o.token, "s3cr3t");
  EXPECT_TRUE(o.has_token);
  EXPECT_EQ(o.service, "billing-7f9c");
  ExpectSameAtEverySplit(Mode::kUpgrade, kFullHead, o);
}

struct ValidCase {
  const char* name;
  std::string head;
  std::string pool, token, service;
  bool has_token;
};

TEST(HandshakeUpgradeTest, HeaderVariantsAreAccepted) {
  const std::string rl = "GET /.l7px/register HTTP/1.1\r\n";
  const std::vector<ValidCase> cases = {
      {"names case-insensitive",
       rl + "hOST: x\r\ncONNECTION: upgrade\r\nUPGRADE: L7PX-SLOT/1\r\nl7px-pool: p\r\n"
            "L7PX-TOKEN: t\r\nl7Px-sErViCe: s\r\n\r\n",
       "p", "t", "s", true},
      {"optional whitespace around values",
       rl + "Host:x\r\nConnection: \t Upgrade \t\r\nUpgrade:\tl7px-slot/1\t\r\n"
            "L7px-Pool:   api   \r\nL7px-Token:\ttok en\t\r\nL7px-Service:svc \r\n\r\n",
       "api", "tok en", "svc", true},
      {"connection token list",
       rl + "Host: x\r\nConnection: keep-alive, Upgrade\r\nUpgrade: "
            "l7px-slot/1\r\n\r\n",
       "", "", "", false},
      {"connection list with empty items",
       rl + "Host: x\r\nConnection: ,, upgrade ,\r\nUpgrade: l7px-slot/1\r\n\r\n", "", "", "",
       false},
      {"connection split over two lines",
       rl + "Connection: keep-alive\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: "
            "l7px-slot/1\r\n\r\n",
       "", "", "", false},
      {"headers in any order, unknown headers ignored",
       rl + "Upgrade: l7px-slot/1\r\nUser-Agent: sdk/1.0\r\nL7px-Pool: web\r\nX-Empty:\r\n"
            "Connection: Upgrade\r\nHost: x\r\n\r\n",
       "web", "", "", false},
      {"empty host, empty pool, empty token",
       rl + "Host:\r\nConnection: Upgrade\r\nUpgrade: l7px-slot/1\r\nL7px-Pool:\r\nL7px-Token: "
            "\r\n\r\n",
       "", "", "", true},
      {"obs-text in a value",
       rl + "Host: x\r\nConnection: Upgrade\r\nUpgrade: l7px-slot/1\r\n"
            "L7px-Service: caf\xc3\xa9\r\n\r\n",
       "", "", "caf\xc3\xa9", false},
  };
  for (const ValidCase& c : cases) {
    SCOPED_TRACE(c.name);
    const Outcome o = FeedWhole(Mode::kUpgrade, c.head);
    ASSERT_EQ(o.status, Status::kDone) << o.reason;
    EXPECT_EQ(o.consumed, c.head.size());
    EXPECT_EQ(o.pool, c.pool);
    EXPECT_EQ(o.token, c.token);
    EXPECT_EQ(o.has_token, c.has_token);
    EXPECT_EQ(o.service, c.service);
    ExpectSameAtEverySplit(Mode::kUpgrade, c.head, o);
  }
}

// ---- kUpgrade: refusals (all answered with 400 by the acceptor) ----

struct RejectCase {
  std::string head;
  std::string reason;
};

TEST(HandshakeUpgradeTest, EveryRefusalReason) {
  const std::string rl = "GET /.l7px/register HTTP/1.1\r\n";
  const std::string host = "Host: x\r\n";
  const std::string conn = "Connection: Upgrade\r\n";
  const std::string upg = "Upgrade: l7px-slot/1\r\n";
  const std::string ok = host + conn + upg;
  const std::vector<RejectCase> cases = {
      {"GET /.l7px/register\r\n" + ok + "\r\n", "bad request line"},
      {"GET  /.l7px/register HTTP/1.1\r\n" + ok + "\r\n", "bad request line"},
      {"GET /.l7px/register HTTP/1.1 \r\n" + ok + "\r\n", "bad request line"},
      {"\r\n" + rl + ok + "\r\n", "bad request line"},
      {"\r\n\r\n", "bad request line"},
      {"POST /.l7px/register HTTP/1.1\r\n" + ok + "\r\n", "bad method"},
      {"get /.l7px/register HTTP/1.1\r\n" + ok + "\r\n", "bad method"},
      {"GET / HTTP/1.1\r\n" + ok + "\r\n", "bad path"},
      {"GET /.l7px/register?x=1 HTTP/1.1\r\n" + ok + "\r\n", "bad path"},
      {"GET /.L7PX/register HTTP/1.1\r\n" + ok + "\r\n", "bad path"},
      {"GET /.l7px/register HTTP/1.0\r\n" + ok + "\r\n", "bad version"},
      {"GET /.l7px/register http/1.1\r\n" + ok + "\r\n", "bad version"},
      {rl + ok + "X-A: a\r\n b\r\n\r\n", "obs-fold"},
      {rl + host + "\tContent-Length: 5\r\n" + conn + upg + "\r\n", "obs-fold"},
      {rl + "Host : x\r\n" + conn + upg + "\r\n", "whitespace before colon"},
      {rl + ok + "L7px-Pool\t: api\r\n\r\n", "whitespace before colon"},
      {rl + ok + "NoColonHere\r\n\r\n", "header without colon"},
      {rl + ok + ": value\r\n\r\n", "empty header name"},
      {rl + ok + "Bad/Name: v\r\n\r\n", "bad header name"},
      {rl + ok + "Bad Name: v\r\n\r\n", "bad header name"},
      {rl + ok + std::string("X-Nul: a\0b\r\n", 12) + "\r\n", "bad header value"},
      {rl + ok + "X-Del: a\x7f\r\n\r\n", "bad header value"},
      {rl + ok + "X-Ctl: a\x01\r\n\r\n", "bad header value"},
      {rl + ok + host + "\r\n", "duplicate Host"},
      {rl + conn + upg + "\r\n", "missing Host"},
      {rl + host + conn + "\r\n", "missing Upgrade"},
      {rl + host + conn + "Upgrade: websocket\r\n\r\n", "unsupported Upgrade"},
      {rl + host + conn + "Upgrade: l7px-slot/2\r\n\r\n", "unsupported Upgrade"},
      {rl + host + conn + "Upgrade: l7px-slot/1, websocket\r\n\r\n", "unsupported Upgrade"},
      {rl + ok + upg + "\r\n", "duplicate Upgrade"},
      {rl + host + upg + "\r\n", "missing Connection: upgrade"},
      {rl + host + "Connection: keep-alive\r\n" + upg + "\r\n", "missing Connection: upgrade"},
      {rl + host + "Connection: upgraded\r\n" + upg + "\r\n", "missing Connection: upgrade"},
      {rl + ok + "Content-Length: 0\r\n\r\n", "body not allowed"},
      {rl + ok + "content-length: 5\r\n\r\nhello", "body not allowed"},
      {rl + ok + "Transfer-Encoding: chunked\r\n\r\n", "body not allowed"},
      {rl + ok + "L7px-Pool: a\r\nL7px-Pool: b\r\n\r\n", "duplicate L7px-Pool"},
      {rl + ok + "L7px-Token: a\r\nl7px-token: a\r\n\r\n", "duplicate L7px-Token"},
      {rl + ok + "L7px-Service: a\r\nL7px-Service: b\r\n\r\n", "duplicate L7px-Service"},
      {"GET /.l7px/register HTTP/1.1\n" + ok + "\r\n", "bare LF"},
      {rl + "Host: x\n" + conn + upg + "\r\n", "bare LF"},
      {rl + ok + "\n", "bare LF"},
      {rl + ok + "\r\r\n", "bare CR"},
      {rl + "Host: a\rb\r\n" + conn + upg + "\r\n", "bare CR"},
  };
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.head));
    const Outcome o = FeedWhole(Mode::kUpgrade, c.head);
    ASSERT_EQ(o.status, Status::kRejected);
    EXPECT_EQ(o.reason, c.reason);
    ExpectSameAtEverySplit(Mode::kUpgrade, c.head, o);
  }
}

TEST(HandshakeUpgradeTest, LineEndingErrorsRejectedBeforeTheHeadEnds) {
  for (std::string partial : {"GET /.l7px/register HTTP/1.1\n", "GET /x\rG"}) {
    HandshakeParser parser(Mode::kUpgrade);
    size_t consumed = 0;
    EXPECT_EQ(parser.Feed(partial.data(), partial.size(), &consumed), Status::kRejected) << partial;
  }
}

TEST(HandshakeUpgradeTest, HeadSizeLimitIsInclusive) {
  const size_t limit = kMinimalHead.size();
  const Outcome at_limit = FeedWhole(Mode::kUpgrade, kMinimalHead, limit);
  EXPECT_EQ(at_limit.status, Status::kDone) << at_limit.reason;

  const Outcome over = FeedWhole(Mode::kUpgrade, kMinimalHead, limit - 1);
  EXPECT_EQ(over.status, Status::kRejected);
  EXPECT_EQ(over.reason, "request head too large");
}

TEST(HandshakeUpgradeTest, OversizeHeadRejectedWithoutWaitingForItsEnd) {
  constexpr size_t kLimit = 64;
  HandshakeParser parser(Mode::kUpgrade, kLimit);
  const std::string junk = "GET /.l7px/register HTTP/1.1\r\nX-Filler: " + std::string(100, 'a');
  size_t consumed = 0;
  // The first kLimit bytes may still be a head; the next one cannot.
  ASSERT_EQ(parser.Feed(junk.data(), kLimit, &consumed), Status::kNeedMore);
  EXPECT_EQ(consumed, kLimit);
  EXPECT_EQ(parser.Feed(junk.data() + kLimit, 1, &consumed), Status::kRejected);
  EXPECT_EQ(parser.reject_reason(), "request head too large");

  const Outcome whole = FeedWhole(Mode::kUpgrade, junk, kLimit);
  EXPECT_EQ(whole.status, Status::kRejected);
  EXPECT_EQ(whole.reason, "request head too large");
}

TEST(HandshakeUpgradeTest, BytesAfterHeadInSameFeedAreLeftThenRejected) {
  const std::string input = kFullHead + "HTTP/1.1 200 OK\r\n";
  HandshakeParser parser(Mode::kUpgrade);
  size_t consumed = 0;
  ASSERT_EQ(parser.Feed(input.data(), input.size(), &consumed), Status::kDone);
  EXPECT_EQ(consumed, kFullHead.size());
  EXPECT_EQ(parser.pool(), "api");
  ASSERT_EQ(parser.Feed(input.data() + consumed, input.size() - consumed, &consumed),
            Status::kRejected);
  EXPECT_EQ(parser.reject_reason(), "bytes after request head");
  EXPECT_EQ(parser.status(), Status::kRejected);
}

TEST(HandshakeUpgradeTest, BytesInALaterFeedAreRejected) {
  HandshakeParser parser(Mode::kUpgrade);
  size_t consumed = 0;
  ASSERT_EQ(parser.Feed(kMinimalHead.data(), kMinimalHead.size(), &consumed), Status::kDone);
  // An empty read changes nothing.
  EXPECT_EQ(parser.Feed(nullptr, 0, &consumed), Status::kDone);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(parser.Feed("x", 1, &consumed), Status::kRejected);
  EXPECT_EQ(parser.reject_reason(), "bytes after request head");
}

TEST(HandshakeUpgradeTest, RejectionIsSticky) {
  HandshakeParser parser(Mode::kUpgrade);
  size_t consumed = 0;
  ASSERT_EQ(parser.Feed("\n", 1, &consumed), Status::kRejected);
  EXPECT_EQ(parser.Feed(kMinimalHead.data(), kMinimalHead.size(), &consumed), Status::kRejected);
  EXPECT_EQ(parser.reject_reason(), "bare LF");
}

// ---- kNone ----

TEST(HandshakeNoneTest, DoneWithoutAnyBytes) {
  HandshakeParser parser(Mode::kNone);
  EXPECT_EQ(parser.status(), Status::kDone);
  size_t consumed = 99;
  EXPECT_EQ(parser.Feed(nullptr, 0, &consumed), Status::kDone);
  EXPECT_EQ(consumed, 0u);
  EXPECT_EQ(parser.pool(), "");
  EXPECT_EQ(parser.token(), "");
  EXPECT_FALSE(parser.has_token());
  EXPECT_EQ(parser.service(), "");
}

// ---- kMxproxy ----

std::string MxPreamble(uint8_t version, uint8_t family, uint16_t length,
                       std::string_view addr_and_port) {
  std::string p("\r\n\r\nMXPROXY\n", 12);
  p.push_back(static_cast<char>(version));
  p.push_back(static_cast<char>(family));
  p.push_back(static_cast<char>(length >> 8));
  p.push_back(static_cast<char>(length & 0xff));
  p.append(addr_and_port);
  return p;
}

const std::string kIpv4AddrPort("\x0a\x01\x02\x03\x1f\x90", 6);  // 10.1.2.3:8080
const std::string kIpv6AddrPort(
    "\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x01\xbb",
    18);  // 2001:db8::1:443

TEST(HandshakeMxproxyTest, Ipv4PreambleByteByByte) {
  const std::string p = MxPreamble(0x11, 0x11, 6, kIpv4AddrPort);
  ASSERT_EQ(p.size(), 22u);
  HandshakeParser parser(Mode::kMxproxy);
  size_t consumed = 0;
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    ASSERT_EQ(parser.Feed(&p[i], 1, &consumed), Status::kNeedMore) << "byte " << i;
    EXPECT_EQ(consumed, 1u);
  }
  ASSERT_EQ(parser.Feed(&p[21], 1, &consumed), Status::kDone) << parser.reject_reason();
  EXPECT_EQ(consumed, 1u);
  EXPECT_EQ(parser.service(), "10.1.2.3:8080");
  EXPECT_EQ(parser.pool(), "");
  EXPECT_FALSE(parser.has_token());
}

TEST(HandshakeMxproxyTest, Ipv6PreambleByteByByte) {
  const std::string p = MxPreamble(0x11, 0x21, 18, kIpv6AddrPort);
  ASSERT_EQ(p.size(), 34u);
  HandshakeParser parser(Mode::kMxproxy);
  size_t consumed = 0;
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    ASSERT_EQ(parser.Feed(&p[i], 1, &consumed), Status::kNeedMore) << "byte " << i;
  }
  ASSERT_EQ(parser.Feed(&p[33], 1, &consumed), Status::kDone) << parser.reject_reason();
  EXPECT_EQ(parser.service(), "[2001:db8::1]:443");
}

TEST(HandshakeMxproxyTest, EverySplitGivesSameResult) {
  for (const std::string& p :
       {MxPreamble(0x11, 0x11, 6, kIpv4AddrPort), MxPreamble(0x11, 0x21, 18, kIpv6AddrPort)}) {
    const Outcome whole = FeedWhole(Mode::kMxproxy, p);
    ASSERT_EQ(whole.status, Status::kDone) << whole.reason;
    EXPECT_EQ(whole.consumed, p.size());
    ExpectSameAtEverySplit(Mode::kMxproxy, p, whole);
  }
}

TEST(HandshakeMxproxyTest, PortIsBigEndianAndExtremesFormat) {
  const Outcome lo = FeedWhole(
      Mode::kMxproxy, MxPreamble(0x11, 0x11, 6, std::string("\x7f\x00\x00\x01\x00\x01", 6)));
  EXPECT_EQ(lo.service, "127.0.0.1:1");
  const Outcome hi = FeedWhole(
      Mode::kMxproxy, MxPreamble(0x11, 0x11, 6, std::string("\xff\xff\xff\xff\xff\xff", 6)));
  EXPECT_EQ(hi.service, "255.255.255.255:65535");
  const Outcome any6 =
      FeedWhole(Mode::kMxproxy,
                MxPreamble(0x11, 0x21, 18, std::string(16, '\0') + std::string("\x00\x50", 2)));
  EXPECT_EQ(any6.service, "[::]:80");
}

TEST(HandshakeMxproxyTest, TrailingBytesAreNotConsumed) {
  const std::string p = MxPreamble(0x11, 0x11, 6, kIpv4AddrPort);
  const std::string input = p + "GET / HTTP/1.1\r\n";
  HandshakeParser parser(Mode::kMxproxy);
  size_t consumed = 0;
  ASSERT_EQ(parser.Feed(input.data(), input.size(), &consumed), Status::kDone);
  EXPECT_EQ(consumed, p.size());
}

TEST(HandshakeMxproxyTest, BadSignatureRejectedAtEachOffset) {
  const std::string good = MxPreamble(0x11, 0x11, 6, kIpv4AddrPort);
  for (size_t i = 0; i < 12; ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    HandshakeParser parser(Mode::kMxproxy);
    size_t consumed = 0;
    // Everything before the bad byte is accepted; the bad byte is refused at once.
    if (i > 0) {
      ASSERT_EQ(parser.Feed(bad.data(), i, &consumed), Status::kNeedMore);
    }
    EXPECT_EQ(parser.Feed(bad.data() + i, 1, &consumed), Status::kRejected) << "offset " << i;
    EXPECT_EQ(parser.reject_reason(), "bad mxproxy signature");
  }
  // An upgrade head sent to an mxproxy listener.
  const Outcome http = FeedWhole(Mode::kMxproxy, kMinimalHead);
  EXPECT_EQ(http.status, Status::kRejected);
  EXPECT_EQ(http.reason, "bad mxproxy signature");
}

TEST(HandshakeMxproxyTest, TheLengthDecidesTheFamily) {
  // The family byte's encoding is not part of the documented preamble: any value is accepted
  // and the declared length (6 or 18) says which address follows.
  for (uint8_t family : {0x00, 0x02, 0x11, 0x12, 0x21, 0x31}) {
    const Outcome v4 = FeedWhole(Mode::kMxproxy, MxPreamble(0x11, family, 6, kIpv4AddrPort));
    EXPECT_EQ(v4.status, Status::kDone) << int{family};
    const Outcome v6 = FeedWhole(Mode::kMxproxy, MxPreamble(0x11, family, 18, kIpv6AddrPort));
    EXPECT_EQ(v6.status, Status::kDone) << int{family};
  }
}

TEST(HandshakeMxproxyTest, BadVersionOrLengthRejected) {
  const std::vector<RejectCase> cases = {
      {MxPreamble(0x21, 0x11, 6, kIpv4AddrPort), "bad mxproxy version"},
      {MxPreamble(0x10, 0x11, 6, kIpv4AddrPort), "bad mxproxy version"},
      {MxPreamble(0x11, 0x11, 0, ""), "bad mxproxy length"},
      {MxPreamble(0x11, 0x11, 7, kIpv4AddrPort), "bad mxproxy length"},
      {MxPreamble(0x11, 0x11, 0x0106, kIpv4AddrPort), "bad mxproxy length"},
      {MxPreamble(0x11, 0x21, 0x1200, kIpv6AddrPort), "bad mxproxy length"},
  };
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.head));
    const Outcome o = FeedWhole(Mode::kMxproxy, c.head);
    ASSERT_EQ(o.status, Status::kRejected);
    EXPECT_EQ(o.reason, c.reason);
    ExpectSameAtEverySplit(Mode::kMxproxy, c.head, o);
  }
}

// ---- kUpgrade: the PTTH form (draft-kazuho-ptth-ptth, HTTP/1.1) ----

using Protocol = HandshakeParser::Protocol;

// The draft's own example head, with the pool named in the path.
const std::string kPtthDraftHead =
    "GET /.l7px/register/api HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "Connection: upgrade\r\n"
    "Upgrade: ptth\r\n"
    "Authorization: Basic YmlsbGluZy03ZjljOnMzY3IzdA==\r\n"  // billing-7f9c:s3cr3t
    "ALPN: h2, http%2F1.1\r\n"
    "\r\n";

TEST(HandshakePtthTest, DraftExampleHeadYieldsPoolTokenService) {
  const Outcome o = FeedWhole(Mode::kUpgrade, kPtthDraftHead);
  ASSERT_EQ(o.status, Status::kDone) << o.reason;
  EXPECT_EQ(o.consumed, kPtthDraftHead.size());
  EXPECT_EQ(o.protocol, Protocol::kPtth);
  EXPECT_EQ(o.pool, "api");
  EXPECT_EQ(o.token, "s3cr3t");
  EXPECT_TRUE(o.has_token);
  EXPECT_EQ(o.service, "billing-7f9c");
  ExpectSameAtEverySplit(Mode::kUpgrade, kPtthDraftHead, o);
}

TEST(HandshakePtthTest, V1HeadsSayV1) {
  EXPECT_EQ(FeedWhole(Mode::kUpgrade, kMinimalHead).protocol, Protocol::kSlotV1);
  EXPECT_EQ(FeedWhole(Mode::kUpgrade, kFullHead).protocol, Protocol::kSlotV1);
}

TEST(HandshakePtthTest, MappingVariantsAreAccepted) {
  const std::string rl = "GET /.l7px/register HTTP/1.1\r\n";
  const std::string base = "Host: x\r\nConnection: Upgrade\r\nUpgrade: ptth\r\n";
  const std::string alpn = "ALPN: http%2F1.1\r\n";
  const std::vector<ValidCase> cases = {
      {"no pool, no token: the default pool", rl + base + alpn + "\r\n", "", "", "", false},
      {"v1 fields work on PTTH too",
       rl + base + alpn + "L7px-Pool: web\r\nL7px-Token: t\r\nL7px-Service: s\r\n\r\n", "web", "t",
       "s", true},
      {"bearer token, scheme case-insensitive",
       rl + base + alpn + "Authorization: bEARER abc.DEF-123_~+/==\r\n\r\n", "",
       "abc.DEF-123_~+/==", "", true},
      {"bearer after several spaces", rl + base + alpn + "Authorization: Bearer   tok\r\n\r\n", "",
       "tok", "", true},
      {"basic with an empty user-id names no service",
       rl + base + alpn + "Authorization: Basic OnMzY3IzdA==\r\n\r\n", "", "s3cr3t", "", true},
      {"basic with an empty password is an empty token",
       rl + base + alpn + "Authorization: basic c3ZjOg==\r\n\r\n", "", "", "svc", true},
      {"basic user-id with L7px-Pool",
       rl + base + alpn + "L7px-Pool: p\r\nAuthorization: Basic OnMzY3IzdA==\r\n\r\n", "p",
       "s3cr3t", "", true},
      {"path pool with L7px-Service and L7px-Token",
       "GET /.l7px/register/My_pool-1.v2 HTTP/1.1\r\n" + base + alpn +
           "L7px-Service: s\r\nL7px-Token: t\r\n\r\n",
       "My_pool-1.v2", "t", "s", true},
      {"upgrade token case-insensitive, ALPN over two lines, lower-case hex",
       rl + "Host: x\r\nConnection: keep-alive, upgrade\r\nUpgrade: PTTH\r\nALPN: h2\r\n"
            "ALPN: , http%2f1.1 ,\r\n\r\n",
       "", "", "", false},
      {"ALPN with other percent-encoded ids", rl + base + "ALPN: h3, x%25y, http%2F1.1\r\n\r\n", "",
       "", "", false},
  };
  for (const ValidCase& c : cases) {
    SCOPED_TRACE(c.name);
    const Outcome o = FeedWhole(Mode::kUpgrade, c.head);
    ASSERT_EQ(o.status, Status::kDone) << o.reason;
    EXPECT_EQ(o.protocol, Protocol::kPtth);
    EXPECT_EQ(o.consumed, c.head.size());
    EXPECT_EQ(o.pool, c.pool);
    EXPECT_EQ(o.token, c.token);
    EXPECT_EQ(o.has_token, c.has_token);
    EXPECT_EQ(o.service, c.service);
    ExpectSameAtEverySplit(Mode::kUpgrade, c.head, o);
  }
}

// Authorization and ALPN mean nothing to l7px-slot/1: unchanged v1 behaviour.
TEST(HandshakePtthTest, V1IgnoresAuthorizationAndAlpn) {
  const std::string head =
      "GET /.l7px/register HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: l7px-slot/1\r\n"
      "Authorization: Digest whatever\r\nALPN: h2\r\nL7px-Token: t\r\n\r\n";
  const Outcome o = FeedWhole(Mode::kUpgrade, head);
  ASSERT_EQ(o.status, Status::kDone) << o.reason;
  EXPECT_EQ(o.protocol, Protocol::kSlotV1);
  EXPECT_EQ(o.token, "t");
}

TEST(HandshakePtthTest, EveryRefusalReason) {
  const std::string rl = "GET /.l7px/register HTTP/1.1\r\n";
  const std::string base = "Host: x\r\nConnection: Upgrade\r\nUpgrade: ptth\r\n";
  const std::string alpn = "ALPN: http%2F1.1\r\n";
  const std::string ok = base + alpn;
  const std::string v1 = "Host: x\r\nConnection: Upgrade\r\nUpgrade: l7px-slot/1\r\n";
  auto path = [](const std::string& p) { return "GET " + p + " HTTP/1.1\r\n"; };
  const std::vector<RejectCase> cases = {
      {"POST /.l7px/register HTTP/1.1\r\n" + ok + "\r\n", "bad method"},
      {"GET /.l7px/register HTTP/1.0\r\n" + ok + "\r\n", "bad version"},
      {path("/reverse-endpoint") + ok + "\r\n", "bad path"},
      {path("/.l7px/register/") + ok + "\r\n", "bad path"},
      {path("/.l7px/register/a/b") + ok + "\r\n", "bad path"},
      {path("/.l7px/register/.") + ok + "\r\n", "bad path"},
      {path("/.l7px/register/..") + ok + "\r\n", "bad path"},
      {path("/.l7px/register/a%20b") + ok + "\r\n", "bad path"},
      {path("/.l7px/register/a?x=1") + ok + "\r\n", "bad path"},
      {path("/.l7px/registerapi") + ok + "\r\n", "bad path"},
      {path("/.l7px/register/" + std::string(65, 'p')) + ok + "\r\n", "bad path"},
      {path("/.l7px/register/api") + v1 + "\r\n", "pool in path needs Upgrade: ptth"},
      {rl + "Host: x\r\nConnection: Upgrade\r\nUpgrade: PTTH/1.0\r\n" + alpn + "\r\n",
       "unsupported Upgrade"},
      {rl + "Host: x\r\nConnection: Upgrade\r\nUpgrade: ptth, h2c\r\n" + alpn + "\r\n",
       "unsupported Upgrade"},
      {rl + "Host: x\r\nUpgrade: ptth\r\n" + alpn + "\r\n", "missing Connection: upgrade"},
      {rl + "Connection: Upgrade\r\nUpgrade: ptth\r\n" + alpn + "\r\n", "missing Host"},
      {rl + ok + "Content-Length: 0\r\n\r\n", "body not allowed"},
      {rl + base + "\r\n", "missing ALPN"},
      {rl + base + "ALPN: h2\r\n\r\n", "ALPN offers no http/1.1"},
      {rl + base + "ALPN:\r\n\r\n", "ALPN offers no http/1.1"},
      {rl + base + "ALPN: http/1.1\r\n\r\n", "bad ALPN"},
      {rl + base + "ALPN: http%2\r\n\r\n", "bad ALPN"},
      {rl + base + "ALPN: http%2G1.1\r\n\r\n", "bad ALPN"},
      {rl + base + "ALPN: h2 http%2F1.1\r\n\r\n", "bad ALPN"},
      {rl + ok + "Authorization: Bearer\r\n\r\n", "bad Authorization"},
      {rl + ok + "Authorization: Bearer a b\r\n\r\n", "bad Authorization"},
      {rl + ok + "Authorization: Bearer\ta\r\n\r\n", "bad Authorization"},
      {rl + ok + "Authorization: Basic bm9jb2xvbg==\r\n\r\n", "bad Authorization"},  // nocolon
      {rl + ok + "Authorization: Basic YTpiAQ==\r\n\r\n", "bad Authorization"},      // a:b\x01
      {rl + ok + "Authorization: Basic OnMzY3IzdA\r\n\r\n", "bad Authorization"},    // no padding
      {rl + ok + "Authorization: Basic OnMz*3IzdA==\r\n\r\n", "bad Authorization"},
      {rl + ok + "Authorization: Basic ====\r\n\r\n", "bad Authorization"},
      {rl + ok + "Authorization: Digest username=\"a\"\r\n\r\n",
       "unsupported Authorization scheme"},
      {rl + ok + "Authorization: Bearer a\r\nAuthorization: Bearer a\r\n\r\n",
       "duplicate Authorization"},
      {path("/.l7px/register/api") + ok + "L7px-Pool: api\r\n\r\n",
       "pool in both path and L7px-Pool"},
      {rl + ok + "L7px-Token: t\r\nAuthorization: Bearer t\r\n\r\n",
       "token in both Authorization and L7px-Token"},
      {rl + ok + "L7px-Service: s\r\nAuthorization: Basic c3ZjOg==\r\n\r\n",
       "service in both Authorization and L7px-Service"},
  };
  for (const RejectCase& c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.head));
    const Outcome o = FeedWhole(Mode::kUpgrade, c.head);
    ASSERT_EQ(o.status, Status::kRejected);
    EXPECT_EQ(o.reason, c.reason);
    ExpectSameAtEverySplit(Mode::kUpgrade, c.head, o);
  }
}

TEST(HandshakePtthTest, BytesAfterThePtthHeadAreRejected) {
  HandshakeParser parser(Mode::kUpgrade);
  const std::string input = kPtthDraftHead + "HTTP/1.1 200 OK\r\n";
  size_t consumed = 0;
  ASSERT_EQ(parser.Feed(input.data(), input.size(), &consumed), Status::kDone);
  EXPECT_EQ(consumed, kPtthDraftHead.size());
  EXPECT_EQ(parser.Feed(input.data() + consumed, input.size() - consumed, &consumed),
            Status::kRejected);
  EXPECT_EQ(parser.reject_reason(), "bytes after request head");
}

// ---- responses ----

TEST(HandshakeResponseTest, PtthSwitchingProtocolsEchoesPtthAndChoosesHttp11) {
  EXPECT_EQ(SwitchingProtocolsResponse(HandshakeParser::Protocol::kPtth),
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ptth\r\n"
            "ALPN: http%2F1.1\r\n\r\n");
  EXPECT_EQ(SwitchingProtocolsResponse(HandshakeParser::Protocol::kSlotV1),
            SwitchingProtocolsResponse());
}

TEST(HandshakeResponseTest, SwitchingProtocols) {
  EXPECT_EQ(SwitchingProtocolsResponse(),
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: "
            "l7px-slot/1\r\n\r\n");
}

struct ParsedResponse {
  bool complete = false;
  int status = 0;
  bool keep_alive = true;
  std::string body;
  std::vector<std::string> header_lines;  // "name: value"
  std::string field;
};

// Parses with llhttp so "complete HTTP/1.1 response" means what a real client would see.
ParsedResponse ParseResponse(const std::string& wire) {
  ParsedResponse r;
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_header_field = [](llhttp_t* p, const char* at, size_t len) {
    auto* pr = static_cast<ParsedResponse*>(p->data);
    pr->field.assign(at, len);
    return 0;
  };
  settings.on_header_value = [](llhttp_t* p, const char* at, size_t len) {
    auto* pr = static_cast<ParsedResponse*>(p->data);
    pr->header_lines.push_back(pr->field + ": " + std::string(at, len));
    return 0;
  };
  settings.on_body = [](llhttp_t* p, const char* at, size_t len) {
    static_cast<ParsedResponse*>(p->data)->body.append(at, len);
    return 0;
  };
  settings.on_message_complete = [](llhttp_t* p) {
    auto* pr = static_cast<ParsedResponse*>(p->data);
    pr->complete = true;
    pr->status = p->status_code;
    pr->keep_alive = llhttp_should_keep_alive(p) != 0;
    return 0;
  };
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &settings);
  parser.data = &r;
  EXPECT_EQ(llhttp_execute(&parser, wire.data(), wire.size()), HPE_OK);
  return r;
}

TEST(HandshakeResponseTest, RefusalsAreCompleteClosingTextResponses) {
  struct Case {
    int status;
    const char* status_line;
    const char* detail;
  };
  for (const Case& c : {Case{400, "HTTP/1.1 400 Bad Request\r\n", "bad request line"},
                        Case{403, "HTTP/1.1 403 Forbidden\r\n", "bad token"},
                        Case{404, "HTTP/1.1 404 Not Found\r\n", "unknown pool \"api\""},
                        Case{503, "HTTP/1.1 503 Service Unavailable\r\n", "pool full"}}) {
    const std::string wire = RefusalResponse(c.status, c.detail);
    SCOPED_TRACE(wire);
    EXPECT_TRUE(wire.starts_with(c.status_line));
    const std::string body = std::string(c.detail) + "\n";
    EXPECT_TRUE(wire.ends_with("\r\n\r\n" + body));
    const ParsedResponse r = ParseResponse(wire);
    EXPECT_TRUE(r.complete);
    EXPECT_EQ(r.status, c.status);
    EXPECT_FALSE(r.keep_alive);
    EXPECT_EQ(r.body, body);
    EXPECT_THAT(r.header_lines, ::testing::Contains("Content-Type: text/plain"));
    EXPECT_THAT(r.header_lines, ::testing::Contains("Connection: close"));
    EXPECT_THAT(r.header_lines,
                ::testing::Contains("Content-Length: " + std::to_string(body.size())));
  }
}

TEST(HandshakeResponseTest, RefusalDetailStaysOneLine) {
  const std::string wire = RefusalResponse(400, "evil\r\nX-Injected: 1");
  const ParsedResponse r = ParseResponse(wire);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "evil  X-Injected: 1\n");
  EXPECT_EQ(wire.find("\r\nX-Injected"), std::string::npos);
}

TEST(HandshakeResponseTest, EmptyDetailUsesReasonPhrase) {
  const ParsedResponse r = ParseResponse(RefusalResponse(503, ""));
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "Service Unavailable\n");
}

// A status without a registered phrase is still refused with a word, in the line and the body.
TEST(HandshakeResponseTest, UnknownStatusSaysError) {
  const std::string wire = RefusalResponse(599, "");
  EXPECT_TRUE(wire.starts_with("HTTP/1.1 599 Error\r\n")) << wire;
  const ParsedResponse r = ParseResponse(wire);
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.body, "Error\n");
}

}  // namespace
}  // namespace l7px::acceptor
