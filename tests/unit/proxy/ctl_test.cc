#include "proxy/ctl/ctl.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/strict_json.h"
#include "base/unique_fd.h"
#include "support/net.h"

namespace l7px::proxy {
namespace {

using std::chrono::milliseconds;

struct Reply {
  int status = 200;
  std::string body;
  bool chunked = false;
  bool hang = false;  // read the request, never answer
  std::string raw;    // when set, sent as is (then the connection is closed) instead
};

struct Request {
  std::string method;
  std::string target;
  std::string head;  // raw, lower-cased
  std::string body;
};

// A scripted admin endpoint: answers "METHOD /path" from a table, one request per connection,
// on a thread of its own. Every wait is bounded.
class FakeAdmin {
 public:
  explicit FakeAdmin(std::map<std::string, Reply> replies, std::string unix_path = "")
      : replies_(std::move(replies)), unix_path_(std::move(unix_path)) {
    if (unix_path_.empty()) {
      listener_.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
      socklen_t len = sizeof(addr);
      ::getsockname(listener_.get(), reinterpret_cast<sockaddr*>(&addr), &len);
      port_ = ntohs(addr.sin_port);
    } else {
      ::unlink(unix_path_.c_str());
      listener_.Reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, unix_path_.c_str(), sizeof(addr.sun_path) - 1);
      EXPECT_EQ(::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    }
    EXPECT_EQ(::listen(listener_.get(), 16), 0);
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    wake_read_.Reset(fds[0]);
    wake_write_.Reset(fds[1]);
    thread_ = std::thread([this] { Serve(); });
  }

  ~FakeAdmin() {
    (void)!::write(wake_write_.get(), "x", 1);
    thread_.join();
    if (!unix_path_.empty()) ::unlink(unix_path_.c_str());
  }

  std::string address() const {
    return unix_path_.empty() ? "127.0.0.1:" + std::to_string(port_) : "unix:" + unix_path_;
  }
  uint16_t port() const { return port_; }

  std::vector<Request> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  void Serve() {
    std::vector<UniqueFd> hung;
    for (;;) {
      pollfd p[2] = {{listener_.get(), POLLIN, 0}, {wake_read_.get(), POLLIN, 0}};
      if (::poll(p, 2, 30'000) <= 0 || (p[1].revents & POLLIN)) return;
      UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      if (!conn) continue;
      Request req;
      if (!ReadRequest(conn.get(), &req)) continue;
      Reply reply;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
        auto it = replies_.find(req.method + " " + req.target);
        if (it == replies_.end()) {
          reply = Reply{404, R"({"error":"no such endpoint"})"};
        } else {
          reply = it->second;
        }
      }
      if (reply.hang) {
        hung.push_back(std::move(conn));
        continue;
      }
      if (!reply.raw.empty()) {
        testing::SendAll(conn.get(), reply.raw);
        continue;
      }
      std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " Whatever\r\n";
      out += "Content-Type: application/json\r\nConnection: close\r\n";
      if (reply.chunked) {
        out += "Transfer-Encoding: chunked\r\n\r\n";
        // Two chunks plus the terminator, to exercise reassembly.
        const size_t half = reply.body.size() / 2;
        char size[32];
        std::snprintf(size, sizeof(size), "%zx;ext=1\r\n", half);
        out += size + reply.body.substr(0, half) + "\r\n";
        std::snprintf(size, sizeof(size), "%zX\r\n", reply.body.size() - half);
        out += size + reply.body.substr(half) + "\r\n0\r\n\r\n";
      } else {
        out += "Content-Length: " + std::to_string(reply.body.size()) + "\r\n\r\n" + reply.body;
      }
      testing::SendAll(conn.get(), out);
    }
  }

  static bool ReadRequest(int fd, Request* req) {
    std::string in = testing::RecvUntil(fd, "\r\n\r\n", milliseconds(5000));
    const size_t end = in.find("\r\n\r\n");
    if (end == std::string::npos) return false;
    std::string head = in.substr(0, end + 4);
    const size_t sp1 = head.find(' ');
    const size_t sp2 = head.find(' ', sp1 + 1);
    req->method = head.substr(0, sp1);
    req->target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    for (char& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req->head = head;
    size_t length = 0;
    if (const size_t cl = head.find("\r\ncontent-length: "); cl != std::string::npos) {
      length = std::stoul(head.substr(cl + 18));
    }
    req->body = in.substr(end + 4);
    while (req->body.size() < length) {
      char buf[4096];
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 5000) <= 0) return false;
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) return false;
      req->body.append(buf, static_cast<size_t>(n));
    }
    return true;
  }

  std::map<std::string, Reply> replies_;
  std::string unix_path_;
  uint16_t port_ = 0;
  UniqueFd listener_;
  UniqueFd wake_read_;
  UniqueFd wake_write_;
  std::mutex mu_;
  std::vector<Request> requests_;
  std::thread thread_;
};

struct Result {
  int rc = -1;
  std::string out;
  std::string err;
};

Result Ctl(std::vector<std::string> args, const CtlOptions& options = {}) {
  Result r;
  r.rc = RunCtl(args, options, &r.out, &r.err);
  return r;
}

const char kPoolsBody[] =
    R"({"pools": [{"name": "default", "registered": 4, "idle": 3, "busy": 1, "waiting": 0,)"
    R"( "tunnels": 2, "served": 1234, "shed": {"queue_full": 2, "queue_timeout": 5},)"
    R"( "services": {"svc-a": 3, "svc-b": 1}},)"
    R"( {"name": "slow", "registered": 0, "idle": 0, "busy": 0, "waiting": 7, "served": 0,)"
    R"( "shed": {"queue_full": 0, "queue_timeout": 0}, "services": {}}]})";

const char kRoutesBody[] =
    R"({"routes":[{"id":1,"host":"*","path":"/","client_cidr":[],"header":null,"pool":"default"},)"
    R"({"id":7,"host":"*.m.example.com","path":"/api","client_cidr":["10.0.0.0/8","::1/128"],)"
    R"("header":{"name":"X-Slice","value":"slow"},"pool":"slow"},)"
    R"({"id":8,"host":"a.example","path":"/x","client_cidr":[],)"
    R"("header":{"name":"X-Debug","value":null},"pool":"default"}]})";

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find('\n', pos);
    if (end == std::string::npos) end = s.size();
    lines.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return lines;
}

// Whitespace-separated words of a table line.
std::vector<std::string> Words(const std::string& line) {
  std::vector<std::string> words;
  size_t pos = 0;
  while ((pos = line.find_first_not_of(' ', pos)) != std::string::npos) {
    const size_t end = line.find(' ', pos);
    words.push_back(line.substr(pos, end - pos));
    pos = end;
  }
  return words;
}

TEST(CtlTest, PoolsTable) {
  FakeAdmin admin({{"GET /pools", {200, kPoolsBody}}});
  Result r = Ctl({"--admin", admin.address(), "pools"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(Words(lines[0]),
            (std::vector<std::string>{"NAME", "REGISTERED", "IDLE", "BUSY", "WAITING", "TUNNELS",
                                      "SERVED", "SHED", "SERVICES"}));
  EXPECT_EQ(Words(lines[1]),
            (std::vector<std::string>{"default", "4", "3", "1", "0", "2", "1234",
                                      "queue_full=2,queue_timeout=5", "svc-a:3,svc-b:1"}));
  // An l7px from before tunnels were counted lists none: "-".
  EXPECT_EQ(Words(lines[2]), (std::vector<std::string>{"slow", "0", "0", "0", "7", "-", "0",
                                                       "queue_full=0,queue_timeout=0", "-"}));
  // Columns are aligned: every value starts where its header does.
  EXPECT_EQ(lines[0].find("SERVED"), lines[1].find("1234"));
  const std::vector<Request> reqs = admin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].target, "/pools");
  EXPECT_EQ(reqs[0].head.find("authorization"), std::string::npos);
}

TEST(CtlTest, StatsShowsTotalsThenPools) {
  const std::string body =
      std::string(R"({"workers": 2, "client_connections": 5, "requests": 99,)") +
      R"( "pools": [{"name": "p", "registered": 1, "idle": 1, "busy": 0,)" +
      R"( "waiting": 0, "served": 9, "shed": {"queue_full": 0,)" +
      R"( "queue_timeout": 1}, "services": {"s": 1}}]})";
  FakeAdmin admin({{"GET /stats", {200, body}}});
  Result r = Ctl({"stats", "--admin", admin.address()});
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 6u) << r.out;
  EXPECT_EQ(Words(lines[0]), (std::vector<std::string>{"workers", "2"}));
  EXPECT_EQ(Words(lines[1]), (std::vector<std::string>{"client_connections", "5"}));
  EXPECT_EQ(Words(lines[2]), (std::vector<std::string>{"requests", "99"}));
  EXPECT_EQ(lines[3], "");
  EXPECT_EQ(Words(lines[4])[0], "NAME");
  EXPECT_EQ(Words(lines[5]), (std::vector<std::string>{"p", "1", "1", "0", "0", "-", "9",
                                                       "queue_full=0,queue_timeout=1", "s:1"}));
}

TEST(CtlTest, RoutesTable) {
  FakeAdmin admin({{"GET /routes", {200, kRoutesBody}}});
  Result r = Ctl({"--admin", admin.address(), "routes"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  EXPECT_EQ(Words(lines[0]),
            (std::vector<std::string>{"ID", "HOST", "PATH", "CIDR", "HEADER", "POOL"}));
  EXPECT_EQ(Words(lines[1]), (std::vector<std::string>{"1", "*", "/", "-", "-", "default"}));
  EXPECT_EQ(Words(lines[2]),
            (std::vector<std::string>{"7", "*.m.example.com", "/api", "10.0.0.0/8,::1/128",
                                      "X-Slice=slow", "slow"}));
  EXPECT_EQ(Words(lines[3]),
            (std::vector<std::string>{"8", "a.example", "/x", "-", "X-Debug", "default"}));
}

TEST(CtlTest, JsonPrintsTheBodyExactly) {
  const std::string odd = " {\"pools\" : [ ] }\n";
  FakeAdmin admin({{"GET /pools", {200, odd}}, {"GET /routes", {200, kRoutesBody, true}}});
  Result r = Ctl({"--json", "--admin", admin.address(), "pools"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, odd);
  // Chunked answers are reassembled.
  r = Ctl({"--admin", admin.address(), "routes", "--json"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, kRoutesBody);
}

// Answers much larger than one receive, with Content-Length and chunked: the head arrives with
// the start of the body, the rest in many pieces.
TEST(CtlTest, LargeAnswersArriveWhole) {
  std::string body = R"({"routes":[)";
  for (int i = 1; i <= 3000; ++i) {
    if (i > 1) body += ",";
    body += R"({"id":)" + std::to_string(i) + R"(,"host":"h)" + std::to_string(i) +
            R"(.example","path":"/","client_cidr":[],"header":null,"pool":"default"})";
  }
  body += "]}\n";
  ASSERT_GT(body.size(), 200'000u);
  FakeAdmin admin({{"GET /routes", {200, body}}, {"GET /pools", {200, body, /*chunked=*/true}}});
  Result r = Ctl({"--json", "--admin", admin.address(), "routes"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, body);
  r = Ctl({"--json", "--admin", admin.address(), "pools"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, body);
  r = Ctl({"--admin", admin.address(), "routes"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(Lines(r.out).size(), 3001u);
}

TEST(CtlTest, RouteAddPostsTheRouteAndShowsTheAnswer) {
  const std::string answer =
      R"({"id":9,"host":"*.m.example","path":"/api","client_cidr":["10.0.0.0/8","2001:db8::/32"],)"
      R"("header":{"name":"X-Slice","value":"slow"},"pool":"slow"})";
  FakeAdmin admin({{"POST /routes", {201, answer}}});
  Result r = Ctl({"--admin", admin.address(), "route", "add", "--host", "*.m.example",
                  "--path=/api", "--cidr", "10.0.0.0/8", "--cidr", "2001:db8::/32", "--header",
                  "X-Slice=slow", "--pool", "slow"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<std::string> lines = Lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  EXPECT_EQ(lines[0], "added route 9");
  EXPECT_EQ(Words(lines[2]),
            (std::vector<std::string>{"9", "*.m.example", "/api", "10.0.0.0/8,2001:db8::/32",
                                      "X-Slice=slow", "slow"}));
  const std::vector<Request> reqs = admin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "POST");
  EXPECT_NE(reqs[0].head.find("content-type: application/json"), std::string::npos);
  absl::StatusOr<Json> body = ParseJson(reqs[0].body);
  ASSERT_TRUE(body.ok()) << reqs[0].body;
  absl::StatusOr<Json> expected = ParseJson(
      R"({"host":"*.m.example","path":"/api","client_cidr":["10.0.0.0/8","2001:db8::/32"],)"
      R"("header":{"name":"X-Slice","value":"slow"},"pool":"slow"})");
  EXPECT_EQ(*body, *expected) << reqs[0].body;
}

TEST(CtlTest, RouteAddMinimalAndHeaderPresence) {
  FakeAdmin admin({{"POST /routes", {201, R"({"id":3})"}}});
  Result r = Ctl({"--admin", admin.address(), "route", "add", "--pool", "p", "--header", "X-A"});
  ASSERT_EQ(r.rc, 0) << r.err;
  const std::vector<Request> reqs = admin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].body, R"({"header":{"name":"X-A"},"pool":"p"})");
}

TEST(CtlTest, RouteDelReloadDrain) {
  FakeAdmin admin({{"DELETE /routes/7", {200, R"({"deleted": 7})"}},
                   {"POST /reload", {200, R"({"reloaded": true})"}},
                   {"POST /pools/slow/drain", {200, R"({"draining": "slow"})"}}});
  Result r = Ctl({"--admin", admin.address(), "route", "del", "7"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "deleted route 7\n");
  r = Ctl({"--admin", admin.address(), "reload"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "reloaded\n");
  r = Ctl({"--admin", admin.address(), "drain", "slow"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "draining pool slow\n");
  const std::vector<Request> reqs = admin.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[0].method + " " + reqs[0].target, "DELETE /routes/7");
  EXPECT_EQ(reqs[1].method + " " + reqs[1].target, "POST /reload");
  EXPECT_NE(reqs[1].head.find("content-length: 0"), std::string::npos);
  EXPECT_EQ(reqs[2].method + " " + reqs[2].target, "POST /pools/slow/drain");
}

TEST(CtlTest, RefusalsPrintStatusAndBodyAndExitOne) {
  FakeAdmin admin({{"DELETE /routes/99", {404, "{\"error\":\"no route 99\"}\n"}},
                   {"POST /reload", {400, R"({"error":"l7px.toml:3: bad duration"})"}}});
  Result r = Ctl({"--admin", admin.address(), "route", "del", "99"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err,
            "l7px ctl: DELETE /routes/99: admin answered 404 Whatever: {\"error\":\"no route "
            "99\"}\n");
  r = Ctl({"--admin", admin.address(), "--json", "reload"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("400"), std::string::npos);
  EXPECT_NE(r.err.find("bad duration"), std::string::npos);
}

TEST(CtlTest, TokenFromFlagOrEnvironmentAnd401) {
  FakeAdmin admin(
      {{"GET /pools", {200, kPoolsBody}}, {"GET /routes", {401, R"({"error":"unauthorized"})"}}});
  CtlOptions env;
  env.env_token = "from-env";
  Result r = Ctl({"--admin", admin.address(), "pools"}, env);
  EXPECT_EQ(r.rc, 0) << r.err;
  r = Ctl({"--admin", admin.address(), "--token", "from-flag", "pools"}, env);
  EXPECT_EQ(r.rc, 0) << r.err;
  r = Ctl({"--admin", admin.address(), "routes"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("401"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("unauthorized"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  const std::vector<Request> reqs = admin.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_NE(reqs[0].head.find("\r\nauthorization: bearer from-env\r\n"), std::string::npos);
  EXPECT_NE(reqs[1].head.find("\r\nauthorization: bearer from-flag\r\n"), std::string::npos);
  EXPECT_EQ(reqs[2].head.find("authorization"), std::string::npos);
}

TEST(CtlTest, ConfigFileSuppliesAddressAndToken) {
  FakeAdmin admin({{"GET /pools", {200, kPoolsBody}}});
  const std::string path = ::testing::TempDir() + "ctl_test_config.toml";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  const std::string toml = "[admin]\nlisten = \"" + admin.address() + "\"\ntoken = \"cfg-token\"\n";
  std::fwrite(toml.data(), 1, toml.size(), f);
  std::fclose(f);
  CtlOptions env;
  env.env_token = "from-env";  // the file is more specific than the environment
  Result r = Ctl({"-c", path, "pools"}, env);
  EXPECT_EQ(r.rc, 0) << r.err;
  const std::vector<Request> reqs = admin.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_NE(reqs[0].head.find("\r\nauthorization: bearer cfg-token\r\n"), std::string::npos);
  // A broken file is an error, not a fallback to the default address.
  r = Ctl({"-c", path + ".missing", "pools"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find(".missing"), std::string::npos) << r.err;
  std::remove(path.c_str());
}

TEST(CtlTest, UnixSocketAdmin) {
  const std::string sock = "/tmp/l7px-ctl-test-" + std::to_string(::getpid()) + ".sock";
  FakeAdmin admin({{"GET /pools", {200, kPoolsBody}}}, sock);
  Result r = Ctl({"--admin", admin.address(), "--json", "pools"});
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, kPoolsBody);
}

TEST(CtlTest, UnreachableExitsOne) {
  const uint16_t port = testing::FreePort();  // nothing listens there
  Result r = Ctl({"--admin", "127.0.0.1:" + std::to_string(port), "pools"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("cannot reach admin at 127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
  r = Ctl({"--admin", "unix:/nonexistent/l7px-admin.sock", "stats"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("cannot reach admin"), std::string::npos) << r.err;
}

TEST(CtlTest, SilentAdminTimesOut) {
  FakeAdmin admin({{"GET /pools", {200, "", false, /*hang=*/true}}});
  CtlOptions quick;
  quick.timeout = milliseconds(300);
  Result r = Ctl({"--admin", admin.address(), "pools"}, quick);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
}

TEST(CtlTest, MalformedAnswersExitOne) {
  FakeAdmin admin({{"GET /pools", {200, "not json"}}, {"GET /routes", {200, R"({"x":1})"}}});
  Result r = Ctl({"--admin", admin.address(), "pools"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("not JSON"), std::string::npos) << r.err;
  r = Ctl({"--admin", admin.address(), "routes"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("unexpected answer"), std::string::npos) << r.err;
}

TEST(CtlTest, BrokenResponsesExitOneAndSayWhy) {
  auto raw = [](std::string bytes) {
    Reply r;
    r.raw = std::move(bytes);
    return r;
  };
  FakeAdmin admin({
      {"GET /pools", raw("HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{\"pools\"")},
      {"GET /routes", raw("garbage\r\n\r\n")},
      {"GET /stats", raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")},
      {"POST /reload", raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"a\":1}")},
      {"DELETE /routes/1", raw("HTTP/1.1 200 OK\r\nContent-Le")},
  });
  const std::string a = admin.address();
  Result r = Ctl({"--admin", a, "pools"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("connection closed before the end of the body"), std::string::npos) << r.err;
  r = Ctl({"--admin", a, "routes"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("malformed response head"), std::string::npos) << r.err;
  r = Ctl({"--admin", a, "stats"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("malformed chunked body"), std::string::npos) << r.err;
  r = Ctl({"--admin", a, "route", "del", "1"});
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.err.find("connection closed before a complete response"), std::string::npos) << r.err;
  // Without Content-Length or chunked, the body ends when the connection does.
  r = Ctl({"--admin", a, "--json", "reload"});
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_EQ(r.out, "{\"a\":1}");
}

TEST(CtlTest, UsageErrorsExitTwoWithoutTouchingTheNetwork) {
  FakeAdmin admin({});
  const std::string a = admin.address();
  const std::vector<std::vector<std::string>> cases = {
      {},
      {"--admin", a},
      {"--admin", a, "frobnicate"},
      {"--admin", a, "pools", "extra"},
      {"--admin", a, "--bogus", "pools"},
      {"--admin"},
      {"--admin", a, "route"},
      {"--admin", a, "route", "move"},
      {"--admin", a, "route", "del"},
      {"--admin", a, "route", "del", "abc"},
      {"--admin", a, "route", "del", "0"},
      {"--admin", a, "route", "del", "1", "2"},
      {"--admin", a, "route", "add"},            // no --pool
      {"--admin", a, "route", "add", "--pool"},  // no value
      {"--admin", a, "route", "add", "--pool", "p", "--cidr", "10.0.0.0/99"},
      {"--admin", a, "route", "add", "--pool", "p", "--path", "nope"},
      {"--admin", a, "route", "add", "--pool", "p", "--host", "a b"},
      {"--admin", a, "route", "add", "--pool", "p", "--header", "Bad Name=x"},
      {"--admin", a, "pools", "--pool", "p"},
      {"--admin", a, "drain"},
      {"--admin", a, "drain", "a/b"},
  };
  for (const auto& args : cases) {
    Result r = Ctl(args);
    std::string joined;
    for (const auto& w : args) joined += w + " ";
    EXPECT_EQ(r.rc, 2) << joined << "\n" << r.err;
    EXPECT_NE(r.err.find("usage: l7px ctl"), std::string::npos) << joined;
    EXPECT_EQ(r.out, "") << joined;
  }
  EXPECT_TRUE(admin.requests().empty());
  Result bad_addr = Ctl({"--admin", "nonsense", "pools"});
  EXPECT_EQ(bad_addr.rc, 2);
  EXPECT_NE(bad_addr.err.find("bad --admin address \"nonsense\""), std::string::npos)
      << bad_addr.err;
}

TEST(CtlTest, HelpGoesToStdout) {
  Result r = Ctl({"--help"});
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("route add"), std::string::npos);
  EXPECT_EQ(r.err, "");
}

}  // namespace
}  // namespace l7px::proxy
