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

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iostream>
#include <string>
#include <vector>

#include "tests/integration/fault_checks.h"
#include "tests/integration/lock_workloads.h"
#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;

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

// The same two protocols at once while the server crashes and restarts
// again and again with a grace period, each crash while a process holds a
// lock (CounterWithLongHolds: held 6 s, with a marker file meanwhile): each
// mount reclaims the locks its processes hold (LOCK reclaim=true, RFC 8881
// 8.4.2.1) and the opens under them, waits out the grace period for new
// ones, and sends again what the crash lost. A lock lost on the way is a
// worker's EIO; a lock assumed but not held is taken by the other mount's
// waiter once the grace period is over, and an update is lost from the
// counters: either fails the test. The independent checks found locks lost
// silently after a restart. Broken on purpose (no LOCK reclaim, the ranges
// assumed held), the workers' next locks failed with EIO and the counters
// ended short.
//
// A crash comes only once both counters moved on after the last one (the
// grace period is over): a crash within a grace period starts the next one
// before the first ended, and ganesha, which ends a grace period early once
// every client it remembers reclaimed, then remembers each client twice
// and never does (crashes every 3 s with its 90 s default: the workers
// waited in LOCK until the test's timeout). The lease is 6 s.
//   FLOATMOUNT_LOCK_RESTART_ROUNDS  updates per worker; the test runs only when
//                                   it is set (20: 5 long holds each, about 10
//                                   crashes, 65 s; 40: 20 crashes, 126 s)
// Not in CI yet: its last find (a LOCK parked across a recovery sent with
// the old lock stateid, EIO at the 5th crash in CI's run and under two CPU
// hogs here) is fixed and it passed 3 runs of 3 under the hogs since; it
// joins CI once it has passed more runs.
class LocksUnderRestartsTest : public LockCoherenceTest {
 protected:
  LocksUnderRestartsTest() {
    server_options_.graceless = false;
    server_options_.lease_lifetime_s = 6;
    // Ended early once both mounts reclaimed (ganesha checks every half
    // lease); long enough for a reclaim slowed down by load.
    server_options_.grace_period_s = 20;
    // A crash every few seconds is a new client ID and session each time.
    mount_options_ = kManySessions;
  }
  // Both counters as the server has them, as one number that only grows.
  long Progress() {
    long sum = 0;
    for (const char* name : {"counter", "queue.next"}) {
      sum += std::strtol(ReadFile(ServerPath(name)).value_or("0").c_str(), nullptr, 10);
    }
    return sum;
  }
};

TEST_F(LocksUnderRestartsTest, LockedCountersOnTwoMountsStayExactAcrossServerCrashes) {
  if (knfsd() || kernel_client()) GTEST_SKIP() << "ganesha only (GaneshaServer::Kill)";
  const int rounds = static_cast<int>(EnvNumber("FLOATMOUNT_LOCK_RESTART_ROUNDS", 0));
  if (rounds == 0) GTEST_SKIP() << "a manual run: FLOATMOUNT_LOCK_RESTART_ROUNDS=20 (see above)";
  ASSERT_TRUE(WriteFile(Path("counter"), Counter(0)));
  ASSERT_TRUE(WriteFile(Path("queue.lock"), ""));
  ASSERT_TRUE(WriteFile(Path("queue.next"), Counter(0)));
  FloatMount* other = MountSecond(kManySessions);
  ASSERT_NE(other, nullptr);
  char marks[] = "/tmp/floatmount-holds-XXXXXX";
  ASSERT_NE(mkdtemp(marks), nullptr) << ErrnoText();
  auto marker = [&marks](int i) { return std::string(marks) + "/" + std::to_string(i); };
  // Per mount: one process on the byte-range counter, one on the lock file.
  auto run = std::async(std::launch::async, [&] {
    return RunNumberedWorkers({Path(""), other->Path("")}, 2,
                              [rounds, &marker](const std::string& root, int i) {
                                return CounterWithLongHolds(root, i % 2 == 0, rounds, marker(i));
                              });
  });
  int crashes = 0;
  long at_crash = -1;
  auto since = std::chrono::steady_clock::now();
  bool stuck = false;
  while (run.wait_for(50ms) != std::future_status::ready) {
    if (Progress() < at_crash + 2) {
      // Reclaim, the grace period and a lock handed over between the mounts
      // take seconds; a minute without an update is a wedge.
      if (std::chrono::steady_clock::now() - since > 60s) {
        stuck = true;
        break;
      }
      continue;
    }
    bool held = false;
    for (int i = 0; i < 4; ++i) held = held || access(marker(i).c_str(), F_OK) == 0;
    if (!held) continue;
    server().Kill();
    ASSERT_TRUE(server().Restart()) << server().error();
    ++crashes;
    at_crash = Progress();
    since = std::chrono::steady_clock::now();
  }
  EXPECT_FALSE(stuck) << "no update for a minute after crash " << crashes << " (at " << at_crash
                      << " updates of " << 4 * rounds << ")";
  if (stuck) {
    // Free the workers: their blocked calls fail once the agents are gone.
    other->Abort();
    mount().Abort();
  }
  const ::testing::AssertionResult workers = run.get();
  std::filesystem::remove_all(marks);
  std::cout << crashes << " server crashes under held locks during " << 2 * rounds
            << " updates of each counter" << std::endl;
  EXPECT_TRUE(workers) << "after " << crashes << " crashes";
  EXPECT_EQ(ReadFile(ServerPath("counter")).value_or(""), Counter(2 * rounds))
      << "byte-range locked updates lost across " << crashes << " crashes";
  EXPECT_EQ(ReadFile(ServerPath("queue.next")).value_or(""), Counter(2 * rounds))
      << "flock-protected updates lost across " << crashes << " crashes";
  EXPECT_GT(crashes, 0) << "no crash under a held lock";
  ExpectNoSessionStorm(mount());
  ExpectNoSessionStorm(*other);
}

}  // namespace
}  // namespace floatmount::testing
