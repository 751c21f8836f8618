// The upgrade handoff's messages (acceptor/handoff_message.h), as a successor or predecessor
// might send them: Decode must never crash, and whatever it accepts must re-encode to exactly
// the same bytes (the format has one encoding per message). The TLS session ticket keys a
// predecessor hands over are parsed too (proxy/transport/ticket_keys.h).

#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "handoff/message.h"
#include "proxy/transport/ticket_keys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view packet(reinterpret_cast<const char*>(data), size);
  auto message = l7px::handoff::Decode(packet);
  if (!message.ok()) return 0;
  L7PX_FUZZ_CHECK(message->fd_count() <= l7px::handoff::kMaxFdsPerMessage);
  auto again = l7px::handoff::Encode(*message);
  L7PX_FUZZ_CHECK(again.ok());
  L7PX_FUZZ_CHECK(*again == packet);
  if (message->type == l7px::handoff::Type::kTicketKeys) {
    using l7px::proxy::transport::TicketKeys;
    const std::string& wire = message->ticket_keys;
    auto keys = TicketKeys::Parse(wire, /*now_unix=*/0);
    // Kept whole (nothing expired), a ring re-serializes to the bytes it came from.
    if (keys.ok() && (*keys)->size() == static_cast<unsigned char>(wire[0])) {
      L7PX_FUZZ_CHECK((*keys)->Serialize() == wire);
    }
  }
  return 0;
}
