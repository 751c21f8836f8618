#include "support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "base/unique_fd.h"

namespace l7px::testing {

ChildProcess::ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }

ChildProcess& ChildProcess::operator=(ChildProcess&& other) noexcept {
  if (this != &other) {
    Kill();
    pid_ = std::exchange(other.pid_, -1);
    status_ = other.status_;
    exited_ = other.exited_;
    log_path_ = std::move(other.log_path_);
  }
  return *this;
}

ChildProcess::~ChildProcess() { Kill(); }

ChildProcess ChildProcess::Start(const std::vector<std::string>& argv,
                                 const std::string& log_path) {
  ChildProcess child;
  child.log_path_ = log_path;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    // Die with the test runner even if it is killed before its destructors run.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
    }
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  child.pid_ = pid;
  return child;
}

bool ChildProcess::running() {
  if (pid_ < 0 || exited_) return false;
  const pid_t r = waitpid(pid_, &status_, WNOHANG);
  if (r == pid_) exited_ = true;
  return !exited_;
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0 && !exited_) ::kill(pid_, sig);
}

int ChildProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (pid_ < 0) return -1;
  if (WaitFor([&] { return !running(); }, timeout)) return status_;
  return -1;
}

void ChildProcess::Kill() {
  if (pid_ > 0 && !exited_) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
    exited_ = true;
  }
}

std::string ChildProcess::ReadLog() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

std::string ReadWholeFd(int fd) {
  std::string out;
  char buf[65536];
  lseek(fd, 0, SEEK_SET);
  while (true) {
    const ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

CommandResult RunCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  CommandResult result;
  UniqueFd out(memfd_create("cmd-out", MFD_CLOEXEC));
  UniqueFd err(memfd_create("cmd-err", MFD_CLOEXEC));
  if (!out || !err || argv.empty()) return result;
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(out.get(), STDOUT_FILENO);
    dup2(err.get(), STDERR_FILENO);
    std::vector<char*> cargv;
    for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
    cargv.push_back(nullptr);
    execvp(cargv[0], cargv.data());
    _exit(127);
  }
  if (pid < 0) return result;
  int status = 0;
  const bool exited = WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }, timeout);
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  if (exited && WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  result.out = ReadWholeFd(out.get());
  result.err = ReadWholeFd(err.get());
  return result;
}

int OpenFds(pid_t pid) {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

long ProcStatusValue(const std::string& status_path, const std::string& key) {
  std::ifstream in(status_path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stol(line.substr(key.size() + 1));
  }
  return -1;
}

long VoluntarySwitches(pid_t pid, const std::string& thread_prefix) {
  std::error_code ec;
  long total = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::string name;
    std::getline(std::ifstream(it->path() / "comm"), name);
    if (name.rfind(thread_prefix, 0) != 0) continue;
    const long n = ProcStatusValue(it->path() / "status", "voluntary_ctxt_switches");
    if (n > 0) total += n;
  }
  return ec ? -1 : total;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string MakeTempDir(const std::string& name) {
  std::string dir =
      std::string(L7PX_BINARY_DIR) + "/test-tmp/" + name + "." + std::to_string(getpid());
  std::string cmd = "rm -rf '" + dir + "' && mkdir -p '" + dir + "'";
  if (std::system(cmd.c_str()) != 0) return "/tmp";
  return dir;
}

}  // namespace l7px::testing
