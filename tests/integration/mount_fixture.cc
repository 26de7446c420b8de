#include "tests/integration/mount_fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

extern char** environ;

namespace floatmount::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kMaxOutput = 1 << 20;
constexpr const char* kTestDirPrefix = "/tmp/floatmount-";
// Bounds, stretched by FLOATMOUNT_TEST_TIME_SCALE (integration_env.h). The
// unmount bound is above the 60 s `floatmount unmount` itself waits for the
// agent to commit and exit, so that the command's own answer is seen.
const auto kUnmountTimeout = Scaled(std::chrono::seconds(75));
const auto kDaemonExitTimeout = Scaled(std::chrono::seconds(10));
const auto kReapTimeout = Scaled(std::chrono::seconds(10));
// An unmount still running after this long gets the agent's thread stacks
// printed (before `floatmount unmount` gives up at 60 s): what it waited for.
constexpr auto kUnmountStackDumpAfter = std::chrono::seconds(40);

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const std::string& a : argv) {
    if (!out.empty()) out += ' ';
    out += a;
  }
  return out;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string LastLines(const std::string& text, size_t count) {
  std::deque<std::string> kept;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    kept.push_back(line);
    if (kept.size() > count) kept.pop_front();
  }
  std::string out;
  for (const std::string& line : kept) out += line + "\n";
  return out;
}

// Waits for child `pid` until `timeout`; true and *status if it exited.
bool WaitChild(pid_t pid, std::chrono::milliseconds timeout, int* status) {
  const auto deadline = Clock::now() + timeout;
  auto nap = std::chrono::microseconds(500);
  for (;;) {
    const pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return true;  // not our child any more
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(nap);
    nap = std::min<std::chrono::microseconds>(nap * 2, std::chrono::milliseconds(20));
  }
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// The environment with `extra` ("NAME=value") added or replacing.
std::vector<std::string> MergedEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& x : extra) replaced |= x.substr(0, x.find('=')) == name;
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

std::vector<char*> CStrings(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Mount points and fs types from /proc/self/mountinfo, in mount order.
std::vector<std::pair<std::string, std::string>> MountTable() {
  std::vector<std::pair<std::string, std::string>> out;
  std::ifstream in("/proc/self/mountinfo");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string id, parent, dev, root, mount_point, field;
    fields >> id >> parent >> dev >> root >> mount_point;
    while (fields >> field && field != "-") {
    }
    std::string fstype;
    fields >> fstype;
    // Undo the octal escapes of space, tab, newline and backslash.
    std::string unescaped;
    for (size_t i = 0; i < mount_point.size(); ++i) {
      if (mount_point[i] == '\\' && i + 3 < mount_point.size() &&
          std::isdigit(static_cast<unsigned char>(mount_point[i + 1]))) {
        unescaped += static_cast<char>(std::stoi(mount_point.substr(i + 1, 3), nullptr, 8));
        i += 3;
      } else {
        unescaped += mount_point[i];
      }
    }
    out.emplace_back(unescaped, fstype);
  }
  return out;
}

// The command line of process `pid`, split at NULs; empty if it is gone.
std::vector<std::string> CommandLine(pid_t pid) {
  const std::string raw = Slurp("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  size_t start = 0;
  while (start < raw.size()) {
    const size_t end = raw.find('\0', start);
    args.push_back(raw.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return args;
}

bool MentionsPath(pid_t pid, const std::string& path) {
  for (const std::string& arg : CommandLine(pid)) {
    if (arg.find(path) != std::string::npos) return true;
  }
  return false;
}

// True if `pid` runs (not a zombie) and still names `path` in its command
// line (so a reused pid is never taken for the agent).
bool AgentAlive(pid_t pid, const std::string& path) {
  const std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  if (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X') return false;
  return MentionsPath(pid, path);
}

// The last lines of the log files (names containing "log") in `dir`: the
// agent's logs, if it keeps them in its state directory.
std::string LogsIn(const std::string& dir) {
  std::string out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    if (entry.path().filename().string().find("log") == std::string::npos) continue;
    const std::string tail = LastLines(Slurp(entry.path()), 30);
    if (!tail.empty()) out += "--- " + entry.path().string() + " ---\n" + tail;
  }
  return out;
}

// Prints the thread stacks of `pids` (gdb, if installed) to stderr once
// `after` has passed, unless destroyed first.
class StackDumpAfter {
 public:
  StackDumpAfter(std::vector<pid_t> pids, std::chrono::seconds after)
      : thread_([this, pids = std::move(pids), after] {
          std::unique_lock<std::mutex> lock(mu_);
          if (cv_.wait_for(lock, after, [this] { return done_; })) return;
          lock.unlock();
          for (pid_t pid : pids) {
            const CommandResult r = RunCommand(
                {"gdb", "-p", std::to_string(pid), "-batch", "-ex", "thread apply all bt"}, "",
                std::chrono::seconds(60));
            std::fprintf(stderr, "--- the agent (pid %d) after %lld s of unmount ---\n%s\n",
                         static_cast<int>(pid), static_cast<long long>(after.count()),
                         r.output.c_str());
          }
        }) {}
  ~StackDumpAfter() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: started once the members above exist
};

bool IsFuse(const std::string& fstype) { return fstype == "fuse" || fstype.rfind("fuse.", 0) == 0; }

int ForkAndRun(bool change_ids, uid_t uid, gid_t gid, const std::vector<gid_t>& groups,
               const std::function<int()>& fn, std::chrono::milliseconds timeout) {
  const pid_t pid = fork();
  if (pid < 0) return kChildSetupFailed;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (change_ids &&
        (setgroups(groups.size(), groups.data()) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) {
      _exit(255);
    }
    int rc = 254;
    try {
      rc = fn();
    } catch (...) {
    }
    _exit(rc & 0xff);
  }
  int status = 0;
  if (!WaitChild(pid, timeout, &status)) {
    kill(pid, SIGKILL);
    // Bounded: a child blocked on a FUSE request the agent already took
    // outlives SIGKILL until the agent answers or dies.
    WaitChild(pid, kReapTimeout, &status);
    return kChildTimedOut;
  }
  if (WIFSIGNALED(status)) return kChildSignalBase + WTERMSIG(status);
  if (change_ids && WIFEXITED(status) && WEXITSTATUS(status) == 255) return kChildSetupFailed;
  return WIFEXITED(status) ? WEXITSTATUS(status) : kChildSetupFailed;
}

}  // namespace

// ---- processes -------------------------------------------------------------

std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/" + name;
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  for (const char* dir : {"/usr/sbin", "/sbin", "/usr/bin", "/bin"}) {
    const std::string candidate = std::string(dir) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string FloatmountBinary() {
  const std::string configured = FLOATMOUNT_BINARY;
  if (configured.find('/') == std::string::npos) return FindOnPath(configured);
  return access(configured.c_str(), X_OK) == 0 ? configured : "";
}

namespace {

// The command to run: FloatmountBinary(), or the configured name if it is
// missing (e.g. being rebuilt), so the error names what is missing.
std::string FloatmountCommand() {
  const std::string found = FloatmountBinary();
  return found.empty() ? std::string(FLOATMOUNT_BINARY) : found;
}

}  // namespace

std::string CommandResult::Describe() const {
  std::ostringstream out;
  out << "`" << command << "` -> ";
  if (timed_out) {
    out << "timed out";
  } else if (exit_code < 0) {
    out << "could not start";
  } else {
    out << "exit code " << exit_code;
  }
  out << ", output:\n" << output;
  return out.str();
}

CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& cwd,
                         std::chrono::milliseconds timeout,
                         const std::vector<std::string>& extra_env) {
  CommandResult result;
  result.command = Join(argv);
  if (argv.empty()) return result;
  // Everything the child needs is prepared before fork().
  std::vector<std::string> args = argv;
  std::vector<std::string> env = MergedEnvironment(extra_env);
  std::vector<char*> args_c = CStrings(args);
  std::vector<char*> env_c = CStrings(env);
  // Output goes to an unlinked file, not a pipe: a daemon that inherits it
  // can never block on a full pipe, and we need not wait for its EOF.
  char out_path[] = "/tmp/floatmount-cmd-XXXXXX";
  const int out_fd = mkostemp(out_path, O_CLOEXEC);
  if (out_fd < 0) {
    result.output = "mkostemp: " + ErrnoText();
    return result;
  }
  unlink(out_path);
  const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const std::string chdir_error = "cannot chdir to " + cwd + "\n";
  const std::string exec_error = "cannot execute " + argv[0] + "\n";

  const pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(null_fd, 0);
    dup2(out_fd, 1);
    dup2(out_fd, 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      (void)!write(2, chdir_error.data(), chdir_error.size());
      _exit(127);
    }
    execvpe(args_c[0], args_c.data(), env_c.data());
    (void)!write(2, exec_error.data(), exec_error.size());
    _exit(127);
  }
  if (null_fd >= 0) close(null_fd);
  if (pid < 0) {
    close(out_fd);
    result.output = "fork: " + ErrnoText();
    return result;
  }
  setpgid(pid, pid);
  int status = 0;
  if (!WaitChild(pid, timeout, &status)) {
    result.timed_out = true;
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    if (!WaitChild(pid, kReapTimeout, &status)) status = W_EXITCODE(0, SIGKILL);
  }
  result.exit_code = ExitCodeOf(status);
  std::string output(kMaxOutput, '\0');
  const ssize_t n = pread(out_fd, output.data(), output.size(), 0);
  output.resize(n > 0 ? static_cast<size_t>(n) : 0);
  result.output = std::move(output);
  close(out_fd);
  return result;
}

int RunAs(uid_t uid, gid_t gid, const std::function<int()>& fn, const std::vector<gid_t>& groups,
          std::chrono::milliseconds timeout) {
  return ForkAndRun(true, uid, gid, groups, fn, timeout);
}

int RunInChild(const std::function<int()>& fn, std::chrono::milliseconds timeout) {
  return ForkAndRun(false, 0, 0, {}, fn, timeout);
}

std::string MakeTestDir(const std::string& kind) {
  std::string tmpl = kTestDirPrefix + kind + "-" + std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) return "";
  return tmpl;
}

// ---- files -----------------------------------------------------------------

std::string ErrnoText(int err) {
  const char* name = strerrorname_np(err);
  return std::string(name != nullptr ? name : "errno " + std::to_string(err)) + " (" +
         std::strerror(err) + ")";
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

int UniqueFd::Close() {
  if (fd_ < 0) return 0;
  const int r = close(fd_);
  fd_ = -1;
  return r;
}

std::string TestData(size_t size, uint64_t seed) {
  std::string out(size, '\0');
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
  for (size_t i = 0; i < size; ++i) {
    if (i % 8 == 0) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
    }
    out[i] = static_cast<char>(x >> (8 * (i % 8)));
  }
  return out;
}

::testing::AssertionResult WriteFile(const std::string& path, std::string_view data, mode_t mode) {
  UniqueFd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.ok()) return ::testing::AssertionFailure() << "open " << path << ": " << ErrnoText();
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = write(fd.get(), data.data() + done, data.size() - done);
    if (n <= 0) {
      return ::testing::AssertionFailure()
             << "write " << path << " at " << done << ": " << (n < 0 ? ErrnoText() : "0 bytes");
    }
    done += static_cast<size_t>(n);
  }
  if (fd.Close() != 0)
    return ::testing::AssertionFailure() << "close " << path << ": " << ErrnoText();
  return ::testing::AssertionSuccess();
}

std::optional<std::string> ReadFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return std::nullopt;
  std::string out;
  std::string buf(1 << 20, '\0');
  for (;;) {
    const ssize_t n = read(fd.get(), buf.data(), buf.size());
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  return out;
}

std::optional<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = opendir(path.c_str());
  if (dir == nullptr) return std::nullopt;
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* e = readdir(dir);
    if (e == nullptr) break;
    const std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  const int err = errno;
  closedir(dir);
  if (err != 0) {
    errno = err;
    return std::nullopt;
  }
  return names;
}

::testing::AssertionResult PwriteAll(int fd, std::string_view data, off_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        pwrite(fd, data.data() + done, data.size() - done, offset + static_cast<off_t>(done));
    if (n <= 0) {
      return ::testing::AssertionFailure() << "pwrite at " << offset + static_cast<off_t>(done)
                                           << ": " << (n < 0 ? ErrnoText() : "0 bytes");
    }
    done += static_cast<size_t>(n);
  }
  return ::testing::AssertionSuccess();
}

std::optional<std::string> PreadUpTo(int fd, size_t size, off_t offset) {
  std::string out(size, '\0');
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, out.data() + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0) return std::nullopt;
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  return out;
}

::testing::AssertionResult SameBytes(std::string_view actual, std::string_view expected) {
  if (actual == expected) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < actual.size() && i < expected.size() && actual[i] == expected[i]) ++i;
  auto byte = [](std::string_view s, size_t at) {
    return at < s.size() ? std::to_string(static_cast<unsigned char>(s[at])) : std::string("EOF");
  };
  return ::testing::AssertionFailure()
         << "got " << actual.size() << " bytes, expected " << expected.size()
         << "; first difference at offset " << i << " (got " << byte(actual, i) << ", expected "
         << byte(expected, i) << ")";
}

bool WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

::testing::AssertionResult FailedWith(const char* expr, std::pair<long, int> result,
                                      std::initializer_list<int> errnos) {
  std::string expected;
  for (int e : errnos) {
    if (result.first == -1 && result.second == e) return ::testing::AssertionSuccess();
    expected += (expected.empty() ? "" : " or ") + ErrnoText(e);
  }
  if (result.first != -1) {
    return ::testing::AssertionFailure()
           << expr << " returned " << result.first << ", expected it to fail with " << expected;
  }
  return ::testing::AssertionFailure()
         << expr << " failed with " << ErrnoText(result.second) << ", expected " << expected;
}

// ---- mounts ----------------------------------------------------------------

std::string MountedFsType(const std::string& path) {
  std::string fstype;
  for (const auto& [mount_point, type] : MountTable()) {
    if (mount_point == path) fstype = type;
  }
  return fstype;
}

std::vector<pid_t> ProcessesNaming(const std::string& path) {
  std::vector<pid_t> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == getpid()) continue;
    if (AgentAlive(static_cast<pid_t>(pid), path)) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(proc);
  return out;
}

std::string NfsVersionUnderTest() {
  const char* value = std::getenv("FLOATMOUNT_TEST_NFS_VERS");
  return value != nullptr && std::string(value) == "3" ? "3" : "4.1";
}

bool ReferenceMountRequested() {
  const char* value = std::getenv("FLOATMOUNT_TEST_REFERENCE_MOUNT");
  return value != nullptr && value[0] != '\0' && std::strcmp(value, "0") != 0;
}

FloatMount::~FloatMount() { Unmount(); }

std::string FloatMount::Path(const std::string& rel) const {
  // Once unmounted, paths point nowhere (never at "/" + rel).
  const std::string root =
      mount_point_.empty() ? "/nonexistent-floatmount-unmounted" : mount_point_;
  return rel.empty() ? root : root + "/" + rel;
}

std::vector<pid_t> FloatMount::daemon_pids() const {
  std::lock_guard<std::mutex> lock(mu_);
  return daemon_pids_;
}

::testing::AssertionResult FloatMount::Mount(const Config& config) {
  config_ = config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mount_point_ = MakeTestDir("mnt");
    state_dir_ = MakeTestDir("state");
  }
  if (mount_point_.empty() || state_dir_.empty()) {
    const std::string err = ErrnoText();
    RemoveDirectories();
    return ::testing::AssertionFailure() << "mkdtemp: " << err;
  }

  CommandResult r;
  if (config.reference) {
    r = RunCommand({"mount", "--bind", config.bind_source, mount_point_}, "", config.mount_timeout);
  } else if (config.kernel) {
    r = RunCommand({"mount", "-t", "nfs4", "-o", config.extra, config.server, mount_point_}, "",
                   config.mount_timeout);
  } else {
    std::string options = "port=" + std::to_string(config.port) +
                          ",nconnect=" + std::to_string(config.nconnect) +
                          ",state_dir=" + state_dir_;
    if (!config.extra.empty()) options += "," + config.extra;
    // The agent's log stays with its state (printed when a test fails or
    // an unmount is slow): syslog reaches no one here.
    std::vector<std::string> env = {"FLOATMOUNT_LOG_FILE=" + state_dir_ + "/agent.log"};
    if (std::getenv("FLOATMOUNT_LOG") == nullptr) env.push_back("FLOATMOUNT_LOG=info");
    r = RunCommand({FloatmountCommand(), "-o", options, config.server, mount_point_}, "",
                   config.mount_timeout, env);
  }
  const std::string fstype = MountedFsType(mount_point_);
  mounted_ = !fstype.empty();
  {
    std::lock_guard<std::mutex> lock(mu_);
    daemon_pids_ = ProcessesNaming(mount_point_);
  }

  std::string problem;
  if (r.exit_code != 0) {
    problem = "the mount command failed: " + r.Describe();
    if (mounted_) problem += "\nand it left " + fstype + " mounted at " + mount_point_;
  } else if (config.kernel ? fstype != "nfs4" : !config.reference && !IsFuse(fstype)) {
    problem = "the mount command exited 0 but /proc/self/mountinfo shows " +
              (fstype.empty() ? std::string("nothing") : fstype) + " at " + mount_point_ + ": " +
              r.Describe();
  } else {
    // The mount must answer; checked in a child so a hung mount cannot hang us.
    const std::string root = mount_point_;
    const int rc = RunInChild(
        [&root] {
          struct stat st {};
          return stat(root.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? 0 : 1;
        },
        Scaled(std::chrono::seconds(15)));
    if (rc != 0)
      problem =
          "the mount does not answer stat() of its root (child result " + std::to_string(rc) + ")";
  }
  if (problem.empty()) return ::testing::AssertionSuccess();

  problem += LogsIn(state_dir_);
  KillDaemons();
  ForceUnmount();
  RemoveDirectories();
  return ::testing::AssertionFailure() << problem;
}

::testing::AssertionResult FloatMount::Unmount() {
  if (mount_point_.empty()) return ::testing::AssertionSuccess();
  std::string problems;
  if (mounted_) {
    const auto start = std::chrono::steady_clock::now();
    std::optional<StackDumpAfter> dump;
    if (floatmount()) dump.emplace(daemon_pids(), kUnmountStackDumpAfter);
    CommandResult r = !floatmount() ? RunCommand({"umount", mount_point_}, "", kUnmountTimeout)
                                    : RunCommand({FloatmountCommand(), "unmount", mount_point_}, "",
                                                 kUnmountTimeout);
    dump.reset();
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    if (r.exit_code != 0) {
      problems += "unmount failed after " + std::to_string(took.count()) + " ms: " + r.Describe() +
                  "\n";
    } else if (took > std::chrono::seconds(10)) {
      // Not a failure, but worth seeing when a run is slow, with what the
      // agent was doing meanwhile.
      std::fprintf(stderr, "note: floatmount unmount %s took %lld ms\n%s", mount_point_.c_str(),
                   static_cast<long long>(took.count()), LogsIn(state_dir_).c_str());
    }
    if (!MountedFsType(mount_point_).empty()) {
      problems += "still mounted after the unmount command; forcing it\n";
      ForceUnmount();
    }
    mounted_ = false;
  }
  const bool exited = WaitFor(
      [this] {
        for (pid_t pid : daemon_pids()) {
          if (AgentAlive(pid, mount_point_)) return false;
        }
        return true;
      },
      kDaemonExitTimeout);
  if (!exited) {
    problems += "the agent was still running " + std::to_string(kDaemonExitTimeout.count()) +
                " ms after the unmount; killed it\n";
    KillDaemons();
  }
  if (!problems.empty()) problems += LogsIn(state_dir_);
  RemoveDirectories();
  if (problems.empty()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << problems;
}

void FloatMount::Abort() {
  if (config_.kernel) {
    // MNT_FORCE fails the kernel client's outstanding RPCs (EIO), which
    // frees a test blocked on a hard mount; TearDown then unmounts.
    std::lock_guard<std::mutex> lock(mu_);
    if (!mount_point_.empty()) umount2(mount_point_.c_str(), MNT_FORCE);
    return;
  }
  if (config_.reference) return;
  KillDaemons();
}

void FloatMount::KillDaemons() {
  std::lock_guard<std::mutex> lock(mu_);
  for (pid_t pid : daemon_pids_) {
    if (AgentAlive(pid, mount_point_)) kill(pid, SIGKILL);
  }
}

void FloatMount::ForceUnmount() {
  for (int attempt = 0; attempt < 3 && !MountedFsType(mount_point_).empty(); ++attempt) {
    if (IsFuse(MountedFsType(mount_point_))) {
      RunCommand({"fusermount3", "-u", "-z", mount_point_}, "", std::chrono::seconds(10));
    }
    if (!MountedFsType(mount_point_).empty()) {
      RunCommand({"umount", "-l", mount_point_}, "", std::chrono::seconds(10));
    }
  }
  mounted_ = !MountedFsType(mount_point_).empty();
}

std::string FloatMount::LogTails() const {
  return state_dir_.empty() ? "" : LogsIn(state_dir_);
}

void FloatMount::RemoveDirectories() {
  // The mount point is removed with rmdir only: never recurse into a path
  // that might still be mounted.
  if (!mount_point_.empty() && MountedFsType(mount_point_).empty()) {
    rmdir(mount_point_.c_str());
  }
  if (!state_dir_.empty()) {
    if (KeepTestDirs()) {
      std::fprintf(stderr, "FLOATMOUNT_KEEP_TEST_DIRS: kept %s\n", state_dir_.c_str());
    } else {
      std::error_code ignored;
      std::filesystem::remove_all(state_dir_, ignored);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);  // KillDaemons may run on the watchdog
  mount_point_.clear();
  state_dir_.clear();
}

// ---- fixture ---------------------------------------------------------------

namespace {

// True if `pid` no longer runs: gone, a zombie, or killed but still stuck
// in the kernel (a process blocked on a FUSE request that the agent has
// already read waits, even after SIGKILL, until the agent answers or dies).
bool ProcessGone(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  const std::string stat = Slurp(dir + "/stat");
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return true;
  if (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X') return true;
  std::istringstream status(Slurp(dir + "/status"));
  const unsigned long long kill_bit = 1ull << (SIGKILL - 1);
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("SigPnd:", 0) == 0 || line.rfind("ShdPnd:", 0) == 0) {
      if (std::stoull(line.substr(7), nullptr, 16) & kill_bit) return true;
    }
  }
  return false;
}

// The pid in /tmp/floatmount-<kind>-<pid>-XXXXXX, or 0.
pid_t OwnerOf(const std::string& path, const std::string& kind) {
  const std::string prefix = kTestDirPrefix + kind + "-";
  if (path.rfind(prefix, 0) != 0) return 0;
  char* end = nullptr;
  const long pid = std::strtol(path.c_str() + prefix.size(), &end, 10);
  return pid > 0 && *end == '-' ? static_cast<pid_t>(pid) : 0;
}

// Removes what test processes that died left behind: their mounts (lazily,
// after killing the agents, which also frees a killed test stuck on the
// mount), mount points, state directories and scratch directories.
void CleanUpAfterDeadTests() {
  for (const auto& [mount_point, fstype] : MountTable()) {
    const pid_t owner = OwnerOf(mount_point, "mnt");
    if (owner == 0 || owner == getpid() || !ProcessGone(owner)) continue;
    std::fprintf(stderr, "mount_fixture: removing stale mount %s (%s) of dead pid %d\n",
                 mount_point.c_str(), fstype.c_str(), owner);
    for (pid_t pid : ProcessesNaming(mount_point)) kill(pid, SIGKILL);
    RunCommand({"umount", "-l", mount_point}, "", std::chrono::seconds(10));
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/tmp", ec)) {
    const std::string path = entry.path().string();
    for (const char* kind : {"mnt", "state", "tools"}) {
      const pid_t owner = OwnerOf(path, kind);
      if (owner == 0 || owner == getpid() || !ProcessGone(owner)) continue;
      if (!MountedFsType(path).empty()) continue;
      // Kept on purpose (a loop hunting a rare failure keeps them to read).
      if (KeepTestDirs() && std::string(kind) != "mnt") continue;
      std::error_code ignored;
      if (std::string(kind) == "mnt") {
        rmdir(path.c_str());  // never recurse into a (former) mount point
      } else {
        std::filesystem::remove_all(path, ignored);
      }
    }
  }
}

// The knfsd guest's export mounted with noac once for the whole process
// (a mount and unmount cost ~2 s under QEMU TCG): ServerPath() under knfsd.
// Mounted again if its agent is gone (a watchdog killed it). Unmounted at
// exit, before the guest stops (statics die in reverse order).
FloatMount* SharedServerView(const FloatMount::Config& config, std::string* error) {
  static std::unique_ptr<FloatMount> view;
  if (view != nullptr && view->mounted() && !ProcessesNaming(view->mount_point()).empty()) {
    return view.get();
  }
  if (view != nullptr) (void)view->Unmount();
  view = std::make_unique<FloatMount>();
  const ::testing::AssertionResult mounted = view->Mount(config);
  if (mounted) return view.get();
  *error = mounted.message();
  view.reset();
  return nullptr;
}

}  // namespace

void MountTest::SetUp() {
  umask(022);
  CleanUpAfterDeadTests();
  reference_ = ReferenceMountRequested();
  nfs3_ = NfsVersionUnderTest() == "3";
  kernel_ = KernelClientRequested();
  if (kernel_) {
    SetUpKernelClient();
    return;
  }
  if (nfs3_) server_options_.enable_nfsv3 = true;
  const bool use_knfsd = KnfsdRequested();
  if (use_knfsd) {
    ASSERT_FALSE(nfs3_ || reference_) << "FLOATMOUNT_TEST_SERVER=knfsd is for NFSv4.1 floatmount "
                                         "mounts (the guest serves no NFSv3)";
  } else {
    const std::string missing = GaneshaServer::MissingPrerequisite(server_options_);
    FLOATMOUNT_REQUIRE(missing.empty(), missing);
  }
  if (!reference_) {
    FLOATMOUNT_REQUIRE(access("/dev/fuse", R_OK | W_OK) == 0,
                       "needs read-write /dev/fuse (modprobe fuse; in a container, --device "
                       "/dev/fuse)");
    FLOATMOUNT_REQUIRE(!FloatmountBinary().empty(),
                       "the floatmount command (" FLOATMOUNT_BINARY ") is not built");
  }
  if (use_knfsd) {
    std::string why;
    knfsd_ = SharedKnfsd(&why);
    FLOATMOUNT_REQUIRE(knfsd_ != nullptr, why);
    ASSERT_TRUE(EmptyGuestExport(*knfsd_));
  } else {
    server_ = std::make_unique<GaneshaServer>(server_options_);
    ASSERT_TRUE(server_->Start()) << server_->error();
  }
  auto first = std::make_unique<FloatMount>();
  const ::testing::AssertionResult mounted = first->Mount(MountConfig(mount_options_));
  ASSERT_TRUE(mounted) << "\n" << ServerLogTail();
  {
    std::lock_guard<std::mutex> lock(mounts_mu_);
    mounts_.push_back(std::move(first));
  }
  StartWatchdog();
}

void MountTest::SetUpKernelClient() {
  ASSERT_FALSE(nfs3_ || reference_ || KnfsdRequested())
      << "FLOATMOUNT_TEST_KERNEL_CLIENT replaces the server and the mounts: it does not combine "
         "with FLOATMOUNT_TEST_NFS_VERS, _REFERENCE_MOUNT or _SERVER";
  // Created on the server's own disk, so it exists before any client looks;
  // world-writable like a fresh ganesha export, for the permission tests.
  std::string dir = kernel_->server_dir + "/kposix-" + std::to_string(getpid()) + "-XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr) << "mkdtemp " << dir << ": " << ErrnoText();
  kernel_dir_ = dir;
  ASSERT_SYSCALL(chmod(kernel_dir_.c_str(), 0777));
  auto first = std::make_unique<FloatMount>();
  const ::testing::AssertionResult mounted = first->Mount(MountConfig(mount_options_));
  ASSERT_TRUE(mounted) << "the kernel client's mount";
  {
    std::lock_guard<std::mutex> lock(mounts_mu_);
    mounts_.push_back(std::move(first));
  }
  StartWatchdog();
}

void MountTest::TearDown() {
  StopWatchdog();
  bool fired = false;
  {
    std::lock_guard<std::mutex> lock(watchdog_mu_);
    fired = watchdog_fired_;
  }
  if (HasFailure() && !mounts_.empty()) {
    for (const auto& m : mounts_) {
      const std::string logs = LogsIn(m->state_dir());
      if (!logs.empty()) std::fprintf(stderr, "%s", logs.c_str());
    }
    if (server_ || knfsd_) std::fprintf(stderr, "%s", ServerLogTail().c_str());
  }
  // The second mounts first, then the test's own mount.
  for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) {
    const std::string where = (*it)->mount_point();
    const ::testing::AssertionResult r = (*it)->Unmount();
    EXPECT_TRUE(r) << "unmounting " << where;
  }
  {
    std::lock_guard<std::mutex> lock(mounts_mu_);
    mounts_.clear();
    server_view_ = nullptr;  // shared: stays mounted for the next test
  }
  if (fired) {
    ADD_FAILURE() << "the test ran longer than " << Scaled(test_timeout_).count() / 1000
                  << " s: the watchdog killed the agent to abort the mount";
  }
  server_.reset();
  if (!kernel_dir_.empty()) {
    if (KeepTestDirs()) {
      std::fprintf(stderr, "FLOATMOUNT_KEEP_TEST_DIRS: kept %s\n", kernel_dir_.c_str());
    } else {
      std::error_code ignored;
      std::filesystem::remove_all(kernel_dir_, ignored);
    }
    kernel_dir_.clear();
  }
}

std::string MountTest::Path(const std::string& rel) const { return mounts_.front()->Path(rel); }

std::string MountTest::ServerPath(const std::string& rel) const {
  if (kernel_) return rel.empty() ? kernel_dir_ : kernel_dir_ + "/" + rel;
  if (knfsd_ == nullptr) {
    return rel.empty() ? server_->export_dir() : server_->export_dir() + "/" + rel;
  }
  if (server_view_ == nullptr) {
    // noac: every stat asks the server, so the view never shows its own
    // cached past; opens revalidate data anyway (close-to-open).
    std::string error;
    FloatMount* view = SharedServerView(MountConfig("noac"), &error);
    EXPECT_NE(view, nullptr) << "the server view mount: " << error << "\n" << ServerLogTail();
    if (view == nullptr) return "/nonexistent-floatmount-server-view/" + rel;
    std::lock_guard<std::mutex> lock(mounts_mu_);
    server_view_ = view;
  }
  return server_view_->Path(rel);
}

uint16_t MountTest::server_port() const {
  if (kernel_) return 0;
  return knfsd_ != nullptr ? knfsd_->port() : server_->port();
}

std::string MountTest::server_spec() const {
  if (kernel_) {
    return KernelExportOf(*kernel_, std::filesystem::path(kernel_dir_).filename().string());
  }
  return knfsd_ != nullptr ? knfsd_->address() + ":" + knfsd_->pseudo_path()
                           : server_->address() + ":" + server_->pseudo_path();
}

std::string MountTest::ServerLogTail(int lines) const {
  if (knfsd_ != nullptr) return "--- knfsd guest console ---\n" + knfsd_->LogTail(lines);
  if (server_ != nullptr) return "--- ganesha ---\n" + server_->LogTail(lines);
  return "";
}

std::string MountTest::CrashAndRestartServer() {
  if (knfsd_ != nullptr) return knfsd_->RestartNfsd() ? "" : knfsd_->error();
  if (server_ == nullptr) return "no server of the test's own to restart";
  server_->Kill();
  return server_->Restart() ? "" : server_->error();
}

FloatMount::Config MountTest::MountConfig(const std::string& extra) const {
  FloatMount::Config config;
  if (kernel_) {
    config.server = server_spec();
    config.extra = KernelMountOptions(*kernel_, extra);
    config.kernel = true;
    return config;
  }
  config.server = server_spec();
  config.port = server_port();
  config.extra = extra;
  if (nfs3_) {
    // mountport: rpcbind knows only the newest NFSv3 server's MOUNT port.
    const std::string v3 = "vers=3,mountport=" + std::to_string(server_->mount_port());
    config.extra = extra.empty() ? v3 : v3 + "," + extra;
  }
  if (server_ != nullptr) config.bind_source = server_->export_dir();
  config.reference = reference_;
  return config;
}

FloatMount* MountTest::MountSecond(const std::string& extra, uint16_t port) {
  auto second = std::make_unique<FloatMount>();
  FloatMount::Config config = MountConfig(extra);
  if (port != 0) config.port = port;
  const ::testing::AssertionResult mounted = second->Mount(config);
  EXPECT_TRUE(mounted) << "second mount\n" << ServerLogTail();
  if (!mounted) return nullptr;
  std::lock_guard<std::mutex> lock(mounts_mu_);
  mounts_.push_back(std::move(second));
  return mounts_.back().get();
}

void MountTest::StartWatchdog() {
  watchdog_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(watchdog_mu_);
    if (watchdog_cv_.wait_for(lock, Scaled(test_timeout_), [this] { return watchdog_stop_; })) return;
    watchdog_fired_ = true;
    lock.unlock();
    std::lock_guard<std::mutex> mounts_lock(mounts_mu_);
    for (const auto& m : mounts_) m->Abort();
    if (server_view_ != nullptr) server_view_->Abort();
  });
}

void MountTest::StopWatchdog() {
  if (!watchdog_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(watchdog_mu_);
    watchdog_stop_ = true;
  }
  watchdog_cv_.notify_all();
  watchdog_.join();
}

}  // namespace floatmount::testing
