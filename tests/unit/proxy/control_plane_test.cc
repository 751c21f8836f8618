#include "proxy/control/control_plane.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "support/process.h"

namespace l7px::proxy {
namespace {

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::MakeTempDir("control_plane") + "/l7px.toml";
    Write(kBase);
    auto cfg = config::LoadFile(path_);
    ASSERT_TRUE(cfg.ok()) << cfg.status().message();
    shared_.config = *cfg;
    shared_.num_workers = 1;
    control_ = std::make_unique<ControlPlane>(&shared_, path_);
    ASSERT_TRUE(control_->Init().ok());
  }

  void Write(const std::string& text) {
    std::ofstream out(path_);
    out << text;
  }

  int Route(std::string_view host, std::string_view path) {
    return shared_.routes.load()->Match(host, path);
  }
  const slots::Pool* Live(std::string_view name) { return shared_.pools.Find(name); }

  static constexpr const char* kBase = R"(
[server]
listen = ["127.0.0.1:0"]
header_timeout = "5s"
[register]
listen = ["127.0.0.1:0"]
default_pool = "a"
[admin]
listen = ""
[[pool]]
name = "a"
queue = 10
[[pool]]
name = "b"
[[route]]
host = "*"
path = "/"
pool = "a"
[[route]]
host = "b.example"
path = "/"
pool = "b"
)";

  std::string path_;
  SharedState shared_;
  std::unique_ptr<ControlPlane> control_;
};

TEST_F(ControlPlaneTest, InitPublishesPoolsRoutesAndLimits) {
  ASSERT_NE(Live("a"), nullptr);
  ASSERT_NE(Live("b"), nullptr);
  EXPECT_EQ(Route("x", "/"), static_cast<int>(Live("a")->id()));
  EXPECT_EQ(Route("b.example", "/"), static_cast<int>(Live("b")->id()));
  EXPECT_EQ(shared_.limits.load()->header_timeout_ns, 5'000'000'000);
  EXPECT_EQ(control_->Routes().size(), 2u);
}

TEST_F(ControlPlaneTest, ReloadDiffsPoolsRoutesAndLimits) {
  const slots::Pool* a = Live("a");
  const slots::Pool* b = Live("b");
  Write(R"(
[server]
listen = ["127.0.0.1:0"]
header_timeout = "2s"
[register]
listen = ["127.0.0.1:0"]
default_pool = "a"
[admin]
listen = ""
[[pool]]
name = "a"
queue = 99
[[pool]]
name = "c"
[[route]]
host = "*"
path = "/"
pool = "c"
)");
  ASSERT_TRUE(control_->Reload().ok());
  // Kept pool: same object (its slots stay), new limits.
  EXPECT_EQ(Live("a"), a);
  EXPECT_EQ(a->settings().request.queue, 99u);
  // Removed pool: closing, so its slots close once idle; no longer found by name.
  EXPECT_TRUE(b->closing());
  EXPECT_EQ(Live("b"), nullptr);
  // Added pool and the file's routes.
  ASSERT_NE(Live("c"), nullptr);
  EXPECT_EQ(Route("b.example", "/"), static_cast<int>(Live("c")->id()));
  EXPECT_EQ(control_->Routes().size(), 1u);
  EXPECT_EQ(shared_.limits.load()->header_timeout_ns, 2'000'000'000);
}

TEST_F(ControlPlaneTest, BrokenReloadChangesNothing) {
  const RouteTable* before = shared_.routes.load();
  const ServerLimits* limits_before = shared_.limits.load();
  for (const char* broken :
       {"[server\nlisten = 1\n", "[[pool]]\nname = \"a\"\n[[route]]\npool = \"nope\"\n"}) {
    Write(broken);
    EXPECT_FALSE(control_->Reload().ok()) << broken;
    EXPECT_EQ(shared_.routes.load(), before);
    EXPECT_EQ(shared_.limits.load(), limits_before);
    EXPECT_EQ(Live("a")->settings().request.queue, 10u);
    EXPECT_NE(Live("b"), nullptr);
  }
}

TEST_F(ControlPlaneTest, RuntimeRoutesGetIdsAndDeleteByIdOnly) {
  config::Route r;
  r.host = "api.example";
  r.path = "/v1";
  r.pool = "b";
  auto added = control_->AddRoute(r);
  ASSERT_TRUE(added.ok());
  EXPECT_EQ(added->id, 3u);
  EXPECT_EQ(Route("api.example", "/v1/x"), static_cast<int>(Live("b")->id()));
  EXPECT_FALSE(control_->DeleteRoute(42));
  EXPECT_TRUE(control_->DeleteRoute(added->id));
  EXPECT_EQ(Route("api.example", "/v1/x"), static_cast<int>(Live("a")->id()));
  r.pool = "missing";
  EXPECT_FALSE(control_->AddRoute(r).ok());
  EXPECT_EQ(control_->Routes().size(), 2u);
}

TEST_F(ControlPlaneTest, RetiredSnapshotsAreReclaimedOnceNoWorkerSeesThem) {
  shared_.rcu.Online(0);  // a worker in the middle of a pass
  config::Route r;
  r.pool = "a";
  ASSERT_TRUE(control_->AddRoute(r).ok());
  control_->Tick();
  EXPECT_EQ(shared_.rcu.pending(), 1u);  // the worker may still read the old table
  shared_.rcu.Offline(0);
  control_->Tick();
  EXPECT_EQ(shared_.rcu.pending(), 0u);
}

}  // namespace
}  // namespace l7px::proxy
