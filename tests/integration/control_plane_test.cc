// Integration: the control plane of the real l7px binary. Two pools (A and B) with the test
// service registered to each under its own service id; routes slice traffic by host, client
// address and header; routes, reloads and drains go through the admin API and `l7px ctl`
// while requests are checked by the X-Service header of the service that answered.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/admin.h"
#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr auto kSettle = std::chrono::seconds(10);  // bound on waiting for observable state
constexpr char kPools[] = "[[pool]]\nname = \"A\"\n[[pool]]\nname = \"B\"\n";
constexpr char kRegisterExtra[] = "default_pool = \"A\"";

// A [[route]] table; `extra` holds further keys (client_cidr, header) verbatim.
std::string Route(const std::string& host, const std::string& path, const std::string& pool,
                  const std::string& extra = "") {
  return "[[route]]\nhost = \"" + host + "\"\npath = \"" + path + "\"\npool = \"" + pool + "\"\n" +
         extra;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

std::vector<std::string> Words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// The row of a `l7px ctl` table whose first column is `first`, split on blanks; empty if none.
std::vector<std::string> TableRow(const std::string& table, const std::string& first) {
  std::istringstream in(table);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> words = Words(line);
    if (!words.empty() && words[0] == first) return words;
  }
  return {};
}

// A member of a JSON object as text ("" when absent): strings as they are, others as JSON.
std::string Member(const Json& object, const std::string& key) {
  const Json* v = FindMember(object, key);
  if (v == nullptr) return "";
  if (const std::string* s = v->get_ptr<const std::string*>()) return *s;
  return DumpJson(*v);
}

// What a response says about where the request went: the X-Service of a 200, else "status N".
std::string Outcome(const std::string& response) {
  const int status = StatusOf(response);
  if (status == 200) return HeaderOf(response, "X-Service");
  return "status " + std::to_string(status);
}

// ---- A strict parser for the Prometheus text exposition format (version 0.0.4) ----

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types;  // family -> counter | gauge | histogram | ...
  std::vector<Sample> samples;
  // The first family whose lines are not one contiguous group (the format requires it); kept
  // apart from syntax errors so a test can still read the values.
  std::string grouping_error;

  // The value of the sample with exactly these labels; NaN when absent.
  double Value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const Sample& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nan("");
  }
};

bool IsMetricNameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool IsMetricNameChar(char c) { return IsMetricNameStart(c) || (c >= '0' && c <= '9'); }
bool IsLabelNameStart(char c) { return IsMetricNameStart(c) && c != ':'; }
bool IsLabelNameChar(char c) { return IsMetricNameChar(c) && c != ':'; }

// A Go-ParseFloat-compatible value as the format allows: decimal/exponent, +Inf, -Inf, NaN.
bool ParseValue(const std::string& text, double* out) {
  if (text == "+Inf" || text == "Inf") {
    *out = INFINITY;
    return true;
  }
  if (text == "-Inf") {
    *out = -INFINITY;
    return true;
  }
  if (text == "NaN") {
    *out = std::nan("");
    return true;
  }
  if (text.empty()) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return false;
    }
  }
  char* end = nullptr;
  *out = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size();
}

// The family a sample belongs to: histogram samples are <family>_bucket/_sum/_count.
std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
      const std::string base = name.substr(0, name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && (it->second == "histogram" || it->second == "summary")) return base;
    }
  }
  return name;
}

// Parses `text`; on the first violation returns false with the line number and reason.
bool ParseExposition(const std::string& text, Exposition* out, std::string* error) {
  auto fail = [&](int line_no, const std::string& line, const std::string& why) {
    *error = "line " + std::to_string(line_no) + ": " + why + ": [" + line + "]";
    return false;
  };
  if (text.empty() || text.back() != '\n') {
    *error = "the exposition must end with a line feed";
    return false;
  }
  std::set<std::string> helped;
  std::set<std::string> finished;  // families whose group of lines has ended
  std::string current;             // family of the group being read
  std::set<std::string> seen_series;
  auto enter = [&](int line_no, const std::string& family) {
    if (family == current) return;
    if (finished.count(family) != 0 && out->grouping_error.empty()) {
      out->grouping_error = "line " + std::to_string(line_no) + ": lines of " + family +
                            " are not one group (interleaved with " + current + ")";
    }
    if (!current.empty()) finished.insert(current);
    current = family;
  };

  std::istringstream in(text);
  int line_no = 0;
  for (std::string line; std::getline(in, line);) {
    ++line_no;
    if (line.empty()) continue;
    if (line[0] == '#') {
      const std::vector<std::string> words = Words(line);
      if (words.size() < 2 || words[0] != "#" || (words[1] != "HELP" && words[1] != "TYPE")) {
        continue;  // a plain comment
      }
      if (words.size() < 3) return fail(line_no, line, "HELP/TYPE without a metric name");
      const std::string& name = words[2];
      if (!IsMetricNameStart(name[0]) || !std::all_of(name.begin(), name.end(), IsMetricNameChar)) {
        return fail(line_no, line, "bad metric name");
      }
      enter(line_no, name);
      if (words[1] == "HELP") {
        if (!helped.insert(name).second) return fail(line_no, line, "second HELP for " + name);
        continue;
      }
      if (words.size() != 4) return fail(line_no, line, "TYPE needs exactly one type");
      static const std::set<std::string> kTypes = {"counter", "gauge", "histogram", "summary",
                                                   "untyped"};
      if (kTypes.count(words[3]) == 0) return fail(line_no, line, "unknown type");
      if (out->types.count(name) != 0) return fail(line_no, line, "second TYPE for " + name);
      for (const Sample& s : out->samples) {
        if (FamilyOf(s.name, {{name, words[3]}}) == name) {
          return fail(line_no, line, "TYPE after samples of " + name);
        }
      }
      out->types[name] = words[3];
      continue;
    }

    Sample s;
    size_t i = 0;
    if (!IsMetricNameStart(line[0])) return fail(line_no, line, "bad metric name");
    while (i < line.size() && IsMetricNameChar(line[i])) ++i;
    s.name = line.substr(0, i);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (true) {
        if (i < line.size() && line[i] == '}') {
          ++i;
          break;
        }
        if (i >= line.size() || !IsLabelNameStart(line[i])) {
          return fail(line_no, line, "bad label name");
        }
        const size_t start = i;
        while (i < line.size() && IsLabelNameChar(line[i])) ++i;
        const std::string label = line.substr(start, i - start);
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          return fail(line_no, line, "label " + label + " needs =\"value\"");
        }
        i += 2;
        std::string value;
        while (true) {
          if (i >= line.size()) return fail(line_no, line, "unterminated label value");
          const char c = line[i++];
          if (c == '"') break;
          if (c != '\\') {
            value.push_back(c);
            continue;
          }
          if (i >= line.size()) return fail(line_no, line, "dangling backslash");
          const char e = line[i++];
          if (e == '\\' || e == '"') {
            value.push_back(e);
          } else if (e == 'n') {
            value.push_back('\n');
          } else {
            return fail(line_no, line, "bad escape in label value");
          }
        }
        if (!s.labels.emplace(label, value).second) {
          return fail(line_no, line, "duplicate label " + label);
        }
        if (i < line.size() && line[i] == ',') {
          ++i;
        } else if (i >= line.size() || line[i] != '}') {
          return fail(line_no, line, "expected , or } after a label");
        }
      }
    }
    if (i >= line.size() || line[i] != ' ') return fail(line_no, line, "expected a blank");
    const std::vector<std::string> rest = Words(line.substr(i));
    if (rest.empty() || rest.size() > 2) return fail(line_no, line, "expected value [timestamp]");
    if (!ParseValue(rest[0], &s.value)) return fail(line_no, line, "bad value");
    const std::string family = FamilyOf(s.name, out->types);
    if (out->types.count(family) == 0) return fail(line_no, line, "sample without a TYPE");
    enter(line_no, family);
    const std::string& type = out->types[family];
    if (type == "histogram") {
      if (s.name == family) return fail(line_no, line, "histogram sample without a suffix");
      if ((s.name == family + "_bucket") != (s.labels.count("le") != 0)) {
        return fail(line_no, line, "le belongs on _bucket samples only");
      }
    } else if (type == "counter" && !(s.value >= 0)) {
      return fail(line_no, line, "negative or NaN counter");
    }
    std::string series = s.name;
    for (const auto& [k, v] : s.labels) series += "\x01" + k + "=" + v;
    if (!seen_series.insert(series).second) return fail(line_no, line, "duplicate series");
    out->samples.push_back(std::move(s));
  }
  return true;
}

// Checks every histogram series: buckets in increasing `le` with non-decreasing cumulative
// counts, a +Inf bucket equal to _count, and a _sum. Returns "" or the first violation.
std::string CheckHistograms(const Exposition& e) {
  for (const auto& [family, type] : e.types) {
    if (type != "histogram") continue;
    // Series key: the labels other than le.
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    for (const Sample& s : e.samples) {
      if (s.name != family + "_bucket") continue;
      std::map<std::string, std::string> key = s.labels;
      double le = 0;
      if (!ParseValue(key["le"], &le)) return family + ": bad le " + key["le"];
      key.erase("le");
      buckets[key].push_back({le, s.value});
    }
    for (const auto& [labels, list] : buckets) {
      std::string where = family;
      for (const auto& [k, v] : labels) where += " " + k + "=" + v;
      for (size_t i = 1; i < list.size(); ++i) {
        if (!(list[i].first > list[i - 1].first)) return where + ": le not increasing";
        if (list[i].second < list[i - 1].second) return where + ": bucket counts decrease";
      }
      if (list.empty() || !std::isinf(list.back().first)) return where + ": no +Inf bucket";
      const double count = e.Value(family + "_count", labels);
      const double sum = e.Value(family + "_sum", labels);
      if (std::isnan(count) || std::isnan(sum)) return where + ": _count or _sum missing";
      if (list.back().second != count) return where + ": +Inf bucket differs from _count";
      if (sum < 0) return where + ": negative _sum";
    }
    // Every _count has its buckets.
    for (const Sample& s : e.samples) {
      if (s.name != family + "_count") continue;
      if (buckets.count(s.labels) == 0) return family + ": _count without buckets";
    }
  }
  return "";
}

TEST(PrometheusParserTest, AcceptsValidAndRejectsBrokenExpositions) {
  const std::string good =
      "# HELP x_total Things.\n# TYPE x_total counter\nx_total{a=\"1\",b=\"q\\\"\\n\"} 3\n"
      "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.3\n"
      "h_count 2\n# TYPE g gauge\ng -1.5e3\n";
  Exposition e;
  std::string error;
  ASSERT_TRUE(ParseExposition(good, &e, &error)) << error;
  EXPECT_EQ(CheckHistograms(e), "");
  EXPECT_EQ(e.Value("x_total", {{"a", "1"}, {"b", "q\"\n"}}), 3);
  EXPECT_EQ(e.Value("g", {}), -1500);

  const std::vector<std::string> bad = {
      "x 1",                                    // no final line feed
      "x 1\n",                                  // no TYPE
      "# TYPE x counter\nx{a=1} 1\n",           // unquoted label value
      "# TYPE x counter\nx -1\n",               // negative counter
      "# TYPE x counter\nx 1\nx 2\n",           // duplicate series
      "# TYPE x gauge\n# TYPE x gauge\nx 1\n",  // second TYPE
      "# TYPE x gauge\nx one\n",                // bad value
      "# TYPE x gauge\nx{a=\"\\t\"} 1\n",       // bad escape
  };
  for (const std::string& text : bad) {
    Exposition b;
    EXPECT_FALSE(ParseExposition(text, &b, &error)) << text;
  }
  Exposition split;
  ASSERT_TRUE(ParseExposition("# TYPE x counter\nx 1\n# TYPE y gauge\ny 1\nx{a=\"b\"} 1\n", &split,
                              &error));
  EXPECT_THAT(split.grouping_error, HasSubstr("lines of x are not one group"));
  EXPECT_EQ(e.grouping_error, "");
  // Histogram consistency.
  for (const std::string& text : {
           std::string("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                       "h_sum 1\nh_count 1\n"),  // decreasing
           std::string("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
                       "h_sum 1\nh_count 3\n"),  // +Inf != count
           std::string(
               "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n"),  // no +Inf
       }) {
    Exposition h;
    ASSERT_TRUE(ParseExposition(text, &h, &error)) << error;
    EXPECT_NE(CheckHistograms(h), "") << text;
  }
}

// ---- The fixture ----

class ControlPlaneTest : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    unsetenv("L7PX_ADMIN_TOKEN");  // `l7px ctl` would use it as its default token
  }

  // Starts l7px with pools A and B, the admin API (with `token`) and `routes`, then the test
  // service as "svc-a" with `a_slots` slots in A and as "svc-b" with `b_slots` slots in B.
  bool StartSliced(const std::string& routes, const std::string& token = "", int a_slots = 2,
                   int b_slots = 3) {
    token_ = token;
    h().EnableAdmin(token);
    if (!StartProxy(std::string(kPools) + routes, "", kRegisterExtra)) return false;
    return StartService({"--pool", "A", "--slots", std::to_string(a_slots), "--service-id",
                         "svc-a"}) != nullptr &&
           StartService({"--pool", "B", "--slots", std::to_string(b_slots), "--service-id",
                         "svc-b"}) != nullptr;
  }

  // Rewrites the config file (same ports and admin section) with pools and routes.
  std::string Rewrite(const std::string& pools_and_routes) {
    return h().WriteConfig(pools_and_routes, "", kRegisterExtra);
  }

  uint16_t admin() { return h().admin_port(); }

  // Where a GET with this Host (and headers) went, on a fresh connection from 127.0.0.1.
  std::string Reach(const std::string& host, const std::string& path = "/",
                    const std::string& headers = "") {
    return Outcome(HttpExchange(front(), GetRequest(path, host, headers), kIo));
  }

  // The same from a socket bound to `source_ip`.
  std::string ReachFrom(const std::string& source_ip, const std::string& host = "any.test",
                        const std::string& headers = "") {
    UniqueFd fd = ConnectFrom(source_ip, front());
    if (!fd) return "cannot connect from " + source_ip;
    if (!SendAll(fd.get(), GetRequest("/", host, headers))) return "cannot send";
    std::string carry;
    return Outcome(RecvHttpResponse(fd.get(), &carry, kIo));
  }

  AdminResponse Admin(const std::string& method, const std::string& path,
                      const std::string& body = "") {
    return AdminCall(admin(), method, path, body, token_);
  }

  std::string RoutesBody() { return Admin("GET", "/routes").body; }

  // Route ids from GET /routes keyed by "host path pool".
  std::map<std::string, std::string> RouteIds() {
    std::map<std::string, std::string> ids;
    const Json routes = AdminJson(admin(), "/routes", nullptr, token_);
    const Json* list = FindMember(routes, "routes");
    if (list == nullptr || !list->is_array()) return ids;
    for (const Json& r : *list) {
      ids[Member(r, "host") + " " + Member(r, "path") + " " + Member(r, "pool")] = Member(r, "id");
    }
    return ids;
  }

  // Waits until the proxy log holds `needle` at least `count` times.
  bool WaitForLog(const std::string& needle, int count = 1) {
    return WaitFor([&] { return CountOf(h().ProxyLog(), needle) >= count; }, kSettle);
  }

  std::string token_;
};

// 1. Host-based slicing.
TEST_F(ControlPlaneTest, HostSlicing) {
  ASSERT_TRUE(StartSliced(Route("a.example", "/", "A") + Route("*.b.example", "/", "B") +
                          Route("*", "/", "A")))
      << h().ProxyLog();

  EXPECT_EQ(Reach("a.example"), "svc-a");
  EXPECT_EQ(Reach("x.b.example"), "svc-b");
  EXPECT_EQ(Reach("deep.x.b.example"), "svc-b");
  EXPECT_EQ(Reach("X.B.Example:8080"), "svc-b");  // hosts compare case-insensitively, no port
  EXPECT_EQ(Reach("b.example"), "svc-a");         // "*.b.example" needs a label before it
  EXPECT_EQ(Reach("xb.example"), "svc-a");
  EXPECT_EQ(Reach("other.test"), "svc-a");
  EXPECT_EQ(Outcome(HttpExchange(front(),
                                 "GET http://y.b.example/p HTTP/1.1\r\nHost: a.example"
                                 "\r\n\r\n")),
            "svc-b");  // an absolute-form target's authority wins over Host

  // Each request on one keep-alive connection is routed on its own.
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  std::string carry;
  for (int i = 0; i < 6; ++i) {
    const bool b = i % 2 == 1;
    ASSERT_TRUE(
        SendAll(fd.get(), GetRequest("/k" + std::to_string(i), b ? "k.b.example" : "a.example")));
    const std::string r = RecvHttpResponse(fd.get(), &carry, kIo);
    EXPECT_EQ(Outcome(r), b ? "svc-b" : "svc-a") << r;
  }
}

// 2. Slicing by client address and by a request header.
TEST_F(ControlPlaneTest, CidrAndHeaderSlicing) {
  ASSERT_TRUE(StartSliced(
      Route("*", "/", "A") + Route("*", "/", "B", "client_cidr = [\"127.0.0.2/32\"]\n") +
      Route("*", "/", "B", "header = { name = \"X-Slice\", value = \"slow\" }\n")))
      << h().ProxyLog();

  EXPECT_EQ(ReachFrom("127.0.0.1"), "svc-a");
  EXPECT_EQ(ReachFrom("127.0.0.2"), "svc-b");
  EXPECT_EQ(ReachFrom("127.0.0.3"), "svc-a");
  EXPECT_EQ(ReachFrom("127.0.0.1", "h.test", "X-Slice: slow\r\n"), "svc-b");
  EXPECT_EQ(ReachFrom("127.0.0.1", "h.test", "x-slice: slow\r\n"), "svc-b");  // name: any case
  EXPECT_EQ(ReachFrom("127.0.0.1", "h.test", "X-Slice: fast\r\n"), "svc-a");
  EXPECT_EQ(ReachFrom("127.0.0.1", "h.test", "X-Slice: Slow\r\n"), "svc-a");  // value: exact
  EXPECT_EQ(ReachFrom("127.0.0.3", "h.test", "X-Slice: slow\r\n"), "svc-b");

  // The access log names the pool and the client of each.
  ASSERT_TRUE(WaitFor([&] { return CountOf(h().AccessLog(), "\n") >= 8; }, kSettle))
      << h().AccessLog();
  EXPECT_THAT(h().AccessLog(), HasSubstr("\"client\":\"127.0.0.2\""));
}

// 3. Routes added and deleted with `l7px ctl` apply to the very next request.
TEST_F(ControlPlaneTest, CtlRouteAddAndDeleteApplyAtOnce) {
  ASSERT_TRUE(StartSliced(Route("*", "/", "A"))) << h().ProxyLog();
  EXPECT_EQ(Reach("api.example", "/v2/items"), "svc-a");

  CommandResult add =
      RunCtl(admin(), {"route", "add", "--host", "api.example", "--path", "/v2", "--pool", "B"});
  ASSERT_EQ(add.exit_code, 0) << add.out << add.err;
  ASSERT_THAT(add.out, StartsWith("added route ")) << add.out;
  const std::string id = Words(add.out)[2];
  EXPECT_EQ(Reach("api.example", "/v2/items"), "svc-b");
  EXPECT_EQ(Reach("api.example", "/v1/items"), "svc-a");
  EXPECT_EQ(Reach("web.example", "/v2/items"), "svc-a");

  // `routes --json` prints GET /routes as is; the table shows the same route.
  CommandResult json = RunCtl(admin(), {"--json", "routes"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(json.out, RoutesBody());
  CommandResult table = RunCtl(admin(), {"routes"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_EQ(TableRow(table.out, id),
            (std::vector<std::string>{id, "api.example", "/v2", "-", "-", "B"}))
      << table.out;

  // CIDR and header-presence routes added at runtime behave like ones from the file.
  CommandResult cidr = RunCtl(admin(), {"route", "add", "--cidr", "127.0.0.3/32", "--pool", "B"});
  ASSERT_EQ(cidr.exit_code, 0) << cidr.err;
  CommandResult header =
      RunCtl(admin(), {"--json", "route", "add", "--header", "X-Debug", "--pool", "B"});
  ASSERT_EQ(header.exit_code, 0) << header.err;
  const absl::StatusOr<Json> added = ParseJson(header.out);
  ASSERT_TRUE(added.ok()) << header.out;
  const std::string header_id = Member(*added, "id");
  ASSERT_NE(header_id, "") << header.out;
  EXPECT_EQ(ReachFrom("127.0.0.3"), "svc-b");
  EXPECT_EQ(ReachFrom("127.0.0.1"), "svc-a");
  EXPECT_EQ(Reach("web.example", "/", "X-Debug: 1\r\n"), "svc-b");
  EXPECT_EQ(Reach("web.example", "/"), "svc-a");

  // Delete: the next request is routed without it.
  CommandResult del = RunCtl(admin(), {"route", "del", id});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  EXPECT_EQ(Reach("api.example", "/v2/items"), "svc-a");
  CommandResult del_header = RunCtl(admin(), {"route", "del", header_id});
  ASSERT_EQ(del_header.exit_code, 0) << del_header.err;
  EXPECT_EQ(Reach("web.example", "/", "X-Debug: 1\r\n"), "svc-a");

  // Refusals change nothing and exit 1.
  const std::string before = RoutesBody();
  CommandResult again = RunCtl(admin(), {"route", "del", id});
  EXPECT_EQ(again.exit_code, 1) << again.out;
  EXPECT_THAT(again.err, HasSubstr("404"));
  CommandResult unknown_pool = RunCtl(admin(), {"route", "add", "--host", "z.test", "--pool", "Z"});
  EXPECT_EQ(unknown_pool.exit_code, 1) << unknown_pool.out;
  EXPECT_THAT(unknown_pool.err, HasSubstr("400"));
  EXPECT_EQ(Admin("POST", "/routes", "{\"host\": \"z.test\", \"pool\": ").status, 400);
  EXPECT_EQ(Admin("DELETE", "/routes/999999").status, 404);
  EXPECT_EQ(RoutesBody(), before);
  EXPECT_EQ(Reach("z.test"), "svc-a");

  // Pools: both, with their registered slots per service id.
  CommandResult pools = RunCtl(admin(), {"pools"});
  ASSERT_EQ(pools.exit_code, 0) << pools.err;
  const std::vector<std::string> a = TableRow(pools.out, "A");
  const std::vector<std::string> b = TableRow(pools.out, "B");
  ASSERT_GE(a.size(), 3u) << pools.out;
  ASSERT_GE(b.size(), 3u) << pools.out;
  EXPECT_EQ(a[1], "2") << pools.out;
  EXPECT_EQ(a.back(), "svc-a:2") << pools.out;
  EXPECT_EQ(b[1], "3") << pools.out;
  EXPECT_EQ(b.back(), "svc-b:3") << pools.out;

  CommandResult pools_json = RunCtl(admin(), {"--json", "pools"});
  ASSERT_EQ(pools_json.exit_code, 0) << pools_json.err;
  const absl::StatusOr<Json> pj = ParseJson(pools_json.out);
  ASSERT_TRUE(pj.ok() && FindMember(*pj, "pools") != nullptr) << pools_json.out;
  const Json& pool_list = *FindMember(*pj, "pools");
  ASSERT_TRUE(pool_list.is_array()) << pools_json.out;
  std::map<std::string, std::string> seen;
  for (const Json& p : pool_list) {
    seen[Member(p, "name")] = Member(p, "registered") + " " + Member(p, "services");
  }
  EXPECT_EQ(seen, (std::map<std::string, std::string>{{"A", "2 {\"svc-a\":2}"},
                                                      {"B", "3 {\"svc-b\":3}"}}))
      << pools_json.out;
}

// 4. A reload with a broken file changes nothing; a valid one applies.
TEST_F(ControlPlaneTest, ReloadRejectsBrokenFilesWhole) {
  const std::string routes = Route("b.example", "/", "B") + Route("*", "/", "A");
  ASSERT_TRUE(StartSliced(routes)) << h().ProxyLog();
  const std::string routes_before = RoutesBody();
  ASSERT_THAT(routes_before, HasSubstr("b.example"));
  auto routing_unchanged = [&] {
    EXPECT_EQ(Reach("b.example"), "svc-b");
    EXPECT_EQ(Reach("c.example"), "svc-a");
    EXPECT_EQ(RoutesBody(), routes_before);
  };

  // A syntax error, which would also have moved b.example to A.
  Rewrite(std::string(kPools) + Route("b.example", "/", "A") + "[[route]\nhost = \"*\"\n");
  AdminResponse r = Admin("POST", "/reload");
  EXPECT_EQ(r.status, 400) << r.raw;
  EXPECT_THAT(r.body, HasSubstr("error"));
  EXPECT_THAT(r.body, ::testing::ContainsRegex("l7px\\.toml:[0-9]+:"))
      << "the reason should name the file and line: " << r.body;
  CommandResult ctl = RunCtl(admin(), {"reload"});
  EXPECT_EQ(ctl.exit_code, 1) << ctl.out;
  EXPECT_THAT(ctl.err, HasSubstr("400"));
  h().proxy().Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("reload rejected", 3)) << h().ProxyLog();
  ASSERT_TRUE(h().proxy().running());
  routing_unchanged();

  // Well-formed, but a route names a pool the file does not declare.
  Rewrite(std::string(kPools) + Route("b.example", "/", "C") + Route("*", "/", "A"));
  r = Admin("POST", "/reload");
  EXPECT_EQ(r.status, 400) << r.raw;
  EXPECT_THAT(r.body, HasSubstr("\\\"C\\\"")) << "the reason should name the pool: " << r.body;
  ctl = RunCtl(admin(), {"reload"});
  EXPECT_EQ(ctl.exit_code, 1) << ctl.out;
  h().proxy().Signal(SIGHUP);
  ASSERT_TRUE(WaitForLog("reload rejected", 6)) << h().ProxyLog();
  routing_unchanged();
  EXPECT_TRUE(PoolEntry(admin(), "C").is_null());

  // A valid edit through SIGHUP: b.example moves to A, and a new pool C gets c.example.
  Rewrite(std::string(kPools) + "[[pool]]\nname = \"C\"\n" + Route("b.example", "/", "A") +
          Route("c.example", "/", "C") + Route("*", "/", "A"));
  h().proxy().Signal(SIGHUP);
  ASSERT_TRUE(WaitFor([&] { return RoutesBody().find("c.example") != std::string::npos; }, kSettle))
      << h().ProxyLog();
  EXPECT_EQ(Reach("b.example"), "svc-a");
  ASSERT_NE(StartService({"--pool", "C", "--slots", "1", "--service-id", "svc-c"}), nullptr);
  EXPECT_EQ(Reach("c.example"), "svc-c");
  EXPECT_EQ(RegisteredSlots(admin(), "C"), 1);
  EXPECT_EQ(RegisteredSlots(admin(), "B"), 3);  // untouched pools keep their slots
  EXPECT_TRUE(h().proxy().running());
}

// 5. Continuous load while routes change and the config is reloaded ten times.
TEST_F(ControlPlaneTest, NoFailedRequestWhileRoutesChangeAndConfigReloads) {
  const std::string file_one = Route("b.example", "/", "B") + Route("*", "/", "A");
  const std::string file_two =
      Route("b.example", "/", "A") + Route("*", "/x", "B") + Route("*", "/", "A");
  ASSERT_TRUE(StartSliced(file_one, "", 4, 4)) << h().ProxyLog();

  constexpr int kClients = 8;
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> failed{0};
  std::mutex mu;
  std::string first_failure;
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&, t] {
      UniqueFd fd;
      std::string carry;
      for (int i = 0; !stop.load(); ++i) {
        if (!fd) {
          fd = ConnectTcp(front());
          carry.clear();
        }
        static const char* kHosts[] = {"b.example", "a.example", "c.example"};
        const std::string path = (i % 2 == 0 ? "/x/" : "/y/") + std::to_string(t);
        const std::string r = fd && SendAll(fd.get(), GetRequest(path, kHosts[i % 3]))
                                  ? RecvHttpResponse(fd.get(), &carry, kIo)
                                  : "";
        if (StatusOf(r) == 200) {
          ok.fetch_add(1);
          if (HeaderOf(r, "Connection") == "close") fd = UniqueFd();
        } else {
          failed.fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          if (first_failure.empty()) first_failure = path + " -> [" + r + "]";
          fd = UniqueFd();
        }
      }
    });
  }

  // About 3 s of changes, paced so the load runs across all of them.
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> errors;
  for (int i = 0; i < 10; ++i) {
    AdminResponse added =
        Admin("POST", "/routes", "{\"host\": \"a.example\", \"path\": \"/y\", \"pool\": \"B\"}");
    if (added.status != 201) errors.push_back("add: " + added.raw);
    Rewrite(std::string(kPools) + (i % 2 == 0 ? file_two : file_one));
    AdminResponse reload = Admin("POST", "/reload");
    if (reload.status != 200) errors.push_back("reload: " + reload.raw);
    added = Admin("POST", "/routes", "{\"host\": \"c.example\", \"pool\": \"B\"}");
    if (added.status != 201) errors.push_back("add: " + added.raw);
    const absl::StatusOr<Json> route = ParseJson(added.body);
    if (route.ok() && FindMember(*route, "id") != nullptr) {
      AdminResponse del = Admin(
          "DELETE", "/routes/" + std::to_string(JsonInt64(FindMember(*route, "id")).value_or(0)));
      if (del.status != 200) errors.push_back("delete: " + del.raw);
    }
    std::this_thread::sleep_until(start + std::chrono::milliseconds(300 * (i + 1)));
  }
  stop.store(true);
  for (std::thread& c : clients) c.join();

  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(failed.load(), 0) << "first failure: " << first_failure;
  EXPECT_GT(ok.load(), 200);
  RecordProperty("requests", ok.load());
  EXPECT_EQ(CountOf(h().ProxyLog(), "config reloaded"), 10) << h().ProxyLog();
  // The last file (one) is in force: b.example goes to B again.
  EXPECT_EQ(Reach("b.example"), "svc-b");
}

// 6. /metrics is valid Prometheus text and counts exactly what was sent.
TEST_F(ControlPlaneTest, MetricsParseAndCountRequests) {
  ASSERT_TRUE(StartSliced(Route("b.example", "/", "B") + Route("*", "/", "A"))) << h().ProxyLog();
  constexpr int kA200 = 14, kA404 = 3, kB200 = 5;
  UniqueFd fd = ConnectTcp(front());
  ASSERT_TRUE(fd);
  std::string carry;
  auto send = [&](const std::string& host, const std::string& path, int want) {
    ASSERT_TRUE(SendAll(fd.get(), GetRequest(path, host)));
    EXPECT_EQ(StatusOf(RecvHttpResponse(fd.get(), &carry, kIo)), want);
  };
  for (int i = 0; i < kA200; ++i) send("a.example", "/m" + std::to_string(i), 200);
  for (int i = 0; i < kA404; ++i) send("a.example", "/status/404", 404);
  for (int i = 0; i < kB200; ++i) send("b.example", "/m", 200);

  const std::map<std::string, std::string> a200 = {{"pool", "A"}, {"code", "200"}};
  const std::map<std::string, std::string> a404 = {{"pool", "A"}, {"code", "404"}};
  const std::map<std::string, std::string> b200 = {{"pool", "B"}, {"code", "200"}};
  Exposition e;
  std::string text;
  std::string error;
  // Counters are aggregated at scrape time; wait for the last response's count to land.
  WaitFor(
      [&] {
        text = Admin("GET", "/metrics").body;
        e = Exposition();
        return ParseExposition(text, &e, &error) && e.Value("l7px_requests_total", a200) +
                                                            e.Value("l7px_requests_total", a404) +
                                                            e.Value("l7px_requests_total", b200) >=
                                                        kA200 + kA404 + kB200;
      },
      kSettle);
  e = Exposition();
  ASSERT_TRUE(ParseExposition(text, &e, &error)) << error << "\n" << text;
  EXPECT_EQ(e.grouping_error, "") << text;
  EXPECT_EQ(CheckHistograms(e), "") << text;

  EXPECT_EQ(e.types["l7px_requests_total"], "counter");
  EXPECT_EQ(e.Value("l7px_requests_total", a200), kA200) << text;
  EXPECT_EQ(e.Value("l7px_requests_total", a404), kA404) << text;
  EXPECT_EQ(e.Value("l7px_requests_total", b200), kB200) << text;
  EXPECT_TRUE(std::isnan(e.Value("l7px_requests_total", {{"pool", "B"}, {"code", "404"}})));
  EXPECT_EQ(e.types["l7px_request_duration_seconds"], "histogram");
  EXPECT_EQ(e.Value("l7px_request_duration_seconds_count", {{"pool", "A"}}), kA200 + kA404);
  EXPECT_EQ(e.Value("l7px_request_duration_seconds_count", {{"pool", "B"}}), kB200);
  EXPECT_EQ(e.types["l7px_queue_wait_seconds"], "histogram");
  EXPECT_EQ(e.types["l7px_slots_registered"], "gauge");
  EXPECT_EQ(e.Value("l7px_slots_registered", {{"pool", "A"}}), 2) << text;
  EXPECT_EQ(e.Value("l7px_slots_registered", {{"pool", "B"}}), 3) << text;
  EXPECT_EQ(e.Value("l7px_slots_idle", {{"pool", "B"}}), 3) << text;
  EXPECT_EQ(e.Value("l7px_queue_waiting", {{"pool", "A"}}), 0) << text;
  EXPECT_EQ(e.Value("l7px_slot_registrations_total", {{"pool", "B"}, {"result", "ok"}}), 3);
  for (const char* name :
       {"l7px_shed_total", "l7px_retries_total", "l7px_client_connections", "l7px_upgrades_total",
        "l7px_slot_registrations_total", "l7px_queue_waiting", "l7px_slots_idle"}) {
    EXPECT_EQ(e.types.count(name), 1u) << name << " has no TYPE";
  }
  // /stats agrees.
  const Json stats = AdminJson(admin(), "/stats", &error);
  ASSERT_NE(FindMember(stats, "requests"), nullptr) << error;
  EXPECT_EQ(JsonInt64(FindMember(stats, "requests")), kA200 + kA404 + kB200);
}

// 7. With admin.token set, the admin API and `l7px ctl` need it.
TEST_F(ControlPlaneTest, AdminTokenIsEnforced) {
  const std::string token = "s3cret-token";
  ASSERT_TRUE(StartSliced(Route("b.example", "/", "B") + Route("*", "/", "A"), token))
      << h().ProxyLog();
  const std::string before = RoutesBody();
  ASSERT_THAT(before, HasSubstr("b.example"));
  // A config edit that an unauthorised reload must not apply.
  Rewrite(std::string(kPools) + Route("*", "/", "A"));

  const std::vector<std::string> bad_auth = {"", "Bearer wrong", "Bearer " + token + "x",
                                             "Basic " + token, "Bearer"};
  for (const std::string& auth : bad_auth) {
    SCOPED_TRACE("Authorization: " + auth);
    auto call = [&](const std::string& method, const std::string& path,
                    const std::string& body = "") {
      return AdminCall(admin(), method, path, body, "", auth);
    };
    EXPECT_EQ(call("GET", "/routes").status, 401);
    EXPECT_EQ(call("GET", "/pools").status, 401);
    EXPECT_EQ(call("GET", "/metrics").status, 401);
    EXPECT_EQ(
        call("POST", "/routes", "{\"host\": \"b.example\", \"path\": \"/z\", \"pool\": \"A\"}")
            .status,
        401);
    EXPECT_EQ(call("DELETE", "/routes/1").status, 401);
    EXPECT_EQ(call("POST", "/reload").status, 401);
    EXPECT_EQ(call("POST", "/pools/B/drain").status, 401);
  }
  // Nothing changed.
  EXPECT_EQ(RoutesBody(), before);
  EXPECT_EQ(RegisteredSlots(admin(), "B", token), 3);
  EXPECT_EQ(Reach("b.example", "/z"), "svc-b");

  // With the token.
  EXPECT_EQ(Admin("GET", "/metrics").status, 200);
  CommandResult with = RunCtl(admin(), {"--token", token, "--json", "routes"});
  EXPECT_EQ(with.exit_code, 0) << with.err;
  EXPECT_EQ(with.out, before);
  CommandResult without = RunCtl(admin(), {"routes"});
  EXPECT_EQ(without.exit_code, 1) << without.out;
  EXPECT_THAT(without.err, HasSubstr("401"));
  CommandResult wrong = RunCtl(admin(), {"--token", "nope", "pools"});
  EXPECT_EQ(wrong.exit_code, 1) << wrong.out;
  // -c takes the address and the token from the config file.
  CommandResult from_file =
      RunCommand({L7PX_BINARY, "ctl", "-c", h().dir() + "/l7px.toml", "--json", "routes"});
  EXPECT_EQ(from_file.exit_code, 0) << from_file.err;
  EXPECT_EQ(from_file.out, before);
  // An authorised reload applies the edit.
  CommandResult reload = RunCtl(admin(), {"--token", token, "reload"});
  EXPECT_EQ(reload.exit_code, 0) << reload.err;
  EXPECT_EQ(Reach("b.example"), "svc-a");
}

// 8. Draining a pool closes its slots and sheds its requests with 503.
TEST_F(ControlPlaneTest, DrainClosesSlotsAndSheds) {
  ASSERT_TRUE(StartSliced(Route("b.example", "/", "B") + Route("*", "/", "A"))) << h().ProxyLog();
  EXPECT_EQ(Reach("b.example"), "svc-b");
  // One more slot of B registered by hand, to watch l7px close it.
  std::string answer;
  UniqueFd slot =
      RegisterByHand(h().register_port(), RegistrationHead("B", "", "by-hand"), &answer);
  ASSERT_THAT(answer, StartsWith("HTTP/1.1 101")) << answer;
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "B") == 4; }, kSettle));

  AdminResponse drain = Admin("POST", "/pools/B/drain");
  ASSERT_EQ(drain.status, 200) << drain.raw;
  EXPECT_TRUE(WaitPeerClosed(slot.get(), kSettle)) << "the idle slot was not closed";
  EXPECT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "B") <= 0; }, kSettle))
      << Admin("GET", "/pools").body;
  EXPECT_EQ(Reach("b.example"), "status 503");
  EXPECT_EQ(Reach("a.example"), "svc-a");
  // A draining pool takes no new slots.
  UniqueFd late = RegisterByHand(h().register_port(), RegistrationHead("B", "", "late"), &answer);
  EXPECT_THAT(answer, ::testing::Not(StartsWith("HTTP/1.1 101"))) << answer;
  EXPECT_LE(RegisteredSlots(admin(), "B"), 0);
  EXPECT_EQ(Admin("POST", "/pools/nope/drain").status, 404);
  CommandResult ctl = RunCtl(admin(), {"drain", "A"});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_THAT(ctl.out, HasSubstr("draining pool A"));
  EXPECT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "A") <= 0; }, kSettle));
  EXPECT_EQ(Reach("a.example"), "status 503");
}

// After a drain, routes can still be added and deleted (the drained pool's route included).
TEST_F(ControlPlaneTest, RouteChangesStillWorkAfterDrain) {
  ASSERT_TRUE(StartSliced(Route("b.example", "/", "B") + Route("*", "/", "A"))) << h().ProxyLog();
  ASSERT_EQ(Admin("POST", "/pools/B/drain").status, 200);
  ASSERT_TRUE(WaitFor([&] { return RegisteredSlots(admin(), "B") <= 0; }, kSettle));
  EXPECT_EQ(Reach("b.example"), "status 503");

  AdminResponse add = Admin("POST", "/routes", "{\"host\": \"new.example\", \"pool\": \"A\"}");
  EXPECT_EQ(add.status, 201) << add.raw;
  const std::string b_route = RouteIds()["b.example / B"];
  ASSERT_NE(b_route, "") << RoutesBody();
  AdminResponse del = Admin("DELETE", "/routes/" + b_route);
  EXPECT_EQ(del.status, 200) << del.raw;
  // With its route gone, b.example falls through to "*" -> A.
  EXPECT_EQ(Reach("b.example"), "svc-a");
  EXPECT_THAT(RoutesBody(), ::testing::Not(HasSubstr("b.example")));
}

// 9. SIGUSR1 reopens the access log at its path (rotation).
TEST_F(ControlPlaneTest, AccessLogReopensOnSigusr1) {
  h().SetLogExtra("format = \"combined\"");
  ASSERT_TRUE(StartSliced(Route("*", "/", "A"))) << h().ProxyLog();
  const std::string path = h().AccessLogPath();
  EXPECT_EQ(Reach("a.example", "/before-rotate"), "svc-a");
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(path).find("/before-rotate") != std::string::npos; }, kSettle));
  // Combined format: client, identity, user, [time], "request", status, bytes, referer, agent.
  const std::string line = ReadFile(path);
  EXPECT_THAT(line,
              ::testing::MatchesRegex(
                  "127\\.0\\.0\\.1 - - \\[[0-9]{2}/[A-Z][a-z]{2}/[0-9]{4}:[0-9:]{8} \\+0000\\] "
                  "\"GET /before-rotate HTTP/1\\.1\" 200 [0-9]+ \"-\" \"-\".*\n"));

  const std::string rotated = path + ".1";
  ASSERT_EQ(std::rename(path.c_str(), rotated.c_str()), 0);
  h().proxy().Signal(SIGUSR1);
  ASSERT_TRUE(WaitFor([&] { return FileExists(path); }, kSettle)) << h().ProxyLog();
  EXPECT_EQ(Reach("a.example", "/after-rotate"), "svc-a");
  ASSERT_TRUE(
      WaitFor([&] { return ReadFile(path).find("/after-rotate") != std::string::npos; }, kSettle))
      << "new file: " << ReadFile(path) << "\nrotated: " << ReadFile(rotated);
  EXPECT_EQ(ReadFile(path).find("/before-rotate"), std::string::npos);
  EXPECT_NE(ReadFile(rotated).find("/before-rotate"), std::string::npos);
  EXPECT_EQ(ReadFile(rotated).find("/after-rotate"), std::string::npos);
}

// The JSON access log format: one object per line with the pool and service that answered.
TEST_F(ControlPlaneTest, JsonAccessLogNamesPoolAndService) {
  ASSERT_TRUE(StartSliced(Route("b.example", "/", "B") + Route("*", "/", "A"))) << h().ProxyLog();
  EXPECT_EQ(Reach("b.example", "/json-line"), "svc-b");
  ASSERT_TRUE(
      WaitFor([&] { return h().AccessLog().find("/json-line") != std::string::npos; }, kSettle));
  std::string log = h().AccessLog();
  ASSERT_FALSE(log.empty());
  log.pop_back();  // the final line feed
  const absl::StatusOr<Json> entry = ParseJson(log.substr(log.rfind('\n') + 1));
  ASSERT_TRUE(entry.ok()) << log;
  EXPECT_EQ(Member(*entry, "target"), "/json-line");
  EXPECT_EQ(Member(*entry, "host"), "b.example");
  EXPECT_EQ(Member(*entry, "status"), "200");
  EXPECT_EQ(Member(*entry, "pool"), "B");
  EXPECT_EQ(Member(*entry, "service"), "svc-b");
}

}  // namespace
}  // namespace l7px::testing
