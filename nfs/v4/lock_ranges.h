// LockRanges: the byte ranges one lock-owner holds on one file, as the
// server granted them.
//
// Why: after a server restart the client must tell the server, in its grace
// period, which locks it held (LOCK with reclaim = true, RFC 8881 8.4.2.1,
// 18.10.3); the server kept nothing. So every granted LOCK and every LOCKU
// is recorded here, with the server's POSIX-style semantics (9.3 ff.): a
// LOCK over a range replaces whatever the owner held there (an upgrade or a
// downgrade), a LOCKU removes the range, splitting a larger lock. Adjacent
// locks of one type merge, so reclaim sends one LOCK per distinct range.
//
// Ranges use the wire's terms: offset and length4, where all ones means "to
// the end of the file" (18.10.3); lock types are READ_LT or WRITE_LT.
//
// Threads: none of its own; the owner (OpenState) guards it with its mutex.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace floatmount::nfs {

struct LockRange {
  uint32_t locktype = 0;  // READ_LT or WRITE_LT
  uint64_t offset = 0;
  uint64_t length = 0;  // all ones: to the end of the file
  bool operator==(const LockRange&) const = default;
};

class LockRanges {
 public:
  // A LOCK of `locktype` over the range was granted (READW_LT counts as
  // READ_LT, WRITEW_LT as WRITE_LT).
  void Lock(uint32_t locktype, uint64_t offset, uint64_t length);
  // A LOCKU of the range succeeded.
  void Unlock(uint64_t offset, uint64_t length);
  void Clear() { held_.clear(); }
  bool empty() const { return held_.empty(); }
  // What is held, by offset.
  std::vector<LockRange> ranges() const;

 private:
  struct Held {
    uint64_t end;  // exclusive; UINT64_MAX: to the end of the file
    uint32_t locktype;
  };
  std::map<uint64_t, Held> held_;  // by start; never overlapping
};

}  // namespace floatmount::nfs
