// Killable waits on a hard mount (issue 14, fuse/killable.h): with the
// server frozen (SIGSTOP), processes blocked in read, write+fsync, open and
// stat on the mount are SIGKILLed and must be gone within about a second,
// as with the kernel NFS client; a harmless signal first must not make
// them fail, nor keep a later SIGKILL from working. After the server
// resumes, the mount works and data fsynced before the freeze is intact.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;

class KillableTest : public MountTest {
 protected:
  KillableTest() { test_timeout_ = std::chrono::seconds(240); }

  void TearDown() override {
    if (frozen_) kill(server().pid(), SIGCONT);
    MountTest::TearDown();
  }

  // Starts `body` in a child (its exit code is what it returns).
  pid_t Start(const std::function<int()>& body) {
    const pid_t pid = fork();
    if (pid == 0) {
      signal(SIGUSR1, [](int) {});  // a handled, harmless signal
      _exit(body());
    }
    return pid;
  }

  // True if `pid` is still running (blocked) after `wait`.
  static bool StillRunning(pid_t pid, std::chrono::milliseconds wait) {
    std::this_thread::sleep_for(wait);
    int status = 0;
    return waitpid(pid, &status, WNOHANG) == 0;
  }

  // Reaps `pid`; how long that took, or nullopt if not within `bound`.
  static std::optional<std::chrono::milliseconds> Reap(pid_t pid, std::chrono::milliseconds bound) {
    const auto start = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - start < bound) {
      int status = 0;
      if (waitpid(pid, &status, WNOHANG) == pid) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - start);
      }
      std::this_thread::sleep_for(10ms);
    }
    return std::nullopt;
  }

  bool frozen_ = false;
};

TEST_F(KillableTest, BlockedProcessesDieOnSigkillWhileTheServerIsFrozen) {
  FLOATMOUNT_REQUIRE(!nfs3(), "NFSv3 runs through libnfs with its own waits");
  const std::string before = TestData(1 << 20, 5);
  {
    UniqueFd fd(open(Path("kept").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644));
    ASSERT_TRUE(fd.ok()) << ErrnoText();
    ASSERT_TRUE(PwriteAll(fd.get(), before, 0));
    ASSERT_SYSCALL(fsync(fd.get()));
  }
  // Written on the server directly: never cached by the mount.
  ASSERT_TRUE(WriteFile(ServerPath("cold"), TestData(4 << 20, 6)));

  ASSERT_EQ(0, kill(server().pid(), SIGSTOP));
  frozen_ = true;
  const std::string cold = Path("cold"), fresh = Path("fresh"), missing = Path("missing");
  const std::string written = Path("written");
  struct Blocked {
    const char* what;
    pid_t pid;
  };
  std::vector<Blocked> blocked = {
      {"read", Start([&cold] {
         const int fd = open(cold.c_str(), O_RDONLY | O_DIRECT);
         if (fd < 0) return 10;
         void* aligned = nullptr;
         if (posix_memalign(&aligned, 4096, 1 << 20) != 0) return 11;
         return pread(fd, aligned, 1 << 20, 0) >= 0 ? 0 : 12;
       })},
      {"write+fsync", Start([&written] {
         const int fd = open(written.c_str(), O_CREAT | O_WRONLY, 0644);
         if (fd < 0) return 20;  // the create itself may be what blocks
         const std::string data(1 << 20, 'w');
         if (write(fd, data.data(), data.size()) < 0) return 21;
         return fsync(fd) == 0 ? 0 : 22;
       })},
      {"open", Start([&fresh] { return open(fresh.c_str(), O_CREAT | O_RDWR, 0644) >= 0 ? 0 : 30; })},
      {"stat", Start([&missing] {
         struct stat st;
         return stat(missing.c_str(), &st) == 0 ? 0 : 40;
       })},
  };
  for (const Blocked& b : blocked) {
    ASSERT_GT(b.pid, 0) << ErrnoText();
  }
  // They are stuck on the frozen server ...
  std::this_thread::sleep_for(Scaled(2s));
  for (const Blocked& b : blocked) {
    EXPECT_TRUE(StillRunning(b.pid, 0ms)) << b.what << " did not block: the test proves nothing";
  }
  // ... a harmless signal (FUSE_INTERRUPT, not fatal) leaves them waiting ...
  for (const Blocked& b : blocked) kill(b.pid, SIGUSR1);
  std::this_thread::sleep_for(500ms);
  for (const Blocked& b : blocked) {
    EXPECT_TRUE(StillRunning(b.pid, 0ms)) << b.what << " ended on a handled signal";
  }
  // ... and SIGKILL ends them within about a second.
  for (const Blocked& b : blocked) kill(b.pid, SIGKILL);
  for (const Blocked& b : blocked) {
    const auto took = Reap(b.pid, Scaled(std::chrono::milliseconds(1500)));
    EXPECT_TRUE(took.has_value()) << b.what << ": still blocked after SIGKILL";
    if (took) std::printf("%s: gone %lld ms after SIGKILL\n", b.what, (long long)took->count());
  }
  for (const Blocked& b : blocked) {
    if (waitpid(b.pid, nullptr, WNOHANG) == 0) kill(b.pid, SIGKILL);
  }

  ASSERT_EQ(0, kill(server().pid(), SIGCONT));
  frozen_ = false;
  // The mount works again and nothing fsynced before the freeze was lost.
  const auto kept = ReadFile(Path("kept"));
  ASSERT_TRUE(kept.has_value()) << ErrnoText();
  EXPECT_TRUE(SameBytes(*kept, before));
  ASSERT_TRUE(WriteFile(Path("after"), "after the freeze"));
  EXPECT_EQ(ReadFile(ServerPath("after")).value_or(""), "after the freeze");
  for (const Blocked& b : blocked) waitpid(b.pid, nullptr, 0);
}

}  // namespace
}  // namespace floatmount::testing
