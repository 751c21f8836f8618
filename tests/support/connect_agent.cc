#include "support/connect_agent.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <sstream>
#include <utility>

#include "support/admin.h"

namespace l7px::testing {

std::string SvcPool(const std::string& queue_timeout, const std::string& extra) {
  return "[[pool]]\nname = \"svc\"\nqueue_timeout = \"" + queue_timeout + "\"\n" + extra;
}

std::string LoopbackAddr(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

int64_t RegistrationsMetric(uint16_t admin_port, const std::string& pool,
                            const std::string& result) {
  const AdminResponse r = AdminCall(admin_port, "GET", "/metrics");
  if (r.status != 200) return -1;
  const std::string key =
      "l7px_slot_registrations_total{pool=\"" + pool + "\",result=\"" + result + "\"} ";
  std::istringstream in(r.body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size()));
  }
  return -1;
}

void ConnectTest::TearDown() {
  if (HasFailure()) {
    std::cerr << "---- agent log (tail) ----\n" << Tail(agent_.ReadLog()) << "\n";
    if (services_) std::cerr << "---- service log ----\n" << Tail(services_->LogOf("a")) << "\n";
  }
  agent_.Kill();
  IntegrationTest::TearDown();
}

ListeningServices& ConnectTest::services() {
  if (!services_) services_ = std::make_unique<ListeningServices>(h().dir());
  return *services_;
}

bool ConnectTest::StartL7px(const std::string& queue_timeout, const std::string& pool_extra) {
  h().EnableAdmin();
  return StartProxy(SvcPool(queue_timeout, pool_extra), "", kSvcRegister);
}

void ConnectTest::StartAgent(const std::vector<uint16_t>& proxies, uint16_t service_port, int slots,
                             const std::vector<std::string>& extra) {
  StartAgentTo(proxies, LoopbackAddr(service_port), slots, extra);
}

void ConnectTest::StartAgentTo(const std::vector<uint16_t>& proxies, const std::string& to,
                               int slots, const std::vector<std::string>& extra,
                               const std::vector<std::string>& launcher) {
  std::string list;
  for (uint16_t p : proxies) list += (list.empty() ? "" : ",") + LoopbackAddr(p);
  std::vector<std::string> argv = launcher;
  const std::vector<std::string> own = {
      L7PX_BINARY, "connect", "--proxy", list, "--slots", std::to_string(slots), "--to", to};
  argv.insert(argv.end(), own.begin(), own.end());
  // The defaults, unless `extra` names its own (a flag given twice is an error).
  for (const auto& [flag, value] : {std::pair<std::string, std::string>{"--pool", "svc"},
                                    std::pair<std::string, std::string>{"--service", "agent"}}) {
    if (std::find(extra.begin(), extra.end(), flag) == extra.end()) {
      argv.push_back(flag);
      argv.push_back(value);
    }
  }
  argv.insert(argv.end(), extra.begin(), extra.end());
  agent_ = ChildProcess::Start(argv, h().dir() + "/agent.log");
}

}  // namespace l7px::testing
