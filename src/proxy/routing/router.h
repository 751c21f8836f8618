#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "base/address.h"
#include "base/strings.h"
#include "config/config.h"
#include "http/message.h"

namespace l7px::proxy {

// What a route is matched against. `host` is lower-case without port (empty if none); `client`
// may be null (then routes with client_cidr never match) and so may `head` (then routes with a
// header match never match).
struct RouteRequest {
  std::string_view host;
  std::string_view path;
  const SocketAddress* client = nullptr;
  const http::MessageHead* head = nullptr;
};

// A route as the control plane sees it: a stable id, the configured route, its resolved pool.
struct RouteSpec {
  uint64_t id = 0;
  config::Route route;
  uint32_t pool_id = 0;
};

struct RouteEntry {
  uint64_t id = 0;
  config::Route route;  // host lower-cased
  uint32_t pool_id = 0;
  int host_rank = 0;   // 2 exact, 1 "*.suffix", 0 "*"
  uint32_t order = 0;  // declaration/addition order (index in entries())
};

// Immutable route table. Precedence (order-independent, docs/configuration.md, "Precedence"):
//   1. host: exact over "*.suffix" (longer suffix first) over "*";
//   2. longest path prefix;
//   3. a route with client_cidr or a header match over one without; among those, the longer
//      matching CIDR prefix first (a route without client_cidr counts as shorter than any;
//      IPv4 prefixes rank as their IPv4-mapped IPv6 length, i.e. /8 as /104), then a route with
//      a header match over one without;
//   4. the route declared or added first.
// A route with several CIDRs ranks by the longest of its CIDRs that contains the client.
// Lookup is allocation-free and touches only the candidates of the request's host.
// Safe to share read-only between threads.
class RouteTable {
 public:
  using Entry = RouteEntry;

  // pool_ids[i] is the pool id for routes[i] (resolved by the caller); ids are 1..n.
  static RouteTable Build(const std::vector<config::Route>& routes,
                          const std::vector<uint32_t>& pool_ids);
  // Ids as given (the caller keeps them unique); declaration order is the vector's order.
  static RouteTable Build(const std::vector<RouteSpec>& specs);

  // The winning route, or nullptr when nothing matches.
  const RouteEntry* MatchEntry(const RouteRequest& r) const;
  // Pool id of the winning route, or -1.
  int Match(const RouteRequest& r) const;
  // A request with no client address and no headers.
  int Match(std::string_view host, std::string_view path) const;

  // All routes in declaration/addition order.
  const std::vector<RouteEntry>& entries() const { return entries_; }
  const RouteEntry* FindById(uint64_t id) const;
  // The specs this table was built from (for rebuilding with a route added or removed).
  std::vector<RouteSpec> ToSpecs() const;

 private:
  // One way a route can match: a route with k CIDRs yields k candidates, so that sorting
  // candidates once gives "longest matching CIDR first" without work per lookup.
  struct Candidate {
    uint32_t path_off;  // into path_arena_
    uint32_t path_len;
    int32_t cidr;    // index into cidrs_, -1 = any client
    uint32_t entry;  // index into entries_; its route.header, if any, must match too
    bool has_header;
  };
  // The candidates of one host key. Sorted by path length (longest first), then path bytes, then
  // the rest of the precedence, so the candidates of one path are contiguous and the first that
  // matches wins. Large buckets are probed by path prefix: one hash lookup per distinct path
  // length no longer than the request path, instead of a scan over every candidate.
  struct Bucket {
    std::vector<Candidate> candidates;
    std::vector<uint32_t> lengths;  // distinct path lengths, descending
    struct Range {
      uint32_t begin;
      uint32_t end;
    };
    absl::flat_hash_map<std::string, Range, StringViewHash, StringViewEq> by_path;
  };
  static constexpr size_t kScanLimit = 8;  // buckets up to this size are scanned linearly

  void Finish(Bucket* bucket) const;
  bool CandidateMatches(const Candidate& c, const RouteRequest& r) const;
  const RouteEntry* MatchBucket(const Bucket& bucket, const RouteRequest& r) const;

  std::vector<RouteEntry> entries_;
  std::string path_arena_;
  std::vector<Cidr> cidrs_;
  absl::flat_hash_map<std::string, Bucket, StringViewHash, StringViewEq> exact_;
  // Keyed by ".suffix" (with the dot); probed with each dot-suffix of the host, longest first.
  absl::flat_hash_map<std::string, Bucket, StringViewHash, StringViewEq> suffix_;
  Bucket any_;
};

}  // namespace l7px::proxy
