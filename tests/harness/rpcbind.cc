#include "tests/harness/rpcbind.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "tests/harness/child_process.h"
#include "tests/harness/rpc_ping.h"

namespace floatmount::testing {
namespace {

constexpr uint32_t kPortmapProgram = 100000;
constexpr auto kPingTimeout = std::chrono::milliseconds(500);
constexpr auto kStartTimeout = std::chrono::seconds(10);

bool Answers() { return RpcNullPing("127.0.0.1", 111, kPortmapProgram, 2, kPingTimeout); }

// The rpcbind this process started; stopped at exit.
struct Rpcbind {
  ChildProcess child;
  ~Rpcbind() { child.Stop(std::chrono::seconds(2)); }
};

}  // namespace

std::string FindRpcbind() {
  for (const char* path : {"/usr/sbin/rpcbind", "/sbin/rpcbind", "/usr/bin/rpcbind"}) {
    if (access(path, X_OK) == 0) return path;
  }
  return "";
}

std::string EnsureRpcbind() {
  static Rpcbind ours;
  if (Answers()) return "";
  const std::string binary = FindRpcbind();
  if (binary.empty()) return "NFSv3 needs rpcbind (apt-get install rpcbind)";
  if (ours.child.running()) ours.child.Stop(std::chrono::seconds(2));
  const char* argv[] = {binary.c_str(), "-f", "-w", nullptr};
  const int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    dup2(null_fd, STDIN_FILENO);
    dup2(null_fd, STDOUT_FILENO);
    dup2(null_fd, STDERR_FILENO);
    close_range(3, ~0u, 0);
    execv(argv[0], const_cast<char* const*>(argv));
    _exit(127);
  }
  if (null_fd >= 0) close(null_fd);
  if (child < 0) return std::string("fork: ") + std::strerror(errno);
  ours.child.Adopt(child);
  const auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (Answers()) return "";
    if (ours.child.ReapIfExited()) {
      return "rpcbind exited at start (" + DescribeExit(ours.child.last_status()) + ")";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return "rpcbind did not answer on 127.0.0.1:111 within 10 s";
}

}  // namespace floatmount::testing
