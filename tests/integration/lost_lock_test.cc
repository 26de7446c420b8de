// A lock lost to lease expiry is reported, never silently assumed (issue
// 15): the agent of mount 1 is frozen (SIGSTOP) past its lease while a
// process holds a lock through it; another client (mount 2) takes the lock;
// the agent thaws. The holder's next write or fsync on that file fails with
// EIO (nfs/v4/state_recovery.h, "lost"), other files on the mount keep
// working, and once the file is closed and opened again it works again.
// (Before, the holder wrote and fsynced on without an error while the
// other client held its lock.)
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/harness/fault_proxy.h"
#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kLeaseSeconds = 5;

class LostLockTest : public MountTest {
 protected:
  LostLockTest() {
    server_options_.lease_lifetime_s = kLeaseSeconds;
    test_timeout_ = std::chrono::seconds(240);
  }
  void TearDown() override {
    for (pid_t pid : frozen_) kill(pid, SIGCONT);
    MountTest::TearDown();
  }
  // After the loss of `lost`'s lock on `holder`: its other files work; once
  // `lost` is closed and the other client lets go (closes `other_fd`), the
  // file opened again locks and writes again.
  void ExpectOtherFilesAndTheReopenedFileWork(FloatMount& holder, UniqueFd& lost, int other_fd) {
    ASSERT_TRUE(WriteFile(holder.Path("other"), "still fine"));
    EXPECT_EQ(ReadFile(ServerPath("other")).value_or(""), "still fine");
    lost.Close();
    close(other_fd);
    UniqueFd reopened(open(holder.Path("locked").c_str(), O_RDWR));
    ASSERT_TRUE(reopened.ok()) << ErrnoText();
    struct flock lock {};
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    EXPECT_SYSCALL(fcntl(reopened.get(), F_SETLK, &lock));
    EXPECT_EQ(pwrite(reopened.get(), "c", 1, 0), 1);
    EXPECT_SYSCALL(fsync(reopened.get()));
    EXPECT_EQ(ReadFile(ServerPath("locked")).value_or("").substr(0, 1), "c");
  }
  std::vector<pid_t> frozen_;
};

// Tries F_SETLK on `path` until granted or `bound` passes; 0 when granted.
int LockWithin(const std::string& path, std::chrono::milliseconds bound, int* fd_out) {
  const int fd = open(path.c_str(), O_RDWR);
  if (fd < 0) return errno;
  struct flock l {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  const auto end = std::chrono::steady_clock::now() + bound;
  while (fcntl(fd, F_SETLK, &l) != 0) {
    if (std::chrono::steady_clock::now() > end) {
      const int err = errno;
      close(fd);
      return err;
    }
    std::this_thread::sleep_for(200ms);
  }
  *fd_out = fd;
  return 0;
}

// `path` opened read-write, write-locked whole, "a" written at 0 and
// fsynced: a holder whose lock is then lost. Invalid (and a test failure)
// if any step failed.
UniqueFd LockedAndWritten(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDWR));
  EXPECT_TRUE(fd.ok()) << path << ": " << ErrnoText();
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (!fd.ok() || fcntl(fd.get(), F_SETLK, &lock) != 0 || pwrite(fd.get(), "a", 1, 0) != 1 ||
      fsync(fd.get()) != 0) {
    ADD_FAILURE() << "lock, write or fsync of " << path << ": " << ErrnoText();
    return UniqueFd();
  }
  return fd;
}

// The holder learns it lost the lock: EIO from its write or its fsync, and
// its lock calls fail too, not "granted".
void ExpectTheLossReported(int fd) {
  errno = 0;
  const bool wrote = pwrite(fd, "b", 1, 0) == 1 && fsync(fd) == 0;
  const int err = errno;
  EXPECT_FALSE(wrote) << "the holder wrote on while another client held its lock";
  EXPECT_EQ(err, EIO) << ErrnoText(err);
  struct flock again {};
  again.l_type = F_WRLCK;
  again.l_whence = SEEK_SET;
  EXPECT_NE(fcntl(fd, F_SETLK, &again), 0);
}

TEST_F(LostLockTest, ALockLostToLeaseExpiryFailsTheHoldersIoWithEio) {
  FLOATMOUNT_REQUIRE(!nfs3(), "NFSv3 locks are not supported (NLM)");
  ASSERT_TRUE(WriteFile(Path("locked"), "0123456789"));
  UniqueFd fd = LockedAndWritten(Path("locked"));
  ASSERT_TRUE(fd.ok());
  FloatMount* second = MountSecond();
  ASSERT_NE(second, nullptr);

  // Freeze the agent past its lease; the other client then gets the lock.
  frozen_ = mount().daemon_pids();
  ASSERT_FALSE(frozen_.empty());
  for (pid_t pid : frozen_) ASSERT_EQ(kill(pid, SIGSTOP), 0);
  int other_fd = -1;
  const int got = LockWithin(second->Path("locked"), Scaled(60s), &other_fd);
  ASSERT_EQ(got, 0) << "the other client never got the lock after the lease expired: "
                    << ErrnoText(got);
  for (pid_t pid : frozen_) kill(pid, SIGCONT);
  frozen_.clear();

  ExpectTheLossReported(fd.get());
  ExpectOtherFilesAndTheReopenedFileWork(mount(), fd, other_fd);
}

// The same loss through a network partition instead of a frozen agent: the
// holder's mount reaches the server through a FaultProxy that forwards
// nothing for longer than the lease (the agent runs on: its renewals and
// calls time out, its connections are made again into the same black
// hole); the other client takes the lock; the partition heals. The holder
// learns of the loss when its state is recovered (STALE_CLIENTID, then no
// reclaim outside a grace period), and its next write or fsync fails with
// EIO; its data written before the partition is on the server.
TEST_F(LostLockTest, ALockLostInAPartitionPastTheLeaseFailsTheHoldersIoWithEio) {
  FLOATMOUNT_REQUIRE(!nfs3(), "NFSv3 locks are not supported (NLM)");
  if (knfsd() || kernel_client()) GTEST_SKIP() << "ganesha only (a FaultProxy before ganesha)";
  FaultProxy proxy("127.0.0.1", 0, server().address(), server().port());
  ASSERT_TRUE(proxy.Start()) << proxy.error();
  FloatMount* holder = MountSecond("", proxy.port());
  ASSERT_NE(holder, nullptr);
  ASSERT_TRUE(WriteFile(Path("locked"), "0123456789"));
  UniqueFd fd = LockedAndWritten(holder->Path("locked"));
  ASSERT_TRUE(fd.ok());

  proxy.SetBlackHole(true);
  int other_fd = -1;
  const int got = LockWithin(Path("locked"), Scaled(60s), &other_fd);
  proxy.SetBlackHole(false);
  ASSERT_EQ(got, 0) << "the other client never got the lock after the lease expired: "
                    << ErrnoText(got);

  ExpectTheLossReported(fd.get());
  EXPECT_EQ(ReadFile(ServerPath("locked")).value_or(""), "a123456789");
  ExpectOtherFilesAndTheReopenedFileWork(*holder, fd, other_fd);
}

}  // namespace
}  // namespace floatmount::testing
