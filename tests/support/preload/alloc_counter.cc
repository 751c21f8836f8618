// Preloaded (LD_PRELOAD) into an l7px under test: counts every heap allocation the process
// makes (malloc, calloc, realloc, reallocarray and the aligned forms; operator new goes through
// malloc), so a test can check that requests in steady state allocate nothing. The count is a
// 64-bit word at the start of the file named by L7PX_ALLOC_COUNT_FILE, mapped shared, so the
// test reads it while the process runs. Without that variable the library only forwards to
// glibc.
//
// A second word after the count arms a trace: while it is non-zero, each allocation also writes
// its call stack to stderr (l7px's log), so a test that finds an allocation can say where.
//
// Built only without sanitizers: their runtimes interpose malloc themselves and must come first.

#include <execinfo.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" {
void* __libc_malloc(size_t size);
void* __libc_calloc(size_t count, size_t size);
void* __libc_realloc(void* ptr, size_t size);
void* __libc_memalign(size_t alignment, size_t size);
}

namespace {

std::atomic<uint64_t>* counter = nullptr;
std::atomic<uint64_t>* trace = nullptr;
thread_local bool tracing = false;  // backtrace() may allocate once: no recursion

// Runs before main(); open, mmap and getenv do not allocate.
[[gnu::constructor]] void MapCounter() {
  const char* path = std::getenv("L7PX_ALLOC_COUNT_FILE");
  if (path == nullptr) return;
  const int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  void* word = mmap(nullptr, 2 * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (word == MAP_FAILED) return;
  counter = static_cast<std::atomic<uint64_t>*>(word);
  trace = counter + 1;
  void* warm[2];
  backtrace(warm, 2);  // loads what backtrace needs now, not inside a traced allocation
}

void Count() {
  if (counter == nullptr) return;
  counter->fetch_add(1, std::memory_order_relaxed);
  if (trace->load(std::memory_order_relaxed) == 0 || tracing) return;
  tracing = true;
  void* frames[32];
  const int n = backtrace(frames, 32);
  static const char kHead[] = "alloc_counter: allocation while traced:\n";
  (void)!write(2, kHead, sizeof(kHead) - 1);
  backtrace_symbols_fd(frames, n, 2);
  tracing = false;
}

bool ValidAlignment(size_t alignment) {
  return alignment != 0 && (alignment & (alignment - 1)) == 0 && alignment % sizeof(void*) == 0;
}

}  // namespace

extern "C" {

void* malloc(size_t size) {
  Count();
  return __libc_malloc(size);
}

void* calloc(size_t count, size_t size) {
  Count();
  return __libc_calloc(count, size);
}

void* realloc(void* ptr, size_t size) {
  Count();
  return __libc_realloc(ptr, size);
}

void* reallocarray(void* ptr, size_t count, size_t size) {
  size_t bytes;
  if (__builtin_mul_overflow(count, size, &bytes)) {
    errno = ENOMEM;
    return nullptr;
  }
  Count();
  return __libc_realloc(ptr, bytes);
}

void* memalign(size_t alignment, size_t size) {
  Count();
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) {
  Count();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  if (!ValidAlignment(alignment)) return EINVAL;
  Count();
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

}  // extern "C"
