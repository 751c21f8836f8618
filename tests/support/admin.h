#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/strict_json.h"
#include "base/unique_fd.h"
#include "support/process.h"

namespace l7px::testing {

// Helpers for driving l7px's control plane from tests: the admin API, `l7px ctl`, and clients
// with a chosen source address. Every call is bounded by a timeout.

// A child process run to completion.

// `l7px ctl --admin 127.0.0.1:<admin_port> <args...>`.
CommandResult RunCtl(uint16_t admin_port, const std::vector<std::string>& args);

// One admin API request on a fresh connection.
struct AdminResponse {
  int status = 0;    // 0 when no complete response arrived
  std::string body;  // de-chunked
  std::string raw;   // the whole response
};
// `token` non-empty adds "Authorization: Bearer <token>"; `authorization` non-empty sends that
// header value verbatim instead.
AdminResponse AdminCall(uint16_t admin_port, const std::string& method, const std::string& path,
                        const std::string& body = "", const std::string& token = "",
                        const std::string& authorization = "");

// The parsed JSON body of a 200 GET (null on any failure, with the reason in *error). Read it
// with FindMember and JsonInt64 (base/strict_json.h), which never abort on a missing member or
// another type.
Json AdminJson(uint16_t admin_port, const std::string& path, std::string* error = nullptr,
               const std::string& token = "");

// A counter of GET /stats ("requests", "client_connections", "stray_slots", ...); -1 when it is
// not listed.
int64_t StatsCounter(uint16_t admin_port, const std::string& key, const std::string& token = "");

// From GET /pools: the pool object named `name`, or null when the pool is not listed.
Json PoolEntry(uint16_t admin_port, const std::string& name, const std::string& token = "");
// One of its counters ("registered", "busy", "idle", "waiting", ...); -1 when the pool or the
// counter is not listed.
int64_t PoolCounter(uint16_t admin_port, const std::string& name, const std::string& key,
                    const std::string& token = "");
// Its "registered" count; -1 when the pool is not listed.
int64_t RegisteredSlots(uint16_t admin_port, const std::string& name,
                        const std::string& token = "");

}  // namespace l7px::testing
