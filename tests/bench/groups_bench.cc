// Micro-benchmark: what reading a FUSE caller's supplementary groups costs
// (fuse/caller_groups.h), to set against the cost of a FUSE request.
//
//   build/tests/groups_bench [ITERATIONS]
//
// Reads the groups of a child process (as the daemon reads its callers')
// ITERATIONS times (default 20000) each way and prints microseconds per
// read:
//   libfuse      fuse_req_getgroups' way: open, read 1 KiB, close; the file
//                is longer, so open, read 4 KiB, close again; parse
//   floatmount   ReadCallerGroups: one open, one read, close; parse
//   cache hit    the former GroupCache's lookup (a mutex and a hash map)
// A benchmark, not a test: it prints figures and judges nothing.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "fuse/caller_groups.h"

namespace {

using Clock = std::chrono::steady_clock;

// libfuse 3.14's fuse_req_getgroups, minus the request: its buffer starts
// at 1 KiB and grows by 4 while the read fills it.
size_t LibfuseStyle(pid_t pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/task/%d/status", pid, pid);
  size_t bufsize = 1024;
  for (;;) {
    std::vector<char> buf(bufsize);
    const int fd = open(path, O_RDONLY);
    if (fd < 0) return 0;
    const ssize_t n = read(fd, buf.data(), bufsize);
    close(fd);
    if (n < 0) return 0;
    if (static_cast<size_t>(n) == bufsize) {
      bufsize *= 4;
      continue;
    }
    auto groups = floatmount::fuse::ParseStatusGroups(buf.data(), static_cast<size_t>(n));
    return groups ? groups->size() : 0;
  }
}

template <typename F>
double MicrosPer(int iterations, F&& fn) {
  size_t sink = 0;
  const auto start = Clock::now();
  for (int i = 0; i < iterations; ++i) sink += fn();
  const double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  if (sink == static_cast<size_t>(-1)) std::puts("");  // keeps the calls
  return us / iterations;
}

}  // namespace

int main(int argc, char** argv) {
  const int iterations = argc > 1 ? std::atoi(argv[1]) : 20000;
  const pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  std::mutex mu;
  std::unordered_map<uint64_t, std::vector<uint32_t>> cache;
  cache[static_cast<uint64_t>(child)] = {1, 2, 3};
  const double libfuse = MicrosPer(iterations, [&] { return LibfuseStyle(child); });
  const double ours = MicrosPer(iterations, [&] {
    auto g = floatmount::fuse::ReadCallerGroups(child);
    return g ? g->size() : 0;
  });
  const double hit = MicrosPer(iterations, [&] {
    std::lock_guard<std::mutex> lock(mu);
    return cache.find(static_cast<uint64_t>(child))->second.size();
  });
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  std::printf("groups of a caller, %d reads each, us per read:\n", iterations);
  std::printf("  libfuse     %7.2f  (fuse_req_getgroups: two opens and reads)\n", libfuse);
  std::printf("  floatmount  %7.2f  (ReadCallerGroups: one)\n", ours);
  std::printf("  cache hit   %7.2f  (the former 2 s GroupCache)\n", hit);
  return 0;
}
