#include "tests/integration/lock_workloads.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace floatmount::testing {

namespace {
// A worker's failure: what failed and errno on stderr (the test's log),
// and the step's number as the exit status.
int Fail(int step, const char* what) {
  std::fprintf(stderr, "worker %d: %s: %s\n", static_cast<int>(getpid()), what,
               std::strerror(errno));
  return step;
}
}  // namespace

std::string Counter(long v) {
  char text[16];
  std::snprintf(text, sizeof(text), "%08ld", v);
  return text;
}

::testing::AssertionResult RunWorkers(const std::vector<std::string>& roots, int workers,
                                      const std::function<int(const std::string&)>& fn) {
  return RunNumberedWorkers(roots, workers,
                            [&fn](const std::string& root, int) { return fn(root); });
}

::testing::AssertionResult RunNumberedWorkers(
    const std::vector<std::string>& roots, int workers,
    const std::function<int(const std::string&, int)>& fn) {
  std::vector<pid_t> pids;
  std::string failures;
  int number = 0;
  for (const std::string& root : roots) {
    for (int i = 0; i < workers; ++i, ++number) {
      const pid_t pid = fork();
      if (pid == 0) {
        // Not the test's sockets: a FaultProxy's connection cut by the test
        // would stay open in the worker (an RST goes out only once every
        // descriptor of it is closed), dead but never reset.
        close_range(3, ~0U, 0);
        _exit(fn(root, number));
      }
      if (pid < 0) {
        failures += std::string(" fork: ") + std::strerror(errno);
        break;
      }
      pids.push_back(pid);
    }
  }
  for (pid_t pid : pids) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      failures += " pid " + std::to_string(pid) + " status " + std::to_string(status);
    }
  }
  if (!failures.empty()) return ::testing::AssertionFailure() << "workers failed:" << failures;
  return ::testing::AssertionSuccess();
}

int ByteRangeLockedCounter(const std::string& root, int rounds) {
  const int fd = open((root + "/counter").c_str(), O_RDWR);
  if (fd < 0) return Fail(10, "open counter");
  char warm[8];
  if (pread(fd, warm, 8, 0) != 8) return Fail(10, "pread");  // the page is cached from here on
  for (int i = 0; i < rounds; ++i) {
    struct flock lk {};
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    lk.l_start = 0;
    lk.l_len = 8;
    if (fcntl(fd, F_SETLKW, &lk) != 0) return Fail(11, "F_SETLKW");
    char text[9] = {};
    if (pread(fd, text, 8, 0) != 8) return Fail(12, "pread");
    const std::string next = Counter(std::strtol(text, nullptr, 10) + 1);
    if (pwrite(fd, next.data(), 8, 0) != 8) return Fail(13, "pwrite");
    lk.l_type = F_UNLCK;
    if (fcntl(fd, F_SETLK, &lk) != 0) return Fail(14, "F_SETLK unlock");
    // Let the others in (a waiter polls every 50 ms): the lock must pass
    // between the mounts, not stay on one until its workers are done.
    usleep(60000);
  }
  return close(fd) == 0 ? 0 : Fail(15, "close");
}

int FlockLockFileCounter(const std::string& root, int rounds) {
  const int lock_fd = open((root + "/queue.lock").c_str(), O_RDONLY);
  if (lock_fd < 0) return Fail(10, "open queue.lock");
  for (int i = 0; i < rounds; ++i) {
    if (flock(lock_fd, LOCK_EX) != 0) return Fail(11, "flock LOCK_EX");
    const int fd = open((root + "/queue.next").c_str(), O_RDWR);
    if (fd < 0) return Fail(12, "open queue.next");
    char text[9] = {};
    if (pread(fd, text, 8, 0) != 8) return Fail(13, "pread");
    const std::string next = Counter(std::strtol(text, nullptr, 10) + 1);
    if (pwrite(fd, next.data(), 8, 0) != 8) return Fail(14, "pwrite");
    if (close(fd) != 0) return Fail(15, "close");
    if (flock(lock_fd, LOCK_UN) != 0) return Fail(16, "flock LOCK_UN");
    usleep(60000);  // let the others in
  }
  return close(lock_fd) == 0 ? 0 : Fail(17, "close queue.lock");
}

int TryWriteLock(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR);
  if (fd < 0) return 100;
  struct flock l {};
  l.l_type = F_WRLCK;
  l.l_whence = SEEK_SET;
  const int rc = fcntl(fd, F_SETLK, &l) == 0 ? 0 : errno;
  close(fd);
  return rc;
}

int CounterWithLongHolds(const std::string& root, bool byte_range, int rounds,
                         const std::string& marker) {
  const std::string lock_path = root + (byte_range ? "/counter" : "/queue.lock");
  const int lock_fd = open(lock_path.c_str(), byte_range ? O_RDWR : O_RDONLY);
  if (lock_fd < 0) return Fail(10, "open the lock's file");
  struct flock range {};
  range.l_whence = SEEK_SET;
  range.l_start = 0;
  range.l_len = 8;
  for (int i = 0; i < rounds; ++i) {
    range.l_type = F_WRLCK;
    if (byte_range ? fcntl(lock_fd, F_SETLKW, &range) != 0 : flock(lock_fd, LOCK_EX) != 0) {
      return Fail(11, "lock");
    }
    const int fd = byte_range ? lock_fd : open((root + "/queue.next").c_str(), O_RDWR);
    if (fd < 0) return Fail(12, "open queue.next");
    char text[9] = {};
    if (pread(fd, text, 8, 0) != 8) return Fail(13, "pread");
    if (i % kLongHoldEvery == kLongHoldEvery - 1) {
      const int m = open(marker.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (m < 0 || close(m) != 0) return Fail(14, "create the marker");
      usleep(kLongHoldMs * 1000);
      if (unlink(marker.c_str()) != 0) return Fail(14, "remove the marker");
    }
    const std::string next = Counter(std::strtol(text, nullptr, 10) + 1);
    if (pwrite(fd, next.data(), 8, 0) != 8) return Fail(15, "pwrite");
    if (!byte_range && close(fd) != 0) return Fail(16, "close queue.next");
    range.l_type = F_UNLCK;
    if (byte_range ? fcntl(lock_fd, F_SETLK, &range) != 0 : flock(lock_fd, LOCK_UN) != 0) {
      return Fail(17, "unlock");
    }
    usleep(60000);  // let the others in
  }
  return close(lock_fd) == 0 ? 0 : Fail(18, "close the lock's file");
}

}  // namespace floatmount::testing
