#include "tests/harness/ganesha_server.h"

#include "tests/harness/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/harness/integration_env.h"
#include "tests/harness/net_util.h"
#include "tests/harness/rpc_ping.h"
#include "tests/harness/rpcbind.h"

namespace floatmount::testing {
namespace {

constexpr int kStartAttempts = 5;
constexpr auto kPollInterval = std::chrono::milliseconds(50);
constexpr auto kPingTimeout = std::chrono::milliseconds(1000);
constexpr uint32_t kPortmapProgram = 100000;

bool IsExecutable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

// The last `count` lines of `text` that do not contain `skip` and do
// contain `only` (empty strings: no filter).
std::string LastLines(const std::string& text, int count, const std::string& skip,
                      const std::string& only = "") {
  std::deque<std::string> kept;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!skip.empty() && line.find(skip) != std::string::npos) continue;
    if (!only.empty() && line.find(only) == std::string::npos) continue;
    kept.push_back(line);
    if (static_cast<int>(kept.size()) > count) kept.pop_front();
  }
  std::string out;
  for (const std::string& line : kept) out += line + "\n";
  return out;
}

long FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : 0;
}

// Counts ESTABLISHED (state 01) rows with local port `port` in one
// /proc/net/tcp{,6} table. Row: "sl local_address rem_address st ...",
// addresses as HEXADDR:HEXPORT.
int CountEstablished(const char* table, uint16_t port) {
  std::ifstream in(table);
  std::string line;
  std::getline(in, line);  // header
  int count = 0;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string slot, local, remote, state;
    if (!(row >> slot >> local >> remote >> state)) continue;
    const size_t colon = local.rfind(':');
    if (colon == std::string::npos || state != "01") continue;
    if (std::strtoul(local.c_str() + colon + 1, nullptr, 16) == port) ++count;
  }
  return count;
}

}  // namespace

GaneshaServer::GaneshaServer(GaneshaOptions options) : options_(std::move(options)) {}

GaneshaServer::~GaneshaServer() {
  Stop();
  if (dir_.empty()) return;
  if (KeepTestDirs()) {
    std::fprintf(stderr, "FLOATMOUNT_KEEP_TEST_DIRS: kept %s\n", dir_.c_str());
    return;
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string GaneshaServer::FindBinary() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && IsExecutable(dir + "/ganesha.nfsd")) return dir + "/ganesha.nfsd";
  }
  for (const char* fallback : {"/usr/bin/ganesha.nfsd", "/usr/sbin/ganesha.nfsd"}) {
    if (IsExecutable(fallback)) return fallback;
  }
  return "";
}

std::string GaneshaServer::MissingPrerequisite(const GaneshaOptions& options) {
  if (FindBinary().empty()) {
    return "ganesha.nfsd not found on PATH or in /usr/bin (apt-get install nfs-ganesha "
           "nfs-ganesha-vfs)";
  }
  if (geteuid() != 0) return "nfs-ganesha's VFS FSAL needs root (open_by_handle_at)";
  if (options.enable_nfsv3 && FindRpcbind().empty() &&
      !RpcNullPing("127.0.0.1", 111, kPortmapProgram, 2, std::chrono::milliseconds(1000))) {
    return "NFSv3 needs rpcbind (apt-get install rpcbind)";
  }
  if (!options.enable_nfsv3 && !options.enable_nfsv4) return "a server with no NFS version";
  return "";
}

bool GaneshaServer::Fail(const std::string& what) {
  error_ = what;
  if (!dir_.empty()) error_ += "\n--- ganesha log tail (" + log_path() + ") ---\n" + LogTail();
  return false;
}

bool GaneshaServer::MakeDirectory() {
  if (!dir_.empty()) return true;
  char tmpl[] = "/tmp/floatmount-ganesha-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return Fail(std::string("mkdtemp: ") + std::strerror(errno));
  dir_ = tmpl;
  // Readable by local non-root test helpers; the export root writable by
  // every uid so squashed and per-user requests can create files.
  const bool own_export = options_.export_dir.empty();
  if (chmod(dir_.c_str(), 0755) != 0 ||
      (own_export && (mkdir(export_dir().c_str(), 0777) != 0 ||
                      chmod(export_dir().c_str(), 0777) != 0)) ||
      mkdir((dir_ + "/recovery").c_str(), 0755) != 0) {
    return Fail("cannot prepare " + dir_ + ": " + std::strerror(errno));
  }
  return true;
}

bool GaneshaServer::WriteConfig() {
  if (options_.minor_versions.empty()) return Fail("GaneshaOptions.minor_versions is empty");
  std::string protocols = options_.enable_nfsv4 ? "4" : "";
  if (options_.enable_nfsv3) protocols = options_.enable_nfsv4 ? "3, 4" : "3";
  std::string minors;
  for (int v : options_.minor_versions) minors += (minors.empty() ? "" : ", ") + std::to_string(v);

  std::ostringstream c;
  c << "# Generated by floatmount's test harness (tests/harness/ganesha_server.cc).\n"
    << "NFS_CORE_PARAM {\n"
    << "  Protocols = " << protocols << ";\n"
    << "  NFS_Port = " << port_ << ";\n"
    << "  Bind_addr = " << options_.bind_address << ";\n"
    << "  Enable_NLM = false;\n  Enable_RQUOTA = false;\n  Enable_UDP = false;\n";
  if (options_.enable_nfsv3) {
    c << "  mount_path_pseudo = true;\n  MNT_Port = " << mount_port_ << ";\n";
  }
  c << "}\n"
    << "NFSV4 {\n"
    << "  Graceless = " << (options_.graceless ? "true" : "false") << ";\n"
    << "  Minor_Versions = " << minors << ";\n"
    << "  Only_Numeric_Owners = " << (options_.numeric_owners ? "true" : "false") << ";\n"
    << "  RecoveryBackend = fs;\n"
    << "  RecoveryRoot = " << dir_ << "/recovery;\n";
  if (options_.lease_lifetime_s) c << "  Lease_Lifetime = " << *options_.lease_lifetime_s << ";\n";
  if (options_.grace_period_s) c << "  Grace_Period = " << *options_.grace_period_s << ";\n";
  c << "}\n"
    << "EXPORT {\n"
    << "  Export_Id = 1;\n"
    << "  Path = " << export_dir() << ";\n"
    << "  Pseudo = " << pseudo_path() << ";\n"
    << "  Access_Type = " << options_.access_type << ";\n"
    << "  Squash = " << options_.squash << ";\n"
    << "  Protocols = " << protocols << ";\n"
    << "  Transports = TCP;\n"
    << "  SecType = " << options_.sec_type << ";\n";
  if (options_.attr_expiration_s) {
    c << "  Attr_Expiration_Time = " << *options_.attr_expiration_s << ";\n";
  }
  c << "  FSAL { Name = VFS; }\n"
    << "}\n";
  if (!options_.cache_dirents) c << "MDCACHE {\n  Dir_Chunk = 0;\n}\n";

  std::ofstream out(config_path(), std::ios::trunc);
  out << c.str();
  out.close();
  if (!out) return Fail("cannot write " + config_path());
  return true;
}

bool GaneshaServer::Start() {
  error_.clear();
  if (running()) return Fail("Start(): server already running (pid " + std::to_string(child_.pid()) + ")");
  if (!MakeDirectory()) return false;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    std::string pick_error;
    port_ = PickFreePort(options_.bind_address, &pick_error);
    if (port_ == 0) return Fail(pick_error);
    if (options_.enable_nfsv3) {
      mount_port_ = PickFreePort(options_.bind_address, &pick_error);
      if (mount_port_ == 0) return Fail(pick_error);
    }
    bool port_in_use = false;
    if (LaunchAndWait(&port_in_use)) return true;
    if (!port_in_use) return false;
  }
  return false;
}

bool GaneshaServer::Restart() {
  error_.clear();
  if (running()) Stop();
  if (dir_.empty() || port_ == 0) return Start();
  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  for (;;) {
    bool port_in_use = false;
    if (LaunchAndWait(&port_in_use)) return true;
    if (!port_in_use || std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

bool GaneshaServer::LaunchAndWait(bool* port_in_use) {
  *port_in_use = false;
  if (options_.enable_nfsv3) {
    if (const std::string why = EnsureRpcbind(); !why.empty()) return Fail(why);
  }
  const std::string binary = FindBinary();
  if (binary.empty()) return Fail(MissingPrerequisite(options_));
  if (!WriteConfig()) return false;
  const std::string pid_path = dir_ + "/ganesha.pid";
  unlink(pid_path.c_str());
  const long log_start = FileSize(log_path());

  // Everything the child touches is prepared before fork(): between fork and
  // exec only async-signal-safe calls are allowed (the test may run threads).
  const std::string conf = config_path(), log = log_path();
  const std::string epoch = options_.epoch ? std::to_string(*options_.epoch) : "";
  std::vector<const char*> argv = {binary.c_str(), "-F", "-f",           conf.c_str(),
                                   "-L",           log.c_str(), "-p", pid_path.c_str()};
  if (options_.epoch) argv.insert(argv.end(), {"-E", epoch.c_str()});
  argv.push_back(nullptr);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int out_fd =
      open((dir_ + "/ganesha.out").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
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

  const auto deadline = std::chrono::steady_clock::now() + options_.start_timeout;
  std::string ping_error;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ReapIfExited()) {
      *port_in_use = LogSince(log_start).find("Address already in use") != std::string::npos;
      return Fail("ganesha.nfsd exited during startup (" + DescribeExit(child_.last_status()) + ") on " +
                  options_.bind_address + ":" + std::to_string(port_));
    }
    // An answer alone is not enough: another server may hold the port (ours
    // then exits on EADDRINUSE). Ours logs this line only once it is bound.
    const uint32_t version = options_.enable_nfsv4 ? 4 : 3;
    if (RpcNullPing(options_.bind_address, port_, kNfsProgram, version, kPingTimeout, &ping_error) &&
        LogSince(log_start).find("NFS SERVER INITIALIZED") != std::string::npos &&
        !ReapIfExited()) {
      // ganesha drops a block with a bad value (even the whole EXPORT) with
      // a warning and serves on; a test would then fail far from the cause.
      const std::string config_errors = LastLines(LogSince(log_start), 1000, "", "Config File (");
      if (config_errors.empty()) return true;
      Stop();
      return Fail("ganesha.nfsd rejected part of " + config_path() + ":\n" + config_errors);
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  Kill();
  return Fail("ganesha.nfsd did not answer an NFS NULL call on " + options_.bind_address + ":" +
              std::to_string(port_) + " within " + std::to_string(options_.start_timeout.count()) +
              " ms (last: " + ping_error + ")");
}

bool GaneshaServer::ReapIfExited() { return child_.ReapIfExited(); }

bool GaneshaServer::Stop() { return child_.Stop(options_.stop_timeout); }

void GaneshaServer::Kill() { child_.Kill(); }

std::string GaneshaServer::LogSince(long offset) const {
  const std::string text = FileText(log_path());
  return text.substr(std::min(static_cast<size_t>(offset), text.size()));
}

int GaneshaServer::EstablishedConnections() const {
  if (port_ == 0) return 0;
  return CountEstablished("/proc/net/tcp", port_) + CountEstablished("/proc/net/tcp6", port_);
}

std::string GaneshaServer::LogTail(int lines) const {
  if (dir_.empty()) return "";
  std::string tail = LastLines(FileText(log_path()), lines, ":DBUS :");
  const std::string out = LastLines(FileText(dir_ + "/ganesha.out"), lines, "");
  if (!out.empty()) tail += "--- ganesha stdout/stderr ---\n" + out;
  return tail;
}

}  // namespace floatmount::testing
