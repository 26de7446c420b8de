// floatmount against the Linux kernel NFS server (knfsd), a second server
// implementation beside nfs-ganesha: the real `floatmount` command mounts
// the export of a QEMU guest (tests/harness/knfsd_server.h) over NFSv4.1
// and the tests check data, namespace operations and locks both through the
// mount and, where it matters, inside the guest (RunInGuest).
//
// Booting the guest is the expensive part (~10 s, more on a busy machine),
// so the suite boots it once (SetUpTestSuite) and each test mounts it anew
// and works in its own directory. ctest runs the suite as one test
// (tests/CMakeLists.txt), not one process per case, for the same reason.
//
// Whatever fails here and passes against ganesha is a floatmount bug until
// shown otherwise.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/harness/integration_env.h"
#include "tests/harness/knfsd_server.h"
#include "tests/integration/lock_workloads.h"
#include "tests/integration/mount_fixture.h"
#include "tests/integration/shared_file_workload.h"
#include "tests/integration/torture_run.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;

bool DropCaches() {
  sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  return bool(f.flush());
}

class KnfsdTest : public ::testing::Test {
 protected:
  // The one guest of the suite; null if it could not be had (why in
  // missing_ or boot_error_, reported by every test).
  static void SetUpTestSuite() {
    missing_ = KnfsdServer::MissingPrerequisite();
    if (!missing_.empty()) return;
    server_ = new KnfsdServer();
    const auto start = std::chrono::steady_clock::now();
    if (!server_->Start()) {
      boot_error_ = server_->error();
      delete server_;
      server_ = nullptr;
      return;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "knfsd guest booted in %.1f s on 127.0.0.1:%u (%s)\n", seconds,
                 server_->port(), server_->dir().c_str());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    FLOATMOUNT_REQUIRE(missing_.empty(), missing_);
    ASSERT_NE(server_, nullptr) << "the knfsd guest did not boot: " << boot_error_;
    ASSERT_TRUE(server_->running()) << "the knfsd guest is gone:\n" << server_->LogTail();
    FLOATMOUNT_REQUIRE(access("/dev/fuse", R_OK | W_OK) == 0, "needs /dev/fuse (root)");
    FLOATMOUNT_REQUIRE(!FloatmountBinary().empty(), "floatmount binary not found");
    umask(022);
    ASSERT_TRUE(mount_.Mount(MountConfig()));
    // Each test works in its own directory of the shared export.
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    ASSERT_SYSCALL(mkdir(Path("").c_str(), 0755));
  }

  void TearDown() override {
    if (mount_.mounted()) {
      EXPECT_TRUE(mount_.Unmount());
    }
  }

  // A mount of the guest's export over NFSv4.1 (each test's, or a second one).
  static FloatMount::Config MountConfig() {
    FloatMount::Config config;
    config.server = server_->address() + ":" + server_->pseudo_path();
    config.port = server_->port();
    config.extra = "vers=4.1";
    return config;
  }

  // `rel` in the test's directory, on the mount and in the guest.
  std::string Path(const std::string& rel) const {
    return mount_.Path(name_) + (rel.empty() ? "" : "/" + rel);
  }
  std::string GuestPath(const std::string& rel) const {
    return server_->guest_export_dir() + "/" + name_ + (rel.empty() ? "" : "/" + rel);
  }
  // RunInGuest that fails the test on a non-zero exit; returns the output.
  std::string Guest(const std::string& command) {
    std::string output;
    const int rc = server_->RunInGuest(command, &output);
    EXPECT_EQ(rc, 0) << "in the guest: " << command << "\n" << output;
    return output;
  }

  static KnfsdServer* server_;
  static std::string missing_;
  static std::string boot_error_;
  FloatMount mount_;
  std::string name_;
};

KnfsdServer* KnfsdTest::server_ = nullptr;
std::string KnfsdTest::missing_;
std::string KnfsdTest::boot_error_;

TEST_F(KnfsdTest, WrittenFileReadsBackAfterDropCaches) {
  const std::string data = TestData(5 * 1024 * 1024 + 123, 16);
  {
    UniqueFd fd(open(Path("big").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644));
    ASSERT_TRUE(fd.ok()) << ErrnoText();
    ASSERT_TRUE(PwriteAll(fd.get(), data, 0));
    ASSERT_SYSCALL(fsync(fd.get()));
    ASSERT_SYSCALL(fd.Close());
  }
  // The server has every byte: its size and checksum match ours.
  char expected_sum[64];
  {
    const std::string local = MakeTestDir("knfsd-data");
    ASSERT_FALSE(local.empty());
    ASSERT_TRUE(WriteFile(local + "/big", data));
    const CommandResult sum = RunCommand({"md5sum", local + "/big"});
    RunCommand({"rm", "-rf", local});
    ASSERT_EQ(sum.exit_code, 0) << sum.Describe();
    std::snprintf(expected_sum, sizeof expected_sum, "%.32s", sum.output.c_str());
  }
  const std::string guest = Guest("wc -c < " + GuestPath("big") + "; md5sum " + GuestPath("big"));
  EXPECT_NE(guest.find(std::to_string(data.size()) + "\n"), std::string::npos) << guest;
  EXPECT_NE(guest.find(expected_sum), std::string::npos) << guest;

  ASSERT_TRUE(DropCaches());
  const auto back = ReadFile(Path("big"));
  ASSERT_TRUE(back.has_value()) << ErrnoText();
  EXPECT_TRUE(SameBytes(*back, data));
}

// The kernel's own NFSv4.1 client inside the guest, mounting the guest's
// export over its loopback: the reference client of issue 16 item 3. It
// sees what floatmount wrote and floatmount sees what it wrote, and its
// per-operation counts (/proc/self/mountstats) are printed for the
// comparison with floatmount's round trips.
TEST_F(KnfsdTest, KernelClientInTheGuestSharesTheExport) {
  const std::string kernel_mnt = "/mnt/kernel-" + name_;
  const std::string dir = kernel_mnt + "/" + name_;
  Guest("mkdir -p " + kernel_mnt + " && mount -t nfs4 -o " +
        "vers=4.1,addr=127.0.0.1,clientaddr=127.0.0.1 127.0.0.1:/ " + kernel_mnt);
  ASSERT_FALSE(HasFailure()) << "the guest's kernel client could not mount its own export";
  ASSERT_TRUE(WriteFile(Path("from-floatmount"), "written by floatmount"));
  EXPECT_EQ(Guest("cat " + dir + "/from-floatmount"), "written by floatmount");
  Guest("printf 'written by the kernel client' >" + dir + "/from-kernel && sync");
  EXPECT_EQ(ReadFile(Path("from-kernel")).value_or("<error>"), "written by the kernel client");
  // Operations with a non-zero count, from the mount's per-op statistics.
  const std::string ops = Guest(
      "sed -n '/per-op statistics/,$p' /proc/self/mountstats | awk '$2 != 0 {print $1, $2}'");
  std::fprintf(stderr, "kernel client per-op counts (name, calls):\n%s", ops.c_str());
  EXPECT_NE(ops.find("WRITE: "), std::string::npos) << ops;
  EXPECT_NE(ops.find("OPEN: "), std::string::npos) << ops;
  // NFSv4.1: a session (a standalone SEQUENCE shows only once it renews).
  EXPECT_NE(ops.find("CREATE_SESSION: "), std::string::npos) << ops;
  Guest("umount " + kernel_mnt);
}

TEST_F(KnfsdTest, MkdirRenameUnlink) {
  ASSERT_SYSCALL(mkdir(Path("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(Path("f"), "hello"));
  ASSERT_SYSCALL(rename(Path("f").c_str(), Path("d/g").c_str()));
  ASSERT_SYSCALL(rename(Path("d").c_str(), Path("e").c_str()));
  const auto moved = ReadFile(Path("e/g"));
  ASSERT_TRUE(moved.has_value()) << ErrnoText();
  EXPECT_EQ(*moved, "hello");
  EXPECT_EQ(Guest("cat " + GuestPath("e/g")), "hello");
  struct stat st {};
  EXPECT_FAILS_WITH(stat(Path("d").c_str(), &st), ENOENT);

  ASSERT_SYSCALL(unlink(Path("e/g").c_str()));
  EXPECT_FAILS_WITH(stat(Path("e/g").c_str(), &st), ENOENT);
  ASSERT_SYSCALL(rmdir(Path("e").c_str()));
  const auto left = ListDir(Path(""));
  ASSERT_TRUE(left.has_value()) << ErrnoText();
  EXPECT_TRUE(left->empty()) << left->front();
  EXPECT_EQ(Guest("ls -A " + GuestPath("")), "");
}

TEST_F(KnfsdTest, FcntlLockHeldOnServerAndReleased) {
  ASSERT_TRUE(WriteFile(Path("lock"), "x"));
  UniqueFd fd(open(Path("lock").c_str(), O_RDWR));
  ASSERT_TRUE(fd.ok()) << ErrnoText();
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  ASSERT_SYSCALL(fcntl(fd.get(), F_SETLK, &lock));

  // The server holds it: nfsd takes a POSIX lock on the file in the guest.
  EXPECT_NE(Guest("cat /proc/locks").find("POSIX"), std::string::npos);
  const std::string path = Path("lock");
  auto try_lock = [&path] { return TryWriteLock(path); };
  const int blocked = RunInChild(try_lock);
  EXPECT_TRUE(blocked == EAGAIN || blocked == EACCES) << "another process got the lock: " << blocked;

  lock.l_type = F_UNLCK;
  ASSERT_SYSCALL(fcntl(fd.get(), F_SETLK, &lock));
  EXPECT_EQ(RunInChild(try_lock), 0) << "the lock was not released";
  ASSERT_SYSCALL(fd.Close());
  EXPECT_EQ(Guest("cat /proc/locks"), "");
}

TEST_F(KnfsdTest, ProbeDescribesTheServer) {
  const CommandResult r =
      RunCommand({FloatmountBinary(), "probe",
                  "nfs://" + server_->address() + ":" + std::to_string(server_->port()) + "/"},
                 "", Scaled(60s));
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  std::fprintf(stderr, "%s\n", r.output.c_str());
}

TEST_F(KnfsdTest, LeaseIsRenewedWhileIdle) {
  // nfsd's lease here is 10 s (its minimum); an idle mount must renew it
  // (SEQUENCE) before it runs out, or nfsd makes the client a "courtesy"
  // client whose state goes at the first conflict. Outwait one lease, then
  // look at our client (its name carries our mount point) in the guest.
  std::this_thread::sleep_for(std::chrono::seconds(12));
  const std::string info =
      Guest("grep -l '" + mount_.mount_point() + "' /proc/fs/nfsd/clients/*/info | xargs cat");
  EXPECT_NE(info.find("status: confirmed"), std::string::npos) << info;
  EXPECT_NE(info.find("minor version: 1"), std::string::npos) << info;
  const size_t at = info.find("seconds from last renew: ");
  ASSERT_NE(at, std::string::npos) << info;
  EXPECT_LT(std::atoi(info.c_str() + at + 25), 10) << info;
  struct stat st {};
  EXPECT_SYSCALL(stat(Path("").c_str(), &st));
}

// Lock coherence (issue 20) against knfsd: SQLite on two mounts, two
// processes on each, every transaction under SQLite's byte-range locks on a
// database each keeps open (see lock_coherence_test.cc). knfsd runs without
// a callback channel here, so blocked locks are polled for.
TEST_F(KnfsdTest, SqliteCounterOnTwoMountsIsExact) {
  FLOATMOUNT_REQUIRE(!FindOnPath("sqlite3").empty(), "sqlite3 not found (apt-get install sqlite3)");
  constexpr int kWorkers = 2, kRounds = 50;
  ASSERT_EQ(RunCommand({"sqlite3", "-bail", Path("counter.db"),
                        "PRAGMA journal_mode=DELETE; CREATE TABLE t(v INTEGER);"
                        " INSERT INTO t VALUES(0);"})
                .exit_code,
            0);
  const std::string local = MakeTestDir("knfsd-sql");
  ASSERT_FALSE(local.empty());
  const std::string script = local + "/transactions.sql";
  {
    std::ofstream sql(script);
    sql << ".timeout 120000\n";
    for (int i = 0; i < kRounds; ++i) sql << "BEGIN IMMEDIATE; UPDATE t SET v = v + 1; COMMIT;\n";
  }
  FloatMount second;
  ASSERT_TRUE(second.Mount(MountConfig()));
  EXPECT_TRUE(RunWorkers({Path(""), second.Path(name_)}, kWorkers, [&script](const std::string& root) {
    const std::string db = root + "/counter.db";
    const std::string read = ".read " + script;
    execlp("sqlite3", "sqlite3", "-bail", db.c_str(), read.c_str(), static_cast<char*>(nullptr));
    return 127;
  }));
  EXPECT_TRUE(second.Unmount());
  const CommandResult total =
      RunCommand({"sqlite3", "-readonly", Path("counter.db"), "SELECT v FROM t;"});
  EXPECT_EQ(total.output, std::to_string(2 * kWorkers * kRounds) + "\n")
      << "updates lost between the mounts";
  RunCommand({"rm", "-rf", local});
}

// A read-modify-write under an fcntl byte-range lock on a file each process
// keeps open, and the flock lock-file protocol (lock_workloads.h), two
// processes on each of two mounts of knfsd: exact totals.
TEST_F(KnfsdTest, ByteRangeLockedCounterOnTwoMountsIsExact) {
  constexpr int kWorkers = 2, kRounds = 50;
  ASSERT_TRUE(WriteFile(Path("counter"), Counter(0)));
  FloatMount second;
  ASSERT_TRUE(second.Mount(MountConfig()));
  EXPECT_TRUE(RunWorkers({Path(""), second.Path(name_)}, kWorkers,
                         [](const std::string& root) { return ByteRangeLockedCounter(root, kRounds); }));
  EXPECT_TRUE(second.Unmount());
  EXPECT_EQ(Guest("cat " + GuestPath("counter")), Counter(2 * kWorkers * kRounds));
}

TEST_F(KnfsdTest, FlockLockFileCounterOnTwoMountsIsExact) {
  constexpr int kWorkers = 2, kRounds = 50;
  ASSERT_TRUE(WriteFile(Path("queue.lock"), ""));
  ASSERT_TRUE(WriteFile(Path("queue.next"), Counter(0)));
  FloatMount second;
  ASSERT_TRUE(second.Mount(MountConfig()));
  EXPECT_TRUE(RunWorkers({Path(""), second.Path(name_)}, kWorkers,
                         [](const std::string& root) { return FlockLockFileCounter(root, kRounds); }));
  EXPECT_TRUE(second.Unmount());
  EXPECT_EQ(Guest("cat " + GuestPath("queue.next")), Counter(2 * kWorkers * kRounds));
}

// The torture exerciser (tests/torture, see torture_test.cc) against knfsd:
// seeded random file operations on one mount, every close compared through
// a second mount (the guest's directory is not visible here, so no server
// side compare). Seeds differ from the ganesha run's (1..16) so the two
// servers see different sequences. FLOATMOUNT_KNFSD_TORTURE_SEEDS (default
// 4) and FLOATMOUNT_TORTURE_OPS (default 2000 here) size it.
TEST_F(KnfsdTest, TortureRandomOpsMatchTheModel) {
  const uint64_t seeds = EnvNumber("FLOATMOUNT_KNFSD_TORTURE_SEEDS", 4);
  const uint64_t ops = EnvNumber("FLOATMOUNT_TORTURE_OPS", 2000);
  FloatMount second;
  ASSERT_TRUE(second.Mount(MountConfig()));
  for (uint64_t seed = 101; seed < 101 + seeds; ++seed) {
    const std::string dir = "s" + std::to_string(seed);
    ASSERT_SYSCALL(mkdir(Path(dir).c_str(), 0755));
    const auto start = std::chrono::steady_clock::now();
    const CommandResult r =
        RunCommand(TortureCommand(Path(dir), second.Path(name_ + "/" + dir), "", seed, ops), "",
                   kTortureSeedTimeout);
    std::printf("knfsd torture seed %llu: exit %d after %.0f s\n", (unsigned long long)seed,
                r.exit_code,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    EXPECT_EQ(r.exit_code, 0) << "seed " << seed << ": " << r.Describe();
  }
  EXPECT_TRUE(second.Unmount());
}

// The shared-file workload (shared_file_workload.h) against knfsd: two
// processes on each of two mounts writing, reading, locking and syncing the
// same files at once, watchers checking no size ever goes down, every file
// compared through both mounts. Seeds from 201 (ganesha's run 1..);
// FLOATMOUNT_KNFSD_STRESS_SEEDS (default 2) and FLOATMOUNT_STRESS_OPS size it.
TEST_F(KnfsdTest, SharedFileWorkersOnTwoMountsKeepEachOthersBytesAndLocks) {
  const uint64_t seeds = EnvNumber("FLOATMOUNT_KNFSD_STRESS_SEEDS", 2);
  FloatMount second;
  ASSERT_TRUE(second.Mount(MountConfig()));
  for (uint64_t seed = 201; seed < 201 + seeds && !HasFailure(); ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const std::string dir = "stress" + std::to_string(seed);
    ASSERT_SYSCALL(mkdir(Path(dir).c_str(), 0755));
    char model_dir[] = "/tmp/floatmount-stress-XXXXXX";
    ASSERT_NE(mkdtemp(model_dir), nullptr);
    SharedFileWorkload load;
    load.roots = {Path(dir), second.Path(name_ + "/" + dir)};
    load.ops = static_cast<int>(EnvNumber("FLOATMOUNT_STRESS_OPS", 300));
    load.seed = seed;
    load.model_dir = model_dir;
    ASSERT_TRUE(load.Prepare());
    EXPECT_TRUE(load.Run());
    EXPECT_TRUE(load.Verify(load.roots[0]));
    EXPECT_TRUE(load.Verify(load.roots[1]));
    std::filesystem::remove_all(model_dir);
  }
  EXPECT_TRUE(second.Unmount());
}

// A write past the end of a fresh file through a second descriptor leaves a
// hole; the bytes before it, up to the old end, must read back as written.
//
// knfsd in the test guest takes WRITEs of at most 128 KiB, floatmount's
// chunks are 1 MiB: the rest of a short WRITE went out under a new
// sequence number that nothing waited for, so the read (and fsync) overtook
// it and the old end's page read back as zeros in about half the files
// (ganesha's 1 MiB wsize hid it). Now a chunk goes out in wsize pieces and
// the rest of a short WRITE keeps its place (fuse/cache/file_cache_write.cc).
TEST_F(KnfsdTest, WritePastEofThroughSecondFdKeepsTheOldTail) {
  const std::string head = TestData(166523, 41), tail = TestData(99, 42);
  constexpr off_t kTailAt = 179370;
  std::string want = head + std::string(size_t(kTailAt) - head.size(), '\0') + tail;
  int bad = 0;
  for (int i = 0; i < 10; ++i) {
    const std::string path = Path("f" + std::to_string(i));
    UniqueFd first(open(path.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0644));
    ASSERT_TRUE(first.ok()) << ErrnoText();
    ASSERT_TRUE(PwriteAll(first.get(), head, 0));
    UniqueFd second(open(path.c_str(), O_RDWR));
    ASSERT_TRUE(second.ok()) << ErrnoText();
    ASSERT_TRUE(PwriteAll(second.get(), tail, kTailAt));
    const auto got = PreadUpTo(second.get(), 1 << 20, 0);
    ASSERT_TRUE(got.has_value()) << ErrnoText();
    const ::testing::AssertionResult same = SameBytes(*got, want);
    if (!same) {
      ++bad;
      ADD_FAILURE() << "file " << i << ": " << same.message();
    }
  }
  EXPECT_EQ(bad, 0) << "of 10 files";
}

// A server restart loses nfsd's NFSv4 state (as a reboot would); an open
// file must carry on: the client reclaims its open in the grace period
// (CLAIM_PREVIOUS) and the writes before and after reach the file.
// Restarts run last: the guest is shared.
//
// It once failed: fsync and close of the second MiB returned 0 within ~30
// ms with most of it not on the server. nfsd here offers a 128 KiB wsize,
// so each 1 MiB chunk of the write-back went out as a 128 KiB WRITE and
// the rest was sent under a sequence number that fsync did not wait for;
// the CLOSE then overtook those WRITEs, and their BAD_STATEID made the
// client reopen the file and wait out the grace period
// (fuse/cache/file_cache_write.cc, FileCache::SendDone).
TEST_F(KnfsdTest, OpenFileSurvivesServerRestart) {
  const std::string before = TestData(1 << 20, 31), after = TestData(1 << 20, 32);
  UniqueFd fd(open(Path("f").c_str(), O_CREAT | O_RDWR | O_TRUNC, 0644));
  ASSERT_TRUE(fd.ok()) << ErrnoText();
  ASSERT_TRUE(PwriteAll(fd.get(), before, 0));
  ASSERT_SYSCALL(fsync(fd.get()));

  ASSERT_TRUE(server_->RestartNfsd()) << server_->error();
  ASSERT_TRUE(PwriteAll(fd.get(), after, off_t(before.size())));
  ASSERT_SYSCALL(fsync(fd.get()));
  // fsync returned: nothing of this mount's writes is left to send or to
  // commit (asked at once: the console round trip to the guest is slow
  // enough for late WRITEs to land), and the server has every byte.
  const CommandResult status =
      RunCommand({FloatmountBinary(), "status", mount_.mount_point()}, "", Scaled(30s));
  EXPECT_NE(status.output.find("dirty 0 B, unstable 0 B"), std::string::npos) << status.Describe();
  const std::string whole = std::to_string(before.size() + after.size()) + "\n";
  EXPECT_EQ(Guest("wc -c < " + GuestPath("f")), whole);
  ASSERT_SYSCALL(fd.Close());
  ASSERT_TRUE(DropCaches());
  const auto back = ReadFile(Path("f"));
  ASSERT_TRUE(back.has_value()) << ErrnoText();
  EXPECT_TRUE(SameBytes(*back, before + after));
  EXPECT_EQ(Guest("wc -c < " + GuestPath("f")), whole);
}

// A lock held across a server restart is reclaimed in the grace period
// (LOCK reclaim = true before RECLAIM_COMPLETE, nfs/v4/state_recovery.h),
// so its holder still has it and nobody else gets it; or, if the server
// would not give it back, it is lost and its holder's I/O on the file fails
// with EIO (DESIGN.md; Linux with recover_lost_locks=0). Never both
// writing on and someone else holding the lock. (Before locks were
// reclaimed, the holder's writes went on while another process was
// granted the same lock.)
TEST_F(KnfsdTest, LockHeldAcrossServerRestartOrIoFails) {
  ASSERT_TRUE(WriteFile(Path("lock"), "x"));
  UniqueFd fd(open(Path("lock").c_str(), O_RDWR));
  ASSERT_TRUE(fd.ok()) << ErrnoText();
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  ASSERT_SYSCALL(fcntl(fd.get(), F_SETLK, &lock));

  ASSERT_TRUE(server_->RestartNfsd()) << server_->error();
  // The first call after the restart makes the client recover (and wait
  // out the grace period).
  errno = 0;
  const bool wrote = pwrite(fd.get(), "y", 1, 0) == 1 && fsync(fd.get()) == 0;
  const int write_errno = errno;
  const std::string path = Path("lock");
  const int other = RunInChild([&path] { return TryWriteLock(path); });
  // knfsd restarts with a grace period, so the lock must come back (the
  // lost-lock path is LockTest.LocksAreLostAfterARestartWithoutGrace).
  EXPECT_TRUE(wrote) << "the lock was not reclaimed in the grace period: "
                     << ErrnoText(write_errno);
  if (wrote) {
    // Reclaimed: still ours, on the server too.
    EXPECT_TRUE(other == EAGAIN || other == EACCES)
        << "the lock's holder still writes, yet another process was granted its lock (" << other
        << ")";
    EXPECT_NE(Guest("cat /proc/locks").find("POSIX"), std::string::npos);
  } else {
    // Lost: its owner's I/O fails with EIO.
    EXPECT_EQ(write_errno, EIO) << ErrnoText(write_errno);
  }
}

}  // namespace
}  // namespace floatmount::testing
