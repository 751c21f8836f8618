#include "proxy/worker/access_log.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace l7px::proxy {
namespace {

AccessLog::Entry SampleEntry() {
  AccessLog::Entry e{};
  e.unix_ms = 1'700'000'000'123;  // 2023-11-14T22:13:20.123Z
  e.client_ip = "127.0.0.1";
  e.method = "GET";
  e.target = "/a\"b";
  e.host = "h";
  e.version_minor = 1;
  e.status = 200;
  e.bytes_sent = 42;
  e.bytes_received = 7;
  e.duration_us = 1500;
  e.queue_wait_us = 250;
  e.pool = "default";
  e.service = "svc-1";
  e.request_id = "abc";
  e.user_agent = "curl/8";
  return e;
}

// Appends one entry and returns what the log would write.
std::string Render(config::AccessFormat format, const AccessLog::Entry& e) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  std::string out;
  {
    AccessLog log(fds[1], format);
    log.Append(e);
    const char* data;
    size_t len;
    EXPECT_TRUE(log.NextWrite(&data, &len));
    out.assign(data, len);
    log.WriteCompleted(static_cast<int>(len));
    EXPECT_FALSE(log.NextWrite(&data, &len));
  }
  close(fds[0]);
  close(fds[1]);
  return out;
}

TEST(AccessLogTest, JsonLineEscapesAndCarriesEveryField) {
  EXPECT_EQ(Render(config::AccessFormat::kJson, SampleEntry()),
            "{\"time\":\"2023-11-14T22:13:20.123Z\",\"client\":\"127.0.0.1\",\"method\":\"GET\","
            "\"target\":\"/a\\\"b\",\"host\":\"h\",\"status\":200,\"bytes\":42,"
            "\"bytes_received\":7,\"duration_ms\":1.500,\"queue_ms\":0.250,\"pool\":\"default\","
            "\"service\":\"svc-1\","
            "\"request_id\":\"abc\"}\n");
}

// A TLS server name is whatever bytes the client sent: bytes that are not UTF-8 become U+FFFD
// (the line stays valid JSON); well-formed UTF-8 passes as it is.
TEST(AccessLogTest, JsonLineIsValidUtf8WhateverTheClientSent) {
  AccessLog::Entry e = SampleEntry();
  e.tls_version = "TLSv1.3";
  e.tls_cipher = "TLS_AES_128_GCM_SHA256";
  e.tls_sni =
      "\xff\xfe\x80"
      "a"
      "\xc3\xa9\xe2\x82\xac\xed\xa0\x80\xf0\x9f\x98\x80\xc0\xaf";
  const std::string line = Render(config::AccessFormat::kJson, e);
  EXPECT_NE(line.find("\"sni\":\"\\ufffd\\ufffd\\ufffd"
                      "a"
                      "\xc3\xa9\xe2\x82\xac"
                      "\\ufffd\\ufffd\\ufffd\xf0\x9f\x98\x80\\ufffd\\ufffd\","),
            std::string::npos)
      << line;
}

TEST(AccessLogTest, CombinedLine) {
  EXPECT_EQ(Render(config::AccessFormat::kCombined, SampleEntry()),
            "127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /a\\x22b HTTP/1.1\" 200 42 \"-\" "
            "\"curl/8\" pool=default rt=0.002 qt=0.000\n");
}

TEST(AccessLogTest, PartialWritesResumeAndDisabledLogWritesNothing) {
  AccessLog off(-1, config::AccessFormat::kJson);
  off.Append(SampleEntry());
  const char* data;
  size_t len;
  EXPECT_FALSE(off.NextWrite(&data, &len));

  AccessLog log(100, config::AccessFormat::kJson);  // fd never written by the class itself
  log.Append(SampleEntry());
  ASSERT_TRUE(log.NextWrite(&data, &len));
  const size_t total = len;
  log.WriteCompleted(10);
  ASSERT_TRUE(log.NextWrite(&data, &len));
  EXPECT_EQ(len, total - 10);
  log.WriteCompleted(static_cast<int>(len));
  EXPECT_FALSE(log.NextWrite(&data, &len));
}

}  // namespace
}  // namespace l7px::proxy
