#include "proxy/shared/metrics.h"

namespace l7px::proxy {

void Histogram::Observe(int64_t ns) {
  const double seconds = static_cast<double>(ns) / 1e9;
  int i = 0;
  while (i < kBuckets && seconds > kBounds[i]) ++i;
  Bump(buckets[i]);
  Bump(count);
  Bump(sum_ns, static_cast<uint64_t>(ns < 0 ? 0 : ns));
}

}  // namespace l7px::proxy
