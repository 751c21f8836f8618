// JSON from the admin API (ParseJson) and routes built from it (proxy::RouteFromJson).
// Accepted documents must survive a write/parse round trip unchanged; accepted routes must
// survive WriteRouteJson -> ParseJson -> RouteFromJson unchanged.
//
// Input: byte 0 = max_depth (1..64, or the default 64 when 0); the rest is the JSON text.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/json.h"
#include "config/config.h"
#include "fuzz_check.h"
#include "proxy/route_json.h"

namespace {

using l7px::JsonValue;

std::string Write(const JsonValue& v) {
  std::string out;
  l7px::JsonWriter w(&out);
  w.Value(v);
  return out;
}

std::vector<std::string> CidrStrings(const l7px::config::Route& r) {
  std::vector<std::string> out;
  for (const l7px::Cidr& c : r.client_cidr) out.push_back(c.ToString());
  return out;
}

void CheckRoute(const JsonValue& json) {
  const absl::StatusOr<l7px::config::Route> route = l7px::proxy::RouteFromJson(json);
  if (!route.ok()) {
    L7PX_FUZZ_CHECK(!route.status().message().empty());
    return;
  }
  std::string text;
  l7px::JsonWriter w(&text);
  l7px::proxy::WriteRouteJson(w, 7, *route);
  const absl::StatusOr<JsonValue> written = l7px::ParseJson(text);
  L7PX_FUZZ_CHECK(written.ok());
  // "id" is output only: POST bodies must not carry it.
  std::vector<JsonValue::Member> members;
  for (const JsonValue::Member& m : written->members()) {
    if (m.first != "id") members.push_back(m);
  }
  const absl::StatusOr<l7px::config::Route> again =
      l7px::proxy::RouteFromJson(JsonValue::Object(std::move(members)));
  if (!again.ok()) {
    std::fprintf(stderr, "written route does not parse back: %s\n%s\n",
                 std::string(again.status().message()).c_str(), text.c_str());
    L7PX_FUZZ_CHECK(again.ok());
  }
  L7PX_FUZZ_CHECK(again->host == route->host);
  L7PX_FUZZ_CHECK(again->path == route->path);
  L7PX_FUZZ_CHECK(again->pool == route->pool);
  L7PX_FUZZ_CHECK(CidrStrings(*again) == CidrStrings(*route));
  L7PX_FUZZ_CHECK(again->header.has_value() == route->header.has_value());
  if (route->header.has_value()) {
    L7PX_FUZZ_CHECK(again->header->name == route->header->name);
    L7PX_FUZZ_CHECK(again->header->value == route->header->value);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  l7px::JsonLimits limits;
  if (data[0] != 0) limits.max_depth = 1 + data[0] % 64;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const absl::StatusOr<JsonValue> json = l7px::ParseJson(text, limits);
  if (!json.ok()) {
    L7PX_FUZZ_CHECK(json.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  const std::string written = Write(*json);
  const absl::StatusOr<JsonValue> again = l7px::ParseJson(written, limits);
  if (!again.ok() || !(*again == *json)) {
    std::fprintf(stderr, "JSON round trip differs:\n%s\n", written.c_str());
    L7PX_FUZZ_CHECK(again.ok() && *again == *json);
  }
  CheckRoute(*json);
  return 0;
}
