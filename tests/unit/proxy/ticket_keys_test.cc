// TLS session ticket keys (proxy/transport/ticket_keys.h): rotation, the handoff wire form.
#include "proxy/transport/ticket_keys.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace l7px::proxy::transport {
namespace {

constexpr int64_t kNow = 1'800'000'000;

TEST(TicketKeysTest, RotationPutsANewSealingKeyFirstAndKeepsTheLastFew) {
  auto ring = TicketKeys::Fresh(kNow);
  ASSERT_TRUE(ring.ok()) << ring.status();
  std::shared_ptr<const TicketKeys> keys = *ring;
  EXPECT_EQ(keys->size(), 1u);
  EXPECT_FALSE(keys->RotationDue(kNow + TicketKeys::kRotateSeconds - 1));
  EXPECT_TRUE(keys->RotationDue(kNow + TicketKeys::kRotateSeconds));
  EXPECT_TRUE(keys->RotationDue(kNow - 3600));  // the clock went back: rotate too
  const TicketKey first = keys->sealing();
  for (int i = 1; i <= 5; ++i) {
    auto next = keys->Rotated(kNow + i * TicketKeys::kRotateSeconds);
    ASSERT_TRUE(next.ok());
    keys = *next;
    EXPECT_EQ(keys->size(), std::min<size_t>(i + 1, TicketKeys::kKept));
    EXPECT_NE(std::memcmp(keys->sealing().name, first.name, 16), 0);
  }
  // The first key is gone after kKept rotations; the sealing one is found by its name.
  EXPECT_EQ(keys->Find(first.name), nullptr);
  EXPECT_EQ(keys->Find(keys->sealing().name), &keys->sealing());
}

TEST(TicketKeysTest, TheWireFormRoundTripsAndDropsExpiredKeys) {
  std::shared_ptr<const TicketKeys> keys = *TicketKeys::Fresh(kNow);
  keys = *keys->Rotated(kNow + 3600);
  keys = *keys->Rotated(kNow + 7200);
  const std::string wire = keys->Serialize();
  EXPECT_EQ(wire.size(), 1 + 3 * 88u);
  auto back = TicketKeys::Parse(wire, kNow + 7300);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ((*back)->size(), 3u);
  EXPECT_EQ(std::memcmp((*back)->sealing().aes, keys->sealing().aes, 32), 0);
  EXPECT_EQ(std::memcmp((*back)->sealing().hmac, keys->sealing().hmac, 32), 0);
  EXPECT_EQ((*back)->sealing().created_unix, kNow + 7200);
  // Much later, the oldest key opens nothing any more and is dropped; all expired is an error.
  auto later = TicketKeys::Parse(wire, kNow + 3 * TicketKeys::kRotateSeconds + 1);
  ASSERT_TRUE(later.ok());
  EXPECT_EQ((*later)->size(), 2u);
  EXPECT_FALSE(TicketKeys::Parse(wire, kNow + 100 * TicketKeys::kRotateSeconds).ok());
}

// A ring comes from another process: its times may be anything, and are compared without
// overflowing (the fuzzer found a subtraction with INT64_MIN).
TEST(TicketKeysTest, ExtremeTimesAreHandledWithoutOverflow) {
  std::string wire = (*TicketKeys::Fresh(kNow))->Serialize();
  for (const uint64_t t : {uint64_t{1} << 63, ~(uint64_t{1} << 63)}) {
    for (int j = 0; j < 8; ++j) wire[1 + 80 + j] = static_cast<char>(t >> (56 - 8 * j));
    auto keys = TicketKeys::Parse(wire, kNow);
    if (t == (uint64_t{1} << 63)) {
      EXPECT_FALSE(keys.ok());  // created at INT64_MIN: long expired
    } else {
      ASSERT_TRUE(keys.ok());  // from the far future: kept, and due for rotation at once
      EXPECT_TRUE((*keys)->RotationDue(kNow));
    }
  }
}

TEST(TicketKeysTest, MalformedWireFormsAreRejected) {
  const std::string wire = (*TicketKeys::Fresh(kNow))->Serialize();
  EXPECT_FALSE(TicketKeys::Parse("", kNow).ok());
  EXPECT_FALSE(TicketKeys::Parse(std::string(1, '\0'), kNow).ok());
  EXPECT_FALSE(TicketKeys::Parse(wire.substr(0, wire.size() - 1), kNow).ok());
  EXPECT_FALSE(TicketKeys::Parse(wire + "x", kNow).ok());
  std::string too_many = wire;
  too_many[0] = static_cast<char>(TicketKeys::kKept + 1);
  EXPECT_FALSE(TicketKeys::Parse(too_many, kNow).ok());
  EXPECT_TRUE(TicketKeys::Parse(wire, kNow).ok());
}

}  // namespace
}  // namespace l7px::proxy::transport
