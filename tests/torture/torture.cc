// The op generator, the shadow model and the checks of torture.h.
// Threads: single-threaded.
#include "tests/torture/torture.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <utility>

#include "tests/torture/args.h"

namespace floatmount::torture {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kRingSize = 20;
constexpr size_t kMaxIo = 2 << 20;  // longest single read or write
constexpr size_t kMaxFdsPerFile = 6;

const char* KindName(int kind) {
  static const char* const kNames[] = {"buffered", "append", "direct", "rdonly"};
  return kNames[kind];
}

std::string Hex(const uint8_t* p, size_t n) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(b, sizeof b, "%02x", p[i]);
    s += b;
    if (i + 1 < n) s += ' ';
  }
  return s;
}

// "expected N bytes, got M; first difference at offset X: expected .. got .."
// or empty if equal. `base` is the file offset of expected[0].
std::string Diff(const uint8_t* expected, size_t expected_len, const uint8_t* got, size_t got_len,
                 uint64_t base) {
  const size_t common = std::min(expected_len, got_len);
  size_t i = 0;
  while (i < common && expected[i] == got[i]) ++i;
  if (i == common && expected_len == got_len) return "";
  std::ostringstream s;
  if (expected_len != got_len) {
    s << "expected " << expected_len << " bytes, got " << got_len
      << (got_len < expected_len ? " (SHORT)" : " (LONG)") << "; ";
  }
  if (i < common) {
    const size_t n = std::min<size_t>(16, common - i);
    s << "first differing offset " << (base + i) << ": expected [" << Hex(expected + i, n)
      << "] got [" << Hex(got + i, n) << "]";
    size_t j = i;
    while (j < common && expected[j] != got[j]) ++j;
    s << " (differs for " << (j - i) << " bytes from there";
    bool zeros = true;
    for (size_t k = i; k < j && zeros; ++k) zeros = got[k] == 0;
    if (zeros) s << ", got zeros";
    s << ")";
  } else if (common > 0) {
    s << "bytes equal over the common " << common << " bytes (up to offset " << (base + common)
      << ")";
  }
  return s.str();
}

}  // namespace

std::string Usage() {
  return "usage: torture --dir D [--second-dir D2] [--server-dir S] [--seed N] [--ops N]\n"
         "               [--files N] [--max-size BYTES] [--no-mmap] [--no-direct] [--no-rename]\n"
         "               [--verbose]\n"
         "               [--break-model-truncate]\n"
         "Random file operations on N files in D, checked against an in-memory model;\n"
         "whole files are compared also through D2 (another mount of the same export)\n"
         "and S (the server's export directory) after every close. Exit 0 if all\n"
         "matched, 1 on the first mismatch (replay with the printed --seed/--ops), 2 on\n"
         "usage errors. --break-model-truncate makes the model ignore ftruncate (to\n"
         "check that the tool catches it).\n";
}

std::optional<std::string> ParseOptions(const std::vector<std::string>& args, Options& o) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    uint64_t n = 0;
    if (a == "--dir") {
      if (!TakeValue(args, i, o.dir)) return "--dir needs a value";
    } else if (a == "--second-dir") {
      if (!TakeValue(args, i, o.second_dir)) return "--second-dir needs a value";
    } else if (a == "--server-dir") {
      if (!TakeValue(args, i, o.server_dir)) return "--server-dir needs a value";
    } else if (a == "--seed") {
      if (!TakeNumber(args, i, o.seed)) return "--seed needs a number";
    } else if (a == "--ops") {
      if (!TakeNumber(args, i, n) || n > 100000000) return "--ops needs a number";
      o.ops = static_cast<int>(n);
    } else if (a == "--files") {
      if (!TakeNumber(args, i, n) || n < 1 || n > 100) return "--files needs a number in 1..100";
      o.files = static_cast<int>(n);
    } else if (a == "--max-size") {
      if (!TakeNumber(args, i, n) || n < kPage * 4 || n > (1ull << 32))
        return "--max-size: 16384..4 GiB";
      o.max_size = n;
    } else if (a == "--no-mmap") {
      o.mmap = false;
    } else if (a == "--no-direct") {
      o.direct = false;
    } else if (a == "--no-rename") {
      o.rename = false;
    } else if (a == "--verbose") {
      o.verbose = true;
    } else if (a == "--break-model-truncate") {
      o.break_model_truncate = true;
    } else {
      return "unknown argument " + a;
    }
  }
  if (o.dir.empty()) return "--dir is required";
  return std::nullopt;
}

Torture::Torture(Options options) : options_(std::move(options)), rng_(options_.seed) {
  buffer_size_ = (std::max(options_.max_size, kMaxIo) + kPage) / kPage * kPage + kPage;
  void* w = nullptr;
  void* r = nullptr;
  if (posix_memalign(&w, kPage, buffer_size_) != 0 || posix_memalign(&r, kPage, buffer_size_) != 0) {
    std::abort();
  }
  write_buf_ = static_cast<uint8_t*>(w);
  read_buf_ = static_cast<uint8_t*>(r);
}

Torture::~Torture() {
  for (File& f : files_) {
    for (const auto& d : f.fds) close(d.fd);
  }
  std::free(write_buf_);
  std::free(read_buf_);
}

int Torture::Run(std::ostream& out) {
  out_ = &out;
  try {
    current_ = "setup: ";
    for (int i = 0; i < options_.files; ++i) {
      File f;
      f.name = "t" + std::to_string(options_.seed) + "_f" + std::to_string(i);
      files_.push_back(std::move(f));
      OpenFd(files_.back(), Kind::kBuffered, O_CREAT | O_TRUNC);
    }
    for (op_ = 0; op_ < options_.ops; ++op_) Step();
    op_ = options_.ops;
    current_ = "final close of every descriptor and compare";
    for (File& f : files_) {
      while (!f.fds.empty()) CloseFd(f, f.fds.size() - 1, f.fds.size() == 1);
      CompareWhole(f, options_.dir, "mount");
    }
  } catch (const Failure& failure) {
    out << "torture: FAILED seed=" << options_.seed << " op=" << op_ << " ("
        << (ring_.empty() ? current_ : ring_.back()) << ")\n"
        << "  " << failure.what << "\n"
        << "  replay: torture --seed " << options_.seed << " --ops " << (op_ + 1) << " --files "
        << options_.files << " --max-size " << options_.max_size
        << (options_.mmap ? "" : " --no-mmap") << (options_.direct ? "" : " --no-direct")
        << (options_.rename ? "" : " --no-rename")
        << " --dir ...\n"
        << "  last " << ring_.size() << " ops:\n";
    for (const auto& r : ring_) out << "    " << r << "\n";
    out.flush();
    return kFailed;
  }
  for (const File& f : files_) {
    unlink(PathOf(options_.dir, f.name).c_str());
  }
  out << "torture: passed seed=" << options_.seed << " ops=" << options_.ops << "\n";
  return kPassed;
}

// ---- the op mix ------------------------------------------------------------

void Torture::Step() {
  File& f = files_[Rand(files_.size())];
  // Weights: writes and reads dominate; the rarer ops still come up dozens
  // of times in 3000 ops.
  struct Choice {
    int weight;
    int op;
  };
  static constexpr Choice kChoices[] = {
      {14, 0},  // write
      {6, 1},   // write past EOF (hole)
      {6, 2},   // ftruncate
      {5, 3},   // O_APPEND write
      {3, 4},   // fsync
      {3, 5},   // fdatasync
      {9, 6},   // read through the writer
      {9, 7},   // read through another descriptor
      {4, 8},   // read through a fresh descriptor
      {4, 9},   // mmap read
      {4, 10},  // mmap write
      {5, 11},  // O_DIRECT write
      {5, 12},  // O_DIRECT read
      {3, 13},  // open O_TRUNC through a second descriptor
      {1, 14},  // rename a scratch file over the file
      {3, 15},  // close + reopen with a full compare
      {3, 16},  // close a descriptor
      {3, 17},  // a write, then the times set through its descriptor (tar)
  };
  int total = 0;
  for (const auto& c : kChoices) total += c.weight;
  int pick = static_cast<int>(Rand(total));
  int op = 0;
  for (const auto& c : kChoices) {
    if (pick < c.weight) {
      op = c.op;
      break;
    }
    pick -= c.weight;
  }
  if (!options_.mmap && (op == 9 || op == 10)) op = 7;
  if (!options_.direct && (op == 11 || op == 12)) op = op == 11 ? 0 : 8;
  if (!options_.rename && op == 14) op = 15;
  current_ = f.name + ": ";
  switch (op) {
    case 0: return OpWrite(f, false);
    case 1: return OpWrite(f, true);
    case 2: return OpTruncate(f);
    case 3: return OpAppend(f);
    case 4: return OpSync(f, false);
    case 5: return OpSync(f, true);
    case 6: return OpRead(f, 0);
    case 7: return OpRead(f, 1);
    case 8: return OpRead(f, 2);
    case 9: return OpMmapRead(f);
    case 10: return OpMmapWrite(f);
    case 11: return OpDirectWrite(f);
    case 12: return OpDirectRead(f);
    case 13: return OpOpenTrunc(f);
    case 14: return OpRenameOver(f);
    case 15: return OpCloseReopen(f);
    case 17: return OpWriteSetTimes(f);
    default: return OpClose(f);
  }
}

// ---- ops -------------------------------------------------------------------

void Torture::OpWrite(File& f, bool hole) {
  const size_t size = f.model.size();
  size_t len = RandLength(std::min(kMaxIo, options_.max_size));
  uint64_t off;
  if (hole) {
    // Past EOF, leaving a hole of 1 byte .. 1 MiB (or as much as fits).
    if (size + 2 > options_.max_size) return OpTruncate(f);
    const uint64_t gap = 1 + Rand(std::min<uint64_t>(1 << 20, options_.max_size - size - 1));
    off = size + gap;
    len = std::min<size_t>(len, options_.max_size - off);
    if (len == 0) len = 1;
  } else {
    // Anywhere from 0 to EOF (often overlapping it).
    off = Rand(std::min<uint64_t>(size + 1, options_.max_size));
    len = std::min<size_t>(len, options_.max_size - off);
    if (len == 0) return OpTruncate(f);
  }
  const int fd = PickFd(f, Kind::kBuffered);
  Note("pwrite(fd " + std::to_string(fd) + ", off " + std::to_string(off) + ", len " +
       std::to_string(len) + ")" + (hole ? " past EOF " + std::to_string(size) : ""));
  PwriteAndModel(f, fd, off, len);
}

void Torture::PwriteAndModel(File& f, int fd, uint64_t off, size_t len) {
  FillData(write_buf_, len);
  const ssize_t n = pwrite(fd, write_buf_, len, static_cast<off_t>(off));
  if (n < 0) FailErrno("pwrite");
  if (static_cast<size_t>(n) != len) Fail("short pwrite: " + std::to_string(n));
  if (f.model.size() < off + len) f.model.resize(off + len, 0);
  std::memcpy(f.model.data() + off, write_buf_, len);
  f.dirty = true;
}

// As tar extracts a file: a write, then futimens and fchown through the
// same descriptor (floatmount sends the SETATTR in the compound of the
// write's bytes when they are one WRITE, and answers the kernel's GETATTR
// before the chown from its reply). The times must be the ones set, and
// stay so: the bytes went before them.
void Torture::OpWriteSetTimes(File& f) {
  const size_t size = f.model.size();
  const uint64_t off = Rand(std::min<uint64_t>(size + 1, options_.max_size));
  const size_t len = std::min<size_t>(RandLength(64 << 10), options_.max_size - off);
  if (len == 0) return OpTruncate(f);
  const int fd = PickFd(f, Kind::kBuffered);
  const time_t mtime = 1000000000 + static_cast<time_t>(Rand(1000000));
  Note("pwrite(fd " + std::to_string(fd) + ", off " + std::to_string(off) + ", len " +
       std::to_string(len) + ") + futimens(mtime " + std::to_string(mtime) +
       ") + fchown(self) + fsync + fstat");
  PwriteAndModel(f, fd, off, len);
  const struct timespec times[2] = {{0, UTIME_OMIT}, {mtime, 0}};
  if (futimens(fd, times) != 0) FailErrno("futimens");
  if (fchown(fd, geteuid(), getegid()) != 0) FailErrno("fchown");
  if (fsync(fd) != 0) FailErrno("fsync");
  struct stat st;
  if (fstat(fd, &st) != 0) FailErrno("fstat");
  if (st.st_mtime != mtime) {
    Fail("mtime " + std::to_string(st.st_mtime) + " after futimens set " + std::to_string(mtime));
  }
  if (static_cast<uint64_t>(st.st_size) != f.model.size()) {
    Fail("size " + std::to_string(st.st_size) + " after a write and futimens, expected " +
         std::to_string(f.model.size()));
  }
}

void Torture::OpAppend(File& f) {
  const size_t size = f.model.size();
  if (size + 1 > options_.max_size) return OpTruncate(f);
  const size_t len = std::min(RandLength(1 << 20), options_.max_size - size);
  const int fd = PickFd(f, Kind::kAppend);
  FillData(write_buf_, len);
  Note("write(O_APPEND fd " + std::to_string(fd) + ", len " + std::to_string(len) + ") at EOF " +
       std::to_string(size));
  const ssize_t n = write(fd, write_buf_, len);
  if (n < 0) FailErrno("write(O_APPEND)");
  if (static_cast<size_t>(n) != len) Fail("short append: " + std::to_string(n));
  f.model.insert(f.model.end(), write_buf_, write_buf_ + len);
  f.dirty = true;
}

void Torture::OpTruncate(File& f) {
  const size_t size = f.model.size();
  uint64_t to;
  if (size > 0 && Chance(55)) {
    to = Chance(10) ? 0 : Rand(size);  // down
  } else {
    to = size + Rand(std::min<uint64_t>(2 << 20, options_.max_size - size) + 1);  // up
  }
  const int fd = PickFd(f, Kind::kBuffered);
  Note("ftruncate(fd " + std::to_string(fd) + ", " + std::to_string(to) + ") from " +
       std::to_string(size));
  if (ftruncate(fd, static_cast<off_t>(to)) != 0) FailErrno("ftruncate");
  if (!options_.break_model_truncate) f.model.resize(to, 0);
}

void Torture::OpSync(File& f, bool data_only) {
  const auto& d = f.fds[Rand(f.fds.size())];
  Note(std::string(data_only ? "fdatasync" : "fsync") + "(fd " + std::to_string(d.fd) + " " +
       KindName(static_cast<int>(d.kind)) + ")");
  if ((data_only ? fdatasync(d.fd) : fsync(d.fd)) != 0) {
    FailErrno(data_only ? "fdatasync" : "fsync");
  }
  f.dirty = false;
}

void Torture::OpRead(File& f, int how) {
  const size_t size = f.model.size();
  // Offsets anywhere up to a little past EOF; lengths small to 2 MiB.
  const uint64_t off = Rand(size + 65536);
  const size_t len = 1 + RandLength(kMaxIo - 1);
  int fd = -1;
  bool fresh = false;
  const char* how_name = "same";
  if (how == 0 && f.last_writer >= 0) {
    fd = f.last_writer;
  } else if (how == 2) {
    fresh = true;
    how_name = "fresh";
  } else {
    how_name = "other";
    std::vector<int> readable;
    for (const auto& d : f.fds) {
      if (d.kind == Kind::kBuffered || d.kind == Kind::kReadOnly) readable.push_back(d.fd);
    }
    if (readable.size() < 2 || Chance(25)) {
      fd = OpenFd(f, Kind::kReadOnly);
    } else {
      // Another descriptor than the last writer, if possible.
      fd = readable[Rand(readable.size())];
      if (fd == f.last_writer) fd = readable[(std::find(readable.begin(), readable.end(), fd) -
                                              readable.begin() + 1) % readable.size()];
    }
  }
  if (fd < 0) fd = PickFd(f, Kind::kReadOnly);
  if (fresh) {
    Note("open(O_RDONLY) + pread(off " + std::to_string(off) + ", len " + std::to_string(len) +
         ") + close, size " + std::to_string(size));
    const int tmp = open(PathOf(options_.dir, f.name).c_str(), O_RDONLY);
    if (tmp < 0) FailErrno("open");
    const ssize_t n = pread(tmp, read_buf_, len, static_cast<off_t>(off));
    const int err = errno;
    close(tmp);
    errno = err;
    CheckRead(f, "fresh descriptor", tmp, off, len, read_buf_, n);
    return;
  }
  Note(std::string("pread(") + how_name + " fd " + std::to_string(fd) + ", off " +
       std::to_string(off) + ", len " + std::to_string(len) + "), size " + std::to_string(size));
  const ssize_t n = pread(fd, read_buf_, len, static_cast<off_t>(off));
  CheckRead(f, how_name, fd, off, len, read_buf_, n);
}

void Torture::OpMmapRead(File& f) {
  const size_t size = f.model.size();
  if (size == 0) return OpRead(f, 1);
  const int fd = PickFd(f, Kind::kBuffered);
  const uint64_t off = Rand((size + kPage - 1) / kPage) * kPage;
  const size_t len = std::min<size_t>(1 + RandLength((1 << 20) - 1), size - off);
  Note("mmap(fd " + std::to_string(fd) + ", off " + std::to_string(off) + ", len " +
       std::to_string(len) + ") read, size " + std::to_string(size));
  void* p = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, static_cast<off_t>(off));
  if (p == MAP_FAILED) FailErrno("mmap");
  std::memcpy(read_buf_, p, len);
  munmap(p, len);
  const std::string d = Diff(f.model.data() + off, len, read_buf_, len, off);
  if (!d.empty()) Fail("mmap read mismatch: " + d);
}

void Torture::OpMmapWrite(File& f) {
  const size_t size = f.model.size();
  if (size == 0) return OpWrite(f, false);
  const int fd = PickFd(f, Kind::kBuffered);
  const uint64_t off = Rand((size + kPage - 1) / kPage) * kPage;
  const uint64_t in_page = Rand(std::min<uint64_t>(kPage, size - off));
  const size_t len = std::min<size_t>(1 + RandLength((1 << 20) - 1), size - off - in_page);
  FillData(write_buf_, len);
  Note("mmap(fd " + std::to_string(fd) + ", off " + std::to_string(off) + ") write at " +
       std::to_string(off + in_page) + " len " + std::to_string(len) + " + msync, size " +
       std::to_string(size));
  const size_t map_len = in_page + len;
  void* p = mmap(nullptr, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(off));
  if (p == MAP_FAILED) FailErrno("mmap");
  std::memcpy(static_cast<uint8_t*>(p) + in_page, write_buf_, len);
  if (msync(p, map_len, MS_SYNC) != 0) {
    const int err = errno;
    munmap(p, map_len);
    errno = err;
    FailErrno("msync");
  }
  munmap(p, map_len);
  std::memcpy(f.model.data() + off + in_page, write_buf_, len);
  f.dirty = true;
}

void Torture::OpDirectWrite(File& f) {
  const size_t size = f.model.size();
  const uint64_t max_pages = options_.max_size / kPage;
  // Aligned, anywhere up to a little past EOF (so sometimes leaving a hole).
  const uint64_t end_pages = std::min<uint64_t>((size + kPage - 1) / kPage + 64, max_pages - 1);
  const uint64_t off = Rand(end_pages + 1) * kPage;
  const size_t pages = std::min<uint64_t>(1 + RandLength(255), max_pages - off / kPage);
  const size_t len = pages * kPage;
  const int fd = PickFd(f, Kind::kDirect);
  FillData(write_buf_, len);
  Note("pwrite(O_DIRECT fd " + std::to_string(fd) + ", off " + std::to_string(off) + ", len " +
       std::to_string(len) + "), size " + std::to_string(size));
  const ssize_t n = pwrite(fd, write_buf_, len, static_cast<off_t>(off));
  if (n < 0) FailErrno("pwrite(O_DIRECT)");
  if (static_cast<size_t>(n) != len) Fail("short O_DIRECT pwrite: " + std::to_string(n));
  if (f.model.size() < off + len) f.model.resize(off + len, 0);
  std::memcpy(f.model.data() + off, write_buf_, len);
  f.dirty = true;
  f.last_writer = -1;  // the next "same" read goes through a buffered descriptor
}

void Torture::OpDirectRead(File& f) {
  const size_t size = f.model.size();
  const uint64_t off = Rand((size + kPage - 1) / kPage + 2) * kPage;
  const size_t len = (1 + RandLength(255)) * kPage;
  const int fd = PickFd(f, Kind::kDirect);
  Note("pread(O_DIRECT fd " + std::to_string(fd) + ", off " + std::to_string(off) + ", len " +
       std::to_string(len) + "), size " + std::to_string(size));
  const ssize_t n = pread(fd, read_buf_, len, static_cast<off_t>(off));
  CheckRead(f, "O_DIRECT", fd, off, len, read_buf_, n);
}

void Torture::OpOpenTrunc(File& f) {
  // Often right after buffered writes through another descriptor.
  if (f.last_writer < 0 || Chance(30)) OpWrite(f, false);
  const bool keep = Chance(50);
  const int fd = OpenFd(f, Kind::kBuffered, O_TRUNC);
  f.model.clear();
  if (!keep) {
    // Close only this descriptor; the others (with their buffered writes)
    // stay open.
    for (size_t i = 0; i < f.fds.size(); ++i) {
      if (f.fds[i].fd == fd) {
        CloseFd(f, i);
        break;
      }
    }
  }
}

void Torture::OpRenameOver(File& f) {
  // Open descriptors would keep the replaced inode alive (silly rename on
  // NFS): close them first, then rename a scratch file over the name.
  while (!f.fds.empty()) CloseFd(f, f.fds.size() - 1, f.fds.size() == 1);
  const std::string scratch = f.name + ".scratch";
  const size_t len = RandLength(options_.max_size / 2);
  FillData(write_buf_, len);
  Note("write scratch file " + scratch + " (" + std::to_string(len) + " bytes) + rename over " +
       f.name);
  const int fd = open(PathOf(options_.dir, scratch).c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) FailErrno("open scratch");
  const ssize_t n = len == 0 ? 0 : write(fd, write_buf_, len);
  if (n < 0 || static_cast<size_t>(n) != len) FailErrno("write scratch");
  if (close(fd) != 0) FailErrno("close scratch");
  if (rename(PathOf(options_.dir, scratch).c_str(), PathOf(options_.dir, f.name).c_str()) != 0) {
    FailErrno("rename");
  }
  f.model.assign(write_buf_, write_buf_ + len);
  CompareViews(f, true);
  OpenFd(f, Kind::kBuffered);
}

void Torture::OpCloseReopen(File& f) {
  const size_t index = Rand(f.fds.size());
  const Kind kind = f.fds[index].kind;
  CloseFd(f, index);
  CompareWhole(f, options_.dir, "mount (reopened)");
  OpenFd(f, kind);
}

void Torture::OpClose(File& f) {
  if (f.fds.size() <= 1) return OpCloseReopen(f);
  CloseFd(f, Rand(f.fds.size()));
}

// ---- descriptors -----------------------------------------------------------

int Torture::PickFd(File& f, Kind kind) {
  std::vector<int> matching;
  for (const auto& d : f.fds) {
    if (d.kind == kind || (kind == Kind::kReadOnly && d.kind == Kind::kBuffered)) {
      matching.push_back(d.fd);
    }
  }
  int fd;
  if (matching.empty() || (f.fds.size() < kMaxFdsPerFile && Chance(10))) {
    fd = OpenFd(f, kind);
  } else {
    fd = matching[Rand(matching.size())];
  }
  if (kind == Kind::kBuffered) f.last_writer = fd;
  return fd;
}

int Torture::OpenFd(File& f, Kind kind, int extra_flags) {
  if (f.fds.size() >= kMaxFdsPerFile) {
    // Keep the table small: close the oldest (without the whole-file compare).
    CloseFd(f, 0, false);
  }
  int flags = O_RDWR;
  if (kind == Kind::kAppend) flags = O_WRONLY | O_APPEND;
  if (kind == Kind::kDirect) flags = O_RDWR | O_DIRECT;
  if (kind == Kind::kReadOnly) flags = O_RDONLY;
  flags |= extra_flags;
  const int fd = open(PathOf(options_.dir, f.name).c_str(), flags, 0644);
  Note("open(" + f.name + ", " + KindName(static_cast<int>(kind)) +
       ((extra_flags & O_TRUNC) ? "|O_TRUNC" : "") + ((extra_flags & O_CREAT) ? "|O_CREAT" : "") +
       ") = " + std::to_string(fd));
  if (fd < 0) {
    if (kind == Kind::kDirect && errno == EINVAL) {
      Fail("O_DIRECT is not supported here (EINVAL); run with --no-direct");
    }
    FailErrno("open");
  }
  f.fds.push_back({fd, kind});
  return fd;
}

void Torture::CloseFd(File& f, size_t index, bool compare) {
  const Descriptor d = f.fds[index];
  f.fds.erase(f.fds.begin() + static_cast<long>(index));
  if (f.last_writer == d.fd) f.last_writer = -1;
  Note("close(fd " + std::to_string(d.fd) + " " + KindName(static_cast<int>(d.kind)) + "), size " +
       std::to_string(f.model.size()));
  if (close(d.fd) != 0) FailErrno("close");
  // Close-to-open: closing a descriptor open for writing publishes every
  // write to the file (as the kernel NFS client's flush on close); closing a
  // read-only one publishes nothing, so other views may lag until then.
  if (d.kind != Kind::kReadOnly) f.dirty = false;
  if (compare && !f.dirty) CompareViews(f, false);
}

// ---- checks ----------------------------------------------------------------

void Torture::CompareViews(const File& f, bool include_mount) {
  // The server first: if it is right and a mount is not, the mount's cache
  // is at fault, not the write-back of the mount under test.
  if (!options_.server_dir.empty()) CompareWhole(f, options_.server_dir, "server export");
  if (include_mount) CompareWhole(f, options_.dir, "mount");
  if (!options_.second_dir.empty()) CompareWhole(f, options_.second_dir, "second mount");
}

void Torture::CompareWhole(const File& f, const std::string& dir, const char* view) {
  const std::string path = PathOf(dir, f.name);
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) FailErrno(std::string("open through the ") + view + " " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    close(fd);
    FailErrno("fstat");
  }
  std::vector<uint8_t> got(std::max<size_t>(f.model.size() + 65536, st.st_size));
  size_t total = 0;
  while (total < got.size()) {
    const ssize_t n = read(fd, got.data() + total, got.size() - total);
    if (n < 0) {
      const int err = errno;
      close(fd);
      errno = err;
      FailErrno(std::string("read through the ") + view);
    }
    if (n == 0) break;
    total += static_cast<size_t>(n);
  }
  close(fd);
  std::string what;
  if (static_cast<size_t>(st.st_size) != f.model.size()) {
    what = "st_size " + std::to_string(st.st_size) + ", expected " +
           std::to_string(f.model.size()) + "; ";
  }
  const std::string d = Diff(f.model.data(), f.model.size(), got.data(), total, 0);
  if (!d.empty() || !what.empty()) {
    Fail(std::string("whole-file compare through the ") + view + " (" + path + "): " + what + d);
  }
}

void Torture::CheckRead(const File& f, const char* how, int fd, uint64_t off, size_t want,
                        const uint8_t* got, ssize_t n) {
  if (n < 0) FailErrno(std::string("pread (") + how + ")");
  const size_t size = f.model.size();
  const size_t expected = off >= size ? 0 : std::min<size_t>(want, size - off);
  const std::string d = Diff(f.model.data() + std::min<size_t>(off, size), expected, got,
                             static_cast<size_t>(n), off);
  if (!d.empty()) {
    Fail(std::string("read through ") + how + " fd " + std::to_string(fd) + ": asked " +
         std::to_string(want) + " bytes at " + std::to_string(off) + " of a " +
         std::to_string(size) + "-byte file: " + d);
  }
}

// ---- helpers ---------------------------------------------------------------

uint64_t Torture::Rand(uint64_t n) {
  return n <= 1 ? 0 : std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_);
}

bool Torture::Chance(int percent) { return static_cast<int>(Rand(100)) < percent; }

size_t Torture::RandLength(size_t max) {
  if (max == 0) return 0;
  switch (Rand(4)) {
    case 0: return Rand(std::min<size_t>(max, 512)) + 1;       // tiny
    case 1: return Rand(std::min<size_t>(max, 65536)) + 1;     // small
    case 2: return Rand(std::min<size_t>(max, 262144)) + 1;    // medium
    default: return Rand(max) + 1;                              // up to max
  }
}

void Torture::FillData(uint8_t* buf, size_t len) {
  // splitmix64 from one draw of the generator: cheap, and never all zeros.
  uint64_t x = rng_();
  for (size_t i = 0; i < len; i += 8) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    std::memcpy(buf + i, &z, std::min<size_t>(8, len - i));
  }
}

std::string Torture::PathOf(const std::string& dir, const std::string& name) const {
  return dir + "/" + name;
}

void Torture::Note(std::string description) {
  std::string line = "#" + std::to_string(op_) + " " + current_ + description;
  if (options_.verbose) *out_ << line << "\n";
  ring_.push_back(std::move(line));
  if (ring_.size() > kRingSize) ring_.pop_front();
}

void Torture::Fail(std::string what) { throw Failure{std::move(what)}; }

void Torture::FailErrno(const std::string& call) {
  const int err = errno;
  Fail(call + " failed: " + std::strerror(err) + " (errno " + std::to_string(err) + ")");
}

}  // namespace floatmount::torture
