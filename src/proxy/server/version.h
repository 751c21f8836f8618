#pragma once

namespace l7px::proxy {

#ifndef L7PX_VERSION
#define L7PX_VERSION "dev"
#endif

// This build's version (CMake's project version).
inline constexpr const char kVersion[] = L7PX_VERSION;

}  // namespace l7px::proxy
