#pragma once

#include <cstdint>

#include "slots/pool.h"
#include "slots/slot.h"

namespace l7px::slots {

// Passive outlier ejection: how an exchange's outcome benches (ejects) its slot's instance.
//
// A failure is a 5xx response head from the service, a slot that fails mid-exchange (reset,
// close, malformed response) and a response_timeout; a success is any other response completed.
// After pool.eject.after failures in a row, the instance is benched for eject.time: no lease
// takes its slots (they stay registered and idle, and so does a slot it registers meanwhile).
// A bench that starts before the instance has stayed back as long as its previous bench lasted
// is twice that previous one, up to kMaxBenchNs (or eject.time when longer); otherwise it is
// eject.time again. At most floor(instances x max_percent / 100) instances are benched at once,
// and never every instance with slots (a pool whose instances all fail keeps answering with
// their errors).
//
// Workers report while they hold the slot (before returning or killing it), within one pass of
// their event loop (they read the pool's settings). Lock-free and allocation-free; the ejection
// itself (rare) logs one line.

inline constexpr int64_t kMaxBenchNs = 300'000'000'000;  // 5 minutes

// A response head with this status arrived on `slot` (nullptr: nothing to report). Call once per
// exchange, when the response is complete (or at its head for a 5xx).
void ReportResponse(Pool& pool, const Slot* slot, int status, int64_t now_ns);

// The exchange on `slot` failed (reset, close or malformed response mid-exchange, or
// response_timeout). `slot` may be nullptr.
void ReportFailure(Pool& pool, const Slot* slot, int64_t now_ns);

// Acceptor, every tick: instances whose bench has passed return to service (one log line each).
// Returns how many returned. When any did, the caller passes the pool's SyncPoint and then wakes
// every worker with a waiter, whether or not the lanes looked empty here (a slot pushed to a
// benched lane meanwhile woke nobody who could lease it: see Pool, lost wake-up freedom).
int ReturnBenched(Pool& pool, int64_t now_ns);

// The share cap: how many of `live` instances may be benched at once.
int32_t MaxEjected(int32_t live, uint32_t max_percent);

}  // namespace l7px::slots
