// WrittenEnds: where this mount's completed WRITEs left each file's end, so
// that attributes the server made before one of those WRITEs reached it do
// not shrink the file.
//
// The race: the kernel asks GETATTR (or LOOKUP) of a file this mount has
// buffered writes for; the server answers with the size before them; the
// write-back WRITE completes before that answer is read, so the cache no
// longer counts its bytes as pending (FileCache::PendingEnd), and the old
// size went to the kernel, which then ended every read there: a short read
// inside the file, 0 bytes in a hole below the real end (SharedFileStress
// found it in CI). The kernel's FUSE module guards the same race for its
// own writes (attr_version), but a buffered write was answered long before
// its WRITE reached the server. The kernel NFS client's attribute
// generations (nfs_inode attr_gencount) exist for the same reason.
//
// Use: take Stamp() before sending a request whose answer carries a size;
// with the answer, SizeAfter() gives the size to believe: the server's, or
// further if a WRITE of this mount that completed after the stamp ended
// further. Written() is called for every completed WRITE before the cache
// stops counting its bytes as pending, so that one of the two always covers
// them. A truncate by this mount (Resized) makes the server's size the
// truth again: the writes before it no longer bound the file.
//
// Bounded: per file, the writes no newer write ended beyond (a staircase of
// sequence numbers rising while ends fall), at most kSteps; past that the
// oldest two steps merge into the newer one with the further end, which
// can only make a size larger for a very old stamp (never cut our bytes).
//
// Threads: any (FUSE workers, network completions under a FileCache's
// mutex); one mutex; calls nothing.
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "fuse/inode_table.h"

namespace floatmount::fuse {

class WrittenEnds {
 public:
  static constexpr size_t kSteps = 16;

  // Taken before a request whose answer carries a size.
  uint64_t Stamp() const;
  // A WRITE of this mount to `ino` completed: the file reaches `end`.
  void Written(InodeId ino, uint64_t end);
  // This mount truncated or extended `ino` (SETATTR size, O_TRUNC): its
  // answer is the size, whatever our earlier WRITEs did.
  void Resized(InodeId ino);
  // The kernel forgot `ino`.
  void Forget(InodeId ino);
  // The size to believe of an answer sent after `stamp` that says `size`.
  uint64_t SizeAfter(InodeId ino, uint64_t stamp, uint64_t size) const;

  size_t files() const;  // for tests

 private:
  struct Step {
    uint64_t seq;  // when the WRITE completed
    uint64_t end;  // the furthest end of it and every later WRITE
  };

  mutable std::mutex mu_;
  uint64_t seq_ = 0;                                      // GUARDED_BY(mu_)
  std::unordered_map<InodeId, std::vector<Step>> files_;  // GUARDED_BY(mu_)
};

}  // namespace floatmount::fuse
