#pragma once

#include <time.h>

#include <chrono>
#include <cstdint>

namespace l7px {

using Duration = std::chrono::nanoseconds;

// Monotonic time in nanoseconds; cheap (vDSO), safe on worker threads.
inline int64_t MonotonicNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

inline int64_t ToNanos(Duration d) { return d.count(); }

}  // namespace l7px
