#include "l7px/service.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "support/net.h"
#include "support/process.h"

namespace l7px {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using testing::RecvHttpResponse;
using testing::RecvUntil;
using testing::RecvUntilClose;
using testing::SendAll;

constexpr milliseconds kTimeout{5000};
const std::string kSwitch = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: l7px-slot/1\r\n\r\n";

// A stand-in for the proxy's register listener: a plain loopback (or UNIX) listener driven by
// the test thread.
class FakeProxy {
 public:
  FakeProxy() {
    fd_ = UniqueFd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_.get(), 128), 0);
    socklen_t len = sizeof(addr);
    getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
    address_ = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  }
  explicit FakeProxy(const std::string& unix_path) {
    fd_ = UniqueFd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, unix_path.c_str(), sizeof(addr.sun_path) - 1);
    unlink(unix_path.c_str());
    EXPECT_EQ(bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(listen(fd_.get(), 128), 0);
    address_ = "unix:" + unix_path;
  }

  const std::string& address() const { return address_; }

  UniqueFd Accept(milliseconds timeout = kTimeout) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return UniqueFd();
    return UniqueFd(accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
  }

  // Accepts a connection, reads its registration head into `*head` and answers 101 (+ `extra`
  // in the same write).
  UniqueFd AcceptSlot(std::string* head = nullptr, const std::string& extra = "") {
    UniqueFd fd = Accept();
    if (!fd) return fd;
    std::string got = RecvUntil(fd.get(), "\r\n\r\n", kTimeout);
    if (head) *head = got;
    EXPECT_TRUE(SendAll(fd.get(), kSwitch + extra));
    return fd;
  }

 private:
  UniqueFd fd_;
  std::string address_;
};

// Collects SDK log lines.
struct LogSink {
  std::mutex mu;
  std::vector<std::string> lines;
  std::function<void(std::string_view)> Fn() {
    return [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mu);
      lines.emplace_back(line);
    };
  }
  int Count(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mu);
    int n = 0;
    for (const auto& l : lines) n += l.find(needle) != std::string::npos;
    return n;
  }
};

ServiceOptions Options(const FakeProxy& proxy, int slots = 1) {
  ServiceOptions o;
  o.proxies = {proxy.address()};
  o.pool = "api";
  o.slots = slots;
  o.service_id = "test-1";
  return o;
}

// Echoes "<method> <target> body=<body>".
void EchoHandler(const Request& req, Response& resp) {
  resp.AddHeader("Content-Type", "text/plain");
  resp.body = req.method + " " + req.target + " body=" + req.body;
}

std::string Exchange(int fd, const std::string& request, std::string* carry) {
  if (!SendAll(fd, request)) return "";
  return RecvHttpResponse(fd, carry, kTimeout, request.rfind("HEAD ", 0) == 0);
}

TEST(ServiceTest, HandshakeBytesExact) {
  FakeProxy proxy;
  ServiceOptions o = Options(proxy);
  o.token = "tok";
  Service service(o, EchoHandler);
  ASSERT_TRUE(service.Start());
  std::string head;
  UniqueFd slot = proxy.AcceptSlot(&head);
  ASSERT_TRUE(slot);
  EXPECT_EQ(head,
            "GET /.l7px/register HTTP/1.1\r\n"
            "Host: l7px\r\n"
            "Connection: Upgrade\r\n"
            "Upgrade: l7px-slot/1\r\n"
            "L7px-Pool: api\r\n"
            "L7px-Token: tok\r\n"
            "L7px-Service: test-1\r\n"
            "\r\n");
  EXPECT_TRUE(service.WaitForSlots(1, kTimeout));
  EXPECT_EQ(service.ConnectedSlots(), 1);
  EXPECT_EQ(service.Stats().registrations, 1u);
}

TEST(ServiceTest, DefaultServiceIdIsHostnamePid) {
  FakeProxy proxy;
  ServiceOptions o = Options(proxy);
  o.service_id.clear();
  o.pool.clear();
  Service service(o, EchoHandler);
  ASSERT_TRUE(service.Start());
  std::string head;
  UniqueFd slot = proxy.AcceptSlot(&head);
  ASSERT_TRUE(slot);
  EXPECT_EQ(head.find("L7px-Pool"), std::string::npos);
  EXPECT_EQ(head.find("L7px-Token"), std::string::npos);
  EXPECT_NE(head.find("L7px-Service: "), std::string::npos);
  EXPECT_NE(head.find("-" + std::to_string(getpid()) + "\r\n"), std::string::npos);
}

TEST(ServiceTest, RequestInSameWriteAs101IsServed) {
  FakeProxy proxy;
  Service service(Options(proxy), EchoHandler);
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot(nullptr, "GET /first?q=1 HTTP/1.1\r\nHost: a\r\n\r\n");
  ASSERT_TRUE(slot);
  std::string carry;
  const std::string resp = RecvHttpResponse(slot.get(), &carry, kTimeout);
  EXPECT_EQ(testing::StatusOf(resp), 200);
  EXPECT_EQ(testing::BodyOf(resp), "GET /first?q=1 body=");
  EXPECT_EQ(testing::HeaderOf(resp, "Content-Length"), "20");
  EXPECT_EQ(testing::HeaderOf(resp, "Content-Type"), "text/plain");
  // Counted once the write returned, which may be just after the peer saw the bytes.
  EXPECT_TRUE(testing::WaitFor([&] { return service.Served() == 1; }, kTimeout));
}

TEST(ServiceTest, KeepAliveServesManyRequestsOnOneSlot) {
  FakeProxy proxy;
  Service service(Options(proxy), EchoHandler);
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(slot);
  std::string carry;
  for (int i = 0; i < 5; ++i) {
    const std::string path = "/r" + std::to_string(i);
    const std::string resp =
        Exchange(slot.get(), "GET " + path + " HTTP/1.1\r\nHost: a\r\n\r\n", &carry);
    EXPECT_EQ(testing::BodyOf(resp), "GET " + path + " body=");
    EXPECT_EQ(testing::HeaderOf(resp, "Connection"), "");
  }
  // Two pipelined requests in one write are answered in order.
  ASSERT_TRUE(SendAll(slot.get(),
                      "GET /p1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /p2 HTTP/1.1\r\nHost: a\r\n"
                      "Content-Length: 3\r\n\r\nabc"));
  EXPECT_EQ(testing::BodyOf(RecvHttpResponse(slot.get(), &carry, kTimeout)), "GET /p1 body=");
  EXPECT_EQ(testing::BodyOf(RecvHttpResponse(slot.get(), &carry, kTimeout)), "POST /p2 body=abc");
  EXPECT_TRUE(testing::WaitFor([&] { return service.Served() == 7; }, kTimeout));
  EXPECT_EQ(service.Stats().dials, 1u);
}

TEST(ServiceTest, ChunkedRequestBodyIsDecoded) {
  FakeProxy proxy;
  Service service(Options(proxy), EchoHandler);
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(slot);
  std::string carry;
  const std::string resp = Exchange(slot.get(),
                                    "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                                    "\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
                                    &carry);
  EXPECT_EQ(testing::BodyOf(resp), "POST /c body=hello world");
}

TEST(ServiceTest, ConnectionCloseIsHonouredAndSlotRedialed) {
  FakeProxy proxy;
  Service service(Options(proxy), EchoHandler);
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(slot);
  ASSERT_TRUE(SendAll(slot.get(), "GET /bye HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  // The whole stream up to EOF is exactly one response with Connection: close.
  const std::string all = RecvUntilClose(slot.get(), kTimeout);
  EXPECT_EQ(testing::StatusOf(all), 200);
  EXPECT_EQ(testing::HeaderOf(all, "Connection"), "close");
  EXPECT_EQ(testing::BodyOf(all), "GET /bye body=");
  UniqueFd again = proxy.AcceptSlot();
  EXPECT_TRUE(again);
  EXPECT_TRUE(service.WaitForSlots(1, kTimeout));
}

TEST(ServiceTest, HandlerCloseSendsConnectionClose) {
  FakeProxy proxy;
  Service service(Options(proxy), [](const Request&, Response& resp) {
    resp.close = true;
    resp.body = "last";
  });
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(SendAll(slot.get(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::string all = RecvUntilClose(slot.get(), kTimeout);
  EXPECT_EQ(testing::HeaderOf(all, "Connection"), "close");
  EXPECT_EQ(testing::BodyOf(all), "last");
}

TEST(ServiceTest, SlotRedialedAfterProxyClosesIt) {
  FakeProxy proxy;
  Service service(Options(proxy, 2), EchoHandler);
  ASSERT_TRUE(service.Start());
  UniqueFd a = proxy.AcceptSlot();
  UniqueFd b = proxy.AcceptSlot();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(service.WaitForSlots(2, kTimeout));
  a.Reset();
  UniqueFd c = proxy.AcceptSlot();
  ASSERT_TRUE(c);
  ASSERT_TRUE(testing::WaitFor([&] { return service.Stats().registrations == 3; }, kTimeout));
  EXPECT_TRUE(service.WaitForSlots(2, kTimeout));
  std::string carry;
  EXPECT_EQ(testing::BodyOf(Exchange(c.get(), "GET /new HTTP/1.1\r\nHost: a\r\n\r\n", &carry)),
            "GET /new body=");
}

class RefusalTest : public ::testing::TestWithParam<int> {};

TEST_P(RefusalTest, BacksOffAndLogsOnce) {
  FakeProxy proxy;
  LogSink log;
  ServiceOptions o = Options(proxy);
  o.log = log.Fn();
  Service service(o, EchoHandler);
  ASSERT_TRUE(service.Start());
  const std::string refusal = "HTTP/1.1 " + std::to_string(GetParam()) +
                              " No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  // Jitter is in [b/2, b] with b = 50, 100, 200, 400 ms: five dials span at least 375 ms.
  Clock::time_point first;
  for (int i = 0; i < 5; ++i) {
    UniqueFd fd = proxy.Accept();
    ASSERT_TRUE(fd) << i;
    if (i == 0) first = Clock::now();
    RecvUntil(fd.get(), "\r\n\r\n", kTimeout);
    ASSERT_TRUE(SendAll(fd.get(), refusal));
  }
  const auto elapsed = Clock::now() - first;
  EXPECT_GE(elapsed, milliseconds(370));
  EXPECT_EQ(service.ConnectedSlots(), 0);
  EXPECT_GE(service.Stats().refusals, 4u);
  EXPECT_EQ(log.Count("refused with " + std::to_string(GetParam())), 1);
}

INSTANTIATE_TEST_SUITE_P(Codes, RefusalTest, ::testing::Values(400, 403, 404, 503));

TEST(ServiceTest, DialFailuresBackOffAndLogOnce) {
  LogSink log;
  ServiceOptions o;
  o.proxies = {"127.0.0.1:" + std::to_string(testing::FreePort())};  // nothing listens
  o.slots = 1;
  o.log = log.Fn();
  Service service(o, EchoHandler);
  const auto start = Clock::now();
  ASSERT_TRUE(service.Start());
  ASSERT_TRUE(testing::WaitFor([&] { return service.Stats().dial_failures >= 5; }, kTimeout));
  // Four backoff sleeps of at least 25, 50, 100, 200 ms separate five failures.
  EXPECT_GE(Clock::now() - start, milliseconds(370));
  EXPECT_EQ(log.Count("failed"), 1);
}

TEST(ServiceTest, BackoffIsCappedAndLaterSuccessRegisters) {
  FakeProxy proxy;
  LogSink log;
  ServiceOptions o = Options(proxy);
  o.min_backoff = milliseconds(10);
  o.max_backoff = milliseconds(20);
  o.log = log.Fn();
  Service service(o, EchoHandler);
  ASSERT_TRUE(service.Start());
  for (int i = 0; i < 10; ++i) {
    UniqueFd fd = proxy.Accept(milliseconds(2000));  // capped at 20 ms: never a long wait
    ASSERT_TRUE(fd);
    RecvUntil(fd.get(), "\r\n\r\n", kTimeout);
    SendAll(fd.get(), "HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
  }
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(service.WaitForSlots(1, kTimeout));
  EXPECT_EQ(log.Count("refused with 503"), 1);
  EXPECT_EQ(log.Count("registered to"), 1);
}

TEST(ServiceTest, StopJoinsPromptly) {
  FakeProxy proxy;
  Service service(Options(proxy, 4), EchoHandler);
  ASSERT_TRUE(service.Start());
  std::vector<UniqueFd> slots;
  for (int i = 0; i < 4; ++i) slots.push_back(proxy.AcceptSlot());
  ASSERT_TRUE(service.WaitForSlots(4, kTimeout));
  const auto start = Clock::now();
  service.Stop();
  EXPECT_LT(Clock::now() - start, milliseconds(500));
  EXPECT_EQ(service.ConnectedSlots(), 0);
  for (auto& fd : slots) EXPECT_EQ(RecvUntilClose(fd.get(), kTimeout), "");  // EOF, no bytes
  service.Stop();                                                            // idempotent
}

TEST(ServiceTest, StopInterruptsBackoffAndHandshake) {
  FakeProxy proxy;
  ServiceOptions o = Options(proxy, 2);
  o.min_backoff = milliseconds(60000);
  o.max_backoff = milliseconds(60000);
  Service service(o, EchoHandler);
  ASSERT_TRUE(service.Start());
  // Slot A is refused and sleeps a minute; slot B waits for a 101 that never comes.
  UniqueFd a = proxy.Accept();
  RecvUntil(a.get(), "\r\n\r\n", kTimeout);
  SendAll(a.get(), "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
  UniqueFd b = proxy.Accept();
  ASSERT_TRUE(a && b);
  ASSERT_TRUE(testing::WaitFor([&] { return service.Stats().refusals == 1; }, kTimeout));
  const auto start = Clock::now();
  service.Stop();
  EXPECT_LT(Clock::now() - start, milliseconds(500));
}

constexpr char kWsUpgrade[] =
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
constexpr char kWs101[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

// Answers /ws with 101 and an echo tunnel, anything else as EchoHandler.
struct WsService {
  std::atomic<int> ended{0};         // tunnel functions that returned
  std::atomic<int> tunnel_slot{-2};  // Tunnel::slot of the last tunnel
  Handler Fn() {
    return [this](const Request& req, Response& resp) {
      if (req.path != "/ws") return EchoHandler(req, resp);
      resp.status = 101;
      resp.AddHeader("Upgrade", "websocket");
      resp.AddHeader("Connection", "Upgrade");  // dropped: the SDK writes its own
      resp.tunnel = [this](Tunnel t) {
        tunnel_slot = t.slot;
        testing::EchoUntilClosed(t.fd, std::move(t.already_read), t.stop_fd);
        ended.fetch_add(1);
      };
    };
  }
};

TEST(ServiceTest, UpgradeHandsTheConnectionToTheTunnelAndDialsAReplacement) {
  FakeProxy proxy;
  WsService ws;
  Service service(Options(proxy), ws.Fn());
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(slot);
  ASSERT_TRUE(service.WaitForSlots(1, kTimeout));
  // Tunnel bytes right behind the upgrade request are read by the SDK with it and handed over.
  ASSERT_TRUE(SendAll(slot.get(), std::string(kWsUpgrade) + "early"));
  EXPECT_EQ(RecvUntil(slot.get(), "early", kTimeout), std::string(kWs101) + "early");
  // The slot left the registered count before the tunnel function ran; its replacement dials
  // at once and registers.
  UniqueFd replacement = proxy.AcceptSlot();
  ASSERT_TRUE(replacement);
  ASSERT_TRUE(service.WaitForSlots(1, kTimeout));
  EXPECT_EQ(service.ConnectedSlots(), 1);
  EXPECT_EQ(service.Stats().tunnels, 1u);
  EXPECT_EQ(service.Stats().registrations, 2u);
  EXPECT_EQ(ws.tunnel_slot, 0);
  // Both work: the tunnel echoes, the replacement serves requests (as slot 0).
  ASSERT_TRUE(SendAll(slot.get(), "ping"));
  EXPECT_EQ(RecvUntil(slot.get(), "ping", kTimeout), "ping");
  std::string carry;
  EXPECT_EQ(
      testing::BodyOf(Exchange(replacement.get(), "GET /p HTTP/1.1\r\nHost: a\r\n\r\n", &carry)),
      "GET /p body=");
  // The client half-closes: the tunnel function returns and closes the connection.
  ASSERT_EQ(shutdown(slot.get(), SHUT_WR), 0);
  EXPECT_EQ(RecvUntilClose(slot.get(), kTimeout), "");
  EXPECT_TRUE(testing::WaitFor([&] { return ws.ended == 1; }, kTimeout));
  EXPECT_EQ(service.ConnectedSlots(), 1);
  EXPECT_EQ(service.Stats().dials, 2u);
}

TEST(ServiceTest, StopWakesARunningTunnelThroughStopFd) {
  FakeProxy proxy;
  WsService ws;
  Service service(Options(proxy), ws.Fn());
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(SendAll(slot.get(), kWsUpgrade));
  EXPECT_EQ(RecvUntil(slot.get(), "\r\n\r\n", kTimeout), kWs101);
  UniqueFd replacement = proxy.AcceptSlot();
  ASSERT_TRUE(replacement);
  const auto start = Clock::now();
  service.Stop();
  EXPECT_LT(Clock::now() - start, milliseconds(500));
  EXPECT_EQ(ws.ended, 1);
  EXPECT_EQ(RecvUntilClose(slot.get(), kTimeout), "");
  EXPECT_EQ(RecvUntilClose(replacement.get(), kTimeout), "");
}

// A 101 nobody serves, or a tunnel without 101: 500 and the slot is closed (and re-dialed).
TEST(ServiceTest, HalfAnUpgradeIsAnsweredWith500) {
  FakeProxy proxy;
  std::atomic<int> tunnels_called{0};
  Service service(Options(proxy), [&](const Request& req, Response& resp) {
    if (req.path == "/only-101") {
      resp.status = 101;
    } else {
      resp.tunnel = [&](Tunnel t) {
        tunnels_called++;
        close(t.fd);
      };
    }
  });
  ASSERT_TRUE(service.Start());
  for (const char* path : {"/only-101", "/only-tunnel"}) {
    UniqueFd slot = proxy.AcceptSlot();
    ASSERT_TRUE(slot) << path;
    ASSERT_TRUE(SendAll(slot.get(), std::string("GET ") + path +
                                        " HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\n"
                                        "Upgrade: websocket\r\n\r\n"));
    const std::string all = RecvUntilClose(slot.get(), kTimeout);
    EXPECT_EQ(testing::StatusOf(all), 500) << path << ": " << all;
    EXPECT_EQ(testing::HeaderOf(all, "Connection"), "close") << path;
  }
  EXPECT_EQ(tunnels_called, 0);
  EXPECT_EQ(service.Stats().tunnels, 0u);
}

// ServeConnection: the tunnel runs on the calling thread; there is no slot to replace.
TEST(ServiceTest, ServeConnectionServesATunnel) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd ours(pair[0]);
  WsService ws;
  Service service(ServiceOptions{}, ws.Fn());
  std::atomic<uint64_t> served{~0ull};
  std::thread server([&] { served = service.ServeConnection(pair[1]); });
  ASSERT_TRUE(SendAll(ours.get(), std::string(kWsUpgrade) + "x"));
  EXPECT_EQ(RecvUntil(ours.get(), "x", kTimeout), std::string(kWs101) + "x");
  ours.Reset();
  server.join();
  EXPECT_EQ(served.load(), 1u);
  EXPECT_EQ(ws.ended, 1);
  EXPECT_EQ(ws.tunnel_slot, -1);
  EXPECT_EQ(service.Stats().tunnels, 0u);
}

TEST(ServiceTest, StreamedBodyAndNoBodyResponses) {
  FakeProxy proxy;
  constexpr uint64_t kSize = 3 * 1024 * 1024 + 7;
  Service service(Options(proxy), [](const Request& req, Response& resp) {
    if (req.path == "/big") {
      auto sent = std::make_shared<uint64_t>(0);
      resp.stream_size = kSize;
      resp.stream = [sent](char* buf, size_t cap) {
        for (size_t i = 0; i < cap; ++i) buf[i] = static_cast<char>('a' + (*sent + i) % 26);
        *sent += cap;
        return cap;
      };
    } else if (req.path == "/204") {
      resp.status = 204;
      resp.body = "ignored";
    } else {
      resp.body = "twelve bytes";
    }
  });
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  std::string carry;
  const std::string big = Exchange(slot.get(), "GET /big HTTP/1.1\r\nHost: a\r\n\r\n", &carry);
  const std::string body = testing::BodyOf(big);
  ASSERT_EQ(body.size(), kSize);
  EXPECT_EQ(body[0], 'a');
  EXPECT_EQ(body[kSize - 1], static_cast<char>('a' + (kSize - 1) % 26));
  const std::string head = Exchange(slot.get(), "HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n", &carry);
  EXPECT_EQ(testing::HeaderOf(head, "Content-Length"), "12");
  EXPECT_EQ(head.size(), head.find("\r\n\r\n") + 4);
  const std::string none = Exchange(slot.get(), "GET /204 HTTP/1.1\r\nHost: a\r\n\r\n", &carry);
  EXPECT_EQ(none, "HTTP/1.1 204 No Content\r\n\r\n");
  // Nothing stray was written after the bodyless responses.
  EXPECT_EQ(testing::BodyOf(Exchange(slot.get(), "GET /y HTTP/1.1\r\nHost: a\r\n\r\n", &carry)),
            "twelve bytes");
  EXPECT_TRUE(carry.empty());
}

TEST(ServiceTest, AbortAndRawResponses) {
  FakeProxy proxy;
  Service service(Options(proxy), [](const Request& req, Response& resp) {
    if (req.path == "/abort") {
      resp.abort = true;
    } else {
      resp.raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
    }
  });
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  std::string carry;
  const std::string raw = Exchange(slot.get(), "GET /raw HTTP/1.1\r\nHost: a\r\n\r\n", &carry);
  EXPECT_EQ(testing::BodyOf(raw), "hi");
  ASSERT_TRUE(SendAll(slot.get(), "GET /abort HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(RecvUntilClose(slot.get(), kTimeout), "");
  EXPECT_TRUE(proxy.AcceptSlot());  // re-dialed
}

TEST(ServiceTest, MalformedRequestGets400AndClose) {
  FakeProxy proxy;
  Service service(Options(proxy), EchoHandler);
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(SendAll(slot.get(), "BROKEN\r\n\r\n"));
  const std::string all = RecvUntilClose(slot.get(), kTimeout);
  EXPECT_EQ(testing::StatusOf(all), 400);
  EXPECT_EQ(testing::HeaderOf(all, "Connection"), "close");
}

TEST(ServiceTest, BareModeSendsNothing) {
  FakeProxy proxy;
  ServiceOptions o = Options(proxy);
  o.bare = true;
  Service service(o, EchoHandler);
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.Accept();
  ASSERT_TRUE(slot);
  ASSERT_TRUE(service.WaitForSlots(1, kTimeout));
  std::string carry;
  // The first bytes on the connection are the response: no registration head was sent.
  const std::string resp = Exchange(slot.get(), "GET /bare HTTP/1.1\r\nHost: a\r\n\r\n", &carry);
  EXPECT_EQ(resp.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << resp;
  EXPECT_EQ(testing::BodyOf(resp), "GET /bare body=");
}

TEST(ServiceTest, UnixSocketProxy) {
  const std::string dir = testing::MakeTempDir("sdk_unix");
  FakeProxy proxy(dir + "/register.sock");
  Service service(Options(proxy), [](const Request& req, Response& resp) {
    resp.body = req.proxy + " slot " + std::to_string(req.slot);
  });
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(slot);
  std::string carry;
  EXPECT_EQ(testing::BodyOf(Exchange(slot.get(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", &carry)),
            proxy.address() + " slot 0");
}

TEST(ServiceTest, MultipleProxiesGetSlotsEach) {
  FakeProxy p1;
  FakeProxy p2;
  ServiceOptions o = Options(p1, 2);
  o.proxies.push_back(p2.address());
  Service service(o, EchoHandler);
  ASSERT_TRUE(service.Start());
  std::vector<UniqueFd> fds;
  for (int i = 0; i < 2; ++i) fds.push_back(p1.AcceptSlot());
  for (int i = 0; i < 2; ++i) fds.push_back(p2.AcceptSlot());
  for (auto& fd : fds) ASSERT_TRUE(fd);
  EXPECT_TRUE(service.WaitForSlots(4, kTimeout));
}

TEST(ServiceTest, SetSlotsGrowsAndShrinks) {
  FakeProxy proxy;
  Service service(Options(proxy, 1), EchoHandler);
  ASSERT_TRUE(service.Start());
  std::vector<UniqueFd> fds;
  fds.push_back(proxy.AcceptSlot());
  ASSERT_TRUE(service.WaitForSlots(1, kTimeout));
  service.SetSlots(3);
  fds.push_back(proxy.AcceptSlot());
  fds.push_back(proxy.AcceptSlot());
  ASSERT_TRUE(service.WaitForSlots(3, kTimeout));
  service.SetSlots(1);
  ASSERT_TRUE(testing::WaitFor([&] { return service.ConnectedSlots() == 1; }, kTimeout));
  int closed = 0;
  for (auto& fd : fds) {
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, 0) == 1) {
      EXPECT_EQ(RecvUntilClose(fd.get(), kTimeout), "");
      ++closed;
    }
  }
  EXPECT_EQ(closed, 2);
}

TEST(ServiceTest, ServeConnectionWithoutProxyAndStopWakesIt) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd ours(pair[0]);
  Service service(ServiceOptions{}, [](const Request& req, Response& resp) {
    resp.body = req.path + " slot " + std::to_string(req.slot);
  });
  std::atomic<uint64_t> served{~0ull};
  std::thread server([&] { served = service.ServeConnection(pair[1]); });
  std::string carry;
  EXPECT_EQ(
      testing::BodyOf(Exchange(ours.get(), "GET /direct HTTP/1.1\r\nHost: a\r\n\r\n", &carry)),
      "/direct slot -1");
  service.Stop();  // the idle connection is closed and the call returns
  server.join();
  EXPECT_EQ(served.load(), 1u);
  EXPECT_EQ(RecvUntilClose(ours.get(), kTimeout), "");
}

TEST(ServiceTest, StartRejectsBadOptions) {
  LogSink log;
  ServiceOptions o;
  o.log = log.Fn();
  EXPECT_FALSE(Service(o, EchoHandler).Start());  // no proxies
  o.proxies = {"no-port"};
  EXPECT_FALSE(Service(o, EchoHandler).Start());
  o.proxies = {"127.0.0.1:99999"};
  EXPECT_FALSE(Service(o, EchoHandler).Start());
  o.proxies = {"127.0.0.1:1"};
  o.slots = 0;
  EXPECT_FALSE(Service(o, EchoHandler).Start());
  EXPECT_EQ(log.Count("cannot start"), 4);
}

// Proxy addresses are read as l7px reads its own (base's SplitAddress); a proxy is dialed, so an
// empty host or port 0 is refused too.
TEST(ServiceTest, StartRejectsBadProxyAddresses) {
  for (const char* bad : {"127.0.0.1:", ":9999", "127.0.0.1:0", "[::1:9999", "[]:9999",
                          "unix:", "127.0.0.1:+80", "127.0.0.1:123456"}) {
    LogSink log;
    ServiceOptions o;
    o.log = log.Fn();
    o.proxies = {bad};
    EXPECT_FALSE(Service(o, EchoHandler).Start()) << bad;
    EXPECT_EQ(log.Count("cannot start"), 1) << bad;
  }
}

// A host name is not an IP literal: it is looked up when dialing, not refused at Start().
TEST(ServiceTest, HostNameProxyIsResolved) {
  FakeProxy proxy;
  ServiceOptions o = Options(proxy);
  o.proxies = {"localhost" + proxy.address().substr(proxy.address().rfind(':'))};
  Service service(o, EchoHandler);
  ASSERT_TRUE(service.Start());
  UniqueFd slot = proxy.AcceptSlot();
  ASSERT_TRUE(slot);
  EXPECT_TRUE(service.WaitForSlots(1, kTimeout));
}

}  // namespace
}  // namespace l7px
