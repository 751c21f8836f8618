// Service: one thread per slot connection, blocking style.
//
// Invariants:
// - Every slot thread owns its socket (UniqueFd) and nothing else touches it; other threads
//   reach a slot only through its `wake` eventfd and its `retire` flag.
// - Every wait of a slot thread polls the socket together with `wake`, so Stop() and SetSlots()
//   interrupt any wait (connect, handshake, idle read, backoff sleep) without signals.
// - A Slot object is destroyed only after its thread was joined. `done` is the last thing a
//   thread writes and it takes no lock afterwards, so joining a done thread under `mu_` is safe.
// - connected_ counts slots whose handshake completed and whose socket is still open; it changes
//   only under `mu_`, and every change notifies `cv_` (WaitForSlots).
// - Re-dials never loop tightly: every failed attempt, and every connection that ends without
//   serving a request soon after registering, sleeps the backoff first.
// - A slot whose handler answered 101 with Response::tunnel stops being a slot before the
//   tunnel function runs (BecomeTunnel): it leaves `connected`, its Slot moves from `active` to
//   `retiring` (so SetSlots no longer sees it and Stop still joins its thread) and a fresh Slot
//   takes its place and index, dialing at once. Its thread serves the tunnel and then ends.
//   This takes `mu` once per tunnel, never per request.

#include "l7px/service.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>

#include "base/address.h"
#include "base/unique_fd.h"
#include "http/status_text.h"
#include "sdk/cpp/protocol.h"

namespace l7px {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr size_t kReadChunk = 64 * 1024;
constexpr size_t kStreamChunk = 64 * 1024;
constexpr milliseconds kConnectTimeout{5000};
constexpr milliseconds kHandshakeTimeout{10000};

struct ProxyAddress {
  std::string text;  // as given by the user
  bool is_unix = false;
  std::string path;  // unix
  std::string host;  // inet: name or literal, without brackets
  std::string port;
};

// The address text is read by base's SplitAddress, as l7px reads its own; the host is looked
// up only when dialing (names, and literals without brackets, go through getaddrinfo).
bool ParseProxyAddress(const std::string& text, ProxyAddress* out, std::string* error) {
  const absl::StatusOr<AddressParts> parts = SplitAddress(text);
  if (!parts.ok()) {
    *error = std::string(parts.status().message());
    return false;
  }
  out->text = text;
  out->is_unix = parts->is_unix;
  if (parts->is_unix) {
    out->path = std::string(parts->path);
    return true;
  }
  // A proxy is dialed, so there is no "any" host or kernel-chosen port here.
  if (parts->host.empty() || parts->port == 0) {
    *error = "proxy address \"" + text + "\" needs a host and a port other than 0";
    return false;
  }
  out->host = std::string(parts->host);
  out->port = std::to_string(parts->port);
  return true;
}

std::string DefaultServiceId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::strcpy(host, "service");
  return std::string(host) + "-" + std::to_string(getpid());
}

int MillisUntil(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

std::string ErrnoText(int err) {
  char buf[128];
  // GNU strerror_r returns the message pointer (maybe not `buf`).
  return strerror_r(err, buf, sizeof(buf));
}

// Exponential backoff with jitter in [b/2, b].
class Backoff {
 public:
  Backoff(milliseconds min, milliseconds max, uint32_t seed)
      : min_(std::max<int64_t>(1, min.count())),
        max_(std::max<int64_t>(min_, max.count())),
        next_(min_),
        rng_(seed) {}
  milliseconds Next() {
    const int64_t base = next_;
    next_ = std::min(max_, next_ * 2);
    std::uniform_int_distribution<int64_t> jitter(base / 2, base);
    return milliseconds(jitter(rng_));
  }
  void Reset() { next_ = min_; }

 private:
  int64_t min_;
  int64_t max_;
  int64_t next_;
  std::minstd_rand rng_;
};

}  // namespace

struct Service::Impl {
  struct Slot {
    size_t proxy = 0;
    int index = 0;
    UniqueFd wake;  // eventfd; written to interrupt the slot's waits
    std::atomic<bool> retire{false};
    std::atomic<bool> done{false};
    std::thread thread;

    void Wake() const {
      const uint64_t one = 1;
      [[maybe_unused]] ssize_t n = write(wake.get(), &one, sizeof(one));
    }
  };

  // How a wait may be cut short.
  enum class WaitKind {
    kIdle,   // between requests: Stop() and retirement abort it
    kBusy,   // mid-request or handshake: only Stop() aborts it
    kWrite,  // writing a response: aborts on Stop() only if the socket is not writable
  };

  enum class WaitResult { kReady, kAborted, kTimeout, kError };

  enum class Outcome {
    kAbort,        // stop or retire: the thread ends
    kFailed,       // dial failure or refusal: back off
    kClosedEarly,  // registered, but ended without serving anything: back off quietly
    kServed,       // ended after serving: re-dial at once
    kTunnel,       // became a tunnel (already replaced): the thread ends
  };

  struct ServeResult {
    uint64_t responses = 0;  // responses written completely (a 101 head counts)
    bool tunnel = false;     // the connection was handed to Response::tunnel
  };

  Impl(ServiceOptions o, Handler h) : options(std::move(o)), handler(std::move(h)) {}

  ServiceOptions options;
  Handler handler;
  std::string service_id;
  std::string registration_head;
  std::vector<ProxyAddress> proxies;

  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> served{0};
  std::atomic<uint64_t> dials{0};
  std::atomic<uint64_t> registrations{0};
  std::atomic<uint64_t> refusals{0};
  std::atomic<uint64_t> dial_failures{0};
  std::atomic<uint64_t> tunnels{0};

  mutable std::mutex mu;
  mutable std::condition_variable cv;
  bool started = false;
  bool stopped = false;
  int connected = 0;
  std::vector<std::vector<std::unique_ptr<Slot>>> active;  // [proxy][index]
  std::vector<std::unique_ptr<Slot>> retiring;             // shrunk away, or serving a tunnel
  std::vector<Slot*> direct;  // ServeConnection callers, owned by their stack frames
  int background = 0;         // ServeConnectionInBackground threads still running

  std::mutex log_mu;
  std::vector<std::string> log_state;  // per proxy: the last state logged

  // ---- logging ----

  void Log(const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    LogLocked(line);
  }
  void LogLocked(const std::string& line) {
    if (options.log) {
      options.log(line);
      return;
    }
    const std::string out = "l7px-service: " + line + "\n";
    [[maybe_unused]] ssize_t n = write(STDERR_FILENO, out.data(), out.size());
  }
  // Logs `line` only when proxy `p` enters a state different from the last one logged.
  void LogState(size_t p, const std::string& state, const std::string& line) {
    std::lock_guard<std::mutex> lock(log_mu);
    if (log_state[p] == state) return;
    log_state[p] = state;
    LogLocked(line);
  }

  // ---- slots ----

  bool ShouldStop(const Slot& s, WaitKind kind) const {
    if (stopping.load(std::memory_order_acquire)) return true;
    return kind == WaitKind::kIdle && s.retire.load(std::memory_order_acquire);
  }

  std::unique_ptr<Slot> NewSlot(size_t p, int index) {
    auto slot = std::make_unique<Slot>();
    slot->proxy = p;
    slot->index = index;
    slot->wake = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    Slot* raw = slot.get();
    slot->thread = std::thread([this, raw] {
      Run(*raw);
      raw->done.store(true, std::memory_order_release);
    });
    return slot;
  }

  // Waits for `events` on `fd` (or just for `timeout` when fd < 0).
  WaitResult Wait(const Slot& s, int fd, short events, WaitKind kind,
                  Clock::time_point deadline) const {
    while (true) {
      // A write that is stopping only gets what the socket takes without waiting.
      const bool stop_now = ShouldStop(s, kind);
      if (stop_now && kind != WaitKind::kWrite) return WaitResult::kAborted;
      pollfd fds[2] = {{s.wake.get(), POLLIN, 0}, {fd, events, 0}};
      const int n = poll(fds, fd >= 0 ? 2 : 1, stop_now ? 0 : MillisUntil(deadline));
      if (n < 0) {
        if (errno == EINTR) continue;
        return WaitResult::kError;
      }
      if (fd >= 0 && fds[1].revents != 0) return WaitResult::kReady;
      if (stop_now) return WaitResult::kAborted;
      if (fds[0].revents != 0) {
        uint64_t value;
        [[maybe_unused]] ssize_t r = read(s.wake.get(), &value, sizeof(value));
        continue;
      }
      if (n == 0 && Clock::now() >= deadline) return WaitResult::kTimeout;
    }
  }

  static Clock::time_point Forever() { return Clock::now() + std::chrono::hours(24 * 365); }

  // Reads some bytes: >0 read, 0 EOF, -1 error/abort/timeout.
  ssize_t ReadSome(const Slot& s, int fd, char* buf, size_t cap, WaitKind kind,
                   Clock::time_point deadline) const {
    while (true) {
      const ssize_t n = recv(fd, buf, cap, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
      if (Wait(s, fd, POLLIN, kind, deadline) != WaitResult::kReady) return -1;
    }
  }

  bool WriteAll(const Slot& s, int fd, iovec* iov, int count) const {
    while (count > 0) {
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(count);
      const ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
        if (Wait(s, fd, POLLOUT, WaitKind::kWrite, Forever()) != WaitResult::kReady) return false;
        continue;
      }
      size_t left = static_cast<size_t>(n);
      while (count > 0 && left >= iov->iov_len) {
        left -= iov->iov_len;
        ++iov;
        --count;
      }
      if (count > 0) {
        iov->iov_base = static_cast<char*>(iov->iov_base) + left;
        iov->iov_len -= left;
      }
    }
    return true;
  }

  bool WriteAll(const Slot& s, int fd, std::string_view a, std::string_view b = {}) const {
    iovec iov[2] = {{const_cast<char*>(a.data()), a.size()},
                    {const_cast<char*>(b.data()), b.size()}};
    return WriteAll(s, fd, iov, b.empty() ? 1 : 2);
  }

  // Connects to proxy `p`; returns an invalid fd (with `*error` set) on failure or abort.
  UniqueFd Dial(const Slot& s, std::string* error) const {
    const ProxyAddress& addr = proxies[s.proxy];
    if (addr.is_unix) {
      sockaddr_un un{};
      un.sun_family = AF_UNIX;
      std::memcpy(un.sun_path, addr.path.data(), addr.path.size());
      return ConnectOne(s, AF_UNIX, reinterpret_cast<const sockaddr*>(&un), sizeof(un), error);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* list = nullptr;
    const int rc = getaddrinfo(addr.host.c_str(), addr.port.c_str(), &hints, &list);
    if (rc != 0) {
      *error = std::string("resolve: ") + gai_strerror(rc);
      return UniqueFd();
    }
    UniqueFd fd;
    for (addrinfo* ai = list; ai != nullptr && !fd.valid(); ai = ai->ai_next) {
      fd = ConnectOne(s, ai->ai_family, ai->ai_addr, ai->ai_addrlen, error);
      if (ShouldStop(s, WaitKind::kBusy)) break;
    }
    freeaddrinfo(list);
    return fd;
  }

  UniqueFd ConnectOne(const Slot& s, int family, const sockaddr* sa, socklen_t len,
                      std::string* error) const {
    UniqueFd fd(socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
      *error = "socket: " + ErrnoText(errno);
      return UniqueFd();
    }
    if (connect(fd.get(), sa, len) != 0) {
      if (errno != EINPROGRESS && errno != EAGAIN) {
        *error = ErrnoText(errno);
        return UniqueFd();
      }
      const WaitResult w =
          Wait(s, fd.get(), POLLOUT, WaitKind::kBusy, Clock::now() + kConnectTimeout);
      if (w != WaitResult::kReady) {
        *error = w == WaitResult::kTimeout ? "connect timed out" : "connect interrupted";
        return UniqueFd();
      }
      int err = 0;
      socklen_t err_len = sizeof(err);
      getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &err_len);
      if (err != 0) {
        *error = ErrnoText(err);
        return UniqueFd();
      }
    }
    if (family != AF_UNIX) {
      const int one = 1;
      setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      // Idle slots can sit for hours; keepalive notices a proxy host that vanished.
      setsockopt(fd.get(), SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
      const int idle = 60, interval = 10, count = 3;
      setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
      setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof(interval));
      setsockopt(fd.get(), IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof(count));
    }
    return fd;
  }

  void Run(Slot& s) {
    Backoff backoff(options.min_backoff, options.max_backoff,
                    static_cast<uint32_t>(std::random_device{}()) ^
                        static_cast<uint32_t>(s.proxy * 7919 + static_cast<size_t>(s.index)));
    while (!ShouldStop(s, WaitKind::kIdle)) {
      const auto started_at = Clock::now();
      const Outcome outcome = RunConnection(s);
      if (outcome == Outcome::kAbort || outcome == Outcome::kTunnel) return;
      if (outcome == Outcome::kServed || Clock::now() - started_at >= options.max_backoff) {
        backoff.Reset();
        if (outcome == Outcome::kServed) continue;
      }
      Wait(s, -1, 0, WaitKind::kIdle, Clock::now() + backoff.Next());
    }
  }

  Outcome RunConnection(Slot& s) {
    const std::string& where = proxies[s.proxy].text;
    dials.fetch_add(1, std::memory_order_relaxed);
    std::string error;
    UniqueFd fd = Dial(s, &error);
    if (!fd) {
      if (ShouldStop(s, WaitKind::kIdle)) return Outcome::kAbort;
      dial_failures.fetch_add(1, std::memory_order_relaxed);
      LogState(s.proxy, "dial:" + error,
               "dial " + where + " failed: " + error + " (retrying with backoff)");
      return Outcome::kFailed;
    }

    std::string pending;  // bytes received after the 101: already slot traffic
    if (!options.bare) {
      const Outcome o = Handshake(s, fd.get(), &pending);
      if (o != Outcome::kServed) return o;
    }
    registrations.fetch_add(1, std::memory_order_relaxed);
    LogState(s.proxy, "registered",
             "registered to " + where + (options.pool.empty() ? "" : " pool " + options.pool) +
                 (options.bare ? " (bare)" : ""));
    {
      std::lock_guard<std::mutex> lock(mu);
      ++connected;
    }
    cv.notify_all();
    const ServeResult served_here = Serve(s, fd, std::move(pending));
    if (served_here.tunnel) return Outcome::kTunnel;  // BecomeTunnel did the accounting
    fd.Reset();
    {
      std::lock_guard<std::mutex> lock(mu);
      --connected;
    }
    cv.notify_all();
    if (ShouldStop(s, WaitKind::kIdle)) return Outcome::kAbort;
    return served_here.responses > 0 ? Outcome::kServed : Outcome::kClosedEarly;
  }

  // Sends the v1 head and reads the answer. kServed here means "registered".
  Outcome Handshake(const Slot& s, int fd, std::string* pending) {
    const std::string& where = proxies[s.proxy].text;
    if (!WriteAll(s, fd, registration_head)) {
      if (ShouldStop(s, WaitKind::kBusy)) return Outcome::kAbort;
      dial_failures.fetch_add(1, std::memory_order_relaxed);
      LogState(s.proxy, "handshake-write", "sending the registration to " + where + " failed");
      return Outcome::kFailed;
    }
    const auto deadline = Clock::now() + kHandshakeTimeout;
    std::string buf;
    char chunk[4096];
    while (true) {
      const ssize_t n = ReadSome(s, fd, chunk, sizeof(chunk), WaitKind::kBusy, deadline);
      if (n <= 0) {
        if (ShouldStop(s, WaitKind::kBusy)) return Outcome::kAbort;
        dial_failures.fetch_add(1, std::memory_order_relaxed);
        LogState(s.proxy, "handshake-eof",
                 "registration to " + where + " got no answer (closed or timed out)");
        return Outcome::kFailed;
      }
      buf.append(chunk, static_cast<size_t>(n));
      const sdk::HandshakeReply reply = sdk::ParseHandshakeReply(buf);
      if (reply.state == sdk::HandshakeReply::State::kIncomplete) continue;
      if (reply.state == sdk::HandshakeReply::State::kMalformed) {
        dial_failures.fetch_add(1, std::memory_order_relaxed);
        LogState(
            s.proxy, "handshake-malformed",
            "registration to " + where + ": malformed answer (is it an l7px register listener?)");
        return Outcome::kFailed;
      }
      if (reply.status != 101) {
        refusals.fetch_add(1, std::memory_order_relaxed);
        LogState(s.proxy, "refused:" + std::to_string(reply.status),
                 "registration to " + where + " refused with " + std::to_string(reply.status) +
                     " " + std::string(http::ReasonPhrase(reply.status, sdk::kUnknownReason)) +
                     " (retrying with backoff)");
        return Outcome::kFailed;
      }
      pending->assign(buf, reply.head_len);
      return Outcome::kServed;
    }
  }

  // Serves requests until the connection ends or becomes a tunnel; in the latter case `conn`
  // was released to the tunnel function.
  ServeResult Serve(const Slot& s, UniqueFd& conn, std::string buf) {
    const int fd = conn.get();
    sdk::RequestParser parser(options.max_header_bytes, options.max_body_bytes);
    std::vector<char> chunk(kReadChunk);
    size_t pos = 0;
    ServeResult out;
    uint64_t& count = out.responses;
    while (true) {
      size_t consumed = 0;
      sdk::RequestParser::Result result = sdk::RequestParser::Result::kNeedMore;
      if (pos < buf.size()) result = parser.Feed(buf.data() + pos, buf.size() - pos, &consumed);
      pos += consumed;
      if (result == sdk::RequestParser::Result::kNeedMore) {
        buf.clear();
        pos = 0;
        const WaitKind kind = parser.mid_request() ? WaitKind::kBusy : WaitKind::kIdle;
        const ssize_t n = ReadSome(s, fd, chunk.data(), chunk.size(), kind, Forever());
        if (n <= 0) return out;
        buf.assign(chunk.data(), static_cast<size_t>(n));
        continue;
      }
      if (result == sdk::RequestParser::Result::kError) {
        const int status = parser.error_status();
        Response error;
        error.status = status;
        error.body = std::to_string(status) + " " +
                     std::string(http::ReasonPhrase(status, sdk::kUnknownReason)) + "\n";
        const std::string head = sdk::ResponseHead("GET", error, error.body.size(), true);
        WriteAll(s, fd, head, error.body);
        return out;
      }
      Request& request = parser.request();
      request.slot = s.index;
      if (s.index >= 0) request.proxy = proxies[s.proxy].text;
      Response response;
      handler(request, response);
      if (response.tunnel || response.status == 101) {
        if (!response.tunnel || response.status != 101) {
          WriteMisusedUpgrade(s, fd);
          return out;
        }
        if (!WriteAll(s, fd, sdk::ResponseHead(request.method, response, 0, false))) return out;
        ++count;
        served.fetch_add(1, std::memory_order_relaxed);
        BecomeTunnel(s);
        Tunnel tunnel;
        tunnel.already_read = buf.substr(pos);
        tunnel.stop_fd = s.wake.get();
        tunnel.slot = s.index;
        if (s.index >= 0) tunnel.proxy = proxies[s.proxy].text;
        tunnel.fd = conn.Release();
        response.tunnel(std::move(tunnel));
        out.tunnel = true;
        return out;
      }
      const bool close = response.close || !parser.keep_alive();
      if (!WriteResponse(s, fd, request.method, response, close)) return out;
      ++count;
      served.fetch_add(1, std::memory_order_relaxed);
      if (close) return out;
      parser.Next();
    }
  }

  // A 101 without Response::tunnel (nobody would serve the tunnel) or a tunnel without 101.
  void WriteMisusedUpgrade(const Slot& s, int fd) const {
    Response error;
    error.status = 500;
    error.body = "500 handler answered an upgrade without both status 101 and a tunnel\n";
    WriteAll(s, fd, sdk::ResponseHead("GET", error, error.body.size(), true), error.body);
  }

  // The connection of slot `s` was just handed over as a tunnel (the 101 head is out, so l7px no
  // longer counts it as a slot): a fresh Slot takes its place and dials at once. A direct
  // connection (ServeConnection) has no place to take.
  void BecomeTunnel(const Slot& s) {
    if (s.index >= 0) {
      tunnels.fetch_add(1, std::memory_order_relaxed);
      {
        std::lock_guard<std::mutex> lock(mu);
        --connected;
        ReapRetiredLocked();  // earlier tunnels that ended: keeps `retiring` short
        // Not in `active` when SetSlots shrank it away mid-request or Stop() took it: then there
        // is nothing to replace, and whoever took it joins the thread.
        if (!stopped && s.proxy < active.size()) {
          auto& slots = active[s.proxy];
          const auto at = static_cast<size_t>(s.index);
          if (at < slots.size() && slots[at].get() == &s) {
            retiring.push_back(std::move(slots[at]));
            slots[at] = NewSlot(s.proxy, s.index);
          }
        }
      }
      cv.notify_all();
    }
    // From now on `wake` means only Stop() (SetSlots no longer reaches this Slot): drop a wake-up
    // left from before, then re-arm it if Stop() came first, since its wake may be the one just
    // dropped (`stopping` is set before any wake of Stop()).
    uint64_t value;
    [[maybe_unused]] ssize_t r = read(s.wake.get(), &value, sizeof(value));
    if (stopping.load(std::memory_order_acquire)) s.Wake();
  }

  bool WriteResponse(const Slot& s, int fd, std::string_view method, Response& response,
                     bool close) {
    if (response.abort) return false;
    if (response.raw) return WriteAll(s, fd, *response.raw);
    const bool streamed = static_cast<bool>(response.stream);
    const uint64_t size = streamed ? response.stream_size : response.body.size();
    const std::string head = sdk::ResponseHead(method, response, size, close);
    if (sdk::ResponseHasNoBody(method, response.status)) return WriteAll(s, fd, head);
    if (!streamed) return WriteAll(s, fd, head, response.body);
    if (!WriteAll(s, fd, head)) return false;
    std::vector<char> buf(static_cast<size_t>(std::min<uint64_t>(size, kStreamChunk)));
    uint64_t left = size;
    while (left > 0) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(left, buf.size()));
      const size_t got = response.stream(buf.data(), want);
      if (got == 0 || got > want) return false;
      if (!WriteAll(s, fd, std::string_view(buf.data(), got))) return false;
      left -= got;
    }
    return true;
  }

  // ---- lifecycle helpers (mu held) ----

  void ReapRetiredLocked() {
    auto it = retiring.begin();
    while (it != retiring.end()) {
      if ((*it)->done.load(std::memory_order_acquire)) {
        (*it)->thread.join();
        it = retiring.erase(it);
      } else {
        ++it;
      }
    }
  }
};

Service::Service(ServiceOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

Service::~Service() { Stop(); }

bool Service::Start() {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mu);
  if (im.started || im.stopped) {
    im.Log("Start() called twice");
    return false;
  }
  const ServiceOptions& o = im.options;
  std::string error;
  if (o.proxies.empty()) error = "no proxy address given";
  if (error.empty() && o.slots < 1) error = "slots must be >= 1";
  if (error.empty() && !im.handler) error = "no handler";
  std::vector<ProxyAddress> proxies;
  for (const std::string& text : o.proxies) {
    if (!error.empty()) break;
    ProxyAddress addr;
    if (ParseProxyAddress(text, &addr, &error)) proxies.push_back(std::move(addr));
  }
  if (!error.empty()) {
    im.Log("cannot start: " + error);
    return false;
  }
  im.proxies = std::move(proxies);
  im.service_id = o.service_id.empty() ? DefaultServiceId() : o.service_id;
  im.registration_head = sdk::RegistrationHead(o.pool, o.token, im.service_id);
  im.log_state.assign(im.proxies.size(), std::string());
  im.started = true;
  im.active.resize(im.proxies.size());
  for (size_t p = 0; p < im.proxies.size(); ++p) {
    for (int i = 0; i < o.slots; ++i) im.active[p].push_back(im.NewSlot(p, i));
  }
  return true;
}

void Service::Stop() {
  Impl& im = *impl_;
  std::vector<std::unique_ptr<Impl::Slot>> all;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    if (im.stopped) return;
    im.stopped = true;
    im.stopping.store(true, std::memory_order_release);
    for (auto& per_proxy : im.active) {
      for (auto& slot : per_proxy) all.push_back(std::move(slot));
    }
    im.active.clear();
    for (auto& slot : im.retiring) all.push_back(std::move(slot));
    im.retiring.clear();
    // Direct connections are woken under the lock: their frames unregister under it too.
    for (Impl::Slot* slot : im.direct) slot->Wake();
  }
  im.cv.notify_all();
  for (auto& slot : all) slot->Wake();
  for (auto& slot : all) slot->thread.join();
  // Background connections were woken above; wait until every one has left.
  std::unique_lock<std::mutex> lock(im.mu);
  im.cv.wait(lock, [&] { return im.background == 0; });
}

void Service::SetSlots(int n) {
  Impl& im = *impl_;
  std::lock_guard<std::mutex> lock(im.mu);
  if (!im.started || im.stopped || n < 1) return;
  im.ReapRetiredLocked();
  for (size_t p = 0; p < im.active.size(); ++p) {
    auto& slots = im.active[p];
    while (static_cast<int>(slots.size()) < n) {
      slots.push_back(im.NewSlot(p, static_cast<int>(slots.size())));
    }
    while (static_cast<int>(slots.size()) > n) {
      std::unique_ptr<Impl::Slot> slot = std::move(slots.back());
      slots.pop_back();
      slot->retire.store(true, std::memory_order_release);
      slot->Wake();
      im.retiring.push_back(std::move(slot));
    }
  }
}

uint64_t Service::ServeConnection(int fd) {
  Impl& im = *impl_;
  UniqueFd conn(fd);
  Impl::Slot slot;
  slot.index = -1;
  slot.wake = UniqueFd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!conn || !slot.wake) return 0;
  const int flags = fcntl(conn.get(), F_GETFL);
  if (flags < 0 || fcntl(conn.get(), F_SETFL, flags | O_NONBLOCK) != 0) return 0;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    if (im.stopped) return 0;
    im.direct.push_back(&slot);
  }
  const uint64_t served = im.Serve(slot, conn, std::string()).responses;
  conn.Reset();
  std::lock_guard<std::mutex> lock(im.mu);
  im.direct.erase(std::find(im.direct.begin(), im.direct.end(), &slot));
  return served;
}

void Service::ServeConnectionInBackground(int fd) {
  Impl& im = *impl_;
  {
    std::lock_guard<std::mutex> lock(im.mu);
    if (im.stopped) {
      close(fd);
      return;
    }
    ++im.background;
  }
  std::thread([this, fd] {
    ServeConnection(fd);
    Impl& self = *impl_;
    std::lock_guard<std::mutex> lock(self.mu);
    --self.background;
    self.cv.notify_all();
  }).detach();
}

bool Service::WaitForSlots(int n, std::chrono::milliseconds timeout) const {
  const Impl& im = *impl_;
  std::unique_lock<std::mutex> lock(im.mu);
  im.cv.wait_for(lock, timeout, [&] { return im.connected >= n || im.stopped; });
  return im.connected >= n;
}

int Service::ConnectedSlots() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->connected;
}

uint64_t Service::Served() const { return impl_->served.load(std::memory_order_relaxed); }

ServiceStats Service::Stats() const {
  const Impl& im = *impl_;
  ServiceStats stats;
  stats.connected_slots = ConnectedSlots();
  stats.served = im.served.load(std::memory_order_relaxed);
  stats.dials = im.dials.load(std::memory_order_relaxed);
  stats.registrations = im.registrations.load(std::memory_order_relaxed);
  stats.refusals = im.refusals.load(std::memory_order_relaxed);
  stats.dial_failures = im.dial_failures.load(std::memory_order_relaxed);
  stats.tunnels = im.tunnels.load(std::memory_order_relaxed);
  return stats;
}

}  // namespace l7px
