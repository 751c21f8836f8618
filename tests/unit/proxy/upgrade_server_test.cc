// The old side of an upgrade handoff (UpgradeServer) driven over its real UNIX socket by a test
// acting as the successor. Which slots move when is decided here, so it can be checked exactly:
// in a running l7px, an idle slot and a queued request meet only for the microseconds of a
// cross-worker wake-up, which no integration test can arrange on purpose.
#include "proxy/server/upgrade_server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "handoff/channel.h"
#include "io/ring.h"
#include "slots/slot.h"
#include "support/process.h"

namespace l7px::proxy {
namespace {

class FakeHost : public HandoffHost {
 public:
  SharedState& shared() override { return shared_; }
  const std::vector<ServedListener>& served_listeners() const override { return served_; }
  int64_t ClientConnections() const override { return clients.load(); }
  void SetAdminAccepting(bool) override {}
  std::string TicketKeys() override { return "ticket-keys"; }

  std::atomic<int64_t> clients{1};

 private:
  SharedState shared_;
  std::vector<ServedListener> served_;
};

class UpgradeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.socket = testing::MakeTempDir("upgrade_server") + "/upgrade.sock";
    config_.drain_timeout = std::chrono::seconds(20);
    // Messages to the acceptor (slots moved) land in a ring nobody reads.
    ASSERT_TRUE(acceptor_ring_.Init(8).ok());
    host_.shared().acceptor_ring_fd.store(acceptor_ring_.fd());
    pool_ = host_.shared().pools.Add("api", slots::PoolSettings{}, 1);
    // Two registered idle slots (their services are the other ends of socket pairs).
    for (int i = 0; i < 2; ++i) {
      int fds[2];
      ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
      services_.emplace_back(fds[1]);
      slots_.push_back(std::make_unique<slots::Slot>(UniqueFd(fds[0]), pool_->id(), "svc"));
      ASSERT_TRUE(pool_->AttachSlot(*slots_.back(), "svc", 0));
      pool_->PushIdle(slots_.back().get());
      pool_->registered.fetch_add(1);
    }
    auto listener = handoff::ListenUpgradeSocket(config_.socket);
    ASSERT_TRUE(listener.ok()) << listener.status();
    server_ = std::make_unique<UpgradeServer>(&host_, config_);
    server_->Start(std::move(*listener), nullptr);
  }

  void TearDown() override {
    server_.reset();  // joins the upgrade thread before the slots go
  }

  // Hello, the listener batch (acknowledged), Serving: from now on the old side drains.
  handoff::Channel BecomeServingSuccessor() {
    auto channel = handoff::Channel::Connect(config_.socket);
    EXPECT_TRUE(channel.ok()) << channel.status();
    if (!channel.ok()) return {};
    handoff::Message hello;
    hello.type = handoff::Type::kHello;
    hello.hello.pid = static_cast<uint32_t>(getpid());
    EXPECT_TRUE(channel->Send(hello).ok());
    EXPECT_TRUE(channel->Expect(handoff::Type::kHello, 5000).ok());
    auto keys = channel->Expect(handoff::Type::kTicketKeys, 5000);
    EXPECT_TRUE(keys.ok()) << keys.status();
    auto listeners = channel->Expect(handoff::Type::kListeners, 5000);
    EXPECT_TRUE(listeners.ok()) << listeners.status();
    if (!listeners.ok()) return {};
    EXPECT_TRUE(listeners->message.last);
    EXPECT_TRUE(Ack(*channel, listeners->message.batch));
    handoff::Message serving;
    serving.type = handoff::Type::kServing;
    EXPECT_TRUE(channel->Send(serving).ok());
    return std::move(*channel);
  }

  static bool Ack(handoff::Channel& channel, uint32_t batch) {
    handoff::Message ack;
    ack.type = handoff::Type::kAck;
    ack.batch = batch;
    return channel.Send(ack).ok();
  }

  FakeHost host_;
  io::Ring acceptor_ring_;
  config::Upgrade config_;
  slots::Pool* pool_ = nullptr;
  std::vector<UniqueFd> services_;
  std::vector<std::unique_ptr<slots::Slot>> slots_;
  std::unique_ptr<UpgradeServer> server_;
};

// Issue #16, item 3: while requests wait for a slot of a pool here, none of its idle slots is
// handed to the successor; once none waits, they move (one stays while clients remain here).
TEST_F(UpgradeServerTest, NoSlotMovesWhileRequestsWaitHere) {
  pool_->waiting.store(3);  // three requests queued on this process's workers
  handoff::Channel channel = BecomeServingSuccessor();
  ASSERT_TRUE(channel.valid());

  auto early = channel.Receive(500);
  EXPECT_FALSE(early.ok()) << "slots moved while requests waited here: "
                           << (early.ok() ? early->fds.size() : 0);
  if (early.ok()) {
    ASSERT_TRUE(Ack(channel, early->message.batch));
  }

  // The queue here emptied: one slot moves; one stays for the clients still connected here.
  pool_->waiting.store(0);
  auto first = channel.Expect(handoff::Type::kSlots, 5000);
  ASSERT_TRUE(first.ok() || early.ok()) << first.status();
  if (first.ok()) {
    EXPECT_EQ(first->fds.size(), 1u);
    ASSERT_TRUE(Ack(channel, first->message.batch));
  }

  // The last client left: the last slot moves and the handoff is done.
  host_.clients.store(0);
  auto last = channel.Expect(handoff::Type::kSlots, 5000);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(last->fds.size(), 1u);
  ASSERT_TRUE(Ack(channel, last->message.batch));
  auto done = channel.Expect(handoff::Type::kDone, 5000);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->message.batch, 2u);  // slots moved
  EXPECT_EQ(pool_->registered.load(), 0);
  // Set right after Done is sent.
  EXPECT_TRUE(testing::WaitFor([&] { return server_->handed_off(); }, std::chrono::seconds(5)));
}

// The handoff versions: a successor offering version 1 (an older build, a rollback) is answered
// in version 1 and gets no ticket keys; one offering a later version than ours is answered with
// ours (and the keys); version 0 is refused.
TEST_F(UpgradeServerTest, SuccessorsOfEveryVersionFromOneAreServedInTheirs) {
  for (const uint16_t offer : {uint16_t{1}, uint16_t{3}, uint16_t{0}}) {
    SCOPED_TRACE(offer);
    auto channel = handoff::Channel::Connect(config_.socket);
    ASSERT_TRUE(channel.ok()) << channel.status();
    handoff::Message hello;
    hello.type = handoff::Type::kHello;
    hello.hello.version = offer;
    hello.hello.pid = static_cast<uint32_t>(getpid());
    ASSERT_TRUE(channel->Send(hello).ok());
    auto reply = channel->Expect(handoff::Type::kHello, 5000);
    if (offer == 0) {
      ASSERT_FALSE(reply.ok());
      EXPECT_NE(reply.status().message().find("handoff version 0 is not supported"),
                std::string_view::npos)
          << reply.status();
      continue;
    }
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->message.hello.version, std::min(offer, handoff::kVersion));
    auto next = channel->Receive(5000);
    ASSERT_TRUE(next.ok()) << next.status();
    if (offer == 1) {
      EXPECT_EQ(next->message.type, handoff::Type::kListeners);
    } else {
      ASSERT_EQ(next->message.type, handoff::Type::kTicketKeys);
      EXPECT_EQ(next->message.ticket_keys, "ticket-keys");
    }
    handoff::Message abort;
    abort.type = handoff::Type::kAbort;
    abort.reason = "test";
    ASSERT_TRUE(channel->Send(abort).ok());
    // The old side is free for the next successor once this session ended.
    ASSERT_TRUE(testing::WaitFor([&] { return !server_->busy(); }, std::chrono::seconds(5)));
  }
}

// The new side against an old process that speaks only handoff version 1 (an upgrade from an
// older build): its Hello offering version 2 is refused as a version-1 l7px refuses it, so it
// connects again offering version 1 and takes the listeners without ticket keys.
TEST(TakeoverTest, AVersionOneOldProcessIsOfferedVersionOneAfterItRefuses) {
  const std::string path = testing::MakeTempDir("takeover_v1") + "/upgrade.sock";
  auto listener = handoff::ListenUpgradeSocket(path);
  ASSERT_TRUE(listener.ok()) << listener.status();
  // The upgrade socket is non-blocking (l7px polls it); this old side waits in accept.
  ASSERT_EQ(fcntl(listener->get(), F_SETFL, 0), 0);
  std::vector<uint16_t> offers;
  std::thread old_side([&] {
    for (int attempt = 0; attempt < 2; ++attempt) {
      handoff::Channel channel(UniqueFd(accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC)));
      auto hello = channel.Expect(handoff::Type::kHello, 5000);
      if (!hello.ok()) return;
      offers.push_back(hello->message.hello.version);
      handoff::Message m;
      if (hello->message.hello.version != 1) {  // what a version-1 l7px answers
        m.type = handoff::Type::kRefuse;
        m.reason = "handoff version 2 is not supported (this l7px speaks 1)";
        (void)channel.Send(m);
        continue;
      }
      m.type = handoff::Type::kHello;
      m.hello.version = 1;
      m.hello.pid = static_cast<uint32_t>(getpid());
      (void)channel.Send(m);
      handoff::Message listeners;
      listeners.type = handoff::Type::kListeners;
      listeners.last = true;
      (void)channel.Send(listeners);
      (void)channel.Expect(handoff::Type::kAck, 5000);
      return;
    }
  });
  auto takeover = Takeover::Begin(path);
  old_side.join();
  ASSERT_TRUE(takeover.ok()) << takeover.status();
  EXPECT_EQ(offers, (std::vector<uint16_t>{handoff::kVersion, 1}));
  EXPECT_EQ((*takeover)->old_pid(), getpid());
  EXPECT_EQ((*takeover)->ticket_keys(), "");
}

}  // namespace
}  // namespace l7px::proxy
