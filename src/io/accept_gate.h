#pragma once

#include <cerrno>
#include <cstdint>

namespace l7px::io {

// Decides when a thread's listeners may accept. Two reasons to stop:
//  - the owner is at its connection limit: resume as soon as a connection closes;
//  - accept failed for want of descriptors or kernel memory (EMFILE, ENFILE, ENOBUFS, ENOMEM).
//    The connection that failed stays in the listen backlog, so accepting again at once fails
//    again at once: a busy loop that starves the connections already open. Pause instead, for
//    a backoff that starts at 50 ms and doubles up to 1 s while accepts keep failing; the first
//    accept that works ends the episode and resets it.
// The owner arms or cancels its accept operations to match Open(), re-checking at least every
// tick, and logs when Exhausted()/Accepted() say an episode starts or ends (once each, not once
// per failure). Single-threaded.
class AcceptGate {
 public:
  static constexpr int64_t kFirstBackoffNs = 50'000'000;
  static constexpr int64_t kMaxBackoffNs = 1'000'000'000;

  // accept errors that mean "out of descriptors or memory", not "this connection failed".
  static bool IsExhaustion(int err) {
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
  }

  // Whether accepts should be armed now. max_connections 0 = no limit.
  bool Open(int64_t now_ns, int64_t connections, uint32_t max_connections) const {
    if (max_connections != 0 && connections >= static_cast<int64_t>(max_connections)) {
      return false;
    }
    return now_ns >= paused_until_ns_;
  }

  // An accept failed with IsExhaustion(err): closed for the next backoff. True when this starts
  // an episode.
  bool Exhausted(int64_t now_ns) {
    const bool first = !exhausted_;
    if (first) {
      exhausted_ = true;
      failures_ = 0;
      episode_start_ns_ = now_ns;
      backoff_ns_ = kFirstBackoffNs;
    } else {
      backoff_ns_ = backoff_ns_ * 2 < kMaxBackoffNs ? backoff_ns_ * 2 : kMaxBackoffNs;
    }
    ++failures_;
    paused_until_ns_ = now_ns + backoff_ns_;
    return first;
  }

  // A connection was accepted. True when this ends an exhaustion episode.
  bool Accepted() {
    if (!exhausted_) return false;
    exhausted_ = false;
    backoff_ns_ = 0;
    return true;
  }

  bool exhausted() const { return exhausted_; }
  int64_t backoff_ns() const { return backoff_ns_; }
  // Failed accepts in the current (or last) episode, and when it started.
  uint64_t failures() const { return failures_; }
  int64_t episode_start_ns() const { return episode_start_ns_; }

 private:
  bool exhausted_ = false;
  int64_t paused_until_ns_ = 0;
  int64_t backoff_ns_ = 0;
  int64_t episode_start_ns_ = 0;
  uint64_t failures_ = 0;
};

}  // namespace l7px::io
