// Workloads that share a file between mounts under locks (issue 20), run by
// lock_coherence_test.cc against ganesha and knfsd_test.cc against the
// kernel server: each mount stands for a node, each worker is a real
// process, and the counters they update end exact only if a granted lock
// revalidates the file and an unlock first commits the dirty data.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace floatmount::testing {

// A counter in 8 decimal digits at the start of a file.
std::string Counter(long v);

// Runs fn(root) in `workers` forked processes for each of `roots` at once,
// with no descriptor of the test's but stdin, stdout and stderr; success if
// every one exited 0 (else which did not, with its status).
::testing::AssertionResult RunWorkers(const std::vector<std::string>& roots, int workers,
                                      const std::function<int(const std::string&)>& fn);
// The same, fn(root, i) with i the worker's number (0, 1, ... in fork order).
::testing::AssertionResult RunNumberedWorkers(
    const std::vector<std::string>& roots, int workers,
    const std::function<int(const std::string&, int)>& fn);

// `rounds` read-modify-writes of root/counter (made with Counter(0)) under
// an fcntl write lock on its first 8 bytes, the file kept open (and its
// page cached) throughout. Returns 0, or a code saying which step failed.
int ByteRangeLockedCounter(const std::string& root, int rounds);

// The lock-file protocol of scripts and job queues, `rounds` times: flock
// root/queue.lock, open root/queue.next, increment it, close, unlock.
int FlockLockFileCounter(const std::string& root, int rounds);

// Opens `path` and asks for an fcntl write lock on the whole file without
// waiting, then closes it: 0 if granted, else the errno (EAGAIN or EACCES:
// someone holds it), 100 if the open failed. For a child process
// (RunInChild): a lock of the test's own process would not conflict.
int TryWriteLock(const std::string& path);

// For crashes under held locks: `rounds` read-modify-writes of a counter,
// either root/counter under an fcntl write lock on its first 8 bytes
// (`byte_range`) or root/queue.next under flock of root/queue.lock. Every
// kLongHoldEvery-th round holds the lock kLongHold between the read and
// the write, with the file `marker` (outside the mount) present meanwhile,
// so that a test can crash the server under a held lock: if the lock were
// not reclaimed, the other mount's waiter would take it then, and one of
// the two updates would be lost.
inline constexpr int kLongHoldEvery = 4;
inline constexpr int kLongHoldMs = 6000;
int CounterWithLongHolds(const std::string& root, bool byte_range, int rounds,
                         const std::string& marker);

}  // namespace floatmount::testing
