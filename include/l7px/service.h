#pragma once

// l7px C++ service SDK: a service dials *in* to one or more l7px proxies and registers N
// keep-alive "slots" (slot protocol v1). Each slot is one connection carrying one HTTP/1.1
// request at a time; the SDK parses requests, calls the user's Handler and frames responses.
//
//   l7px::ServiceOptions options;
//   options.proxies = {"127.0.0.1:9999"};
//   options.pool = "api";
//   l7px::Service service(options, [](const l7px::Request& req, l7px::Response& resp) {
//     resp.body = "hello " + req.path + "\n";
//   });
//   if (!service.Start()) return 1;
//   ...
//   service.Stop();
//
// Threading: one thread per slot connection, blocking style. The Handler is called concurrently
// from every slot thread; it must be thread-safe. Every Service method is thread-safe except
// that Start() must be called at most once and the destructor must not race other calls.
//
// Upgrades (WebSocket and the like): a handler answers 101 and sets Response::tunnel; the slot's
// connection then becomes the handler's byte tunnel to the client, and the SDK dials a
// replacement slot at once so the declared number of slots stays available (see Tunnel).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace l7px {

// An HTTP header list in wire order; names keep the sender's spelling.
using HeaderList = std::vector<std::pair<std::string, std::string>>;

// One parsed request received on a slot. Valid only during the Handler call.
struct Request {
  std::string method;     // "GET", "POST", ...
  std::string target;     // request-target as sent: "/a/b?x=1"
  std::string path;       // target up to '?' ("/a/b")
  std::string query;      // after '?', without it ("x=1"); "" when absent
  int version_minor = 1;  // HTTP/1.<version_minor>
  HeaderList headers;     // as received, duplicates kept
  std::string body;       // complete body, de-chunked when it was sent chunked
  int slot = -1;          // index of the slot connection that carried it (0-based, per Service)
  std::string proxy;      // proxy address of that slot, as given in ServiceOptions::proxies

  // Value of the first header named `name` (ASCII case-insensitive); "" when absent.
  std::string_view Header(std::string_view name) const;
};

// Produces the next bytes of a streamed response body into `buf` (capacity `cap` > 0) and
// returns how many it wrote. Returning 0 before the declared size is reached aborts the response
// and closes the connection (the proxy sees a truncated body).
using BodySource = std::function<size_t(char* buf, size_t cap)>;

// A connection handed over to a handler that answered an upgrade with 101 (Response::tunnel).
// By then the SDK has written the 101 head, on which l7px takes the connection out of its pool
// for good (it is a byte tunnel to one client until either side closes it), and, for a slot of
// a proxy, has started a replacement slot that dials at once.
struct Tunnel {
  // The connection, in non-blocking mode. It is the tunnel function's from the call on: the SDK
  // never reads, writes or closes it again, and the function (or whoever it hands `fd` to, on
  // any thread, for as long as it likes) must close it exactly once.
  int fd = -1;
  // Bytes the SDK had already read past the upgrade request: the client's first tunnel bytes
  // (e.g. a WebSocket frame sent right behind the handshake). They come before anything read
  // from `fd`.
  std::string already_read;
  // Becomes readable when Service::Stop() is called: poll it together with `fd` and return soon
  // after, since Stop() waits for the function to return. The SDK's own descriptor, valid only
  // until the function returns: never read, write or close it.
  int stop_fd = -1;
  // The slot and proxy that carried the upgrade request (as in Request).
  int slot = -1;
  std::string proxy;
};

// Serves one tunnel. Called once, on the thread of the slot that carried the upgrade request,
// right after the 101 head was written; that thread is no longer a slot thread (its replacement
// has a thread of its own), so the function may serve the tunnel in place until it ends, or
// hand `fd` to another thread and return at once. Must be thread-safe like the Handler.
using TunnelFunction = std::function<void(Tunnel tunnel)>;

// The response the Handler fills in. By default: 200, no headers, empty body, keep-alive.
//
// Framing is done by the SDK: Content-Length is always sent (never for 1xx/204/304; for HEAD it
// is the would-be body size and no body is written). Content-Length, Transfer-Encoding and
// Connection headers set by the handler are dropped; use `close` for Connection: close.
struct Response {
  int status = 200;
  std::string reason;  // reason phrase; "" = the standard one for `status`
  HeaderList headers;
  std::string body;
  // When set, the body is streamed: `stream_size` bytes pulled from `stream` in chunks of up to
  // 64 KiB, never held whole in memory; `body` is ignored.
  BodySource stream;
  uint64_t stream_size = 0;
  // Send "Connection: close" and close the slot after this response (the SDK re-dials).
  bool close = false;

  // Escape hatches, mostly for fault-injection test services:
  // `abort`: close the connection without writing anything.
  bool abort = false;
  // `raw`: write these bytes verbatim instead of a framed response (the handler owns the
  // framing, e.g. a hand-written chunked body); the slot is then closed iff `close` is set.
  std::optional<std::string> raw;

  // Upgrade: with `status` 101 and this set, the SDK writes the 101 head (status, reason,
  // `headers` such as "Upgrade: websocket" and the handshake's own, plus "Connection: Upgrade";
  // no body) and then calls `tunnel` with the connection (see Tunnel); the fields above other
  // than status, reason and headers are ignored. A 101 without `tunnel`, or `tunnel` with
  // another status, is a handler bug: the SDK answers 500 and closes the slot instead (a 101
  // head nobody serves would leave the client a dead tunnel). If the 101 head cannot be written
  // (the client or l7px went away), `tunnel` is not called and the SDK closes the connection.
  TunnelFunction tunnel;

  // Appends a header (no de-duplication).
  void AddHeader(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// Called once per request on the slot thread that received it. May block (it holds its slot
// busy, which is exactly the declared concurrency); must be thread-safe.
using Handler = std::function<void(const Request&, Response&)>;

struct ServiceOptions {
  // Proxy registration addresses: "host:port", "[v6]:port" or "unix:/path". Each gets `slots`
  // connections. At least one is required.
  std::vector<std::string> proxies;
  // L7px-Pool header; "" = omit it (the proxy's default pool).
  std::string pool;
  // Slot connections kept per proxy (>= 1). Resizable later with Service::SetSlots.
  int slots = 4;
  // L7px-Token header; "" = omit it.
  std::string token;
  // L7px-Service header; "" = "<hostname>-<pid>".
  std::string service_id;
  // Handshake mode "none": send no registration head, the bare connection is the slot (proxy
  // side `register.handshake = "none"`, as the papers' example service). Otherwise the v1 head
  // is sent and the slot is registered once "101 Switching Protocols" arrives.
  bool bare = false;
  // Re-dial backoff after refusals, dial failures and connections that end right after
  // registering: starts at `min_backoff`, doubles up to `max_backoff`, with jitter in
  // [backoff/2, backoff]. Reset once a slot has served a request.
  std::chrono::milliseconds min_backoff{50};
  std::chrono::milliseconds max_backoff{5000};
  // Limits on one request; beyond them the SDK answers 431 / 413 and closes the slot.
  size_t max_header_bytes = 64 * 1024;
  size_t max_body_bytes = 64 * 1024 * 1024;
  // Log sink for state changes (one line each, no trailing newline). Unset = stderr. Calls are
  // serialized by the SDK but come from slot threads.
  // Lines are emitted once per state change per proxy (registered, refused with a status,
  // dial failed with an error), never once per retry.
  std::function<void(std::string_view line)> log;
};

// Snapshot of a Service's counters.
struct ServiceStats {
  int connected_slots = 0;     // slots currently registered (101 seen; connected when bare)
  uint64_t served = 0;         // responses written completely
  uint64_t dials = 0;          // connection attempts started
  uint64_t registrations = 0;  // successful registrations
  uint64_t refusals = 0;       // non-101 answers to the registration head
  uint64_t dial_failures = 0;  // connect/resolve failures and handshake I/O errors
  uint64_t tunnels = 0;        // slots handed to Response::tunnel (each left the registered
                               // count, and was replaced unless retiring or stopping)
};

// Keeps `slots` registered connections to every proxy and serves requests on them until
// Stop(). Not copyable or movable.
class Service {
 public:
  Service(ServiceOptions options, Handler handler);
  ~Service();  // Calls Stop().
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Validates the options and starts one thread per slot. Returns false (and logs why) on
  // invalid options (no proxies, unparseable address, slots < 1, no handler) or when called
  // twice. Does not wait for registration: see WaitForSlots.
  bool Start();

  // Closes every slot and joins every thread. Idle slots are closed at once; a Handler already
  // running is allowed to return and its response is written only if the socket accepts it
  // without waiting. A tunnel function still running sees Tunnel::stop_fd readable and is waited
  // for (tunnels it handed to other threads are not). Idempotent.
  void Stop();

  // Changes the number of slots per proxy. Growing dials new slots; shrinking closes the
  // highest-numbered slots as soon as they are idle (a running request finishes first).
  // Tunnels are not slots: they are neither counted nor closed here.
  // Ignored before Start(), after Stop() or for n < 1.
  void SetSlots(int n);

  // Serves HTTP/1.1 requests with the Handler on an already-connected stream socket (ownership
  // of `fd` is taken; it is made non-blocking) on the calling thread, until the peer closes it,
  // a response closes it, a tunnel takes it (Response::tunnel runs on the calling thread; there
  // is no slot to replace), or Stop(). No handshake. For serving without a proxy (a direct
  // listener for comparisons, tests); works without Start(). Request::slot is -1 and
  // Request::proxy "". Returns the number of responses written (a 101 head counts).
  uint64_t ServeConnection(int fd);
  // ServeConnection on a thread of its own that ends with the connection (a listener serving
  // many short connections keeps no finished threads). Stop() waits for all of them.
  void ServeConnectionInBackground(int fd);

  // Blocks until at least `n` slots are registered, or `timeout` passes, or Stop() is called.
  // Returns whether `n` was reached.
  bool WaitForSlots(int n, std::chrono::milliseconds timeout) const;

  int ConnectedSlots() const;
  uint64_t Served() const;
  ServiceStats Stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace l7px
