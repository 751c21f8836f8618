#include "support/load.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <thread>
#include <vector>

#include "support/clients.h"
#include "support/integration.h"
#include "support/net.h"

namespace l7px::testing {

LoadClient::LoadClient(uint16_t port, int connections, std::string path,
                       std::chrono::seconds max_run)
    : port_(port), connections_(connections), path_(std::move(path)), max_run_(max_run) {}

LoadClient::~LoadClient() { Stop(); }

void LoadClient::Start() {
  for (int i = 0; i < connections_; ++i) threads_.emplace_back([this] { Run(); });
}

LoadClient::Totals LoadClient::Stop() {
  stop_.store(true);
  for (std::thread& t : threads_) t.join();
  threads_.clear();
  Totals t;
  t.ok = ok_.load();
  t.bad_status = bad_status_.load();
  t.shed = shed_.load();
  t.connection_errors = connection_errors_.load();
  t.connects = connects_.load();
  t.slowest = std::chrono::milliseconds(slowest_ms_.load());
  std::lock_guard<std::mutex> lock(mu_);
  t.first_error = first_error_;
  return t;
}

void LoadClient::NoteError(std::atomic<uint64_t>& counter, const std::string& what) {
  counter.fetch_add(1);
  std::lock_guard<std::mutex> lock(mu_);
  if (first_error_.empty()) first_error_ = what;
}

void LoadClient::Run() {
  const auto end = std::chrono::steady_clock::now() + max_run_;
  const std::string request = GetRequest(path_);
  UniqueFd fd;
  std::string carry;
  while (!stop_.load() && std::chrono::steady_clock::now() < end) {
    if (!fd) {
      fd = ConnectTcp(port_, std::chrono::seconds(5));
      if (!fd) {
        NoteError(connection_errors_, "connect failed (refused, or no handshake within 5 s)");
        continue;
      }
      connects_.fetch_add(1);
      carry.clear();
    }
    if (!SendAll(fd.get(), request)) {
      NoteError(connection_errors_, "send failed");
      fd.Reset();
      continue;
    }
    const auto sent = std::chrono::steady_clock::now();
    const std::string response = RecvHttpResponse(fd.get(), &carry, std::chrono::seconds(10));
    const int64_t took = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - sent)
                             .count();
    int64_t slowest = slowest_ms_.load();
    while (took > slowest && !slowest_ms_.compare_exchange_weak(slowest, took)) {
    }
    if (response.empty()) {
      NoteError(connection_errors_, "connection ended (or stalled) before its response");
      fd.Reset();
      continue;
    }
    const int status = StatusOf(response);
    if (status >= 200 && status < 300) {
      ok_.fetch_add(1);
    } else {
      if (status == 503) shed_.fetch_add(1);
      NoteError(bad_status_, "status " + std::to_string(status) + ": " + response.substr(0, 200));
    }
    const std::string connection = HeaderOf(response, "Connection");
    if (connection == "close" || connection == "Close") {
      WaitPeerClosed(fd.get(), std::chrono::seconds(2));  // the server closes first, as announced
      fd.Reset();
    }
  }
}

std::map<std::string, int> CountAnswersByService(uint16_t port, int clients, int n,
                                                 const std::string& path) {
  std::mutex mu;
  std::map<std::string, int> seen;
  std::atomic<int> left{n};
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      UniqueFd fd;
      std::string carry;
      while (left.fetch_sub(1) > 0) {
        if (!fd) {
          fd = ConnectTcp(port);
          carry.clear();
        }
        std::string resp;
        if (fd && SendAll(fd.get(), GetRequest(path))) {
          resp = RecvHttpResponse(fd.get(), &carry, kIo);
        }
        const std::string key =
            resp.empty() ? "none"
                         : std::to_string(StatusOf(resp)) + " " + HeaderOf(resp, "X-Service");
        if (resp.empty() || HeaderOf(resp, "Connection") == "close") fd.Reset();
        std::lock_guard<std::mutex> lock(mu);
        ++seen[key];
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return seen;
}

int64_t MillisForSequentialRequests(uint16_t port, int n, const std::string& name) {
  UniqueFd client = ConnectTcp(port);
  EXPECT_TRUE(client);
  if (!client) return -1;
  std::string carry;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    const std::string path = "/n" + std::to_string(i);
    EXPECT_TRUE(SendAll(client.get(), GetRequest(path)));
    const std::string body = BodyOf(RecvHttpResponse(client.get(), &carry, kIo));
    EXPECT_EQ(body, name + " " + path);
    if (body != name + " " + path) return -1;
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

void GiveUpMidRequest(uint16_t port, int rounds, int clients, const std::string& path,
                      std::chrono::milliseconds after) {
  for (int round = 0; round < rounds; ++round) {
    std::vector<UniqueFd> fds;
    for (int i = 0; i < clients; ++i) {
      fds.push_back(ConnectTcp(port));
      EXPECT_TRUE(SendAll(fds.back().get(), GetRequest(path)));
    }
    std::this_thread::sleep_for(after);
    for (UniqueFd& fd : fds) {
      const linger reset{1, 0};
      setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
      fd.Reset();
    }
  }
}

}  // namespace l7px::testing
