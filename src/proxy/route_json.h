#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "base/json.h"
#include "config/config.h"
#include "proxy/router.h"

namespace l7px::proxy {

// JSON form of a route for the admin API (DESIGN "Admin API"):
//   {"id": 7, "host": "*", "path": "/", "client_cidr": ["10.0.0.0/8"],
//    "header": {"name": "X-Slice", "value": "slow"}, "pool": "default"}
// "header" is null when the route has none; "value" is null when the header only has to be
// present.
void WriteRouteJson(JsonWriter& w, uint64_t id, const config::Route& route);
std::string RouteToJson(const RouteEntry& entry);

// A route from a POST /routes body. Validates like the config loader: host "*", "*.suffix",
// a host name or a bracketed IPv6 literal (lower-cased); path starting with '/' without spaces,
// controls, '?' or '#'; client_cidr a CIDR string or an array of them; header null or
// {"name": token, "value": string|null}; pool a pool name (required; whether the pool exists is
// the caller's check). Missing host/path/client_cidr/header take the config defaults. Unknown
// keys and "id" are errors (InvalidArgument, message names the key).
absl::StatusOr<config::Route> RouteFromJson(const JsonValue& json);

}  // namespace l7px::proxy
