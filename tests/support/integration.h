#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/unique_fd.h"
#include "support/harness.h"

namespace l7px::testing {

// Bound on one blocking step of a test (a response, a registration); reached only on failure.
inline constexpr auto kIo = std::chrono::seconds(10);
// The pools section of a config with only the default pool.
inline constexpr char kDefaultPool[] = "[[pool]]\nname = \"default\"\n";

// Milliseconds of the steady clock since `start`.
long MillisSince(std::chrono::steady_clock::time_point start);

// How many times `needle` occurs in `text` (occurrences may overlap).
int CountOf(std::string_view text, std::string_view needle);

// Base fixture for tests/integration: one ProxyHarness per test, named after the test, whose
// proxy and service logs are printed when the test fails.
class IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  ProxyHarness& h() { return *harness_; }
  uint16_t front() const { return harness_->front_port(); }

  // Writes the config (see ProxyHarness::WriteConfig) and starts l7px; false when it did not
  // come up.
  bool StartProxy(const std::string& pools_and_routes, const std::string& server_extra = "",
                  const std::string& register_extra = "", int workers = 2);

  // Starts the test service and waits for its "ready" line; nullptr when it never got ready.
  ChildProcess* StartService(const std::vector<std::string>& args);

  // Sends `request` on a fresh connection; expects a `status` answer, `Connection: close` and
  // the connection closed.
  void ExpectRejectedAndClosed(const std::string& request, int status);

  // Registers a slot by hand to the default pool with this service id (the admin API must be
  // enabled) and waits until the pool counts it; registered last, it is the most recently idle
  // slot, so the idle stack (LIFO) hands it the next request. Invalid (and a test failure)
  // when the registration is refused or never counted.
  UniqueFd RegisterSlotByHand(const std::string& service_id);

 private:
  std::unique_ptr<ProxyHarness> harness_;
};

// True once the service printed "ready" (every slot registered).
bool ServiceReady(ChildProcess& service);

// The tail of a log, for failure messages.
std::string Tail(const std::string& text, size_t max_bytes = 4000);

}  // namespace l7px::testing
