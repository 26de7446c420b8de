// Coherence between clients under locks (issue 20): two floatmount mounts
// of one export stand for two nodes; real processes on each take locks and
// update shared data. Every NFS client keeps the rule these programs rely
// on: a granted lock revalidates the file and drops cached data another
// node changed; an unlock first sends and commits the dirty data. Without
// it the counters below end short (SQLite lost a quarter of its updates).
//
// Each test runs kWorkers processes per mount, each making kRounds updates,
// and checks the exact total on the server.
#include <unistd.h>

#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "tests/integration/lock_workloads.h"
#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

constexpr int kWorkers = 2;  // per mount
constexpr int kRounds = 100;  // per worker
constexpr int kTotal = 2 * kWorkers * kRounds;

class LockCoherenceTest : public MountTest {
 protected:
  LockCoherenceTest() { test_timeout_ = std::chrono::seconds(300); }

  // Runs fn(root) in kWorkers processes on each of the two mounts at once.
  ::testing::AssertionResult RunOnBothMounts(const std::function<int(const std::string&)>& fn) {
    FloatMount* other = MountSecond();
    if (other == nullptr) return ::testing::AssertionFailure() << "no second mount";
    return RunWorkers({Path(""), other->Path("")}, kWorkers, fn);
  }
};

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
  ASSERT_TRUE(RunOnBothMounts([](const std::string& root) { return ByteRangeLockedCounter(root, kRounds); }));
  EXPECT_EQ(ReadFile(ServerPath("counter")).value_or(""), Counter(kTotal));
}

// The lock-file protocol of shell scripts and job queues: flock a lock
// file, then open, update and close the data file, then unlock.
TEST_F(LockCoherenceTest, FlockLockFileProtocolIsExact) {
  ASSERT_TRUE(WriteFile(Path("queue.lock"), ""));
  ASSERT_TRUE(WriteFile(Path("queue.next"), Counter(0)));
  ASSERT_TRUE(RunOnBothMounts([](const std::string& root) { return FlockLockFileCounter(root, kRounds); }));
  EXPECT_EQ(ReadFile(ServerPath("queue.next")).value_or(""), Counter(kTotal));
}

}  // namespace
}  // namespace floatmount::testing
