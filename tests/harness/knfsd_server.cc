#include "tests/harness/knfsd_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/harness/integration_env.h"
#include "tests/harness/net_util.h"
#include "tests/harness/rpc_ping.h"

#ifndef FLOATMOUNT_KNFSD_BUILD_SCRIPT
#define FLOATMOUNT_KNFSD_BUILD_SCRIPT "tests/harness/knfsd/build_guest.sh"
#endif

namespace floatmount::testing {
namespace {

constexpr int kStartAttempts = 3;
constexpr auto kPollInterval = std::chrono::milliseconds(100);
constexpr auto kPingTimeout = std::chrono::milliseconds(2000);
// What init.sh prints on the console.
constexpr const char* kReadyLine = "KNFSD-READY";
constexpr const char* kFailedLine = "KNFSD-FAILED";
// What QEMU says when hostfwd cannot bind its port.
constexpr const char* kForwardFailed = "Could not set up host forwarding rule";

std::string LastLines(const std::string& text, int count) {
  std::deque<std::string> kept;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    kept.push_back(line);
    if (static_cast<int>(kept.size()) > count) kept.pop_front();
  }
  std::string out;
  for (const std::string& line : kept) out += line + "\n";
  return out;
}

// Runs `command` with sh, returns its exit status and all its output.
int RunShell(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) {
    *output = std::string("popen: ") + std::strerror(errno);
    return -1;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) output->append(buf, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

KnfsdServer::KnfsdServer(KnfsdOptions options) : options_(std::move(options)) {}

KnfsdServer::~KnfsdServer() {
  Stop();
  if (dir_.empty()) return;
  if (KeepTestDirs()) {
    std::fprintf(stderr, "FLOATMOUNT_KEEP_TEST_DIRS: kept %s\n", dir_.c_str());
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string KnfsdServer::FindQemu() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/qemu-system-x86_64";
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return access("/usr/bin/qemu-system-x86_64", X_OK) == 0 ? "/usr/bin/qemu-system-x86_64" : "";
}

std::string KnfsdServer::ImageDir(std::string* error) {
  // The build (or the cache lookup, which asks apt for versions) runs once.
  static std::once_flag once;
  static std::string dir;
  static std::string why;
  std::call_once(once, [] {
    if (const char* env = std::getenv("FLOATMOUNT_KNFSD_IMAGE"); env != nullptr && *env != '\0') {
      dir = env;
    } else {
      std::string output;
      const int rc = RunShell(std::string("bash '") + FLOATMOUNT_KNFSD_BUILD_SCRIPT + "'", &output);
      std::string last = LastLines(output, 1);
      while (!last.empty() && last.back() == '\n') last.pop_back();
      if (rc == 0) {
        dir = last;
      } else {
        why = "tests/harness/knfsd/build_guest.sh failed (exit " + std::to_string(rc) + "):\n" +
              LastLines(output, 15);
      }
    }
    if (!dir.empty() && (access((dir + "/vmlinuz").c_str(), R_OK) != 0 ||
                         access((dir + "/initrd.gz").c_str(), R_OK) != 0)) {
      why = "no vmlinuz and initrd.gz in " + dir;
      dir.clear();
    }
  });
  if (error != nullptr) *error = why;
  return dir;
}

std::string KnfsdServer::MissingPrerequisite() {
  if (FindQemu().empty()) {
    return "qemu-system-x86_64 not found (apt-get install qemu-system-x86)";
  }
  std::string why;
  if (ImageDir(&why).empty()) return "no knfsd guest image: " + why;
  return "";
}

bool KnfsdServer::Fail(const std::string& what) {
  error_ = what;
  if (!dir_.empty()) error_ += "\n--- knfsd guest log tail (" + dir_ + ") ---\n" + LogTail();
  return false;
}

bool KnfsdServer::MakeDirectory() {
  if (!dir_.empty()) return true;
  char tmpl[] = "/tmp/floatmount-knfsd-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Fail(std::string("mkdtemp: ") + std::strerror(errno));
  dir_ = tmpl;
  return true;
}

bool KnfsdServer::Start() {
  error_.clear();
  if (running()) return Fail("Start(): guest already running (pid " + std::to_string(pid()) + ")");
  std::string why;
  const std::string image = ImageDir(&why);
  if (image.empty()) return Fail("no knfsd guest image: " + why);
  if (FindQemu().empty()) return Fail(MissingPrerequisite());
  if (!MakeDirectory()) return false;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    std::string pick_error;
    port_ = PickFreePort(address_, &pick_error);
    if (port_ == 0) return Fail(pick_error);
    bool port_in_use = false;
    if (LaunchAndWait(image, &port_in_use)) return true;
    if (!port_in_use) return false;
  }
  return false;
}

bool KnfsdServer::LaunchAndWait(const std::string& image, bool* port_in_use) {
  *port_in_use = false;
  const std::string qemu = FindQemu();
  const std::string console = console_path(), socket_path = dir_ + "/control.sock";
  unlink(console.c_str());
  unlink(socket_path.c_str());
  // Everything the child needs is built before fork(): between fork and
  // exec only async-signal-safe calls (the test may run threads).
  const std::vector<std::string> args = {
      qemu, "-M", "q35", "-m", std::to_string(options_.memory_mb), "-smp",
      std::to_string(options_.cpus), "-nodefaults", "-display", "none", "-no-reboot",
      "-kernel", image + "/vmlinuz", "-initrd", image + "/initrd.gz", "-append",
      "console=ttyS0 panic=-1 quiet knfsd.lease=" + std::to_string(options_.lease_s) +
          " knfsd.grace=" + std::to_string(options_.grace_s) +
          " knfsd.threads=" + std::to_string(options_.nfsd_threads),
      "-chardev", "file,id=con,path=" + console, "-serial", "chardev:con",
      "-chardev", "socket,id=ctl,path=" + socket_path + ",server=on,wait=off",
      "-serial", "chardev:ctl",
      // Only on loopback: the guest's 10.0.2.x network never leaves QEMU.
      "-netdev", "user,id=n0,hostfwd=tcp:" + address_ + ":" + std::to_string(port_) + "-:2049",
      "-device", "virtio-net-pci,netdev=n0"};
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  argv.push_back(nullptr);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out_fd = open((dir_ + "/qemu.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (null_fd < 0 || out_fd < 0) {
    if (null_fd >= 0) close(null_fd);
    if (out_fd >= 0) close(out_fd);
    return Fail(std::string("open: ") + std::strerror(errno));
  }
  const pid_t parent = getpid();
  const pid_t child = fork();
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD}) signal(sig, SIG_DFL);
    dup2(null_fd, STDIN_FILENO);
    dup2(out_fd, STDOUT_FILENO);
    dup2(out_fd, STDERR_FILENO);
    close_range(3, ~0u, 0);
    execv(argv[0], const_cast<char* const*>(argv.data()));
    _exit(127);
  }
  const int fork_errno = errno;
  close(null_fd);
  close(out_fd);
  if (child < 0) return Fail(std::string("fork: ") + std::strerror(fork_errno));
  child_.Adopt(child);

  const auto bound = Scaled(options_.start_timeout);
  const auto deadline = std::chrono::steady_clock::now() + bound;
  std::string ping_error = "no ready line on the console yet";
  while (std::chrono::steady_clock::now() < deadline) {
    if (child_.ReapIfExited()) {
      *port_in_use = FileText(dir_ + "/qemu.out").find(kForwardFailed) != std::string::npos;
      return Fail("qemu exited during the guest's boot (" + DescribeExit(child_.last_status()) +
                  ") with port " + std::to_string(port_));
    }
    const std::string text = FileText(console);
    if (text.find(kFailedLine) != std::string::npos) {
      Stop();
      return Fail("the guest's init failed");
    }
    // The ready line alone could be followed by nfsd dying; the NULL call
    // alone could be answered by another server's stale forward. Both.
    if (text.find(kReadyLine) != std::string::npos &&
        RpcNullPing(address_, port_, kNfsProgram, 4, kPingTimeout, &ping_error)) {
      if (!ConnectControl()) {
        const std::string control_error = error_;
        Stop();
        return Fail(control_error);
      }
      return true;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  Stop();
  return Fail("knfsd did not answer an NFSv4 NULL call on " + address_ + ":" +
              std::to_string(port_) + " within " + std::to_string(bound.count()) +
              " ms (last: " + ping_error + ")");
}

bool KnfsdServer::ConnectControl() {
  CloseControl();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string path = dir_ + "/control.sock";
  if (path.size() >= sizeof addr.sun_path) return Fail("control socket path too long: " + path);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  control_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (control_fd_ < 0 || connect(control_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const int err = errno;
    CloseControl();
    return Fail("cannot connect to the guest's control port " + path + ": " + std::strerror(err));
  }
  // The shell on ttyS1 may still be starting when the guest is ready, and
  // what it is sent meanwhile can lose its first bytes (seen in CI: "echo"
  // arrived as "o", the command's begin marker never came, and the test
  // waited out its bound). Wait until it runs a line whole.
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::string out;
    if (RunInGuest("true", &out, std::chrono::milliseconds(1000)) == 0) return true;
  }
  CloseControl();
  return Fail("the guest's control shell on " + path + " does not run commands");
}

void KnfsdServer::CloseControl() {
  if (control_fd_ >= 0) close(control_fd_);
  control_fd_ = -1;
}

int KnfsdServer::RunInGuest(const std::string& command, std::string* output,
                            std::chrono::milliseconds timeout) {
  if (output != nullptr) output->clear();
  if (!running() || control_fd_ < 0) return -1;
  // The markers are computed by the guest's shell, so an echo of the input
  // (the tty echoes until init turns echo off) never matches them.
  const uint64_t n = ++commands_run_;
  const std::string begin = "KNFSD-BEGIN-" + std::to_string(n) + "\n";
  const std::string end = "KNFSD-END-" + std::to_string(n) + "-";
  // Leading blanks: if the shell drops the first bytes it is sent, it drops
  // those.
  const std::string line = std::string(32, ' ') + "echo KNFSD-BEGIN-$((" + std::to_string(n) +
                           ")); { " + command + "\n} </dev/null 2>&1; echo KNFSD-END-$((" +
                           std::to_string(n) + "))-$?\n";
  for (size_t sent = 0; sent < line.size();) {
    const ssize_t w = send(control_fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    sent += static_cast<size_t>(w);
  }
  const auto deadline = std::chrono::steady_clock::now() + Scaled(timeout);
  std::string got;
  for (;;) {
    const size_t b = got.find(begin);
    if (b != std::string::npos) {
      const size_t e = got.find(end, b + begin.size());
      const size_t eol = e == std::string::npos ? e : got.find('\n', e);
      if (eol != std::string::npos) {
        if (output != nullptr) *output = got.substr(b + begin.size(), e - b - begin.size());
        return std::atoi(got.c_str() + e + end.size());
      }
    } else if (const size_t e = got.find(end);
               e != std::string::npos && got.find('\n', e) != std::string::npos) {
      // It ended but never began: the line reached the shell damaged.
      // Whatever ran, its output cannot be told apart: fail now rather
      // than wait out the bound.
      break;
    }
    const int wait_ms = MillisUntil(deadline);
    if (wait_ms <= 0) break;
    pollfd p{control_fd_, POLLIN, 0};
    const int r = poll(&p, 1, wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    char buf[4096];
    const ssize_t rd = read(control_fd_, buf, sizeof buf);
    if (rd <= 0) break;
    got.append(buf, static_cast<size_t>(rd));
  }
  if (output != nullptr) *output = got;
  return -1;
}

bool KnfsdServer::RestartNfsd() {
  error_.clear();
  std::string output;
  const int rc = RunInGuest("rpc.nfsd 0 && nfsd-start", &output);
  if (rc != 0) return Fail("restarting nfsd in the guest failed (" + std::to_string(rc) + "): " + output);
  const auto deadline = std::chrono::steady_clock::now() + Scaled(std::chrono::seconds(20));
  std::string ping_error;
  while (!RpcNullPing(address_, port_, kNfsProgram, 4, kPingTimeout, &ping_error)) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return Fail("nfsd did not answer after its restart: " + ping_error);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  return true;
}

bool KnfsdServer::Stop() {
  CloseControl();
  return child_.Stop(options_.stop_timeout);
}

std::string KnfsdServer::LogTail(int lines) const {
  if (dir_.empty()) return "";
  std::string tail = LastLines(FileText(console_path()), lines);
  const std::string out = LastLines(FileText(dir_ + "/qemu.out"), lines);
  if (!out.empty()) tail += "--- qemu stdout/stderr ---\n" + out;
  return tail;
}

}  // namespace floatmount::testing
