#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/address.h"
#include "base/unique_fd.h"
#include "io/ring.h"
#include "slots/pool.h"
#include "slots/slot.h"

namespace l7px::acceptor {

// Slots for services that only listen: for every address in a pool's `upstreams` the acceptor
// keeps `upstream_slots` keep-alive connections it dialed itself, each filed as a slot of the
// pool exactly as a registered one (same idle stacks, queue, retries, instance health; the
// instance and the service id are the address as written, e.g. "127.0.0.1:3000").
//
// Thread: the acceptor's only. It owns no Slot: the acceptor creates, registers, closes and
// frees them; the dialer is told of each (Attach, SlotGone) and keeps per address the slots
// alive, the dials in flight, a state and a back-off:
//   - connects are nonblocking, through the acceptor's ring, each linked to a timeout
//     (kConnectTimeoutNs); TCP ones get SO_LINGER {1, 0} (slots::Slot::ShutDown: no TIME_WAIT
//     stays on l7px's side when l7px ends one);
//   - a failed connect benches the address: "down" is logged once, then one probe at a time
//     after a jittered back-off (50 ms doubling to 5 s); the first connect that works dials the
//     rest, and "up: N slots" is logged once they are all in;
//   - a slot that carried at least one exchange or lived kIdleCloseNs is gone (the service
//     closed it, answered `Connection: close`, its idle timeout passed, or it failed): it is
//     re-dialed at once and the back-off is reset; one gone sooner without carrying any waits
//     for the back-off, which it doubles, so a service that keeps closing fresh connections is
//     not dialed in a loop;
//   - settings are followed on every tick: new addresses are dialed, removed ones (and a closing
//     pool's) lose their slots as soon as each is idle, a lower upstream_slots closes idle slots
//     beyond it, a higher one dials the difference;
//   - while held (a takeover under way: adopted slots still arriving) or paused (this process is
//     handing its slots to a successor) nothing is dialed.
class Dialer {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr int64_t kConnectTimeoutNs = 3'000'000'000;
  static constexpr int64_t kFirstBackoffNs = 50'000'000;
  static constexpr int64_t kMaxBackoffNs = 5'000'000'000;
  static constexpr int64_t kIdleCloseNs = 1'000'000'000;
  // An unused slot gone this soon was closed by the service as it was made (see SlotGone).
  static constexpr int64_t kClosedAtOnceNs = 100'000'000;

  // Files a connected socket as an idle slot of `pool` with this service id (the address), with
  // slot->upstream = `entry`, or closes it and returns nullptr (the pool is full).
  using AddSlotFn = std::function<slots::Slot*(UniqueFd fd, slots::Pool& pool,
                                               const std::string& service, uint32_t entry)>;

  // Connect completions are tagged {connect_op, generation, attempt}; their linked timeouts
  // {ignored_op, 0, 0}.
  Dialer(slots::PoolRegistry* pools, io::Ring* ring, AddSlotFn add, uint8_t connect_op,
         uint8_t ignored_op);
  ~Dialer();
  Dialer(const Dialer&) = delete;
  Dialer& operator=(const Dialer&) = delete;

  // Follows the pools' settings (call every tick and once at start) and then Pump.
  void Tick(int64_t now_ns);
  // Dials what is missing and closes idle slots beyond the targets; cheap when nothing changed
  // since the last call (call after every batch of completions).
  void Pump(int64_t now_ns);
  void OnConnect(uint32_t attempt, uint32_t generation, int res, int64_t now_ns);

  // Held: a takeover is receiving slots (they count toward the targets once adopted).
  void set_held(bool held) {
    held_ = held;
    dirty_ = true;
  }
  // Paused: registrations are stopped while this process hands its slots over.
  void set_paused(bool paused) {
    paused_ = paused;
    dirty_ = true;
  }

  // The entry of `pool`'s upstream address written `service` (an adopted slot), or kNone.
  uint32_t Find(const slots::Pool& pool, const std::string& service);
  // A slot of entry `entry` was filed (slot.upstream == entry).
  void Attach(slots::Slot& slot);
  // The acceptor is freeing a slot with slot.upstream != kNone.
  void SlotGone(const slots::Slot& slot, int64_t now_ns);

 private:
  enum class State : uint8_t { kStarting, kUp, kDown };
  struct Entry;
  struct Attempt;

  uint32_t FindOrAdd(uint32_t pool_id, const SocketAddress& address);
  // Tells the pool (admin API, metrics) the entry's state; on state changes only.
  void Publish(const Entry& e);
  void DialMissing(Entry& e, uint32_t index, int64_t now_ns);
  void StartDial(Entry& e, uint32_t index);
  void Failed(Entry& e, int error, int64_t now_ns);
  // State "down" for `why` (logged once per change of state; the error is published).
  void MarkDown(Entry& e, std::string_view why);
  void CloseExcess(Entry& e, uint32_t alive);
  void MaybeUp(Entry& e);
  uint32_t Alive(const Entry& e) const;
  int64_t Backoff(uint32_t failures);

  slots::PoolRegistry* pools_;
  io::Ring* ring_;
  AddSlotFn add_;
  uint8_t connect_op_;
  uint8_t ignored_op_;
  std::vector<std::unique_ptr<Entry>> entries_;  // nullptr: free
  std::vector<std::unique_ptr<Attempt>> attempts_;
  std::vector<uint32_t> free_attempts_;
  uint32_t generation_ = 0;
  uint64_t random_;
  bool held_ = false;
  bool paused_ = false;
  bool dirty_ = true;
  int64_t next_due_ns_ = 0;  // the earliest back-off that ends (0: none pending)
};

}  // namespace l7px::acceptor
