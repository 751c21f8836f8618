// Untrusted JSON through what l7px wrote around nlohmann::json: the strict reading
// (base/strict_json.h: unique keys, depth and size limits, errors as values) and the route
// validator of POST /routes (config/route_json.h). Accepted documents must survive
// DumpJson -> ParseJson unchanged; accepted routes must survive RouteJson -> DumpJson ->
// ParseJson -> RouteFromJson unchanged; the admin API's one call, RouteFromJsonText, must agree
// with the two steps it stands for. Nothing may crash or abort (the library is built without
// exceptions, so a misuse of it would abort).
//
// Input: byte 0 = max_depth (1..64, or the default 64 when 0); the rest is the JSON text.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/strict_json.h"
#include "config/config.h"
#include "config/route_json.h"
#include "fuzz_check.h"

namespace {

using l7px::Json;

std::vector<std::string> CidrStrings(const l7px::config::Route& r) {
  std::vector<std::string> out;
  for (const l7px::Cidr& c : r.client_cidr) out.push_back(c.ToString());
  return out;
}

// The route validator on a parsed document; returns whether it accepted it.
bool CheckRoute(const Json& json) {
  const absl::StatusOr<l7px::config::Route> route = l7px::config::RouteFromJson(json);
  if (!route.ok()) {
    L7PX_FUZZ_CHECK(route.status().code() == absl::StatusCode::kInvalidArgument);
    L7PX_FUZZ_CHECK(!route.status().message().empty());
    return false;
  }
  const std::string text = l7px::DumpJson(l7px::config::RouteJson(7, *route));
  absl::StatusOr<Json> written = l7px::ParseJson(text);
  L7PX_FUZZ_CHECK(written.ok());
  // "id" is output only: POST bodies must not carry it.
  L7PX_FUZZ_CHECK(written->erase("id") == 1);
  const absl::StatusOr<l7px::config::Route> again = l7px::config::RouteFromJson(*written);
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
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  l7px::JsonLimits limits;
  if (data[0] != 0) limits.max_depth = 1 + data[0] % 64;
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const absl::StatusOr<Json> json = l7px::ParseJson(text, limits);
  if (!json.ok()) {
    L7PX_FUZZ_CHECK(json.status().code() == absl::StatusCode::kInvalidArgument);
    L7PX_FUZZ_CHECK(json.status().message().substr(0, 8) == "bad JSON");
  } else {
    const std::string written = l7px::DumpJson(*json);
    const absl::StatusOr<Json> again = l7px::ParseJson(written, limits);
    if (!again.ok() || *again != *json) {
      std::fprintf(stderr, "JSON round trip differs:\n%s\n", written.c_str());
      L7PX_FUZZ_CHECK(again.ok() && *again == *json);
    }
  }
  const bool accepted = json.ok() && CheckRoute(*json);
  if (data[0] == 0) {  // the admin API's limits
    L7PX_FUZZ_CHECK(l7px::config::RouteFromJsonText(text).ok() == accepted);
  }
  return 0;
}
