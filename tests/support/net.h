#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "base/unique_fd.h"

namespace l7px::testing {

// Blocking loopback socket helpers for tests. Every call is bounded by a timeout.

// Asks the kernel for a free TCP port on 127.0.0.1 (bind to port 0, read it, close).
uint16_t FreePort();

// Connects to 127.0.0.1:port, once: invalid when the connection is refused (or fails any other
// way, or the handshake does not complete within `timeout`, e.g. while a full backlog drops the
// SYNs). Use it for a listener that must be up: a refusal is what the test is there to notice,
// so it is never retried.
UniqueFd ConnectTcp(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10));
// The same, after binding the socket to `source_ip` (any 127.0.0.0/8 address works on Linux
// loopback without configuration).
UniqueFd ConnectFrom(const std::string& source_ip, uint16_t port,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
// For a process that is still starting: retries refused connections until `timeout` passes.
// Never use it against a listener that should already be serving (it would hide an outage).
UniqueFd ConnectTcpWhenReady(uint16_t port, std::chrono::milliseconds timeout);
UniqueFd ConnectUnix(const std::string& path);

// recv with a deadline: bytes read, 0 on EOF, -1 on timeout, -2 on error (e.g. reset).
ssize_t RecvSome(int fd, char* buf, size_t cap, std::chrono::steady_clock::time_point deadline);

// Waits until something accepts connections on 127.0.0.1:port (ConnectTcpWhenReady).
bool WaitForPort(uint16_t port, std::chrono::milliseconds timeout);

bool SendAll(int fd, const std::string& data);
// Reads until the peer closes, `timeout` passes, or `max` bytes arrived.
std::string RecvUntilClose(int fd, std::chrono::milliseconds timeout, size_t max = 1 << 26);
// Reads until `needle` has been seen (returns all bytes read so far) or timeout.
std::string RecvUntil(int fd, const std::string& needle, std::chrono::milliseconds timeout);
// Reads one complete HTTP/1.1 response (Content-Length, chunked or close-delimited; responses to
// HEAD or with 1xx/204/304 have no body). Leftover bytes stay in `*carry` for the next call.
// Returns "" on timeout or error.
std::string RecvHttpResponse(int fd, std::string* carry, std::chrono::milliseconds timeout,
                             bool head_request = false);

// Status code of a raw response ("HTTP/1.1 503 ..." -> 503), 0 if unparseable.
int StatusOf(const std::string& response);
// Body of a raw response (after the blank line, de-chunked when chunked).
std::string BodyOf(const std::string& response);
// Value of the first header with this name (case-insensitive), "" if absent.
std::string HeaderOf(const std::string& response, const std::string& name);

// One request on a fresh connection (ConnectTcp: a refused connection is "", never retried):
// sends `request`, returns the full response.
std::string HttpExchange(uint16_t port, const std::string& request,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

// The service side of a test tunnel: writes `first` back, then echoes every byte read from the
// non-blocking `fd` until the peer closes it, an error, or `stop_fd` becomes readable (then
// returns at once). Closes `fd` in every case. Returns the bytes echoed.
size_t EchoUntilClosed(int fd, std::string first, int stop_fd);

}  // namespace l7px::testing
