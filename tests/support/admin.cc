#include "support/admin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "support/net.h"
#include "support/process.h"

namespace l7px::testing {
namespace {}  // namespace

CommandResult RunCtl(uint16_t admin_port, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {L7PX_BINARY, "ctl", "--admin",
                                   "127.0.0.1:" + std::to_string(admin_port)};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

AdminResponse AdminCall(uint16_t admin_port, const std::string& method, const std::string& path,
                        const std::string& body, const std::string& token,
                        const std::string& authorization) {
  std::string request = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!authorization.empty()) {
    request += "Authorization: " + authorization + "\r\n";
  } else if (!token.empty()) {
    request += "Authorization: Bearer " + token + "\r\n";
  }
  if (!body.empty() || method == "POST") {
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  request += "Connection: close\r\n\r\n" + body;
  AdminResponse r;
  r.raw = HttpExchange(admin_port, request, std::chrono::seconds(10));
  r.status = StatusOf(r.raw);
  r.body = BodyOf(r.raw);
  return r;
}

Json AdminJson(uint16_t admin_port, const std::string& path, std::string* error,
               const std::string& token) {
  const AdminResponse r = AdminCall(admin_port, "GET", path, "", token);
  std::string ignored;
  std::string& why = error != nullptr ? *error : ignored;
  if (r.status != 200) {
    why = "GET " + path + " answered " + std::to_string(r.status) + ": " + r.raw;
    return Json();
  }
  absl::StatusOr<Json> json = ParseJson(r.body);
  if (!json.ok()) {
    why = "GET " + path + " body is not JSON (" + std::string(json.status().message()) +
          "): " + r.body;
    return Json();
  }
  return *std::move(json);
}

int64_t StatsCounter(uint16_t admin_port, const std::string& key, const std::string& token) {
  const Json stats = AdminJson(admin_port, "/stats", nullptr, token);
  return JsonInt64(FindMember(stats, key)).value_or(-1);
}

Json PoolEntry(uint16_t admin_port, const std::string& name, const std::string& token) {
  const Json pools = AdminJson(admin_port, "/pools", nullptr, token);
  const Json* list = FindMember(pools, "pools");
  if (list == nullptr || !list->is_array()) return Json();
  for (const Json& p : *list) {
    const Json* n = FindMember(p, "name");
    if (n != nullptr && *n == name) return p;
  }
  return Json();
}

int64_t PoolCounter(uint16_t admin_port, const std::string& name, const std::string& key,
                    const std::string& token) {
  return JsonInt64(FindMember(PoolEntry(admin_port, name, token), key)).value_or(-1);
}

int64_t RegisteredSlots(uint16_t admin_port, const std::string& name, const std::string& token) {
  return PoolCounter(admin_port, name, "registered", token);
}

}  // namespace l7px::testing
