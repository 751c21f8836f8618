#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "base/strict_json.h"
#include "config/config.h"

namespace l7px::config {

// JSON form of a route for the admin API (docs/operating.md, "Admin API"), members in this order:
//   {"id": 7, "host": "*", "path": "/", "client_cidr": ["10.0.0.0/8"],
//    "header": {"name": "X-Slice", "value": "slow"}, "pool": "default"}
// "header" is null when the route has none; "value" is null when the header only has to be
// present.
Json RouteJson(uint64_t id, const Route& route);

// A route from a POST /routes body. Validates like the config loader (the rules are
// config/route_rules.h): host "*", "*.suffix", a host name or a bracketed IPv6 literal
// (lower-cased); path starting with '/' without spaces, controls, '?' or '#'; client_cidr a CIDR
// string or an array of them; header null or {"name": token, "value": string|null}; pool a pool
// name (required; whether the pool exists is the caller's check). Missing host/path/client_cidr/
// header take the config defaults. Keys are checked in document order; unknown keys and "id" are
// errors. Errors are InvalidArgument and name the key ("route.path: bad path ...").
absl::StatusOr<Route> RouteFromJson(const Json& json);

// ParseJson (base/strict_json.h: its "bad JSON ..." errors) then RouteFromJson: untrusted text.
absl::StatusOr<Route> RouteFromJsonText(std::string_view text);

}  // namespace l7px::config
