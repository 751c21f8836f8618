#pragma once

// An unmodified HTTP/1.1 server that only listens (Python's http.server, ThreadingHTTPServer,
// keep-alive), run under a test's control: it counts the connections it accepted and holds
// open and the requests it runs at once, and writes those counts to a stats file the test
// reads. Used by the upstream-slot tests (l7px dials it) and the `l7px connect` tests (the
// agent dials it).
//
// What it answers (every method counts toward inflight/max_inflight):
//   GET /...           200 "<name> <path>", X-Service: <name>; /slow... sleeps 2 ms,
//                      /sleep/<ms> sleeps that long, /close... adds Connection: close,
//                      /xff answers the X-Forwarded-For it got, /http10 answers as HTTP/1.0
//                      (and closes), /early-hints sends a 103 (Link) before its 200,
//                      /until-close... answers 200 KB of "<name> <path>" repeated, delimited by
//                      its close (/until-close10 as HTTP/1.0), /abort-mid sends a head with
//                      Content-Length 100000 and 1000 bytes, then closes
//   /drop-always...    (any method) reads the request, then closes without answering;
//   /drop-reused...    the same, but only on a connection that answered a request before
//                      (counted in `dropped` and in `requests`)
//   GET with "Upgrade: echo"  101, then echoes raw bytes until the peer closes
//   HEAD               the head GET would send, no body
//   POST, PUT          reads the body (Content-Length or chunked) in pieces, answers
//                      "len=<bytes> sum=<sum of the bytes mod 2^32>"

#include <cstdint>
#include <map>
#include <string>
#include <utility>

#include "support/process.h"

namespace l7px::testing {

struct ListeningServiceStats {
  int accepted = -1;  // -1 until the service wrote its first stats
  int open = -1;
  int max_inflight = -1;
  int requests = -1;  // started, including the dropped ones
  int dropped = -1;
};

// The services of one test, by name; each one's files live in `dir`.
class ListeningServices {
 public:
  explicit ListeningServices(std::string dir) : dir_(std::move(dir)) {}

  // Starts (or restarts) the service `name` on `listen` ("127.0.0.1:PORT" or "unix:/path"),
  // closing a connection idle for `idle_seconds` ("0": never; "0.2": 200 ms), and waits for its
  // stats file (a test failure when it never comes).
  ChildProcess& Start(const std::string& name, const std::string& listen,
                      const std::string& idle_seconds = "0");
  ListeningServiceStats Stats(const std::string& name) const;
  ChildProcess& operator[](const std::string& name) { return services_[name]; }
  std::string LogOf(const std::string& name) const;

 private:
  std::string Script();
  std::string StatsPath(const std::string& name) const { return dir_ + "/" + name + ".stats"; }

  std::string dir_;
  std::map<std::string, ChildProcess> services_;
};

// Sum of the bytes of `data` mod 2^32, as the service reports for a body.
uint32_t ByteSum(const std::string& data);

}  // namespace l7px::testing
