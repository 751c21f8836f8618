#include "proxy/server/takeover.h"

#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/strings.h"
#include "proxy/server/version.h"

namespace l7px::proxy {

namespace {
// The old process sends a batch as soon as it has idle slots; between batches it may wait for
// responses to finish (up to its drain_timeout), so the wait here is long but bounded.
constexpr int kSlotWaitMs = 5 * 60 * 1000;
}  // namespace

absl::Status Takeover::Greet(const std::string& socket_path, uint16_t offer) {
  auto channel = handoff::Channel::Connect(socket_path);
  if (!channel.ok()) return channel.status();
  channel_ = std::move(*channel);

  auto cred = channel_.PeerCredentials();
  if (!cred.ok()) return cred.status();
  if (cred->uid != geteuid()) {
    return absl::PermissionDeniedError(absl::StrCat("the process at upgrade.socket ", socket_path,
                                                    " runs as uid ", cred->uid, ", not ",
                                                    geteuid()));
  }
  handoff::Message hello;
  hello.type = handoff::Type::kHello;
  hello.hello.version = offer;
  hello.hello.pid = static_cast<uint32_t>(getpid());
  hello.hello.build = kVersion;
  // A busy old process refuses at once and closes, possibly before our Hello is sent: its
  // reason is still waiting in our receive queue.
  const absl::Status sent = channel_.Send(hello);
  auto reply = channel_.Expect(handoff::Type::kHello, sent.ok() ? handoff::kHelloTimeoutMs : 100);
  if (!sent.ok() && !reply.ok() && !absl::IsAborted(reply.status())) return sent;
  if (!reply.ok()) return reply.status();
  const handoff::Hello& theirs = reply->message.hello;
  if (theirs.version < handoff::kMinVersion || theirs.version > offer) {
    return absl::FailedPreconditionError(absl::StrCat("the running l7px speaks handoff version ",
                                                      theirs.version, ", we offered ", offer));
  }
  if (static_cast<pid_t>(theirs.pid) != cred->pid) {
    return absl::PermissionDeniedError(absl::StrCat("the peer says it is pid ", theirs.pid,
                                                    " but the socket belongs to pid ", cred->pid));
  }
  version_ = theirs.version;
  old_pid_ = cred->pid;
  old_upgrades_ = theirs.upgrades;
  L7PX_LOG(kInfo, "takeover: connected to l7px {} (pid {}, handoff version {})", theirs.build,
           old_pid_, version_);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Takeover>> Takeover::Begin(const std::string& socket_path) {
  std::unique_ptr<Takeover> t(new Takeover());
  t->start_ns_ = MonotonicNanos();
  absl::Status greeted = t->Greet(socket_path, handoff::kVersion);
  // A version-1 l7px refuses every other version and closes; it speaks version 1 with us.
  if (absl::IsAborted(greeted) && absl::StrContains(greeted.message(), "handoff version")) {
    L7PX_LOG(kInfo, "takeover: the running l7px speaks an older handoff; offering version 1");
    greeted = t->Greet(socket_path, 1);
  }
  if (!greeted.ok()) return greeted;
  if (t->version_ >= 2) {
    auto keys = t->channel_.Expect(handoff::Type::kTicketKeys, handoff::kHelloTimeoutMs);
    if (!keys.ok()) return keys.status();
    t->ticket_keys_ = std::move(keys->message.ticket_keys);
  }

  for (uint32_t expected = 0;; ++expected) {
    auto batch = t->channel_.Expect(handoff::Type::kListeners, handoff::kHelloTimeoutMs);
    if (!batch.ok()) return batch.status();
    if (batch->message.batch != expected) {
      return absl::InvalidArgumentError("handoff: listener batches out of order");
    }
    for (size_t i = 0; i < batch->fds.size(); ++i) {
      t->listeners_.push_back({batch->message.listeners[i], std::move(batch->fds[i])});
    }
    handoff::Message ack;
    ack.type = handoff::Type::kAck;
    ack.batch = expected;
    if (auto s = t->channel_.Send(ack); !s.ok()) return s;
    if (batch->message.last) break;
  }
  t->listener_count_ = t->listeners_.size();
  return t;
}

void Takeover::Abort(std::string_view reason) {
  handoff::Message m;
  m.type = handoff::Type::kAbort;
  m.reason = std::string(reason.substr(0, 1000));
  (void)channel_.Send(m);  // best effort: the old process also sees the close
}

absl::StatusOr<Takeover::Result> Takeover::ReceiveSlots(
    absl::FunctionRef<void(std::unique_ptr<acceptor::AdoptedSlot>)> adopt) {
  Result result;
  handoff::Message serving;
  serving.type = handoff::Type::kServing;
  if (auto s = channel_.Send(serving); !s.ok()) return s;
  while (true) {
    auto r = channel_.Receive(kSlotWaitMs);
    if (!r.ok()) {
      // The old process died or stalled: what we received is ours; the rest is lost with it
      // (its services see their connections close and re-register here).
      L7PX_LOG(kWarn, "takeover: the old process went away mid-handoff: {}",
               ToStd(r.status().message()));
      break;
    }
    handoff::Message& m = r->message;
    if (m.type == handoff::Type::kDone) {
      result.old_done = true;
      break;
    }
    if (m.type != handoff::Type::kSlots) {
      return absl::InvalidArgumentError(absl::StrCat(
          "handoff: unexpected ", handoff::TypeName(m.type), " during the slot stream"));
    }
    for (size_t i = 0; i < r->fds.size(); ++i) {
      auto slot = std::make_unique<acceptor::AdoptedSlot>();
      slot->fd = std::move(r->fds[i]);
      slot->pool = std::move(m.slots[i].pool);
      slot->service = std::move(m.slots[i].service);
      adopt(std::move(slot));
      ++result.slots;
    }
    handoff::Message ack;
    ack.type = handoff::Type::kAck;
    ack.batch = m.batch;
    if (auto s = channel_.Send(ack); !s.ok()) {
      L7PX_LOG(kWarn, "takeover: acknowledging slots failed: {}", ToStd(s.message()));
      break;
    }
  }
  result.duration_ns = MonotonicNanos() - start_ns_;
  return result;
}

}  // namespace l7px::proxy
