// The agent as systemd runs it, with a notify socket this test owns (systemd
// is not PID 1 here): `floatmount -f` with NOTIFY_SOCKET, WATCHDOG_USEC and
// JOURNAL_STREAM set, against a real nfs-ganesha, then stopped by signals.
//
//   - READY=1 only once the mount answers, then STATUS=, WATCHDOG=1, and
//     STOPPING=1 at SIGTERM; exit 0, nothing mounted; log lines in the
//     journal's "<priority>message" form.
//   - SIGTERM in the middle of a 256 MiB write: every byte whose write(2)
//     returned success is on the server, in order, and nothing else.
//   - A second SIGTERM while the flush hangs (ganesha stopped with SIGSTOP)
//     forces the exit, non-zero, within seconds, leaving nothing mounted.
//   - Without -f the forked child sends READY=1 with MAINPID=<its pid> on
//     behalf of the process that was started, then its own messages.
//
// Each test has its own server, mount point (/tmp/floatmount-mnt-<pid>-*,
// which MountTest's clean-up also knows) and state directory holding the
// notify socket and the agent's output (agent.log). TearDown kills what is
// left, unmounts lazily and resumes a stopped server, whatever happened.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <regex>
#include <sstream>

#include "tests/harness/ganesha_server.h"
#include "tests/harness/integration_env.h"
#include "tests/integration/mount_fixture.h"

extern char** environ;

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 1 << 20;

// One datagram from the notify socket, and who sent it (SCM_CREDENTIALS).
struct Notification {
  std::string text;
  pid_t sender = 0;
  bool Has(const std::string& field) const {
    return ("\n" + text).find("\n" + field) != std::string::npos;
  }
  std::string Value(const std::string& name) const {
    const size_t at = ("\n" + text).find("\n" + name + "=");
    if (at == std::string::npos) return "";
    const size_t start = at + name.size() + 1;
    return text.substr(start, text.find('\n', start) - start);
  }
};

// The service manager's end of NOTIFY_SOCKET.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    path_.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
    const int on = 1;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        setsockopt(fd_, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) != 0) {
      error_ = "notify socket " + path_ + ": " + ErrnoText();
    }
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

  // Receives until a message has `field`; returns it, or nullopt after
  // `timeout`. Every message received is appended to log().
  std::optional<Notification> Until(const std::string& field, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) != 1) continue;
      char buf[4096];
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
      iovec iov{buf, sizeof(buf)};
      msghdr msg{};
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      const ssize_t n = recvmsg(fd_, &msg, 0);
      if (n < 0) continue;
      Notification note{std::string(buf, static_cast<size_t>(n)), 0};
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
          ucred cred;
          std::memcpy(&cred, CMSG_DATA(c), sizeof(cred));
          note.sender = cred.pid;
        }
      }
      log_.append("[").append(std::to_string(note.sender)).append("] ");
      log_.append(note.text).append("\n");
      if (note.Has(field)) return note;
    }
    return std::nullopt;
  }
  const std::string& log() const { return log_; }

 private:
  std::string path_;
  int fd_ = -1;
  std::string error_;
  std::string log_;
};

std::optional<int> WaitExit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0 || Clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(10ms);
  }
}

std::string Slurp(const std::string& path) { return ReadFile(path).value_or(""); }

class LifecycleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    umask(022);
    const std::string missing = GaneshaServer::MissingPrerequisite();
    FLOATMOUNT_REQUIRE(missing.empty(), missing);
    FLOATMOUNT_REQUIRE(access("/dev/fuse", R_OK | W_OK) == 0, "needs read-write /dev/fuse");
    FLOATMOUNT_REQUIRE(!FloatmountBinary().empty(),
                       "the floatmount command (" FLOATMOUNT_BINARY ") is not built");
    server_ = std::make_unique<GaneshaServer>();
    ASSERT_TRUE(server_->Start()) << server_->error();
    mnt_ = MakeTestDir("mnt");
    state_ = MakeTestDir("state");
    ASSERT_FALSE(mnt_.empty() || state_.empty()) << ErrnoText();
    notify_ = std::make_unique<NotifySocket>(state_ + "/notify");
    ASSERT_EQ("", notify_->error());
  }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "--- notifications ---\n%s--- agent.log ---\n%s--- ganesha ---\n%s",
                   notify_ ? notify_->log().c_str() : "", Slurp(state_ + "/agent.log").c_str(),
                   server_ ? server_->LogTail(12).c_str() : "");
    }
    if (server_ && server_->running()) kill(server_->pid(), SIGCONT);
    for (pid_t pid : ProcessesNaming(mnt_)) kill(pid, SIGKILL);
    if (agent_ > 0) {
      kill(agent_, SIGKILL);
      WaitExit(agent_, 10s);
    }
    if (writer_ > 0) {
      kill(writer_, SIGKILL);
      WaitExit(writer_, 10s);
    }
    for (int i = 0; i < 3 && !mnt_.empty() && !MountedFsType(mnt_).empty(); ++i) {
      RunCommand({"umount", "-l", mnt_}, "", 10s);
    }
    if (!mnt_.empty() && MountedFsType(mnt_).empty()) rmdir(mnt_.c_str());
    notify_.reset();
    if (!state_.empty() && !KeepTestDirs()) std::filesystem::remove_all(state_);
    server_.reset();
  }

  // Starts `floatmount [-f] -o ... 127.0.0.1:/export MNT` as systemd
  // would: NOTIFY_SOCKET, WATCHDOG_USEC (no WATCHDOG_PID: any pid),
  // stdout and stderr to agent.log, which JOURNAL_STREAM names.
  void StartAgent(bool foreground) {
    const std::string log = state_ + "/agent.log";
    const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(log_fd, 0) << ErrnoText();
    struct stat st;
    ASSERT_EQ(0, fstat(log_fd, &st));
    std::vector<std::string> args = {FloatmountBinary()};
    if (foreground) args.push_back("-f");
    args.insert(
        args.end(),
        {"-o", "port=" + std::to_string(server_->port()) + ",nconnect=4,state_dir=" + state_,
         server_->address() + ":" + server_->pseudo_path(), mnt_});
    std::vector<std::string> env;
    auto ours = [](const std::string& entry) {
      for (const char* name :
           {"NOTIFY_SOCKET=", "WATCHDOG_", "JOURNAL_STREAM=", "FLOATMOUNT_LOG="}) {
        if (entry.rfind(name, 0) == 0) return true;
      }
      return false;
    };
    for (char** e = environ; *e != nullptr; ++e) {
      if (!ours(*e)) env.push_back(*e);
    }
    env.push_back("NOTIFY_SOCKET=" + notify_->path());
    env.push_back("WATCHDOG_USEC=2000000");
    env.push_back("FLOATMOUNT_LOG=info");
    env.push_back("JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
    std::vector<char*> argv_c, env_c;
    for (auto& a : args) argv_c.push_back(a.data());
    for (auto& e : env) env_c.push_back(e.data());
    argv_c.push_back(nullptr);
    env_c.push_back(nullptr);
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    agent_ = fork();
    ASSERT_GE(agent_, 0) << ErrnoText();
    if (agent_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(null_fd, 0);
      dup2(log_fd, 1);
      dup2(log_fd, 2);
      execve(argv_c[0], argv_c.data(), env_c.data());
      _exit(127);
    }
    close(null_fd);
    close(log_fd);
  }

  // Waits for READY=1 and checks that the mount answers at that moment.
  void ExpectReady(Notification* ready = nullptr) {
    auto note = notify_->Until("READY=1", 30s);
    ASSERT_TRUE(note) << "no READY=1 within 30 s";
    EXPECT_EQ("fuse.floatmount", MountedFsType(mnt_)) << "READY=1 before the mount exists";
    const std::string root = mnt_;
    EXPECT_EQ(0, RunInChild(
                     [&root] {
                       struct stat st {};
                       return stat(root.c_str(), &st) == 0 && S_ISDIR(st.st_mode) ? 0 : 1;
                     },
                     10s))
        << "READY=1, but a stat through the mount does not answer";
    if (ready) *ready = *note;
  }

  std::string ServerPath(const std::string& rel) const { return server_->export_dir() + "/" + rel; }

  std::unique_ptr<GaneshaServer> server_;
  std::unique_ptr<NotifySocket> notify_;
  std::string mnt_;
  std::string state_;
  pid_t agent_ = -1;
  pid_t writer_ = -1;
};

TEST_F(LifecycleTest, NotifiesReadyStatusWatchdogAndStoppingInOrder) {
  StartAgent(/*foreground=*/true);
  Notification ready;
  ASSERT_NO_FATAL_FAILURE(ExpectReady(&ready));
  EXPECT_EQ(agent_, ready.sender);
  EXPECT_EQ("", ready.Value("MAINPID")) << "-f: the started process is the main PID";

  auto status = notify_->Until("STATUS=", 15s);
  ASSERT_TRUE(status) << "no STATUS= after READY=1";
  const std::string line = status->Value("STATUS");
  EXPECT_NE(std::string::npos, line.find("127.0.0.1:/export at " + mnt_)) << line;
  EXPECT_NE(std::string::npos, line.find("4 of 4 connections up")) << line;
  EXPECT_NE(std::string::npos, line.find("MB/s")) << line;

  ASSERT_TRUE(notify_->Until("WATCHDOG=1", 5s)) << "no WATCHDOG=1 with WATCHDOG_USEC=2 s";
  ASSERT_TRUE(notify_->Until("WATCHDOG=1", 5s)) << "the watchdog pings only once";

  ASSERT_EQ(0, kill(agent_, SIGTERM));
  auto stopping = notify_->Until("STOPPING=1", 10s);
  ASSERT_TRUE(stopping) << "no STOPPING=1 after SIGTERM";
  EXPECT_NE("", stopping->Value("EXTEND_TIMEOUT_USEC"));
  const std::optional<int> code = WaitExit(agent_, 60s);
  ASSERT_TRUE(code) << "the agent did not exit within 60 s of SIGTERM";
  agent_ = -1;
  EXPECT_EQ(0, *code);
  EXPECT_EQ("", MountedFsType(mnt_));

  // The journal's format: "<priority>message", no timestamps of our own.
  const std::string log = Slurp(state_ + "/agent.log");
  const std::regex journal_line("<[0-7]>[^\\n]*");
  const std::regex timestamp("\\[?20[0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9:.]+");
  std::istringstream lines(log);
  int count = 0;
  for (std::string l; std::getline(lines, l); ++count) {
    EXPECT_TRUE(std::regex_match(l, journal_line)) << "not a journal line: " << l;
    EXPECT_FALSE(std::regex_search(l, timestamp)) << "a timestamp of our own: " << l;
  }
  EXPECT_GT(count, 0) << "FLOATMOUNT_LOG=info, yet nothing was logged";
  EXPECT_NE(std::string::npos, log.find("<6>mounted 127.0.0.1:/export at " + mnt_)) << log;
}

// Writes 1 MiB chunks of TestData(kChunk, i) to `path` until `total` or
// an error, reporting the bytes whose write(2) succeeded (a uint64_t per
// call) on `report`. Runs in a child process.
int WriteChunks(const std::string& path, size_t total, int report) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return 1;
  uint64_t done = 0;
  for (uint64_t i = 0; done < total; ++i) {
    const std::string chunk = TestData(kChunk, i);
    size_t off = 0;
    while (off < chunk.size()) {
      const ssize_t n = write(fd, chunk.data() + off, chunk.size() - off);
      if (n <= 0) return 0;  // the mount went away: expected
      off += static_cast<size_t>(n);
      done += static_cast<uint64_t>(n);
      if (write(report, &done, sizeof(done)) != sizeof(done)) return 2;
    }
  }
  return 0;
}

TEST_F(LifecycleTest, SigtermDuringAWriteCommitsEveryByteThatWasWritten) {
  StartAgent(/*foreground=*/true);
  ASSERT_NO_FATAL_FAILURE(ExpectReady());
  int pipe_fds[2];
  ASSERT_EQ(0, pipe2(pipe_fds, O_CLOEXEC));
  constexpr size_t kTotal = 256 * kChunk;
  const std::string file = mnt_ + "/checkpoint.bin";
  writer_ = fork();
  ASSERT_GE(writer_, 0);
  if (writer_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(pipe_fds[0]);
    _exit(WriteChunks(file, kTotal, pipe_fds[1]));
  }
  close(pipe_fds[1]);

  uint64_t acknowledged = 0;
  bool signalled = false;
  const auto deadline = Clock::now() + 180s;
  for (;;) {
    pollfd p{pipe_fds[0], POLLIN, 0};
    if (poll(&p, 1, 1000) == 0) {
      if (Clock::now() > deadline) break;
      continue;
    }
    uint64_t done = 0;
    if (read(pipe_fds[0], &done, sizeof(done)) != sizeof(done)) break;  // the writer exited
    acknowledged = done;
    if (!signalled && acknowledged >= 64 * kChunk) {
      ASSERT_EQ(0, kill(agent_, SIGTERM));
      signalled = true;
    }
  }
  close(pipe_fds[0]);
  RecordProperty("acknowledged_bytes", std::to_string(acknowledged));
  ASSERT_TRUE(signalled) << "the writer stopped after " << acknowledged << " bytes";
  EXPECT_LT(acknowledged, kTotal) << "SIGTERM did not land during the write";
  const std::optional<int> code = WaitExit(agent_, 120s);
  ASSERT_TRUE(code) << "the agent did not exit within 120 s of SIGTERM";
  agent_ = -1;
  EXPECT_EQ(0, *code);
  EXPECT_EQ("", MountedFsType(mnt_));
  const std::optional<int> writer_code = WaitExit(writer_, 30s);
  writer_ = -1;
  EXPECT_EQ(0, writer_code.value_or(-1)) << "the writer failed on its own";

  // Exactly the acknowledged bytes, in order.
  const std::optional<std::string> on_server = ReadFile(ServerPath("checkpoint.bin"));
  ASSERT_TRUE(on_server) << ErrnoText();
  ASSERT_EQ(acknowledged, on_server->size());
  for (uint64_t i = 0; i * kChunk < acknowledged; ++i) {
    const size_t len = std::min<uint64_t>(kChunk, acknowledged - i * kChunk);
    ASSERT_TRUE(SameBytes(std::string_view(*on_server).substr(i * kChunk, len),
                          std::string_view(TestData(kChunk, i)).substr(0, len)))
        << "chunk " << i;
  }
}

TEST_F(LifecycleTest, SecondSignalForcesTheExitWhileTheServerHangs) {
  StartAgent(/*foreground=*/true);
  ASSERT_NO_FATAL_FAILURE(ExpectReady());
  // A writer leaves 16 MiB written but not committed, and keeps the file open.
  int pipe_fds[2];
  ASSERT_EQ(0, pipe2(pipe_fds, O_CLOEXEC));
  const std::string file = mnt_ + "/stuck.bin";
  writer_ = fork();
  ASSERT_GE(writer_, 0);
  if (writer_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(pipe_fds[0]);
    const int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const std::string data = TestData(16 * kChunk, 7);
    const bool ok = fd >= 0 && write(fd, data.data(), data.size()) == ssize_t(data.size());
    const char byte = ok ? 'y' : 'n';
    (void)!write(pipe_fds[1], &byte, 1);
    pause();
    _exit(0);
  }
  close(pipe_fds[1]);
  char byte = 0;
  ASSERT_EQ(1, read(pipe_fds[0], &byte, 1));
  close(pipe_fds[0]);
  ASSERT_EQ('y', byte) << "the writer could not write 16 MiB";

  ASSERT_EQ(0, kill(server_->pid(), SIGSTOP));
  ASSERT_EQ(0, kill(agent_, SIGTERM));
  ASSERT_TRUE(notify_->Until("STOPPING=1", 10s));
  // Past the drain grace: the agent has aborted the idle mount and hangs
  // in the commit.
  std::this_thread::sleep_for(4s);
  ASSERT_FALSE(WaitExit(agent_, 0ms)) << "the agent exited with the server stopped";
  const auto forced = Clock::now();
  ASSERT_EQ(0, kill(agent_, SIGTERM));
  const std::optional<int> code = WaitExit(agent_, 10s);
  ASSERT_TRUE(code) << "a second SIGTERM did not end the agent within 10 s";
  agent_ = -1;
  EXPECT_LT(Clock::now() - forced, 5s);
  EXPECT_EQ(7, *code) << "kExitIo: written data was not committed";
  EXPECT_EQ("", MountedFsType(mnt_));
  const std::string log = Slurp(state_ + "/agent.log");
  EXPECT_NE(std::string::npos, log.find("<3>SIGTERM during the stop")) << log;
  EXPECT_NE(std::string::npos, log.find("not committed")) << log;
  kill(server_->pid(), SIGCONT);
}

TEST_F(LifecycleTest, ForkedAgentHandsMainPidToItsChild) {
  StartAgent(/*foreground=*/false);
  Notification ready;
  ASSERT_NO_FATAL_FAILURE(ExpectReady(&ready));
  // Sent for the started process (NotifyAccess=main takes it), naming the
  // child that serves as the new main PID.
  EXPECT_EQ(agent_, ready.sender);
  const pid_t daemon = static_cast<pid_t>(std::atoi(ready.Value("MAINPID").c_str()));
  ASSERT_GT(daemon, 0) << ready.text;
  EXPECT_NE(agent_, daemon);
  const std::optional<int> launcher = WaitExit(agent_, 30s);
  agent_ = -1;
  EXPECT_EQ(0, launcher.value_or(-1));

  // From now on the child speaks as itself, and its watchdog is on.
  auto ping = notify_->Until("WATCHDOG=1", 5s);
  ASSERT_TRUE(ping) << "the forked child does not ping the watchdog";
  EXPECT_EQ(daemon, ping->sender);
  ASSERT_EQ(0, kill(daemon, SIGTERM));
  auto stopping = notify_->Until("STOPPING=1", 10s);
  ASSERT_TRUE(stopping);
  EXPECT_EQ(daemon, stopping->sender);
  // Not our child (nor, after the launcher exited, anyone's we can wait
  // for): gone once no live process serves the mount point.
  const std::string mnt = mnt_;
  EXPECT_TRUE(WaitFor([&mnt] { return ProcessesNaming(mnt).empty(); }, 60s))
      << "the daemon did not exit";
  EXPECT_EQ("", MountedFsType(mnt_));
}

// An agent killed outright (systemd's watchdog sends SIGABRT; a crash;
// kill -9) leaves its FUSE mount behind, answering ENOTCONN. The agent
// systemd restarts next must mount there again, not refuse the mount point
// until the unit's start limit (found by tests/package/systemd_boot.sh).
TEST_F(LifecycleTest, AnAgentMountsAgainOverTheDeadMountOfAKilledOne) {
  StartAgent(/*foreground=*/true);
  ASSERT_NO_FATAL_FAILURE(ExpectReady());
  ASSERT_EQ(0, kill(agent_, SIGKILL));
  ASSERT_TRUE(WaitExit(agent_, 10s).has_value());
  agent_ = -1;
  ASSERT_EQ("fuse.floatmount", MountedFsType(mnt_)) << "the killed agent's mount should be left";
  struct statfs sfs {};
  ASSERT_NE(0, statfs(mnt_.c_str(), &sfs));
  ASSERT_EQ(ENOTCONN, errno);

  StartAgent(/*foreground=*/true);
  ASSERT_NO_FATAL_FAILURE(ExpectReady());
  ASSERT_TRUE(WriteFile(ServerPath("after-restart"), "back"));
  EXPECT_EQ(ReadFile(mnt_ + "/after-restart").value_or(""), "back");
  EXPECT_NE(Slurp(state_ + "/agent.log").find("detached the mount of a floatmount agent that is gone"),
            std::string::npos);
  ASSERT_EQ(0, kill(agent_, SIGTERM));
  EXPECT_TRUE(WaitExit(agent_, 60s).has_value());
  agent_ = -1;
}

}  // namespace
}  // namespace floatmount::testing
