// Torture: a seeded random file-operation exerciser with a shadow model, in
// the spirit of fsx and fsstress, for finding wrong-data bugs in a mounted
// file system (floatmount's FUSE mount; or a local directory, to check the
// tool itself).
//
// It works on a few files ("t<seed>_f<i>") in one directory, each with
// several descriptors of different kinds open at once (buffered O_RDWR,
// O_APPEND, O_DIRECT, O_RDONLY), and applies random operations: writes,
// writes past EOF that leave holes, ftruncate up and down, O_APPEND writes,
// fsync/fdatasync, reads through the writing / another / a fresh descriptor,
// mmap reads and MAP_SHARED writes (msync'd before the op ends), aligned
// O_DIRECT reads and writes, opens with O_TRUNC while another descriptor has
// buffered writes, a scratch file renamed over a file, and close/reopen.
// A byte vector per file holds the expected content: every read is checked
// for its exact length (a short read before EOF is a failure) and bytes
// (zeros in holes). After every close that publishes the file's writes
// (close-to-open: the close of a descriptor open for writing, or of any
// descriptor when nothing was written since the last fsync or such close),
// and at the end, the whole file is also compared directly in the server's
// export directory and through a second mount of the same export, when
// those paths are given.
//
// Determinism: every choice comes from one std::mt19937_64 seeded with
// Options::seed, and the choices depend only on the model, never on what the
// file system returned; so `--seed S --ops N` replays a failure exactly (the
// run stops at the first failure).
//
// On the first failure Run() prints the seed, the op number, what was wrong
// (the first differing offset, expected vs got bytes, or the errno) and the
// last 20 ops, and returns non-zero.
//
// Threads: single-threaded; Torture is used from one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <iosfwd>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace floatmount::torture {

struct Options {
  std::string dir;         // where the files live (the mount under test)
  std::string second_dir;  // the same directory through another mount; "" to skip
  std::string server_dir;  // the same directory in the server's export; "" to skip
  uint64_t seed = 1;
  int ops = 3000;
  int files = 3;
  size_t max_size = 8 << 20;  // files never grow beyond this
  bool mmap = true;           // mmap reads and MAP_SHARED writes
  bool direct = true;         // O_DIRECT descriptors
  // Renames of a scratch file over a file. Off for runs across server
  // restarts: a RENAME whose reply the crash lost is sent again in a new
  // session, finds its source gone and fails with ENOENT although it
  // happened (no reply cache survives the restart; the kernel client
  // reports the same).
  bool rename = true;
  bool verbose = false;       // print every op as it runs
  // Testing the tool: the model ignores ftruncate, so a run must fail.
  bool break_model_truncate = false;
};

// Parses the command line (argv[0] excluded) into `options`; on error returns
// a message (for usage) and leaves `options` partly set.
std::optional<std::string> ParseOptions(const std::vector<std::string>& args, Options& options);
std::string Usage();

// Exit codes of the torture command.
inline constexpr int kPassed = 0;
inline constexpr int kFailed = 1;  // a mismatch or an unexpected syscall error
inline constexpr int kUsage = 2;

class Torture {
 public:
  explicit Torture(Options options);
  ~Torture();
  Torture(const Torture&) = delete;
  Torture& operator=(const Torture&) = delete;

  // Runs options.ops operations; kPassed or kFailed. Progress and failure
  // reports go to `out`.
  int Run(std::ostream& out);

 private:
  enum class Kind { kBuffered, kAppend, kDirect, kReadOnly };
  struct Descriptor {
    int fd = -1;
    Kind kind = Kind::kBuffered;
  };
  struct File {
    std::string name;
    std::vector<uint8_t> model;  // the expected content
    std::vector<Descriptor> fds;
    int last_writer = -1;  // fd that wrote last, or -1
    // Written since the last fsync/fdatasync or close of a writable
    // descriptor: other mounts and the server may not have it yet.
    bool dirty = false;
  };
  // Thrown (inside this class only) to stop at the first failure.
  struct Failure {
    std::string what;
  };

  void Step();
  // One op of each kind; `f` is the file.
  void OpWrite(File& f, bool hole);
  void OpAppend(File& f);
  void OpWriteSetTimes(File& f);  // a write, then futimens (tar)
  // pwrite of `len` new bytes at `off` through `fd`, and the model with it.
  void PwriteAndModel(File& f, int fd, uint64_t off, size_t len);
  void OpTruncate(File& f);
  void OpSync(File& f, bool data_only);
  void OpRead(File& f, int how);  // 0 same descriptor, 1 another, 2 fresh
  void OpMmapRead(File& f);
  void OpMmapWrite(File& f);
  void OpDirectWrite(File& f);
  void OpDirectRead(File& f);
  void OpOpenTrunc(File& f);
  void OpRenameOver(File& f);
  void OpCloseReopen(File& f);
  void OpClose(File& f);

  // A descriptor of `kind` on f: an open one, or (sometimes, or if none) a
  // new one. Returns its fd.
  int PickFd(File& f, Kind kind);
  int OpenFd(File& f, Kind kind, int extra_flags = 0);
  // Closes f.fds[index], then compares the file through every view given.
  void CloseFd(File& f, size_t index, bool compare = true);
  // Whole-file compares: through a fresh descriptor on `dir`.
  void CompareWhole(const File& f, const std::string& dir, const char* view);
  void CompareViews(const File& f, bool include_mount);
  // Checks a read of `want` bytes at `off` that returned `got` (n bytes).
  void CheckRead(const File& f, const char* how, int fd, uint64_t off, size_t want,
                 const uint8_t* got, ssize_t n);

  uint64_t Rand(uint64_t n);  // uniform in [0, n)
  bool Chance(int percent);
  size_t RandLength(size_t max);  // biased towards small, sometimes large
  void FillData(uint8_t* buf, size_t len);
  std::string PathOf(const std::string& dir, const std::string& name) const;
  void Note(std::string description);  // records an op in the ring
  [[noreturn]] void Fail(std::string what);
  [[noreturn]] void FailErrno(const std::string& call);

  const Options options_;
  std::mt19937_64 rng_;
  std::vector<File> files_;
  int op_ = 0;
  std::string current_;          // the current op's description
  std::deque<std::string> ring_;  // the last 20 ops
  std::ostream* out_ = nullptr;
  // Page-aligned scratch buffers (O_DIRECT needs alignment) of buffer_size_.
  uint8_t* write_buf_ = nullptr;
  uint8_t* read_buf_ = nullptr;
  size_t buffer_size_ = 0;
};

}  // namespace floatmount::torture
