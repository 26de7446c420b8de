// OpenState: an open file on the server, as the engine tracks it.
//
// Holds the open stateid (RFC 8881 8.2) and what is needed to open the file
// again after the server lost its state (client ID recovery, 8.4.2): the
// handle, the share access and the open owner. The stateid changes under
// recovery, so every compound reads it when it is encoded.
//
// It also holds the byte-range lock state of each local lock owner that
// locked through this open (RFC 8881 9.1.4, 18.10): the lock-owner string
// sent to the server and the current lock stateid. Lock operations of one
// owner run one at a time (RunLockOp), so the stateid each sends is the
// latest. The lock methods are defined in nfs/v4/locks.cc.
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
#include <vector>

#include "nfs/client.h"
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
  // After an upgrade: the new stateid and the wider access, together.
  void Upgraded(const v4::Stateid& stateid, uint32_t share_access) {
    std::lock_guard<std::mutex> lock(mu_);
    stateid_ = stateid;
    share_access_ = share_access;
  }
  const Credentials& cred() const { return cred_; }  // who opened it; reopen uses it

  v4::Stateid stateid() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stateid_;
  }
  void set_stateid(const v4::Stateid& stateid) {
    std::lock_guard<std::mutex> lock(mu_);
    stateid_ = stateid;
  }

  // One local lock owner's state on this open.
  struct LockOwner {
    std::string name;          // lock_owner4 owner string, unique per open and owner
    bool known = false;        // a LOCK succeeded: the server holds `stateid`
    v4::Stateid stateid;       // the current lock stateid (when `known`)
    v4::Stateid open_stateid;  // the open stateid it was made from (open_to_lock_owner4)
    uint32_t generation = 0;   // bumped by ForgetLockOwner; part of `name`
  };
  // The owner's state; a new owner (not `known`) on first use.
  LockOwner lock_owner(uint64_t owner);
  // Every owner the server holds a lock stateid for.
  std::vector<LockOwner> known_lock_owners() const;
  // Records the lock stateid a LOCK or LOCKU returned.
  void SetLockStateid(uint64_t owner, const v4::Stateid& lock, const v4::Stateid& open);
  // Drops a lock stateid the server no longer knows; the owner's next LOCK
  // starts over with open_to_lock_owner4 under a new name. Returns the new state.
  LockOwner ForgetLockOwner(uint64_t owner);
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
  std::unordered_map<uint64_t, LockOwnerSlot> lock_owners_;  // GUARDED_BY(mu_)
};

}  // namespace floatmount::nfs
