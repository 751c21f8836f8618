// Integration: the admin API's JSON is an interface (DESIGN "Admin API"). Bodies list their
// members in a fixed order, compactly, so people and scripts can diff them; POST /routes reads
// its body strictly (duplicate keys, a byte order mark or deep nesting are 400, not whichever
// reading a JSON library picks) and says what is wrong, naming the field.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/admin.h"
#include "support/integration.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class AdminJsonTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    h().EnableAdmin();
  }

  uint16_t admin() { return h().admin_port(); }
};

// The member names of a JSON object, in the order the body lists them.
std::vector<std::string> Keys(const Json& object) {
  std::vector<std::string> keys;
  if (!object.is_object()) return keys;
  for (const auto& [key, value] : object.items()) keys.push_back(key);
  return keys;
}

TEST_F(AdminJsonTest, BodiesListMembersInTheirDocumentedOrder) {
  ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
  ASSERT_NE(StartService({"--slots", "2", "--service-id", "svc-1"}), nullptr);
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "default") == 2; }, kIo));

  const AdminResponse stats = AdminCall(admin(), "GET", "/stats");
  ASSERT_EQ(stats.status, 200) << stats.raw;
  EXPECT_THAT(stats.body, StartsWith("{\"workers\":2,\"client_connections\":"));
  EXPECT_EQ(stats.body.back(), '\n');
  absl::StatusOr<Json> json = ParseJson(stats.body);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(Keys(*json),
            (std::vector<std::string>{"workers", "client_connections", "requests", "recv_no_buffer",
                                      "accept_out_of_fds", "connection_limit_pauses",
                                      "body_too_slow", "stray_slots", "send_timeouts",
                                      "response_buffer_bytes", "tls", "pools"}));

  const AdminResponse pools = AdminCall(admin(), "GET", "/pools");
  ASSERT_EQ(pools.status, 200) << pools.raw;
  EXPECT_EQ(pools.body,
            "{\"pools\":[{\"name\":\"default\",\"registered\":2,\"idle\":2,\"busy\":0,"
            "\"waiting\":0,\"served\":0,\"shed\":{\"queue_full\":0,\"queue_timeout\":0,"
            "\"closing\":0,\"max_tunnels\":0},\"retries\":0,\"draining\":false,"
            "\"services\":{\"svc-1\":2},\"upstreams\":[],"
            "\"instances\":[{\"id\":\"svc-1\",\"state\":\"healthy\",\"slots\":2,"
            "\"consecutive_failures\":0,\"ejections\":0,\"ejected_until\":null,"
            "\"ejected_ms_left\":0}],\"instances_ejected\":0,\"ejections\":0,\"tunnels\":0,"
            "\"tunnels_total\":0,\"max_tunnels\":1024}]}\n");

  const AdminResponse added =
      AdminCall(admin(), "POST", "/routes",
                R"({"pool": "default", "path": "/x", "header": {"value": "v", "name": "X-A"}})");
  ASSERT_EQ(added.status, 201) << added.raw;
  absl::StatusOr<Json> route = ParseJson(added.body);
  ASSERT_TRUE(route.ok()) << added.body;
  const std::string id = std::to_string(JsonInt64(FindMember(*route, "id")).value_or(-1));
  EXPECT_EQ(added.body,
            "{\"id\":" + id +
                ",\"host\":\"*\",\"path\":\"/x\",\"client_cidr\":[],"
                "\"header\":{\"name\":\"X-A\",\"value\":\"v\"},\"pool\":\"default\"}\n");
  const AdminResponse routes = AdminCall(admin(), "GET", "/routes");
  // The config's one route (every host and path to the only pool), then the added one.
  EXPECT_EQ(routes.body,
            "{\"routes\":[{\"id\":1,\"host\":\"*\",\"path\":\"/\",\"client_cidr\":[],"
            "\"header\":null,\"pool\":\"default\"}," +
                added.body.substr(0, added.body.size() - 1) + "]}\n");
}

TEST_F(AdminJsonTest, PostRoutesReadsItsBodyStrictly) {
  ASSERT_TRUE(StartProxy(kDefaultPool)) << h().ProxyLog();
  const std::string before = AdminCall(admin(), "GET", "/routes").body;
  struct Case {
    std::string body;
    std::string error;  // substring of the 400's "error"
  };
  const std::vector<Case> cases = {
      {R"({"pool": "default", "path": "/a", "path": "/b"})", "duplicate key \\\"path\\\""},
      {R"({"pool": "default", "header": {"name": "X-A", "name": "X-B"}})",
       "duplicate key \\\"name\\\""},
      {"\xEF\xBB\xBF{\"pool\": \"default\"}", "bad JSON at byte 0: byte order mark"},
      {R"({"pool": "default", "header": )" + std::string(70, '[') + std::string(70, ']') + "}",
       "nested too deeply"},
      {R"({"pool": "default", )", "bad JSON at byte 20: "},
      {R"({"pool": "default", "path": "nope"})", "route.path: bad path \\\"nope\\\""},
      {R"({"pool": "default", "client_cidr": [7]})", "route.client_cidr: must be"},
      {R"({"pool": "default", "weight": 2})", "unknown key \\\"weight\\\""},
  };
  for (const Case& c : cases) {
    const AdminResponse r = AdminCall(admin(), "POST", "/routes", c.body);
    EXPECT_EQ(r.status, 400) << c.body << "\n" << r.raw;
    EXPECT_THAT(r.body, StartsWith("{\"error\":\"")) << c.body;
    EXPECT_THAT(r.body, HasSubstr(c.error)) << c.body;
    // The answer is one valid JSON object whatever the input quoted back.
    absl::StatusOr<Json> json = ParseJson(r.body);
    EXPECT_TRUE(json.ok() && FindMember(*json, "error") != nullptr) << r.body;
  }
  EXPECT_EQ(AdminCall(admin(), "GET", "/routes").body, before) << "a refused route was added";
}

}  // namespace
}  // namespace l7px::testing
