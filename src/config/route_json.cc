#include "config/route_json.h"

#include <string>
#include <utility>
#include <vector>

#include "base/strings.h"
#include "config/route_rules.h"
#include "fmt/format.h"

namespace l7px::config {
namespace {

// Validation rules are the config loader's (config/route_rules.h).

// Untrusted text in an error message: quoted, escaped, at most 200 bytes.
std::string AsJsonString(std::string_view s) { return DumpJson(Json(s.substr(0, 200))); }

absl::Status Bad(std::string_view key, std::string_view reason) {
  return absl::InvalidArgumentError(fmt::format("route.{}: {}", key, reason));
}

absl::Status WrongType(std::string_view key, std::string_view expected) {
  return Bad(key, fmt::format("must be {}", expected));
}

absl::Status LoadHost(const Json& v, std::string* out) {
  const std::string* text = v.get_ptr<const std::string*>();
  if (text == nullptr) return WrongType("host", "a string");
  std::string host = *text;
  if (!NormalizeRouteHost(&host)) {
    return Bad("host", fmt::format("bad host {} ({})", AsJsonString(host), kHostRule));
  }
  *out = std::move(host);
  return absl::OkStatus();
}

absl::Status LoadPath(const Json& v, std::string* out) {
  const std::string* path = v.get_ptr<const std::string*>();
  if (path == nullptr) return WrongType("path", "a string");
  const std::string& text = *path;
  if (text.empty() || text.front() != '/') {
    return Bad("path", fmt::format("bad path {} (must start with '/')", AsJsonString(text)));
  }
  if (!IsValidRoutePath(text)) {
    return Bad("path",
               fmt::format("bad path {} (no spaces, control characters, '?' or '#'; at most 4096 "
                           "bytes)",
                           AsJsonString(text)));
  }
  *out = text;
  return absl::OkStatus();
}

absl::Status LoadCidr(const Json& v, std::vector<Cidr>* out) {
  const std::string* text = v.get_ptr<const std::string*>();
  if (text == nullptr) return WrongType("client_cidr", "a CIDR string or an array of them");
  absl::StatusOr<Cidr> cidr = Cidr::Parse(*text);
  if (!cidr.ok()) return Bad("client_cidr", ToStd(cidr.status().message()));
  out->push_back(*cidr);
  return absl::OkStatus();
}

absl::Status LoadCidrs(const Json& v, std::vector<Cidr>* out) {
  if (v.is_string()) return LoadCidr(v, out);
  const Json::array_t* items = v.get_ptr<const Json::array_t*>();
  if (items == nullptr) return WrongType("client_cidr", "a CIDR string or an array of them");
  for (const Json& item : *items) {
    if (absl::Status s = LoadCidr(item, out); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status LoadHeader(const Json& v, std::optional<HeaderMatch>* out) {
  if (v.is_null()) {
    out->reset();
    return absl::OkStatus();
  }
  const Json::object_t* members = v.get_ptr<const Json::object_t*>();
  if (members == nullptr) {
    return WrongType("header", "null or {\"name\": ..., \"value\": ...}");
  }
  HeaderMatch match;
  bool has_name = false;
  for (const auto& [key, value] : *members) {
    if (key == "name") {
      const std::string* name = value.get_ptr<const std::string*>();
      if (name == nullptr) return WrongType("header.name", "a string");
      match.name = *name;
      if (!IsValidHeaderName(match.name)) {
        return Bad("header.name", fmt::format("bad header name {}", AsJsonString(match.name)));
      }
      has_name = true;
    } else if (key == "value") {
      if (value.is_null()) {
        match.value.reset();
        continue;
      }
      const std::string* text = value.get_ptr<const std::string*>();
      if (text == nullptr) return WrongType("header.value", "a string or null");
      if (!IsValidHeaderValue(*text)) {
        return Bad("header.value", fmt::format("bad header value {}", AsJsonString(*text)));
      }
      match.value = *text;
    } else {
      return Bad("header",
                 fmt::format("unknown key {} (expected one of: name, value)", AsJsonString(key)));
    }
  }
  if (!has_name) return Bad("header", "missing required key \"name\"");
  *out = std::move(match);
  return absl::OkStatus();
}

absl::Status LoadPool(const Json& v, std::string* out) {
  const std::string* name = v.get_ptr<const std::string*>();
  if (name == nullptr) return WrongType("pool", "a string");
  if (!IsValidPoolName(*name)) {
    return Bad("pool", fmt::format("bad pool name {} ({})", AsJsonString(*name), kPoolNameRule));
  }
  *out = *name;
  return absl::OkStatus();
}

}  // namespace

Json RouteJson(uint64_t id, const Route& route) {
  Json cidrs = Json::array();
  for (const Cidr& cidr : route.client_cidr) cidrs.push_back(cidr.ToString());
  Json header;  // null when the route has none
  if (route.header.has_value()) {
    header["name"] = route.header->name;
    header["value"] = route.header->value.has_value() ? Json(*route.header->value) : Json();
  }
  Json json = Json::object();
  json["id"] = id;
  json["host"] = route.host;
  json["path"] = route.path;
  json["client_cidr"] = std::move(cidrs);
  json["header"] = std::move(header);
  json["pool"] = route.pool;
  return json;
}

absl::StatusOr<Route> RouteFromJson(const Json& json) {
  const Json::object_t* members = json.get_ptr<const Json::object_t*>();
  if (members == nullptr) return absl::InvalidArgumentError("route: must be a JSON object");
  Route route;
  bool has_pool = false;
  for (const auto& [key, value] : *members) {
    absl::Status s;
    if (key == "host") {
      s = LoadHost(value, &route.host);
    } else if (key == "path") {
      s = LoadPath(value, &route.path);
    } else if (key == "client_cidr") {
      s = LoadCidrs(value, &route.client_cidr);
    } else if (key == "header") {
      s = LoadHeader(value, &route.header);
    } else if (key == "pool") {
      s = LoadPool(value, &route.pool);
      has_pool = true;
    } else if (key == "id") {
      s = Bad("id", "is assigned by the server; leave it out");
    } else {
      s = absl::InvalidArgumentError(fmt::format(
          "route: unknown key {} (expected one of: host, path, client_cidr, header, pool)",
          AsJsonString(key)));
    }
    if (!s.ok()) return s;
  }
  if (!has_pool) return absl::InvalidArgumentError("route: missing required key \"pool\"");
  return route;
}

absl::StatusOr<Route> RouteFromJsonText(std::string_view text) {
  absl::StatusOr<Json> json = ParseJson(text);
  if (!json.ok()) return json.status();
  return RouteFromJson(*json);
}

}  // namespace l7px::config
