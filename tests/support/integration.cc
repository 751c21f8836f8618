#include "support/integration.h"

#include <sys/wait.h>

#include <iostream>
#include <string>

#include "support/admin.h"
#include "support/clients.h"
#include "support/net.h"

namespace l7px::testing {

long MillisSince(std::chrono::steady_clock::time_point start) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now() - start)
                               .count());
}

int CountOf(std::string_view text, std::string_view needle) {
  int n = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

void IntegrationTest::SetUp() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  // Short: the directory also holds the upgrade socket, whose path is limited to 107 bytes.
  harness_ = std::make_unique<ProxyHarness>(std::string(info->name()).substr(0, 24));
}

void IntegrationTest::TearDown() {
  if (HasFailure()) {
    std::cerr << "---- l7px log (tail) ----\n" << Tail(harness_->ProxyLog()) << "\n";
    ChildProcess& proxy = harness_->proxy();
    if (proxy.pid() > 0 && !proxy.running()) {
      const int status = proxy.WaitExit(std::chrono::milliseconds(0));
      std::cerr << "---- l7px is not running: "
                << (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                                        : "exit status " + std::to_string(WEXITSTATUS(status)))
                << " ----\n";
    }
    int i = 0;
    for (ChildProcess& service : harness_->services()) {
      std::cerr << "---- service " << i++ << " log (tail) ----\n"
                << Tail(service.ReadLog(), 1500) << "\n";
    }
  }
  harness_.reset();  // kills every process it started
}

bool IntegrationTest::StartProxy(const std::string& pools_and_routes,
                                 const std::string& server_extra, const std::string& register_extra,
                                 int workers) {
  const std::string config =
      harness_->WriteConfig(pools_and_routes, server_extra, register_extra, workers);
  return harness_->StartProxy(config);
}

ChildProcess* IntegrationTest::StartService(const std::vector<std::string>& args) {
  ChildProcess& service = harness_->StartService(args);
  return ServiceReady(service) ? &service : nullptr;
}

void IntegrationTest::ExpectRejectedAndClosed(const std::string& request, int status) {
  SCOPED_TRACE(::testing::Message()
               << "request: " << ::testing::PrintToString(request.substr(0, 200)));
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  ASSERT_TRUE(SendAll(fd.get(), request));
  std::string seen;
  EXPECT_TRUE(WaitPeerClosed(fd.get(), kIo, &seen)) << "connection left open; got: " << seen;
  EXPECT_EQ(StatusOf(seen), status) << seen;
  EXPECT_EQ(HeaderOf(seen, "Connection"), "close") << seen;
}

UniqueFd IntegrationTest::RegisterSlotByHand(const std::string& service_id) {
  // Counted by its own service id: the pool's total may still be moving meanwhile (another
  // service's slots being filed), which made an exact check on it flaky.
  auto slots_of_id = [&] {
    const Json pool = PoolEntry(h().admin_port(), "default");
    const Json* services = FindMember(pool, "services");
    const Json* n = services != nullptr ? FindMember(*services, service_id) : nullptr;
    return n != nullptr && n->is_number_integer() ? n->get<int64_t>() : int64_t{0};
  };
  const int64_t before = slots_of_id();
  std::string answer;
  UniqueFd fd = RegisterByHand(h().register_port(), RegistrationHead("", "", service_id), &answer);
  EXPECT_EQ(StatusOf(answer), 101) << answer;
  EXPECT_TRUE(WaitFor([&] { return slots_of_id() == before + 1; }, kIo))
      << "the slot registered by hand was not counted: "
      << AdminCall(h().admin_port(), "GET", "/pools").body;
  return fd;
}

bool ServiceReady(ChildProcess& service) {
  return service.running() && service.ReadLog().find("ready") != std::string::npos;
}

std::string Tail(const std::string& text, size_t max_bytes) {
  return text.size() <= max_bytes ? text : "..." + text.substr(text.size() - max_bytes);
}

}  // namespace l7px::testing
