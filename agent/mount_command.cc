// floatmount [-f] [--config NAME] [-o OPTIONS] SERVER:/EXPORT MOUNTPOINT
// (parsed by mount_args.h), and floatmount unmount MOUNTPOINT.
//
// Mount: checks the mount point, then (unless -f) forks before any thread
// exists; the child connects to the server, mounts through FUSE, checks the
// mount answers, and tells the parent over a pipe, which exits 0 — or
// prints the child's one-line error and exits with its code. Nothing is
// left mounted on failure. The child then serves until unmounted or sent
// SIGTERM/SIGINT, after which it commits and closes every open file,
// destroys the NFS session and exits.
//
// Threads of the serving process: main (waits for the loop), "fm-signal"
// (turns SIGTERM/SIGINT into an unmount), libfuse workers, the engine's.
#include <fcntl.h>
#include <pthread.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "agent/cli.h"
#include "agent/client_identity.h"
#include "agent/engine_setup.h"
#include "agent/exit_codes.h"
#include "agent/mount_args.h"
#include "fuse/file_system.h"
#include "fuse/fuse_mount.h"
#include "nfs/nfs41_client.h"

namespace floatmount::agent {
namespace {

constexpr const char* kRunDir = "/run/floatmount";

// True if `path` is a mount point now (per /proc/self/mountinfo).
bool IsMountPoint(const std::string& path, std::string* fstype) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mnt;
    fields >> id >> parent >> devno >> root >> mnt;
    if (mnt != path) continue;
    std::string f;
    while (fields >> f && f != "-") {
    }
    fields >> f;
    if (fstype) *fstype = f;
    return true;
  }
  return false;
}

std::string PidFileFor(const std::string& mountpoint) {
  std::string name;
  for (char ch : mountpoint.substr(1)) {
    if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.') {
      name += ch;
    } else if (ch == '/') {
      name += '-';
    } else {
      char hex[5];
      snprintf(hex, sizeof(hex), "\\x%02x", static_cast<unsigned char>(ch));
      name += hex;
    }
  }
  return std::string(kRunDir) + "/" + (name.empty() ? "-" : name) + ".pid";
}

// Resolves and checks the mount point; returns its absolute path.
std::optional<std::string> CheckMountPoint(const std::string& given, std::string* error) {
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

// The pipe from the serving child to the waiting parent: "<code> <line>".
class ReadyPipe {
 public:
  explicit ReadyPipe(int fd) : fd_(fd) {}
  void Report(int code, const std::string& line) {
    if (fd_ < 0) {
      if (code != kExitOk) std::cerr << "floatmount: " << line << "\n";
      return;
    }
    const std::string msg = std::to_string(code) + " " + line + "\n";
    (void)!write(fd_, msg.data(), msg.size());
    close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

nfs::Nfs41Options EngineOptions(const MountConfig& c, std::vector<nfs::Endpoint> endpoints,
                                const std::string& owner) {
  nfs::Nfs41Options o;
  o.endpoints = std::move(endpoints);
  o.export_path = c.export_path;
  o.owner_id = owner;
  o.boot_verifier = NewBootVerifier();
  o.nconnect = c.nconnect;
  o.rsize = c.rsize;
  o.wsize = c.wsize;
  o.timeo = std::chrono::milliseconds(c.timeo_deciseconds * 100);
  o.soft = c.soft;
  o.retrans = c.retrans;
  o.connect_timeout = std::min(o.timeo, std::chrono::milliseconds(15000));
  return o;
}

// Mounts and serves until unmounted. Runs in the child (or in the
// foreground); reports the outcome of the mount through `ready`.
void LogCacheSummary(const fuse::CacheStats& s) {
  constexpr double kMiB = 1 << 20;
  spdlog::info(
      "cache: read {:.0f} MiB from read-ahead, {:.0f} MiB directly ({:.0f} MiB prefetched, "
      "{:.0f} MiB unused, {} reads waited); wrote back {:.0f} MiB in {} commits ({:.0f} MiB "
      "resent, {} errors); {} flushes, longest {:.3f} s; most memory {:.0f} of {:.0f} MiB, "
      "{} writers waited",
      s.read_from_cache / kMiB, s.read_from_server / kMiB, s.prefetched / kMiB,
      s.prefetch_wasted / kMiB, s.read_waits, s.written_back / kMiB, s.commits, s.resent / kMiB,
      s.write_errors, s.flushes, s.flush_seconds_max, s.high_water / kMiB, s.budget / kMiB,
      s.writer_waits);
}

int Serve(const MountConfig& c, const std::string& mountpoint, ReadyPipe& ready) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // inherited by every thread made below

  auto identity = LoadNodeIdentity(IdentityOptionsFor(c));
  if (!identity.ok()) {
    ready.Report(kExitLocalFile, "client identity: " + identity.status().message() +
                                     ". Set state_dir= to a writable directory.");
    return kExitLocalFile;
  }
  for (const auto& line : DescribeIdentity(*identity)) {
    if (identity->source == IdSource::kRegenerated) {
      spdlog::warn("node ID {}", line);
    } else {
      spdlog::info("node ID {}", line);
    }
  }
  auto endpoints = ResolveServer(c.server, c.port);
  if (!endpoints.ok()) {
    ready.Report(kExitUnreachable, "cannot mount " + c.server + ":" + c.export_path + ": " +
                                       endpoints.status().message() + ". Check the server name.");
    return kExitUnreachable;
  }
  auto client = nfs::Nfs41Client::Mount(
      EngineOptions(c, *endpoints, OwnerIdFor(identity->node_id, mountpoint)));
  if (!client.ok()) {
    const int code = ExitCodeFor(client.status());
    ready.Report(code, DescribeMountFailure(c.server, c.export_path, client.status()));
    return code;
  }
  fuse::FsOptions fs_options;
  fs_options.attr_timeout = c.actimeo;
  fs_options.entry_timeout = c.actimeo;
  fs_options.cache_size = c.cache_size;
  fs_options.readahead_max = c.readahead.value_or(kDefaultReadahead);
  fuse::FileSystem fs(client->get(), fs_options);
  fuse::FuseMountOptions mount_options;
  mount_options.mountpoint = mountpoint;
  mount_options.fsname = c.server + ":" + c.export_path;
  mount_options.allow_other = c.allow_other;
  mount_options.read_only = c.read_only;
  mount_options.debug = c.debug;
  std::string error;
  auto mount = fuse::FuseMount::Mount(&fs, mount_options, &error);
  if (!mount) {
    (*client)->Shutdown();
    ready.Report(kExitFuse, error);
    return kExitFuse;
  }
  std::thread loop([&] {
    pthread_setname_np(pthread_self(), "fm-fuse");
    mount->Run();
  });
  // The mount answers once a stat through it succeeds.
  struct stat st;
  if (stat(mountpoint.c_str(), &st) != 0) {
    const std::string why = std::strerror(errno);
    mount->Exit();
    mount->Unmount();
    loop.join();
    (*client)->Shutdown();
    ready.Report(kExitFuse, "the mount at " + mountpoint + " does not answer: " + why);
    return kExitFuse;
  }
  mkdir(kRunDir, 0755);
  const std::string pid_file = PidFileFor(mountpoint);
  { std::ofstream(pid_file) << getpid() << "\n"; }
  spdlog::info("mounted {}:{} at {} ({} connections)", c.server, c.export_path, mountpoint,
               c.nconnect);
  ready.Report(kExitOk, "mounted");

  std::thread signals([&] {
    pthread_setname_np(pthread_self(), "fm-signal");
    int sig = 0;
    sigwait(&stop, &sig);
    if (sig == 0) return;
    spdlog::info("signal {}: unmounting {}", sig, mountpoint);
    mount->Exit();
    mount->Unmount();
  });
  loop.join();
  spdlog::info("{} unmounted; committing and closing open files", mountpoint);
  fs.CloseAll();
  LogCacheSummary(fs.cache_stats());
  mount->Unmount();
  pthread_kill(signals.native_handle(), SIGTERM);  // ends the signal thread if still waiting
  signals.join();
  mount.reset();
  (*client)->Shutdown();
  unlink(pid_file.c_str());
  return kExitOk;
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
  if (config->foreground) {
    ReadyPipe ready(-1);
    return Serve(*config, *mountpoint, ready);
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
    setsid();
    const int null = open("/dev/null", O_RDWR);
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    if (null > STDERR_FILENO) close(null);
    auto syslog = std::make_shared<spdlog::sinks::syslog_sink_mt>("floatmount", LOG_PID,
                                                                  LOG_DAEMON, false);
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("floatmount", syslog));
    ReadyPipe ready(fds[1]);
    _exit(Serve(*config, *mountpoint, ready));
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
  std::ifstream(PidFileFor(real)) >> pid;
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
  for (int i = 0; pid > 0 && i < 600 && kill(pid, 0) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (pid > 0 && kill(pid, 0) == 0) {
    std::cerr << "floatmount: unmounted, but the agent (pid " << pid
              << ") is still flushing after 60 s.\n";
    return kExitIo;
  }
  return kExitOk;
}

}  // namespace floatmount::agent
