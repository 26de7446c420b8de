#include "agent/daemon/lifecycle.h"

#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

extern char** environ;

namespace floatmount::agent {
namespace {

using Clock = std::chrono::steady_clock;

// A STATUS= value is one line of the notify message.
std::string OneLine(std::string text) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  return text;
}

sigset_t StopSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  return set;
}

// Runs `argv` and waits for it; used only where nothing better is left.
void RunQuietly(std::vector<std::string> argv) {
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

// ---- Notifier ----------------------------------------------------------------

NotifySettings NotifySettings::FromEnvironment() {
  NotifySettings s;
  s.launcher = getpid();
  const char* socket = std::getenv("NOTIFY_SOCKET");
  s.enabled = socket != nullptr && *socket != '\0';
  uint64_t usec = 0;
  if (s.enabled && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
    s.watchdog = std::chrono::microseconds(usec);
  }
  return s;
}

Notifier::Notifier(NotifySettings settings) : settings_(settings) {}

Notifier::~Notifier() { Finish(); }

void Notifier::Finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    quit_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Notifier::Send(const std::string& message) {
  if (!settings_.enabled) return;
  bool ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready = ready_;
  }
  const int r = !ready && getpid() != settings_.launcher
                    ? sd_pid_notify(settings_.launcher, 0, message.c_str())
                    : sd_notify(0, message.c_str());
  static std::atomic<bool> warned{false};
  if (r < 0 && !warned.exchange(true)) {
    spdlog::warn("cannot notify the service manager (NOTIFY_SOCKET): {}", std::strerror(-r));
  }
}

void Notifier::Status(const std::string& line) { Send("STATUS=" + OneLine(line)); }

void Notifier::Ready(std::function<std::string()> status, std::function<bool()> health) {
  if (!settings_.enabled) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ready_) return;
  }
  // Still sent as the launcher (ready_ is false): systemd takes MAINPID from
  // its main PID only.
  if (getpid() != settings_.launcher) {
    Send("MAINPID=" + std::to_string(getpid()) + "\nREADY=1");
  } else {
    Send("READY=1");
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    ready_ = true;
    if (quit_) return;
    status_ = std::move(status);
    health_ = std::move(health);
  }
  thread_ = std::thread(&Notifier::Loop, this);
}

void Notifier::Stopping(std::chrono::seconds bound) {
  if (!settings_.enabled) return;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  const auto extend =
      std::chrono::duration_cast<std::chrono::microseconds>(bound + std::chrono::seconds(10));
  Send("STOPPING=1\nEXTEND_TIMEOUT_USEC=" + std::to_string(extend.count()) +
       "\nSTATUS=stopping: committing written data, then unmounting");
}

void Notifier::Loop() {
  pthread_setname_np(pthread_self(), "fm-notify");
  const bool watchdog = settings_.watchdog.count() > 0;
  const auto ping_every = settings_.watchdog / 2;
  auto next_status = Clock::now();
  auto next_ping = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  while (!quit_) {
    const auto now = Clock::now();
    if (!stopping_ && now >= next_status) {
      next_status = now + kStatusInterval;
      lock.unlock();
      Status(status_());
      lock.lock();
      continue;
    }
    if (watchdog && now >= next_ping) {
      next_ping = now + ping_every;
      lock.unlock();
      if (health_()) Send("WATCHDOG=1");
      lock.lock();
      continue;
    }
    auto until = Clock::time_point::max();
    if (!stopping_) until = next_status;
    if (watchdog) until = std::min(until, next_ping);
    if (until == Clock::time_point::max()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, until);
    }
  }
}

// ---- StopSignals -------------------------------------------------------------

void StopSignals::Block() {
  const sigset_t set = StopSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

StopSignals::StopSignals(std::function<void(int)> stop, std::function<void(int)> force,
                         std::chrono::seconds bound) {
  const sigset_t set = StopSet();
  signal_fd_ = signalfd(-1, &set, SFD_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC);
  if (signal_fd_ < 0 || wake_fd_ < 0) {
    // Without the watcher a blocked SIGTERM would be ignored; let it kill.
    spdlog::error("cannot watch for SIGTERM ({}); a signal now stops the agent without flushing",
                  std::strerror(errno));
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    return;
  }
  thread_ = std::thread(&StopSignals::Loop, this, std::move(stop), std::move(force), bound);
}

StopSignals::~StopSignals() {
  Finish();
  if (signal_fd_ >= 0) close(signal_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void StopSignals::Finish() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
  thread_.join();
}

void StopSignals::Loop(std::function<void(int)> stop, std::function<void(int)> force,
                       std::chrono::seconds bound) {
  pthread_setname_np(pthread_self(), "fm-signal");
  std::optional<Clock::time_point> deadline;  // set by the first signal
  for (;;) {
    int timeout_ms = -1;
    if (deadline) {
      const auto left =
          std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      timeout_ms = static_cast<int>(std::clamp<int64_t>(left, 0, INT32_MAX));
    }
    pollfd fds[2] = {{signal_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    const int n = poll(fds, 2, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      spdlog::error("waiting for signals: {}", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if (n == 0) {
      if (deadline && Clock::now() >= *deadline) {
        force(0);
        return;
      }
      continue;
    }
    signalfd_siginfo info{};
    if (read(signal_fd_, &info, sizeof(info)) != sizeof(info)) continue;
    const int sig = static_cast<int>(info.ssi_signo);
    if (!deadline) {
      deadline = Clock::now() + bound;
      stop(sig);
    } else {
      force(sig);
      return;
    }
  }
}

// ---- unmounting --------------------------------------------------------------

std::string UnescapeMountinfo(const std::string& field) {
  std::string out;
  for (size_t i = 0; i < field.size(); ++i) {
    const auto octal = [&](size_t j) { return field[j] >= '0' && field[j] <= '7'; };
    if (field[i] == '\\' && i + 3 < field.size() && octal(i + 1) && octal(i + 2) &&
        octal(i + 3)) {
      out += static_cast<char>((field[i + 1] - '0') * 64 + (field[i + 2] - '0') * 8 +
                               (field[i + 3] - '0'));
      i += 3;
    } else {
      out += field[i];
    }
  }
  return out;
}

bool IsMountPoint(const std::string& path, std::string* fstype) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mnt;
    fields >> id >> parent >> devno >> root >> mnt;
    if (UnescapeMountinfo(mnt) != path) continue;
    std::string f;
    while (fields >> f && f != "-") {
    }
    fields >> f;
    if (fstype) *fstype = f;  // the last (top) mount there wins
    found = true;
  }
  return found;
}

void EnsureUnmounted(const std::string& mountpoint, bool abort) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::string fstype;
    if (!IsMountPoint(mountpoint, &fstype) || fstype != "fuse.floatmount") return;
    // umount -f on FUSE aborts the connection (and then fails with EBUSY if
    // the mount is in use, which the detach below handles).
    if (abort) umount2(mountpoint.c_str(), MNT_FORCE);
    if (umount2(mountpoint.c_str(), MNT_DETACH) == 0) continue;
    if (errno == EPERM) RunQuietly({"fusermount3", "-u", "-z", mountpoint});
  }
  std::string fstype;
  if (IsMountPoint(mountpoint, &fstype) && fstype == "fuse.floatmount") {
    spdlog::error("{} is still mounted; unmount it with 'umount -l {}'", mountpoint, mountpoint);
  }
}

}  // namespace floatmount::agent
