// floatmount [-f] [--config NAME] [-o OPTIONS] SERVER:/EXPORT MOUNTPOINT
// (parsed by mount_args.h), and floatmount unmount MOUNTPOINT.
//
// Mount: checks the mount point, then (unless -f) forks before any thread
// exists; the child serves the mount (mount_serve.h): it connects to the
// server, mounts through FUSE, checks the mount answers, and tells the
// parent over a pipe, which exits 0 — or prints the child's one-line error
// and exits with its code. Nothing is left mounted on failure.
//
// Unmount: unmounts (the agent then commits and closes every open file and
// exits) and waits for the agent to exit.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include "agent/cli/cli.h"
#include "agent/exit_codes.h"
#include "agent/daemon/run_files.h"
#include "agent/daemon/lifecycle.h"
#include "agent/daemon/logging.h"
#include "agent/config/mount_args.h"
#include "agent/daemon/mount_serve.h"

namespace floatmount::agent {
namespace {

// Whether the agent that wrote `mountpoint`'s pid file still runs.
bool AgentAlive(const std::string& mountpoint) {
  pid_t pid = 0;
  std::ifstream(RunFileFor(mountpoint, ".pid")) >> pid;
  if (!ProcessRuns(pid)) return false;
  std::ifstream cmdline("/proc/" + std::to_string(pid) + "/cmdline");
  std::string argv0;
  std::getline(cmdline, argv0, '\0');
  return argv0.find("floatmount") != std::string::npos;  // not a reused pid
}

// A floatmount mount whose agent is gone (killed by systemd's watchdog,
// crashed, SIGKILLed) stays in the mount table and answers ENOTCONN (or,
// while the kernel's cached attributes last, looks alive), so the mount
// point could never be mounted again: a unit with Restart= would fail
// until its start limit. Such a mount is detached (lazily, as `fusermount3
// -uz` does) with one line saying so. Only a fuse.floatmount mount is
// touched, and only when no live agent serves it (its pid file names a
// process that is gone): nothing is asked of the mount itself, which a live
// agent with a server down would leave hanging.
void DetachStaleMount(const std::string& given) {
  std::string path = given;
  if (path.empty()) return;
  if (path[0] != '/') {
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == nullptr) return;
    path = std::string(cwd) + "/" + path;
  }
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  std::string fstype;
  if (!IsMountPoint(path, &fstype) || fstype != "fuse.floatmount" || AgentAlive(path)) return;
  if (umount2(path.c_str(), MNT_DETACH) != 0) {
    const std::string cmd = "fusermount3 -u -z '" + path + "' 2>/dev/null";
    if (std::system(cmd.c_str()) != 0) return;  // CheckMountPoint says what is wrong
  }
  std::cerr << "floatmount: " << path
            << ": detached the mount of a floatmount agent that is gone\n";
}

// Resolves and checks the mount point; returns its absolute path.
std::optional<std::string> CheckMountPoint(const std::string& given, std::string* error) {
  DetachStaleMount(given);
  char real[PATH_MAX];
  if (realpath(given.c_str(), real) == nullptr) {
    *error = "mount point " + given + ": " + std::strerror(errno) +
             (errno == ENOENT ? ". Create the directory first (mkdir -p " + given + ")." : ".");
    return std::nullopt;
  }
  struct stat st;
  if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    *error = "mount point " + given + " is not a directory.";
    return std::nullopt;
  }
  std::string fstype;
  if (IsMountPoint(real, &fstype)) {
    *error = "mount point " + std::string(real) + " is busy: a " + fstype +
             " file system is already mounted there. Unmount it first.";
    return std::nullopt;
  }
  return std::string(real);
}

}  // namespace

int RunMount(const std::vector<std::string>& args) {
  MountArgs parsed = ParseMountArgs(args);
  if (parsed.help) {
    std::cout << MountHelp();
    return kExitOk;
  }
  for (const auto& problem : parsed.problems) std::cerr << "floatmount: " << problem << "\n";
  if (parsed.exit_code != kExitOk) return parsed.exit_code;
  const MountConfig* config = &parsed.config;
  std::string error;
  auto mountpoint = CheckMountPoint(config->mountpoint, &error);
  if (!mountpoint) {
    std::cerr << "floatmount: " << error << "\n";
    return kExitMountPoint;
  }
  // Read by the process the service manager started, before the fork.
  const NotifySettings notify = NotifySettings::FromEnvironment();
  if (config->foreground) {
    ReadyPipe ready(-1);
    return Serve(*config, *mountpoint, notify, ready);
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    std::cerr << "floatmount: pipe: " << std::strerror(errno) << "\n";
    return kExitFailure;
  }
  const pid_t pid = fork();
  if (pid < 0) {
    std::cerr << "floatmount: fork: " << std::strerror(errno) << "\n";
    return kExitFailure;
  }
  if (pid == 0) {  // the serving child
    close(fds[0]);
    // A daemon keeps none of its caller's descriptors (daemon(7)): one open
    // on another mount would keep that mount busy for the agent's lifetime.
    if (fds[1] > STDERR_FILENO + 1) close_range(STDERR_FILENO + 1, fds[1] - 1, 0);
    close_range(fds[1] + 1, ~0U, 0);
    setsid();
    const int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    if (null > STDERR_FILENO) close(null);
    const char* log_file = std::getenv("FLOATMOUNT_LOG_FILE");
    SetUpLogging(LogTarget::kSyslog, log_file != nullptr ? log_file : "");
    ReadyPipe ready(fds[1]);
    _exit(Serve(*config, *mountpoint, notify, ready));
  }
  close(fds[1]);
  std::string reply;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) reply.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  if (reply.empty()) {
    std::cerr << "floatmount: the mount process died before the mount was ready; see the "
                 "system log (journalctl -t floatmount).\n";
    return kExitFailure;
  }
  const size_t space = reply.find(' ');
  const int code = std::atoi(reply.substr(0, space).c_str());
  if (code != kExitOk) {
    std::string line = reply.substr(space + 1);
    while (!line.empty() && line.back() == '\n') line.pop_back();
    std::cerr << "floatmount: " << line << "\n";
  }
  return code;
}

int RunUnmount(const std::vector<std::string>& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << "usage: floatmount unmount MOUNTPOINT\n"
                 "  flushes and commits every open file, closes the NFS session, unmounts,\n"
                 "  and returns once the agent has exited\n";
    return kExitOk;
  }
  if (args.size() != 1 || args[0].empty() || args[0][0] == '-') {
    std::cerr << "floatmount: usage: floatmount unmount MOUNTPOINT\n";
    return kExitUsage;
  }
  char real[PATH_MAX];
  if (realpath(args[0].c_str(), real) == nullptr) {
    std::cerr << "floatmount: " << args[0] << ": " << std::strerror(errno) << "\n";
    return kExitMountPoint;
  }
  std::string fstype;
  if (!IsMountPoint(real, &fstype) || fstype != "fuse.floatmount") {
    std::cerr << "floatmount: " << real << " is not a floatmount mount point.\n";
    return kExitMountPoint;
  }
  pid_t pid = 0;
  std::ifstream(RunFileFor(real, ".pid")) >> pid;
  if (umount2(real, 0) != 0) {
    const int err = errno;
    if (err == EBUSY) {
      std::cerr << "floatmount: " << real << " is busy: a process still uses it (see 'fuser -vm "
                << real << "').\n";
      return kExitMountPoint;
    }
    // Not root: let fusermount3 do it.
    if (err == EPERM) {
      const std::string cmd = std::string("fusermount3 -u '") + real + "'";
      if (std::system(cmd.c_str()) != 0) return kExitPermission;
    } else {
      std::cerr << "floatmount: unmount " << real << ": " << std::strerror(err) << "\n";
      return kExitFailure;
    }
  }
  // Wait for the serving process to commit its data and exit.
  for (int i = 0; i < 600 && ProcessRuns(pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (ProcessRuns(pid)) {
    std::cerr << "floatmount: unmounted, but the agent (pid " << pid
              << ") is still flushing after 60 s.\n";
    return kExitIo;
  }
  return kExitOk;
}

}  // namespace floatmount::agent
