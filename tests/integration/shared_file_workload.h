// A concurrent workload on shared files, to find the bugs a single-threaded
// exerciser (tests/torture/) cannot: several processes on each of two
// mounts open the same few files at once in every mode, write and read
// back, take flock and fcntl locks (a lock through a read-only descriptor
// widens the shared NFS open), fsync and close, all interleaved.
//
// Each worker owns stripes of every file: stripe k of worker w is the
// kStripe bytes at ((k * workers) + w) * kStripe. kStripe is not a multiple
// of the page size, so neighbours' stripes share pages (and the cache's
// chunks). A worker writes only inside its own stripes and checks what it
// reads of them against its own model, so any interleaving has one right
// answer: after all workers exit, each file must hold every worker's last
// bytes in its stripes and zeros everywhere else below the size (holes),
// and be exactly as long as the furthest write or kExtendedSize if a
// worker extended it with ftruncate. Under flock of a file, a
// worker also increments a shared counter (the lock-file protocol), which
// must end at the number of increments.
//
// Beside the workers, one watcher per mount stats every file in a loop
// (GETATTRs racing the write-back): a size it saw never goes down, since
// nobody shrinks a file.
//
// Every kBurstEvery ops all workers meet at a barrier and do the same
// thing at once (open one file read-only and flock it; open, write and
// close one file; lock and write one file through fresh descriptors), so
// the races on one shared open and its lock state happen every run, not
// by luck.
//
// Choices come from a generator seeded by (seed, worker) (the bursts' from
// the seed alone); the interleaving does not (it is the point). A failure
// names the worker, the op and what was wrong on stderr.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

namespace floatmount::testing {

struct SharedFileWorkload {
  static constexpr int kFiles = 3;
  static constexpr size_t kStripe = 4099;
  static constexpr int kStripesPerWorker = 24;
  static constexpr int kBurstEvery = 10;  // ops; see Worker::Burst
  // What a worker's ftruncate makes a file: past every stripe of up to 8
  // workers, so it only ever grows it.
  static constexpr uint64_t kExtendedSize = 8 * kStripesPerWorker * kStripe + 5000;

  std::vector<std::string> roots;  // one per mount, each the same directory
  int workers_per_root = 2;
  int ops = 300;  // per worker
  uint64_t seed = 1;
  std::string model_dir;  // where workers leave their models (not a mount)

  // Creates the (empty) files and the counter under roots[0].
  ::testing::AssertionResult Prepare() const;
  // Runs every worker at once and waits for them.
  ::testing::AssertionResult Run() const;
  // Compares each file read through `dir` with the workers' models.
  ::testing::AssertionResult Verify(const std::string& dir) const;

 private:
  int workers() const { return static_cast<int>(roots.size()) * workers_per_root; }
};

}  // namespace floatmount::testing
