#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace l7px::proxy {

// `l7px ctl`: a client of the admin API (docs/operating.md, "Admin API" and "l7px ctl").
//
//   l7px ctl [--admin ADDR] [--token T] [-c FILE] [--json] COMMAND
//   COMMAND: stats | pools | routes | reload | drain POOL | route del ID
//          | route add [--host H] [--path P] [--cidr C]... [--header NAME[=VALUE]] --pool X
//
// ADDR is "127.0.0.1:9901" (default), "[::1]:9901", "localhost:9901" or "unix:/path". The token
// is --token, else admin.token of -c FILE, else $L7PX_ADMIN_TOKEN; it is sent as
// "Authorization: Bearer T". --json prints the response body exactly; otherwise tables.
// Exit codes: 0 ok; 1 admin unreachable, timed out or answered non-2xx (status and body on
// stderr), or -c FILE unusable; 2 usage error.
// Blocking I/O; call from a plain thread (main), never from a worker.

struct CtlOptions {
  std::string env_token;                    // $L7PX_ADMIN_TOKEN ("" = unset)
  std::chrono::milliseconds timeout{5000};  // whole exchange with the admin endpoint
};

// `args` are the words after "ctl". Normal output is appended to *out, diagnostics to *err.
int RunCtl(const std::vector<std::string>& args, const CtlOptions& options, std::string* out,
           std::string* err);

// argv starts after "ctl". Writes to stdout/stderr and reads $L7PX_ADMIN_TOKEN.
int RunCtl(int argc, char** argv);

}  // namespace l7px::proxy
