// l7px-tls-load: new TLS connections per second against an HTTPS server, one request on each.
//
//   l7px-tls-load --port N [--host 127.0.0.1] [--sni localhost] [--path /] [--conns 16]
//                 [--threads 1] [--duration 5] [--max 0] [--timeout 5] [--resume]
//
// Each of --conns connections loops: a TCP connect, a TLS handshake, "GET path" with
// "Connection: close", the whole response read up to the server's close, close; then again with
// a new connection. wrk cannot measure this (it keeps its connections), hence this tool.
//
//  - Full handshakes (the default): no session is ever offered, so every handshake is a full one
//    (ECDHE + the server's signature). Session tickets the server sends are counted and dropped.
//  - --resume: each connection offers the newest ticket it was given on its previous connection,
//    so after its first handshake every handshake resumes (PSK with (EC)DHE in TLS 1.3).
//    Resumed and full handshakes are counted apart.
//
// --threads threads, each with its own epoll loop and its share of the connections; nonblocking
// sockets. The run ends after --duration seconds or --max completed connections, whichever comes
// first; connections still in flight then are dropped and not counted. A connection with no
// progress for --timeout seconds counts as an error. The certificate is not verified (the
// signature over the handshake is, as TLS requires): this measures handshakes, not PKI.
//
// Prints one line of JSON: completed connections and their rate, handshakes (full, resumed),
// errors by kind, tickets received per handshake, the protocol, cipher suite and key exchange
// group of the first handshake, and the p50/p99 of a whole connection's time (connect to close).

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  std::string sni = "localhost";
  std::string path = "/";
  int conns = 16;
  int threads = 1;
  double duration = 5;
  uint64_t max = 0;  // 0: no limit
  double timeout = 5;
  bool resume = false;
};

// Counters of one thread, summed at the end.
struct Stats {
  uint64_t done = 0;  // connections that completed a request with a 2xx answer
  uint64_t full = 0;  // handshakes done, by kind
  uint64_t resumed = 0;
  uint64_t tickets = 0;
  uint64_t err_connect = 0;
  uint64_t err_handshake = 0;
  uint64_t err_io = 0;  // a failure after the handshake, or a response cut short
  uint64_t err_status = 0;
  uint64_t err_timeout = 0;
  std::vector<uint32_t> cycle_us;  // connect to close, per completed connection
};

// What the first completed handshake negotiated (any thread).
std::mutex first_mu;
std::string first_version, first_cipher, first_group;

std::atomic<uint64_t> total_done{0};
std::atomic<bool> stop_all{false};

enum class Phase { kConnecting, kHandshake, kWrite, kRead };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;
  Phase phase = Phase::kConnecting;
  SSL_SESSION* session = nullptr;  // --resume: the newest ticket to offer next time
  Stats* stats = nullptr;
  bool resume = false;
  Clock::time_point started, last_progress;
  // The response: its head up to the blank line, then the body's length.
  std::string head;
  bool head_done = false;
  int status = 0;
  int64_t content_length = -1;  // -1: delimited by the close
  int64_t body = 0;
};

int conn_index = -1;  // SSL ex_data index of the Conn

// A ticket arrived (TLS 1.3 sends them after the handshake).
int OnNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* c = static_cast<Conn*>(SSL_get_ex_data(ssl, conn_index));
  if (c == nullptr) return 0;
  ++c->stats->tickets;
  if (!c->resume) return 0;  // OpenSSL frees it
  if (c->session != nullptr) SSL_SESSION_free(c->session);
  c->session = session;  // we keep the reference
  return 1;
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&](const char** out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    const char* v = nullptr;
    if (a == "--resume") {
      o->resume = true;
    } else if (a == "--host" && value(&v)) {
      o->host = v;
    } else if (a == "--port" && value(&v)) {
      o->port = std::atoi(v);
    } else if (a == "--sni" && value(&v)) {
      o->sni = v;
    } else if (a == "--path" && value(&v)) {
      o->path = v;
    } else if (a == "--conns" && value(&v)) {
      o->conns = std::atoi(v);
    } else if (a == "--threads" && value(&v)) {
      o->threads = std::atoi(v);
    } else if (a == "--duration" && value(&v)) {
      o->duration = std::atof(v);
    } else if (a == "--max" && value(&v)) {
      o->max = std::strtoull(v, nullptr, 10);
    } else if (a == "--timeout" && value(&v)) {
      o->timeout = std::atof(v);
    } else {
      std::fprintf(stderr, "l7px-tls-load: bad argument %s (see the source's header)\n", argv[i]);
      return false;
    }
  }
  if (o->port <= 0 || o->port > 65535 || o->conns < 1 || o->threads < 1 || o->threads > o->conns ||
      o->duration <= 0 || o->duration > 3600 || o->timeout <= 0) {
    std::fprintf(stderr,
                 "l7px-tls-load: need --port, conns >= threads >= 1, 0 < duration <= "
                 "3600\n");
    return false;
  }
  return true;
}

class Loop {
 public:
  Loop(const Options& o, SSL_CTX* ctx, const sockaddr_in& addr, int conns, Stats* stats)
      : o_(o), ctx_(ctx), addr_(addr), conns_(conns), stats_(stats) {
    request_ = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.sni +
               "\r\nUser-Agent: l7px-tls-load\r\nConnection: close\r\n\r\n";
  }

  void Run(Clock::time_point deadline) {
    ep_ = epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0) {
      std::perror("epoll_create1");
      return;
    }
    for (Conn& c : conns_) {
      c.stats = stats_;
      c.resume = o_.resume;
      Start(&c);
    }
    epoll_event events[256];
    const auto timeout =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.timeout));
    Clock::time_point next_scan = Clock::now() + std::chrono::milliseconds(100);
    while (!stop_all.load(std::memory_order_relaxed)) {
      const int n = epoll_wait(ep_, events, 256, 20);
      for (int i = 0; i < n; ++i) Drive(static_cast<Conn*>(events[i].data.ptr));
      const Clock::time_point now = Clock::now();
      if (now >= deadline) break;
      if (o_.max > 0 && total_done.load(std::memory_order_relaxed) >= o_.max) break;
      if (now >= next_scan) {
        next_scan = now + std::chrono::milliseconds(100);
        for (Conn& c : conns_) {
          if (c.fd < 0) {
            Start(&c);  // its socket or connect failed at once: try again
          } else if (now - c.last_progress > timeout) {
            ++stats_->err_timeout;
            Restart(&c);
          }
        }
      }
    }
    stop_all.store(true, std::memory_order_relaxed);
    for (Conn& c : conns_) {
      Close(&c);
      if (c.session != nullptr) SSL_SESSION_free(c.session);
      c.session = nullptr;
    }
    close(ep_);
  }

 private:
  void Close(Conn* c) {
    if (c->ssl != nullptr) SSL_free(c->ssl);
    c->ssl = nullptr;
    if (c->fd >= 0) close(c->fd);  // closing drops it from the epoll set
    c->fd = -1;
  }

  void Restart(Conn* c) {
    Close(c);
    Start(c);
  }

  void Start(Conn* c) {
    c->phase = Phase::kConnecting;
    c->head.clear();
    c->head_done = false;
    c->status = 0;
    c->content_length = -1;
    c->body = 0;
    c->started = c->last_progress = Clock::now();
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
      ++stats_->err_connect;
      return;  // the next scan tries again
    }
    const int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = c;
    epoll_ctl(ep_, EPOLL_CTL_ADD, c->fd, &ev);
    if (connect(c->fd, reinterpret_cast<const sockaddr*>(&addr_), sizeof(addr_)) != 0 &&
        errno != EINPROGRESS) {
      ++stats_->err_connect;
      Close(c);
    }
  }

  void Fail(Conn* c, uint64_t* counter) {
    ++*counter;
    Restart(c);
  }

  void Finished(Conn* c) {
    const bool complete = c->head_done && (c->content_length < 0 || c->body >= c->content_length);
    if (!complete) {
      Fail(c, &stats_->err_io);
      return;
    }
    if (c->status < 200 || c->status > 299) {
      Fail(c, &stats_->err_status);
      return;
    }
    // The exchange ended cleanly: OpenSSL must not take the session for a failed one (SSL_free
    // after an unclean end makes it unresumable). Nothing more is sent: the server has closed.
    SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    ++stats_->done;
    total_done.fetch_add(1, std::memory_order_relaxed);
    const auto us =
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - c->started).count();
    if (stats_->cycle_us.size() < 20'000'000) stats_->cycle_us.push_back(static_cast<uint32_t>(us));
    Restart(c);
  }

  // Takes response bytes: the head (status, Content-Length), then counts the body.
  void Take(Conn* c, const char* p, size_t n) {
    if (!c->head_done) {
      c->head.append(p, n);
      const size_t end = c->head.find("\r\n\r\n");
      if (end == std::string::npos) return;
      c->head_done = true;
      if (c->head.size() > 12 && c->head.compare(0, 5, "HTTP/") == 0) {
        c->status = std::atoi(c->head.c_str() + 9);
      }
      std::string lower = c->head.substr(0, end + 2);
      for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      const size_t cl = lower.find("\r\ncontent-length:");
      if (cl != std::string::npos) c->content_length = std::atoll(lower.c_str() + cl + 17);
      c->body = static_cast<int64_t>(c->head.size() - (end + 4));
      return;
    }
    c->body += static_cast<int64_t>(n);
  }

  void Drive(Conn* c) {
    if (c->fd < 0) return;
    for (;;) {
      switch (c->phase) {
        case Phase::kConnecting: {
          int err = 0;
          socklen_t len = sizeof(err);
          if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == EINPROGRESS) {
            return;
          }
          if (err != 0) return Fail(c, &stats_->err_connect);
          // The socket may not be writable yet (EPOLLIN from a refusal is handled above).
          c->ssl = SSL_new(ctx_);
          SSL_set_ex_data(c->ssl, conn_index, c);
          SSL_set_fd(c->ssl, c->fd);
          SSL_set_connect_state(c->ssl);
          SSL_set_tlsext_host_name(c->ssl, o_.sni.c_str());
          if (c->resume && c->session != nullptr) SSL_set_session(c->ssl, c->session);
          c->phase = Phase::kHandshake;
          c->last_progress = Clock::now();
          break;
        }
        case Phase::kHandshake: {
          ERR_clear_error();
          const int r = SSL_do_handshake(c->ssl);
          if (r != 1) {
            const int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            return Fail(c, &stats_->err_handshake);
          }
          if (SSL_session_reused(c->ssl)) {
            ++stats_->resumed;
          } else {
            ++stats_->full;
          }
          NoteFirst(c->ssl);
          c->phase = Phase::kWrite;
          c->last_progress = Clock::now();
          break;
        }
        case Phase::kWrite: {
          ERR_clear_error();
          const int r = SSL_write(c->ssl, request_.data(), static_cast<int>(request_.size()));
          if (r <= 0) {
            const int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
            return Fail(c, &stats_->err_io);
          }
          c->phase = Phase::kRead;
          c->last_progress = Clock::now();
          break;
        }
        case Phase::kRead: {
          char buf[16384];
          ERR_clear_error();
          const int r = SSL_read(c->ssl, buf, sizeof(buf));
          if (r > 0) {
            Take(c, buf, static_cast<size_t>(r));
            c->last_progress = Clock::now();
            break;
          }
          const int e = SSL_get_error(c->ssl, r);
          if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return;
          if (e == SSL_ERROR_ZERO_RETURN) return Finished(c);  // close_notify, or EOF (see ctx)
          return Fail(c, &stats_->err_io);
        }
      }
    }
  }

  static void NoteFirst(SSL* ssl) {
    std::lock_guard<std::mutex> lock(first_mu);
    if (!first_version.empty()) return;
    first_version = SSL_get_version(ssl);
    first_cipher = SSL_get_cipher_name(ssl);
    const int nid = SSL_get_negotiated_group(ssl);
    const char* name = nid == 0 ? nullptr : OBJ_nid2sn(nid & ~TLSEXT_nid_unknown);
    first_group = name != nullptr ? name : std::to_string(nid);
  }

  const Options& o_;
  SSL_CTX* ctx_;
  sockaddr_in addr_;
  std::vector<Conn> conns_;
  Stats* stats_;
  std::string request_;
  int ep_ = -1;
};

uint32_t Percentile(std::vector<uint32_t>& v, double p) {
  if (v.empty()) return 0;
  const size_t at = std::min(v.size() - 1, static_cast<size_t>(p / 100.0 * v.size()));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(at), v.end());
  return v[at];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return 2;
  signal(SIGPIPE, SIG_IGN);  // a write to a connection the server closed is an error, not death
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
    std::fprintf(stderr, "l7px-tls-load: --host must be an IPv4 address\n");
    return 2;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return 1;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  // A server that closes without close_notify ends the response too (the head says whether it
  // was complete).
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
  // Tickets reach OnNewSession; OpenSSL's own client cache stays empty.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, OnNewSession);
  static constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof(kAlpn));
  conn_index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);

  std::vector<Stats> stats(static_cast<size_t>(o.threads));
  std::vector<std::thread> threads;
  const Clock::time_point t0 = Clock::now();
  const Clock::time_point deadline =
      t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration));
  for (int t = 0; t < o.threads; ++t) {
    const int n = o.conns / o.threads + (t < o.conns % o.threads ? 1 : 0);
    threads.emplace_back([&, t, n] {
      Loop loop(o, ctx, addr, n, &stats[static_cast<size_t>(t)]);
      loop.Run(deadline);
    });
  }
  for (std::thread& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();

  Stats sum;
  for (Stats& s : stats) {
    sum.done += s.done;
    sum.full += s.full;
    sum.resumed += s.resumed;
    sum.tickets += s.tickets;
    sum.err_connect += s.err_connect;
    sum.err_handshake += s.err_handshake;
    sum.err_io += s.err_io;
    sum.err_status += s.err_status;
    sum.err_timeout += s.err_timeout;
    sum.cycle_us.insert(sum.cycle_us.end(), s.cycle_us.begin(), s.cycle_us.end());
  }
  const uint64_t handshakes = sum.full + sum.resumed;
  std::printf(
      "{\"conns\":%d,\"threads\":%d,\"resume\":%s,\"seconds\":%.3f,\"done\":%llu,"
      "\"rate\":%.1f,\"handshakes\":%llu,\"full\":%llu,\"resumed\":%llu,\"full_rate\":%.1f,"
      "\"resumed_rate\":%.1f,\"tickets_per_handshake\":%.2f,\"err_connect\":%llu,"
      "\"err_handshake\":%llu,\"err_io\":%llu,\"err_status\":%llu,\"err_timeout\":%llu,"
      "\"p50_us\":%u,\"p99_us\":%u,\"version\":\"%s\",\"cipher\":\"%s\",\"group\":\"%s\"}\n",
      o.conns, o.threads, o.resume ? "true" : "false", seconds,
      static_cast<unsigned long long>(sum.done), sum.done / seconds,
      static_cast<unsigned long long>(handshakes), static_cast<unsigned long long>(sum.full),
      static_cast<unsigned long long>(sum.resumed), sum.full / seconds, sum.resumed / seconds,
      handshakes ? static_cast<double>(sum.tickets) / static_cast<double>(handshakes) : 0.0,
      static_cast<unsigned long long>(sum.err_connect),
      static_cast<unsigned long long>(sum.err_handshake),
      static_cast<unsigned long long>(sum.err_io), static_cast<unsigned long long>(sum.err_status),
      static_cast<unsigned long long>(sum.err_timeout), Percentile(sum.cycle_us, 50),
      Percentile(sum.cycle_us, 99), first_version.c_str(), first_cipher.c_str(),
      first_group.c_str());
  SSL_CTX_free(ctx);
  return sum.done > 0 ? 0 : 1;
}
