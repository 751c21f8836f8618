#include "proxy/router.h"

#include <algorithm>

namespace l7px::proxy {

RouteTable RouteTable::Build(const std::vector<config::Route>& routes,
                             const std::vector<uint32_t>& pool_ids) {
  RouteTable table;
  for (size_t i = 0; i < routes.size(); ++i) {
    Entry e;
    const std::string& host = routes[i].host;
    if (host == "*") {
      e.host = "*";
      e.host_rank = 0;
    } else if (host.size() > 2 && host[0] == '*' && host[1] == '.') {
      e.host = host.substr(1);  // ".example.com"
      e.host_rank = 1;
    } else {
      e.host = host;
      e.host_rank = 2;
    }
    e.path = routes[i].path;
    e.pool_id = pool_ids[i];
    e.order = static_cast<uint32_t>(i);
    table.entries_.push_back(std::move(e));
  }
  std::stable_sort(table.entries_.begin(), table.entries_.end(),
                   [](const Entry& a, const Entry& b) {
                     if (a.host_rank != b.host_rank) return a.host_rank > b.host_rank;
                     if (a.host_rank == 1 && a.host.size() != b.host.size()) {
                       return a.host.size() > b.host.size();  // longer suffix is more specific
                     }
                     if (a.path.size() != b.path.size()) return a.path.size() > b.path.size();
                     return a.order < b.order;
                   });
  return table;
}

int RouteTable::Match(std::string_view host, std::string_view path) const {
  for (const Entry& e : entries_) {
    switch (e.host_rank) {
      case 2:
        if (host != e.host) continue;
        break;
      case 1:
        if (host.size() <= e.host.size() ||
            host.substr(host.size() - e.host.size()) != e.host) {
          continue;
        }
        break;
      default:
        break;
    }
    if (path.substr(0, e.path.size()) != e.path) continue;
    return static_cast<int>(e.pool_id);
  }
  return -1;
}

}  // namespace l7px::proxy
