// OpenState: an open file on the server, as the engine tracks it.
//
// Holds the open stateid (RFC 8881 8.2) and what is needed to open the file
// again after the server lost its state (client ID recovery, 8.4.2): the
// handle, the share access and the open owner. The stateid changes under
// recovery, so every compound reads it when it is encoded.
//
// It also holds the byte-range lock state of each local lock owner that
// locked through this open (RFC 8881 9.1.4, 18.10): the lock-owner string
// sent to the server, the current lock stateid, and the ranges the server
// granted, which recovery reclaims after a server restart (8.4.2.1,
// nfs/v4/state_recovery.h). Lock operations of one owner run one at a time
// (RunLockOp), so the stateid each sends is the latest. The lock methods
// are defined in nfs/v4/open_state.cc.
//
// Lost locks: a lock the server lost and did not give back (no grace
// period, reclaim refused, the open itself could not be reclaimed, or the
// server revoked it) marks its owner lost. From then on the owner's LOCK
// and LOCKT fail with NFS4ERR_IO, and so does READ and WRITE through this
// open (locks_lost()): the program's view of the file may no longer be
// protected, and silently carrying on would corrupt it (Linux,
// recover_lost_locks=0). It lasts until the file is closed: the next open
// is a new OpenState. I/O carries no lock owner here, so every reader and
// writer of this open sees the EIO, not only the owner that lost the lock.
//
// Threads: any; the stateid and the lock state are guarded by mu_.
// Registered with the engine from Open until Close.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nfs/client.h"
#include "nfs/v4/lock_ranges.h"
#include "nfs/v4/ops.h"

namespace floatmount::nfs {

class OpenState : public OpenFile {
 public:
  OpenState(FileHandle fh, std::string owner, uint32_t share_access, Credentials cred)
      : fh_(std::move(fh)),
        owner_(std::move(owner)),
        share_access_(share_access),
        cred_(std::move(cred)) {}

  const FileHandle& fh() const override { return fh_; }
  const std::string& owner() const { return owner_; }  // constant after construction
  uint32_t share_access() const {
    std::lock_guard<std::mutex> lock(mu_);
    return share_access_;
  }
  // After an upgrade: the wider access, and the stateid the OPEN returned
  // unless this open already has a newer one. Two upgrades at once (two
  // callers widening one open) run on the server in one order and may be
  // answered in the other, over two connections: the higher seqid is the
  // server's (RFC 8881 8.2.2), the older one fails every later use with
  // NFS4ERR_OLD_STATEID. The open then has the access of both.
  void Upgraded(const v4::Stateid& stateid, uint32_t share_access) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stateid.other != stateid_.other || v4::SeqidNewer(stateid.seqid, stateid_.seqid)) {
      stateid_ = stateid;
    }
    share_access_ |= share_access;
  }
  const Credentials& cred() const { return cred_; }  // who opened it; reopen uses it

  v4::Stateid stateid() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stateid_;
  }
  // The server refused this open's stateid for its I/O, and TEST_STATEID
  // then called `stateid` valid. True if that happened before for this
  // very stateid: a server that refuses what it calls valid holds that
  // number for something else (nfs/v4/stateid_recovery.h), and the file is
  // opened again. Once only is a race: the I/O may have carried the
  // stateid from before a reopen.
  bool VouchedBefore(const v4::Stateid& stateid) {
    std::lock_guard<std::mutex> lock(mu_);
    const bool again = vouched_ == stateid;
    vouched_ = stateid;
    return again;
  }
  void set_stateid(const v4::Stateid& stateid) {
    std::lock_guard<std::mutex> lock(mu_);
    stateid_ = stateid;
  }

  // Close has begun (Nfs41Client::Close): recovery must not open it again
  // (a reopen racing the CLOSE would leak an open on the server).
  void MarkClosing() {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  bool closing() const {
    std::lock_guard<std::mutex> lock(mu_);
    return closing_;
  }

  // One local lock owner's state on this open.
  struct LockOwner {
    std::string name;          // lock_owner4 owner string, unique per open and owner
    bool known = false;        // a LOCK succeeded: the server holds `stateid`
    v4::Stateid stateid;       // the current lock stateid (when `known`)
    v4::Stateid open_stateid;  // the open stateid it was made from (open_to_lock_owner4)
    uint32_t generation = 0;   // bumped by ForgetLockOwner; part of `name`
    LockRanges held;           // what the server granted (reclaimed after a restart)
    bool lost = false;         // it held locks the server lost: its calls fail EIO
  };
  // The owner's state; a new owner (not `known`) on first use.
  LockOwner lock_owner(uint64_t owner);
  // Every owner the server holds a lock stateid for.
  std::vector<LockOwner> known_lock_owners() const;
  // Every owner with any state (a stateid, held ranges, lost), by local owner.
  std::vector<std::pair<uint64_t, LockOwner>> lock_owners() const;
  // Records the lock stateid a LOCK or LOCKU returned.
  void SetLockStateid(uint64_t owner, const v4::Stateid& lock, const v4::Stateid& open);
  // Records a granted LOCK / a successful LOCKU of the owner (wire terms).
  void Granted(uint64_t owner, uint32_t locktype, uint64_t offset, uint64_t length);
  void Released(uint64_t owner, uint64_t offset, uint64_t length);
  // Drops a lock stateid the server no longer knows, and the ranges held
  // under it; the owner's next LOCK starts over with open_to_lock_owner4
  // under a new name. Returns the new state.
  LockOwner ForgetLockOwner(uint64_t owner);
  // The owner's locks are gone for good (see "Lost locks" above). Returns
  // true the first time any owner of this open is marked, so the caller
  // warns once per file.
  bool MarkLockLost(uint64_t owner);
  // Some owner lost its locks: I/O through this open fails with EIO.
  bool locks_lost() const {
    std::lock_guard<std::mutex> lock(mu_);
    return locks_lost_;
  }
  bool usable() const override { return !locks_lost(); }
  // Runs `op` now if no operation of `owner` is under way, else after the
  // ones queued before it. `op` must end, on whatever thread, by calling
  // FinishLockOp(owner) and only then report to its caller (who may close
  // and free this open once told). Queued ops run on the thread that
  // finishes the one before; never with mu_ held.
  void RunLockOp(uint64_t owner, std::function<void()> op);
  void FinishLockOp(uint64_t owner);

 private:
  struct LockOwnerSlot {
    LockOwner state;
    bool busy = false;                         // an operation of this owner is under way
    std::deque<std::function<void()>> queued;  // operations waiting for it
  };
  LockOwnerSlot& SlotLocked(uint64_t owner);  // requires mu_

  const FileHandle fh_;
  const std::string owner_;
  uint32_t share_access_;  // GUARDED_BY(mu_)
  const Credentials cred_;
  mutable std::mutex mu_;
  v4::Stateid stateid_;                                      // GUARDED_BY(mu_)
  v4::Stateid vouched_;                                      // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, LockOwnerSlot> lock_owners_;  // GUARDED_BY(mu_)
  bool locks_lost_ = false;                                  // GUARDED_BY(mu_)
  bool closing_ = false;                                     // GUARDED_BY(mu_)
};

}  // namespace floatmount::nfs
