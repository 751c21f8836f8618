#include "connect/options.h"

#include <unistd.h>

#include <charconv>
#include <cstring>

namespace l7px::connect {

const char kConnectUsage[] =
    "usage: l7px connect --proxy ADDR[,ADDR...] --slots N --to ADDR [--pool NAME]\n"
    "                    [--token T] [--service ID] [--grace DURATION] [--log-level LEVEL]\n"
    "\n"
    "Runs beside a service that only listens and registers N slots with every l7px named,\n"
    "dialing out (the service's host needs no inbound port): each request l7px writes on a\n"
    "slot is forwarded to the service over keep-alive connections, at most N at once in all,\n"
    "and the response streamed back. Registers only while the service answers.\n"
    "\n"
    "  --proxy ADDR[,ADDR]  register.listen address of each l7px (HOST:PORT, [v6]:PORT or\n"
    "                       unix:/path); may be repeated\n"
    "  --slots N            slots per proxy, and the most requests at the service at once\n"
    "  --to ADDR            the local service (HOST:PORT, [v6]:PORT or unix:/path)\n"
    "  --pool NAME          pool to register in (default: the proxy's register.default_pool)\n"
    "  --token T            the pool's token (or set L7PX_TOKEN, which keeps it off the\n"
    "                       command line)\n"
    "  --service ID         L7px-Service id shown in l7px's stats (default\n"
    "                       connect-<hostname>-<pid>)\n"
    "  --grace DURATION     on SIGTERM/SIGINT, how long requests in flight may take (default 10s)\n"
    "  --log-level LEVEL    debug|info|warn|error (default info)\n"
    "  -h, --help           this text\n";

bool ParseDuration(std::string_view text, std::chrono::milliseconds* out) {
  uint64_t n = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc() || ptr == text.data()) return false;
  const std::string_view unit(ptr, static_cast<size_t>(end - ptr));
  uint64_t ms_per = 0;
  if (unit == "ms") {
    ms_per = 1;
  } else if (unit.empty() || unit == "s") {
    ms_per = 1000;
  } else if (unit == "m") {
    ms_per = 60'000;
  } else {
    return false;
  }
  if (n > (uint64_t{1} << 40) / ms_per) return false;
  *out = std::chrono::milliseconds(static_cast<int64_t>(n * ms_per));
  return true;
}

namespace {

std::string DefaultServiceId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') std::strcpy(host, "host");
  return "connect-" + std::string(host) + "-" + std::to_string(getpid());
}

absl::Status Bad(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

// A header value l7px would take: visible ASCII and spaces, not empty.
bool HeaderSafe(std::string_view v) {
  if (v.empty()) return false;
  for (char c : v) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<ConnectOptions> ParseConnectOptions(const std::vector<std::string_view>& args,
                                                   const char* env_token) {
  ConnectOptions o;
  bool have_to = false, have_token = false;
  static constexpr std::string_view kFlags[] = {"--proxy", "--pool",    "--slots", "--token",
                                                "--to",    "--service", "--grace", "--log-level"};
  bool seen[std::size(kFlags)] = {};
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view flag = args[i];
    std::string_view value;
    bool has_value = false;
    if (flag == "-h" || flag == "--help") {
      o.help = true;
      return o;
    }
    if (!flag.starts_with("--")) return Bad("unexpected argument \"" + std::string(flag) + "\"");
    if (const size_t eq = flag.find('='); eq != std::string_view::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    size_t known = std::size(kFlags);
    for (size_t k = 0; k < std::size(kFlags); ++k) {
      if (kFlags[k] == flag) known = k;
    }
    if (known == std::size(kFlags)) return Bad("unknown flag " + std::string(flag));
    // Only --proxy adds up; any other flag given twice is a mistake, not "the last one wins".
    if (flag != "--proxy" && seen[known]) return Bad(std::string(flag) + " is given twice");
    seen[known] = true;
    if (!has_value) {
      if (i + 1 >= args.size()) return Bad(std::string(flag) + " needs a value");
      value = args[++i];
    }
    if (flag == "--proxy") {
      size_t start = 0;
      while (start <= value.size()) {
        size_t comma = value.find(',', start);
        if (comma == std::string_view::npos) comma = value.size();
        const std::string_view one = value.substr(start, comma - start);
        if (one.empty()) return Bad("--proxy: empty address in \"" + std::string(value) + "\"");
        absl::StatusOr<Endpoint> ep = ParseEndpoint(one);
        if (!ep.ok()) return Bad("--proxy: " + std::string(ep.status().message()));
        o.proxies.push_back(std::move(*ep));
        start = comma + 1;
      }
    } else if (flag == "--to") {
      absl::StatusOr<Endpoint> ep = ParseEndpoint(value);
      if (!ep.ok()) return Bad("--to: " + std::string(ep.status().message()));
      o.to = std::move(*ep);
      have_to = true;
    } else if (flag == "--slots") {
      int n = 0;
      const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || ptr != value.data() + value.size() || n < 1 || n > kMaxSlots) {
        return Bad("--slots: \"" + std::string(value) + "\" is not a number from 1 to " +
                   std::to_string(kMaxSlots));
      }
      o.slots = n;
    } else if (flag == "--pool") {
      if (!HeaderSafe(value)) return Bad("--pool: not a valid pool name");
      o.pool = std::string(value);
    } else if (flag == "--token") {
      if (!HeaderSafe(value)) return Bad("--token: empty or has control characters");
      o.token = std::string(value);
      have_token = true;
    } else if (flag == "--service") {
      if (!HeaderSafe(value)) return Bad("--service: empty or has control characters");
      o.service_id = std::string(value);
    } else if (flag == "--grace") {
      if (!ParseDuration(value, &o.grace)) {
        return Bad("--grace: \"" + std::string(value) + "\" is not a duration (e.g. 10s, 500ms)");
      }
    } else if (flag == "--log-level") {
      if (!ParseLogLevel(value, &o.log_level)) {
        return Bad("--log-level: \"" + std::string(value) + "\" is not debug|info|warn|error");
      }
    }
  }
  if (o.proxies.empty()) return Bad("--proxy is required");
  if (o.slots == 0) return Bad("--slots is required");
  if (!have_to) return Bad("--to is required");
  if (!have_token && env_token != nullptr && env_token[0] != '\0') {
    if (!HeaderSafe(env_token)) return Bad("L7PX_TOKEN has control characters");
    o.token = env_token;
  }
  if (o.service_id.empty()) o.service_id = DefaultServiceId();
  return o;
}

}  // namespace l7px::connect
