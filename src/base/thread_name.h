#pragma once

#include <pthread.h>

#include <string>

namespace l7px {

// Names the calling thread as `top -H`, perf and /proc/PID/task/*/comm show it (the kernel
// keeps 15 bytes; longer names are cut).
inline void NameThisThread(std::string name) {
  if (name.size() > 15) name.resize(15);
  pthread_setname_np(pthread_self(), name.c_str());
}

}  // namespace l7px
