// FileSystem's open-file state (internal to fuse/file_system*.cc).
#pragma once

#include <chrono>
#include <deque>
#include <mutex>
#include <optional>

#include "fuse/cache/file_cache.h"
#include "fuse/file_system.h"

namespace floatmount::fuse {

// One NFS open shared by every open(2) of a file by one user, as the
// kernel NFS client shares its open state. POSIX locks belong to a process
// across all its descriptors of a file, and NFSv4 ties lock owners to an
// open, so descriptors of one user must share it. The open's share access
// only grows (Client::Upgrade) while descriptors use it.
struct FileSystem::SharedOpen {
  InodeId ino = 0;
  nfs::FileHandle fh;
  nfs::Credentials cred;  // the first opener's: reads and writes run as them
  int refs = 0;           // GUARDED_BY(FileSystem::mu_): descriptors and opens under way

  std::mutex mu;  // acquired after FileSystem::mu_
  std::shared_ptr<nfs::OpenFile> file;           // GUARDED_BY(mu); set once opened
  bool ready = false;                            // GUARDED_BY(mu): the OPEN finished
  int open_error = 0;                            // GUARDED_BY(mu): ... and failed with this
  std::vector<std::function<void()>> waiting;    // GUARDED_BY(mu): opens that came meanwhile
  bool read = false;                             // GUARDED_BY(mu): share access held
  bool write = false;                            // GUARDED_BY(mu)
  std::shared_ptr<FileCache> cache;              // set at creation: the file's, shared by users

  std::shared_ptr<nfs::OpenFile> File() {
    std::lock_guard<std::mutex> lock(mu);
    return file;
  }
};

// One open(2): the shared NFS open and how this descriptor uses it.
struct FileSystem::OpenFileState {
  std::shared_ptr<SharedOpen> shared;
  InodeId ino = 0;
  bool direct = false;
  std::unique_ptr<ReadPattern> pattern;    // this descriptor's sequential streams
  std::atomic<uint64_t> errors_seen{0};    // the cache's error sequence it has seen

  CacheIdentity Identity() const { return CacheIdentity{shared->cred, shared->File()}; }
};

// One opendir(2): the NFS cookie verifier and the entries fetched but not
// yet handed to the kernel.
struct FileSystem::DirState {
  InodeId ino = 0;
  nfs::FileHandle fh;
  std::mutex mu;
  std::array<uint8_t, 8> verifier{};    // GUARDED_BY(mu)
  // GUARDED_BY(mu): fetched after `buffered_after`. A deque: a page of
  // thousands of entries goes out a few dozen at a time from the front.
  std::deque<nfs::DirEntry> buffered;
  uint64_t buffered_after = 0;          // GUARDED_BY(mu): cookie they follow
  bool buffered_eof = false;            // GUARDED_BY(mu)
  uint64_t buffered_stamp = 0;          // GUARDED_BY(mu): SizeStamp() before their READDIR
  InodeTable::SendMark buffered_sent;   // GUARDED_BY(mu): inodes_.Mark() before it
  // GUARDED_BY(mu): when their READDIR was sent. An entry's attributes and
  // name are handed to the kernel for what is left of the timeouts.
  std::chrono::steady_clock::time_point buffered_asked{};
  uint32_t readdir_bytes = 0;           // GUARDED_BY(mu): the next READDIR's size
};

}  // namespace floatmount::fuse
