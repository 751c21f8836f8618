#include "http/status_text.h"

#include <gtest/gtest.h>

namespace l7px::http {
namespace {

// The one table of reason phrases; every caller names its own word for a code without one.
TEST(ReasonPhraseTest, UnknownCodesGetTheCallersWord) {
  static_assert(ReasonPhrase(404) == "Not Found");
  EXPECT_EQ(ReasonPhrase(503, "Error"), "Service Unavailable");
  EXPECT_EQ(ReasonPhrase(299), "");
  EXPECT_EQ(ReasonPhrase(299, "Unknown"), "Unknown");
  EXPECT_EQ(ReasonPhrase(-1, "Error"), "Error");
}

}  // namespace
}  // namespace l7px::http
