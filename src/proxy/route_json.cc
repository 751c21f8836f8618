#include "proxy/route_json.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string_view>

#include "base/strings.h"
#include "config/route_rules.h"
#include "fmt/format.h"

namespace l7px::proxy {
namespace {

// Validation rules are the config loader's (config/route_rules.h).

std::string Shown(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s.substr(0, 200));
  return out;
}

absl::Status Bad(std::string_view key, std::string_view reason) {
  return absl::InvalidArgumentError(fmt::format("route.{}: {}", key, reason));
}

absl::Status WrongType(std::string_view key, std::string_view expected) {
  return Bad(key, fmt::format("must be {}", expected));
}

absl::Status LoadHost(const JsonValue& v, std::string* out) {
  if (!v.is_string()) return WrongType("host", "a string");
  std::string host = v.string();
  if (!config::NormalizeRouteHost(&host)) {
    return Bad("host", fmt::format("bad host {} ({})", Shown(host), config::kHostRule));
  }
  *out = std::move(host);
  return absl::OkStatus();
}

absl::Status LoadPath(const JsonValue& v, std::string* out) {
  if (!v.is_string()) return WrongType("path", "a string");
  const std::string& text = v.string();
  if (text.empty() || text.front() != '/') {
    return Bad("path", fmt::format("bad path {} (must start with '/')", Shown(text)));
  }
  if (!config::IsValidRoutePath(text)) {
    return Bad("path",
               fmt::format("bad path {} (no spaces, control characters, '?' or '#'; at most 4096 "
                           "bytes)",
                           Shown(text)));
  }
  *out = text;
  return absl::OkStatus();
}

absl::Status LoadCidr(const JsonValue& v, std::vector<Cidr>* out) {
  if (!v.is_string()) return WrongType("client_cidr", "a CIDR string or an array of them");
  absl::StatusOr<Cidr> cidr = Cidr::Parse(v.string());
  if (!cidr.ok()) return Bad("client_cidr", ToStd(cidr.status().message()));
  out->push_back(*cidr);
  return absl::OkStatus();
}

absl::Status LoadCidrs(const JsonValue& v, std::vector<Cidr>* out) {
  if (v.is_string()) return LoadCidr(v, out);
  if (!v.is_array()) return WrongType("client_cidr", "a CIDR string or an array of them");
  for (const JsonValue& item : v.items()) {
    if (absl::Status s = LoadCidr(item, out); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status LoadHeader(const JsonValue& v, std::optional<config::HeaderMatch>* out) {
  if (v.is_null()) {
    out->reset();
    return absl::OkStatus();
  }
  if (!v.is_object()) return WrongType("header", "null or {\"name\": ..., \"value\": ...}");
  config::HeaderMatch match;
  bool has_name = false;
  for (const auto& [key, value] : v.members()) {
    if (key == "name") {
      if (!value.is_string()) return WrongType("header.name", "a string");
      match.name = value.string();
      if (!config::IsValidHeaderName(match.name)) {
        return Bad("header.name", fmt::format("bad header name {}", Shown(match.name)));
      }
      has_name = true;
    } else if (key == "value") {
      if (value.is_null()) {
        match.value.reset();
        continue;
      }
      if (!value.is_string()) return WrongType("header.value", "a string or null");
      const std::string& text = value.string();
      if (!config::IsValidHeaderValue(text)) {
        return Bad("header.value", fmt::format("bad header value {}", Shown(text)));
      }
      match.value = text;
    } else {
      return Bad("header",
                 fmt::format("unknown key {} (expected one of: name, value)", Shown(key)));
    }
  }
  if (!has_name) return Bad("header", "missing required key \"name\"");
  *out = std::move(match);
  return absl::OkStatus();
}

absl::Status LoadPool(const JsonValue& v, std::string* out) {
  if (!v.is_string()) return WrongType("pool", "a string");
  const std::string& name = v.string();
  if (!config::IsValidPoolName(name)) {
    return Bad("pool", fmt::format("bad pool name {} ({})", Shown(name), config::kPoolNameRule));
  }
  *out = name;
  return absl::OkStatus();
}

}  // namespace

void WriteRouteJson(JsonWriter& w, uint64_t id, const config::Route& route) {
  w.BeginObject();
  w.Key("id").Uint(id);
  w.Key("host").String(route.host);
  w.Key("path").String(route.path);
  w.Key("client_cidr").BeginArray();
  for (const Cidr& cidr : route.client_cidr) w.String(cidr.ToString());
  w.EndArray();
  w.Key("header");
  if (route.header.has_value()) {
    w.BeginObject().Key("name").String(route.header->name).Key("value");
    if (route.header->value.has_value()) {
      w.String(*route.header->value);
    } else {
      w.Null();
    }
    w.EndObject();
  } else {
    w.Null();
  }
  w.Key("pool").String(route.pool);
  w.EndObject();
}

std::string RouteToJson(const RouteEntry& entry) {
  std::string out;
  JsonWriter w(&out);
  WriteRouteJson(w, entry.id, entry.route);
  return out;
}

absl::StatusOr<config::Route> RouteFromJson(const JsonValue& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("route: must be a JSON object");
  config::Route route;
  bool has_pool = false;
  for (const auto& [key, value] : json.members()) {
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
          Shown(key)));
    }
    if (!s.ok()) return s;
  }
  if (!has_pool) return absl::InvalidArgumentError("route: missing required key \"pool\"");
  return route;
}

}  // namespace l7px::proxy
