#include "proxy/route_json.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/json.h"

namespace l7px::proxy {
namespace {

absl::StatusOr<config::Route> FromText(std::string_view text) {
  absl::StatusOr<JsonValue> json = ParseJson(text);
  EXPECT_TRUE(json.ok()) << text << ": " << json.status();
  if (!json.ok()) return json.status();
  return RouteFromJson(*json);
}

std::string ErrorOf(std::string_view text) {
  absl::StatusOr<config::Route> r = FromText(text);
  if (r.ok()) return "ok";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

TEST(RouteJsonTest, DefaultRouteRendersInTheDesignShape) {
  RouteEntry e;
  e.id = 7;
  e.route.pool = "default";
  EXPECT_EQ(RouteToJson(e),
            R"({"id":7,"host":"*","path":"/","client_cidr":[],"header":null,"pool":"default"})");
}

TEST(RouteJsonTest, FullRouteRenders) {
  RouteEntry e;
  e.id = 12;
  e.route.host = "*.example.com";
  e.route.path = "/api/\"q\"";
  e.route.client_cidr = {*Cidr::Parse("10.0.0.0/8"), *Cidr::Parse("2001:db8::/32")};
  e.route.header = config::HeaderMatch{"X-Slice", "slow"};
  e.route.pool = "mobile";
  EXPECT_EQ(RouteToJson(e), R"({"id":12,"host":"*.example.com","path":"/api/\"q\"",)"
                            R"("client_cidr":["10.0.0.0/8","2001:db8::/32"],)"
                            R"("header":{"name":"X-Slice","value":"slow"},"pool":"mobile"})");
  e.route.header->value.reset();
  EXPECT_NE(RouteToJson(e).find(R"("header":{"name":"X-Slice","value":null})"), std::string::npos);
}

TEST(RouteJsonTest, WriterComposesAList) {
  std::string out;
  JsonWriter w(&out);
  config::Route r;
  r.pool = "a";
  w.BeginObject().Key("routes").BeginArray();
  WriteRouteJson(w, 1, r);
  WriteRouteJson(w, 2, r);
  w.EndArray().EndObject();
  absl::StatusOr<JsonValue> v = ParseJson(out);
  ASSERT_TRUE(v.ok()) << out;
  ASSERT_EQ(v->Find("routes")->items().size(), 2u);
  EXPECT_EQ(v->Find("routes")->items()[1].Find("id")->int64(), 2);
}

TEST(RouteJsonTest, ParsesAFullRoute) {
  absl::StatusOr<config::Route> r = FromText(
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
  absl::StatusOr<config::Route> r = FromText(R"({"pool": "p"})");
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
  RouteEntry e;
  e.id = 3;
  e.route.host = "*.b.example";
  e.route.path = "/x";
  e.route.client_cidr = {*Cidr::Parse("10.0.0.0/8")};
  e.route.header = config::HeaderMatch{"X-A", std::nullopt};
  e.route.pool = "p1";
  absl::StatusOr<JsonValue> json = ParseJson(RouteToJson(e));
  ASSERT_TRUE(json.ok());
  // The server's answer carries an id; strip it to post the route again.
  std::vector<JsonValue::Member> members;
  for (const auto& m : json->members()) {
    if (m.first != "id") members.push_back(m);
  }
  absl::StatusOr<config::Route> back = RouteFromJson(JsonValue::Object(members));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->host, e.route.host);
  EXPECT_EQ(back->path, e.route.path);
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
    const std::string error = ErrorOf(c.json);
    EXPECT_NE(error.find(c.error), std::string::npos) << c.json << " -> " << error;
  }
}

TEST(RouteJsonTest, ErrorsQuoteUntrustedBytesSafely) {
  const std::string error = ErrorOf(R"({"pool": "p", "path": "x\n\u0001"})");
  EXPECT_NE(error.find(R"("x\n\u0001")"), std::string::npos) << error;
}

}  // namespace
}  // namespace l7px::proxy
