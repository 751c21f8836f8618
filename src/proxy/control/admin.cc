#include "proxy/control/admin.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <list>

#include "absl/strings/numbers.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/strict_json.h"
#include "base/strings.h"
#include "base/thread_name.h"
#include "config/route_json.h"
#include "fmt/format.h"
#include "http/parser.h"
#include "http/rewrite.h"
#include "http/status_text.h"
#include "io/socket.h"

namespace l7px::proxy {
namespace {

constexpr size_t kMaxConnections = 64;
constexpr size_t kHeadBytes = 16 * 1024;
constexpr size_t kMaxBody = 64 * 1024;
constexpr int64_t kIdleTimeoutNs = 30'000'000'000;

// A one-member object, one line: {"error":"..."}, {"deleted":7}, ...
std::string OneMemberJson(std::string_view key, Json value) {
  Json json = Json::object();
  json[std::string(key)] = std::move(value);
  return DumpJson(json) + "\n";
}

std::string ErrorJson(std::string_view message) { return OneMemberJson("error", Json(message)); }

}  // namespace

struct AdminServer::Connection {
  explicit Connection(UniqueFd f)
      : fd(std::move(f)),
        parser(http::Parser::Kind::kRequest,
               http::Parser::Limits{kHeadBytes, kHeadBytes, kMaxBody}) {
    parser.Begin(head);
  }
  UniqueFd fd;
  http::Parser parser;
  char head[kHeadBytes + 1];
  size_t head_len = 0;   // bytes received into `head`
  size_t head_scan = 0;  // ... of which the parser consumed
  std::string body;
  std::string pending;  // bytes after the head not parsed yet (pipelining)
  std::string out;
  size_t out_off = 0;
  bool close_after = false;
  bool request_done = false;
  int64_t last_active_ns = 0;
};

AdminServer::AdminServer(ControlPlane* control, AdminViews views, UniqueFd listener,
                         std::string token)
    : control_(control),
      views_(std::move(views)),
      token_(std::move(token)),
      listener_(std::move(listener)) {}

AdminServer::~AdminServer() { Stop(); }

absl::Status AdminServer::Start() {
  thread_ = std::thread([this] {
    NameThisThread("l7px-admin");
    Run();
  });
  return absl::OkStatus();
}

void AdminServer::Stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void AdminServer::Run() {
  std::list<Connection> conns;
  std::vector<pollfd> fds;
  std::vector<Connection*> order;
  char buf[16384];
  while (!stop_.load()) {
    control_->Tick();
    fds.clear();
    order.clear();
    if (listener_ && accepting_.load() && conns.size() < kMaxConnections)
      fds.push_back({listener_.get(), POLLIN, 0});
    const size_t first_conn = fds.size();
    for (Connection& c : conns) {
      const bool writing = c.out_off < c.out.size();
      fds.push_back({c.fd.get(), static_cast<short>(writing ? POLLOUT : POLLIN), 0});
      order.push_back(&c);
    }
    const int n = poll(fds.data(), fds.size(), 200);
    if (n < 0 && errno != EINTR) {
      L7PX_LOG_LIMITED(kError, "admin: poll: {}", strerror(errno));
      continue;
    }
    const int64_t now = MonotonicNanos();
    if (first_conn == 1 && (fds[0].revents & POLLIN)) {
      const int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) {
        conns.emplace_back(UniqueFd(fd));
        conns.back().last_active_ns = now;
      }
    }
    for (size_t i = 0; i < order.size(); ++i) {
      Connection& c = *order[i];
      const short ev = fds[first_conn + i].revents;
      if (ev & POLLOUT) {
        const ssize_t w = send(c.fd.get(), c.out.data() + c.out_off, c.out.size() - c.out_off,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          c.out_off += static_cast<size_t>(w);
          c.last_active_ns = now;
        } else if (w < 0 && errno != EAGAIN) {
          c.close_after = true;
          c.out.clear();
          c.out_off = 0;
        }
        if (c.out_off >= c.out.size()) {
          c.out.clear();
          c.out_off = 0;
          if (!c.close_after && !c.pending.empty()) {
            // Pipelined request already received.
            const size_t take = std::min(c.pending.size(), kHeadBytes);
            c.head_len = c.pending.copy(c.head, take);
            c.pending.erase(0, take);
            HandleRequest(c);
          }
        }
      } else if (ev & (POLLIN | POLLHUP | POLLERR)) {
        const size_t room = kHeadBytes - c.head_len;
        const ssize_t r = recv(c.fd.get(), c.parser.head_done() ? buf : c.head + c.head_len,
                               c.parser.head_done() ? sizeof(buf) : room, MSG_DONTWAIT);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
          c.close_after = true;
          c.out.clear();
        } else if (r > 0) {
          c.last_active_ns = now;
          if (c.parser.head_done()) {
            c.pending.append(buf, static_cast<size_t>(r));
          } else {
            c.head_len += static_cast<size_t>(r);
          }
          HandleRequest(c);
        }
      }
    }
    // Drop finished, failed and idle connections.
    for (auto it = conns.begin(); it != conns.end();) {
      const bool idle = now - it->last_active_ns > kIdleTimeoutNs;
      const bool flushed = it->out_off >= it->out.size();
      if ((it->close_after && flushed) || idle) {
        it = conns.erase(it);
      } else {
        ++it;
      }
    }
  }
}

// Parses what arrived; once a whole request is in, answers it.
void AdminServer::HandleRequest(Connection& c) {
  if (!c.out.empty()) return;  // one request at a time; the rest waits in `pending`
  if (!c.parser.head_done()) {
    const auto r = c.parser.Parse(c.head + c.head_scan, c.head_len - c.head_scan);
    c.head_scan += r.consumed;
    if (r.status == http::Parser::Status::kError) {
      Reply(c, http::StatusForError(c.parser.error()), "application/json",
            ErrorJson(http::ErrorName(c.parser.error())), /*close=*/true);
      return;
    }
    if (r.status == http::Parser::Status::kNeedMore) {
      if (c.head_len >= kHeadBytes) {
        Reply(c, 431, "application/json", ErrorJson("request head too large"), true);
      }
      return;
    }
    // Head done: the bytes after it are body (or the next request).
    c.pending.insert(0, c.head + c.head_scan, c.head_len - c.head_scan);
    c.head_len = c.head_scan;
    c.body.clear();
  }
  // Body bytes (decoded when chunked) from `pending`.
  c.parser.set_decode_body(true);
  std::string input = std::move(c.pending);
  c.pending.clear();
  const auto r = c.parser.Parse(input.data(), input.size());
  if (r.status == http::Parser::Status::kError) {
    Reply(c, http::StatusForError(c.parser.error()), "application/json",
          ErrorJson(http::ErrorName(c.parser.error())), true);
    return;
  }
  c.body.append(input.data(), r.decoded);
  c.pending = input.substr(r.consumed);
  if (r.status != http::Parser::Status::kMessageDone) {
    if (c.body.size() > kMaxBody)
      Reply(c, 413, "application/json", ErrorJson("body too large"), true);
    return;
  }

  const http::MessageHead& h = c.parser.head();
  const std::string_view method = h.Str(h.method_name);
  const std::string_view path = h.Path();
  if (!h.keep_alive) c.close_after = true;

  if (!token_.empty()) {
    const int auth = h.Find("authorization");
    const std::string_view value = auth >= 0 ? h.Value(auth) : std::string_view();
    const std::string_view prefix = "Bearer ";
    if (value.size() <= prefix.size() || !EqualsIgnoreCase(value.substr(0, 7), prefix) ||
        !ConstantTimeEquals(value.substr(prefix.size()), token_)) {
      Reply(c, 401, "application/json", ErrorJson("missing or wrong bearer token"));
      return;
    }
  }

  auto method_not_allowed = [&] {
    Reply(c, 405, "application/json", ErrorJson("method not allowed"));
  };
  if (path == "/healthz") {
    if (method != "GET" && method != "HEAD") return method_not_allowed();
    return Reply(c, 200, "text/plain", "ok\n");
  }
  if (path == "/metrics") {
    if (method != "GET" && method != "HEAD") return method_not_allowed();
    return Reply(c, 200, "text/plain; version=0.0.4", views_.MetricsText());
  }
  if (path == "/stats") {
    if (method != "GET" && method != "HEAD") return method_not_allowed();
    return Reply(c, 200, "application/json", views_.StatsJson());
  }
  if (path == "/pools") {
    if (method != "GET" && method != "HEAD") return method_not_allowed();
    return Reply(c, 200, "application/json", views_.PoolsJson());
  }
  if (path == "/routes") {
    if (method == "GET" || method == "HEAD") {
      return Reply(c, 200, "application/json", views_.RoutesJson(control_->Routes()));
    }
    if (method != "POST") return method_not_allowed();
    auto route = config::RouteFromJsonText(c.body);
    if (!route.ok())
      return Reply(c, 400, "application/json", ErrorJson(ToStd(route.status().message())));
    auto added = control_->AddRoute(std::move(*route));
    if (!added.ok()) {
      const int status = absl::IsNotFound(added.status()) ? 400 : 500;
      return Reply(c, status, "application/json", ErrorJson(ToStd(added.status().message())));
    }
    return Reply(c, 201, "application/json",
                 DumpJson(config::RouteJson(added->id, added->route)) + "\n");
  }
  if (path.substr(0, 8) == "/routes/") {
    if (method != "DELETE") return method_not_allowed();
    uint64_t id = 0;
    if (!absl::SimpleAtoi(ToAbsl(path.substr(8)), &id)) {
      return Reply(c, 400, "application/json", ErrorJson("route id must be a number"));
    }
    if (!control_->DeleteRoute(id)) {
      return Reply(c, 404, "application/json", ErrorJson("no route with that id"));
    }
    return Reply(c, 200, "application/json", OneMemberJson("deleted", id));
  }
  if (path == "/reload") {
    if (method != "POST") return method_not_allowed();
    if (auto s = control_->Reload(); !s.ok()) {
      return Reply(c, 400, "application/json", ErrorJson(ToStd(s.message())));
    }
    return Reply(c, 200, "application/json", "{\"reloaded\":true}\n");
  }
  if (path.substr(0, 7) == "/pools/" && path.size() > 13 &&
      path.substr(path.size() - 6) == "/drain") {
    if (method != "POST") return method_not_allowed();
    const std::string_view name = path.substr(7, path.size() - 13);
    if (auto s = control_->Drain(name); !s.ok()) {
      return Reply(c, 404, "application/json", ErrorJson(ToStd(s.message())));
    }
    return Reply(c, 200, "application/json", OneMemberJson("draining", Json(name)));
  }
  Reply(c, 404, "application/json", ErrorJson("not found"));
}

void AdminServer::Reply(Connection& c, int status, std::string_view content_type, std::string body,
                        bool close) {
  c.close_after |= close;
  const bool head_only = c.parser.head_done() && c.parser.head().is_head_request;
  c.out = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{}"
      "\r\n",
      status, http::ReasonPhrase(status), content_type, body.size(),
      c.close_after ? "Connection: close\r\n" : "");
  if (!head_only) c.out += body;
  c.out_off = 0;
  // Ready for the next request on this connection.
  c.head_len = 0;
  c.head_scan = 0;
  c.parser.Begin(c.head);
  c.body.clear();
}

}  // namespace l7px::proxy
