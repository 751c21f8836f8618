#include "config/route_json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/strict_json.h"

namespace l7px::config {
namespace {

absl::StatusOr<Route> FromText(std::string_view text) {
  absl::StatusOr<Json> json = ParseJson(text);
  EXPECT_TRUE(json.ok()) << text << ": " << json.status();
  if (!json.ok()) return json.status();
  return RouteFromJson(*json);
}

std::string RouteError(std::string_view text) {
  absl::StatusOr<Route> r = FromText(text);
  if (r.ok()) return "ok";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST(RouteJsonTest, DefaultRouteRendersInTheDesignShape) {
  Route r;
  r.pool = "default";
  EXPECT_EQ(DumpJson(RouteJson(7, r)),
            R"({"id":7,"host":"*","path":"/","client_cidr":[],"header":null,"pool":"default"})");
}

TEST(RouteJsonTest, FullRouteRenders) {
  Route r;
  r.host = "*.example.com";
  r.path = "/api/\"q\"";
  r.client_cidr = {*Cidr::Parse("10.0.0.0/8"), *Cidr::Parse("2001:db8::/32")};
  r.header = HeaderMatch{"X-Slice", "slow"};
  r.pool = "mobile";
  EXPECT_EQ(DumpJson(RouteJson(12, r)), R"({"id":12,"host":"*.example.com","path":"/api/\"q\"",)"
                                        R"("client_cidr":["10.0.0.0/8","2001:db8::/32"],)"
                                        R"("header":{"name":"X-Slice","value":"slow"},)"
                                        R"("pool":"mobile"})");
  r.header->value.reset();
  EXPECT_NE(DumpJson(RouteJson(12, r)).find(R"("header":{"name":"X-Slice","value":null})"),
            std::string::npos);
}

TEST(RouteJsonTest, ParsesAFullRoute) {
  absl::StatusOr<Route> r = FromText(
      R"({"host": "API.Example.com", "path": "/api", "client_cidr": ["10.1.0.0/16", "::1"],
          "header": {"name": "X-Slice", "value": "slow"}, "pool": "mobile"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->host, "api.example.com");
  EXPECT_EQ(r->path, "/api");
  ASSERT_EQ(r->client_cidr.size(), 2u);
  EXPECT_EQ(r->client_cidr[0].ToString(), "10.1.0.0/16");
  EXPECT_EQ(r->client_cidr[1].ToString(), "::1/128");
  ASSERT_TRUE(r->header.has_value());
  EXPECT_EQ(r->header->name, "X-Slice");
  EXPECT_EQ(r->header->value, "slow");
  EXPECT_EQ(r->pool, "mobile");
}

TEST(RouteJsonTest, DefaultsAndOptionalForms) {
  absl::StatusOr<Route> r = FromText(R"({"pool": "p"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->host, "*");
  EXPECT_EQ(r->path, "/");
  EXPECT_TRUE(r->client_cidr.empty());
  EXPECT_FALSE(r->header.has_value());

  r = FromText(R"({"pool": "p", "client_cidr": "192.168.0.0/24", "header": null})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->client_cidr.size(), 1u);
  EXPECT_FALSE(r->header.has_value());

  r = FromText(R"({"pool": "p", "header": {"name": "X-Debug"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_TRUE(r->header.has_value());
  EXPECT_FALSE(r->header->value.has_value());

  r = FromText(R"({"pool": "p", "header": {"name": "X-Debug", "value": null}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->header->value.has_value());

  r = FromText(R"({"pool": "p", "host": "[::1]"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->host, "[::1]");
}

TEST(RouteJsonTest, RoundTripThroughJson) {
  Route r;
  r.host = "*.b.example";
  r.path = "/x";
  r.client_cidr = {*Cidr::Parse("10.0.0.0/8")};
  r.header = HeaderMatch{"X-A", std::nullopt};
  r.pool = "p1";
  absl::StatusOr<Json> json = ParseJson(DumpJson(RouteJson(3, r)));
  ASSERT_TRUE(json.ok());
  // The server's answer carries an id; strip it to post the route again.
  json->erase("id");
  absl::StatusOr<Route> back = RouteFromJson(*json);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->host, r.host);
  EXPECT_EQ(back->path, r.path);
  ASSERT_EQ(back->client_cidr.size(), 1u);
  EXPECT_EQ(back->client_cidr[0].ToString(), "10.0.0.0/8");
  EXPECT_EQ(back->header->name, "X-A");
  EXPECT_FALSE(back->header->value.has_value());
  EXPECT_EQ(back->pool, "p1");
}

TEST(RouteJsonTest, RejectsWhatTheConfigLoaderRejects) {
  struct Case {
    const char* json;
    const char* error;  // substring
  };
  const std::vector<Case> cases = {
      {R"([])", "must be a JSON object"},
      {R"({})", "missing required key \"pool\""},
      {R"({"id": 7, "pool": "p"})", "route.id: is assigned by the server"},
      {R"({"pool": "p", "weight": 3})", "unknown key \"weight\""},
      {R"({"pool": ""})", "route.pool: bad pool name"},
      {R"({"pool": "a b"})", "route.pool: bad pool name"},
      {R"({"pool": 5})", "route.pool: must be a string"},
      {R"({"pool": "p", "host": "exa mple.com"})", "route.host: bad host"},
      {R"({"pool": "p", "host": "*."})", "route.host: bad host"},
      {R"({"pool": "p", "host": "a..b"})", "route.host: bad host"},
      {R"({"pool": "p", "host": "**"})", "route.host: bad host"},
      {R"({"pool": "p", "host": "[nope]"})", "route.host: bad host"},
      {R"({"pool": "p", "host": ""})", "route.host: bad host"},
      {R"({"pool": "p", "host": null})", "route.host: must be a string"},
      {R"({"pool": "p", "path": "api"})", "route.path: bad path \"api\" (must start with '/')"},
      {R"({"pool": "p", "path": ""})", "route.path: bad path"},
      {R"({"pool": "p", "path": "/a b"})", "route.path: bad path"},
      {R"({"pool": "p", "path": "/a?b"})", "route.path: bad path"},
      {R"({"pool": "p", "path": "/a\u0000"})", "route.path: bad path"},
      {R"({"pool": "p", "client_cidr": ["10.0.0.0/33"]})", "route.client_cidr: bad CIDR"},
      {R"({"pool": "p", "client_cidr": ["nope"]})", "route.client_cidr: bad CIDR"},
      {R"({"pool": "p", "client_cidr": [1]})", "route.client_cidr: must be"},
      {R"({"pool": "p", "client_cidr": {}})", "route.client_cidr: must be"},
      {R"({"pool": "p", "header": "X-A"})", "route.header: must be null or"},
      {R"({"pool": "p", "header": {}})", "route.header: missing required key \"name\""},
      {R"({"pool": "p", "header": {"name": "X A"}})", "route.header.name: bad header name"},
      {R"({"pool": "p", "header": {"name": ""}})", "route.header.name: bad header name"},
      {R"({"pool": "p", "header": {"name": "X:"}})", "route.header.name: bad header name"},
      {R"({"pool": "p", "header": {"name": "X", "value": "a\r\nb"}})",
       "route.header.value: bad header value"},
      {R"({"pool": "p", "header": {"name": "X", "value": 1}})", "route.header.value: must be"},
      {R"({"pool": "p", "header": {"name": "X", "other": 1}})", "unknown key \"other\""},
  };
  for (const Case& c : cases) {
    const std::string error = RouteError(c.json);
    EXPECT_NE(error.find(c.error), std::string::npos) << c.json << " -> " << error;
  }
}

TEST(RouteJsonTest, ErrorsQuoteUntrustedBytesSafely) {
  const std::string error = RouteError(R"({"pool": "p", "path": "x\n\u0001"})");
  EXPECT_NE(error.find(R"("x\n\u0001")"), std::string::npos) << error;
}

TEST(RouteJsonTest, TextIsReadStrictlyThenValidatedInDocumentOrder) {
  absl::StatusOr<Route> r = RouteFromJsonText(R"({"pool": "p", "path": "/x"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->path, "/x");
  // Two "pool"s are an error, not whichever one the parser kept.
  r = RouteFromJsonText(R"({"pool": "a", "pool": "b"})");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "bad JSON: duplicate key \"pool\"");
  r = RouteFromJsonText(R"({"host": "z.test", "pool": )");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message().substr(0, 17), "bad JSON at byte ") << r.status();
  // The first bad key in the document is the one reported.
  EXPECT_EQ(RouteError(R"({"host": "a b", "pool": 5})").substr(0, 11), "route.host:");
  EXPECT_EQ(RouteError(R"({"pool": 5, "host": "a b"})").substr(0, 11), "route.pool:");
}

}  // namespace
}  // namespace l7px::config
