// The TOML config loader (config::Parse): arbitrary documents must yield a Config or an error,
// and an accepted Config must hold the invariants its consumers rely on.

#include <cstdint>
#include <string_view>

#include "config/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const absl::StatusOr<l7px::config::Config> config = l7px::config::Parse(text, "<fuzz>");
  if (!config.ok()) {
    L7PX_FUZZ_CHECK(!config.status().message().empty());
    return 0;
  }
  L7PX_FUZZ_CHECK(!config->pools.empty());
  L7PX_FUZZ_CHECK(!config->routes.empty());
  for (const l7px::config::Route& route : config->routes) {
    L7PX_FUZZ_CHECK(!route.path.empty() && route.path[0] == '/');
    L7PX_FUZZ_CHECK(config->FindPool(route.pool) != nullptr);
  }
  for (const l7px::config::Pool& pool : config->pools) {
    L7PX_FUZZ_CHECK(config->FindPool(pool.name) == &pool);
  }
  return 0;
}
