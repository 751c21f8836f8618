#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace l7px::handoff {

// The FD handoff protocol between a running l7px (the "old" process) and one started with
// --takeover (the "new" one), over a SOCK_SEQPACKET UNIX socket: one message per packet,
// file descriptors attached to the packet with SCM_RIGHTS.
//
// Every message is length-prefixed, all integers big-endian:
//   u32 length        bytes that follow (1 .. kMaxMessageBytes - 4)
//   u8  type
//   payload           by type, below; strings are u16 length + bytes
//
//   kHello     (both ways, first)  "l7px" u16 version u32 pid u64 upgrades str build
//   kRefuse    (old -> new)        str reason; the old one then closes, nothing moved
//   kTicketKeys (old -> new, v2)   str keys: the TLS session ticket keys, opaque here (empty
//                                  without TLS); secret, so only over the uid-checked socket
//   kListeners (old -> new)        u32 batch u8 last u16 n, n x (u8 kind, str address); n fds
//   kSlots     (old -> new)        u32 batch u16 n, n x (str pool, str service); n fds attached
//   kAck       (new -> old)        u32 batch: every fd of that batch is now held by the new side
//   kServing   (new -> old)        (empty) the new one accepts on every listener
//   kDone      (old -> new)        u32 slots moved; the old one exits
//   kAbort     (either way)        str reason
//
// Sequence: new Hello -> old Hello -> (v2: old TicketKeys) -> old Listeners... (each acked) ->
// new Serving -> old Slots... (each acked; the old side drops its copy of an fd only after the
// ack) -> old Done.
//
// Versions: the new side's Hello offers the highest version it speaks; the old side answers
// with the lower of that and its own, and both speak that one (every version from
// kMinVersion up is understood). A version-1 process refuses any other version ("handoff
// version N is not supported"): a new side refused so retries once, offering version 1.
inline constexpr uint16_t kVersion = 2;
inline constexpr uint16_t kMinVersion = 1;
inline constexpr char kMagic[4] = {'l', '7', 'p', 'x'};
inline constexpr size_t kMaxMessageBytes = 64 * 1024;
// SCM_MAX_FD is 253 per message on Linux; stay below it.
inline constexpr size_t kMaxFdsPerMessage = 250;

enum class Type : uint8_t {
  kHello = 1,
  kRefuse = 2,
  kListeners = 3,
  kSlots = 4,
  kAck = 5,
  kServing = 6,
  kDone = 7,
  kAbort = 8,
  kTicketKeys = 9,
};

enum class ListenerKind : uint8_t { kFront = 1, kRegister = 2, kAdmin = 3, kTls = 4 };

struct Hello {
  uint16_t version = kVersion;
  uint32_t pid = 0;
  uint64_t upgrades = 0;  // upgrades the sender's lineage has done so far
  std::string build;      // the sender's version string, for the log
};

struct ListenerEntry {
  ListenerKind kind = ListenerKind::kFront;
  std::string address;  // as configured, e.g. "127.0.0.1:8080" or "unix:/run/l7px.sock"
};

struct SlotEntry {
  std::string pool;
  std::string service;
};

struct Message {
  Type type = Type::kAbort;
  Hello hello;                           // kHello
  std::string reason;                    // kRefuse, kAbort
  uint32_t batch = 0;                    // kListeners, kSlots, kAck; kDone: slots moved
  bool last = false;                     // kListeners: no more listener batches follow
  std::vector<ListenerEntry> listeners;  // kListeners
  std::vector<SlotEntry> slots;          // kSlots
  std::string ticket_keys;               // kTicketKeys

  // How many fds must travel with this message.
  size_t fd_count() const {
    if (type == Type::kListeners) return listeners.size();
    if (type == Type::kSlots) return slots.size();
    return 0;
  }
};

const char* TypeName(Type type);

// The wire form, length prefix included. Strings longer than 65535 bytes are an error, and so
// is a message above kMaxMessageBytes or with more than kMaxFdsPerMessage entries.
absl::StatusOr<std::string> Encode(const Message& message);

// Parses one whole packet. Rejects a wrong length prefix, an unknown type, a truncated or
// oversized payload, trailing bytes, a bad magic and unknown listener kinds.
absl::StatusOr<Message> Decode(std::string_view packet);

// Approximate encoded size of one slot entry (to cut batches below kMaxMessageBytes).
inline size_t EncodedSize(const SlotEntry& e) { return 4 + e.pool.size() + e.service.size(); }

}  // namespace l7px::handoff
