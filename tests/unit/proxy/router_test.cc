#include "proxy/routing/router.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "http/parser.h"

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

// ---- Full precedence: client CIDRs, header matches, ids ----

config::Route CondRoute(std::string host, std::string path, std::vector<std::string> cidrs,
                        std::optional<config::HeaderMatch> header, std::string pool = "p") {
  config::Route r = MakeRoute(std::move(host), std::move(path), std::move(pool));
  for (const std::string& c : cidrs) {
    absl::StatusOr<Cidr> cidr = Cidr::Parse(c);
    EXPECT_TRUE(cidr.ok()) << c;
    if (cidr.ok()) r.client_cidr.push_back(*cidr);
  }
  r.header = std::move(header);
  return r;
}

config::HeaderMatch Hdr(std::string name, std::optional<std::string> value = std::nullopt) {
  return config::HeaderMatch{std::move(name), std::move(value)};
}

SocketAddress Addr(std::string_view text) {
  absl::StatusOr<SocketAddress> a = SocketAddress::Parse(text);
  EXPECT_TRUE(a.ok()) << text;
  return a.ok() ? *a : SocketAddress();
}

// A parsed request head (the real parser, so names/values are spans as in production).
struct Head {
  std::string buf;
  http::Parser parser{http::Parser::Kind::kRequest, {}};
  explicit Head(std::string headers) : buf("GET / HTTP/1.1\r\nHost: h\r\n" + headers + "\r\n") {
    parser.Begin(buf.data());
    EXPECT_EQ(parser.Parse(buf.data(), buf.size()).status, http::Parser::Status::kHeadDone);
  }
  const http::MessageHead* h() const { return &parser.head(); }
};

// Id of the winning route (0 if none).
uint64_t Winner(const RouteTable& t, std::string_view host, std::string_view path,
                const SocketAddress* client = nullptr, const http::MessageHead* head = nullptr) {
  const RouteEntry* e = t.MatchEntry(RouteRequest{host, path, client, head});
  return e == nullptr ? 0 : e->id;
}

RouteTable BuildSpecs(const std::vector<config::Route>& routes, uint64_t first_id = 1) {
  std::vector<RouteSpec> specs;
  for (size_t i = 0; i < routes.size(); ++i) {
    specs.push_back(RouteSpec{first_id + i, routes[i], static_cast<uint32_t>(i)});
  }
  return RouteTable::Build(specs);
}

TEST(RouteTableTest, OldBuildNumbersIdsFromOneInDeclarationOrder) {
  RouteTable t = Build({MakeRoute("*", "/long", "a"), MakeRoute("x.example", "/", "b")});
  ASSERT_EQ(t.entries().size(), 2u);
  EXPECT_EQ(t.entries()[0].id, 1u);
  EXPECT_EQ(t.entries()[0].route.path, "/long");
  EXPECT_EQ(t.entries()[1].id, 2u);
  EXPECT_EQ(t.entries()[1].host_rank, 2);
  EXPECT_EQ(t.entries()[1].pool_id, 1u);
  EXPECT_EQ(t.entries()[1].route.pool, "b");
}

TEST(RouteTableTest, SpecIdsAreKeptAndFoundAndRoundTrip) {
  std::vector<RouteSpec> specs = {{42, MakeRoute("*", "/", "a"), 3},
                                  {7, MakeRoute("*", "/x", "b"), 5}};
  RouteTable t = RouteTable::Build(specs);
  EXPECT_EQ(Winner(t, "h", "/x/y"), 7u);
  EXPECT_EQ(t.Match("h", "/x/y"), 5);
  EXPECT_EQ(Winner(t, "h", "/"), 42u);
  ASSERT_NE(t.FindById(7), nullptr);
  EXPECT_EQ(t.FindById(7)->route.pool, "b");
  EXPECT_EQ(t.FindById(8), nullptr);
  // Rebuild without one route, as the admin API does on DELETE.
  std::vector<RouteSpec> rest = t.ToSpecs();
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].id, 42u);
  EXPECT_EQ(rest[1].pool_id, 5u);
  rest.erase(rest.begin() + 1);
  RouteTable t2 = RouteTable::Build(rest);
  EXPECT_EQ(Winner(t2, "h", "/x/y"), 42u);
}

TEST(RouteTableTest, HostsAreMatchedCaseInsensitivelyViaLowerCasedRoutes) {
  RouteTable t =
      Build({MakeRoute("API.Example.com", "/", "a"), MakeRoute("*.EXAMPLE.org", "/", "b")});
  EXPECT_EQ(t.Match("api.example.com", "/"), 0);
  EXPECT_EQ(t.Match("www.example.org", "/"), 1);
}

TEST(RouteTableTest, SuffixNeedsALabelAndPrefersTheLongestSuffix) {
  RouteTable t = Build({MakeRoute("*.com", "/", "a"), MakeRoute("*.b.example.com", "/", "b"),
                        MakeRoute("*.example.com", "/long/path", "c")});
  EXPECT_EQ(t.Match("x.b.example.com", "/long/path"), 1);  // longer suffix beats longer path
  EXPECT_EQ(t.Match("b.example.com", "/long/path"), 2);
  EXPECT_EQ(t.Match("b.example.com", "/"), 0);
  EXPECT_EQ(t.Match(".com", "/"), -1);
  EXPECT_EQ(t.Match("com", "/"), -1);
}

TEST(RouteTableTest, CidrV4) {
  RouteTable t = BuildSpecs({CondRoute("*", "/", {}, {}), CondRoute("*", "/", {"10.0.0.0/8"}, {})});
  const SocketAddress in = Addr("10.1.2.3:5000");
  const SocketAddress out = Addr("11.0.0.1:5000");
  EXPECT_EQ(Winner(t, "h", "/", &in), 2u);
  EXPECT_EQ(Winner(t, "h", "/", &out), 1u);
  EXPECT_EQ(Winner(t, "h", "/", nullptr), 1u);  // no client address: CIDR routes never match
  EXPECT_EQ(t.Match("h", "/"), 0);
}

TEST(RouteTableTest, CidrV6AndV4Mapped) {
  RouteTable t = BuildSpecs(
      {CondRoute("*", "/", {"2001:db8::/32"}, {}), CondRoute("*", "/", {"192.168.0.0/16"}, {})});
  const SocketAddress v6 = Addr("[2001:db8:1::5]:80");
  const SocketAddress v6_other = Addr("[2001:db9::1]:80");
  const SocketAddress mapped = Addr("[::ffff:192.168.7.7]:80");
  const SocketAddress v4 = Addr("192.168.7.7:80");
  const SocketAddress unix_peer = Addr("unix:/tmp/x.sock");
  EXPECT_EQ(Winner(t, "h", "/", &v6), 1u);
  EXPECT_EQ(Winner(t, "h", "/", &v6_other), 0u);
  EXPECT_EQ(Winner(t, "h", "/", &mapped), 2u);
  EXPECT_EQ(Winner(t, "h", "/", &v4), 2u);
  EXPECT_EQ(Winner(t, "h", "/", &unix_peer), 0u);
}

TEST(RouteTableTest, LongerCidrPrefixWins) {
  RouteTable t = BuildSpecs(
      {CondRoute("*", "/", {"10.0.0.0/8"}, {}), CondRoute("*", "/", {"10.1.0.0/16"}, {})});
  const SocketAddress both = Addr("10.1.2.3:1");
  const SocketAddress wide = Addr("10.9.9.9:1");
  EXPECT_EQ(Winner(t, "h", "/", &both), 2u);
  EXPECT_EQ(Winner(t, "h", "/", &wide), 1u);
}

TEST(RouteTableTest, RouteWithSeveralCidrsRanksByItsLongestMatchingOne) {
  RouteTable t = BuildSpecs({CondRoute("*", "/", {"10.0.0.0/8", "10.1.2.0/24"}, {}),
                             CondRoute("*", "/", {"10.1.0.0/16"}, {})});
  const SocketAddress a = Addr("10.1.2.3:1");
  const SocketAddress b = Addr("10.1.9.9:1");
  const SocketAddress c = Addr("10.9.9.9:1");
  EXPECT_EQ(Winner(t, "h", "/", &a), 1u);  // its /24
  EXPECT_EQ(Winner(t, "h", "/", &b), 2u);  // /16 beats the first route's /8
  EXPECT_EQ(Winner(t, "h", "/", &c), 1u);
}

TEST(RouteTableTest, HeaderPresentAndValue) {
  RouteTable t =
      BuildSpecs({CondRoute("*", "/", {}, {}), CondRoute("*", "/", {}, Hdr("X-Slice", "slow")),
                  CondRoute("*", "/", {}, Hdr("X-Debug"))});
  Head none("");
  Head slow("x-slice: slow\r\n");
  Head fast("X-Slice: fast\r\n");
  Head slow_case("X-Slice: SLOW\r\n");  // values are exact
  Head second("X-Slice: fast\r\nX-SLICE: slow\r\n");
  Head debug("X-Debug: \r\n");  // present, empty value
  EXPECT_EQ(Winner(t, "h", "/", nullptr, none.h()), 1u);
  EXPECT_EQ(Winner(t, "h", "/", nullptr, slow.h()), 2u);
  EXPECT_EQ(Winner(t, "h", "/", nullptr, fast.h()), 1u);
  EXPECT_EQ(Winner(t, "h", "/", nullptr, slow_case.h()), 1u);
  EXPECT_EQ(Winner(t, "h", "/", nullptr, second.h()), 2u);
  EXPECT_EQ(Winner(t, "h", "/", nullptr, debug.h()), 3u);
  EXPECT_EQ(Winner(t, "h", "/", nullptr, nullptr), 1u);
}

TEST(RouteTableTest, ConditionsRankBelowHostAndPath) {
  const SocketAddress client = Addr("10.1.2.3:1");
  Head slow("X-Slice: slow\r\n");
  RouteTable t =
      BuildSpecs({CondRoute("*", "/api", {"10.0.0.0/8"}, Hdr("X-Slice", "slow")),
                  CondRoute("*", "/api/v2", {}, {}), CondRoute("h.example", "/", {}, {})});
  EXPECT_EQ(Winner(t, "other", "/api/v2/x", &client, slow.h()), 2u);  // longer path
  EXPECT_EQ(Winner(t, "other", "/api/v1", &client, slow.h()), 1u);
  EXPECT_EQ(Winner(t, "h.example", "/api/v1", &client, slow.h()), 3u);  // exact host
}

TEST(RouteTableTest, ConditionOrder) {
  // For one host and path: longer CIDR > shorter CIDR (+header beats the same CIDR without) >
  // header only > nothing.
  const std::vector<config::Route> routes = {
      CondRoute("*", "/", {}, {}),                          // 1
      CondRoute("*", "/", {}, Hdr("X-Slice")),              // 2
      CondRoute("*", "/", {"10.0.0.0/8"}, {}),              // 3
      CondRoute("*", "/", {"10.0.0.0/8"}, Hdr("X-Slice")),  // 4
      CondRoute("*", "/", {"10.1.0.0/16"}, {}),             // 5
      CondRoute("*", "/", {"::ffff:10.1.2.0/120"}, {}),     // 6: same as v4 /24
  };
  RouteTable t = BuildSpecs(routes);
  const SocketAddress mapped = Addr("[::ffff:10.1.2.3]:1");
  const SocketAddress in16 = Addr("10.1.9.9:1");
  const SocketAddress in8 = Addr("10.9.9.9:1");
  const SocketAddress outside = Addr("172.16.0.1:1");
  Head slice("X-Slice: 1\r\n");
  Head plain("");
  EXPECT_EQ(Winner(t, "h", "/", &mapped, slice.h()), 6u);
  EXPECT_EQ(Winner(t, "h", "/", &in16, slice.h()), 5u);  // /16 beats /8 + header
  EXPECT_EQ(Winner(t, "h", "/", &in8, slice.h()), 4u);
  EXPECT_EQ(Winner(t, "h", "/", &in8, plain.h()), 3u);
  EXPECT_EQ(Winner(t, "h", "/", &outside, slice.h()), 2u);  // any CIDR would beat header only
  EXPECT_EQ(Winner(t, "h", "/", &outside, plain.h()), 1u);
}

// The winner depends only on specificity, not on declaration order (except for exact ties).
TEST(RouteTableTest, PrecedenceIsIndependentOfDeclarationOrder) {
  std::vector<config::Route> routes = {
      CondRoute("*", "/", {}, {}),
      CondRoute("*", "/api", {}, {}),
      CondRoute("*", "/api", {"10.0.0.0/8"}, {}),
      CondRoute("*", "/api", {"10.1.0.0/16", "2001:db8::/32"}, {}),
      CondRoute("*", "/api", {"10.0.0.0/8"}, Hdr("X-Slice", "slow")),
      CondRoute("*", "/api", {}, Hdr("X-Slice")),
      CondRoute("*", "/api/v2", {}, {}),
      CondRoute("*.example.com", "/", {}, {}),
      CondRoute("*.example.com", "/api", {"10.0.0.0/8"}, {}),
      CondRoute("*.a.example.com", "/", {}, {}),
      CondRoute("x.a.example.com", "/", {}, {}),
      CondRoute("x.a.example.com", "/", {"2001:db8::/48"}, {}),
      CondRoute("x.a.example.com", "/api", {}, Hdr("x-slice", "fast")),
  };
  for (size_t i = 0; i < routes.size(); ++i) routes[i].pool = std::to_string(i + 1);
  const std::vector<SocketAddress> clients = {Addr("10.1.2.3:1"), Addr("10.9.9.9:1"),
                                              Addr("[2001:db8::1]:1"), Addr("[2001:db8:1::1]:1"),
                                              Addr("172.16.0.1:1")};
  Head slow("X-Slice: slow\r\n");
  Head fast("X-Slice: fast\r\n");
  Head plain("");
  const std::vector<const http::MessageHead*> heads = {nullptr, plain.h(), slow.h(), fast.h()};
  const std::vector<std::string> hosts = {"x.a.example.com", "y.a.example.com", "b.example.com",
                                          "example.com",     "other.org",       ""};
  const std::vector<std::string> paths = {"/", "/api", "/api/v2/z", "/apix", "/other"};

  // Pool name = original position + 1, so winners are comparable across orders.
  const auto winners = [&](const std::vector<config::Route>& rs) {
    RouteTable t = BuildSpecs(rs);
    std::vector<std::string> out;
    for (const auto& host : hosts) {
      for (const auto& path : paths) {
        for (const SocketAddress& c : clients) {
          for (const http::MessageHead* h : heads) {
            const RouteEntry* e = t.MatchEntry(RouteRequest{host, path, &c, h});
            out.push_back(e == nullptr ? "-" : e->route.pool);
          }
        }
      }
    }
    return out;
  };
  const std::vector<std::string> expected = winners(routes);
  // Spot checks that the reference itself follows the rules.
  RouteTable ref = BuildSpecs(routes);
  EXPECT_EQ(ref.MatchEntry({"x.a.example.com", "/api/z", &clients[2], fast.h()})->route.pool, "13");
  EXPECT_EQ(ref.MatchEntry({"x.a.example.com", "/api/z", &clients[2], slow.h()})->route.pool, "12");
  EXPECT_EQ(ref.MatchEntry({"x.a.example.com", "/", &clients[3], slow.h()})->route.pool, "11");
  EXPECT_EQ(ref.MatchEntry({"y.a.example.com", "/api", &clients[0], slow.h()})->route.pool, "10");
  EXPECT_EQ(ref.MatchEntry({"b.example.com", "/api", &clients[1], slow.h()})->route.pool, "9");
  EXPECT_EQ(ref.MatchEntry({"b.example.com", "/api", &clients[4], slow.h()})->route.pool, "8");
  EXPECT_EQ(ref.MatchEntry({"o", "/api/v2", &clients[0], slow.h()})->route.pool, "7");
  EXPECT_EQ(ref.MatchEntry({"o", "/api", &clients[4], slow.h()})->route.pool, "6");
  EXPECT_EQ(ref.MatchEntry({"o", "/api", &clients[1], slow.h()})->route.pool, "5");
  EXPECT_EQ(ref.MatchEntry({"o", "/api", &clients[0], slow.h()})->route.pool, "4");
  EXPECT_EQ(ref.MatchEntry({"o", "/api", &clients[2], nullptr})->route.pool, "4");
  EXPECT_EQ(ref.MatchEntry({"o", "/api", &clients[1], plain.h()})->route.pool, "3");
  EXPECT_EQ(ref.MatchEntry({"o", "/api", &clients[4], plain.h()})->route.pool, "2");
  EXPECT_EQ(ref.MatchEntry({"o", "/", &clients[0], slow.h()})->route.pool, "1");

  // Routes that never match the requests above; they make buckets large enough to be probed
  // through the path index instead of scanned, which must not change any winner.
  std::vector<config::Route> padding;
  for (int i = 0; i < 10; ++i) {
    for (const char* host : {"*", "x.a.example.com", "*.example.com"}) {
      padding.push_back(CondRoute(host, "/zz" + std::string(i, 'z'), {}, {}, "pad"));
      padding.push_back(CondRoute(host, "/ap" + std::to_string(i), {"10.0.0.0/8"}, {}, "pad"));
    }
  }
  std::mt19937 rng(7);
  for (int round = 0; round < 60; ++round) {
    std::vector<config::Route> shuffled = routes;
    if (round % 2 == 1) shuffled.insert(shuffled.end(), padding.begin(), padding.end());
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    ASSERT_EQ(winners(shuffled), expected) << "round " << round;
  }
}

TEST(RouteTableTest, ExactTiesGoToTheFirstDeclaredOrAdded) {
  const config::Route a = CondRoute("*", "/x", {"10.0.0.0/8"}, Hdr("X-A"), "a");
  const config::Route b = CondRoute("*", "/x", {"10.0.0.0/8"}, Hdr("X-B"), "b");
  const SocketAddress client = Addr("10.0.0.1:1");
  Head both("X-A: 1\r\nX-B: 1\r\n");
  EXPECT_EQ(BuildSpecs({a, b}).MatchEntry({"h", "/x", &client, both.h()})->route.pool, "a");
  EXPECT_EQ(BuildSpecs({b, a}).MatchEntry({"h", "/x", &client, both.h()})->route.pool, "b");
  // Order is declaration order, not id order: a route added later with a smaller id loses.
  std::vector<RouteSpec> specs = {{9, b, 0}, {2, a, 1}};
  EXPECT_EQ(RouteTable::Build(specs).MatchEntry({"h", "/x", &client, both.h()})->id, 9u);
}

TEST(RouteTableTest, HundredsOfRoutes) {
  std::vector<config::Route> routes;
  for (int i = 0; i < 300; ++i) {
    routes.push_back(MakeRoute("svc" + std::to_string(i) + ".example.com", "/", "p"));
    routes.push_back(MakeRoute("*.team" + std::to_string(i) + ".example.net", "/api", "p"));
    routes.push_back(MakeRoute("*", "/service-" + std::to_string(i) + "/", "p"));
  }
  RouteTable t = Build(routes);
  EXPECT_EQ(t.Match("svc123.example.com", "/"), 3 * 123);
  EXPECT_EQ(t.Match("a.b.team77.example.net", "/api/x"), 3 * 77 + 1);
  EXPECT_EQ(t.Match("a.b.team77.example.net", "/ap"), -1);
  EXPECT_EQ(t.Match("zzz", "/service-299/x"), 3 * 299 + 2);
  EXPECT_EQ(t.Match("zzz", "/service-300/x"), -1);
}

TEST(RouteTableTest, CopiedTableStillMatches) {
  RouteTable t = BuildSpecs({CondRoute("h.example", "/a", {"10.0.0.0/8"}, Hdr("X"))});
  RouteTable copy = t;
  t = RouteTable();
  const SocketAddress client = Addr("10.0.0.1:1");
  Head head("X: y\r\n");
  EXPECT_EQ(Winner(copy, "h.example", "/a/b", &client, head.h()), 1u);
  EXPECT_EQ(t.Match("h.example", "/a"), -1);
}

}  // namespace
}  // namespace l7px::proxy
