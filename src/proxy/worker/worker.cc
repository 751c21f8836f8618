// Worker: the thread around a Worker::Loop (proxy/worker/loop.h).
#include "proxy/worker/worker.h"

#include <future>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/thread_name.h"
#include "proxy/worker/loop.h"

namespace l7px::proxy {

Worker::Worker(int id, SharedState* shared, std::vector<UniqueFd> listeners, size_t tls_from)
    : id_(id), shared_(shared), listeners_(std::move(listeners)), tls_from_(tls_from) {}

Worker::~Worker() { Join(); }

absl::Status Worker::Start() {
  loop_ = std::make_unique<Loop>(id_, shared_, &stats_, std::move(listeners_), tls_from_);
  std::promise<absl::Status> started;
  std::future<absl::Status> result = started.get_future();
  thread_ = std::thread([this, started = std::move(started)]() mutable {
    NameThisThread(absl::StrCat("l7px-worker-", id_));
    absl::Status status = loop_->Init();
    if (status.ok()) ring_fd_ = loop_->ring_fd();
    const bool ok = status.ok();
    started.set_value(std::move(status));
    if (ok) loop_->Run(go_);
  });
  absl::Status status = result.get();
  if (!status.ok()) thread_.join();
  return status;
}

void Worker::Go() {
  go_.store(true, std::memory_order_release);
  go_.notify_all();
}

void Worker::Join() {
  if (thread_.joinable()) {
    Go();  // a worker never released still has to leave its wait
    thread_.join();
  }
}

}  // namespace l7px::proxy
