// Integration: TLS termination ([tls]) with real TLS clients (curl, openssl s_client). The
// certificates are made at test time in the test's own directory: an ECDSA P-256 one for a.test
// and *.wild.test (the first, so the default) and an RSA one for b.test, each its own CA.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <sys/socket.h>

#include <fstream>
#include <string>
#include <thread>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"
#include "support/process.h"
#include "support/tls_client.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class TlsTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    if (RunCommand({"openssl", "version"}).exit_code != 0) GTEST_SKIP() << "openssl is needed";
    const std::string d = h().dir();
    ASSERT_TRUE(MakeTestCertificate(d + "/a.pem", d + "/a.key", "a.test", "DNS:*.wild.test"));
    ASSERT_TRUE(MakeTestCertificate(d + "/b.pem", d + "/b.key", "b.test", "", /*rsa=*/true));
    tls_port_ = FreePort();
    while (tls_port_ == front() || tls_port_ == h().register_port()) tls_port_ = FreePort();
  }

  std::string Pem(const std::string& name) { return h().dir() + "/" + name; }

  std::string TlsSection(const std::string& extra = "") {
    return "[tls]\nlisten = [\"127.0.0.1:" + std::to_string(tls_port_) + "\"]\n" + extra +
           "[[tls.certificate]]\ncert = \"" + Pem("a.pem") + "\"\nkey = \"" + Pem("a.key") +
           "\"\n[[tls.certificate]]\ncert = \"" + Pem("b.pem") + "\"\nkey = \"" + Pem("b.key") +
           "\"\n";
  }

  bool Start(const std::string& tls_extra = "", const std::string& server_extra = "") {
    return StartProxy(std::string(kDefaultPool) + TlsSection(tls_extra), server_extra) &&
           StartService({"--slots", "2"}) != nullptr;
  }

  // curl over TLS to `host` (resolved to loopback), trusting only `ca`.
  CommandResult Curl(const std::string& host, const std::string& ca, std::vector<std::string> extra,
                     const std::string& path = "/x") {
    const std::string port = std::to_string(tls_port_);
    std::vector<std::string> argv = {"curl",  "-sS",       "--cacert",
                                     Pem(ca), "--resolve", host + ":" + port + ":127.0.0.1"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("https://" + host + ":" + port + path);
    return RunCommand(argv, std::chrono::seconds(20));
  }

  // openssl s_client's report of one handshake (it sends nothing and quits).
  CommandResult SClient(std::vector<std::string> extra) {
    std::vector<std::string> argv = {"openssl", "s_client", "-connect",
                                     "127.0.0.1:" + std::to_string(tls_port_)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    // stdin is /dev/null for RunCommand's children: s_client ends after the handshake.
    return RunCommand(argv);
  }

  uint16_t tls_port_ = 0;
};

TEST_F(TlsTest, SniPicksTheCertificateByItsOwnNames) {
  ASSERT_TRUE(Start()) << h().ProxyLog();
  // Each certificate is its own CA: curl succeeds only when l7px served the expected one.
  CommandResult a = Curl("a.test", "a.pem", {});
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, "ok /x");
  CommandResult b = Curl("b.test", "b.pem", {});  // RSA
  EXPECT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(b.out, "ok /x");
  CommandResult wild = Curl("x.wild.test", "a.pem", {});
  EXPECT_EQ(wild.exit_code, 0) << wild.err;
  // A wildcard covers one label only; unknown names and no SNI get the first certificate.
  EXPECT_THAT(SClient({"-servername", "a.b.wild.test"}).out, HasSubstr("CN = a.test"));
  EXPECT_THAT(SClient({"-servername", "unknown.test"}).out, HasSubstr("CN = a.test"));
  EXPECT_THAT(SClient({"-noservername"}).out, HasSubstr("CN = a.test"));
  EXPECT_THAT(SClient({"-servername", "B.TEST"}).out, HasSubstr("CN = b.test"));
}

TEST_F(TlsTest, Tls12And13AreSpokenOlderVersionsAreRefused) {
  ASSERT_TRUE(Start()) << h().ProxyLog();
  CommandResult v12 = Curl("a.test", "a.pem", {"--tlsv1.2", "--tls-max", "1.2"});
  EXPECT_EQ(v12.exit_code, 0) << v12.err;
  CommandResult v13 = Curl("a.test", "a.pem", {"--tlsv1.3"});
  EXPECT_EQ(v13.exit_code, 0) << v13.err;
  EXPECT_THAT(SClient({"-servername", "a.test", "-tls1_2"}).out, HasSubstr("TLSv1.2"));
  const CommandResult v11 = SClient({"-servername", "a.test", "-tls1_1"});
  EXPECT_NE(v11.exit_code, 0) << v11.out;
  EXPECT_THAT(v11.out, Not(HasSubstr("Cipher is ECDHE")));
  // ALPN: HTTP/1.1 when offered; h2 alone is not taken.
  EXPECT_THAT(SClient({"-servername", "a.test", "-alpn", "h2,http/1.1"}).out,
              HasSubstr("ALPN protocol: http/1.1"));
  EXPECT_THAT(SClient({"-servername", "a.test", "-alpn", "h2"}).out,
              HasSubstr("No ALPN negotiated"));
}

TEST_F(TlsTest, HandshakesResumptionsAndFailuresAreCounted) {
  h().EnableAdmin();
  ASSERT_TRUE(Start("handshake_timeout = \"300ms\"\n")) << h().ProxyLog();
  EXPECT_EQ(Curl("a.test", "a.pem", {"--tlsv1.2", "--tls-max", "1.2"}).exit_code, 0);
  EXPECT_EQ(Curl("a.test", "a.pem", {"--tlsv1.3"}).exit_code, 0);
  // A TLS 1.2 session saved by one client and resumed by the next (a session ticket).
  const std::string session = Pem("session");
  const CommandResult first = SClient({"-servername", "a.test", "-tls1_2", "-sess_out", session});
  ASSERT_THAT(first.out, HasSubstr("New, TLSv1.2"));
  const CommandResult second = SClient({"-servername", "a.test", "-tls1_2", "-sess_in", session});
  EXPECT_THAT(second.out, HasSubstr("Reused, TLSv1.2")) << second.out;
  EXPECT_NE(SClient({"-servername", "a.test", "-tls1_1"}).exit_code, 0);
  UniqueFd stalled = ConnectTcp(tls_port_);  // starts a handshake, never ends it: timeout
  ASSERT_TRUE(SendAll(stalled.get(), std::string("\x16\x03\x01", 3)));
  EXPECT_TRUE(WaitPeerClosed(stalled.get(), kIo));
  // One that sends nothing is closed at handshake_timeout too, but made no handshake.
  UniqueFd silent = ConnectTcp(tls_port_);
  ASSERT_TRUE(silent);
  EXPECT_TRUE(WaitPeerClosed(silent.get(), kIo));
  UniqueFd garbage = ConnectTcp(tls_port_);
  ASSERT_TRUE(SendAll(garbage.get(), std::string(3000, '\x16')));
  EXPECT_TRUE(WaitPeerClosed(garbage.get(), kIo));
  // A client that does not trust the certificate aborts with an alert (curl: unknown CA).
  EXPECT_NE(Curl("a.test", "b.pem", {}).exit_code, 0);
  // One that sends the start of a ClientHello and goes away.
  {
    UniqueFd cut = ConnectTcp(tls_port_);
    ASSERT_TRUE(
        SendAll(cut.get(), std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)));
  }
  // A TCP connection that sends nothing and closes (a health check) made no handshake at all.
  { UniqueFd probe = ConnectTcp(tls_port_); }
  const std::string failed = "l7px_tls_handshakes_total{result=\"failed\",reason=";
  ASSERT_TRUE(WaitFor(
      [&] {
        return AdminCall(h().admin_port(), "GET", "/metrics")
                   .body.find(failed + "\"closed\"} 1\n") != std::string::npos;
      },
      kIo))
      << AdminCall(h().admin_port(), "GET", "/metrics").body;
  const std::string metrics = AdminCall(h().admin_port(), "GET", "/metrics").body;
  EXPECT_THAT(metrics, HasSubstr("l7px_tls_handshakes_total{result=\"ok\",version=\"1.2\"} 3\n"));
  EXPECT_THAT(metrics, HasSubstr("l7px_tls_handshakes_total{result=\"ok\",version=\"1.3\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr(failed + "\"version\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr(failed + "\"timeout\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr(failed + "\"protocol\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr(failed + "\"alert\"} 1\n"));
  EXPECT_THAT(metrics, HasSubstr("l7px_tls_resumptions_total{version=\"1.2\"} 1\n"));
  EXPECT_EQ(StatsCounter(h().admin_port(), "tls"), -1);  // an object, not a counter
  const std::string stats = AdminCall(h().admin_port(), "GET", "/stats").body;
  EXPECT_THAT(stats, HasSubstr("\"resumptions\":1"));
  EXPECT_THAT(stats, HasSubstr("\"handshake_failures\":5"));
}

// Session tickets are sealed with keys l7px makes, the same for every worker and kept across
// a reload (which builds new certificate contexts): a client resumes on any worker, before and
// after a SIGHUP, over TLS 1.2 and 1.3; a ticket l7px did not issue gets a full handshake.
TEST_F(TlsTest, TicketsResumeOnEveryWorkerAndAcrossAReload) {
  h().EnableAdmin();
  ASSERT_TRUE(Start()) << h().ProxyLog();  // two workers
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    SSL_SESSION* session = nullptr;
    {
      TlsClient first(tls_port_, "a.test", nullptr, version);
      ASSERT_TRUE(first.ok());
      EXPECT_FALSE(first.resumed());
      ASSERT_EQ(BodyOf(first.Get("/first")), "ok /first");
      session = first.Session();
      first.SendCloseNotify();  // a client ends cleanly, or OpenSSL drops its session
    }
    ASSERT_NE(session, nullptr);
    // Eight connections: SO_REUSEPORT spreads them over both workers. Each offers the newest
    // session it has: a TLS 1.3 client uses a ticket once, so each resumption must bring a
    // fresh ticket for the next (a TLS 1.2 one keeps its ticket).
    for (int i = 0; i < 8; ++i) {
      TlsClient again(tls_port_, "a.test", session, version);
      ASSERT_TRUE(again.ok());
      EXPECT_TRUE(again.resumed()) << i;
      EXPECT_EQ(BodyOf(again.Get("/again")), "ok /again");
      if (version == TLS1_3_VERSION) {
        SSL_SESSION* newer = again.Session();
        ASSERT_NE(newer, nullptr);
        EXPECT_NE(newer, session) << i << ": no new ticket on a TLS 1.3 resumption";
        SSL_SESSION_free(session);
        session = newer;
      }
      again.SendCloseNotify();
    }
    ASSERT_EQ(AdminCall(h().admin_port(), "POST", "/reload").status, 200) << h().ProxyLog();
    {
      TlsClient after_reload(tls_port_, "a.test", session, version);
      ASSERT_TRUE(after_reload.ok());
      EXPECT_TRUE(after_reload.resumed()) << h().ProxyLog();
      EXPECT_EQ(BodyOf(after_reload.Get("/after")), "ok /after");
    }
    SSL_SESSION_free(session);
  }
  // A session (and ticket) from another server: a full handshake, not an error.
  const std::string d = h().dir();
  ASSERT_TRUE(MakeTestCertificate(d + "/other.pem", d + "/other.key", "a.test"));
  // The other server is openssl s_server with its own ticket keys.
  const uint16_t other_port = FreePort();
  ChildProcess other = ChildProcess::Start(
      {"/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:" + std::to_string(other_port),
       "-cert", d + "/other.pem", "-key", d + "/other.key", "-www", "-quiet"},
      d + "/s_server.log");
  ASSERT_GT(other.pid(), 0);
  ASSERT_TRUE(WaitFor([&] { return static_cast<bool>(ConnectTcp(other_port)); }, kIo));
  SSL_SESSION* foreign = nullptr;
  {
    TlsClient there(other_port, "a.test", nullptr, TLS1_2_VERSION);
    ASSERT_TRUE(there.ok());
    there.Get("/");
    foreign = there.Session();
    there.SendCloseNotify();
  }
  ASSERT_NE(foreign, nullptr);
  TlsClient here(tls_port_, "a.test", foreign, TLS1_2_VERSION);
  ASSERT_TRUE(here.ok());
  EXPECT_FALSE(here.resumed());
  EXPECT_EQ(BodyOf(here.Get("/here")), "ok /here");
  SSL_SESSION_free(foreign);
}

// A session resumes only on the certificate it was made with: a ticket for a.test offered with
// the name b.test (another certificate) gets a full handshake with b.test's certificate, and
// the other way round; a name the same certificate carries (x.wild.test) resumes. TLS 1.2 and
// 1.3. (It resumed on any certificate when the certificate was chosen after OpenSSL had looked
// at the session: found by the outside attack.)
TEST_F(TlsTest, ASessionResumesOnlyOnItsOwnCertificate) {
  ASSERT_TRUE(Start()) << h().ProxyLog();
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    SSL_SESSION* a = FetchSession(tls_port_, "a.test", version);
    SSL_SESSION* b = FetchSession(tls_port_, "b.test", version);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    {
      TlsClient cross(tls_port_, "b.test", a, version);
      ASSERT_TRUE(cross.ok());
      EXPECT_FALSE(cross.resumed());
      EXPECT_EQ(cross.PeerName(), "b.test");
      EXPECT_EQ(BodyOf(cross.Get("/x")), "ok /x");
    }
    {
      TlsClient cross(tls_port_, "a.test", b, version);
      ASSERT_TRUE(cross.ok());
      EXPECT_FALSE(cross.resumed());
      EXPECT_EQ(cross.PeerName(), "a.test");
    }
    {
      TlsClient same(tls_port_, "x.wild.test", a, version);
      ASSERT_TRUE(same.ok());
      EXPECT_TRUE(same.resumed());
      EXPECT_EQ(BodyOf(same.Get("/y")), "ok /y");
      same.SendCloseNotify();
    }
    SSL_SESSION_free(a);
    SSL_SESSION_free(b);
  }
}

// session_tickets = false: no ticket is sent (TLS 1.3 included: OpenSSL would otherwise send
// stateful ones) and nothing resumes.
TEST_F(TlsTest, SessionTicketsOffSendsNoTicketAndNothingResumes) {
  ASSERT_TRUE(Start("session_tickets = false\n")) << h().ProxyLog();
  for (const int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(version);
    SSL_SESSION* session = FetchSession(tls_port_, "a.test", version, "/first");
    ASSERT_NE(session, nullptr);
    EXPECT_EQ(SSL_SESSION_has_ticket(session), 0);
    TlsClient again(tls_port_, "a.test", session, version);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(again.resumed());
    EXPECT_EQ(BodyOf(again.Get("/again")), "ok /again");
    SSL_SESSION_free(session);
  }
}

// A client that asks for key updates (TLS 1.3 KeyUpdate) while a response streams to it: l7px
// answers each with one of its own, and the response goes on to its end. (The answers once
// stalled the response until response_timeout, which then blamed the service.)
TEST_F(TlsTest, KeyUpdatesDuringAStreamedResponseDoNotStallIt) {
  ASSERT_TRUE(
      StartProxy("[[pool]]\nname = \"default\"\nresponse_buffer = 0\n"
                 "response_timeout = \"5s\"\n" +
                 TlsSection()))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  for (int i = 0; i < 3; ++i) {
    TlsClient c(tls_port_, "a.test", nullptr, TLS1_3_VERSION);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c.GetWithKeyUpdates("/size/4000000", 40), 4000000) << i << h().ProxyLog();
  }
  EXPECT_THAT(h().ProxyLog(), Not(HasSubstr("silent past response_timeout")));
}

// A client that pipelines many requests and sends close_notify right behind them gets every
// response, then l7px's close_notify and the close at once, not at keepalive_timeout (30 s
// here). The close_notify is decoded from input l7px had queued while it answered; it was not
// passed on from there (found by the outside attack: the close came after 75 s).
TEST_F(TlsTest, CloseNotifyBehindPipelinedRequestsEndsTheConnectionAtOnce) {
  ASSERT_TRUE(Start("", "keepalive_timeout = \"30s\"\n")) << h().ProxyLog();
  TlsClient c(tls_port_, "a.test");
  ASSERT_TRUE(c.ok());
  constexpr int kRequests = 6000;
  std::string requests;
  for (int i = 0; i < kRequests; ++i) requests += GetRequest("/p" + std::to_string(i), "a.test");
  const auto start = std::chrono::steady_clock::now();
  const std::string all = c.WriteThenCloseNotify(requests);
  const auto took = std::chrono::steady_clock::now() - start;
  size_t responses = 0;
  for (size_t at = all.find("HTTP/1.1 200 "); at != std::string::npos;
       at = all.find("HTTP/1.1 200 ", at + 1)) {
    ++responses;
  }
  EXPECT_EQ(responses, static_cast<size_t>(kRequests));
  EXPECT_NE(all.find("ok /p5999"), std::string::npos);
  EXPECT_LT(took, std::chrono::seconds(10));
}

// The access log names the client's TLS: version, cipher suite, SNI name and resumption.
TEST_F(TlsTest, TheAccessLogNamesTheClientsTls) {
  ASSERT_TRUE(Start()) << h().ProxyLog();
  {
    TlsClient tls(tls_port_, "a.test", nullptr, TLS1_3_VERSION);
    ASSERT_TRUE(tls.ok());
    ASSERT_EQ(BodyOf(tls.Get("/over-tls")), "ok /over-tls");
  }
  ASSERT_EQ(BodyOf(HttpExchange(front(), GetRequest("/plain"))), "ok /plain");
  // A TLS 1.2 session made for a.test, resumed under another name of the same certificate: the
  // log names the name the client sent this time (OpenSSL keeps the session's first one).
  SSL_SESSION* session = FetchSession(tls_port_, "a.test", TLS1_2_VERSION, "/first12");
  ASSERT_NE(session, nullptr);
  {
    TlsClient wild(tls_port_, "x.wild.test", session, TLS1_2_VERSION);
    ASSERT_TRUE(wild.resumed());
    ASSERT_EQ(BodyOf(wild.Get("/resumed-wild")), "ok /resumed-wild");
  }
  SSL_SESSION_free(session);
  std::string tls_line, plain_line, resumed_line;
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string log = h().AccessLog();
        for (size_t at = 0; at < log.size();) {
          size_t end = log.find('\n', at);
          if (end == std::string::npos) end = log.size();
          const std::string line = log.substr(at, end - at);
          if (line.find("/over-tls") != std::string::npos) tls_line = line;
          if (line.find("/plain") != std::string::npos) plain_line = line;
          if (line.find("/resumed-wild") != std::string::npos) resumed_line = line;
          at = end + 1;
        }
        return !tls_line.empty() && !plain_line.empty() && !resumed_line.empty();
      },
      kIo))
      << h().AccessLog();
  EXPECT_THAT(tls_line, HasSubstr("\"tls\":\"TLSv1.3\",\"tls_cipher\":\"TLS_"));
  EXPECT_THAT(tls_line, HasSubstr("\"sni\":\"a.test\",\"tls_resumed\":false}"));
  EXPECT_THAT(plain_line, Not(HasSubstr("\"tls")));
  EXPECT_THAT(resumed_line, HasSubstr("\"tls\":\"TLSv1.2\""));
  EXPECT_THAT(resumed_line, HasSubstr("\"sni\":\"x.wild.test\",\"tls_resumed\":true}"));
}

// Hostile input: TCP connections to the TLS port that send nothing (a flood of idle sockets,
// health checks) hold no OpenSSL state: it is made with the first byte. 500 of them grow l7px's
// memory by far less than one SSL object each (about 9 KB) would.
TEST_F(TlsTest, ConnectionsThatSendNothingHoldNoTlsState) {
  h().EnableAdmin();
  ASSERT_TRUE(Start("handshake_timeout = \"60s\"\n")) << h().ProxyLog();
  const std::string status = "/proc/" + std::to_string(h().proxy().pid()) + "/status";
  // Warm up: a first TLS request makes OpenSSL's and the worker's one-time allocations.
  {
    TlsClient warm(tls_port_, "a.test");
    ASSERT_TRUE(warm.ok());
    ASSERT_EQ(BodyOf(warm.Get("/warm")), "ok /warm");
  }
  const long before = ProcStatusValue(status, "VmRSS");
  ASSERT_GT(before, 0);
  constexpr int kIdle = 500;
  std::vector<UniqueFd> idle;
  for (int i = 0; i < kIdle; ++i) {
    idle.push_back(ConnectTcp(tls_port_));
    ASSERT_TRUE(idle.back()) << i;
  }
  ASSERT_TRUE(
      WaitFor([&] { return StatsCounter(h().admin_port(), "client_connections") >= kIdle; }, kIo));
  const long grown_kib = ProcStatusValue(status, "VmRSS") - before;
  EXPECT_LT(grown_kib, kIdle * 4) << "KiB for " << kIdle << " idle connections";
  // They are still served once they speak.
  TlsClient late(tls_port_, "a.test");
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(BodyOf(late.Get("/late")), "ok /late");
}

// Python's ssl module as the client (OpenSSL underneath, but its own defaults and session
// handling): three keep-alive requests on one connection with certificate verification against
// the test CA, then a second connection that resumes the first one's session (TLS 1.3 ticket).
TEST_F(TlsTest, PythonSslClientKeepsAliveAndResumes) {
  if (RunCommand({"python3", "-c", "import ssl"}).exit_code != 0) GTEST_SKIP() << "python3";
  ASSERT_TRUE(Start()) << h().ProxyLog();
  const std::string script = R"PY(
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
def connect(session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="a.test", session=session)
def get(s, path):
    s.sendall(("GET %s HTTP/1.1\r\nHost: a.test\r\n\r\n" % path).encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(4096)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int([l.split(b":")[1] for l in head.split(b"\r\n") if l.lower().startswith(b"content-length")][0])
    while len(body) < length:
        body += s.recv(4096)
    return head.split(b" ")[1].decode(), body.decode()
s = connect()
for i in range(3):
    print(s.version(), *get(s, "/py/%d" % i))
session = s.session
s.unwrap().close()
again = connect(session)
print(again.version(), *get(again, "/py/again"), "reused" if again.session_reused else "new")
again.unwrap().close()
)PY";
  const CommandResult r = RunCommand(
      {"python3", "-c", script, std::to_string(tls_port_), Pem("a.pem")}, std::chrono::seconds(20));
  ASSERT_EQ(r.exit_code, 0) << r.err << h().ProxyLog();
  EXPECT_EQ(r.out,
            "TLSv1.3 200 ok /py/0\nTLSv1.3 200 ok /py/1\nTLSv1.3 200 ok /py/2\n"
            "TLSv1.3 200 ok /py/again reused\n");
}

TEST_F(TlsTest, MinVersion13RefusesTls12) {
  ASSERT_TRUE(Start("min_version = \"TLSv1.3\"\n")) << h().ProxyLog();
  CommandResult v12 = Curl("a.test", "a.pem", {"--tlsv1.2", "--tls-max", "1.2"});
  EXPECT_NE(v12.exit_code, 0) << v12.out;
  CommandResult v13 = Curl("a.test", "a.pem", {"--tlsv1.3"});
  EXPECT_EQ(v13.exit_code, 0) << v13.err;
}

TEST_F(TlsTest, KeepAliveLargeBodiesAndForwardedProtoOverTls) {
  ASSERT_TRUE(Start()) << h().ProxyLog();
  // Three requests, one connection.
  CommandResult three =
      Curl("a.test", "a.pem",
           {"-w", "%{http_code} %{num_connects}\\n", "-o", "/dev/null", "-o", "/dev/null", "-o",
            "/dev/null", "https://a.test:" + std::to_string(tls_port_) + "/k1",
            "https://a.test:" + std::to_string(tls_port_) + "/k2"},
           "/k3");
  EXPECT_EQ(three.out, "200 1\n200 0\n200 0\n") << three.err;
  // The service is told the client came over TLS.
  CommandResult echo = Curl("a.test", "a.pem", {}, "/echo");
  EXPECT_THAT(echo.out, HasSubstr("X-Forwarded-Proto: https\n")) << echo.out;
  // 8 MiB down, 3 MB up (echoed back), byte for byte.
  CommandResult big = Curl("a.test", "a.pem", {"-o", Pem("big"), "-w", "%{size_download}"},
                           "/size/" + std::to_string(8u << 20));
  EXPECT_EQ(big.out, std::to_string(8u << 20)) << big.err;
  std::string upload(3'000'000, '\0');
  for (size_t i = 0; i < upload.size(); ++i) upload[i] = static_cast<char>((i * 131) % 251);
  std::ofstream(Pem("up.bin"), std::ios::binary) << upload;
  CommandResult up =
      Curl("a.test", "a.pem", {"--data-binary", "@" + Pem("up.bin"), "-o", Pem("up.out")}, "/echo");
  EXPECT_EQ(up.exit_code, 0) << up.err;
  std::ifstream in(Pem("up.out"), std::ios::binary);
  const std::string echoed((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t body = echoed.find("\n\n");
  ASSERT_NE(body, std::string::npos);
  EXPECT_TRUE(echoed.substr(body + 2) == upload) << "upload not echoed byte for byte";
}

TEST_F(TlsTest, GarbageAndPlainHttpOnTheTlsPortCloseOnlyThatConnection) {
  ASSERT_TRUE(Start()) << h().ProxyLog();
  UniqueFd plain = ConnectTcp(tls_port_);
  ASSERT_TRUE(plain);
  ASSERT_TRUE(SendAll(plain.get(), GetRequest("/plain-to-tls")));
  UniqueFd garbage = ConnectTcp(tls_port_);
  ASSERT_TRUE(garbage);
  ASSERT_TRUE(SendAll(garbage.get(), std::string(3000, '\x16')));
  // Plain HTTP gets a plain 400 that says so (as NGINX answers), then the close; garbage just
  // the close (after a TLS alert).
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(plain.get(), kIo, &seen));
  EXPECT_EQ(StatusOf(seen), 400) << seen;
  EXPECT_EQ(BodyOf(seen), "The plain HTTP request was sent to an HTTPS port\n");
  EXPECT_TRUE(WaitPeerClosed(garbage.get(), kIo));
  EXPECT_EQ(Curl("a.test", "a.pem", {}).out, "ok /x");
  EXPECT_EQ(BodyOf(HttpExchange(front(), GetRequest("/plain"))), "ok /plain");
}

TEST_F(TlsTest, AHandshakeThatNeverEndsIsCutByHandshakeTimeout) {
  // handshake_timeout alone cuts it, however long header_timeout is.
  ASSERT_TRUE(Start("handshake_timeout = \"300ms\"\n", "header_timeout = \"30s\"\n"))
      << h().ProxyLog();
  UniqueFd silent = ConnectTcp(tls_port_);
  ASSERT_TRUE(silent);
  UniqueFd partial = ConnectTcp(tls_port_);
  ASSERT_TRUE(partial);
  ASSERT_TRUE(SendAll(partial.get(), std::string("\x16\x03\x01\x02\x00", 5)));  // half a hello
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(WaitPeerClosed(silent.get(), kIo));
  EXPECT_TRUE(WaitPeerClosed(partial.get(), kIo));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST_F(TlsTest, ReloadSwapsCertificatesLiveConnectionsKeepTheirs) {
  ASSERT_TRUE(Start()) << h().ProxyLog();
  TlsClient before(tls_port_, "a.test");
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before.PeerName(), "a.test");
  EXPECT_EQ(BodyOf(before.Get("/one")), "ok /one");
  // The certificate for a.test is renewed in place (a new key and subject), then SIGHUP.
  const std::string d = h().dir();
  ASSERT_TRUE(MakeTestCertificate(d + "/a.pem", d + "/a.key", "a.renewed", "DNS:a.test"));
  ASSERT_EQ(kill(h().proxy().pid(), SIGHUP), 0);
  ASSERT_TRUE(WaitFor([&] { return CountOf(h().ProxyLog(), "config reloaded") == 1; }, kIo))
      << h().ProxyLog();
  TlsClient after(tls_port_, "a.test");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after.PeerName(), "a.renewed");
  EXPECT_EQ(BodyOf(after.Get("/two")), "ok /two");
  // The connection from before keeps its session and is served as before.
  EXPECT_EQ(BodyOf(before.Get("/three")), "ok /three");

  // A key that does not match its certificate rejects the whole reload: the renewed
  // certificate stays in use, and the log says why.
  ASSERT_EQ(RunCommand({"cp", d + "/b.key", d + "/a.key"}).exit_code, 0);
  ASSERT_EQ(kill(h().proxy().pid(), SIGHUP), 0);
  ASSERT_TRUE(
      WaitFor([&] { return h().ProxyLog().find("reload rejected") != std::string::npos; }, kIo))
      << h().ProxyLog();
  EXPECT_THAT(h().ProxyLog(), HasSubstr("tls.certificate[0]"));
  TlsClient kept(tls_port_, "a.test");
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(kept.PeerName(), "a.renewed");
  EXPECT_EQ(BodyOf(kept.Get("/four")), "ok /four");
}

TEST_F(TlsTest, AClientsCloseNotifyEndsItsSideLikeATcpHalfClose) {
  ASSERT_TRUE(Start()) << h().ProxyLog();
  TlsClient client(tls_port_, "a.test");
  ASSERT_TRUE(client.ok());
  EXPECT_EQ(BodyOf(client.Get("/before")), "ok /before");
  // close_notify on an idle keep-alive connection: l7px closes it now, not at keepalive_timeout.
  client.SendCloseNotify();
  EXPECT_TRUE(WaitPeerClosed(client.fd(), std::chrono::seconds(3)));
}

TEST_F(TlsTest, AConnectionL7pxEndsCleanlyEndsWithCloseNotify) {
  ASSERT_TRUE(Start()) << h().ProxyLog();
  // Connection: close: the response, then close_notify, so a client can tell a complete
  // response from one cut short by a forged TCP close.
  TlsClient client(tls_port_, "a.test");
  ASSERT_TRUE(client.ok());
  const std::string resp = client.Get("/bye", "a.test\r\nConnection: close");
  EXPECT_EQ(BodyOf(resp), "ok /bye") << resp;
  EXPECT_TRUE(client.EndsWithCloseNotify());
}

// The chain sent is the cert file's, intermediates included; a leaf alone goes out alone.
TEST_F(TlsTest, TheCertFilesChainIsSentAsItIs) {
  const std::string d = h().dir();
  // openssl with `args`, then an ECDSA P-256 key and `more`.
  auto openssl = [](std::vector<std::string> args, const std::vector<std::string>& more) {
    args.insert(args.begin(), "openssl");
    for (const char* a : {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"}) {
      args.push_back(a);
    }
    args.insert(args.end(), more.begin(), more.end());
    return RunCommand(args).exit_code == 0;
  };
  ASSERT_TRUE(openssl({"req", "-x509"}, {"-keyout", d + "/ca.key", "-out", d + "/ca.pem", "-days",
                                         "2", "-subj", "/CN=Test Intermediate"}));
  ASSERT_TRUE(
      openssl({"req"}, {"-keyout", d + "/c.key", "-out", d + "/c.csr", "-subj", "/CN=c.test"}));
  ASSERT_EQ(
      RunCommand({"openssl", "x509", "-req", "-in", d + "/c.csr", "-CA", d + "/ca.pem", "-CAkey",
                  d + "/ca.key", "-CAcreateserial", "-out", d + "/c.crt", "-days", "2"})
          .exit_code,
      0);
  {
    std::ofstream chain(d + "/chain.pem");
    for (const char* part : {"/c.crt", "/ca.pem"}) chain << std::ifstream(d + part).rdbuf();
  }
  ASSERT_TRUE(StartProxy(std::string(kDefaultPool) + "[tls]\nlisten = [\"127.0.0.1:" +
                         std::to_string(tls_port_) + "\"]\n[[tls.certificate]]\ncert = \"" + d +
                         "/chain.pem\"\nkey = \"" + d + "/c.key\"\n[[tls.certificate]]\n" +
                         "cert = \"" + Pem("a.pem") + "\"\nkey = \"" + Pem("a.key") + "\"\n"))
      << h().ProxyLog();
  const std::string with_chain = SClient({"-servername", "c.test", "-showcerts"}).out;
  EXPECT_THAT(with_chain, HasSubstr(" 0 s:CN = c.test"));
  EXPECT_THAT(with_chain, HasSubstr(" 1 s:CN = Test Intermediate"));
  const std::string leaf_only = SClient({"-servername", "a.test", "-showcerts"}).out;
  EXPECT_THAT(leaf_only, HasSubstr(" 0 s:CN = a.test"));
  EXPECT_THAT(leaf_only, Not(HasSubstr(" 1 s:")));
}

TEST_F(TlsTest, ConfigCheckLoadsEveryPairAndNamesTheBadOne) {
  const std::string dir = h().dir();
  auto check = [&](const std::string& tls) {
    const std::string path = dir + "/check.toml";
    std::ofstream(path) << tls;
    return RunCommand({L7PX_BINARY, "-t", "-c", path});
  };
  const std::string listen = "[tls]\nlisten = [\"127.0.0.1:1\"]\n";
  CommandResult ok = check(listen + "[[tls.certificate]]\ncert = \"" + Pem("a.pem") +
                           "\"\nkey = \"" + Pem("a.key") + "\"\n");
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  CommandResult missing = check(listen + "[[tls.certificate]]\ncert = \"" + Pem("a.pem") +
                                "\"\nkey = \"" + Pem("nope.key") + "\"\n");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.err, HasSubstr("tls.certificate[0]"));
  EXPECT_THAT(missing.err, HasSubstr("nope.key"));
  CommandResult mismatched = check(listen + "[[tls.certificate]]\ncert = \"" + Pem("a.pem") +
                                   "\"\nkey = \"" + Pem("b.key") + "\"\n");
  EXPECT_EQ(mismatched.exit_code, 2);
  EXPECT_THAT(mismatched.err, HasSubstr("tls.certificate[0]"));
  CommandResult none = check(listen);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_THAT(none.err, HasSubstr("[[tls.certificate]]"));
  CommandResult old = check(listen + "min_version = \"TLSv1.1\"\n");
  EXPECT_EQ(old.exit_code, 2);
  EXPECT_THAT(old.err, HasSubstr("tls.min_version"));
}

}  // namespace
}  // namespace l7px::testing
