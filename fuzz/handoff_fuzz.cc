// The upgrade handoff's messages (acceptor/handoff_message.h), as a successor or predecessor
// might send them: Decode must never crash, and whatever it accepts must re-encode to exactly
// the same bytes (the format has one encoding per message).

#include <cstdint>
#include <string>
#include <string_view>

#include "handoff/message.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view packet(reinterpret_cast<const char*>(data), size);
  auto message = l7px::handoff::Decode(packet);
  if (!message.ok()) return 0;
  L7PX_FUZZ_CHECK(message->fd_count() <= l7px::handoff::kMaxFdsPerMessage);
  auto again = l7px::handoff::Encode(*message);
  L7PX_FUZZ_CHECK(again.ok());
  L7PX_FUZZ_CHECK(*again == packet);
  return 0;
}
