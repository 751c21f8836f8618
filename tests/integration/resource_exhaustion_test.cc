// Integration: running out of things — file descriptors (accept fails with EMFILE), receive
// buffers (the provided-buffer ring runs dry), and pool capacity (a flood of registrations past
// max_slots). l7px must keep serving what it has, not spin, and recover on its own.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// CPU time (user + system) the process has used, in milliseconds; -1 if unknown.
long CpuMillis(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t end = stat.rfind(')');  // the command name may hold spaces
  if (end == std::string::npos) return -1;
  std::istringstream fields(stat.substr(end + 2));
  std::string field;
  long utime = -1;
  long stime = -1;
  for (int i = 3; i <= 15 && fields >> field; ++i) {  // fields 3.. after "pid (comm)"
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  if (utime < 0 || stime < 0) return -1;
  return (utime + stime) * 1000 / sysconf(_SC_CLK_TCK);
}

// CPU used by the process over `window`, as milliseconds per second.
long CpuMillisPerSecond(pid_t pid, milliseconds window) {
  const long before = CpuMillis(pid);
  std::this_thread::sleep_for(window);
  const long after = CpuMillis(pid);
  return (after - before) * 1000 / window.count();
}

std::string FindPrlimit() {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin"}) {
    const std::string path = std::string(dir) + "/prlimit";
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  return "";
}

void CloseWithReset(UniqueFd& fd) {
  const linger abort{1, 0};
  setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
  fd.Reset();
}

class ResourceExhaustionTest : public IntegrationTest {};

TEST_F(ResourceExhaustionTest, OutOfDescriptorsPausesAcceptingAndRecovers) {
  const std::string prlimit = FindPrlimit();
  if (prlimit.empty()) GTEST_SKIP() << "prlimit (util-linux) is needed to start l7px with few fds";
  // 40 descriptors: about a dozen for rings, listeners and logs, one per slot, the rest clients.
  h().SetProxyLauncher({prlimit, "--nofile=40:40", "--"});
  ASSERT_TRUE(
      StartProxy("[[pool]]\nname = \"default\"\n", "header_timeout = \"30s\"\n", "", /*workers=*/1))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1", "--service-id", "first"}), nullptr);
  const pid_t pid = h().proxy().pid();

  // More connections than descriptors left: the kernel completes them all; l7px cannot accept
  // the later ones.
  std::vector<UniqueFd> clients;
  struct ResetAll {
    std::vector<UniqueFd>& fds;
    ~ResetAll() {
      for (UniqueFd& fd : fds) CloseWithReset(fd);
    }
  } reset_all{clients};
  for (int i = 0; i < 60; ++i) {
    clients.push_back(ConnectTcp(front()));
    ASSERT_TRUE(clients.back()) << "connection " << i;
  }
  ASSERT_TRUE(WaitFor([&] { return h().ProxyLog().find("pausing accepts") != std::string::npos; },
                      std::chrono::seconds(5)))
      << "accept never ran out of descriptors";
  // A service registering now hits the same wall on the acceptor's side.
  UniqueFd late_slot = ConnectTcp(h().register_port());
  ASSERT_TRUE(late_slot);
  ASSERT_TRUE(SendAll(late_slot.get(), RegistrationHead("", "", "late")));

  // Exhausted, l7px waits instead of retrying in a loop.
  const long cpu = CpuMillisPerSecond(pid, milliseconds(1000));
  EXPECT_LT(cpu, 150) << "l7px burns " << cpu << " ms of CPU per second while out of fds";
  std::printf("[ measure  ] l7px CPU while out of descriptors: %ld ms/s\n", cpu);
  // Connections it already has are served.
  std::string carry;
  ASSERT_TRUE(SendAll(clients[0].get(), GetRequest("/while-exhausted")));
  EXPECT_EQ(BodyOf(RecvHttpResponse(clients[0].get(), &carry, kIo)), "ok /while-exhausted");
  // Logged once, not once per failed accept.
  EXPECT_EQ(CountOf(h().ProxyLog(), "pausing accepts"), 1) << h().ProxyLog();

  // Descriptors come back (clients[0] stays): the backlog is accepted and served, and the
  // registration completes.
  for (int i = 1; i < 50; ++i) CloseWithReset(clients[i]);
  const std::string answer = RecvUntil(late_slot.get(), "\r\n\r\n", kIo);
  EXPECT_EQ(StatusOf(answer), 101) << answer;
  ASSERT_TRUE(SendAll(clients.back().get(), GetRequest("/recovered")));
  // The most recently idle slot takes it: the late one once its registration is through (then
  // it answers here, like a service would), else the first service's.
  pollfd fds[2] = {{clients.back().get(), POLLIN, 0}, {late_slot.get(), POLLIN, 0}};
  ASSERT_GT(poll(fds, 2, 10'000), 0) << "no response and no request within 10 s";
  if (fds[0].revents == 0) {
    std::string slot_carry;
    EXPECT_THAT(RecvHttpRequest(late_slot.get(), &slot_carry, kIo), HasSubstr("GET /recovered "));
    ASSERT_TRUE(
        SendAll(late_slot.get(), "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nok /recovered"));
  }
  carry.clear();
  EXPECT_EQ(BodyOf(RecvHttpResponse(clients.back().get(), &carry, kIo)), "ok /recovered");
  EXPECT_THAT(h().ProxyLog(), HasSubstr("accepting again"));
}

TEST_F(ResourceExhaustionTest, RegistrationFloodPastMaxSlotsIsRefusedWithoutHarm) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy("[[pool]]\nname = \"default\"\nmax_slots = 4\n")) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "4", "--service-id", "svc"}), nullptr);
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 4; },
                      std::chrono::seconds(5)));
  const pid_t pid = h().proxy().pid();
  const int fds_before = OpenFds(pid);

  std::atomic<bool> flooding{true};
  auto serving = std::async(std::launch::async, [&] {
    int ok = 0;
    int total = 0;
    UniqueFd fd = ConnectTcp(front());
    std::string carry;
    while ((flooding.load() || total < 50) && total < 5000) {
      ++total;
      if (!SendAll(fd.get(), GetRequest("/during"))) break;
      const std::string resp = RecvHttpResponse(fd.get(), &carry, kIo);
      if (StatusOf(resp) == 200 && HeaderOf(resp, "X-Service") == "svc") ++ok;
    }
    return std::make_pair(ok, total);
  });
  constexpr int kThreads = 3;
  constexpr int kPerThread = 100;
  std::vector<std::future<int>> flood;
  for (int t = 0; t < kThreads; ++t) {
    flood.push_back(std::async(std::launch::async, [&] {
      int refused = 0;
      for (int i = 0; i < kPerThread; ++i) {
        std::string answer;
        UniqueFd fd = RegisterByHand(h().register_port(), RegistrationHead("", "", "flood"),
                                     &answer, milliseconds(3000));
        std::string rest;
        if (StatusOf(answer) == 503 && WaitPeerClosed(fd.get(), milliseconds(3000), &rest)) {
          ++refused;
        }
      }
      return refused;
    }));
  }
  int refused = 0;
  for (auto& f : flood) refused += f.get();
  flooding.store(false);
  const auto [ok, total] = serving.get();

  EXPECT_EQ(refused, kThreads * kPerThread);
  EXPECT_EQ(ok, total) << "requests failed during the flood";
  EXPECT_GE(total, 50);
  EXPECT_EQ(RegisteredSlots(h().admin_port(), "default"), 4);
  const Json pool = PoolEntry(h().admin_port(), "default");
  const Json* services = FindMember(pool, "services");
  ASSERT_NE(services, nullptr);
  ASSERT_TRUE(services->is_object());
  EXPECT_EQ(services->size(), 1u) << "a refused registration was counted";
  // Every refused connection was closed: no descriptor leaked.
  EXPECT_TRUE(WaitFor([&] { return OpenFds(pid) <= fds_before + 1; }, std::chrono::seconds(3)))
      << OpenFds(pid) << " fds open, " << fds_before << " before the flood";
}

// Receives draw on one ring of 512 provided buffers per worker. Uploads queued for a busy pool
// hold theirs (bytes received past their input buffer) until they get a slot, give up, or are
// shed at queue_timeout; meanwhile other receives find the ring empty (ENOBUFS). Those wait —
// re-armed oldest first as buffers come back, a few kept in reserve — instead of failing or
// spinning, and everything recovers once the queue sheds.
TEST_F(ResourceExhaustionTest, ReceiveBuffersRunningOutDegradeGracefully) {
  h().EnableAdmin();
  ASSERT_TRUE(
      StartProxy("[[pool]]\nname = \"uploads\"\nmax_slots = 1\nqueue_timeout = \"1s\"\n"
                 "response_timeout = \"30s\"\n"
                 "[[pool]]\nname = \"other\"\n"
                 "[[route]]\nhost = \"uploads.example\"\npool = \"uploads\"\n"
                 "[[route]]\nhost = \"*\"\npool = \"other\"\n",
                 "max_header_bytes = 1024\n", "default_pool = \"other\"\n", /*workers=*/1))
      << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "1", "--pool", "other", "--service-id", "other"}), nullptr);
  // The uploads pool's one slot is busy with a request it never answers.
  std::string answer;
  UniqueFd slot =
      RegisterByHand(h().register_port(), RegistrationHead("uploads", "", "stuck"), &answer);
  ASSERT_EQ(StatusOf(answer), 101) << answer;
  UniqueFd holder = ConnectTcp(front());
  ASSERT_TRUE(SendAll(holder.get(), GetRequest("/hold", "uploads.example")));
  std::string slot_carry;
  ASSERT_FALSE(RecvHttpRequest(slot.get(), &slot_carry, kIo).empty());

  // 120 uploads of 160 KiB each queue behind it. Each keeps ~64 KiB in its input buffer and
  // holds the rest in receive buffers: ~11 MiB against the ring's 8 MiB.
  constexpr int kUploaders = 120;
  std::vector<UniqueFd> uploaders;
  struct ResetAll {
    std::vector<UniqueFd>& fds;
    ~ResetAll() {
      for (UniqueFd& fd : fds) CloseWithReset(fd);
    }
  } reset_all{uploaders};
  const std::string upload =
      "POST /up HTTP/1.1\r\nHost: uploads.example\r\n"
      "Content-Length: 1048576\r\n\r\n" +
      std::string(160 * 1024, 'u');
  for (int i = 0; i < kUploaders; ++i) {
    uploaders.push_back(ConnectTcp(front()));
    ASSERT_TRUE(uploaders.back());
    ASSERT_TRUE(SendAll(uploaders.back().get(), upload));
  }
  ASSERT_TRUE(WaitFor([&] { return StatsCounter(h().admin_port(), "recv_no_buffer") > 0; },
                      std::chrono::seconds(3)))
      << "the receive buffers never ran out: the test proves nothing";
  const long cpu = CpuMillisPerSecond(h().proxy().pid(), milliseconds(400));
  EXPECT_LT(cpu, 150) << "l7px burns " << cpu << " ms of CPU per second without buffers";

  // Another pool's client waits its turn for a buffer (oldest first), at worst for the queue
  // to shed (queue_timeout 1 s), maybe in a few waves as starved uploads read and queue too.
  const auto start = Clock::now();
  const std::string other = HttpExchange(front(), GetRequest("/other"), milliseconds(8000));
  const long waited = MillisSince(start);
  EXPECT_EQ(StatusOf(other), 200) << other;
  EXPECT_EQ(HeaderOf(other, "X-Service"), "other");
  std::printf(
      "[ measure  ] %lld receives found no buffer; l7px CPU %ld ms/s; another pool's "
      "request answered in %ld ms\n",
      static_cast<long long>(StatsCounter(h().admin_port(), "recv_no_buffer")), cpu, waited);
  // The queued uploads were shed with 503, not dropped.
  for (int i : {0, kUploaders / 2, kUploaders - 1}) {
    std::string seen;
    WaitPeerClosed(uploaders[i].get(), kIo, &seen);
    EXPECT_EQ(StatusOf(seen), 503) << "upload " << i << ": " << seen.substr(0, 200);
  }
  // And the ring is whole again: a burst of requests goes through.
  for (int i = 0; i < 20; ++i) {
    const std::string resp = HttpExchange(front(), GetRequest("/after"), milliseconds(3000));
    ASSERT_EQ(StatusOf(resp), 200) << "request " << i << ": " << resp;
  }
}

}  // namespace
}  // namespace l7px::testing
