#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

namespace l7px::proxy {

// One worker's access log: lines are formatted into a local buffer (no allocation) and written
// by the worker's io_uring asynchronously, whole lines per write, so workers never block on the
// log and lines of different workers never interleave. If the sink stalls and both buffers fill,
// lines are dropped and counted rather than stalling requests.
class AccessLog {
 public:
  struct Entry {
    int64_t unix_ms;
    std::string_view client_ip;
    std::string_view method;
    std::string_view target;
    std::string_view host;
    int version_minor;
    int status;
    uint64_t bytes_sent;      // response bytes sent to the client (head + body, or tunnel)
    uint64_t bytes_received;  // request body (or tunnel) bytes from the client sent on
    int64_t duration_us;
    int64_t queue_wait_us;
    std::string_view pool;
    std::string_view service;
    std::string_view request_id;
    std::string_view user_agent;
    std::string_view referer;
    // The client's TLS (all empty for plain HTTP): protocol version, cipher suite, SNI name.
    std::string_view tls_version;
    std::string_view tls_cipher;
    std::string_view tls_sni;
    bool tls_resumed = false;
  };

  AccessLog(int fd, config::AccessFormat format);
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;
  ~AccessLog();

  bool enabled() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  void Append(const Entry& entry);

  // The worker asks for the next write when none is in flight.
  bool NextWrite(const char** data, size_t* len);
  void WriteCompleted(int result);
  uint64_t dropped() const { return dropped_; }

 private:
  static constexpr size_t kBufferSize = 64 * 1024;
  int fd_;
  config::AccessFormat format_;
  char* buffers_[2];
  size_t used_[2] = {0, 0};
  int filling_ = 0;       // buffer receiving new lines
  bool writing_ = false;  // the other buffer is being written
  size_t written_ = 0;    // bytes of the writing buffer already written
  uint64_t dropped_ = 0;
};

}  // namespace l7px::proxy
