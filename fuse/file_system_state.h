// FileSystem's per-open state (internal to fuse/file_system*.cc).
#pragma once

#include <mutex>
#include <optional>

#include "fuse/file_system.h"
#include "fuse/timer_queue.h"

namespace floatmount::fuse {

// One open(2) of a file: the NFS open, who opened it, and what its writes
// left to commit. Shared by the registry and by calls in flight.
struct FileSystem::OpenFileState {
  InodeId ino = 0;
  nfs::FileHandle fh;
  nfs::Credentials cred;  // the opener's: reads and writes run as them
  std::shared_ptr<nfs::OpenFile> file;
  bool direct = false;

  std::mutex mu;
  bool dirty = false;                          // GUARDED_BY(mu): UNSTABLE data not yet committed
  std::optional<nfs::WriteVerifier> verifier;  // GUARDED_BY(mu): of those writes
  bool verifier_changed = false;               // GUARDED_BY(mu): the server restarted in between
  int error = 0;                               // GUARDED_BY(mu): to report on next write/flush/fsync

  // Takes the sticky error (reported once).
  int TakeError() {
    std::lock_guard<std::mutex> lock(mu);
    return std::exchange(error, 0);
  }
};

// One opendir(2): the NFS cookie verifier and the entries fetched but not
// yet handed to the kernel.
struct FileSystem::DirState {
  InodeId ino = 0;
  nfs::FileHandle fh;
  std::mutex mu;
  std::array<uint8_t, 8> verifier{};  // GUARDED_BY(mu)
  std::vector<nfs::DirEntry> buffered;  // GUARDED_BY(mu): fetched after `buffered_after`
  uint64_t buffered_after = 0;          // GUARDED_BY(mu): cookie they follow
  bool buffered_eof = false;            // GUARDED_BY(mu)
};

}  // namespace floatmount::fuse
