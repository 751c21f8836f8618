#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/clock.h"
#include "slots/instance.h"
#include "slots/slot.h"
#include "slots/slot_stack.h"

namespace l7px::slots {

inline constexpr int kMaxWorkers = 256;

// The limits a request reads while it runs. A request copies them when it is admitted, so a
// reload never changes the limits of a request under way, and never frees them under it.
struct RequestLimits {
  uint32_t queue = 1024;
  int64_t queue_timeout_ns = 1'000'000'000;
  int64_t response_timeout_ns = 60'000'000'000;
  uint32_t retries = 1;
  uint64_t response_buffer = 1 << 20;  // read a response this long whole, freeing the slot
  // A tunnel (after 101) with no byte either way for this long is closed.
  int64_t tunnel_idle_timeout_ns = 3'600'000'000'000;
  bool operator==(const RequestLimits&) const = default;
};

// When an instance is benched (slots/instance_health.h).
struct EjectionSettings {
  uint32_t after = 5;                // failures in a row; 0 = never eject
  int64_t time_ns = 10'000'000'000;  // first bench; doubles while it keeps failing
  uint32_t max_percent = 50;         // share of the pool's instances benched at once
  bool operator==(const EjectionSettings&) const = default;
};

// Limits of one pool. Immutable once published: a reload publishes new ones
// (Pool::UpdateSettings).
struct PoolSettings {
  RequestLimits request;
  uint32_t max_slots = 4096;
  std::string token;
  EjectionSettings eject;
  // Upgrade requests under way plus open tunnels (Pool::TryClaimTunnel); 0 = no upgrades.
  uint32_t max_tunnels = 1024;
  // Addresses the acceptor dials itself, keeping upstream_slots connections to each as slots of
  // this pool (acceptor/dialer.h); empty for a pool whose services dial in.
  std::vector<SocketAddress> upstreams;
  uint32_t upstream_slots = 0;
  bool operator==(const PoolSettings&) const = default;
};

// A named set of slots, shared by the acceptor and every worker.
//
// Idle slots wait in one LIFO per instance (slots/instance.h), all over the pool's SlotStack
// cells. A lease (PopForLease) takes the most recently idle slot of the instance in service
// whose slot was leased longest ago: every instance gets its turn whatever its speed (a failing
// one that frees its slots fastest must not win), and within an instance the slot whose service
// thread is most likely still awake goes first. Benched instances keep their slots registered
// and idle, but no lease takes them.
//
// Requests that find no idle slot to lease wait on their own worker; each worker publishes the
// enqueue time of its oldest waiter for this pool in oldest_wait_[worker] (0 = none), so whoever
// makes a slot idle (a worker releasing one, the acceptor registering one) can wake the worker
// holding the globally oldest waiter.
//
// Lost wake-up freedom (Dekker): a waiter publishes oldest_wait, passes SyncPoint(), then tries
// the stack once more; a releaser pushes to the stack, passes SyncPoint(), then reads oldest_wait.
// An instance coming back from its bench is one more releaser: the acceptor clears its
// ejected_until, passes SyncPoint(), then reads the board and wakes the waiters.
// SyncPoint is an acq_rel read-modify-write of one shared word: the two RMWs are ordered, and the
// later one synchronizes with the earlier, so at least one side sees the other's write. (An RMW
// rather than a fence, so ThreadSanitizer can reason about it.)
class Pool {
 public:
  Pool(uint32_t id, std::string name, PoolSettings settings, int num_workers)
      : id_(id),
        name_(std::move(name)),
        num_workers_(num_workers),
        // Dead slots keep their cell until popped: room for twice the live maximum, and at
        // least 2 x 4096 so a reload may raise max_slots without a new stack.
        idle_(size_t{std::max<uint32_t>(settings.max_slots, 4096)} * 2) {
    settings_.store(new PoolSettings(std::move(settings)), std::memory_order_release);
  }
  ~Pool() { delete settings_.load(std::memory_order_acquire); }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  uint32_t id() const { return id_; }
  const std::string& name() const { return name_; }
  // The current limits. A reload replaces them (UpdateSettings) and the replaced ones are freed
  // once no reader can see them (proxy/rcu.h): a worker or the acceptor reads them within one
  // pass of its event loop and never keeps the reference beyond it. A request copies its
  // RequestLimits when it is admitted.
  const PoolSettings& settings() const { return *settings_.load(std::memory_order_acquire); }
  // Control thread only. Publishes `settings` unless they equal the current ones (then nothing
  // is allocated). Returns the replaced settings, or nullptr: the caller frees them once no
  // reader can see them any more.
  std::unique_ptr<const PoolSettings> UpdateSettings(PoolSettings settings) {
    if (settings == this->settings()) return nullptr;
    return std::unique_ptr<const PoolSettings>(
        settings_.exchange(new PoolSettings(std::move(settings)), std::memory_order_acq_rel));
  }
  // Most slots the stack can hold live (registrations beyond are refused whatever max_slots says).
  uint32_t slot_capacity() const { return static_cast<uint32_t>(idle_.capacity() / 2); }

  // A removed pool (reload) or a drained one takes no registrations; its slots are closed as
  // soon as they are idle.
  bool closing() const { return closing_.load(std::memory_order_acquire); }
  void set_closing(bool v) { closing_.store(v, std::memory_order_release); }
  // The cells of the idle LIFOs (Bind/Unbind by the acceptor).
  SlotStack& idle() { return idle_; }
  const SlotStack& idle() const { return idle_; }
  InstanceTable& instances() { return instances_; }
  const InstanceTable& instances() const { return instances_; }

  // Acceptor: gives a new slot its cell and its instance (the one named `instance_key`, counted
  // by InstanceTable::SlotAdded). False when the stack or the instance table is full.
  bool AttachSlot(Slot& slot, std::string_view instance_key, int64_t now_ns);
  // A slot of this pool that is gone for good (dead), once: it leaves the service and instance
  // counts.
  void SlotGone(const Slot& slot) {
    CountService(slot.service_id(), -1);
    instances_.SlotRemoved(slot.instance);
  }
  // Whether the slot's instance is benched now.
  bool Benched(const Slot& slot) const {
    return instances_.at(slot.instance).ejected_until_ns.load(std::memory_order_relaxed) != 0;
  }

  // The holder of an attached slot makes it idle: onto its instance's LIFO.
  void PushIdle(Slot* slot) { idle_.Push(instances_.at(slot->instance).idle, slot); }
  // Workers: an idle slot to lease (see the class comment), popped; nullptr when no instance in
  // service has one. `now_ns` stamps the instance's turn. Lock-free, never allocates; it scans
  // the instances once per pop (plus once more per pop lost to another thread).
  Slot* PopForLease(int64_t now_ns);
  // Acceptor and upgrade: any idle slot, benched or not; nullptr when none.
  Slot* PopAnyIdle();
  // Racy hints: an idle slot of an instance in service / of any instance.
  bool HasLeasableIdle() const;
  bool AnyIdle() const;

  // Tunnels (slots/slot_lifecycle.h): a slot whose service answered 101 leaves the pool's slot
  // counts (registered, busy, the service's and the instance's) and counts in `tunnels` until
  // it is retired. Room for one is claimed when its upgrade request is routed, before it takes
  // a slot, and kept until the request ends (no 101) or the tunnel ends: false (and counted in
  // tunnels_refused) when max_tunnels claims are held. The limit is also kept to half the
  // stack's cells, so live slots, tunnels and dead slots not yet retired always fit.
  bool TryClaimTunnel() {
    const int64_t limit =
        std::min<int64_t>(settings().max_tunnels, static_cast<int64_t>(slot_capacity() / 2));
    if (tunnel_claims.fetch_add(1, std::memory_order_relaxed) >= limit) {
      tunnel_claims.fetch_sub(1, std::memory_order_relaxed);
      tunnels_refused.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    return true;
  }
  void ReleaseTunnelClaim() { tunnel_claims.fetch_sub(1, std::memory_order_relaxed); }

  // Waiter board (see class comment).
  void PublishOldestWait(int worker, int64_t enqueue_ns) {
    oldest_wait_[worker].value.store(enqueue_ns, std::memory_order_relaxed);
  }
  void SyncPoint() { sync_.fetch_add(1, std::memory_order_acq_rel); }
  // Whether `worker` has a waiter for this pool. Call after SyncPoint().
  bool HasWaiter(int worker) const {
    return worker >= 0 && worker < num_workers_ &&
           oldest_wait_[worker].value.load(std::memory_order_relaxed) != 0;
  }
  // Worker with the oldest waiter other than `exclude` (-1 = none). Call after SyncPoint().
  int PickWorkerToWake(int exclude) const {
    int best = -1;
    int64_t best_ns = 0;
    for (int w = 0; w < num_workers_; ++w) {
      if (w == exclude) continue;
      const int64_t t = oldest_wait_[w].value.load(std::memory_order_relaxed);
      if (t != 0 && (best < 0 || t < best_ns)) {
        best = w;
        best_ns = t;
      }
    }
    return best;
  }

  // Registered slots per service id. Changed by the acceptor on registration and retirement,
  // read by the admin API; the mutex is never taken on the request path.
  void CountService(const std::string& service, int delta) {
    std::lock_guard<std::mutex> lock(services_mu_);
    auto it = services_.find(service);
    if (it == services_.end()) {
      if (delta > 0) services_.emplace(service, delta);
      return;
    }
    it->second += delta;
    if (it->second <= 0) services_.erase(it);
  }
  std::map<std::string, int> Services() const {
    std::lock_guard<std::mutex> lock(services_mu_);
    return services_;
  }

  // What the acceptor's dialer (acceptor/dialer.h) last found of one of `upstreams`, for the
  // admin API and metrics. Written on state changes only (never per request).
  struct UpstreamStatus {
    std::string state;       // "starting" (first slots dialing), "up" or "down"
    std::string error;       // why it is down: the last connect error; "" otherwise
    int64_t changed_ms = 0;  // wall-clock time of the last state change (Unix ms)
  };
  void SetUpstreamStatus(const std::string& address, UpstreamStatus status) {
    std::lock_guard<std::mutex> lock(services_mu_);
    upstreams_[address] = std::move(status);
  }
  void ForgetUpstream(const std::string& address) {
    std::lock_guard<std::mutex> lock(services_mu_);
    upstreams_.erase(address);
  }
  std::map<std::string, UpstreamStatus> Upstreams() const {
    std::lock_guard<std::mutex> lock(services_mu_);
    return upstreams_;
  }

  // Gauges and counters (relaxed; read by stats).
  std::atomic<int64_t> registered{0};  // live slots: idle + busy
  std::atomic<int64_t> busy{0};
  std::atomic<int64_t> waiting{0};  // requests queued on all workers
  std::atomic<uint64_t> registrations_ok{0};
  std::atomic<uint64_t> registrations_refused{0};
  std::atomic<uint64_t> ejections_total{0};  // instances benched (slots/instance_health.h)
  std::atomic<uint64_t> stray_idle{0};  // idle slots the acceptor closed for bytes sent unasked
  // Tunnels (TryClaimTunnel): claims held, open tunnels (slots bound to the stack but not
  // registered), tunnels ever opened, upgrade requests refused at max_tunnels.
  std::atomic<int64_t> tunnel_claims{0};
  std::atomic<int64_t> tunnels{0};
  std::atomic<uint64_t> tunnels_total{0};
  std::atomic<uint64_t> tunnels_refused{0};

 private:
  struct alignas(64) PaddedTime {
    std::atomic<int64_t> value{0};
  };

  const uint32_t id_;
  const std::string name_;
  const int num_workers_;
  std::atomic<const PoolSettings*> settings_{nullptr};
  std::atomic<bool> closing_{false};
  mutable std::mutex services_mu_;
  std::map<std::string, int> services_;
  std::map<std::string, UpstreamStatus> upstreams_;  // under services_mu_
  SlotStack idle_;
  InstanceTable instances_;
  alignas(64) std::atomic<uint64_t> sync_{0};
  PaddedTime oldest_wait_[kMaxWorkers];
};

}  // namespace l7px::slots

namespace l7px::slots {

inline constexpr uint32_t kMaxPools = 1024;

// Every pool this process has had, by id. Pools are only ever added (a reload or the admin API
// adds; a removal or a drain marks the pool closing, and declaring its name again reopens that
// same pool), so any thread may index it without locks: ids are stable and a Pool lives until
// the registry is destroyed at exit. It holds at most one pool per name, so kMaxPools bounds the
// distinct pool names over the process's life, not the reloads or drains.
class PoolRegistry {
 public:
  PoolRegistry() = default;
  PoolRegistry(const PoolRegistry&) = delete;
  PoolRegistry& operator=(const PoolRegistry&) = delete;
  ~PoolRegistry() {
    for (uint32_t i = 0; i < size(); ++i) delete at(i);
  }

  uint32_t size() const { return count_.load(std::memory_order_acquire); }
  Pool* at(uint32_t id) const { return pools_[id].load(std::memory_order_acquire); }
  // The live (not closing) pool with this name, or nullptr.
  Pool* Find(std::string_view name) const {
    for (uint32_t i = 0; i < size(); ++i) {
      Pool* p = at(i);
      if (p->name() == name && !p->closing()) return p;
    }
    return nullptr;
  }
  // The pool with this name, live or closing (a drained pool that routes still name: their
  // requests get 503), else nullptr.
  Pool* FindAny(std::string_view name) const {
    if (Pool* live = Find(name)) return live;
    for (uint32_t i = size(); i-- > 0;) {
      if (at(i)->name() == name) return at(i);
    }
    return nullptr;
  }
  // Control thread only. nullptr when kMaxPools pools exist.
  Pool* Add(std::string name, PoolSettings settings, int num_workers) {
    const uint32_t id = size();
    if (id >= kMaxPools) return nullptr;
    auto* pool = new Pool(id, std::move(name), std::move(settings), num_workers);
    pools_[id].store(pool, std::memory_order_release);
    count_.store(id + 1, std::memory_order_release);
    return pool;
  }

 private:
  std::atomic<Pool*> pools_[kMaxPools] = {};
  std::atomic<uint32_t> count_{0};
};

}  // namespace l7px::slots
