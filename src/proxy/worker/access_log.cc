#include "proxy/worker/access_log.h"

#include <time.h>

#include <cstdlib>
#include <cstring>

#include "base/strings.h"
#include "fmt/format.h"

namespace l7px::proxy {
namespace {

// Appends a JSON string body (without quotes), escaping what JSON requires. Bytes that are not
// well-formed UTF-8 (a client's TLS server name may be any bytes) become U+FFFD, as the admin
// API's JSON does, so every line stays valid JSON.
void AppendJsonEscaped(fmt::memory_buffer& out, std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7f) {
      fmt::format_to(std::back_inserter(out), "\\u{:04x}", u);
    } else if (u >= 0x80) {
      const size_t n = Utf8SequenceAt(s, i);
      if (n == 0) {
        out.append(std::string_view("\\ufffd"));
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    } else {
      out.push_back(c);
    }
    ++i;
  }
}

// Combined log format quotes fields; escape quotes and control bytes like NGINX does (\xHH).
void AppendQuotedEscaped(fmt::memory_buffer& out, std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || u < 0x20 || u >= 0x7f) {
      fmt::format_to(std::back_inserter(out), "\\x{:02X}", u);
    } else {
      out.push_back(c);
    }
  }
}

}  // namespace

AccessLog::AccessLog(int fd, config::AccessFormat format) : fd_(fd), format_(format) {
  buffers_[0] = fd >= 0 ? static_cast<char*>(std::malloc(kBufferSize)) : nullptr;
  buffers_[1] = fd >= 0 ? static_cast<char*>(std::malloc(kBufferSize)) : nullptr;
}

AccessLog::~AccessLog() {
  std::free(buffers_[0]);
  std::free(buffers_[1]);
}

void AccessLog::Append(const Entry& e) {
  if (fd_ < 0) return;
  fmt::memory_buffer line;  // inline storage (500 bytes), grows only for huge targets
  const time_t secs = static_cast<time_t>(e.unix_ms / 1000);
  tm t;
  gmtime_r(&secs, &t);
  if (format_ == config::AccessFormat::kJson) {
    fmt::format_to(std::back_inserter(line),
                   "{{\"time\":\"{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z\",\"client\":\"",
                   t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                   e.unix_ms % 1000);
    AppendJsonEscaped(line, e.client_ip);
    line.append(std::string_view("\",\"method\":\""));
    AppendJsonEscaped(line, e.method);
    line.append(std::string_view("\",\"target\":\""));
    AppendJsonEscaped(line, e.target);
    line.append(std::string_view("\",\"host\":\""));
    AppendJsonEscaped(line, e.host);
    fmt::format_to(std::back_inserter(line),
                   "\",\"status\":{},\"bytes\":{},\"bytes_received\":{},\"duration_ms\":{:.3f},"
                   "\"queue_ms\":{:.3f},\"pool\":\"",
                   e.status, e.bytes_sent, e.bytes_received,
                   static_cast<double>(e.duration_us) / 1000.0,
                   static_cast<double>(e.queue_wait_us) / 1000.0);
    AppendJsonEscaped(line, e.pool);
    line.append(std::string_view("\",\"service\":\""));
    AppendJsonEscaped(line, e.service);
    line.append(std::string_view("\",\"request_id\":\""));
    AppendJsonEscaped(line, e.request_id);
    if (!e.tls_version.empty()) {
      line.append(std::string_view("\",\"tls\":\""));
      AppendJsonEscaped(line, e.tls_version);
      line.append(std::string_view("\",\"tls_cipher\":\""));
      AppendJsonEscaped(line, e.tls_cipher);
      line.append(std::string_view("\",\"sni\":\""));
      AppendJsonEscaped(line, e.tls_sni);
      line.append(e.tls_resumed ? std::string_view("\",\"tls_resumed\":true}\n")
                                : std::string_view("\",\"tls_resumed\":false}\n"));
    } else {
      line.append(std::string_view("\"}\n"));
    }
  } else {
    static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    fmt::format_to(std::back_inserter(line), "{} - - [{:02}/{}/{:04}:{:02}:{:02}:{:02} +0000] \"",
                   e.client_ip, t.tm_mday, kMonths[t.tm_mon], t.tm_year + 1900, t.tm_hour, t.tm_min,
                   t.tm_sec);
    AppendQuotedEscaped(line, e.method);
    line.push_back(' ');
    AppendQuotedEscaped(line, e.target);
    fmt::format_to(std::back_inserter(line), " HTTP/1.{}\" {} {} \"", e.version_minor, e.status,
                   e.bytes_sent);
    AppendQuotedEscaped(line, e.referer.empty() ? std::string_view("-") : e.referer);
    line.append(std::string_view("\" \""));
    AppendQuotedEscaped(line, e.user_agent.empty() ? std::string_view("-") : e.user_agent);
    fmt::format_to(std::back_inserter(line), "\" pool={} rt={:.3f} qt={:.3f}", e.pool,
                   static_cast<double>(e.duration_us) / 1e6,
                   static_cast<double>(e.queue_wait_us) / 1e6);
    if (!e.tls_version.empty()) {
      line.append(std::string_view(" tls="));
      line.append(e.tls_version);
      line.push_back('/');
      line.append(e.tls_cipher);
      if (e.tls_resumed) line.append(std::string_view("/resumed"));
    }
    line.push_back('\n');
  }
  if (line.size() > kBufferSize - used_[filling_]) {
    ++dropped_;
    return;
  }
  std::memcpy(buffers_[filling_] + used_[filling_], line.data(), line.size());
  used_[filling_] += line.size();
}

bool AccessLog::NextWrite(const char** data, size_t* len) {
  if (fd_ < 0) return false;
  if (!writing_) {
    if (used_[filling_] == 0) return false;
    writing_ = true;
    written_ = 0;
    filling_ ^= 1;
  }
  const int w = filling_ ^ 1;
  *data = buffers_[w] + written_;
  *len = used_[w] - written_;
  return true;
}

void AccessLog::WriteCompleted(int result) {
  const int w = filling_ ^ 1;
  if (result <= 0) {
    // The sink is broken (closed pipe, full disk): drop what was pending, keep serving.
    ++dropped_;
    used_[w] = 0;
    writing_ = false;
    return;
  }
  written_ += static_cast<size_t>(result);
  if (written_ >= used_[w]) {
    used_[w] = 0;
    writing_ = false;
  }
}

}  // namespace l7px::proxy
