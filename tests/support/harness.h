#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "support/process.h"

namespace l7px::testing {

// Starts the real l7px binary on kernel-chosen loopback ports, and scripted services that
// register to it. Everything it starts is killed when it is destroyed.
class ProxyHarness {
 public:
  explicit ProxyHarness(const std::string& name);
  ~ProxyHarness();

  uint16_t front_port() const { return front_port_; }
  uint16_t register_port() const { return register_port_; }
  // Kernel-chosen too, but only written to the config after EnableAdmin().
  uint16_t admin_port() const { return admin_port_; }
  const std::string& dir() const { return dir_; }

  // Writes a config: [server] with the front port and `server_extra` lines, [register] with the
  // register port and `register_extra`, [log], then `pools_and_routes` verbatim (TOML).
  // Returns the config path.
  std::string WriteConfig(const std::string& pools_and_routes, const std::string& server_extra = "",
                          const std::string& register_extra = "", int workers = 2);

  // From now on WriteConfig writes `[admin] listen = "127.0.0.1:<admin_port()>"` (and `token`
  // when non-empty) instead of disabling the admin API, and StartProxy also waits for it.
  void EnableAdmin(const std::string& token = "");
  // Extra lines for the [log] section of later WriteConfig calls (e.g. `format = "combined"`).
  void SetLogExtra(const std::string& lines) { log_extra_ = lines; }
  // Extra lines for the [upgrade] section (e.g. `drain_timeout = "5s"`).
  void SetUpgradeExtra(const std::string& lines) { upgrade_extra_ = lines; }
  std::string UpgradeSocketPath() const { return dir_ + "/upgrade.sock"; }
  // Path of the access log the config names.
  std::string AccessLogPath() const { return dir_ + "/access.log"; }

  // Starts l7px with the config and waits until its front port accepts connections.
  bool StartProxy(const std::string& config_path);
  // Words put before the l7px command line by later StartProxy calls, for a launcher that execs
  // it (so the pid stays l7px's), e.g. {"prlimit", "--nofile=32:32", "--"}.
  void SetProxyLauncher(std::vector<std::string> launcher) { launcher_ = std::move(launcher); }
  // The l7px path later StartProxy calls run (default: the one built with the tests).
  void SetProxyBinary(std::string path) { binary_ = std::move(path); }
  ChildProcess& proxy() { return proxy_; }
  std::string ProxyLog() const { return proxy_.ReadLog(); }
  std::string AccessLog() const;

  // Starts tests/support/tools/l7px_test_service registered to this proxy with `args`
  // (e.g. {"--slots", "2", "--pool", "api"}), waiting for its "ready" line when `wait_ready`.
  ChildProcess& StartService(const std::vector<std::string>& args, bool wait_ready = true);
  std::deque<ChildProcess>& services() { return services_; }

  // Resident set size of the proxy in KiB (VmRSS) and its peak (VmHWM).
  long ProxyRssKiB() const;
  long ProxyPeakRssKiB() const;

 private:
  std::string dir_;
  uint16_t front_port_;
  uint16_t register_port_;
  uint16_t admin_port_;
  bool admin_enabled_ = false;
  std::string admin_token_;
  std::string log_extra_;
  std::string upgrade_extra_;
  std::vector<std::string> launcher_;
  std::string binary_ = L7PX_BINARY;
  ChildProcess proxy_;
  std::deque<ChildProcess> services_;  // deque: references stay valid
  int service_count_ = 0;
};

// Path of a binary built next to l7px (e.g. "l7px_test_service").
std::string BuiltBinary(const std::string& name);

}  // namespace l7px::testing
