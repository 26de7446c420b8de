// Coherence between clients under locks (issue 20): two floatmount mounts
// of one export stand for two nodes; real processes on each take locks and
// update shared data. Every NFS client keeps the rule these programs rely
// on: a granted lock revalidates the file and drops cached data another
// node changed; an unlock first sends and commits the dirty data. Without
// it the counters below end short (SQLite lost a quarter of its updates).
//
// Each test runs kWorkers processes per mount, each making kRounds updates,
// and checks the exact total on the server.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

constexpr int kWorkers = 2;  // per mount
constexpr int kRounds = 100;  // per worker
constexpr int kTotal = 2 * kWorkers * kRounds;

class LockCoherenceTest : public MountTest {
 protected:
  LockCoherenceTest() { test_timeout_ = std::chrono::seconds(300); }

  // Runs fn(root) in kWorkers processes on each of the two mounts at once;
  // true if every one exited 0.
  ::testing::AssertionResult RunOnBothMounts(const std::function<int(const std::string&)>& fn) {
    FloatMount* other = MountSecond();
    if (other == nullptr) return ::testing::AssertionFailure() << "no second mount";
    const std::vector<std::string> roots = {Path(""), other->Path("")};
    std::vector<pid_t> pids;
    for (const std::string& root : roots) {
      for (int i = 0; i < kWorkers; ++i) {
        const pid_t pid = fork();
        if (pid == 0) _exit(fn(root));
        if (pid < 0) return ::testing::AssertionFailure() << "fork: " << ErrnoText();
        pids.push_back(pid);
      }
    }
    std::string failures;
    for (pid_t pid : pids) {
      int status = 0;
      if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        failures += " pid " + std::to_string(pid) + " status " + std::to_string(status);
      }
    }
    if (!failures.empty()) return ::testing::AssertionFailure() << "workers failed:" << failures;
    return ::testing::AssertionSuccess();
  }
};

// A counter in 8 decimal digits at the start of a file.
std::string Counter(long v) {
  char text[16];
  std::snprintf(text, sizeof(text), "%08ld", v);
  return text;
}

// SQLite with a rollback journal, each process keeping the database open
// across its transactions (so close-to-open never revalidates it).
TEST_F(LockCoherenceTest, SqliteCounterOnTwoMountsIsExact) {
  FLOATMOUNT_REQUIRE(!FindOnPath("sqlite3").empty(), "sqlite3 not found (apt-get install sqlite3)");
  const std::string db = Path("counter.db");
  ASSERT_EQ(RunCommand({"sqlite3", "-bail", db,
                        "PRAGMA journal_mode=DELETE; CREATE TABLE t(v INTEGER);"
                        " INSERT INTO t VALUES(0);"})
                .exit_code,
            0);
  const std::string script = ServerPath("") + "/../transactions.sql";
  {
    std::ofstream sql(script);
    sql << ".timeout 120000\n";
    for (int i = 0; i < kRounds; ++i) sql << "BEGIN IMMEDIATE; UPDATE t SET v = v + 1; COMMIT;\n";
  }
  ASSERT_TRUE(RunOnBothMounts([&script](const std::string& root) {
    const std::string path = root + "/counter.db";
    const std::string read = ".read " + script;
    execlp("sqlite3", "sqlite3", "-bail", path.c_str(), read.c_str(), static_cast<char*>(nullptr));
    return 127;
  }));
  const CommandResult total =
      RunCommand({"sqlite3", "-readonly", ServerPath("counter.db"), "SELECT v FROM t;"});
  EXPECT_EQ(total.output, std::to_string(kTotal) + "\n") << "updates lost between the mounts";
  EXPECT_EQ(RunCommand({"sqlite3", "-readonly", ServerPath("counter.db"), "PRAGMA integrity_check;"})
                .output,
            "ok\n");
}

// A read-modify-write under a byte-range lock on a file kept open.
TEST_F(LockCoherenceTest, ByteRangeLockedCounterOnAnOpenFileIsExact) {
  ASSERT_TRUE(WriteFile(Path("counter"), Counter(0)));
  ASSERT_TRUE(RunOnBothMounts([](const std::string& root) {
    const int fd = open((root + "/counter").c_str(), O_RDWR);
    if (fd < 0) return 10;
    char warm[8];
    if (pread(fd, warm, 8, 0) != 8) return 10;  // the page is cached from here on
    for (int i = 0; i < kRounds; ++i) {
      struct flock lk {};
      lk.l_type = F_WRLCK;
      lk.l_whence = SEEK_SET;
      lk.l_start = 0;
      lk.l_len = 8;
      if (fcntl(fd, F_SETLKW, &lk) != 0) return 11;
      char text[9] = {};
      if (pread(fd, text, 8, 0) != 8) return 12;
      const std::string next = Counter(std::strtol(text, nullptr, 10) + 1);
      if (pwrite(fd, next.data(), 8, 0) != 8) return 13;
      lk.l_type = F_UNLCK;
      if (fcntl(fd, F_SETLK, &lk) != 0) return 14;
      // Let the others in (a waiter polls every 50 ms): the lock must pass
      // between the mounts, not stay on one until its workers are done.
      usleep(60000);
    }
    return close(fd) == 0 ? 0 : 15;
  }));
  EXPECT_EQ(ReadFile(ServerPath("counter")).value_or(""), Counter(kTotal));
}

// The lock-file protocol of shell scripts and job queues: flock a lock
// file, then open, update and close the data file, then unlock.
TEST_F(LockCoherenceTest, FlockLockFileProtocolIsExact) {
  ASSERT_TRUE(WriteFile(Path("queue.lock"), ""));
  ASSERT_TRUE(WriteFile(Path("queue.next"), Counter(0)));
  ASSERT_TRUE(RunOnBothMounts([](const std::string& root) {
    const int lock_fd = open((root + "/queue.lock").c_str(), O_RDONLY);
    if (lock_fd < 0) return 10;
    for (int i = 0; i < kRounds; ++i) {
      if (flock(lock_fd, LOCK_EX) != 0) return 11;
      const int fd = open((root + "/queue.next").c_str(), O_RDWR);
      if (fd < 0) return 12;
      char text[9] = {};
      if (pread(fd, text, 8, 0) != 8) return 13;
      const std::string next = Counter(std::strtol(text, nullptr, 10) + 1);
      if (pwrite(fd, next.data(), 8, 0) != 8) return 14;
      if (close(fd) != 0) return 15;
      if (flock(lock_fd, LOCK_UN) != 0) return 16;
      usleep(60000);  // let the others in
    }
    return close(lock_fd) == 0 ? 0 : 17;
  }));
  EXPECT_EQ(ReadFile(ServerPath("queue.next")).value_or(""), Counter(kTotal));
}

}  // namespace
}  // namespace floatmount::testing
