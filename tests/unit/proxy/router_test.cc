#include "proxy/router.h"

#include <gtest/gtest.h>

namespace l7px::proxy {
namespace {

config::Route MakeRoute(std::string host, std::string path, std::string pool) {
  config::Route r;
  r.host = std::move(host);
  r.path = std::move(path);
  r.pool = std::move(pool);
  return r;
}

// Routes get pool ids equal to their index, so Match() tells which route won.
RouteTable Build(const std::vector<config::Route>& routes) {
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < routes.size(); ++i) ids.push_back(static_cast<uint32_t>(i));
  return RouteTable::Build(routes, ids);
}

TEST(RouteTableTest, EmptyTableMatchesNothing) {
  RouteTable t = Build({});
  EXPECT_EQ(t.Match("a.example", "/"), -1);
}

TEST(RouteTableTest, CatchAll) {
  RouteTable t = Build({MakeRoute("*", "/", "p")});
  EXPECT_EQ(t.Match("anything", "/x/y"), 0);
  EXPECT_EQ(t.Match("", "/"), 0);
}

TEST(RouteTableTest, ExactHostBeatsSuffixBeatsAnyRegardlessOfOrder) {
  RouteTable t = Build({MakeRoute("*", "/", "any"), MakeRoute("*.example.com", "/", "suffix"),
                        MakeRoute("api.example.com", "/", "exact")});
  EXPECT_EQ(t.Match("api.example.com", "/"), 2);
  EXPECT_EQ(t.Match("www.example.com", "/"), 1);
  EXPECT_EQ(t.Match("example.com", "/"), 0);  // "*.example.com" needs a label before it
  EXPECT_EQ(t.Match("other.org", "/"), 0);
}

TEST(RouteTableTest, LongerSuffixIsMoreSpecific) {
  RouteTable t = Build({MakeRoute("*.com", "/", "short"), MakeRoute("*.example.com", "/", "long")});
  EXPECT_EQ(t.Match("a.example.com", "/"), 1);
  EXPECT_EQ(t.Match("a.other.com", "/"), 0);
}

TEST(RouteTableTest, LongestPathPrefixWins) {
  RouteTable t = Build({MakeRoute("*", "/", "root"), MakeRoute("*", "/api/v2", "v2"),
                        MakeRoute("*", "/api", "api")});
  EXPECT_EQ(t.Match("h", "/api/v2/users"), 1);
  EXPECT_EQ(t.Match("h", "/api/v1"), 2);
  EXPECT_EQ(t.Match("h", "/static"), 0);
}

TEST(RouteTableTest, HostSpecificityOutranksPathLength) {
  RouteTable t = Build({MakeRoute("*", "/very/long/prefix", "any-long"),
                        MakeRoute("h.example", "/", "exact-short")});
  EXPECT_EQ(t.Match("h.example", "/very/long/prefix/x"), 1);
}

TEST(RouteTableTest, TieGoesToTheFirstDeclared) {
  RouteTable t = Build({MakeRoute("*", "/a", "first"), MakeRoute("*", "/a", "second")});
  EXPECT_EQ(t.Match("h", "/a"), 0);
}

TEST(RouteTableTest, NoMatchWhenHostAndPathDiffer) {
  RouteTable t = Build({MakeRoute("only.example", "/", "p")});
  EXPECT_EQ(t.Match("other.example", "/"), -1);
  EXPECT_EQ(t.Match("only.example", "/x"), 0);
}

}  // namespace
}  // namespace l7px::proxy
