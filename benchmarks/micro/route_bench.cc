// Route lookup (host + path prefix -> pool) with 1 and 500 routes, and the per-pool wait queue
// (a TimerList: enqueue = Start, offer = take the front and Unlink, cancel = Unlink).

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "fmt/format.h"
#include "proxy/routing/router.h"
#include "base/timer_list.h"

namespace l7px::proxy {
namespace {

// n routes: "*" + "/" as the catch-all, the rest spread over exact hosts, "*.suffix" hosts and
// path prefixes the way a large shared proxy's table looks.
RouteTable MakeTable(int n) {
  std::vector<config::Route> routes;
  std::vector<uint32_t> pools;
  for (int i = 0; i < n - 1; ++i) {
    config::Route r;
    switch (i % 3) {
      case 0:
        r.host = fmt::format("svc{}.example.com", i);
        r.path = "/";
        break;
      case 1:
        r.host = fmt::format("*.team{}.example.net", i);
        r.path = fmt::format("/api/v{}/", i % 7);
        break;
      default:
        r.host = "*";
        r.path = fmt::format("/service-{}/", i);
        break;
    }
    routes.push_back(r);
    pools.push_back(static_cast<uint32_t>(i + 1));
  }
  routes.push_back(config::Route{});  // host "*", path "/"
  pools.push_back(0);
  return RouteTable::Build(routes, pools);
}

struct Query {
  std::string host;
  std::string path;
};

// A mix that hits every kind of route and the catch-all, cycled so no single branch pattern is
// learned.
std::vector<Query> MakeQueries(int n) {
  std::vector<Query> q;
  for (int i = 0; i < 64; ++i) {
    const int k = (i * 37) % std::max(n - 1, 1);
    switch (i % 4) {
      case 0:
        q.push_back({fmt::format("svc{}.example.com", k - k % 3), "/index.html"});
        break;
      case 1:
        q.push_back({fmt::format("a.team{}.example.net", k - k % 3 + 1),
                     fmt::format("/api/v{}/x", (k - k % 3 + 1) % 7)});
        break;
      case 2:
        q.push_back({"www.example.org", fmt::format("/service-{}/y", k - k % 3 + 2)});
        break;
      default:
        q.push_back({"unknown.example.org", "/"});
        break;
    }
  }
  return q;
}

void BM_RouteMatch(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const RouteTable table = MakeTable(n);
  const std::vector<Query> queries = MakeQueries(n);
  size_t i = 0;
  for (auto _ : state) {
    const Query& q = queries[i++ & 63];
    benchmark::DoNotOptimize(table.Match(q.host, q.path));
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(fmt::format("{} routes", n));
}
BENCHMARK(BM_RouteMatch)->Arg(1)->Arg(500);

// Enqueue one waiter and offer a slot to the oldest, with `depth` waiters already queued.
void BM_WaitQueue_EnqueueOffer(benchmark::State& state) {
  const int depth = static_cast<int>(state.range(0));
  std::vector<TimerNode> nodes(depth + 1);
  TimerList queue(1'000'000'000);
  int64_t now = 1;
  for (int i = 0; i < depth; ++i) queue.Start(&nodes[i], now++);
  TimerNode* next = &nodes[depth];
  for (auto _ : state) {
    queue.Start(next, now++);
    TimerNode* oldest = queue.front();
    TimerList::Unlink(oldest);
    benchmark::DoNotOptimize(oldest);
    next = oldest;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(fmt::format("depth {}", depth));
}
BENCHMARK(BM_WaitQueue_EnqueueOffer)->Arg(0)->Arg(64)->Arg(1024);

// Enqueue one waiter and cancel one anywhere in the queue (a client gone or its deadline passed).
void BM_WaitQueue_EnqueueCancel(benchmark::State& state) {
  const int depth = static_cast<int>(state.range(0));
  std::vector<TimerNode> nodes(depth + 1);
  TimerList queue(1'000'000'000);
  int64_t now = 1;
  for (int i = 0; i < depth; ++i) queue.Start(&nodes[i], now++);
  size_t victim = static_cast<size_t>(depth / 2);
  TimerNode* next = &nodes[depth];
  for (auto _ : state) {
    queue.Start(next, now++);
    TimerNode* gone = &nodes[victim];
    TimerList::Unlink(gone);
    benchmark::DoNotOptimize(gone);
    next = gone;
    victim = (victim + 7) % nodes.size();  // every node is linked again after the next Start
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(fmt::format("depth {}", depth));
}
BENCHMARK(BM_WaitQueue_EnqueueCancel)->Arg(0)->Arg(64)->Arg(1024);

// Expiry scan: the head is checked against the clock once per event-loop turn.
void BM_WaitQueue_ExpiredCheck(benchmark::State& state) {
  std::vector<TimerNode> nodes(64);
  TimerList queue(1'000'000'000);
  for (size_t i = 0; i < nodes.size(); ++i) queue.Start(&nodes[i], static_cast<int64_t>(i));
  int64_t now = 0;
  for (auto _ : state) benchmark::DoNotOptimize(queue.Expired(++now & 0xffff));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WaitQueue_ExpiredCheck);

}  // namespace
}  // namespace l7px::proxy
