#pragma once

#include <cstdint>

namespace l7px::proxy {

// The slow-POST rule (server.body_timeout, server.min_body_rate). While l7px waits for request
// body bytes, the time is cut into body_timeout windows; at the end of each, the bytes the
// client delivered in it are judged. A window in which l7px itself stopped reading (its input
// buffer was full because the service or the queue was slower than the client, or the worker
// had no receive buffers) is not judged: the client could not have sent more.
enum class BodyPace {
  kKeptUp,     // at least one byte, and at least min_rate x elapsed
  kTooSlow,    // answer 408 (or close once a response started)
  kNotJudged,  // l7px paused reading during the window
};

inline BodyPace JudgeBodyWindow(uint64_t bytes, bool l7px_paused, int64_t elapsed_ns,
                                uint64_t min_rate_per_s) {
  if (l7px_paused) return BodyPace::kNotJudged;
  if (bytes == 0) return BodyPace::kTooSlow;
  if (elapsed_ns <= 0 || min_rate_per_s == 0) return BodyPace::kKeptUp;
  // rate (< 2^41) x elapsed (< 2^47 ns, 24 h) needs more than 64 bits.
  const unsigned __int128 wanted =
      static_cast<unsigned __int128>(min_rate_per_s) * static_cast<uint64_t>(elapsed_ns);
  const unsigned __int128 got = static_cast<unsigned __int128>(bytes) * 1'000'000'000u;
  return got >= wanted ? BodyPace::kKeptUp : BodyPace::kTooSlow;
}

}  // namespace l7px::proxy
