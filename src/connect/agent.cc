#include "connect/agent.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>

#include "base/log.h"
#include "http/status_text.h"
#include "sdk/cpp/protocol.h"

namespace l7px::connect {

namespace {

using std::chrono::milliseconds;

constexpr milliseconds kProxyConnectTimeout{5000};
constexpr milliseconds kHandshakeTimeout{10000};
// How often a registered agent checks that its idle connections to the service are still open
// (a service that died closes them all, and a fresh dial then fails: withdrawal).
constexpr milliseconds kHealthInterval{500};
constexpr milliseconds kProbeMin{250}, kProbeMax{2000};
constexpr milliseconds kDialMin{100}, kDialMax{5000};
// A refusal that is a configuration error (403 token, 404 pool) is retried slowly.
constexpr milliseconds kConfigErrorMin{5000}, kConfigErrorMax{60000};

std::string ProxyList(const std::vector<Endpoint>& proxies) {
  std::string out;
  for (const Endpoint& p : proxies) out += (out.empty() ? "" : ",") + p.text;
  return out;
}

}  // namespace

Agent::Agent(ConnectOptions options)
    : o_(std::move(options)),
      registration_head_(sdk::RegistrationHead(o_.pool, o_.token, o_.service_id)),
      pool_(o_.to, o_.slots),
      wake_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      proxy_log_(o_.proxies.size()) {
  for (ProxyLog& p : proxy_log_) p.slot.resize(static_cast<size_t>(o_.slots));
}

Agent::~Agent() {
  process_stop_.Abort();
  pool_.Wake();
  Reap(true);
}

void Agent::LocalUnreachable(const std::string& error) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    down_error_ = error;
  }
  down_reported_.store(true, std::memory_order_release);
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_.get(), &one, sizeof(one));
}

void Agent::ThreadEnded() {
  std::lock_guard<std::mutex> lock(mu_);
  --running_;
  cv_.notify_all();
}

void Agent::StartTunnel(UniqueFd slot, UniqueFd local, std::string to_local, std::string to_slot) {
  std::lock_guard<std::mutex> lock(mu_);
  ++running_;
  TunnelThread& t = tunnels_.emplace_back();
  t.thread = std::thread([this, &t, s = std::move(slot), l = std::move(local),
                          a = std::move(to_local), b = std::move(to_slot)]() mutable {
    L7PX_LOG(kDebug, "connect: a tunnel opened");
    PumpTunnel(s.get(), l.get(), std::move(a), std::move(b), Stops{&process_stop_, nullptr});
    s.Reset();
    l.Reset();
    L7PX_LOG(kDebug, "connect: a tunnel closed");
    t.done.store(true, std::memory_order_release);
    ThreadEnded();
  });
}

void Agent::LogProxy(size_t proxy, int index, const std::string& state, const std::string& line) {
  std::lock_guard<std::mutex> lock(mu_);
  ProxyLog& p = proxy_log_[proxy];
  std::string& mine = p.slot[static_cast<size_t>(index)];
  if (mine == state) return;
  mine = state;
  if (state == "registered") {
    const auto registered = std::count(p.slot.begin(), p.slot.end(), state);
    if (registered == static_cast<ptrdiff_t>(p.slot.size())) p.logged.clear();  // all well
    if (registered != 1) return;  // not the first after none
  } else {
    if (std::find(p.logged.begin(), p.logged.end(), state) != p.logged.end()) return;
    p.logged.push_back(state);
  }
  if (state.starts_with("refused:40")) {
    L7PX_LOG(kError, "{}", line);
  } else if (state == "registered") {
    L7PX_LOG(kInfo, "{}", line);
  } else {
    L7PX_LOG(kWarn, "{}", line);
  }
}

// One dial to the service, kept as an idle connection when it works (so probing costs the
// service no extra connection). A full pool means requests are running: that is an answer too.
bool Agent::ProbeService(std::string* error) {
  LocalPool::Lease lease = pool_.TryAcquire();
  if (!lease.ok) return true;
  UniqueFd fd = std::move(lease.fd);
  if (!fd) fd = pool_.Dial(Stops{&process_stop_, nullptr}, error);
  const bool ok = fd.valid();
  pool_.Release(std::move(fd), true);
  return ok;
}

void Agent::StartGeneration() {
  auto gen = std::make_unique<Generation>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_ += static_cast<int>(o_.proxies.size()) * o_.slots;
    for (ProxyLog& p : proxy_log_) {
      for (std::string& s : p.slot) s.clear();
      p.logged.clear();
    }
  }
  gen->running.store(static_cast<int>(o_.proxies.size()) * o_.slots);
  for (size_t p = 0; p < o_.proxies.size(); ++p) {
    for (int i = 0; i < o_.slots; ++i) {
      gen->threads.emplace_back([this, p, i, g = gen.get()] { SlotThread(p, i, g); });
    }
  }
  current_ = std::move(gen);
}

void Agent::Withdraw() {
  if (!current_) return;
  current_->stop.Quit();
  pool_.Wake();
  retired_.push_back(std::move(current_));
  pool_.CloseIdle();
}

void Agent::Reap(bool all) {
  for (auto it = retired_.begin(); it != retired_.end();) {
    if (all || (*it)->running.load(std::memory_order_acquire) == 0) {
      for (std::thread& t : (*it)->threads) t.join();
      it = retired_.erase(it);
    } else {
      ++it;
    }
  }
  std::list<TunnelThread> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = tunnels_.begin(); it != tunnels_.end();) {
      auto next = std::next(it);
      if (all || it->done.load(std::memory_order_acquire)) done.splice(done.end(), tunnels_, it);
      it = next;
    }
  }
  for (TunnelThread& t : done) t.thread.join();
}

void Agent::SlotThread(size_t proxy, int index, Generation* gen) {
  const Stops stops{&process_stop_, &gen->stop};
  {
    Relay relay(pool_, *this, stops);
    Backoff backoff(kDialMin, kDialMax,
                    static_cast<uint32_t>(std::random_device{}()) ^
                        static_cast<uint32_t>(proxy * 7919 + static_cast<size_t>(index)));
    while (!stops.Stopped(WaitKind::kIdle)) {
      const auto started = Clock::now();
      const SlotEnd end = RunSlot(proxy, index, relay, stops);
      if (end == SlotEnd::kStop) break;
      if (end == SlotEnd::kServed) {
        backoff.SetRange(kDialMin, kDialMax);
        backoff.Reset();
        continue;  // at once: l7px should get its slot back
      }
      if (end == SlotEnd::kSlowFailed) {
        backoff.SetRange(kConfigErrorMin, kConfigErrorMax);
      } else {
        backoff.SetRange(kDialMin, kDialMax);
        if (end == SlotEnd::kClosedEarly && Clock::now() - started >= kDialMax) backoff.Reset();
      }
      WaitFd(-1, 0, stops, WaitKind::kIdle, Clock::now() + backoff.Next());
    }
  }
  gen->running.fetch_sub(1, std::memory_order_acq_rel);
  ThreadEnded();
}

Agent::SlotEnd Agent::RunSlot(size_t p, int index, Relay& relay, const Stops& stops) {
  const Endpoint& proxy = o_.proxies[p];
  std::string error;
  UniqueFd fd = Dial(proxy, stops, WaitKind::kIdle, kProxyConnectTimeout, true, &error);
  if (!fd) {
    if (stops.Stopped(WaitKind::kIdle)) return SlotEnd::kStop;
    LogProxy(p, index, "down:" + error,
             "connect: proxy " + proxy.text + " unreachable: " + error + "; retrying");
    return SlotEnd::kFailed;
  }
  const auto deadline = Clock::now() + kHandshakeTimeout;
  if (!SendAll(fd.get(), registration_head_, stops, WaitKind::kIdle, deadline)) {
    if (stops.Stopped(WaitKind::kIdle)) return SlotEnd::kStop;
    LogProxy(p, index, "down:write", "connect: proxy " + proxy.text + " closed the registration");
    return SlotEnd::kFailed;
  }
  std::string reply_bytes;
  char chunk[4096];
  while (true) {
    const ssize_t n = RecvSome(fd.get(), chunk, sizeof(chunk));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      const WaitResult w = WaitFd(fd.get(), POLLIN, stops, WaitKind::kIdle, deadline);
      if (w == WaitResult::kStopped) return SlotEnd::kStop;
      if (w == WaitResult::kReady) continue;
    }
    if (n <= 0) {
      LogProxy(p, index, "down:noanswer",
               "connect: proxy " + proxy.text + " gave no answer to the registration");
      return SlotEnd::kFailed;
    }
    reply_bytes.append(chunk, static_cast<size_t>(n));
    const sdk::HandshakeReply reply = sdk::ParseHandshakeReply(reply_bytes);
    if (reply.state == sdk::HandshakeReply::State::kIncomplete) continue;
    if (reply.state == sdk::HandshakeReply::State::kMalformed) {
      LogProxy(p, index, "malformed",
               "connect: proxy " + proxy.text +
                   " answered the registration with something else than HTTP (is it a "
                   "register.listen address?); retrying");
      return SlotEnd::kSlowFailed;
    }
    if (reply.status != 101) {
      const std::string status = std::to_string(reply.status) + " " +
                                 std::string(http::ReasonPhrase(reply.status, "Unknown"));
      std::string why;
      if (reply.status == 403) why = ": the token is wrong or missing (--token, L7PX_TOKEN)";
      if (reply.status == 404) {
        why = ": it has no pool \"" + (o_.pool.empty() ? std::string("(default)") : o_.pool) +
              "\" (--pool)";
      }
      if (reply.status == 503) why = ": the pool is at max_slots";
      const bool config_error = reply.status == 403 || reply.status == 404;
      LogProxy(p, index, "refused:" + std::to_string(reply.status),
               "connect: proxy " + proxy.text + " refused the registration with " + status + why +
                   (config_error ? "; a configuration error, retrying slowly" : "; retrying"));
      return config_error ? SlotEnd::kSlowFailed : SlotEnd::kFailed;
    }
    LogProxy(p, index, "registered",
             "connect: registered with proxy " + proxy.text +
                 (o_.pool.empty() ? "" : " pool " + o_.pool) + " (" + std::to_string(o_.slots) +
                 " slots, service id " + o_.service_id + ")");
    const Relay::Result served =
        relay.Serve(fd, std::string_view(reply_bytes).substr(reply.head_len));
    fd.Reset();
    if (served.end == Relay::End::kStopped) return SlotEnd::kStop;
    if (served.end == Relay::End::kTunnel) return SlotEnd::kServed;  // dial a replacement now
    if (stops.Stopped(WaitKind::kIdle)) return SlotEnd::kStop;
    return served.exchanges > 0 ? SlotEnd::kServed : SlotEnd::kClosedEarly;
  }
}

int Agent::Run(int signal_fd) {
  if (!process_stop_.ok() || !wake_) {
    std::fprintf(stderr, "l7px connect: cannot create eventfds: %s\n", ErrnoText(errno).c_str());
    return 1;
  }
  L7PX_LOG(kInfo, "connect: forwarding to {} with {} slots per proxy ({}){}", o_.to.text, o_.slots,
           ProxyList(o_.proxies), o_.pool.empty() ? "" : ", pool " + o_.pool);
  Backoff probe(kProbeMin, kProbeMax, static_cast<uint32_t>(std::random_device{}()));
  enum class Service { kUnknown, kUp, kDown } service = Service::kUnknown;
  while (true) {
    milliseconds wait = kHealthInterval;
    std::string error;
    if (!current_) {
      if (ProbeService(&error)) {
        L7PX_LOG(kInfo, "connect: service {} answers; registering", o_.to.text);
        service = Service::kUp;
        probe.Reset();
        StartGeneration();
      } else {
        if (service != Service::kDown) {
          L7PX_LOG(kWarn, "connect: service {} unreachable: {}; not registered, probing",
                   o_.to.text, error);
        }
        service = Service::kDown;
        wait = probe.Next();
      }
    } else if (down_reported_.exchange(false, std::memory_order_acq_rel) || pool_.Prune() == 0) {
      // A slot thread failed to dial, or every idle connection closed: see for ourselves.
      if (!ProbeService(&error)) {
        L7PX_LOG(kWarn, "connect: service {} unreachable: {}; withdrawing every slot, probing",
                 o_.to.text, error);
        service = Service::kDown;
        Withdraw();
        wait = probe.Next();
      }
    }
    Reap(false);
    pollfd fds[2] = {{signal_fd, POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    const int n = poll(fds, 2, static_cast<int>(wait.count()));
    if (n < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = read(wake_.get(), &v, sizeof(v));
    }
    if (fds[0].revents != 0) {
      signalfd_siginfo si;
      [[maybe_unused]] ssize_t r = read(signal_fd, &si, sizeof(si));
      L7PX_LOG(kInfo,
               "connect: {}: closing idle slots, letting requests in flight finish "
               "(grace {} ms)",
               strsignal(static_cast<int>(si.ssi_signo)), o_.grace.count());
      break;
    }
  }

  process_stop_.Quit();
  pool_.Wake();
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, o_.grace, [&] { return running_ == 0; })) {
      L7PX_LOG(kWarn, "connect: grace over with {} slots or tunnels still busy; closing them",
               running_);
    }
  }
  process_stop_.Abort();
  pool_.Wake();
  if (current_) retired_.push_back(std::move(current_));
  Reap(true);
  pool_.CloseIdle();
  L7PX_LOG(kInfo, "connect: stopped");
  return 0;
}

int RunConnect(int argc, char** argv) {
  std::vector<std::string_view> args(argv, argv + argc);
  absl::StatusOr<ConnectOptions> options = ParseConnectOptions(args, std::getenv("L7PX_TOKEN"));
  if (!options.ok()) {
    std::fprintf(stderr, "l7px connect: %s\n\n%s", std::string(options.status().message()).c_str(),
                 kConnectUsage);
    return 2;
  }
  if (options->help) {
    std::fputs(kConnectUsage, stdout);
    return 0;
  }
  SetLogLevel(options->log_level);
  // Blocked before any thread starts, so every thread inherits the mask and the signals reach
  // only the signalfd.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  UniqueFd sfd(signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!sfd) {
    std::fprintf(stderr, "l7px connect: signalfd: %s\n", ErrnoText(errno).c_str());
    return 1;
  }
  Agent agent(std::move(*options));
  return agent.Run(sfd.get());
}

}  // namespace l7px::connect
