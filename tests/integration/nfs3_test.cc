// What is NFSv3's own (the rest of the POSIX suite runs over NFSv3 too, see
// tests/CMakeLists.txt): locks fail with ENOLCK and say why once, vers=auto
// picks 4.1 when the server has it and falls back to 3 when it does not,
// and the mount's failures over NFSv3 are one line with their exit code.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/harness/ganesha_server.h"
#include "tests/harness/integration_env.h"
#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// A server and a foreground agent (`floatmount -f`, log at info to a file),
// so a test can read what the agent logged.
class Nfs3Test : public ::testing::Test {
 protected:
  void StartServer(GaneshaOptions options) {
    const std::string missing = GaneshaServer::MissingPrerequisite(options);
    FLOATMOUNT_REQUIRE(missing.empty(), missing);
    FLOATMOUNT_REQUIRE(access("/dev/fuse", R_OK | W_OK) == 0, "needs read-write /dev/fuse");
    server_ = std::make_unique<GaneshaServer>(options);
    ASSERT_TRUE(server_->Start()) << server_->error();
    mnt_ = MakeTestDir("mnt");
    state_ = MakeTestDir("state");
    ASSERT_FALSE(mnt_.empty() || state_.empty()) << ErrnoText();
  }

  void TearDown() override {
    if (HasFailure()) {
      std::fprintf(stderr, "--- agent.log ---\n%s--- ganesha ---\n%s", Log().c_str(),
                   server_ ? server_->LogTail(12).c_str() : "");
    }
    if (agent_ > 0) {
      kill(agent_, SIGTERM);
      int status = 0;
      if (!WaitFor([&] { return waitpid(agent_, &status, WNOHANG) == agent_; }, 10s)) {
        kill(agent_, SIGKILL);
        waitpid(agent_, nullptr, 0);
      }
    }
    for (int i = 0; i < 3 && !mnt_.empty() && !MountedFsType(mnt_).empty(); ++i) {
      RunCommand({"umount", "-l", mnt_}, "", 10s);
    }
    if (!mnt_.empty() && MountedFsType(mnt_).empty()) rmdir(mnt_.c_str());
    if (!state_.empty() && !KeepTestDirs()) std::filesystem::remove_all(state_);
    server_.reset();
  }

  std::string Options(const std::string& extra) const {
    std::string o = "port=" + std::to_string(server_->port()) + ",nconnect=2,state_dir=" + state_;
    if (server_->mount_port() != 0) o += ",mountport=" + std::to_string(server_->mount_port());
    return extra.empty() ? o : o + "," + extra;
  }

  // Starts `floatmount -f -o OPTIONS 127.0.0.1:/export MNT` and waits for
  // the mount.
  ::testing::AssertionResult MountForeground(const std::string& extra) {
    const std::string log = state_ + "/agent.log";
    std::vector<std::string> args = {FloatmountBinary(), "-f", "-o", Options(extra),
                                     server_->address() + ":" + server_->pseudo_path(), mnt_};
    const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    agent_ = fork();
    if (agent_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(null_fd, 0);
      dup2(log_fd, 1);
      dup2(log_fd, 2);
      setenv("FLOATMOUNT_LOG", "info", 1);
      unsetenv("JOURNAL_STREAM");
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    close(null_fd);
    if (!WaitFor([&] { return MountedFsType(mnt_) == "fuse.floatmount"; }, 30s)) {
      return ::testing::AssertionFailure() << "not mounted within 30 s:\n" << Log();
    }
    return ::testing::AssertionSuccess();
  }

  // Stops the agent as systemd does (SIGTERM: unmount, commit, exit) and
  // reaps it; its exit code. (`floatmount unmount` would wait for our
  // unreaped child.)
  int Unmount() {
    kill(agent_, SIGTERM);
    int status = 0;
    if (!WaitFor([&] { return waitpid(agent_, &status, WNOHANG) == agent_; }, 60s)) {
      ADD_FAILURE() << "the agent did not exit within 60 s of SIGTERM";
      return -1;
    }
    agent_ = -1;
    EXPECT_EQ(MountedFsType(mnt_), "");
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string Log() const { return state_.empty() ? "" : Slurp(state_ + "/agent.log"); }
  std::string Status() const {
    return RunCommand({FloatmountBinary(), "status", mnt_}, "", 20s).output;
  }

  std::unique_ptr<GaneshaServer> server_;
  std::string mnt_;
  std::string state_;
  pid_t agent_ = -1;
};

GaneshaOptions WithNfs3() {
  GaneshaOptions o;
  o.enable_nfsv3 = true;
  return o;
}

TEST_F(Nfs3Test, LocksFailWithEnolckAndTheLogSaysWhyOnce) {
  ASSERT_NO_FATAL_FAILURE(StartServer(WithNfs3()));
  ASSERT_TRUE(MountForeground("vers=3"));
  const std::string path = mnt_ + "/locked";
  const int fd = open(path.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0) << ErrnoText();
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  EXPECT_EQ(fcntl(fd, F_SETLK, &lock), -1);
  EXPECT_EQ(errno, ENOLCK) << ErrnoText();
  EXPECT_EQ(flock(fd, LOCK_EX | LOCK_NB), -1);
  EXPECT_EQ(errno, ENOLCK) << ErrnoText();
  // The file itself works.
  ASSERT_EQ(write(fd, "data", 4), 4);
  EXPECT_EQ(close(fd), 0);
  EXPECT_EQ(Slurp(server_->export_dir() + "/locked"), "data");
  EXPECT_NE(Status().find("NFSv3"), std::string::npos) << Status();
  EXPECT_EQ(Unmount(), 0);
  EXPECT_EQ(Count(Log(), "NLM"), 1u) << Log();
}

TEST_F(Nfs3Test, AutoFallsBackToNfs3WhenTheServerHasNo41) {
  GaneshaOptions options = WithNfs3();
  options.minor_versions = {0};  // NFSv4.0 and NFSv3: no 4.1
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  ASSERT_TRUE(MountForeground("vers=auto"));
  const std::string status = Status();
  EXPECT_NE(status.find("NFSv3"), std::string::npos) << status;
  ASSERT_TRUE(WriteFile(mnt_ + "/over-v3", "three"));
  EXPECT_EQ(Slurp(server_->export_dir() + "/over-v3"), "three");
  EXPECT_EQ(Unmount(), 0);
  const std::string log = Log();
  EXPECT_EQ(Count(log, "vers=auto"), 1u) << log;
  EXPECT_NE(log.find("mounting with NFSv3"), std::string::npos) << log;
  EXPECT_NE(log.find("NFSv3"), std::string::npos) << log;
}

TEST_F(Nfs3Test, AutoUsesNfs41WhenTheServerHasIt) {
  ASSERT_NO_FATAL_FAILURE(StartServer(WithNfs3()));
  ASSERT_TRUE(MountForeground("vers=auto"));
  const std::string status = Status();
  EXPECT_NE(status.find("session"), std::string::npos) << status;
  EXPECT_EQ(status.find("NFSv3"), std::string::npos) << status;
  EXPECT_EQ(Unmount(), 0);
  EXPECT_EQ(Log().find("vers=auto"), std::string::npos) << Log();
  EXPECT_NE(Log().find("NFSv4.1"), std::string::npos) << Log();
}

// One line, the exit code, nothing mounted.
void ExpectFailure(const CommandResult& r, int code, const std::string& mnt,
                   const std::string& words) {
  EXPECT_EQ(r.exit_code, code) << r.Describe();
  std::string line = r.output;
  while (!line.empty() && line.back() == '\n') line.pop_back();
  EXPECT_EQ(line.find('\n'), std::string::npos) << r.Describe();
  EXPECT_NE(line.find(words), std::string::npos) << r.Describe();
  EXPECT_EQ(MountedFsType(mnt), "") << r.Describe();
}

TEST_F(Nfs3Test, MountFailuresOverNfs3HaveTheirExitCodes) {
  ASSERT_NO_FATAL_FAILURE(StartServer(WithNfs3()));
  auto mount = [&](const std::string& extra, const std::string& path) {
    return RunCommand({FloatmountBinary(), "-o", Options(extra), "127.0.0.1:" + path, mnt_}, "",
                      60s);
  };
  // ganesha's MOUNT answers ACCES for a path it does not export.
  ExpectFailure(mount("vers=3", "/no/such/export"), 5, mnt_, "no such export");
  // MOUNT asked on a port where nothing listens.
  ExpectFailure(RunCommand({FloatmountBinary(), "-o",
                            "vers=3,mountport=1,port=" + std::to_string(server_->port()) +
                                ",state_dir=" + state_,
                            "127.0.0.1:/export", mnt_},
                           "", 60s),
                3, mnt_, "MOUNT");
  ExpectFailure(mount("vers=2", "/export"), 2, mnt_, "vers");
}

TEST_F(Nfs3Test, Nfs3AgainstAServerWithoutNfs3FailsClearly) {
  ASSERT_NO_FATAL_FAILURE(StartServer(GaneshaOptions{}));
  // MOUNT "found" on the NFSv4 port: the program is not there.
  const CommandResult r = RunCommand(
      {FloatmountBinary(), "-o",
       Options("vers=3,mountport=" + std::to_string(server_->port())), "127.0.0.1:/export", mnt_},
      "", 60s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  ExpectFailure(r, r.exit_code, mnt_, "NFSv3");
}

}  // namespace
}  // namespace floatmount::testing

namespace floatmount::testing {
namespace {

// soft: with the server gone, a call fails after timeo * retrans instead of
// waiting for it; the agent stays up.
TEST_F(Nfs3Test, SoftMountCallsFailWhenTheServerIsGone) {
  ASSERT_NO_FATAL_FAILURE(StartServer(WithNfs3()));
  ASSERT_TRUE(MountForeground("vers=3,soft,timeo=10,retrans=2,actimeo=0"));
  ASSERT_TRUE(WriteFile(mnt_ + "/before", "x"));
  server_->Kill();
  const std::string path = mnt_ + "/after-the-server-died";
  const auto started = std::chrono::steady_clock::now();
  const int rc = RunInChild(
      [&path] {
        struct stat st {};
        return stat(path.c_str(), &st) == 0 ? 0 : errno;
      },
      60s);
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(rc == ETIMEDOUT || rc == EIO) << "stat returned " << rc;
  EXPECT_LT(took, 30s);
  EXPECT_EQ(kill(agent_, 0), 0) << "the agent died";
}

}  // namespace
}  // namespace floatmount::testing
