#include "proxy/server/upgrade_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "acceptor/acceptor.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/thread_name.h"
#include "proxy/server/version.h"
#include "proxy/worker/worker.h"
#include "slots/slot_lifecycle.h"

namespace l7px::proxy {

namespace {

constexpr int kAckTimeoutMs = 10'000;
// A successor loads its config and starts its threads before it says Serving.
constexpr int kServingTimeoutMs = 30'000;
constexpr int kDrainPollMs = 2;

int64_t ElapsedMs(int64_t since_ns) { return (MonotonicNanos() - since_ns) / 1'000'000; }

}  // namespace

UpgradeServer::UpgradeServer(HandoffHost* host, const config::Upgrade& config)
    : host_(host), shared_(host->shared()), config_(config) {}

UpgradeServer::~UpgradeServer() { Stop(); }

void UpgradeServer::Start(UniqueFd listener, std::unique_ptr<Takeover> takeover) {
  listener_ = std::move(listener);
  thread_ = std::thread([this, t = std::move(takeover)]() mutable {
    NameThisThread("l7px-upgrade");
    Run(std::move(t));
  });
}

void UpgradeServer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void UpgradeServer::Run(std::unique_ptr<Takeover> takeover) {
  if (auto s = poster_.Init(); !s.ok()) {
    L7PX_LOG(kError, "upgrade thread: {}; upgrades and SIGQUIT drains are unavailable",
             ToStd(s.message()));
    return;
  }
  if (takeover != nullptr) {
    CompleteTakeover(*takeover);
    takeover.reset();  // closes the channel
  }
  while (!stop_.load() && !finished_.load()) {
    if (drain_requested_.load()) {
      busy_.store(true);
      L7PX_LOG(kInfo, "SIGQUIT: draining (no new connections; upgrade.drain_timeout {} s)",
               ToNanos(config_.drain_timeout) / 1'000'000'000);
      SetAccepting(false, /*stop_listening=*/true);
      const DrainOutcome out = Drain(nullptr, 0);
      L7PX_LOG(kInfo, "drain {}; exiting", out.timed_out ? "timed out" : "complete");
      finished_.store(true);
      break;
    }
    pollfd pfd{listener_.get(), POLLIN, 0};
    const int n = poll(&pfd, listener_ ? 1 : 0, 100);
    if (n <= 0 || !(pfd.revents & POLLIN)) continue;
    const int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Session(handoff::Channel(UniqueFd(fd)));
    busy_.store(finished_.load());
  }
  if (finished_.load()) RefusePending("this l7px is exiting after a handoff");
}

// ------------------------------------------------------------------- new side, after Start

void UpgradeServer::CompleteTakeover(Takeover& takeover) {
  busy_.store(true);
  const int acceptor_fd = shared_.acceptor_ring_fd.load();
  auto result = takeover.ReceiveSlots([&](std::unique_ptr<acceptor::AdoptedSlot> slot) {
    acceptor::AdoptedSlot* raw = slot.release();
    if (!poster_.Post(acceptor_fd, io::PackPointerMessage(acceptor::kMsgAdoptSlot, raw)).ok()) {
      delete raw;  // closes the fd: the service re-registers
    }
  });
  // Every slot it handed over is adopted (the messages arrive in order): the acceptor now dials
  // only what the pools' upstreams still miss.
  if (!poster_.Post(acceptor_fd, io::PackMessage(acceptor::kMsgReleaseDials, 0)).ok()) {
    L7PX_LOG(kError, "takeover: telling the acceptor to dial upstreams failed");
  }
  shared_.upgrades.store(takeover.old_upgrades() + 1);
  if (!result.ok()) {
    L7PX_LOG(kError, "takeover from pid {}: {}", takeover.old_pid(),
             ToStd(result.status().message()));
  } else {
    L7PX_LOG(kInfo,
             "takeover from pid {} {}: {} listeners and {} slots moved in {} ms (upgrade #{})",
             takeover.old_pid(), result->old_done ? "complete" : "ended early (it went away)",
             takeover.listener_count(), result->slots, result->duration_ns / 1'000'000,
             shared_.upgrades.load());
  }
  // The old process no longer serves its upgrade socket: ours replaces it at the same path.
  auto fd = handoff::ListenUpgradeSocket(config_.socket, /*replace_live=*/true);
  if (fd.ok()) {
    listener_ = std::move(*fd);
  } else {
    L7PX_LOG(kError, "{}; this process cannot be upgraded in place", ToStd(fd.status().message()));
  }
  // SIGUSR2 works from here on; the pid file tells whoever watches it that it does.
  busy_.store(false);
  WritePidFile();
}

// ------------------------------------------------------------------- old side

void UpgradeServer::Session(handoff::Channel channel) {
  busy_.store(true);
  const int64_t start = MonotonicNanos();
  auto refuse = [&](std::string_view why) {
    L7PX_LOG(kWarn, "takeover refused: {}", why);
    handoff::Message m;
    m.type = handoff::Type::kRefuse;
    m.reason = std::string(why);
    (void)channel.Send(m);
  };
  auto cred = channel.PeerCredentials();
  if (!cred.ok()) return refuse(ToStd(cred.status().message()));
  if (cred->uid != geteuid()) {
    return refuse(
        absl::StrCat("peer pid ", cred->pid, " runs as uid ", cred->uid, ", not ", geteuid()));
  }
  auto hello = AwaitType(channel, handoff::Type::kHello, handoff::kHelloTimeoutMs);
  if (!hello.ok()) {
    L7PX_LOG(kWarn, "takeover attempt by pid {} failed: {}", cred->pid,
             ToStd(hello.status().message()));
    return;
  }
  if (hello->message.hello.version < handoff::kMinVersion) {
    return refuse(absl::StrCat("handoff version ", hello->message.hello.version,
                               " is not supported (this l7px speaks ", handoff::kMinVersion, " to ",
                               handoff::kVersion, ")"));
  }
  const uint16_t version = std::min(hello->message.hello.version, handoff::kVersion);
  if (static_cast<pid_t>(hello->message.hello.pid) != cred->pid) {
    return refuse(absl::StrCat("the peer says it is pid ", hello->message.hello.pid,
                               " but the socket belongs to pid ", cred->pid));
  }
  const pid_t successor = cred->pid;
  L7PX_LOG(kInfo, "takeover requested by pid {} (l7px {})", successor, hello->message.hello.build);
  handoff::Message mine;
  mine.type = handoff::Type::kHello;
  mine.hello.pid = static_cast<uint32_t>(getpid());
  mine.hello.upgrades = shared_.upgrades.load();
  mine.hello.version = version;
  mine.hello.build = kVersion;
  if (auto s = channel.Send(mine); !s.ok()) {
    L7PX_LOG(kWarn, "takeover by pid {} failed: {}", successor, ToStd(s.message()));
    return;
  }
  if (version >= 2) {
    // The successor seals and opens session tickets with these keys: clients resume across
    // the upgrade.
    handoff::Message keys;
    keys.type = handoff::Type::kTicketKeys;
    keys.ticket_keys = host_->TicketKeys();
    if (auto s = channel.Send(keys); !s.ok()) {
      L7PX_LOG(kWarn, "takeover by pid {} failed: {}", successor, ToStd(s.message()));
      return;
    }
  }
  if (auto s = SendListeners(channel); !s.ok()) {
    L7PX_LOG(kWarn, "takeover by pid {} failed while passing listeners: {}; nothing changed",
             successor, ToStd(s.message()));
    return;
  }
  // Until the successor serves, we serve as before; it may still fail to start.
  auto serving = AwaitType(channel, handoff::Type::kServing, kServingTimeoutMs);
  if (!serving.ok()) {
    L7PX_LOG(kWarn, "takeover by pid {} failed before it served: {}; nothing changed", successor,
             ToStd(serving.status().message()));
    return;
  }
  L7PX_LOG(kInfo, "pid {} is serving: stopped accepting; draining and moving slots", successor);
  SetAccepting(false);
  const DrainOutcome out = Drain(&channel, successor);
  if (out.successor_lost) {
    SetAccepting(true);
    L7PX_LOG(kWarn,
             "takeover by pid {} failed mid-handoff ({} slots had moved to it); accepting again "
             "and serving with everything else",
             successor, out.moved);
    return;
  }
  handoff::Message done;
  done.type = handoff::Type::kDone;
  done.batch = static_cast<uint32_t>(out.moved);
  (void)channel.Send(done);
  handed_off_.store(true);
  L7PX_LOG(kInfo, "handoff to pid {} complete{}: {} slots moved in {} ms; exiting", successor,
           out.timed_out ? " (drain_timeout: closing what was left)" : "", out.moved,
           ElapsedMs(start));
  finished_.store(true);
}

absl::Status UpgradeServer::SendListeners(handoff::Channel& channel) {
  const std::vector<ServedListener>& all = host_->served_listeners();
  uint32_t batch = 0;
  size_t i = 0;
  do {
    handoff::Message m;
    m.type = handoff::Type::kListeners;
    m.batch = batch;
    std::vector<int> fds;
    for (; i < all.size() && fds.size() < handoff::kMaxFdsPerMessage; ++i) {
      m.listeners.push_back(all[i].entry);
      fds.push_back(all[i].fd);
    }
    m.last = i == all.size();
    if (auto s = channel.Send(m, fds); !s.ok()) return s;
    auto ack = AwaitType(channel, handoff::Type::kAck, kAckTimeoutMs);
    if (!ack.ok()) return ack.status();
    if (ack->message.batch != batch) return absl::InvalidArgumentError("ack for the wrong batch");
    ++batch;
  } while (i < all.size());
  return absl::OkStatus();
}

absl::StatusOr<handoff::Channel::Received> UpgradeServer::Await(handoff::Channel& channel,
                                                                int timeout_ms) {
  const int64_t deadline = MonotonicNanos() + int64_t{timeout_ms} * 1'000'000;
  while (true) {
    const int64_t left_ms = (deadline - MonotonicNanos()) / 1'000'000;
    if (left_ms <= 0) return channel.Receive(0);
    pollfd pfds[2] = {{channel.fd(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    const int n = poll(pfds, 2, static_cast<int>(std::min<int64_t>(left_ms, 100)));
    if (n <= 0) continue;
    if (pfds[1].revents & POLLIN) RefusePending("a takeover is already under way");
    if (pfds[0].revents != 0) return channel.Receive(0);
  }
}

absl::StatusOr<handoff::Channel::Received> UpgradeServer::AwaitType(handoff::Channel& channel,
                                                                    handoff::Type type,
                                                                    int timeout_ms) {
  auto r = Await(channel, timeout_ms);
  if (!r.ok()) return r.status();
  const handoff::Type got = r->message.type;
  if (got == type) return r;
  if (got == handoff::Type::kAbort) {
    return absl::AbortedError(absl::StrCat("it gave up: ", r->message.reason));
  }
  return absl::InvalidArgumentError(absl::StrCat("handoff: expected ", handoff::TypeName(type),
                                                 ", got ", handoff::TypeName(got)));
}

UpgradeServer::DrainOutcome UpgradeServer::Drain(handoff::Channel* channel, pid_t successor) {
  DrainOutcome out;
  const int64_t deadline = MonotonicNanos() + ToNanos(config_.drain_timeout);
  while (!stop_.load()) {
    if (channel != nullptr) {
      std::vector<slots::Slot*> movable = CollectMovableSlots();
      if (!movable.empty()) {
        handoff::Message m;
        m.type = handoff::Type::kSlots;
        m.batch = next_batch_++;
        std::vector<int> fds;
        for (slots::Slot* s : movable) {
          m.slots.push_back({shared_.pools.at(s->pool_id())->name(), s->service_id()});
          fds.push_back(s->fd());
        }
        if (auto s = channel->Send(m, fds); !s.ok()) {
          // A SEQPACKET send is all or nothing: the successor got none of these fds.
          L7PX_LOG(kWarn, "handoff: sending slots to pid {} failed: {}", successor,
                   ToStd(s.message()));
          ReturnSlots(movable);
          out.successor_lost = true;
          return out;
        }
        // Wait for the ack. Only a successor that is gone (its end closed) certainly does not
        // hold these connections: then they come back into service here. Anything else keeps
        // them with the successor.
        while (true) {
          auto r = Await(*channel, kAckTimeoutMs);
          if (r.ok() && r->message.type == handoff::Type::kAck && r->message.batch == m.batch) {
            for (slots::Slot* s : movable) {
              slots::AccountLeasedSlotMoved(*shared_.pools.at(s->pool_id()), *s);
              Post(shared_.acceptor_ring_fd.load(),
                   io::PackPointerMessage(acceptor::kMsgSlotMoved, s));
            }
            out.moved += movable.size();
            break;
          }
          if (!r.ok() && absl::IsUnavailable(r.status())) {
            L7PX_LOG(kWarn, "handoff: pid {} went away before confirming {} slots: {}", successor,
                     movable.size(), ToStd(r.status().message()));
            ReturnSlots(movable);
            out.successor_lost = true;
            return out;
          }
          if (!r.ok() && absl::IsDeadlineExceeded(r.status()) && MonotonicNanos() < deadline) {
            L7PX_LOG(kWarn, "handoff: pid {} has not confirmed {} slots yet", successor,
                     movable.size());
            continue;
          }
          L7PX_LOG(kError, "handoff: pid {} did not confirm {} slots ({}); leaving them to it",
                   successor, movable.size(),
                   r.ok() ? std::string_view(handoff::TypeName(r->message.type))
                          : ToStd(r.status().message()));
          ForgetSlots(movable);
          out.successor_lost = !r.ok() || r->message.type != handoff::Type::kAck;
          if (out.successor_lost) return out;
          break;
        }
        continue;  // more may be idle already
      }
    }
    const int64_t clients = host_->ClientConnections();
    if (clients == 0 && (channel == nullptr || !SlotsLeft())) break;
    if (MonotonicNanos() > deadline) {
      L7PX_LOG(kWarn, "upgrade.drain_timeout passed: closing {} client connections{}", clients,
               channel != nullptr && SlotsLeft() ? " and the slots still busy" : "");
      out.timed_out = true;
      break;
    }
    pollfd pfds[2] = {{listener_.get(), POLLIN, 0}, {channel ? channel->fd() : -1, POLLIN, 0}};
    const int n = poll(pfds, 2, kDrainPollMs);
    if (n <= 0) continue;
    if (pfds[0].revents & POLLIN) RefusePending("a takeover is already under way");
    if (pfds[1].revents != 0) {
      auto r = channel->Receive(0);
      if (!r.ok() && !absl::IsDeadlineExceeded(r.status())) {
        L7PX_LOG(kWarn, "handoff: pid {} went away: {}", successor, ToStd(r.status().message()));
        out.successor_lost = true;
        return out;
      }
    }
  }
  return out;
}

std::vector<slots::Slot*> UpgradeServer::CollectMovableSlots() {
  std::vector<slots::Slot*> out;
  size_t bytes = 64;
  const bool clients_left = host_->ClientConnections() > 0;
  for (uint32_t id = 0; id < shared_.pools.size(); ++id) {
    slots::Pool& pool = *shared_.pools.at(id);
    if (pool.closing()) continue;  // its slots are being closed, not handed over
    int64_t taken = 0;
    while (out.size() < handoff::kMaxFdsPerMessage && bytes + 1024 < handoff::kMaxMessageBytes) {
      // Requests queued here are served here first: a slot moves only while none waits for one.
      // Handing over a slot a waiter here needed would leave it fewer slots than it had before
      // the drain and let it run into queue_timeout; the successor queues its own requests
      // meanwhile and gets every slot once this queue is empty (new requests reach this process
      // only on connections that were already open, and each closes after its response).
      if (pool.waiting.load(std::memory_order_relaxed) > 0) break;
      // Keep one slot here while this process still has clients that may send a request.
      if (clients_left && pool.registered.load() - taken <= 1) break;
      slots::Slot* slot = pool.PopAnyIdle();
      if (slot == nullptr) break;
      if (!slot->TryLease()) {  // died while idle: the acceptor frees it
        Post(shared_.acceptor_ring_fd.load(),
             io::PackPointerMessage(acceptor::kMsgRetireSlot, slot));
        continue;
      }
      pool.busy.fetch_add(1, std::memory_order_relaxed);
      ++taken;
      bytes += handoff::EncodedSize({pool.name(), slot->service_id()});
      out.push_back(slot);
    }
  }
  return out;
}

void UpgradeServer::ReturnSlots(const std::vector<slots::Slot*>& slots) {
  for (slots::Slot* s : slots) {
    slots::Pool& pool = *shared_.pools.at(s->pool_id());
    if (!slots::ReturnLeasedSlot(pool, *s)) {
      Post(shared_.acceptor_ring_fd.load(), io::PackPointerMessage(acceptor::kMsgRetireSlot, s));
      continue;
    }
    const int worker = pool.PickWorkerToWake(-1);  // ReturnLeasedSlot passed SyncPoint
    if (worker >= 0 && worker < static_cast<int>(shared_.worker_ring_fds.size())) {
      Post(shared_.worker_ring_fds[worker],
           io::PackMessage(acceptor::kMsgSlotAvailable, pool.id()));
    }
  }
}

void UpgradeServer::ForgetSlots(const std::vector<slots::Slot*>& slots) {
  for (slots::Slot* s : slots) {
    slots::AccountLeasedSlotMoved(*shared_.pools.at(s->pool_id()), *s);
    Post(shared_.acceptor_ring_fd.load(), io::PackPointerMessage(acceptor::kMsgSlotMoved, s));
  }
}

bool UpgradeServer::SlotsLeft() const {
  for (uint32_t id = 0; id < shared_.pools.size(); ++id) {
    const slots::Pool& pool = *shared_.pools.at(id);
    if (!pool.closing() && pool.registered.load() > 0) return true;
  }
  return false;
}

void UpgradeServer::SetAccepting(bool on, bool stop_listening) {
  for (int fd : shared_.worker_ring_fds) {
    Post(fd,
         io::PackMessage(on ? kMsgResume : kMsgDrain, stop_listening ? kDrainStopListening : 0));
  }
  Post(shared_.acceptor_ring_fd.load(),
       io::PackMessage(on ? acceptor::kMsgResumeRegistrations : acceptor::kMsgPauseRegistrations,
                       0));
  host_->SetAdminAccepting(on);
}

void UpgradeServer::RefusePending(std::string_view reason) {
  if (!listener_) return;
  while (true) {
    const int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) return;
    handoff::Channel other{UniqueFd(fd)};
    // Read its Hello first: closing with unread bytes would reset the connection and could
    // discard our answer before the other side reads it.
    (void)other.Receive(200);
    handoff::Message m;
    m.type = handoff::Type::kRefuse;
    m.reason = std::string(reason);
    (void)other.Send(m);
    L7PX_LOG(kWarn, "another takeover attempt refused: {}", reason);
  }
}

void UpgradeServer::Post(int ring_fd, uint64_t message) {
  if (auto s = poster_.Post(ring_fd, message); !s.ok()) {
    L7PX_LOG(kError, "upgrade thread: posting to a ring failed: {}", ToStd(s.message()));
  }
}

void UpgradeServer::WritePidFile() const {
  if (config_.pid_file.empty()) return;
  const std::string temp = absl::StrCat(config_.pid_file, ".", getpid(), ".tmp");
  {
    std::ofstream out(temp, std::ios::trunc);
    out << getpid() << "\n";
    if (!out) {
      L7PX_LOG(kError, "upgrade.pid_file {}: cannot write {}", config_.pid_file, temp);
      return;
    }
  }
  if (rename(temp.c_str(), config_.pid_file.c_str()) != 0) {
    L7PX_LOG(kError, "upgrade.pid_file {}: {}", config_.pid_file, strerror(errno));
    unlink(temp.c_str());
  }
}

void UpgradeServer::RemovePidFile() const {
  if (config_.pid_file.empty() || handed_off_.load()) return;  // the successor's file now
  std::ifstream in(config_.pid_file);
  long pid = 0;
  if (in >> pid && pid == getpid()) unlink(config_.pid_file.c_str());
}

}  // namespace l7px::proxy
