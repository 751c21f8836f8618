// The handoff protocol: message codec round trips and rejections, and the SCM_RIGHTS channel
// carrying fds between two ends of a real socket pair.

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "handoff/channel.h"
#include "handoff/message.h"
#include "support/process.h"

namespace l7px::handoff {
namespace {

Message RoundTrip(const Message& m) {
  auto bytes = Encode(m);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  auto back = Decode(*bytes);
  EXPECT_TRUE(back.ok()) << back.status();
  return back.ok() ? *back : Message{};
}

TEST(HandoffMessage, EveryTypeRoundTrips) {
  Message hello;
  hello.type = Type::kHello;
  hello.hello = {kVersion, 4242, 7, "1.2.3"};
  const Message h = RoundTrip(hello);
  EXPECT_EQ(h.type, Type::kHello);
  EXPECT_EQ(h.hello.version, kVersion);
  EXPECT_EQ(h.hello.pid, 4242u);
  EXPECT_EQ(h.hello.upgrades, 7u);
  EXPECT_EQ(h.hello.build, "1.2.3");

  Message listeners;
  listeners.type = Type::kListeners;
  listeners.batch = 3;
  listeners.last = true;
  listeners.listeners = {{ListenerKind::kFront, "127.0.0.1:8080"},
                         {ListenerKind::kRegister, "unix:/run/l7px.sock"},
                         {ListenerKind::kAdmin, "[::1]:9901"}};
  const Message l = RoundTrip(listeners);
  EXPECT_EQ(l.batch, 3u);
  EXPECT_TRUE(l.last);
  ASSERT_EQ(l.listeners.size(), 3u);
  EXPECT_EQ(l.listeners[1].kind, ListenerKind::kRegister);
  EXPECT_EQ(l.listeners[1].address, "unix:/run/l7px.sock");
  EXPECT_EQ(l.fd_count(), 3u);

  Message keys;
  keys.type = Type::kTicketKeys;
  keys.ticket_keys = std::string("\x01\x00secret\xff", 9);
  const Message k = RoundTrip(keys);
  EXPECT_EQ(k.type, Type::kTicketKeys);
  EXPECT_EQ(k.ticket_keys, keys.ticket_keys);
  EXPECT_EQ(k.fd_count(), 0u);

  Message slots;
  slots.type = Type::kSlots;
  slots.batch = 9;
  slots.slots = {{"api", "billing-1"}, {"default", ""}};
  const Message s = RoundTrip(slots);
  ASSERT_EQ(s.slots.size(), 2u);
  EXPECT_EQ(s.slots[0].service, "billing-1");
  EXPECT_EQ(s.slots[1].pool, "default");

  for (Type t : {Type::kAck, Type::kDone}) {
    Message m;
    m.type = t;
    m.batch = 0xDEADBEEF;
    EXPECT_EQ(RoundTrip(m).batch, 0xDEADBEEFu);
  }
  for (Type t : {Type::kRefuse, Type::kAbort}) {
    Message m;
    m.type = t;
    m.reason = "busy";
    EXPECT_EQ(RoundTrip(m).reason, "busy");
  }
  Message serving;
  serving.type = Type::kServing;
  EXPECT_EQ(RoundTrip(serving).type, Type::kServing);
}

TEST(HandoffMessage, WireFormatIsLengthPrefixedBigEndian) {
  Message ack;
  ack.type = Type::kAck;
  ack.batch = 0x01020304;
  auto bytes = Encode(ack);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(*bytes, std::string("\x00\x00\x00\x05\x05\x01\x02\x03\x04", 9));
}

TEST(HandoffMessage, RejectsMalformedPackets) {
  Message m;
  m.type = Type::kSlots;
  m.slots = {{"api", "svc"}};
  const std::string good = *Encode(m);
  // Every truncation fails (the length prefix no longer matches, or the payload is short).
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(Decode(good.substr(0, n)).ok()) << n;
  }
  std::string trailing = good + "x";
  EXPECT_FALSE(Decode(trailing).ok());
  trailing[3] = static_cast<char>(trailing[3] + 1);  // length now covers the extra byte
  EXPECT_THAT(std::string(Decode(trailing).status().message()), ::testing::HasSubstr("trailing"));

  std::string unknown = good;
  unknown[4] = 99;
  EXPECT_THAT(std::string(Decode(unknown).status().message()),
              ::testing::HasSubstr("unknown message type"));

  Message hello;
  hello.type = Type::kHello;
  std::string bad_magic = *Encode(hello);
  bad_magic[5] = 'X';
  EXPECT_THAT(std::string(Decode(bad_magic).status().message()), ::testing::HasSubstr("magic"));

  Message l;
  l.type = Type::kListeners;
  l.listeners = {{ListenerKind::kAdmin, "x"}};
  std::string bad_kind = *Encode(l);
  bad_kind[4 + 1 + 4 + 1 + 2] = 7;  // after type, batch, last, count
  EXPECT_THAT(std::string(Decode(bad_kind).status().message()),
              ::testing::HasSubstr("listener kind"));
}

TEST(HandoffMessage, EncodeRefusesWhatCannotTravel) {
  Message m;
  m.type = Type::kSlots;
  m.slots.resize(kMaxFdsPerMessage + 1);
  EXPECT_FALSE(Encode(m).ok());
  Message big;
  big.type = Type::kAbort;
  big.reason.assign(70000, 'x');
  EXPECT_FALSE(Encode(big).ok());
}

class HandoffChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    a_ = Channel(UniqueFd(sv[0]));
    b_ = Channel(UniqueFd(sv[1]));
  }
  Channel a_;
  Channel b_;
};

TEST_F(HandoffChannelTest, FdsTravelWithTheirMessage) {
  int p[2];
  ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
  UniqueFd read_end(p[0]);
  UniqueFd write_end(p[1]);
  Message m;
  m.type = Type::kSlots;
  m.batch = 1;
  m.slots = {{"default", "svc"}};
  ASSERT_TRUE(a_.Send(m, {write_end.get()}).ok());
  write_end.Reset();  // the receiver's copy keeps the pipe open

  auto r = b_.Receive(1000);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->fds.size(), 1u);
  EXPECT_EQ(r->message.slots[0].service, "svc");
  EXPECT_EQ(fcntl(r->fds[0].get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  ASSERT_EQ(write(r->fds[0].get(), "hi", 2), 2);
  char buf[2];
  ASSERT_EQ(read(read_end.get(), buf, 2), 2);
  EXPECT_EQ(std::string(buf, 2), "hi");
}

TEST_F(HandoffChannelTest, ManyFdsInOneBatch) {
  std::vector<UniqueFd> pipes;
  std::vector<int> fds;
  Message m;
  m.type = Type::kSlots;
  for (size_t i = 0; i < kMaxFdsPerMessage; ++i) {
    int p[2];
    ASSERT_EQ(pipe2(p, O_CLOEXEC), 0);
    pipes.emplace_back(p[0]);
    pipes.emplace_back(p[1]);
    fds.push_back(p[1]);
    m.slots.push_back({"pool", std::to_string(i)});
  }
  ASSERT_TRUE(a_.Send(m, fds).ok());
  auto r = b_.Receive(1000);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->fds.size(), kMaxFdsPerMessage);
}

TEST_F(HandoffChannelTest, FdCountMustMatchTheEntries) {
  Message m;
  m.type = Type::kSlots;
  m.slots = {{"a", "b"}, {"c", "d"}};
  EXPECT_FALSE(a_.Send(m, {0}).ok());  // refused before sending
}

TEST_F(HandoffChannelTest, TimeoutPeerCloseAndRefusals) {
  EXPECT_TRUE(absl::IsDeadlineExceeded(b_.Receive(10).status()));
  Message refuse;
  refuse.type = Type::kRefuse;
  refuse.reason = "a takeover is already under way";
  ASSERT_TRUE(a_.Send(refuse).ok());
  auto r = b_.Expect(Type::kHello, 1000);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), ::testing::HasSubstr("already under way"));
  a_ = Channel();
  EXPECT_TRUE(absl::IsUnavailable(b_.Receive(1000).status()));
}

TEST(UpgradeSocket, OwnerOnlyAndRefusesALiveOne) {
  const std::string dir = l7px::testing::MakeTempDir("upgrade_socket");
  const std::string path = dir + "/upgrade.sock";
  auto first = ListenUpgradeSocket(path);
  ASSERT_TRUE(first.ok()) << first.status();
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(UpgradeSocketAnswers(path));

  auto second = ListenUpgradeSocket(path);
  EXPECT_TRUE(absl::IsAlreadyExists(second.status())) << second.status();
  auto replaced = ListenUpgradeSocket(path, /*replace_live=*/true);
  EXPECT_TRUE(replaced.ok()) << replaced.status();

  // A stale file (nobody accepting) is replaced.
  first->Reset();
  replaced->Reset();
  EXPECT_FALSE(UpgradeSocketAnswers(path));
  EXPECT_TRUE(ListenUpgradeSocket(path).ok());
  auto connected = Channel::Connect(dir + "/nothing.sock");
  EXPECT_FALSE(connected.ok());
}

}  // namespace
}  // namespace l7px::handoff
