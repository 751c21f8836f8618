#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace l7px::proxy {

// Immutable route table: host + path prefix -> pool id. Precedence (order-independent): exact
// host over "*.suffix" over "*"; then the longest path prefix; a remaining tie goes to the route
// declared first. Lookup is allocation-free.
class RouteTable {
 public:
  struct Entry {
    std::string host;   // lower-case exact host, "*.suffix" (stored as ".suffix"), or "*"
    std::string path;
    uint32_t pool_id;
    int host_rank;      // 2 exact, 1 suffix, 0 any
    uint32_t order;
  };

  // pool_ids[i] is the pool id for routes[i] (resolved by the caller).
  static RouteTable Build(const std::vector<config::Route>& routes,
                          const std::vector<uint32_t>& pool_ids);

  // `host` is lower-case without port (empty if none). Returns -1 when nothing matches.
  int Match(std::string_view host, std::string_view path) const;
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Entry> entries_;  // sorted by precedence: the first match wins
};

}  // namespace l7px::proxy
