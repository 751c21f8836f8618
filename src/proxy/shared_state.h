#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "acceptor/pool.h"
#include "config/config.h"
#include "proxy/router.h"

namespace l7px::proxy {

// What every worker and the acceptor share. Built once before the threads start and immutable
// afterwards except for the atomics (runtime route changes arrive with the control plane).
struct SharedState {
  config::Config config;
  std::vector<std::unique_ptr<acceptor::Pool>> pools;  // index = pool id
  RouteTable routes;
  int num_workers = 1;
  std::vector<int> worker_ring_fds;       // filled before any worker runs its loop
  std::atomic<int> acceptor_ring_fd{-1};  // set before any worker runs its loop
  std::atomic<bool> stop{false};
  int access_log_fd = -1;
};

}  // namespace l7px::proxy
