#pragma once

// The fixture of the `l7px connect` integration tests: one l7px (more by hand), the Python
// listening service (support/listening_service.h) and the agent between them, a child process
// killed by pid when the test ends. On a failure the agent's and the service's logs are
// printed.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/integration.h"
#include "support/listening_service.h"
#include "support/process.h"

namespace l7px::testing {

// The pool the agent registers in, with `extra` TOML lines. The default queue_timeout is
// generous: under load a request waits for one of the agent's N requests at the service.
std::string SvcPool(const std::string& queue_timeout = "2s", const std::string& extra = "");
inline constexpr char kSvcRegister[] = "default_pool = \"svc\"\n";

std::string LoopbackAddr(uint16_t port);

// l7px_slot_registrations_total{pool="<pool>",result="<result>"} from GET /metrics; -1 when
// it is not listed.
int64_t RegistrationsMetric(uint16_t admin_port, const std::string& pool,
                            const std::string& result);

class ConnectTest : public IntegrationTest {
 protected:
  void TearDown() override;

  ListeningServices& services();
  // l7px with the admin API and the "svc" pool (`pool_extra` added to it).
  bool StartL7px(const std::string& queue_timeout = "2s", const std::string& pool_extra = "");
  // The agent with these proxies (register addresses), `slots`, pool "svc", service id "agent"
  // and extra flags, forwarding to 127.0.0.1:`service_port`.
  void StartAgent(const std::vector<uint16_t>& proxies, uint16_t service_port, int slots,
                  const std::vector<std::string>& extra = {});
  // The same to any --to address, started through `launcher` (words before the binary that
  // exec it, e.g. {"/usr/bin/env", "L7PX_TOKEN=x"}).
  void StartAgentTo(const std::vector<uint16_t>& proxies, const std::string& to, int slots,
                    const std::vector<std::string>& extra = {},
                    const std::vector<std::string>& launcher = {});
  int64_t Registered(uint16_t admin_port) { return RegisteredSlots(admin_port, "svc"); }
  int64_t Registered() { return Registered(h().admin_port()); }

  ChildProcess agent_;
  std::unique_ptr<ListeningServices> services_;
};

}  // namespace l7px::testing
