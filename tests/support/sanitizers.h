#pragma once

// Which sanitizer this test binary, and so the l7px it starts (built with the same flags), runs
// under. Memory measured on a plain build means little there: the runtimes add redzones,
// quarantine and shadow memory, so bounds on l7px's memory are set per build. (gcc defines
// __SANITIZE_ADDRESS__ / __SANITIZE_THREAD__; clang 14 answers __has_feature only.)

#if defined(__SANITIZE_ADDRESS__)
#define L7PX_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define L7PX_TEST_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define L7PX_TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define L7PX_TEST_TSAN 1
#endif
#endif

namespace l7px::testing {

#if defined(L7PX_TEST_ASAN)
inline constexpr bool kAddressSanitizer = true;
#else
inline constexpr bool kAddressSanitizer = false;
#endif
#if defined(L7PX_TEST_TSAN)
inline constexpr bool kThreadSanitizer = true;
#else
inline constexpr bool kThreadSanitizer = false;
#endif

// Picks the bound for the build: plain, ASan (+UBSan), or TSan.
template <typename T>
constexpr T PerBuild(T plain, T asan, T tsan) {
  return kThreadSanitizer ? tsan : kAddressSanitizer ? asan : plain;
}

}  // namespace l7px::testing
