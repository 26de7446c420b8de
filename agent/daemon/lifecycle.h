// The serving agent's life under a service manager and under signals.
//
// Notifier speaks the sd_notify(3) protocol to systemd (libsystemd):
//   - STATUS= lines while mounting, READY=1 once the mount answers (the
//     caller calls Ready() after a stat through the mount succeeded), then
//     a STATUS= line every kStatusInterval, WATCHDOG=1 pings, and STOPPING=1.
//   - Without NOTIFY_SOCKET in the environment every call is a no-op.
//   - The unit should run `floatmount -f ...` with Type=notify: the agent is
//     then the process systemd started, and everything goes out as its own.
//   - Without -f, the process systemd started (the launcher) forks the
//     serving child, waits on a pipe until the child reports the mount, and
//     exits. systemd (NotifyAccess=main, the default) only takes messages
//     from its main PID, the launcher. So the child sends everything up to
//     and including READY=1 on the launcher's behalf (sd_pid_notify with the
//     launcher's pid: the launcher is alive then, as it waits on the pipe),
//     and READY=1 carries MAINPID=<child>: from then on systemd supervises
//     the child, and the child's own STATUS/WATCHDOG/STOPPING come from the
//     main PID. Sending with another pid needs CAP_SYS_ADMIN (the kernel
//     checks SCM_CREDENTIALS); without it libsystemd falls back to the
//     child's own pid, and then the unit needs NotifyAccess=all. We do not
//     ask for NotifyAccess=all always: it lets any process in the unit
//     (fusermount3, a mount helper) speak for the service.
//   - Watchdog: with WatchdogSec= systemd sets WATCHDOG_USEC and
//     WATCHDOG_PID. sd_watchdog_enabled() compares WATCHDOG_PID with
//     getpid(), which only holds in the launcher, so NotifySettings are read
//     there, before the fork, and handed to the child. The "fm-notify"
//     thread sends WATCHDOG=1 every half interval, each time only if the
//     caller's health() returns true: when it returns false, or blocks (a
//     deadlocked lock it takes), the pings stop and systemd kills and
//     restarts the agent (WatchdogSignal=, SIGABRT by default).
//   - Stopping(bound) sends STOPPING=1 with EXTEND_TIMEOUT_USEC=bound+10 s,
//     so that systemd's stop timeout (TimeoutStopSec=, 90 s by default) does
//     not SIGKILL the agent before its own bound (kStopBound) has passed.
//
// StopSignals turns SIGTERM, SIGINT and SIGHUP into a bounded stop on a
// thread "fm-signal" that reads them from a signalfd: the first calls
// stop(sig), and any later one — or `bound` passing after the first —
// calls force(sig, or 0 for the bound), which is meant to exit the process.
//
// Callbacks: status() and health() run on "fm-notify", stop() and force()
// on "fm-signal". None may touch the mount through the kernel (stat, open
// on the mount point): a request the FUSE loop never answers would block
// that thread for good, and a process with a thread stuck in its own FUSE
// mount cannot exit.
//
// Thread-safety: Notifier's methods may be called from any thread.
// StopSignals is made and destroyed by one thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace floatmount::agent {

// How long a stop (flush, commit, destroy the session) may take after the
// first signal before the agent gives up and exits non-zero, saying how much
// written data it could not commit. Long enough to commit a full default
// write-back cache (up to 1 GiB) at 10 MB/s; systemd learns it through
// EXTEND_TIMEOUT_USEC (see Notifier::Stopping).
inline constexpr std::chrono::seconds kStopBound{120};
inline constexpr std::chrono::seconds kStatusInterval{5};

// What the service manager asked for, read from the environment by the
// process it started.
struct NotifySettings {
  bool enabled = false;                   // NOTIFY_SOCKET is set
  std::chrono::microseconds watchdog{0};  // WATCHDOG_USEC for us; 0: no watchdog
  pid_t launcher = 0;                     // the process systemd started

  // Call in the launcher, before it forks.
  static NotifySettings FromEnvironment();
};

class Notifier {
 public:
  explicit Notifier(NotifySettings settings);
  ~Notifier();  // Finish()
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  bool enabled() const { return settings_.enabled; }

  void Status(const std::string& line);
  // READY=1 (with MAINPID=<us> if we are not the launcher) and STATUS=
  // status(); then starts "fm-notify" for the periodic STATUS= lines and
  // the watchdog. Once only.
  void Ready(std::function<std::string()> status, std::function<bool()> health);
  // STOPPING=1, EXTEND_TIMEOUT_USEC and a STATUS= line. Only the first call
  // sends; the periodic STATUS= lines stop, the watchdog pings go on.
  void Stopping(std::chrono::seconds bound);
  // Ends "fm-notify": call it before anything its callbacks use goes away.
  // Messages can still be sent. Idempotent.
  void Finish();

 private:
  // Sends one message; as the launcher while not yet ready.
  void Send(const std::string& message);
  void Loop();

  const NotifySettings settings_;
  std::function<std::string()> status_;  // constant once Ready() started the thread
  std::function<bool()> health_;         // likewise
  std::mutex mu_;
  std::condition_variable wake_;
  bool ready_ = false;     // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  bool quit_ = false;      // GUARDED_BY(mu_)
  std::thread thread_;
};

class StopSignals {
 public:
  // Blocks SIGTERM, SIGINT and SIGHUP in the calling thread. Call before
  // any thread exists, so that every thread inherits the mask and the
  // signals wait in the signalfd (an unblocked thread would take the
  // default action: die without flushing).
  static void Block();

  // Starts "fm-signal".
  StopSignals(std::function<void(int)> stop, std::function<void(int)> force,
              std::chrono::seconds bound);
  ~StopSignals();  // Finish()
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // The stop is done: no force() from now on; ends "fm-signal".
  void Finish();

 private:
  void Loop(std::function<void(int)> stop, std::function<void(int)> force,
            std::chrono::seconds bound);

  int signal_fd_ = -1;  // constant after construction
  int wake_fd_ = -1;    // an eventfd: Finish() wakes the loop
  std::thread thread_;
};

// Makes sure nothing is mounted at `mountpoint` any more (per
// /proc/self/mountinfo, only a fuse.floatmount mount): with `abort`, first
// aborts the FUSE connection (umount -f: every request waiting on it fails
// with ENOTCONN, and the FUSE loop ends), then detaches the mount (umount -l,
// or fusermount3 -u -z when not root). Never touches files in the mount.
void EnsureUnmounted(const std::string& mountpoint, bool abort);

// True if `path` is a mount point now (per /proc/self/mountinfo); sets
// *fstype (e.g. "fuse.floatmount") if not null.
bool IsMountPoint(const std::string& path, std::string* fstype);
// A mountinfo path field as the path it names: the kernel writes space,
// tab, newline and backslash as \040, \011, \012 and \134.
std::string UnescapeMountinfo(const std::string& field);

}  // namespace floatmount::agent
