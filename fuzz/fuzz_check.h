#pragma once

#include <cstdio>
#include <cstdlib>

// A broken invariant in a fuzz target: print it and abort, so libFuzzer saves the input.
#define L7PX_FUZZ_CHECK(cond)                                                           \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
