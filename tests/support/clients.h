#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "base/unique_fd.h"

namespace l7px::testing {

// Client- and service-side helpers for the integration tests, on top of net.h. Every call is
// bounded by a timeout.

// ---- curl, run as a child process ----

struct CurlResult {
  int exit_code = -1;  // curl's exit status; -1 when it did not exit within its bound
  std::string out;     // stdout (with -i: the response head, then the body)
  std::string err;     // stderr (with -v: the exchange trace)
  std::chrono::milliseconds elapsed{0};
};

// Runs `curl -sS --max-time <max_time_seconds> <args...>` and collects its output. Killed if it
// outlives max_time_seconds + 5 s.
CurlResult RunCurl(const std::vector<std::string>& args, int max_time_seconds = 10);

// "http://127.0.0.1:<port><path>"
std::string FrontUrl(uint16_t port, const std::string& path);

// ---- raw client helpers ----

// "GET <path> HTTP/1.1" with Host (and `extra_headers`, each ending in CRLF) and no body.
std::string GetRequest(const std::string& path, const std::string& host = "test.local",
                       const std::string& extra_headers = "");

// True when the peer closes (EOF or reset) within `timeout`; bytes read meanwhile are appended
// to `*seen` when given.
bool WaitPeerClosed(int fd, std::chrono::milliseconds timeout, std::string* seen = nullptr);

// A response read without keeping its body, for bodies too large to hold.
struct StreamedResponse {
  std::string head;         // status line and header fields, through the blank line
  uint64_t body_bytes = 0;  // body bytes received
  uint64_t unexpected = 0;  // body bytes different from `fill`
  bool complete = false;    // the Content-Length was reached
};
// Reads one Content-Length-framed response from `fd`. `on_body(received)` is called after each
// read of body bytes (e.g. to stall like a slow client).
StreamedResponse ReadStreamedResponse(int fd, char fill, std::chrono::milliseconds timeout,
                                      const std::function<void(uint64_t)>& on_body = {});

// ---- acting as a service by hand ----

// A slot protocol v1 registration head; empty arguments omit their field.
std::string RegistrationHead(const std::string& pool = "", const std::string& token = "",
                             const std::string& service = "");

// Connects to the register port, sends `head` and reads the answer head into `*answer`.
// Returns the connected socket (a registered slot when *answer is a 101).
UniqueFd RegisterByHand(uint16_t register_port, const std::string& head, std::string* answer,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Reads one HTTP request from a slot: the head, then a Content-Length body (when
// `read_body`). Leftover bytes stay in `*carry`. Returns "" on timeout or EOF.
std::string RecvHttpRequest(int fd, std::string* carry, std::chrono::milliseconds timeout,
                            bool read_body = true);

// Plays a service by hand on slot `fd`, on another thread: reads one request, then writes
// `response` as is. The future says whether both happened (within the I/O bound).
std::future<bool> AnswerOneRequest(int fd, std::string response);

// The lines of an /echo body (method line, then one "Name: value" per header) up to the blank
// line, and the echoed request body after it.
struct EchoedRequest {
  std::string request_line;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Values of every header named `name` (ASCII case-insensitive).
  std::vector<std::string> All(const std::string& name) const;
  bool Has(const std::string& name) const { return !All(name).empty(); }
};
EchoedRequest ParseEcho(const std::string& echo_body);

}  // namespace l7px::testing
