// Integration: zero-downtime upgrades. A process started with --takeover (or by SIGUSR2) receives
// the listeners and the registered slots of the running one over upgrade.socket; clients under
// load and the service never notice. Failure cases: the successor dies mid-handoff, cannot load
// its config or cannot start, or a second takeover arrives meanwhile; a peer of another uid, on
// either side, is refused. SIGQUIT drains, SIGTERM is prompt.

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "handoff/channel.h"
#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/load.h"
#include "support/net.h"

namespace l7px::testing {
namespace {
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kPool[] = "[[pool]]\nname = \"default\"\nqueue_timeout = \"5s\"\n";

// Inodes of the TCP sockets listening on 127.0.0.1:port (/proc/net/tcp), sorted: a socket
// handed over keeps its inode.
std::vector<std::string> ListenerInodes(uint16_t port) {
  char local[32];
  std::snprintf(local, sizeof(local), "0100007F:%04X", port);
  std::ifstream in("/proc/net/tcp");
  std::string line;
  std::vector<std::string> out;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string sl, laddr, raddr, state, queues, timer, retr, uid, timeout, inode;
    fields >> sl >> laddr >> raddr >> state >> queues >> timer >> retr >> uid >> timeout >> inode;
    if (laddr == local && state == "0A") out.push_back(inode);
  }
  std::sort(out.begin(), out.end());
  return out;
}

pid_t ReadPidFile(const std::string& path) {
  std::ifstream in(path);
  long pid = 0;
  return in >> pid ? static_cast<pid_t>(pid) : 0;
}

bool Alive(pid_t pid) { return pid > 0 && kill(pid, 0) == 0; }

// The uid and gid a forked helper takes to be "another user" (nobody on Debian).
constexpr uid_t kOtherUid = 65534;
constexpr gid_t kOtherGid = 65534;

// In a forked child: drops to kOtherUid. False when it could not.
bool BecomeOtherUser() {
  return setgroups(0, nullptr) == 0 && setresgid(kOtherGid, kOtherGid, kOtherGid) == 0 &&
         setresuid(kOtherUid, kOtherUid, kOtherUid) == 0;
}

// Runs `body` in a forked child (no other thread runs in the test process when this is called)
// and returns its exit code; -1 when it was killed or outlived `timeout`.
template <typename Body>
int RunForked(Body body, std::chrono::milliseconds timeout) {
  const pid_t child = fork();
  if (child == 0) _exit(body());
  if (child < 0) return -1;
  int status = 0;
  const bool exited = WaitFor([&] { return waitpid(child, &status, WNOHANG) == child; }, timeout);
  if (!exited) {
    kill(child, SIGKILL);
    waitpid(child, &status, 0);
    return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class HandoffTest : public IntegrationTest {
 protected:
  // A SIGUSR2 successor is not our child: whatever runs from this test's directory per the pid
  // file goes, however the test ended.
  void TearDown() override {
    const pid_t pid = ReadPidFile(PidFile());
    if (Alive(pid) && ReadFile("/proc/" + std::to_string(pid) + "/cmdline").find(h().dir()) !=
                          std::string::npos) {
      kill(pid, SIGKILL);
    }
    IntegrationTest::TearDown();
  }

  std::string ConfigPath() { return h().dir() + "/l7px.toml"; }
  std::string PidFile() { return h().dir() + "/l7px.pid"; }

  ChildProcess StartTakeover(const std::string& log_name) {
    return ChildProcess::Start({L7PX_BINARY, "-c", ConfigPath(), "--takeover"},
                               h().dir() + "/" + log_name);
  }

  // 20 sequential requests on fresh connections: how many got a 200.
  int SequentialOks(int n = 20) {
    int ok = 0;
    for (int i = 0; i < n; ++i) {
      ok += StatusOf(HttpExchange(front(), GetRequest("/seq/" + std::to_string(i)))) == 200;
    }
    return ok;
  }

  // Acts as a successor over the protocol, by hand: Hello, then every listener batch (acked).
  // Returns the channel positioned before Serving, and the listener fds it received.
  handoff::Channel FakeSuccessor(std::vector<UniqueFd>* listeners) {
    auto channel = handoff::Channel::Connect(h().UpgradeSocketPath());
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return {};
    handoff::Message hello;
    hello.type = handoff::Type::kHello;
    hello.hello.pid = static_cast<uint32_t>(getpid());
    EXPECT_TRUE(channel->Send(hello).ok());
    auto theirs = channel->Expect(handoff::Type::kHello, 5000);
    EXPECT_TRUE(theirs.ok()) << theirs.status();
    if (!theirs.ok()) return {};
    EXPECT_EQ(static_cast<pid_t>(theirs->message.hello.pid), h().proxy().pid());
    // Handoff version 2: the TLS session ticket keys come first (none without TLS).
    auto keys = channel->Expect(handoff::Type::kTicketKeys, 5000);
    EXPECT_TRUE(keys.ok()) << keys.status();
    if (!keys.ok()) return {};
    EXPECT_EQ(keys->message.ticket_keys, "");
    while (true) {
      auto batch = channel->Expect(handoff::Type::kListeners, 5000);
      EXPECT_TRUE(batch.ok()) << batch.status();
      if (!batch.ok()) return {};
      for (UniqueFd& fd : batch->fds) listeners->push_back(std::move(fd));
      handoff::Message ack;
      ack.type = handoff::Type::kAck;
      ack.batch = batch->message.batch;
      EXPECT_TRUE(channel->Send(ack).ok());
      if (batch->message.last) break;
    }
    return std::move(*channel);
  }
};

TEST_F(HandoffTest, ThreeTakeoversAndASigusr2UnderLoadFailNothing) {
  h().EnableAdmin();
  h().SetUpgradeExtra("pid_file = \"" + PidFile() + "\"\ndrain_timeout = \"10s\"\n");
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "8"}), nullptr);
  EXPECT_EQ(ReadPidFile(PidFile()), h().proxy().pid());
  const std::vector<std::string> inodes = ListenerInodes(front());
  ASSERT_EQ(inodes.size(), 2u);  // one SO_REUSEPORT socket per worker

  LoadClient load(front(), 32, "/");
  load.Start();
  ASSERT_TRUE(WaitFor([&] { return load.ok() > 500; }, seconds(10)));

  std::deque<ChildProcess> successors;
  ChildProcess* current = &h().proxy();
  for (int i = 1; i <= 3; ++i) {
    successors.push_back(StartTakeover("gen" + std::to_string(i) + ".log"));
    EXPECT_EQ(current->WaitExit(seconds(20)), 0) << Tail(current->ReadLog());
    ASSERT_TRUE(successors.back().running()) << Tail(successors.back().ReadLog());
    current = &successors.back();
    // The successor writes the pid file once the old process said Done.
    EXPECT_TRUE(WaitFor([&] { return ReadPidFile(PidFile()) == current->pid(); }, seconds(5)));
    const uint64_t before = load.ok();
    ASSERT_TRUE(WaitFor([&] { return load.ok() > before + 500; }, seconds(10)))
        << "generation " << i << " does not serve\n"
        << Tail(current->ReadLog());
  }

  // SIGUSR2: the running process starts its own successor with --takeover.
  current->Signal(SIGUSR2);
  EXPECT_EQ(current->WaitExit(seconds(20)), 0) << Tail(current->ReadLog());
  EXPECT_TRUE(WaitFor([&] { return ReadPidFile(PidFile()) != current->pid(); }, seconds(5)));
  const pid_t last = ReadPidFile(PidFile());
  ASSERT_TRUE(Alive(last)) << Tail(current->ReadLog());
  EXPECT_NE(last, current->pid());
  const uint64_t before = load.ok();
  ASSERT_TRUE(WaitFor([&] { return load.ok() > before + 500; }, seconds(10)));

  const LoadClient::Totals totals = load.Stop();
  EXPECT_EQ(totals.connection_errors, 0u) << totals.first_error;
  EXPECT_EQ(totals.bad_status, 0u) << totals.first_error;
  EXPECT_GT(totals.ok, 2500u);
  // Every drained connection was closed cleanly (Connection: close) and re-opened.
  EXPECT_GT(totals.connects, 32u);

  // The same listening sockets all along, and the service never dialed again: its 8 slots were
  // handed from process to process.
  EXPECT_EQ(ListenerInodes(front()), inodes);
  const std::string dials = HttpExchange(front(), GetRequest("/dials"));
  EXPECT_EQ(BodyOf(dials), "dials=8 registrations=8") << dials;
  EXPECT_EQ(RegisteredSlots(h().admin_port(), "default"), 8);
  const AdminResponse metrics = AdminCall(h().admin_port(), "GET", "/metrics");
  EXPECT_THAT(metrics.body, ::testing::HasSubstr("\nl7px_upgrades_total 4\n"));

  // Each old process logged its handoff with the slots it moved and how long it took.
  for (int i = 1; i <= 3; ++i) {
    EXPECT_THAT(ReadFile(h().dir() + "/gen" + std::to_string(i) + ".log"),
                ::testing::ContainsRegex("handoff to pid [0-9]+ complete: [0-9]+ slots moved in "
                                         "[0-9]+ ms"));
  }
  kill(last, SIGTERM);
  EXPECT_TRUE(WaitFor([&] { return !Alive(last); }, seconds(10)));
}

TEST_F(HandoffTest, SuccessorGoneBeforeConfirmingSlotsLosesNothing) {
  h().EnableAdmin();
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "4"}), nullptr);
  ASSERT_EQ(RegisteredSlots(h().admin_port(), "default"), 4);

  std::vector<UniqueFd> listeners;
  handoff::Channel channel = FakeSuccessor(&listeners);
  ASSERT_TRUE(channel.valid());
  EXPECT_EQ(listeners.size(), 4u);  // two front sockets, the register and the admin listener
  handoff::Message serving;
  serving.type = handoff::Type::kServing;
  ASSERT_TRUE(channel.Send(serving).ok());
  auto slots = channel.Expect(handoff::Type::kSlots, 5000);
  ASSERT_TRUE(slots.ok()) << slots.status();
  EXPECT_EQ(slots->fds.size(), 4u);  // no client is connected: every idle slot moves at once
  for (const handoff::SlotEntry& e : slots->message.slots) EXPECT_EQ(e.pool, "default");

  // Die without confirming: our copies of the fds and the channel close.
  slots->fds.clear();
  listeners.clear();
  channel = handoff::Channel();

  EXPECT_TRUE(WaitFor(
      [&] { return h().ProxyLog().find("failed mid-handoff") != std::string::npos; }, seconds(10)))
      << h().ProxyLog();
  EXPECT_TRUE(h().proxy().running());
  EXPECT_EQ(RegisteredSlots(h().admin_port(), "default"), 4);
  EXPECT_EQ(SequentialOks(), 20);
  const std::string dials = HttpExchange(front(), GetRequest("/dials"));
  EXPECT_EQ(BodyOf(dials), "dials=4 registrations=4") << dials;
}

TEST_F(HandoffTest, SuccessorKilledDuringTheDrainLeavesTheOldOneServing) {
  h().EnableAdmin();
  h().SetUpgradeExtra("drain_timeout = \"20s\"\n");
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "4"}), nullptr);

  // A slow request keeps the old process draining (and one slot busy) for a while.
  UniqueFd slow = ConnectTcp(front());
  ASSERT_TRUE(SendAll(slow.get(), GetRequest("/delay/2500")));
  ASSERT_TRUE(
      WaitFor([&] { return PoolCounter(h().admin_port(), "default", "busy") == 1; }, seconds(5)));

  ChildProcess successor = StartTakeover("successor.log");
  ASSERT_TRUE(
      WaitFor([&] { return h().ProxyLog().find("is serving") != std::string::npos; }, seconds(10)))
      << h().ProxyLog() << successor.ReadLog();
  successor.Kill();

  ASSERT_TRUE(WaitFor(
      [&] { return h().ProxyLog().find("failed mid-handoff") != std::string::npos; }, seconds(10)))
      << h().ProxyLog();
  // The in-flight request completes on the old process, which accepts again.
  std::string carry;
  const std::string response = RecvHttpResponse(slow.get(), &carry, seconds(10));
  EXPECT_EQ(StatusOf(response), 200) << response;
  EXPECT_EQ(SequentialOks(), 20);
  // Slots that had moved died with the successor; the service registers them here again.
  EXPECT_TRUE(
      WaitFor([&] { return RegisteredSlots(h().admin_port(), "default") == 4; }, seconds(10)));
  EXPECT_TRUE(h().proxy().running());
}

TEST_F(HandoffTest, TakeoverWithABrokenConfigChangesNothing) {
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  const std::string broken = h().dir() + "/broken.toml";
  std::ofstream(broken) << "[server]\nworkers = \"two\"\n";

  const CommandResult r = RunCommand({L7PX_BINARY, "-c", broken, "--takeover"}, seconds(10));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("server.workers"));
  EXPECT_EQ(h().ProxyLog().find("takeover requested"), std::string::npos) << h().ProxyLog();
  EXPECT_TRUE(h().proxy().running());
  EXPECT_EQ(SequentialOks(), 20);
}

TEST_F(HandoffTest, SuccessorThatCannotStartChangesNothing) {
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  // Loads fine, but its extra front listener is taken by someone else: it cannot start.
  UniqueFd blocker(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(blocker.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(blocker.get(), 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(blocker.get(), reinterpret_cast<sockaddr*>(&addr), &len);
  std::string config = ReadFile(ConfigPath());
  const std::string front_line = "listen = [\"127.0.0.1:" + std::to_string(front()) + "\"";
  const size_t at = config.find(front_line);
  ASSERT_NE(at, std::string::npos);
  config.insert(at + front_line.size(),
                ", \"127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "\"");
  const std::string other = h().dir() + "/other.toml";
  std::ofstream(other) << config;

  const CommandResult r = RunCommand({L7PX_BINARY, "-c", other, "--takeover"}, seconds(15));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("takeover failed"));
  EXPECT_TRUE(
      WaitFor([&] { return h().ProxyLog().find("failed before it served") != std::string::npos; },
              seconds(10)))
      << h().ProxyLog();
  EXPECT_TRUE(h().proxy().running());
  EXPECT_EQ(SequentialOks(), 20);
}

TEST_F(HandoffTest, ASecondTakeoverIsRefusedWhileOneIsUnderWay) {
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  std::vector<UniqueFd> listeners;
  handoff::Channel first = FakeSuccessor(&listeners);
  ASSERT_TRUE(first.valid());

  const CommandResult second =
      RunCommand({L7PX_BINARY, "-c", ConfigPath(), "--takeover"}, seconds(15));
  EXPECT_EQ(second.exit_code, 1) << second.err;
  EXPECT_THAT(second.err, ::testing::HasSubstr("a takeover is already under way"));

  // The first one gives up before serving: nothing changed for the running process.
  first = handoff::Channel();
  listeners.clear();
  EXPECT_TRUE(
      WaitFor([&] { return h().ProxyLog().find("failed before it served") != std::string::npos; },
              seconds(10)));
  EXPECT_EQ(SequentialOks(), 20);
}

TEST_F(HandoffTest, UpgradeSocketIsOwnerOnlyAndASecondPlainStartIsRefused) {
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  struct stat st {};
  ASSERT_EQ(stat(h().UpgradeSocketPath().c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Without --takeover a second instance must not silently share the SO_REUSEPORT front port.
  const CommandResult r = RunCommand({L7PX_BINARY, "-c", ConfigPath()}, seconds(10));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("--takeover"));
  EXPECT_EQ(ListenerInodes(front()).size(), 2u);
}

TEST_F(HandoffTest, SigquitFinishesInFlightRequestsThenExits) {
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  UniqueFd slow = ConnectTcp(front());
  ASSERT_TRUE(SendAll(slow.get(), GetRequest("/delay/1000")));
  std::this_thread::sleep_for(milliseconds(200));

  h().proxy().Signal(SIGQUIT);
  // New clients are refused at once (nobody will take over the listeners)...
  EXPECT_TRUE(WaitFor([&] { return !ConnectTcp(front(), milliseconds(200)); }, seconds(3)));
  // ...while the request in flight completes, announcing the close.
  std::string carry;
  const std::string response = RecvHttpResponse(slow.get(), &carry, seconds(10));
  EXPECT_EQ(StatusOf(response), 200) << response;
  EXPECT_EQ(HeaderOf(response, "Connection"), "close");
  EXPECT_EQ(h().proxy().WaitExit(seconds(10)), 0) << h().ProxyLog();
  EXPECT_THAT(h().ProxyLog(), ::testing::HasSubstr("drain complete"));
}

TEST_F(HandoffTest, SigtermExitsPromptlyEvenWithRequestsInFlight) {
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  UniqueFd slow = ConnectTcp(front());
  ASSERT_TRUE(SendAll(slow.get(), GetRequest("/delay/8000")));
  std::this_thread::sleep_for(milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  h().proxy().Signal(SIGTERM);
  EXPECT_EQ(h().proxy().WaitExit(seconds(5)), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(3));
}

// README: "both sides check the peer runs as the same user". The upgrade socket is 0600, so only
// root could reach a running l7px from another uid anyway; here it is opened to everyone, so that
// what is tested is the check itself: a successor of another uid is refused before it gets a
// single listener, and the running process serves on.
TEST_F(HandoffTest, SuccessorOfAnotherUidIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "acting as another uid needs root";
  ASSERT_TRUE(StartProxy(kPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2"}), nullptr);
  ASSERT_EQ(chmod(h().UpgradeSocketPath().c_str(), 0666), 0);
  const std::string path = h().UpgradeSocketPath();
  // Exit codes: 0 the old process sent nothing but a refusal (or closed); 1 it sent a Hello,
  // listeners or any fd. (Its refusal's reason may not arrive: it closes with our Hello unread,
  // which resets the connection. Its log says why.)
  const int code = RunForked(
      [&] {
        if (!BecomeOtherUser()) return 10;
        auto channel = handoff::Channel::Connect(path);
        if (!channel.ok()) return 11;
        handoff::Message hello;
        hello.type = handoff::Type::kHello;
        hello.hello.pid = static_cast<uint32_t>(getpid());
        (void)channel->Send(hello);  // may fail: a refusing peer closes at once
        bool accepted = false;
        while (true) {
          auto m = channel->Receive(3000);
          if (!m.ok()) break;  // closed, reset, or silence
          const handoff::Type type = m->message.type;
          accepted |=
              !m->fds.empty() || (type != handoff::Type::kRefuse && type != handoff::Type::kAbort);
        }
        return accepted ? 1 : 0;
      },
      seconds(15));
  EXPECT_EQ(code, 0) << "10: could not drop to uid " << kOtherUid << ", 11: cannot connect, "
                     << "1: the successor of another uid was answered";
  EXPECT_TRUE(WaitFor(
      [&] {
        return h().ProxyLog().find("takeover refused: peer pid") != std::string::npos &&
               h().ProxyLog().find("runs as uid " + std::to_string(kOtherUid)) != std::string::npos;
      },
      seconds(5)))
      << h().ProxyLog();
  EXPECT_EQ(h().ProxyLog().find("takeover requested"), std::string::npos) << h().ProxyLog();
  EXPECT_TRUE(h().proxy().running());
  EXPECT_EQ(SequentialOks(), 20);
}

// The other side of the same check: `l7px --takeover` refuses to take anything from a process of
// another uid at upgrade.socket (here a stand-in that listens as kOtherUid), before it sends a
// byte, and exits 1.
TEST_F(HandoffTest, TakeoverRefusesAnOldProcessOfAnotherUid) {
  if (geteuid() != 0) GTEST_SKIP() << "acting as another uid needs root";
  h().WriteConfig(kPool);
  const std::string path = h().UpgradeSocketPath();
  // The stand-in binds as root (the directory is root's), then listens as kOtherUid: a
  // connecting peer sees the credentials of the listen() call. A pipe tells the test it is
  // listening; its exit code says what it saw: 0 a connection that closed without a byte.
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t stand_in = fork();
  if (stand_in == 0) {
    close(ready[0]);
    UniqueFd fd(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) _exit(10);
    if (!BecomeOtherUser() || listen(fd.get(), 4) != 0) _exit(11);
    if (write(ready[1], "r", 1) != 1) _exit(12);
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, 15000) != 1) _exit(13);
    UniqueFd conn(accept4(fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn) _exit(14);
    char buf[4096];
    pollfd q{conn.get(), POLLIN, 0};
    if (poll(&q, 1, 10000) != 1) _exit(15);
    _exit(recv(conn.get(), buf, sizeof(buf), 0) == 0 ? 0 : 1);
  }
  ASSERT_GT(stand_in, 0);
  close(ready[1]);
  char byte = 0;
  pollfd p{ready[0], POLLIN, 0};
  const bool listening = poll(&p, 1, 10000) == 1 && read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  ASSERT_TRUE(listening) << "the stand-in never listened";

  const CommandResult r = RunCommand({L7PX_BINARY, "-c", ConfigPath(), "--takeover"}, seconds(15));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_THAT(r.err, ::testing::HasSubstr("takeover failed"));
  EXPECT_THAT(r.err, ::testing::HasSubstr("runs as uid " + std::to_string(kOtherUid) + ", not 0"));
  int status = 0;
  const bool exited =
      WaitFor([&] { return waitpid(stand_in, &status, WNOHANG) == stand_in; }, seconds(15));
  if (!exited) {
    kill(stand_in, SIGKILL);
    waitpid(stand_in, &status, 0);
  }
  ASSERT_TRUE(exited && WIFEXITED(status)) << "the stand-in did not finish";
  EXPECT_EQ(WEXITSTATUS(status), 0) << "1: the successor sent bytes to a process of another uid";
}

}  // namespace
}  // namespace l7px::testing
