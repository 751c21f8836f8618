#pragma once

namespace l7px::proxy {

// This build's version: the project version, plus "+g<commit>" (and ".dirty") when built from a
// git checkout, e.g. "0.1.0+g061769b2f3a1". Defined in a file generated at every build
// (cmake/version_stamp.cmake), so a new commit changes it without recompiling anything else.
extern const char kVersion[];

}  // namespace l7px::proxy
