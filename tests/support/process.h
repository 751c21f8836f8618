#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

namespace l7px::testing {

// A child process started by a test. The destructor kills it (SIGKILL) and reaps it, so a failing
// test never leaves children behind. Output goes to a log file that tests can read.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Starts argv[0] with the arguments; stdout and stderr are appended to `log_path`.
  static ChildProcess Start(const std::vector<std::string>& argv, const std::string& log_path);

  pid_t pid() const { return pid_; }
  bool running();
  // Sends a signal (only to the process this object started).
  void Signal(int sig);
  // Waits up to `timeout` for exit; returns the wait status or -1 on timeout.
  int WaitExit(std::chrono::milliseconds timeout);
  void Kill();
  const std::string& log_path() const { return log_path_; }
  std::string ReadLog() const;

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
  std::string log_path_;
};

// Runs argv (PATH lookup) to completion, killed past `timeout`; collects stdout and stderr.
struct CommandResult {
  int exit_code = -1;  // -1 when it did not exit within its bound (it is then killed)
  std::string out;     // stdout
  std::string err;     // stderr
};
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Descriptors open in process `pid` (/proc/PID/fd), or -1 when it cannot be read.
int OpenFds(pid_t pid);

// The number after "key:" in a /proc status file (e.g. /proc/PID/status, VmRSS in KiB); -1 when
// the file or the key is missing.
long ProcStatusValue(const std::string& status_path, const std::string& key);

// Voluntary context switches (a thread blocked) summed over the threads of `pid` whose name
// starts with `thread_prefix` (every thread when empty); -1 if unknown.
long VoluntarySwitches(pid_t pid, const std::string& thread_prefix = "");

// A file's whole contents; empty when it cannot be read.
std::string ReadFile(const std::string& path);

// A fresh empty directory under the build tree for one test's files.
std::string MakeTempDir(const std::string& name);

// Polls `pred` every few milliseconds until it is true or `timeout` passes.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    struct timespec ts = {0, 5'000'000};
    nanosleep(&ts, nullptr);
  }
  return pred();
}

}  // namespace l7px::testing
