#include "handoff/message.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace l7px::handoff {
namespace {

class Writer {
 public:
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) {
    U8(static_cast<uint8_t>(v >> 8));
    U8(static_cast<uint8_t>(v));
  }
  void U32(uint32_t v) {
    U16(static_cast<uint16_t>(v >> 16));
    U16(static_cast<uint16_t>(v));
  }
  void U64(uint64_t v) {
    U32(static_cast<uint32_t>(v >> 32));
    U32(static_cast<uint32_t>(v));
  }
  bool Str(std::string_view s) {
    if (s.size() > 0xFFFF) return false;
    U16(static_cast<uint16_t>(s.size()));
    out_.append(s);
    return true;
  }
  void Bytes(const char* p, size_t n) { out_.append(p, n); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool U8(uint8_t* v) {
    if (in_.size() < 1) return false;
    *v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return true;
  }
  bool U16(uint16_t* v) {
    uint8_t a, b;
    if (!U8(&a) || !U8(&b)) return false;
    *v = static_cast<uint16_t>((a << 8) | b);
    return true;
  }
  bool U32(uint32_t* v) {
    uint16_t a, b;
    if (!U16(&a) || !U16(&b)) return false;
    *v = (uint32_t{a} << 16) | b;
    return true;
  }
  bool U64(uint64_t* v) {
    uint32_t a, b;
    if (!U32(&a) || !U32(&b)) return false;
    *v = (uint64_t{a} << 32) | b;
    return true;
  }
  bool Str(std::string* s) {
    uint16_t n;
    if (!U16(&n) || in_.size() < n) return false;
    s->assign(in_.data(), n);
    in_.remove_prefix(n);
    return true;
  }
  bool Magic() {
    if (in_.size() < sizeof(kMagic) || std::memcmp(in_.data(), kMagic, sizeof(kMagic)) != 0) {
      return false;
    }
    in_.remove_prefix(sizeof(kMagic));
    return true;
  }
  bool empty() const { return in_.empty(); }

 private:
  std::string_view in_;
};

absl::Status Malformed(Type type, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("handoff: malformed ", TypeName(type), " message: ", what));
}

}  // namespace

const char* TypeName(Type type) {
  switch (type) {
    case Type::kHello:
      return "hello";
    case Type::kRefuse:
      return "refuse";
    case Type::kListeners:
      return "listeners";
    case Type::kSlots:
      return "slots";
    case Type::kAck:
      return "ack";
    case Type::kServing:
      return "serving";
    case Type::kDone:
      return "done";
    case Type::kAbort:
      return "abort";
    case Type::kTicketKeys:
      return "ticket keys";
  }
  return "unknown";
}

absl::StatusOr<std::string> Encode(const Message& m) {
  Writer w;
  w.U32(0);  // length, patched below
  w.U8(static_cast<uint8_t>(m.type));
  bool ok = true;
  switch (m.type) {
    case Type::kHello:
      w.Bytes(kMagic, sizeof(kMagic));
      w.U16(m.hello.version);
      w.U32(m.hello.pid);
      w.U64(m.hello.upgrades);
      ok = w.Str(m.hello.build);
      break;
    case Type::kRefuse:
    case Type::kAbort:
      ok = w.Str(m.reason);
      break;
    case Type::kTicketKeys:
      ok = w.Str(m.ticket_keys);
      break;
    case Type::kListeners:
      if (m.listeners.size() > kMaxFdsPerMessage) return Malformed(m.type, "too many entries");
      w.U32(m.batch);
      w.U8(m.last ? 1 : 0);
      w.U16(static_cast<uint16_t>(m.listeners.size()));
      for (const ListenerEntry& e : m.listeners) {
        w.U8(static_cast<uint8_t>(e.kind));
        ok = ok && w.Str(e.address);
      }
      break;
    case Type::kSlots:
      if (m.slots.size() > kMaxFdsPerMessage) return Malformed(m.type, "too many entries");
      w.U32(m.batch);
      w.U16(static_cast<uint16_t>(m.slots.size()));
      for (const SlotEntry& e : m.slots) ok = ok && w.Str(e.pool) && w.Str(e.service);
      break;
    case Type::kAck:
    case Type::kDone:
      w.U32(m.batch);
      break;
    case Type::kServing:
      break;
    default:
      return absl::InvalidArgumentError("handoff: unknown message type");
  }
  if (!ok) return Malformed(m.type, "string longer than 65535 bytes");
  std::string& out = w.out();
  if (out.size() > kMaxMessageBytes) return Malformed(m.type, "message too large");
  const uint32_t len = static_cast<uint32_t>(out.size() - 4);
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(len >> (24 - 8 * i));
  return std::move(out);
}

absl::StatusOr<Message> Decode(std::string_view packet) {
  if (packet.size() < 5) return absl::InvalidArgumentError("handoff: packet too short");
  if (packet.size() > kMaxMessageBytes)
    return absl::InvalidArgumentError("handoff: packet too large");
  Reader r(packet);
  uint32_t len = 0;
  uint8_t type = 0;
  r.U32(&len);
  if (len != packet.size() - 4) {
    return absl::InvalidArgumentError(
        absl::StrCat("handoff: length prefix ", len, " but ", packet.size() - 4, " bytes follow"));
  }
  r.U8(&type);
  Message m;
  m.type = static_cast<Type>(type);
  switch (m.type) {
    case Type::kHello:
      if (!r.Magic()) return Malformed(m.type, "not an l7px peer (bad magic)");
      if (!r.U16(&m.hello.version) || !r.U32(&m.hello.pid) || !r.U64(&m.hello.upgrades) ||
          !r.Str(&m.hello.build)) {
        return Malformed(m.type, "truncated");
      }
      break;
    case Type::kRefuse:
    case Type::kAbort:
      if (!r.Str(&m.reason)) return Malformed(m.type, "truncated");
      break;
    case Type::kTicketKeys:
      if (!r.Str(&m.ticket_keys)) return Malformed(m.type, "truncated");
      break;
    case Type::kListeners: {
      uint16_t n = 0;
      uint8_t last = 0;
      if (!r.U32(&m.batch) || !r.U8(&last) || !r.U16(&n)) return Malformed(m.type, "truncated");
      if (last > 1) return Malformed(m.type, "bad last flag");
      m.last = last == 1;
      if (n > kMaxFdsPerMessage) return Malformed(m.type, "too many entries");
      m.listeners.resize(n);
      for (ListenerEntry& e : m.listeners) {
        uint8_t kind = 0;
        if (!r.U8(&kind) || !r.Str(&e.address)) return Malformed(m.type, "truncated");
        if (kind < 1 || kind > 4) return Malformed(m.type, "unknown listener kind");
        e.kind = static_cast<ListenerKind>(kind);
      }
      break;
    }
    case Type::kSlots: {
      uint16_t n = 0;
      if (!r.U32(&m.batch) || !r.U16(&n)) return Malformed(m.type, "truncated");
      if (n > kMaxFdsPerMessage) return Malformed(m.type, "too many entries");
      m.slots.resize(n);
      for (SlotEntry& e : m.slots) {
        if (!r.Str(&e.pool) || !r.Str(&e.service)) return Malformed(m.type, "truncated");
      }
      break;
    }
    case Type::kAck:
    case Type::kDone:
      if (!r.U32(&m.batch)) return Malformed(m.type, "truncated");
      break;
    case Type::kServing:
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat("handoff: unknown message type ", type));
  }
  if (!r.empty()) return Malformed(m.type, "trailing bytes");
  return m;
}

}  // namespace l7px::handoff
