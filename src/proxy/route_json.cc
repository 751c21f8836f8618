#include "proxy/route_json.h"

#include <arpa/inet.h>

#include <algorithm>
#include <string_view>

#include "base/strings.h"
#include "fmt/format.h"

namespace l7px::proxy {
namespace {

// The rules below mirror the config loader's (config.cc), so a route posted at runtime is
// accepted exactly when the same route in the file would be.

bool IsPoolNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Labels of [a-z0-9_-], 1..63 bytes, total <= 253; already lower-cased.
bool IsHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  size_t label = 0;
  for (char c : host) {
    if (c == '.') {
      if (label == 0) return false;
      label = 0;
      continue;
    }
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
    if (++label > 63) return false;
  }
  return label > 0;
}

bool IsBracketedIpv6(std::string_view host) {
  if (host.size() < 3 || host.size() > 64 || host.front() != '[' || host.back() != ']') {
    return false;
  }
  std::string ip(host.substr(1, host.size() - 2));
  if (ip.find('\0') != std::string::npos) return false;
  in6_addr addr;
  return inet_pton(AF_INET6, ip.c_str(), &addr) == 1;
}

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
  for (char& c : host) c = AsciiLower(c);
  bool ok = false;
  if (host == "*") {
    ok = true;
  } else if (host.size() > 2 && host[0] == '*' && host[1] == '.') {
    ok = IsHostName(std::string_view(host).substr(2));
  } else if (!host.empty() && host.front() == '[') {
    ok = IsBracketedIpv6(host);
  } else {
    ok = IsHostName(host);
  }
  if (!ok) {
    return Bad("host", fmt::format("bad host {} (use \"*\", \"*.example.com\" or \"example.com\")",
                                   Shown(host)));
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
  const bool bad_char = std::any_of(text.begin(), text.end(), [](char c) {
    const unsigned char u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7f || c == '?' || c == '#';
  });
  if (bad_char || text.size() > 4096) {
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
      if (match.name.empty() || match.name.size() > 256 ||
          !std::all_of(match.name.begin(), match.name.end(), IsTokenChar)) {
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
      const bool bad = std::any_of(text.begin(), text.end(), [](char c) {
        const unsigned char u = static_cast<unsigned char>(c);
        return (u < 0x20 && c != '\t') || u == 0x7f;
      });
      if (bad || text.size() > 4096) {
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
  if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), IsPoolNameChar)) {
    return Bad("pool", fmt::format("bad pool name {} (1..64 of A-Z a-z 0-9 _ - .)", Shown(name)));
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
