#include "support/listening_service.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "support/integration.h"

namespace l7px::testing {
namespace {

// argv: name, listen address ("127.0.0.1:PORT" or "unix:/path"), stats file, idle timeout (s).
constexpr char kServiceScript[] = R"PY(
import http.server, os, socketserver, sys, threading, time
name, listen, stats_path = sys.argv[1], sys.argv[2], sys.argv[3]
idle = float(sys.argv[4]) if len(sys.argv) > 4 else 0
lock = threading.Lock()
st = {"accepted": 0, "open": 0, "inflight": 0, "max_inflight": 0, "requests": 0, "dropped": 0}
def dump():
    tmp = stats_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(" ".join("%s=%d" % kv for kv in st.items()) + "\n")
    os.replace(tmp, stats_path)
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Python's defaults: Nagle on, and unbuffered writes, so the head and the body of a response
    # go out in two writes and the kernel holds the body until the peer acknowledges the head.
    timeout = idle or None
    def setup(self):
        super().setup()
        self.answered = 0  # requests answered on this connection
        with lock:
            st["accepted"] += 1
            st["open"] += 1
            dump()
    def counted(self, fn):
        with lock:
            st["inflight"] += 1
            st["requests"] += 1
            st["max_inflight"] = max(st["max_inflight"], st["inflight"])
            dump()  # so that a test sees a request while it runs
        try:
            fn()
        finally:
            with lock:
                st["inflight"] -= 1
                dump()
    def drops(self):
        # /drop... closes the connection without answering, after reading the whole request:
        # /drop-reused only on a connection that answered before (the keep-alive race as the
        # agent sees it), /drop-always on any.
        p = self.path
        return p.startswith("/drop-always") or (p.startswith("/drop-reused") and self.answered)
    def answer(self, body, send_body):
        if self.drops():
            with lock:
                st["dropped"] += 1
                dump()
            self.close_connection = True
            return
        self.answered += 1
        if self.path.startswith("/early-hints"):
            self.send_response_only(103)
            self.send_header("Link", "</s.css>; rel=preload")
            self.end_headers()
            self.wfile.flush()
        if self.path.startswith("/until-close"):
            return self.until_close(body)
        if self.path.startswith("/abort-mid"):
            # The head and part of a body of Content-Length 100000, then the connection closes.
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 1000)
            self.wfile.flush()
            self.close_connection = True
            return
        if self.path.startswith("/slow"):
            time.sleep(0.002)
        if self.path.startswith("/sleep/"):
            time.sleep(int(self.path[7:]) / 1000.0)
        if self.path.startswith("/http10"):
            self.protocol_version = "HTTP/1.0"
            self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Service", name)
        if self.path.startswith("/close"):
            self.send_header("Connection", "close")
        self.end_headers()
        if send_body:
            self.wfile.write(body)
    def until_close(self, body):
        # A body delimited by the connection's close (no Content-Length, no chunked): 200 KB of
        # "<name> <path>" repeated; /until-close10 as HTTP/1.0, else HTTP/1.1 with
        # Connection: close.
        if self.path.startswith("/until-close10"):
            self.protocol_version = "HTTP/1.0"
        self.send_response(200)
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        data = (body * (200000 // len(body) + 1))[:200000]
        for i in range(0, len(data), 50000):
            self.wfile.write(data[i:i + 50000])
            self.wfile.flush()
    def body_for_get(self):
        if self.path.startswith("/xff"):
            return (self.headers.get("X-Forwarded-For") or "").encode()
        return (name + " " + self.path).encode()
    def upgrade(self):
        self.send_response(101)
        self.send_header("Upgrade", "echo")
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        conn = self.connection
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
    def do_GET(self):
        if (self.headers.get("Upgrade") or "").lower() == "echo":
            return self.counted(self.upgrade)
        self.counted(lambda: self.answer(self.body_for_get(), True))
    def do_HEAD(self):
        self.counted(lambda: self.answer(self.body_for_get(), False))
    def read_body(self):
        total, acc = 0, 0
        def take(n):
            nonlocal total, acc
            while n > 0:
                chunk = self.rfile.read(min(n, 65536))
                if not chunk:
                    raise ConnectionError("body cut short")
                total += len(chunk)
                acc = (acc + sum(chunk)) & 0xffffffff
                n -= len(chunk)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                take(size)
                self.rfile.readline()
        else:
            take(int(self.headers.get("Content-Length") or 0))
        return ("len=%d sum=%d" % (total, acc)).encode()
    def do_POST(self):
        self.counted(lambda: self.answer(self.read_body(), True))
    do_PUT = do_POST
    def log_message(self, *args):
        pass
class Closing:
    # "open" drops once the connection is closed (not when its handler returns, just before):
    # a test that sees it drop knows the peer can see the close.
    def shutdown_request(self, request):
        try:
            super().shutdown_request(request)
        finally:
            with lock:
                st["open"] -= 1
                dump()
class Tcp(Closing, socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
class Unix(Closing, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
if listen.startswith("unix:"):
    path = listen[5:]
    if os.path.exists(path):
        os.unlink(path)
    server = Unix(path, Handler)
else:
    host, port = listen.rsplit(":", 1)
    server = Tcp((host, int(port)), Handler)
with lock:
    dump()
print("ready", flush=True)
server.serve_forever()
)PY";

}  // namespace

std::string ListeningServices::Script() {
  const std::string path = dir_ + "/service.py";
  if (ReadFile(path).empty()) std::ofstream(path) << kServiceScript;
  return path;
}

ChildProcess& ListeningServices::Start(const std::string& name, const std::string& listen,
                                       const std::string& idle_seconds) {
  std::remove(StatsPath(name).c_str());
  services_[name] = ChildProcess::Start(
      {"/usr/bin/env", "python3", Script(), name, listen, StatsPath(name), idle_seconds},
      dir_ + "/" + name + ".log");
  EXPECT_TRUE(WaitFor([&] { return Stats(name).accepted >= 0; }, kIo)) << LogOf(name);
  return services_[name];
}

std::string ListeningServices::LogOf(const std::string& name) const {
  return ReadFile(dir_ + "/" + name + ".log");
}

ListeningServiceStats ListeningServices::Stats(const std::string& name) const {
  ListeningServiceStats s;
  std::istringstream in(ReadFile(StatsPath(name)));
  std::string field;
  while (in >> field) {
    const size_t eq = field.find('=');
    if (eq == std::string::npos) continue;
    const int v = std::stoi(field.substr(eq + 1));
    const std::string key = field.substr(0, eq);
    if (key == "accepted") s.accepted = v;
    if (key == "open") s.open = v;
    if (key == "max_inflight") s.max_inflight = v;
    if (key == "requests") s.requests = v;
    if (key == "dropped") s.dropped = v;
  }
  return s;
}

uint32_t ByteSum(const std::string& data) {
  uint32_t sum = 0;
  for (unsigned char c : data) sum += c;
  return sum;
}

}  // namespace l7px::testing
