// Request parse + head rewrite (what a worker does between the client's bytes and the service's
// request head) and response framing (service head parsed, client head written), on the corpora
// named in the benchmark arguments. Items are messages.

#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "fmt/format.h"
#include "http/parser.h"
#include "http/rewrite.h"
#include "llhttp.h"

namespace l7px::http {
namespace {

// What wrk sends.
const std::string kSmallRequest = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";

// A browser-like API call: the "typical request" of the performance targets.
const std::string kTypicalRequest =
    "GET /api/v1/items?id=42&sort=desc HTTP/1.1\r\n"
    "Host: shop.example.com\r\n"
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0\r\n"
    "Accept: application/json, text/plain, */*\r\n"
    "Accept-Language: en-US,en;q=0.5\r\n"
    "Accept-Encoding: gzip, deflate, br\r\n"
    "Referer: https://shop.example.com/cart\r\n"
    "Cookie: session=7f9c2ba4e88f827d616045507605853e; theme=dark\r\n"
    "Connection: keep-alive\r\n"
    "\r\n";

std::string FortyHeaderRequest() {
  std::string r = "GET /reports/2024/q3/summary?format=csv&region=eu-west HTTP/1.1\r\n";
  r += "Host: reports.internal.example.com\r\n";
  for (int i = 1; i < 40; ++i) {
    r += fmt::format("X-Custom-Header-{:02}: value-{}-{}\r\n", i, i * 7919, "abcdefghij");
  }
  r += "\r\n";
  return r;
}

// 16 requests back to back, as a pipelining client sends them; one carries a body.
std::string PipelinedCorpus() {
  std::string r;
  for (int i = 0; i < 16; ++i) {
    if (i % 4 == 3) {
      r += fmt::format(
          "POST /api/v1/items HTTP/1.1\r\nHost: shop.example.com\r\n"
          "Content-Type: application/json\r\nContent-Length: 27\r\n\r\n"
          "{{\"name\":\"item\",\"qty\":{:05}}}",
          i);
    } else if (i % 2 == 0) {
      r += kSmallRequest;
    } else {
      r += kTypicalRequest;
    }
  }
  return r;
}

const std::string& Corpus(int64_t which) {
  static const std::string* const corpora[] = {&kSmallRequest, &kTypicalRequest,
                                               new std::string(FortyHeaderRequest()),
                                               new std::string(PipelinedCorpus())};
  return *corpora[which];
}

void SetCorpusLabel(benchmark::State& state) {
  static const char* const kNames[] = {"small", "typical", "40-header", "pipelined-16"};
  state.SetLabel(kNames[state.range(0)]);
}

// Items, and the time per item next to the time per iteration (they differ for the pipelined
// corpus: 16 messages an iteration).
void SetMessages(benchmark::State& state, int messages, size_t bytes) {
  const auto items = static_cast<double>(state.iterations()) * messages;
  state.SetItemsProcessed(static_cast<int64_t>(items));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
  state.counters["time_per_msg"] =
      benchmark::Counter(items, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

// Parses every message of `input`; calls on_head(parser) at each head. Returns messages parsed,
// or -1 on a parse error.
template <typename OnHead>
int ParseAll(Parser& parser, const std::string& input, OnHead&& on_head) {
  const char* const base = input.data();
  const size_t n = input.size();
  size_t pos = 0;
  int messages = 0;
  parser.Begin(base);
  while (pos < n || parser.head_done()) {
    Parser::Result r = parser.Parse(base + pos, n - pos);
    pos += r.consumed;
    switch (r.status) {
      case Parser::Status::kHeadDone:
        on_head(parser);
        break;
      case Parser::Status::kMessageDone:
        ++messages;
        if (pos == n) return messages;
        parser.Begin(base + pos);
        break;
      case Parser::Status::kNeedMore:
        return messages;
      case Parser::Status::kError:
        return -1;
    }
  }
  return messages;
}

void BM_ParseRequest(benchmark::State& state) {
  const std::string& input = Corpus(state.range(0));
  Parser parser(Parser::Kind::kRequest, Parser::Limits{});
  int messages = 0;
  for (auto _ : state) {
    messages = ParseAll(parser, input, [](const Parser&) {});
    if (messages <= 0) state.SkipWithError("parse failed");
  }
  SetCorpusLabel(state);
  SetMessages(state, messages, input.size());
}
BENCHMARK(BM_ParseRequest)->DenseRange(0, 3);

// Parse + the service request head a worker writes (X-Forwarded-*, X-Request-Id, Via, framing).
void BM_ParseRewriteRequest(benchmark::State& state) {
  const std::string& input = Corpus(state.range(0));
  Parser parser(Parser::Kind::kRequest, Parser::Limits{});
  RequestIdGenerator ids(0);
  std::vector<char> out(16384);
  char id_buf[32];
  int messages = 0;
  for (auto _ : state) {
    messages = ParseAll(parser, input, [&](const Parser& p) {
      ServiceRequestContext ctx;
      ctx.client_ip = "127.0.0.1";
      ctx.proto = "http";
      ctx.request_id = ids.Next(id_buf);
      const size_t len = WriteServiceRequestHead(p.head(), ctx, out.data(), out.size());
      benchmark::DoNotOptimize(len);
      benchmark::ClobberMemory();
    });
    if (messages <= 0) state.SkipWithError("parse failed");
  }
  SetCorpusLabel(state);
  SetMessages(state, messages, input.size());
}
BENCHMARK(BM_ParseRewriteRequest)->DenseRange(0, 3);

// The floor under BM_ParseRequest: llhttp alone (strict mode, as l7px builds it) walking the
// same bytes with no callbacks at all. Whatever l7px does per field comes on top of this.
void BM_LlhttpAlone(benchmark::State& state) {
  const std::string& input = Corpus(state.range(0));
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  llhttp_t parser;
  int messages = 0;
  for (auto _ : state) {
    llhttp_init(&parser, HTTP_REQUEST, &settings);
    const llhttp_errno_t err = llhttp_execute(&parser, input.data(), input.size());
    if (err != HPE_OK) state.SkipWithError("llhttp failed");
    benchmark::DoNotOptimize(parser);
    messages = state.range(0) == 3 ? 16 : 1;
  }
  SetCorpusLabel(state);
  SetMessages(state, messages, input.size());
}
BENCHMARK(BM_LlhttpAlone)->DenseRange(0, 3);

// Service response: head parse, body framing (Content-Length or chunked, body bytes passed
// through the parser as a worker forwards them), client response head written.
std::string Response(int64_t which) {
  const std::string body(128, 'x');
  switch (which) {
    case 0:
      return "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 128\r\n"
             "\r\n" +
             body;
    case 1:
      return "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
             "40\r\n" +
             body.substr(0, 64) + "\r\n40\r\n" + body.substr(0, 64) + "\r\n0\r\n\r\n";
    default:
      return "HTTP/1.1 204 No Content\r\nX-Service: bench\r\nX-Slot: 3\r\n\r\n";
  }
}

void BM_ResponseFraming(benchmark::State& state) {
  static const char* const kNames[] = {"content-length-128", "chunked-128", "no-body-204"};
  const std::string input = Response(state.range(0));
  Parser parser(Parser::Kind::kResponse, Parser::Limits{});
  std::vector<char> out(16384);
  for (auto _ : state) {
    const int messages = ParseAll(parser, input, [&](const Parser& p) {
      ClientResponseContext ctx;
      const size_t len = WriteClientResponseHead(p.head(), ctx, out.data(), out.size());
      benchmark::DoNotOptimize(len);
      benchmark::ClobberMemory();
    });
    if (messages != 1) state.SkipWithError("parse failed");
  }
  state.SetLabel(kNames[state.range(0)]);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(input.size()));
}
BENCHMARK(BM_ResponseFraming)->DenseRange(0, 2);

// The error answer l7px writes itself (503 on shedding).
void BM_WriteErrorResponse(benchmark::State& state) {
  char out[512];
  for (auto _ : state) {
    const size_t len = WriteErrorResponse(503, false, 1, out, sizeof(out));
    benchmark::DoNotOptimize(len);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WriteErrorResponse);

}  // namespace
}  // namespace l7px::http
