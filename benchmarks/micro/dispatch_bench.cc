// The whole dispatch path of one request, without io_uring: lease a slot from the pool's ring,
// write the service request head, send it over a socketpair to a service thread that answers
// every request head with a fixed response, parse that response, write the client response
// head, return the slot. Argument 1 also parses the client request and routes it first.
// The round trip through the kernel and the service thread's wake-up dominate; the difference
// to the sum of the pieces is what a worker pays around the data structures.

#include <benchmark/benchmark.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "slots/pool.h"
#include "slots/slot.h"
#include "slots/slot_lifecycle.h"
#include "base/unique_fd.h"
#include "config/config.h"
#include "http/parser.h"
#include "http/rewrite.h"
#include "proxy/routing/router.h"

namespace l7px {
namespace {

const std::string kRequest =
    "GET /api/v1/items?id=42 HTTP/1.1\r\nHost: shop.example.com\r\nUser-Agent: wrk\r\n"
    "Accept: */*\r\n\r\n";

const std::string kResponse =
    "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 128\r\n\r\n" +
    std::string(128, 'x');

// Reads request heads from `fd` and answers each with kResponse, until EOF.
void ServiceLoop(int fd) {
  std::string pending;
  char buf[8192];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n <= 0) return;
    pending.append(buf, static_cast<size_t>(n));
    size_t end;
    while ((end = pending.find("\r\n\r\n")) != std::string::npos) {
      pending.erase(0, end + 4);
      size_t off = 0;
      while (off < kResponse.size()) {
        const ssize_t w = ::write(fd, kResponse.data() + off, kResponse.size() - off);
        if (w <= 0) return;
        off += static_cast<size_t>(w);
      }
    }
  }
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Parses one complete message from `input` (no body bytes expected beyond it for requests).
bool ParseOne(http::Parser& parser, const char* input, size_t n) {
  parser.Begin(input);
  size_t pos = 0;
  while (true) {
    const http::Parser::Result r = parser.Parse(input + pos, n - pos);
    pos += r.consumed;
    if (r.status == http::Parser::Status::kMessageDone) return true;
    if (r.status == http::Parser::Status::kError) return false;
    if (r.status == http::Parser::Status::kNeedMore) return false;
  }
}

void BM_Dispatch(benchmark::State& state) {
  const bool parse_request = state.range(0) != 0;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    state.SkipWithError("socketpair failed");
    return;
  }
  UniqueFd service_end(fds[1]);
  std::thread service([fd = fds[1]] { ServiceLoop(fd); });

  slots::PoolSettings settings;
  settings.max_slots = 4;
  slots::Pool pool(0, "bench", settings, 1);
  auto slot = std::make_unique<slots::Slot>(UniqueFd(fds[0]), 0, "bench");
  pool.registered.store(1);
  pool.AttachSlot(*slot, "bench", 0);
  pool.PushIdle(slot.get());

  std::vector<config::Route> routes(1);
  const proxy::RouteTable table = proxy::RouteTable::Build(routes, {0});

  http::Parser request(http::Parser::Kind::kRequest, http::Parser::Limits{});
  http::Parser response(http::Parser::Kind::kResponse, http::Parser::Limits{});
  if (!ParseOne(request, kRequest.data(), kRequest.size())) {
    state.SkipWithError("request parse failed");
  }
  http::RequestIdGenerator ids(0);
  char id_buf[32];
  char host_buf[256];
  std::vector<char> service_head(16384);
  std::vector<char> client_head(16384);
  std::vector<char> in(16384);

  for (auto _ : state) {
    if (parse_request) {
      if (!ParseOne(request, kRequest.data(), kRequest.size())) {
        state.SkipWithError("request parse failed");
        break;
      }
      const http::MessageHead& h = request.head();
      if (table.Match(h.HostForRouting(host_buf, sizeof(host_buf)), h.Path()) != 0) {
        state.SkipWithError("no route");
        break;
      }
    }
    slots::Slot* s = pool.PopForLease(1);
    if (s == nullptr || !s->TryLease()) {
      state.SkipWithError("no idle slot");
      break;
    }
    pool.busy.fetch_add(1, std::memory_order_relaxed);

    http::ServiceRequestContext ctx;
    ctx.client_ip = "127.0.0.1";
    ctx.proto = "http";
    ctx.request_id = ids.Next(id_buf);
    const size_t head_len = http::WriteServiceRequestHead(request.head(), ctx, service_head.data(),
                                                          service_head.size());
    if (head_len == 0 || !WriteAll(s->fd(), service_head.data(), head_len)) {
      state.SkipWithError("send failed");
      break;
    }

    // Read until the response is complete; a worker forwards body bytes as they arrive.
    response.Begin(in.data());
    size_t have = 0;
    size_t parsed = 0;
    bool done = false;
    bool failed = false;
    while (!done && !failed) {
      const ssize_t n = ::read(s->fd(), in.data() + have, in.size() - have);
      if (n <= 0) {
        failed = true;
        break;
      }
      have += static_cast<size_t>(n);
      bool need_more = false;
      while (!done && !failed && !need_more) {
        const http::Parser::Result r = response.Parse(in.data() + parsed, have - parsed);
        parsed += r.consumed;
        switch (r.status) {
          case http::Parser::Status::kHeadDone: {
            http::ClientResponseContext cctx;
            const size_t len = http::WriteClientResponseHead(
                response.head(), cctx, client_head.data(), client_head.size());
            benchmark::DoNotOptimize(len);
            break;
          }
          case http::Parser::Status::kMessageDone:
            done = true;
            break;
          case http::Parser::Status::kNeedMore:  // every byte given was consumed
            need_more = true;
            break;
          case http::Parser::Status::kError:
            failed = true;
            break;
        }
      }
    }
    if (failed) {
      state.SkipWithError("response failed");
      break;
    }
    slots::ReturnLeasedSlot(pool, *s);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(parse_request ? "parse+route+lease+service+release" : "lease+service+release");

  ::shutdown(fds[0], SHUT_RDWR);  // the service thread sees EOF
  service.join();
}
BENCHMARK(BM_Dispatch)->Arg(0)->Arg(1)->UseRealTime();

}  // namespace
}  // namespace l7px
