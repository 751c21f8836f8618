#include "http/rewrite.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "http/parser.h"
#include "http/status_text.h"

namespace l7px::http {
namespace {

// Holds the bytes and the parsed head of one message.
struct Parsed {
  std::string buf;
  Parser parser;

  explicit Parsed(std::string in, Parser::Kind kind = Parser::Kind::kRequest,
                  bool head_request = false)
      : buf(std::move(in)), parser(kind, {}) {
    parser.Begin(buf.data());
    parser.set_head_request(head_request);
    Parser::Result r = parser.Parse(buf.data(), buf.size());
    EXPECT_EQ(r.status, Parser::Status::kHeadDone) << ErrorName(parser.error());
  }
  const MessageHead& head() const { return parser.head(); }
};

const ServiceRequestContext kCtx{"192.0.2.7", "http", "0123456789abcdef0123456789abcdef"};

std::string ServiceHead(const std::string& in, const ServiceRequestContext& ctx = kCtx) {
  Parsed p(in);
  char out[4096];
  size_t n = WriteServiceRequestHead(p.head(), ctx, out, sizeof(out));
  EXPECT_GT(n, 0u);
  return std::string(out, n);
}

std::string ClientHead(const std::string& in, const ClientResponseContext& ctx,
                       bool head_request = false) {
  Parsed p(in, Parser::Kind::kResponse, head_request);
  char out[4096];
  size_t n = WriteClientResponseHead(p.head(), ctx, out, sizeof(out));
  EXPECT_GT(n, 0u);
  return std::string(out, n);
}

// The rewritten head must itself parse as one complete request.
void ExpectParses(const std::string& head, Parser::Kind kind = Parser::Kind::kRequest) {
  Parser p(kind, {});
  std::string buf = head;
  p.Begin(buf.data());
  Parser::Result r = p.Parse(buf.data(), buf.size());
  EXPECT_EQ(r.status, Parser::Status::kHeadDone) << ErrorName(p.error()) << "\n" << head;
  EXPECT_EQ(r.consumed, buf.size());
}

TEST(ServiceRequestHead, SimpleGet) {
  std::string out = ServiceHead("GET /a?b=1 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n");
  EXPECT_EQ(out,
            "GET /a?b=1 HTTP/1.1\r\n"
            "Host: example.com\r\n"
            "Accept: */*\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: example.com\r\n"
            "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  ExpectParses(out);
}

TEST(ServiceRequestHead, HopByHopAndConnectionNamedFieldsRemoved) {
  std::string out = ServiceHead(
      "POST /p HTTP/1.1\r\n"
      "Host: h\r\n"
      "Connection: keep-alive, X-Secret, x-other\r\n"
      "Keep-Alive: timeout=5\r\n"
      "Proxy-Connection: keep-alive\r\n"
      "TE: trailers\r\n"
      "Trailer: X-T\r\n"
      "Upgrade: h2c\r\n"
      "Proxy-Authorization: Basic abc\r\n"
      "X-Secret: 1\r\n"
      "X-Other: 2\r\n"
      "Connection: X-Third\r\n"
      "X-Third: 3\r\n"
      "X-Kept: 4\r\n"
      "Content-Length: 3\r\n"
      "\r\n");
  EXPECT_EQ(out,
            "POST /p HTTP/1.1\r\n"
            "Host: h\r\n"
            "X-Kept: 4\r\n"
            "Content-Length: 3\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h\r\n"
            "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
}

constexpr char kForwardedRequest[] =
    "GET / HTTP/1.1\r\n"
    "Host: h\r\n"
    "X-Forwarded-For: 10.0.0.1\r\n"
    "Via: 1.0 edge\r\n"
    "x-forwarded-for: 10.0.0.2, 10.0.0.3\r\n"
    "X-Forwarded-Proto: https\r\n"
    "X-Forwarded-Host: public.example\r\n"
    "X-Request-Id: abc\r\n"
    "Via: 1.1 cdn\r\n"
    "\r\n";

// From a client that is not a trusted proxy, X-Forwarded-Proto, X-Forwarded-Host and
// X-Request-Id are l7px's own; X-Forwarded-For and Via are appended to.
TEST(ServiceRequestHead, ForwardedFieldsReplacedForAnUntrustedClient) {
  EXPECT_EQ(ServiceHead(kForwardedRequest),
            "GET / HTTP/1.1\r\n"
            "Host: h\r\n"
            "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h\r\n"
            "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
            "Via: 1.0 edge, 1.1 cdn, 1.1 l7px\r\n"
            "\r\n");
}

TEST(ServiceRequestHead, ForwardedFieldsKeptFromATrustedProxy) {
  ServiceRequestContext trusted = kCtx;
  trusted.trusted_peer = true;
  EXPECT_EQ(ServiceHead(kForwardedRequest, trusted),
            "GET / HTTP/1.1\r\n"
            "Host: h\r\n"
            "X-Forwarded-Proto: https\r\n"
            "X-Forwarded-Host: public.example\r\n"
            "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 192.0.2.7\r\n"
            "X-Request-Id: abc\r\n"
            "Via: 1.0 edge, 1.1 cdn, 1.1 l7px\r\n"
            "\r\n");
  // A trusted proxy that sent none of them gets l7px's.
  EXPECT_EQ(ServiceHead("GET / HTTP/1.1\r\nHost: h\r\n\r\n", trusted),
            "GET / HTTP/1.1\r\n"
            "Host: h\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: h\r\n"
            "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
}

// RFC 7239 Forwarded is a forwarding field too: from an untrusted client it is dropped (l7px
// writes none of its own), from a trusted proxy it passes.
TEST(ServiceRequestHead, ForwardedHeaderPassesOnlyFromATrustedProxy) {
  const std::string in =
      "GET / HTTP/1.1\r\nHost: h\r\nForwarded: for=10.9.9.9;proto=https\r\nAccept: */*\r\n\r\n";
  const std::string untrusted = ServiceHead(in);
  EXPECT_EQ(untrusted.find("Forwarded:"), std::string::npos) << untrusted;
  EXPECT_NE(untrusted.find("Accept: */*\r\n"), std::string::npos) << untrusted;
  ServiceRequestContext trusted = kCtx;
  trusted.trusted_peer = true;
  EXPECT_NE(ServiceHead(in, trusted).find("Forwarded: for=10.9.9.9;proto=https\r\n"),
            std::string::npos);
}

// CGI-style services read X_Forwarded_For as X-Forwarded-For ('_' and '-' fold together):
// such spellings of l7px's forwarding fields never reach a service, trusted peer or not.
// Other names with underscores pass.
TEST(ServiceRequestHead, UnderscoreSpellingsOfForwardingFieldsAreDropped) {
  const std::string in =
      "GET / HTTP/1.1\r\nHost: h\r\nX_Forwarded_For: 10.6.6.6\r\nx-forwarded_proto: https\r\n"
      "X_FORWARDED_HOST: evil\r\nX_Request_Id: forged\r\nMy_Header: ok\r\n\r\n";
  for (bool trusted_peer : {false, true}) {
    ServiceRequestContext ctx = kCtx;
    ctx.trusted_peer = trusted_peer;
    const std::string out = ServiceHead(in, ctx);
    EXPECT_EQ(out.find("10.6.6.6"), std::string::npos) << out;
    EXPECT_EQ(out.find("_proto"), std::string::npos) << out;
    EXPECT_EQ(out.find("evil"), std::string::npos) << out;
    EXPECT_EQ(out.find("forged"), std::string::npos) << out;
    EXPECT_NE(out.find("My_Header: ok\r\n"), std::string::npos) << out;
    EXPECT_NE(out.find("X-Forwarded-For: 192.0.2.7\r\n"), std::string::npos) << out;
    ExpectParses(out);
  }
  EXPECT_EQ(ClassifyHeader("X_Forwarded_For"), HeaderKind::kForwardingAlias);
  EXPECT_EQ(ClassifyHeader("x-request_id"), HeaderKind::kForwardingAlias);
  EXPECT_EQ(ClassifyHeader("x_forwarded_fox"), HeaderKind::kOther);
  EXPECT_EQ(ClassifyHeader("Forwarded"), HeaderKind::kForwarded);
}

// Fields a trusted peer made hop-by-hop are removed, and l7px's take their place.
TEST(ServiceRequestHead, TrustedFieldsNamedInConnectionAreReplaced) {
  ServiceRequestContext trusted = kCtx;
  trusted.trusted_peer = true;
  EXPECT_EQ(ServiceHead("GET / HTTP/1.1\r\nHost: h\r\n"
                        "Connection: X-Forwarded-Proto, x-request-id\r\n"
                        "X-Forwarded-Proto: https\r\nX-Forwarded-Host: public.example\r\n"
                        "X-Request-Id: abc\r\n\r\n",
                        trusted),
            "GET / HTTP/1.1\r\n"
            "Host: h\r\n"
            "X-Forwarded-Host: public.example\r\n"
            "X-Forwarded-For: 192.0.2.7\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
}

TEST(ServiceRequestHead, TrustedRequestIdMustBeOneAcceptableField) {
  ServiceRequestContext trusted = kCtx;
  trusted.trusted_peer = true;
  auto id_seen = [&](const std::string& fields, const ServiceRequestContext& ctx) {
    Parsed p("GET / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n");
    const std::string out = ServiceHead("GET / HTTP/1.1\r\nHost: h\r\n" + fields + "\r\n", ctx);
    // The writer and ServiceRequestId (what the access log shows) agree.
    const std::string_view id = ServiceRequestId(p.head(), ctx.trusted_peer, ctx.request_id);
    EXPECT_NE(out.find("\r\nX-Request-Id: " + std::string(id) + "\r\n"), std::string::npos) << out;
    EXPECT_EQ(out.find("X-Request-Id"), out.rfind("X-Request-Id")) << "one field only: " << out;
    return std::string(id);
  };
  const std::string generated(kCtx.request_id);
  const std::string longest(kMaxRequestIdBytes, 'x');
  EXPECT_EQ(id_seen("X-Request-Id: trace-7/a:b=c\r\n", trusted), "trace-7/a:b=c");
  EXPECT_EQ(id_seen("X-Request-Id: " + longest + "\r\n", trusted), longest);
  EXPECT_EQ(id_seen("X-Request-Id: " + longest + "x\r\n", trusted), generated);
  EXPECT_EQ(id_seen("X-Request-Id: two words\r\n", trusted), generated);
  EXPECT_EQ(id_seen("X-Request-Id: caf\xc3\xa9\r\n", trusted), generated);
  EXPECT_EQ(id_seen("X-Request-Id:\r\n", trusted), generated);
  EXPECT_EQ(id_seen("X-Request-Id: a\r\nX-Request-Id: b\r\n", trusted), generated);
  EXPECT_EQ(id_seen("X-Request-Id: trace-7\r\n", kCtx), generated);  // untrusted
}

TEST(ServiceRequestHead, ChunkedAndContentLengthFraming) {
  EXPECT_EQ(ServiceHead("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
                        {"1.2.3.4", {}, {}}),
            "POST / HTTP/1.1\r\n"
            "Host: h\r\n"
            "Transfer-Encoding: chunked\r\n"
            "X-Forwarded-For: 1.2.3.4\r\n"
            "X-Forwarded-Host: h\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  // Content-Length named in Connection cannot strip the framing.
  EXPECT_EQ(ServiceHead("PUT / HTTP/1.1\r\nHost: h\r\nConnection: content-length, host\r\n"
                        "Content-Length: 0012\r\n\r\n",
                        {"1.2.3.4", {}, {}}),
            "PUT / HTTP/1.1\r\n"
            "Host: h\r\n"
            "Content-Length: 12\r\n"
            "X-Forwarded-For: 1.2.3.4\r\n"
            "X-Forwarded-Host: h\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  // An explicit zero length is forwarded; no framing field without one.
  EXPECT_NE(ServiceHead("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n")
                .find("\r\nContent-Length: 0\r\n"),
            std::string::npos);
  std::string get = ServiceHead("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(get.find("Content-Length"), std::string::npos);
  EXPECT_EQ(get.find("Transfer-Encoding"), std::string::npos);
}

TEST(ServiceRequestHead, AbsoluteFormAndHttp10) {
  EXPECT_EQ(ServiceHead("GET http://Target.example:8080/x?y HTTP/1.1\r\nHost: ignored\r\n\r\n",
                        {"::1", "http", {}}),
            "GET /x?y HTTP/1.1\r\n"
            "Host: Target.example:8080\r\n"
            "X-Forwarded-For: ::1\r\n"
            "X-Forwarded-Proto: http\r\n"
            "X-Forwarded-Host: Target.example:8080\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  // HTTP/1.0 client without Host, with Connection: keep-alive: the service sees HTTP/1.1.
  std::string out =
      ServiceHead("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", {"10.1.1.1", {}, {}});
  EXPECT_EQ(out,
            "GET / HTTP/1.1\r\n"
            "Host: \r\n"
            "X-Forwarded-For: 10.1.1.1\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
}

TEST(ServiceRequestHead, UpgradeKeepsUpgradeAndConnection) {
  std::string out = ServiceHead(
      "GET /ws HTTP/1.1\r\n"
      "Host: h\r\n"
      "Connection: keep-alive, Upgrade\r\n"
      "Upgrade: websocket\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n"
      "\r\n",
      {"1.2.3.4", {}, "id"});
  EXPECT_EQ(out,
            "GET /ws HTTP/1.1\r\n"
            "Host: h\r\n"
            "Upgrade: websocket\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "Connection: upgrade\r\n"
            "X-Forwarded-For: 1.2.3.4\r\n"
            "X-Forwarded-Host: h\r\n"
            "X-Request-Id: id\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  Parsed reparsed(out);
  EXPECT_TRUE(reparsed.head().upgrade);
}

TEST(ServiceRequestHead, BufferTooSmallReturnsZero) {
  Parsed p("GET /a HTTP/1.1\r\nHost: example.com\r\nX-Long: " + std::string(100, 'v') + "\r\n\r\n");
  char out[512];
  size_t full = WriteServiceRequestHead(p.head(), kCtx, out, sizeof(out));
  ASSERT_GT(full, 0u);
  std::string expected(out, full);
  for (size_t cap = 0; cap < full; ++cap) {
    ASSERT_EQ(WriteServiceRequestHead(p.head(), kCtx, out, cap), 0u) << cap;
  }
  EXPECT_EQ(WriteServiceRequestHead(p.head(), kCtx, out, full), full);
  EXPECT_EQ(std::string(out, full), expected);
}

TEST(ClientResponseHead, KeepAliveResponse) {
  std::string out = ClientHead(
      "HTTP/1.1 200 OK\r\n"
      "Content-Type: text/html\r\n"
      "Connection: keep-alive, X-Hop\r\n"
      "Keep-Alive: timeout=5\r\n"
      "X-Hop: 1\r\n"
      "Content-Length: 42\r\n"
      "\r\n",
      {});
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/html\r\n"
            "Content-Length: 42\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  ExpectParses(out, Parser::Kind::kResponse);
}

TEST(ClientResponseHead, CloseAndHttp10Client) {
  const std::string in = "HTTP/1.1 404 Nope\r\nContent-Length: 0\r\nVia: 1.1 svc\r\n\r\n";
  EXPECT_EQ(ClientHead(in, {true, false, false}),
            "HTTP/1.1 404 Nope\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n"
            "Via: 1.1 svc, 1.1 l7px\r\n"
            "\r\n");
  EXPECT_EQ(ClientHead(in, {false, true, false}),
            "HTTP/1.1 404 Nope\r\n"
            "Content-Length: 0\r\n"
            "Connection: keep-alive\r\n"
            "Via: 1.1 svc, 1.1 l7px\r\n"
            "\r\n");
}

TEST(ClientResponseHead, ChunkedKeptOrDecoded) {
  const std::string in = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X\r\n\r\n";
  EXPECT_EQ(ClientHead(in, {}),
            "HTTP/1.1 200 OK\r\n"
            "Transfer-Encoding: chunked\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  EXPECT_EQ(ClientHead(in, {false, true, true}),
            "HTTP/1.1 200 OK\r\n"
            "Connection: close\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
}

TEST(ClientResponseHead, CloseDelimitedBodyAlwaysCloses) {
  EXPECT_EQ(ClientHead("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", {}),
            "HTTP/1.1 200 OK\r\n"
            "Content-Type: text/plain\r\n"
            "Connection: close\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
}

TEST(ClientResponseHead, HeadResponseKeepsLengthAndEmptyReasonIsFilled) {
  EXPECT_EQ(ClientHead("HTTP/1.1 200 \r\nContent-Length: 1234\r\n\r\n", {}, true),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 1234\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
}

TEST(ClientResponseHead, SwitchingProtocolsKeepsUpgrade) {
  EXPECT_EQ(ClientHead("HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\n"
                       "Connection: Upgrade\r\n"
                       "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                       "\r\n",
                       {}),
            "HTTP/1.1 101 Switching Protocols\r\n"
            "Upgrade: websocket\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
            "Connection: upgrade\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
  // On any other status Upgrade is hop-by-hop.
  EXPECT_EQ(ClientHead("HTTP/1.1 200 OK\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n", {}),
            "HTTP/1.1 200 OK\r\n"
            "Content-Length: 0\r\n"
            "Via: 1.1 l7px\r\n"
            "\r\n");
}

TEST(ClientResponseHead, BufferTooSmallReturnsZero) {
  Parsed p("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", Parser::Kind::kResponse);
  char out[256];
  size_t full = WriteClientResponseHead(p.head(), {}, out, sizeof(out));
  ASSERT_GT(full, 0u);
  for (size_t cap = 0; cap < full; ++cap) {
    ASSERT_EQ(WriteClientResponseHead(p.head(), {}, out, cap), 0u) << cap;
  }
  EXPECT_EQ(WriteClientResponseHead(p.head(), {}, out, full), full);
}

TEST(ErrorResponse, Formats) {
  char out[512];
  size_t n = WriteErrorResponse(503, true, 5, out, sizeof(out));
  EXPECT_EQ(std::string(out, n),
            "HTTP/1.1 503 Service Unavailable\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 24\r\n"
            "Connection: close\r\n"
            "Retry-After: 5\r\n"
            "\r\n"
            "503 Service Unavailable\n");
  n = WriteErrorResponse(404, false, 0, out, sizeof(out));
  EXPECT_EQ(std::string(out, n),
            "HTTP/1.1 404 Not Found\r\n"
            "Content-Type: text/plain\r\n"
            "Content-Length: 14\r\n"
            "\r\n"
            "404 Not Found\n");
  // Every status the parser can produce, and the body length always matches.
  for (int status : {400, 405, 413, 414, 431, 502, 504, 505}) {
    n = WriteErrorResponse(status, true, 0, out, sizeof(out));
    ASSERT_GT(n, 0u);
    std::string s(out, n);
    size_t body = s.find("\r\n\r\n") + 4;
    std::string expected_body =
        std::to_string(status) + " " + std::string(ReasonPhrase(status)) + "\n";
    EXPECT_EQ(s.substr(body), expected_body);
    EXPECT_NE(s.find("Content-Length: " + std::to_string(expected_body.size()) + "\r\n"),
              std::string::npos);
    Parser p(Parser::Kind::kResponse, {});
    p.Begin(s.data());
    Parser::Result r = p.Parse(s.data(), s.size());
    ASSERT_EQ(r.status, Parser::Status::kHeadDone);
    EXPECT_EQ(p.head().status, status);
    EXPECT_EQ(p.Parse(s.data() + r.consumed, s.size() - r.consumed).status,
              Parser::Status::kMessageDone);
  }
  size_t full = WriteErrorResponse(502, false, 1, out, sizeof(out));
  for (size_t cap = 0; cap < full; ++cap)
    EXPECT_EQ(WriteErrorResponse(502, false, 1, out, cap), 0u);
}

TEST(ReasonPhrase, KnownAndUnknown) {
  EXPECT_EQ(ReasonPhrase(200), "OK");
  EXPECT_EQ(ReasonPhrase(413), "Content Too Large");
  EXPECT_EQ(ReasonPhrase(431), "Request Header Fields Too Large");
  EXPECT_EQ(ReasonPhrase(505), "HTTP Version Not Supported");
  EXPECT_EQ(ReasonPhrase(299), "");
}

TEST(RequestIdGenerator, UniqueLowercaseHex) {
  RequestIdGenerator a(0), b(1);
  std::set<std::string> seen;
  char buf[32];
  for (int i = 0; i < 20000; ++i) {
    for (RequestIdGenerator* g : {&a, &b}) {
      std::string_view id = g->Next(buf);
      ASSERT_EQ(id.size(), 32u);
      ASSERT_EQ(id.data(), buf);
      for (char c : id) ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
      ASSERT_TRUE(seen.insert(std::string(id)).second) << "duplicate " << id;
    }
  }
}

}  // namespace
}  // namespace l7px::http
