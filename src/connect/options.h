#pragma once

// The command line of `l7px connect` (see kConnectUsage), read into ConnectOptions.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "base/log.h"
#include "connect/net.h"

namespace l7px::connect {

struct ConnectOptions {
  std::vector<Endpoint> proxies;  // register listeners of every l7px to register with
  std::string pool;               // empty: the proxy's register.default_pool
  int slots = 0;                  // per proxy; also the bound on requests at the service
  std::string token;              // --token, else $L7PX_TOKEN
  Endpoint to;                    // the local service
  std::string service_id;         // L7px-Service; default connect-<hostname>-<pid>
  std::chrono::milliseconds grace{10000};
  LogLevel log_level = LogLevel::kInfo;
  bool help = false;  // --help: print kConnectUsage, exit 0
};

inline constexpr int kMaxSlots = 4096;

extern const char kConnectUsage[];

// Reads `args` (what follows "connect"). `env_token` is $L7PX_TOKEN (null when unset).
// InvalidArgument with a message naming the flag for an unknown flag, a missing value or a
// value out of range, a missing --proxy, --slots or --to, or an address that does not parse.
absl::StatusOr<ConnectOptions> ParseConnectOptions(const std::vector<std::string_view>& args,
                                                   const char* env_token);

// "250ms", "10s", "2m", or plain seconds ("10"); false on anything else (negative included).
bool ParseDuration(std::string_view text, std::chrono::milliseconds* out);

}  // namespace l7px::connect
