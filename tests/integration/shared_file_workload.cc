#include "tests/integration/shared_file_workload.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <random>
#include <sstream>

#include "tests/integration/lock_workloads.h"

namespace floatmount::testing {
namespace {

using W = SharedFileWorkload;
constexpr size_t kModelSize = W::kStripesPerWorker * W::kStripe;

std::string FileName(int f) { return "shared_" + std::to_string(f); }

std::string ModelPath(const std::string& dir, int worker, int f) {
  return dir + "/w" + std::to_string(worker) + "_f" + std::to_string(f);
}

bool ReadWhole(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

// What the workers share (an anonymous shared mapping made before the
// fork): a barrier for the bursts, and a flag that stops everyone once one
// worker failed.
struct Shared {
  std::atomic<int> arrived{0};
  std::atomic<int> generation{0};
  std::atomic<bool> failed{false};
  std::atomic<bool> finished{false};  // every worker exited: watchers stop
};
static_assert(std::atomic<int>::is_always_lock_free);

// Waits until all `n` workers arrived; false if one failed or it took a
// minute (a worker stuck or gone).
bool Barrier(Shared* shared, int n) {
  const int gen = shared->generation.load();
  if (shared->arrived.fetch_add(1) + 1 == n) {
    shared->arrived.store(0);
    shared->generation.fetch_add(1);
    return true;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (shared->generation.load() == gen) {
    if (shared->failed.load() || std::chrono::steady_clock::now() > deadline) return false;
    usleep(100);
  }
  return true;
}

// One worker: its descriptors, its model of its own stripes, its report.
class Worker {
 public:
  Worker(const std::string& root, int worker, int workers, uint64_t seed, Shared* shared)
      : root_(root),
        worker_(worker),
        workers_(workers),
        rng_(seed * 1000003u + worker),
        burst_rng_(seed),
        shared_(shared) {
    for (auto& m : model_) m.assign(kModelSize, 0);
  }

  int Run(int ops, const std::string& model_dir) {
    for (op_ = 0; op_ < ops; ++op_) {
      // Every worker, on both mounts, does the same kind of thing at once
      // now and then: the races on shared opens and lock state.
      const bool ok = op_ % W::kBurstEvery == W::kBurstEvery - 1 ? Burst() : Step();
      if (!ok) {
        shared_->failed.store(true);
        return 1;
      }
    }
    while (!fds_.empty()) {
      if (!CloseAt(0)) return 1;
    }
    for (int f = 0; f < W::kFiles; ++f) {
      std::ofstream out(ModelPath(model_dir, worker_, f), std::ios::binary);
      out.write(reinterpret_cast<const char*>(model_[f].data()),
                static_cast<std::streamsize>(model_[f].size()));
      std::ofstream(ModelPath(model_dir, worker_, f) + ".end") << end_[f];
    }
    std::ofstream(model_dir + "/w" + std::to_string(worker_) + ".increments") << increments_;
    return 0;
  }

 private:
  struct Fd {
    int fd;
    int file;
    int mode;  // O_RDONLY, O_WRONLY or O_RDWR
  };

  bool Fail(const char* fmt, ...) {
    char what[512];
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(what, sizeof what, fmt, args);
    va_end(args);
    std::fprintf(stderr, "shared-file worker %d, op %d: %s\n", worker_, op_, what);
    return false;
  }
  uint64_t Pick(uint64_t n) { return rng_() % n; }
  std::string PathOf(int f) const { return root_ + "/" + FileName(f); }
  uint64_t StripeOffset(int k) const {
    return (static_cast<uint64_t>(k) * workers_ + worker_) * W::kStripe;
  }
  // A random descriptor for which `ok(mode)`, or -1.
  template <typename Ok>
  int PickFd(Ok ok) {
    std::vector<int> candidates;
    for (size_t i = 0; i < fds_.size(); ++i) {
      if (ok(fds_[i].mode)) candidates.push_back(static_cast<int>(i));
    }
    return candidates.empty() ? -1 : candidates[Pick(candidates.size())];
  }
  static bool Readable(int mode) { return mode != O_WRONLY; }
  static bool Writable(int mode) { return mode != O_RDONLY; }

  // All workers at once, after a barrier: (0) close everything, open one
  // file read-only and flock it (each widens its mount's shared open: two
  // upgrades race), (1) open
  // one file read-write, write a stripe and close (opens and closes of one
  // shared open race), (2) an fcntl lock of a stripe of one file through a
  // fresh read-only descriptor, then a write through a fresh one.
  bool Burst() {
    const uint64_t kind = burst_rng_() % 3;
    const int f = static_cast<int>(burst_rng_() % W::kFiles);
    if (!Barrier(shared_, workers_)) return Fail("barrier: another worker failed or hung");
    switch (kind) {
      case 0:
        // Fresh read-only opens on both mounts (nobody holds a writable
        // descriptor of any file), then the flocks at once.
        while (!fds_.empty()) {
          if (!CloseAt(0)) return false;
        }
        if (!Barrier(shared_, workers_) || !OpenAs(f, O_RDONLY) || !Barrier(shared_, workers_)) {
          return Fail("barrier: another worker failed or hung");
        }
        return FlockFd(fds_.back());
      case 1:
        return OpenAs(f, O_RDWR) && WriteFd(fds_.back()) &&
               CloseAt(static_cast<int>(fds_.size()) - 1);
      default:
        return OpenAs(f, O_RDONLY) && RangeLockFd(fds_.back()) && OpenAs(f, O_WRONLY) &&
               WriteFd(fds_.back());
    }
  }

  bool Step() {
    const uint64_t choice = Pick(100);
    if (fds_.empty() || choice < 12) return Open();
    if (choice < 45) return Write();
    if (choice < 65) return Check();
    if (choice < 75) return Flock();
    if (choice < 83) return RangeLock();
    if (choice < 88) return Sync();
    if (choice < 95) return CloseAt(static_cast<int>(Pick(fds_.size())));
    if (choice < 97) return Extend();
    return Size();
  }

  // ftruncate to W::kExtendedSize, past every stripe: the file grows (a hole
  // to the end) while the others write, and never shrinks under them.
  bool Extend() {
    const int i = PickFd(Writable);
    if (i < 0) return true;
    const Fd& d = fds_[i];
    if (ftruncate(d.fd, static_cast<off_t>(W::kExtendedSize)) != 0) {
      return Fail("ftruncate %s: %s", FileName(d.file).c_str(), std::strerror(errno));
    }
    end_[d.file] = std::max<uint64_t>(end_[d.file], W::kExtendedSize);
    return true;
  }

  bool Open() {
    static constexpr int kModes[] = {O_RDONLY, O_WRONLY, O_RDWR};
    const int f = static_cast<int>(Pick(W::kFiles));
    return OpenAs(f, kModes[Pick(3)]);
  }

  bool OpenAs(int f, int mode) {
    if (fds_.size() >= 4 && !CloseAt(0)) return false;
    const int fd = open(PathOf(f).c_str(), mode);
    if (fd < 0) return Fail("open %s mode %d: %s", FileName(f).c_str(), mode, std::strerror(errno));
    fds_.push_back(Fd{fd, f, mode});
    return true;
  }

  bool CloseAt(int i) {
    const Fd d = fds_[i];
    fds_.erase(fds_.begin() + i);
    if (close(d.fd) != 0)
      return Fail("close %s: %s", FileName(d.file).c_str(), std::strerror(errno));
    return true;
  }

  bool Write() {
    const int i = PickFd(Writable);
    return i < 0 || WriteFd(fds_[i]);
  }

  bool WriteFd(const Fd& d) {
    const int k = static_cast<int>(Pick(W::kStripesPerWorker));
    const size_t from = Pick(W::kStripe);
    const size_t len = 1 + Pick(W::kStripe - from);
    std::vector<uint8_t> bytes(len);
    for (auto& b : bytes) b = static_cast<uint8_t>(1 + Pick(255));  // never 0: holes stay visible
    const uint64_t off = StripeOffset(k) + from;
    const ssize_t n = pwrite(d.fd, bytes.data(), len, static_cast<off_t>(off));
    if (n != static_cast<ssize_t>(len)) {
      return Fail("pwrite %zu at %llu of %s: %zd (%s)", len, static_cast<unsigned long long>(off),
                  FileName(d.file).c_str(), n, std::strerror(errno));
    }
    std::copy(bytes.begin(), bytes.end(), model_[d.file].begin() + k * W::kStripe + from);
    end_[d.file] = std::max<uint64_t>(end_[d.file], off + len);
    return true;
  }

  // Reads one of this worker's stripes: at least what it wrote there, and
  // exactly its bytes (zeros where it never wrote).
  bool Check() {
    const int i = PickFd(Readable);
    if (i < 0) return true;
    const Fd& d = fds_[i];
    const int k = static_cast<int>(Pick(W::kStripesPerWorker));
    const uint64_t off = StripeOffset(k);
    std::vector<uint8_t> got(W::kStripe);
    const ssize_t n = pread(d.fd, got.data(), got.size(), static_cast<off_t>(off));
    if (n < 0) return Fail("pread %s: %s", FileName(d.file).c_str(), std::strerror(errno));
    const uint64_t least =
        end_[d.file] > off ? std::min<uint64_t>(W::kStripe, end_[d.file] - off) : 0;
    if (static_cast<uint64_t>(n) < least) {
      return Fail("short read of %s at %llu: %zd bytes, at least %llu written",
                  FileName(d.file).c_str(), static_cast<unsigned long long>(off), n,
                  static_cast<unsigned long long>(least));
    }
    const uint8_t* want = model_[d.file].data() + k * W::kStripe;
    for (ssize_t j = 0; j < n; ++j) {
      if (got[j] != want[j]) {
        return Fail("%s byte %llu is %u, wrote %u (fd mode %d)", FileName(d.file).c_str(),
                    static_cast<unsigned long long>(off + j), got[j], want[j], d.mode);
      }
    }
    return true;
  }

  // flock(LOCK_EX) through any descriptor (a read-only one widens the
  // shared NFS open); under the lock of file 0, the lock-file protocol.
  bool Flock() { return FlockFd(fds_[Pick(fds_.size())]); }

  bool FlockFd(const Fd& d) {
    if (flock(d.fd, LOCK_EX) != 0) {
      return Fail("flock LOCK_EX %s (mode %d): %s", FileName(d.file).c_str(), d.mode,
                  std::strerror(errno));
    }
    if (d.file == 0) {
      const int c = open((root_ + "/counter").c_str(), O_RDWR);
      char text[9] = {};
      if (c < 0 || pread(c, text, 8, 0) != 8) return Fail("counter: %s", std::strerror(errno));
      const std::string next = Counter(std::strtol(text, nullptr, 10) + 1);
      if (pwrite(c, next.data(), 8, 0) != 8 || close(c) != 0) {
        return Fail("counter: %s", std::strerror(errno));
      }
      ++increments_;
    }
    if (flock(d.fd, LOCK_UN) != 0) return Fail("flock LOCK_UN: %s", std::strerror(errno));
    return true;
  }

  // An fcntl lock of one of this worker's stripes, then its unlock.
  bool RangeLock() { return RangeLockFd(fds_[Pick(fds_.size())]); }

  bool RangeLockFd(const Fd& d) {
    struct flock lk {};
    lk.l_type = d.mode == O_RDONLY ? F_RDLCK : F_WRLCK;
    lk.l_whence = SEEK_SET;
    lk.l_start = static_cast<off_t>(StripeOffset(static_cast<int>(Pick(W::kStripesPerWorker))));
    lk.l_len = W::kStripe;
    if (fcntl(d.fd, F_SETLKW, &lk) != 0) {
      return Fail("F_SETLKW %s (mode %d): %s", FileName(d.file).c_str(), d.mode,
                  std::strerror(errno));
    }
    lk.l_type = F_UNLCK;
    if (fcntl(d.fd, F_SETLK, &lk) != 0) return Fail("F_UNLCK: %s", std::strerror(errno));
    return true;
  }

  bool Sync() {
    const Fd d = fds_[Pick(fds_.size())];
    const bool data = Pick(2) == 0;
    if ((data ? fdatasync(d.fd) : fsync(d.fd)) != 0) {
      return Fail("%s %s: %s", data ? "fdatasync" : "fsync", FileName(d.file).c_str(),
                  std::strerror(errno));
    }
    return true;
  }

  // The file is at least as long as this worker made it.
  bool Size() {
    const int f = static_cast<int>(Pick(W::kFiles));
    struct stat st {};
    if (stat(PathOf(f).c_str(), &st) != 0) return Fail("stat: %s", std::strerror(errno));
    if (static_cast<uint64_t>(st.st_size) < end_[f]) {
      return Fail("%s is %lld bytes, wrote up to %llu", FileName(f).c_str(),
                  static_cast<long long>(st.st_size), static_cast<unsigned long long>(end_[f]));
    }
    return true;
  }

  const std::string root_;
  const int worker_, workers_;
  std::mt19937_64 rng_;
  std::mt19937_64 burst_rng_;  // the same in every worker
  Shared* const shared_;
  int op_ = 0;
  std::vector<Fd> fds_;
  std::vector<uint8_t> model_[W::kFiles];
  uint64_t end_[W::kFiles] = {};
  long increments_ = 0;
};

// One per mount, beside the workers: stats every file in a loop. Every
// write invalidates the kernel's cached size, so these stats race the
// mount's write-back with GETATTRs. No worker ever shrinks a file (writes
// and ftruncate only extend it), so a size seen here never goes down; a
// GETATTR answered from before a WRITE that completed first did (and the
// worker reading that file then got 0 bytes in a hole: written_ends.h).
int Watch(const std::string& root, Shared* shared) {
  uint64_t seen[W::kFiles] = {};
  while (!shared->finished.load() && !shared->failed.load()) {
    for (int f = 0; f < W::kFiles; ++f) {
      struct stat st {};
      const std::string path = root + "/" + FileName(f);
      if (stat(path.c_str(), &st) != 0) {
        std::fprintf(stderr, "watcher: stat %s: %s\n", path.c_str(), std::strerror(errno));
        shared->failed.store(true);
        return 1;
      }
      const auto size = static_cast<uint64_t>(st.st_size);
      if (size < seen[f]) {
        std::fprintf(stderr, "watcher: %s shrank from %llu to %llu bytes; nobody shrinks it\n",
                     path.c_str(), static_cast<unsigned long long>(seen[f]),
                     static_cast<unsigned long long>(size));
        shared->failed.store(true);
        return 1;
      }
      seen[f] = size;
    }
    usleep(200);
  }
  return 0;
}

}  // namespace

::testing::AssertionResult SharedFileWorkload::Prepare() const {
  if (workers() > 8) return ::testing::AssertionFailure() << "at most 8 workers (kExtendedSize)";
  for (int f = 0; f < kFiles; ++f) {
    std::ofstream out(roots[0] + "/" + FileName(f));
    if (!out) return ::testing::AssertionFailure() << "cannot create " << FileName(f);
  }
  std::ofstream counter(roots[0] + "/counter");
  counter << Counter(0);
  if (!counter.flush()) return ::testing::AssertionFailure() << "cannot write the counter";
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SharedFileWorkload::Run() const {
  void* mem =
      mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return ::testing::AssertionFailure() << "mmap: " << std::strerror(errno);
  auto* shared = new (mem) Shared;
  std::vector<pid_t> watchers;
  for (const std::string& root : roots) {
    const pid_t pid = fork();
    if (pid == 0) _exit(Watch(root, shared));
    if (pid > 0) watchers.push_back(pid);
  }
  ::testing::AssertionResult result =
      RunNumberedWorkers(roots, workers_per_root, [&](const std::string& root, int worker) {
        return Worker(root, worker, workers(), seed, shared).Run(ops, model_dir);
      });
  shared->finished.store(true);
  for (pid_t pid : watchers) {
    int status = 0;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      if (result) result = ::testing::AssertionFailure();
      result << " a watcher failed (status " << status << ")";
    }
  }
  shared->~Shared();
  munmap(mem, sizeof(Shared));
  return result;
}

::testing::AssertionResult SharedFileWorkload::Verify(const std::string& dir) const {
  long increments = 0;
  for (int w = 0; w < workers(); ++w) {
    std::string text;
    if (!ReadWhole(model_dir + "/w" + std::to_string(w) + ".increments", &text)) {
      return ::testing::AssertionFailure() << "worker " << w << " left no model";
    }
    increments += std::strtol(text.c_str(), nullptr, 10);
  }
  std::string counter;
  if (!ReadWhole(dir + "/counter", &counter) || counter != Counter(increments)) {
    return ::testing::AssertionFailure() << "counter in " << dir << " is '" << counter << "', "
                                         << increments << " increments were made under flock";
  }
  for (int f = 0; f < kFiles; ++f) {
    std::vector<std::string> models(workers());
    uint64_t size = 0;
    for (int w = 0; w < workers(); ++w) {
      std::string end;
      if (!ReadWhole(ModelPath(model_dir, w, f), &models[w]) ||
          !ReadWhole(ModelPath(model_dir, w, f) + ".end", &end)) {
        return ::testing::AssertionFailure() << "worker " << w << " left no model of file " << f;
      }
      size = std::max<uint64_t>(size, std::strtoull(end.c_str(), nullptr, 10));
    }
    std::string got;
    if (!ReadWhole(dir + "/" + FileName(f), &got)) {
      return ::testing::AssertionFailure() << "cannot read " << dir << "/" << FileName(f);
    }
    if (got.size() != size) {
      return ::testing::AssertionFailure() << dir << "/" << FileName(f) << " is " << got.size()
                                           << " bytes; the furthest write ended at " << size;
    }
    for (uint64_t o = 0; o < size; ++o) {
      const uint64_t stripe = o / kStripe;
      const int w = static_cast<int>(stripe % workers());
      const uint64_t k = stripe / workers();
      const char want = k < kStripesPerWorker ? models[w][k * kStripe + o % kStripe] : 0;
      if (got[o] != want) {
        return ::testing::AssertionFailure()
               << dir << "/" << FileName(f) << " byte " << o << " (worker " << w << "'s stripe "
               << k << ") is " << static_cast<int>(static_cast<uint8_t>(got[o])) << ", want "
               << static_cast<int>(static_cast<uint8_t>(want));
      }
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace floatmount::testing
