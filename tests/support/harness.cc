#include "support/harness.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "support/net.h"

namespace l7px::testing {

std::string BuiltBinary(const std::string& name) {
  const std::string l7px = L7PX_BINARY;
  return l7px.substr(0, l7px.rfind('/') + 1) + "tests/" + name;
}

ProxyHarness::ProxyHarness(const std::string& name)
    : dir_(MakeTempDir(name)),
      front_port_(FreePort()),
      register_port_(FreePort()),
      admin_port_(FreePort()) {
  while (register_port_ == front_port_) register_port_ = FreePort();
  while (admin_port_ == front_port_ || admin_port_ == register_port_) admin_port_ = FreePort();
}

void ProxyHarness::EnableAdmin(const std::string& token) {
  admin_enabled_ = true;
  admin_token_ = token;
}

ProxyHarness::~ProxyHarness() {
  services_.clear();  // kills services first
  proxy_.Kill();
  // Keep the logs of a failed test for inspection; drop the rest.
  if (!::testing::Test::HasFailure()) {
    const std::string cmd = "rm -rf '" + dir_ + "'";
    if (std::system(cmd.c_str()) != 0) return;
  }
}

std::string ProxyHarness::WriteConfig(const std::string& pools_and_routes,
                                      const std::string& server_extra,
                                      const std::string& register_extra, int workers) {
  const std::string path = dir_ + "/l7px.toml";
  std::ofstream out(path);
  out << "[server]\n"
      << "workers = " << workers << "\n"
      << "listen = [\"127.0.0.1:" << front_port_ << "\"]\n"
      << server_extra << "\n"
      << "[register]\n"
      << "listen = [\"127.0.0.1:" << register_port_ << "\"]\n"
      << register_extra << "\n"
      << "[admin]\n";
  if (admin_enabled_) {
    out << "listen = \"127.0.0.1:" << admin_port_ << "\"\n";
    if (!admin_token_.empty()) out << "token = \"" << admin_token_ << "\"\n";
  } else {
    out << "listen = \"\"\n";
  }
  out << "[upgrade]\nsocket = \"" << UpgradeSocketPath() << "\"\n"
      << upgrade_extra_ << "\n"
      << "[log]\nlevel = \"info\"\naccess = \"" << AccessLogPath() << "\"\n"
      << log_extra_ << "\n"
      << pools_and_routes << "\n";
  return path;
}

bool ProxyHarness::StartProxy(const std::string& config_path) {
  std::vector<std::string> argv = launcher_;
  argv.insert(argv.end(), {binary_, "-c", config_path});
  proxy_ = ChildProcess::Start(argv, dir_ + "/l7px.log");
  // Stop waiting as soon as the proxy exits (e.g. it rejected the config).
  auto up = [&](uint16_t port) {
    return WaitFor(
               [&] {
                 return !proxy_.running() || WaitForPort(port, std::chrono::milliseconds(20));
               },
               std::chrono::seconds(10)) &&
           proxy_.running();
  };
  return up(front_port_) && up(register_port_) && (!admin_enabled_ || up(admin_port_));
}

std::string ProxyHarness::AccessLog() const { return ReadFile(dir_ + "/access.log"); }

ChildProcess& ProxyHarness::StartService(const std::vector<std::string>& args, bool wait_ready) {
  std::vector<std::string> argv = {BuiltBinary("l7px_test_service")};
  bool has_proxy = false;
  for (const auto& a : args) has_proxy |= (a == "--proxy" || a == "--listen");
  if (!has_proxy) {
    argv.push_back("--proxy");
    argv.push_back("127.0.0.1:" + std::to_string(register_port_));
  }
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string log = dir_ + "/service" + std::to_string(service_count_++) + ".log";
  services_.push_back(ChildProcess::Start(argv, log));
  ChildProcess& child = services_.back();
  if (wait_ready) {
    WaitFor([&] { return child.ReadLog().find("ready") != std::string::npos || !child.running(); },
            std::chrono::seconds(10));
  }
  return child;
}

long ProxyHarness::ProxyRssKiB() const {
  return ProcStatusValue("/proc/" + std::to_string(proxy_.pid()) + "/status", "VmRSS");
}
long ProxyHarness::ProxyPeakRssKiB() const {
  return ProcStatusValue("/proc/" + std::to_string(proxy_.pid()) + "/status", "VmHWM");
}

}  // namespace l7px::testing
