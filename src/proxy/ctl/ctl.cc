#include "proxy/ctl/ctl.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/address.h"
#include "base/strict_json.h"
#include "base/strings.h"
#include "base/unique_fd.h"
#include "config/config.h"
#include "config/route_json.h"
#include "fmt/format.h"
#include "http/parser.h"

namespace l7px::proxy {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kDefaultAdmin = "127.0.0.1:9901";
constexpr size_t kMaxResponseBytes = 64u << 20;
constexpr uint32_t kMaxHeadBytes = 64u << 10;

constexpr std::string_view kUsage =
    "usage: l7px ctl [--admin ADDR] [--token T] [-c FILE] [--json] COMMAND\n"
    "commands:\n"
    "  stats                       totals and per-pool numbers\n"
    "  pools                       per-pool slots, queue and shed counts\n"
    "  routes                      the route table\n"
    "  route add [--host H] [--path P] [--cidr C]... [--header NAME[=VALUE]] --pool X\n"
    "  route del ID\n"
    "  reload                      re-read the config file\n"
    "  drain POOL                  stop handing requests to POOL's idle slots\n"
    "options:\n"
    "  --admin ADDR   admin endpoint: host:port, [v6]:port or unix:/path (default 127.0.0.1:9901)\n"
    "  --token T      bearer token (default: admin.token of -c FILE, else $L7PX_ADMIN_TOKEN)\n"
    "  -c FILE        take admin.listen and admin.token from this config file\n"
    "  --json         print the admin API's JSON body as is\n";

// ---- HTTP/1.1 client (one request per connection) ----

struct Response {
  int status = 0;
  std::string reason;
  std::string body;
};

std::string Errno(int e) { return std::strerror(e); }

// Waits for `events` on fd until `deadline`; false with *error set on timeout or poll failure.
bool WaitFor(int fd, short events, Clock::time_point deadline, std::string* error) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) {
      *error = "timed out";
      return false;
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 60'000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) {
      *error = Errno(errno);
      return false;
    }
  }
}

class AdminClient {
 public:
  AdminClient(SocketAddress addr, std::string host_header, std::string token,
              std::chrono::milliseconds timeout)
      : addr_(addr),
        host_header_(std::move(host_header)),
        token_(std::move(token)),
        timeout_(timeout) {}

  absl::StatusOr<Response> Call(std::string_view method, std::string_view path,
                                std::string_view body = {}) {
    const Clock::time_point deadline = Clock::now() + timeout_;
    std::string error;
    UniqueFd fd(::socket(addr_.family(), SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return Unavailable("socket", Errno(errno));
    if (::connect(fd.get(), addr_.sockaddr_ptr(), addr_.length()) != 0) {
      if (errno != EINPROGRESS && errno != EAGAIN) return Unavailable("connect", Errno(errno));
      if (!WaitFor(fd.get(), POLLOUT, deadline, &error)) return Unavailable("connect", error);
      int so_error = 0;
      socklen_t len = sizeof(so_error);
      ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &len);
      if (so_error != 0) return Unavailable("connect", Errno(so_error));
    }

    std::string request = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: l7px-ctl\r\n",
                                      method, path, host_header_);
    if (!token_.empty()) request += fmt::format("Authorization: Bearer {}\r\n", token_);
    if (!body.empty() || method == "POST") {
      request +=
          fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n", body.size());
    }
    request += "Connection: close\r\n\r\n";
    request += body;
    size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n =
          ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<size_t>(n);
      } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!WaitFor(fd.get(), POLLOUT, deadline, &error)) return Unavailable("send", error);
      } else {
        return Unavailable("send", Errno(errno));
      }
    }

    return ReadResponse(fd.get(), deadline);
  }

  std::string Describe() const { return addr_.ToString(); }

 private:
  absl::Status Unavailable(std::string_view what, std::string_view why) const {
    return absl::UnavailableError(
        fmt::format("cannot reach admin at {} ({}: {})", addr_.ToString(), what, why));
  }
  absl::Status Protocol(std::string_view why) const {
    return absl::UnavailableError(
        fmt::format("bad answer from admin at {}: {}", addr_.ToString(), why));
  }

  // Reads one response with l7px's own parser (http/parser.h, as for service responses): the
  // head into a buffer of its own, where the parser keeps its spans, then the body, de-chunked
  // in place and appended to the response.
  absl::StatusOr<Response> ReadResponse(int fd, Clock::time_point deadline) const {
    using Status = http::Parser::Status;
    http::Parser parser(http::Parser::Kind::kResponse,
                        http::Parser::Limits{kMaxHeadBytes, kMaxHeadBytes});
    std::vector<char> head(kMaxHeadBytes);  // the parser fails before it is full
    size_t head_len = 0;                    // bytes received into `head`
    size_t head_scan = 0;                   // ... of which the parser consumed
    parser.Begin(head.data());
    parser.set_decode_body(true);
    Response response;
    char buf[16384];
    std::string error;
    for (;;) {
      char* const in = parser.head_done() ? buf : head.data() + head_len;
      const size_t room = parser.head_done() ? sizeof(buf) : head.size() - head_len;
      const ssize_t n = ::recv(fd, in, room, 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        if (!WaitFor(fd, POLLIN, deadline, &error)) return Unavailable("receive", error);
        continue;
      }
      if (n < 0) return Unavailable("receive", Errno(errno));
      http::Parser::Result r;
      if (n == 0) {  // the admin closed the connection: the end of an until-close body
        r = parser.Finish();
        if (r.status != Status::kMessageDone) {
          return Protocol(parser.head_done() ? "connection closed before the end of the body"
                                             : "connection closed before a complete response");
        }
      } else if (parser.head_done()) {
        r = parser.Parse(buf, static_cast<size_t>(n));
        if (r.status != Status::kError) response.body.append(buf, r.decoded);
      } else {
        head_len += static_cast<size_t>(n);
        r = parser.Parse(head.data() + head_scan, head_len - head_scan);
        head_scan += r.consumed;
        if (r.status == Status::kHeadDone) {  // what follows the head starts the body
          r = parser.Parse(head.data() + head_scan, head_len - head_scan);
          if (r.status != Status::kError) response.body.append(head.data() + head_scan, r.decoded);
        }
      }
      if (r.status == Status::kError) {
        if (!parser.head_done()) return Protocol("malformed response head");
        return Protocol(parser.head().framing == http::Framing::kChunked ? "malformed chunked body"
                                                                         : "malformed body");
      }
      if (response.body.size() > kMaxResponseBytes) return Protocol("response too large");
      if (r.status == Status::kMessageDone) break;
    }
    const http::MessageHead& h = parser.head();
    response.status = h.status;
    response.reason = std::string(TrimOws(h.Str(h.reason)));
    return response;
  }

  SocketAddress addr_;
  std::string host_header_;
  std::string token_;
  std::chrono::milliseconds timeout_;
};

// ---- Tables ----

class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

  void Render(std::string* out) const {
    std::vector<size_t> width;
    for (const auto& row : rows_) {
      if (width.size() < row.size()) width.resize(row.size(), 0);
      for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
    }
    for (const auto& row : rows_) {
      std::string line;
      for (size_t i = 0; i < row.size(); ++i) {
        line += row[i];
        if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
      }
      out->append(line);
      out->push_back('\n');
    }
  }

 private:
  std::vector<std::vector<std::string>> rows_;
};

// A JSON scalar as a table cell ("-" when absent).
std::string Cell(const Json* v) {
  if (v == nullptr || v->is_null()) return "-";
  if (const bool* b = v->get_ptr<const bool*>()) return *b ? "true" : "false";
  if (const std::optional<int64_t> i = JsonInt64(v)) return std::to_string(*i);
  if (const uint64_t* u = v->get_ptr<const uint64_t*>()) return std::to_string(*u);
  if (const double* d = v->get_ptr<const double*>()) {
    constexpr double kExact = 9007199254740992.0;  // 2^53: integral doubles print as integers
    if (*d == std::trunc(*d) && std::abs(*d) <= kExact) {
      return std::to_string(static_cast<int64_t>(*d));
    }
    return fmt::format("{}", *d);
  }
  if (const std::string* s = v->get_ptr<const std::string*>()) return s->empty() ? "\"\"" : *s;
  return DumpJson(*v);
}

// {"a": 1, "b": 2} as "a=1,b=2"; a scalar as itself; "-" when empty.
std::string JoinedCell(const Json* v, std::string_view sep) {
  const Json::object_t* members = v == nullptr ? nullptr : v->get_ptr<const Json::object_t*>();
  if (members == nullptr) return Cell(v);
  if (members->empty()) return "-";
  std::string s;
  for (const auto& [key, value] : *members) {
    if (!s.empty()) s += ",";
    s += fmt::format("{}{}{}", key, sep, Cell(&value));
  }
  return s;
}

bool RenderPools(const Json& pools, std::string* out) {
  const Json::array_t* list = pools.get_ptr<const Json::array_t*>();
  if (list == nullptr) return false;
  Table t(
      {"NAME", "REGISTERED", "IDLE", "BUSY", "WAITING", "TUNNELS", "SERVED", "SHED", "SERVICES"});
  for (const Json& p : *list) {
    t.Add({Cell(FindMember(p, "name")), Cell(FindMember(p, "registered")),
           Cell(FindMember(p, "idle")), Cell(FindMember(p, "busy")), Cell(FindMember(p, "waiting")),
           Cell(FindMember(p, "tunnels")), Cell(FindMember(p, "served")),
           JoinedCell(FindMember(p, "shed"), "="), JoinedCell(FindMember(p, "services"), ":")});
  }
  t.Render(out);
  // Each pool's instances, when any is listed (docs/operating.md, "Pools that stay healthy").
  Table instances({"POOL", "INSTANCE", "STATE", "SLOTS", "FAILURES", "EJECTIONS", "EJECTED_UNTIL"});
  bool any = false;
  for (const Json& p : *list) {
    const Json* members = FindMember(p, "instances");
    const Json::array_t* items = members ? members->get_ptr<const Json::array_t*>() : nullptr;
    if (items == nullptr) continue;
    for (const Json& in : *items) {
      any = true;
      instances.Add({Cell(FindMember(p, "name")), Cell(FindMember(in, "id")),
                     Cell(FindMember(in, "state")), Cell(FindMember(in, "slots")),
                     Cell(FindMember(in, "consecutive_failures")),
                     Cell(FindMember(in, "ejections")), Cell(FindMember(in, "ejected_until"))});
    }
  }
  if (any) {
    out->append("\n");
    instances.Render(out);
  }
  return true;
}

bool RenderRoutes(const std::vector<const Json*>& routes, std::string* out) {
  Table t({"ID", "HOST", "PATH", "CIDR", "HEADER", "POOL"});
  for (const Json* r : routes) {
    if (!r->is_object()) return false;
    std::string cidrs;
    const Json* list = FindMember(*r, "client_cidr");
    if (const Json::array_t* items = list ? list->get_ptr<const Json::array_t*>() : nullptr) {
      for (const Json& c : *items) {
        if (!cidrs.empty()) cidrs += ",";
        cidrs += Cell(&c);
      }
    }
    std::string header = "-";
    if (const Json* h = FindMember(*r, "header"); h != nullptr && h->is_object()) {
      header = Cell(FindMember(*h, "name"));
      const Json* value = FindMember(*h, "value");
      if (const std::string* text = value ? value->get_ptr<const std::string*>() : nullptr) {
        header += "=" + *text;
      }
    }
    t.Add({Cell(FindMember(*r, "id")), Cell(FindMember(*r, "host")), Cell(FindMember(*r, "path")),
           cidrs.empty() ? "-" : cidrs, header, Cell(FindMember(*r, "pool"))});
  }
  t.Render(out);
  return true;
}

// ---- Command line ----

struct Args {
  std::vector<std::string> words;
  std::optional<std::string> admin, token, config_file;
  bool json = false;
  bool help = false;
  // route add
  std::optional<std::string> host, path, pool, header;
  std::vector<std::string> cidrs;
  bool any_route_option = false;
};

// Returns an error message for a usage error, "" when fine.
std::string ParseArgs(const std::vector<std::string>& args, Args* a) {
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    if (options_done || arg.empty() || arg[0] != '-' || arg == "-") {
      a->words.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "--json") {
      a->json = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      a->help = true;
      continue;
    }
    std::optional<std::string> inline_value;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      inline_value = arg.substr(eq + 1);
      arg.resize(eq);
    }
    const auto value = [&]() -> std::optional<std::string> {
      if (inline_value) return inline_value;
      if (i + 1 >= args.size()) return std::nullopt;
      return args[++i];
    };
    std::optional<std::string>* slot = nullptr;
    bool route_option = false;
    if (arg == "--admin") {
      slot = &a->admin;
    } else if (arg == "--token") {
      slot = &a->token;
    } else if (arg == "-c" || arg == "--config") {
      slot = &a->config_file;
    } else if (arg == "--host") {
      slot = &a->host;
      route_option = true;
    } else if (arg == "--path") {
      slot = &a->path;
      route_option = true;
    } else if (arg == "--pool") {
      slot = &a->pool;
      route_option = true;
    } else if (arg == "--header") {
      slot = &a->header;
      route_option = true;
    } else if (arg == "--cidr") {
      route_option = true;
    } else {
      return fmt::format("unknown option {}", arg);
    }
    std::optional<std::string> v = value();
    if (!v) return fmt::format("{} needs a value", arg);
    a->any_route_option |= route_option;
    if (slot == nullptr) {
      a->cidrs.push_back(*v);
    } else {
      *slot = *v;
    }
  }
  return "";
}

bool ParseId(std::string_view text, uint64_t* id) {
  const auto r = std::from_chars(text.data(), text.data() + text.size(), *id);
  return !text.empty() && r.ec == std::errc() && r.ptr == text.data() + text.size() && *id > 0;
}

bool IsPoolNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

class Ctl {
 public:
  Ctl(const CtlOptions& options, std::string* out, std::string* err)
      : options_(options), out_(out), err_(err) {}

  int Run(const std::vector<std::string>& argv) {
    Args a;
    if (std::string e = ParseArgs(argv, &a); !e.empty()) return Usage(e);
    if (a.help) {
      out_->append(kUsage);
      return 0;
    }
    if (a.words.empty()) return Usage("missing command");
    const std::string& cmd = a.words[0];
    const bool is_route_add = cmd == "route" && a.words.size() >= 2 && a.words[1] == "add";
    if (a.any_route_option && !is_route_add) {
      return Usage("--host, --path, --cidr, --header and --pool go with 'route add'");
    }

    // Validate the whole command line before touching the network.
    std::string method = "GET";
    std::string path;
    std::string body;
    if (cmd == "stats" || cmd == "pools" || cmd == "routes") {
      if (a.words.size() != 1) return Usage(fmt::format("'{}' takes no arguments", cmd));
      path = "/" + cmd;
    } else if (cmd == "reload") {
      if (a.words.size() != 1) return Usage("'reload' takes no arguments");
      method = "POST";
      path = "/reload";
    } else if (cmd == "drain") {
      if (a.words.size() != 2) return Usage("usage: drain POOL");
      const std::string& pool = a.words[1];
      if (pool.empty() || !std::all_of(pool.begin(), pool.end(), IsPoolNameChar)) {
        return Usage(fmt::format("bad pool name \"{}\"", pool));
      }
      method = "POST";
      path = "/pools/" + pool + "/drain";
    } else if (cmd == "route") {
      if (a.words.size() < 2) return Usage("usage: route add ... | route del ID");
      if (a.words[1] == "del") {
        uint64_t id = 0;
        if (a.words.size() != 3 || !ParseId(a.words[2], &id)) {
          return Usage("usage: route del ID (a positive integer)");
        }
        method = "DELETE";
        path = fmt::format("/routes/{}", id);
      } else if (a.words[1] == "add") {
        if (a.words.size() != 2) return Usage("'route add' takes options only");
        std::string e = RouteBody(a, &body);
        if (!e.empty()) return Usage(e);
        method = "POST";
        path = "/routes";
      } else {
        return Usage(fmt::format("unknown route command \"{}\"", a.words[1]));
      }
    } else {
      return Usage(fmt::format("unknown command \"{}\"", cmd));
    }

    if (a.admin) {
      if (absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(*a.admin); !addr.ok()) {
        return Usage(fmt::format("bad --admin address \"{}\": {}", *a.admin,
                                 ToStd(addr.status().message())));
      }
    }
    if (a.token && a.token->find_first_of("\r\n") != std::string::npos) {
      return Usage("--token must not contain line breaks");
    }

    absl::StatusOr<AdminClient> client = MakeClient(a);
    if (!client.ok()) return Fail(client.status().message());
    absl::StatusOr<Response> response = client->Call(method, path, body);
    if (!response.ok()) return Fail(response.status().message());
    if (response->status < 200 || response->status > 299) {
      std::string shown = response->body;
      while (!shown.empty() && (shown.back() == '\n' || shown.back() == '\r')) shown.pop_back();
      err_->append(fmt::format("l7px ctl: {} {}: admin answered {} {}{}{}\n", method, path,
                               response->status, response->reason, shown.empty() ? "" : ": ",
                               shown));
      return 1;
    }
    if (a.json) {
      out_->append(response->body);
      return 0;
    }
    return Render(a, *response);
  }

 private:
  int Usage(std::string_view message) {
    err_->append(fmt::format("l7px ctl: {}\n{}", message, kUsage));
    return 2;
  }

  int Fail(absl::string_view message) {
    err_->append(fmt::format("l7px ctl: {}\n", ToStd(message)));
    return 1;
  }

  // Builds and checks (with the server's own rules) the POST /routes body.
  static std::string RouteBody(const Args& a, std::string* body) {
    if (!a.pool) return "'route add' needs --pool";
    Json json = Json::object();
    if (a.host) json["host"] = *a.host;
    if (a.path) json["path"] = *a.path;
    if (!a.cidrs.empty()) json["client_cidr"] = a.cidrs;
    if (a.header) {
      const size_t eq = a.header->find('=');
      Json header = Json::object();
      header["name"] = a.header->substr(0, eq);
      if (eq != std::string::npos) header["value"] = a.header->substr(eq + 1);
      json["header"] = std::move(header);
    }
    json["pool"] = *a.pool;
    *body = DumpJson(json);
    absl::StatusOr<config::Route> route = config::RouteFromJsonText(*body);
    if (!route.ok()) return std::string(ToStd(route.status().message()));
    return "";
  }

  absl::StatusOr<AdminClient> MakeClient(const Args& a) {
    std::string admin(kDefaultAdmin);
    std::string token = options_.env_token;
    if (a.config_file) {
      absl::StatusOr<config::Config> cfg = config::LoadFile(*a.config_file);
      if (!cfg.ok()) return cfg.status();
      if (!a.admin) {
        if (!cfg->admin.listen) {
          return absl::FailedPreconditionError(
              fmt::format("{}: the admin API is disabled (admin.listen = \"\")", *a.config_file));
        }
        admin = cfg->admin.listen->ToString();
      }
      if (!cfg->admin.token.empty()) token = cfg->admin.token;
    }
    if (a.admin) admin = *a.admin;
    if (a.token) token = *a.token;
    if (token.find_first_of("\r\n") != std::string::npos) {
      return absl::InvalidArgumentError("the token must not contain line breaks");
    }
    absl::StatusOr<SocketAddress> addr = SocketAddress::Parse(admin);
    if (!addr.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("bad admin address \"{}\": {}", admin, ToStd(addr.status().message())));
    }
    std::string host_header = addr->is_unix() ? "localhost" : admin;
    return AdminClient(*addr, std::move(host_header), std::move(token), options_.timeout);
  }

  int Render(const Args& a, const Response& response) {
    const std::string& cmd = a.words[0];
    absl::StatusOr<Json> json = ParseJson(response.body);
    if (!json.ok()) {
      return Fail(fmt::format("admin answered {} with a body that is not JSON: {}", response.status,
                              ToStd(json.status().message())));
    }
    const auto bad_shape = [&] {
      return Fail(fmt::format("unexpected answer from admin: {}", response.body));
    };
    if (cmd == "stats") {
      Table totals({"workers", Cell(FindMember(*json, "workers"))});
      totals.Add({"client_connections", Cell(FindMember(*json, "client_connections"))});
      totals.Add({"requests", Cell(FindMember(*json, "requests"))});
      totals.Render(out_);
      out_->push_back('\n');
      const Json* pools = FindMember(*json, "pools");
      if (pools == nullptr || !RenderPools(*pools, out_)) return bad_shape();
    } else if (cmd == "pools") {
      const Json* pools = FindMember(*json, "pools");
      if (pools == nullptr || !RenderPools(*pools, out_)) return bad_shape();
    } else if (cmd == "routes") {
      const Json* routes = FindMember(*json, "routes");
      const Json::array_t* items = routes ? routes->get_ptr<const Json::array_t*>() : nullptr;
      if (items == nullptr) return bad_shape();
      std::vector<const Json*> list;
      for (const Json& r : *items) list.push_back(&r);
      if (!RenderRoutes(list, out_)) return bad_shape();
    } else if (cmd == "route" && a.words[1] == "add") {
      if (!json->is_object()) return bad_shape();
      out_->append(fmt::format("added route {}\n", Cell(FindMember(*json, "id"))));
      RenderRoutes({&*json}, out_);
    } else if (cmd == "route") {
      out_->append(fmt::format("deleted route {}\n", Cell(FindMember(*json, "deleted"))));
    } else if (cmd == "reload") {
      out_->append("reloaded\n");
    } else if (cmd == "drain") {
      out_->append(fmt::format("draining pool {}\n", Cell(FindMember(*json, "draining"))));
    }
    return 0;
  }

  const CtlOptions& options_;
  std::string* out_;
  std::string* err_;
};

void WriteAll(std::FILE* f, const std::string& s) {
  if (!s.empty()) std::fwrite(s.data(), 1, s.size(), f);
  std::fflush(f);
}

}  // namespace

int RunCtl(const std::vector<std::string>& args, const CtlOptions& options, std::string* out,
           std::string* err) {
  return Ctl(options, out, err).Run(args);
}

int RunCtl(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  CtlOptions options;
  if (const char* token = std::getenv("L7PX_ADMIN_TOKEN")) options.env_token = token;
  std::string out;
  std::string err;
  const int rc = RunCtl(args, options, &out, &err);
  WriteAll(stdout, out);
  WriteAll(stderr, err);
  return rc;
}

}  // namespace l7px::proxy
