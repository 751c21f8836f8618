#include "proxy/routing/router.h"

#include <algorithm>
#include <utility>

namespace l7px::proxy {
namespace {

// Rank of a candidate's CIDR for precedence: IPv4 prefixes as their IPv4-mapped IPv6 length, so
// both families compare on one scale (a v4-mapped client can match both kinds); -1 for none.
int CidrRank(const Cidr* cidr) {
  if (cidr == nullptr) return -1;
  return cidr->family() == AF_INET ? cidr->prefix_len() + 96 : cidr->prefix_len();
}

bool HeaderMatches(const config::HeaderMatch& match, const http::MessageHead* head) {
  if (head == nullptr) return false;
  for (int i = 0; i < head->header_count; ++i) {
    if (!EqualsIgnoreCase(head->Name(i), match.name)) continue;
    if (!match.value.has_value() || head->Value(i) == *match.value) return true;
  }
  return false;
}

}  // namespace

RouteTable RouteTable::Build(const std::vector<config::Route>& routes,
                             const std::vector<uint32_t>& pool_ids) {
  std::vector<RouteSpec> specs;
  specs.reserve(routes.size());
  for (size_t i = 0; i < routes.size(); ++i) {
    specs.push_back(RouteSpec{i + 1, routes[i], pool_ids[i]});
  }
  return Build(specs);
}

RouteTable RouteTable::Build(const std::vector<RouteSpec>& specs) {
  RouteTable table;
  table.entries_.reserve(specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    RouteEntry e;
    e.id = specs[i].id;
    e.route = specs[i].route;
    for (char& c : e.route.host) c = AsciiLower(c);
    e.pool_id = specs[i].pool_id;
    e.order = static_cast<uint32_t>(i);
    const std::string& host = e.route.host;
    if (host == "*") {
      e.host_rank = 0;
    } else if (host.size() > 2 && host[0] == '*' && host[1] == '.') {
      e.host_rank = 1;
    } else {
      e.host_rank = 2;
    }
    table.entries_.push_back(std::move(e));
  }

  for (uint32_t i = 0; i < table.entries_.size(); ++i) {
    const RouteEntry& e = table.entries_[i];
    Bucket* bucket = &table.any_;
    if (e.host_rank == 2) {
      bucket = &table.exact_[e.route.host];
    } else if (e.host_rank == 1) {
      bucket = &table.suffix_[e.route.host.substr(1)];  // ".example.com"
    }
    Candidate c;
    c.path_off = static_cast<uint32_t>(table.path_arena_.size());
    c.path_len = static_cast<uint32_t>(e.route.path.size());
    table.path_arena_ += e.route.path;
    c.entry = i;
    c.has_header = e.route.header.has_value();
    c.cidr = -1;
    if (e.route.client_cidr.empty()) {
      bucket->candidates.push_back(c);
      continue;
    }
    for (const Cidr& cidr : e.route.client_cidr) {
      c.cidr = static_cast<int32_t>(table.cidrs_.size());
      table.cidrs_.push_back(cidr);
      bucket->candidates.push_back(c);
    }
  }

  for (auto& [host, bucket] : table.exact_) table.Finish(&bucket);
  for (auto& [suffix, bucket] : table.suffix_) table.Finish(&bucket);
  table.Finish(&table.any_);
  return table;
}

void RouteTable::Finish(Bucket* bucket) const {
  std::vector<Candidate>& cs = bucket->candidates;
  const auto path_of = [this](const Candidate& c) {
    return std::string_view(path_arena_.data() + c.path_off, c.path_len);
  };
  std::sort(cs.begin(), cs.end(), [&](const Candidate& a, const Candidate& b) {
    if (a.path_len != b.path_len) return a.path_len > b.path_len;
    // Only one path of a given length can match a request, so their relative order is free;
    // grouping equal paths lets the prefix index point at one contiguous range.
    if (const int cmp = path_of(a).compare(path_of(b)); cmp != 0) return cmp < 0;
    const bool a_cond = a.cidr >= 0 || a.has_header;
    const bool b_cond = b.cidr >= 0 || b.has_header;
    if (a_cond != b_cond) return a_cond;
    const int a_rank = CidrRank(a.cidr >= 0 ? &cidrs_[a.cidr] : nullptr);
    const int b_rank = CidrRank(b.cidr >= 0 ? &cidrs_[b.cidr] : nullptr);
    if (a_rank != b_rank) return a_rank > b_rank;
    if (a.has_header != b.has_header) return a.has_header;
    return a.entry < b.entry;
  });
  if (cs.size() <= kScanLimit) return;
  for (uint32_t i = 0; i < cs.size();) {
    uint32_t end = i + 1;
    while (end < cs.size() && path_of(cs[end]) == path_of(cs[i])) ++end;
    bucket->by_path.emplace(std::string(path_of(cs[i])), Bucket::Range{i, end});
    if (bucket->lengths.empty() || bucket->lengths.back() != cs[i].path_len) {
      bucket->lengths.push_back(cs[i].path_len);
    }
    i = end;
  }
}

bool RouteTable::CandidateMatches(const Candidate& c, const RouteRequest& r) const {
  if (c.cidr >= 0 && (r.client == nullptr || !cidrs_[c.cidr].Contains(*r.client))) return false;
  return !c.has_header || HeaderMatches(*entries_[c.entry].route.header, r.head);
}

const RouteEntry* RouteTable::MatchBucket(const Bucket& bucket, const RouteRequest& r) const {
  const std::vector<Candidate>& cs = bucket.candidates;
  if (cs.size() <= kScanLimit) {
    for (const Candidate& c : cs) {
      if (c.path_len > r.path.size() ||
          std::string_view(path_arena_.data() + c.path_off, c.path_len) !=
              r.path.substr(0, c.path_len)) {
        continue;
      }
      if (CandidateMatches(c, r)) return &entries_[c.entry];
    }
    return nullptr;
  }
  for (const uint32_t len : bucket.lengths) {
    if (len > r.path.size()) continue;
    auto it = bucket.by_path.find(r.path.substr(0, len));
    if (it == bucket.by_path.end()) continue;
    for (uint32_t i = it->second.begin; i < it->second.end; ++i) {
      if (CandidateMatches(cs[i], r)) return &entries_[cs[i].entry];
    }
  }
  return nullptr;
}

const RouteEntry* RouteTable::MatchEntry(const RouteRequest& r) const {
  if (!r.host.empty()) {
    if (!exact_.empty()) {
      auto it = exact_.find(r.host);
      if (it != exact_.end()) {
        if (const RouteEntry* e = MatchBucket(it->second, r)) return e;
      }
    }
    if (!suffix_.empty()) {
      // Each ".suffix" of the host that leaves a non-empty label before it, longest first.
      for (size_t dot = r.host.find('.', 1); dot != std::string_view::npos;
           dot = r.host.find('.', dot + 1)) {
        auto it = suffix_.find(r.host.substr(dot));
        if (it == suffix_.end()) continue;
        if (const RouteEntry* e = MatchBucket(it->second, r)) return e;
      }
    }
  }
  return MatchBucket(any_, r);
}

int RouteTable::Match(const RouteRequest& r) const {
  const RouteEntry* e = MatchEntry(r);
  return e == nullptr ? -1 : static_cast<int>(e->pool_id);
}

int RouteTable::Match(std::string_view host, std::string_view path) const {
  return Match(RouteRequest{host, path, nullptr, nullptr});
}

const RouteEntry* RouteTable::FindById(uint64_t id) const {
  for (const RouteEntry& e : entries_) {
    if (e.id == id) return &e;
  }
  return nullptr;
}

std::vector<RouteSpec> RouteTable::ToSpecs() const {
  std::vector<RouteSpec> specs;
  specs.reserve(entries_.size());
  for (const RouteEntry& e : entries_) specs.push_back(RouteSpec{e.id, e.route, e.pool_id});
  return specs;
}

}  // namespace l7px::proxy
