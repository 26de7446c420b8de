// File locks on a floatmount mount: fcntl record locks between processes
// (conflicts, F_GETLK, shared/exclusive, F_SETLKW waiting, release on close
// and on exit), across two mounts with different NFSv4 client IDs, and
// flock(2) between descriptors.
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

struct flock Range(short type, off_t start, off_t len) {
  struct flock lock {};
  lock.l_type = type;
  lock.l_whence = SEEK_SET;
  lock.l_start = start;
  lock.l_len = len;
  return lock;
}

// F_SETLK of `type` on [start, start+len): 0 or errno.
int TryLock(int fd, short type, off_t start, off_t len) {
  struct flock lock = Range(type, start, len);
  return fcntl(fd, F_SETLK, &lock) == 0 ? 0 : errno;
}

bool IsConflict(int err) { return err == EAGAIN || err == EACCES; }

// A child process that runs while the test goes on: it reports through
// Signal() (one byte on a pipe) and waits for the test's Release().
class Helper {
 public:
  // fn gets the helper to call Signal()/WaitRelease() from inside the child.
  explicit Helper(const std::function<int(Helper&)>& fn) {
    if (pipe(to_parent_) != 0 || pipe(to_child_) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      alarm(30);
      close(to_parent_[0]);
      close(to_child_[1]);
      _exit(fn(*this) & 0xff);
    }
    close(to_parent_[1]);
    close(to_child_[0]);
  }
  ~Helper() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(to_parent_[0]);
    close(to_child_[1]);
  }
  // In the child.
  void Signal() { (void)!write(to_parent_[1], "s", 1); }
  void WaitRelease() {
    char c;
    (void)!read(to_child_[0], &c, 1);
  }
  // In the parent.
  bool WaitSignal() {
    char c;
    return read(to_parent_[0], &c, 1) == 1;
  }
  void Release() { (void)!write(to_child_[1], "r", 1); }
  int Finish() {
    int status = 0;
    if (waitpid(pid_, &status, 0) != pid_) return -1;
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : kChildSignalBase + WTERMSIG(status);
  }
  bool started() const { return pid_ > 0; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int to_parent_[2] = {-1, -1};
  int to_child_[2] = {-1, -1};
};

class PosixLocksTest : public MountTest {
 protected:
  void SetUp() override {
    MountTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    ASSERT_TRUE(WriteFile(Path("f"), TestData(4096, 1)));
  }
};

TEST_F(PosixLocksTest, WriteLockConflictsWithAnotherProcess) {
  UniqueFd fd(open(Path("f").c_str(), O_RDWR));
  ASSERT_SYSCALL(fd.get());
  ASSERT_EQ(TryLock(fd.get(), F_WRLCK, 0, 100), 0);
  const pid_t me = getpid();
  const std::string path = Path("f");
  const int rc = RunInChild([&] {
    UniqueFd other(open(path.c_str(), O_RDWR));
    if (!other.ok()) return 10;
    if (!IsConflict(TryLock(other.get(), F_WRLCK, 50, 10))) return 1;
    if (!IsConflict(TryLock(other.get(), F_RDLCK, 99, 1))) return 2;
    struct flock probe = Range(F_WRLCK, 50, 10);
    if (fcntl(other.get(), F_GETLK, &probe) != 0) return 3;
    if (probe.l_type != F_WRLCK) return 4;
    if (probe.l_start != 0 || probe.l_len != 100) return 5;
    if (TryLock(other.get(), F_WRLCK, 100, 100) != 0) return 6;
    if (probe.l_pid != me) return 7;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "1 overlapping write lock granted, 2 overlapping read lock granted, "
                      "3 F_GETLK failed, 4 F_GETLK saw no write lock, 5 F_GETLK wrong range, "
                      "6 lock on a free range refused, 7 F_GETLK l_pid is not the holder's";

  // Released, the range is free for the other process.
  ASSERT_EQ(TryLock(fd.get(), F_UNLCK, 0, 100), 0);
  EXPECT_EQ(RunInChild([&] {
              UniqueFd other(open(path.c_str(), O_RDWR));
              struct flock probe = Range(F_WRLCK, 0, 100);
              if (fcntl(other.get(), F_GETLK, &probe) != 0 || probe.l_type != F_UNLCK) return 1;
              return TryLock(other.get(), F_WRLCK, 0, 100);
            }),
            0);
}

TEST_F(PosixLocksTest, ReadLocksShareAndWriteLocksExclude) {
  UniqueFd fd(open(Path("f").c_str(), O_RDONLY));
  ASSERT_SYSCALL(fd.get());
  ASSERT_EQ(TryLock(fd.get(), F_RDLCK, 0, 0), 0);  // len 0: to end of file and beyond
  const std::string path = Path("f");
  const int rc = RunInChild([&] {
    UniqueFd other(open(path.c_str(), O_RDWR));
    if (!other.ok()) return 10;
    if (TryLock(other.get(), F_RDLCK, 10, 10) != 0) return 1;
    if (!IsConflict(TryLock(other.get(), F_WRLCK, 1 << 20, 1))) return 2;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "1 shared lock refused, 2 write lock granted over a read lock";
  // Upgrading our own read lock to a write lock works while nobody else reads.
  UniqueFd rw(open(Path("f").c_str(), O_RDWR));
  ASSERT_SYSCALL(rw.get());
  EXPECT_EQ(TryLock(rw.get(), F_WRLCK, 0, 0), 0);
}

TEST_F(PosixLocksTest, SetlkwWaitsForTheRelease) {
  UniqueFd fd(open(Path("f").c_str(), O_RDWR));
  ASSERT_SYSCALL(fd.get());
  ASSERT_EQ(TryLock(fd.get(), F_WRLCK, 0, 10), 0);
  const std::string path = Path("f");
  Helper waiter([&](Helper& self) {
    UniqueFd other(open(path.c_str(), O_RDWR));
    if (!other.ok()) return 10;
    const auto start = std::chrono::steady_clock::now();
    self.Signal();
    struct flock lock = Range(F_WRLCK, 5, 1);
    if (fcntl(other.get(), F_SETLKW, &lock) != 0) return 1;
    const auto waited = std::chrono::steady_clock::now() - start;
    return waited >= std::chrono::milliseconds(200) ? 0 : 2;
  });
  ASSERT_TRUE(waiter.started());
  ASSERT_TRUE(waiter.WaitSignal());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_EQ(TryLock(fd.get(), F_UNLCK, 0, 10), 0);
  EXPECT_EQ(waiter.Finish(), 0) << "1 F_SETLKW failed, 2 it did not wait for the release";
}

// POSIX: closing any descriptor of a file drops all of the process's locks
// on it; a process that exits drops its locks.
TEST_F(PosixLocksTest, LocksGoWithCloseAndWithExit) {
  const std::string path = Path("f");
  {
    UniqueFd fd(open(path.c_str(), O_RDWR));
    ASSERT_SYSCALL(fd.get());
    ASSERT_EQ(TryLock(fd.get(), F_WRLCK, 0, 0), 0);
    UniqueFd second(open(path.c_str(), O_RDONLY));
    ASSERT_SYSCALL(second.get());
    ASSERT_EQ(second.Close(), 0);
    EXPECT_EQ(RunInChild([&] {
                UniqueFd other(open(path.c_str(), O_RDWR));
                return TryLock(other.get(), F_WRLCK, 0, 0);
              }),
              0)
        << "the lock survived close() of another descriptor";
  }

  Helper holder([&](Helper& self) {
    UniqueFd other(open(path.c_str(), O_RDWR));
    if (TryLock(other.get(), F_WRLCK, 0, 0) != 0) return 1;
    self.Signal();
    self.WaitRelease();
    _exit(0);  // without unlocking or closing
  });
  ASSERT_TRUE(holder.started());
  ASSERT_TRUE(holder.WaitSignal());
  UniqueFd fd(open(path.c_str(), O_RDWR));
  ASSERT_SYSCALL(fd.get());
  EXPECT_TRUE(IsConflict(TryLock(fd.get(), F_WRLCK, 0, 0))) << "the holder's lock was not seen";
  holder.Release();
  EXPECT_EQ(holder.Finish(), 0);
  EXPECT_TRUE(
      WaitFor([&] { return TryLock(fd.get(), F_WRLCK, 0, 0) == 0; }, std::chrono::seconds(5)))
      << "the lock of an exited process was not released";
}

// Two mounts are two NFSv4 clients: their locks must meet on the server.
TEST_F(PosixLocksTest, LocksConflictAcrossMounts) {
  FloatMount* second = MountSecond();
  ASSERT_NE(second, nullptr);
  UniqueFd fd(open(Path("f").c_str(), O_RDWR));
  ASSERT_SYSCALL(fd.get());
  ASSERT_EQ(TryLock(fd.get(), F_WRLCK, 0, 100), 0);
  const std::string other_path = second->Path("f");
  auto try_on_second = [&](short type, off_t start, off_t len) {
    return RunInChild([&] {
      UniqueFd other(open(other_path.c_str(), O_RDWR));
      if (!other.ok()) return 100;
      return TryLock(other.get(), type, start, len);
    });
  };
  EXPECT_TRUE(IsConflict(try_on_second(F_WRLCK, 10, 10))) << "both mounts got the lock";
  EXPECT_EQ(try_on_second(F_WRLCK, 200, 10), 0);
  ASSERT_EQ(TryLock(fd.get(), F_UNLCK, 0, 100), 0);
  EXPECT_TRUE(WaitFor([&] { return try_on_second(F_WRLCK, 10, 10) == 0; }, std::chrono::seconds(5)))
      << "the lock was not released on the server";
}

// flock(2) on NFS is emulated with whole-file byte-range locks (as the
// kernel client does; see flock(2) NOTES), so LOCK_EX needs a descriptor
// open for writing; each open file description is its own lock owner.
TEST_F(PosixLocksTest, FlockBetweenDescriptors) {
  UniqueFd a(open(Path("f").c_str(), O_RDWR));
  UniqueFd b(open(Path("f").c_str(), O_RDWR));
  ASSERT_SYSCALL(a.get());
  ASSERT_SYSCALL(b.get());
  // Exclusive on one open file description blocks the other, even in the
  // same process.
  ASSERT_SYSCALL(flock(a.get(), LOCK_EX | LOCK_NB));
  EXPECT_FAILS_WITH(flock(b.get(), LOCK_EX | LOCK_NB), EWOULDBLOCK);
  EXPECT_FAILS_WITH(flock(b.get(), LOCK_SH | LOCK_NB), EWOULDBLOCK);
  const std::string path = Path("f");
  EXPECT_EQ(RunInChild([&] {
              UniqueFd other(open(path.c_str(), O_RDONLY));
              return flock(other.get(), LOCK_SH | LOCK_NB) == 0 ? 0 : errno;
            }),
            EWOULDBLOCK);
  ASSERT_SYSCALL(flock(a.get(), LOCK_UN));
  EXPECT_SYSCALL(flock(b.get(), LOCK_EX | LOCK_NB));
  ASSERT_SYSCALL(flock(b.get(), LOCK_UN));

  // Shared locks coexist; an exclusive one waits for all of them.
  ASSERT_SYSCALL(flock(a.get(), LOCK_SH | LOCK_NB));
  ASSERT_SYSCALL(flock(b.get(), LOCK_SH | LOCK_NB));
  EXPECT_EQ(RunInChild([&] {
              UniqueFd other(open(path.c_str(), O_RDWR));
              return flock(other.get(), LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
            }),
            EWOULDBLOCK);
  // Closing the descriptors drops their flocks. FUSE sends the RELEASE
  // that carries the unlock after close(2) has returned (asynchronously,
  // unlike a local file system), so another process may have to ask again.
  ASSERT_EQ(a.Close(), 0);
  ASSERT_EQ(b.Close(), 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return RunInChild([&] {
                 UniqueFd other(open(path.c_str(), O_RDWR));
                 return flock(other.get(), LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
               }) == 0;
      },
      std::chrono::seconds(5)));
}

}  // namespace
}  // namespace floatmount::testing
