#pragma once

#include <algorithm>
#include <cstddef>

namespace l7px {

// Makes room in `v` for at least `n` elements, growing geometrically (at least doubling) like
// push_back does. For free lists that reserve room whenever a new object is made, so that
// returning an object never allocates: reserving exactly `n` each time would reallocate and
// copy the whole list per new object.
template <typename Vector>
void ReserveAtLeast(Vector& v, size_t n) {
  if (v.capacity() < n) v.reserve(std::max(n, 2 * v.capacity()));
}

}  // namespace l7px
