// State recovery: getting our opens and byte-range locks back after the
// server lost them (RFC 8881 8.4.2, 8.4.2.1).
//
// After a restart the server is in its grace period: it lets a client with
// a new client ID reclaim what it held before (OPEN with CLAIM_PREVIOUS,
// LOCK with reclaim = true) and refuses conflicting new state to others.
// A client must reclaim everything *before* RECLAIM_COMPLETE (18.51): after
// it the server refuses reclaims (and knfsd refuses this client's other
// OPENs until it was sent). So, in order:
//
//   1. each open: OPEN CLAIM_PREVIOUS; if that works, each lock owner's
//      granted ranges (OpenState::LockOwner::held): LOCK reclaim = true,
//      the first with open_to_lock_owner4 under the owner's old name, the
//      others with the lock stateid it returned;
//   2. RECLAIM_COMPLETE;
//   3. the opens the server would not let us reclaim (NO_GRACE: no grace
//      period, RECLAIM_BAD: it has no record of us): OPEN CLAIM_FH, which
//      gets a new open but no locks.
//
// Without a new client ID (the server revoked some state: Recovery::kState)
// only step 3 runs, and locks survive where the server hands back the same
// open (the same stateid "other").
//
// A lock that does not come back (any LOCK error, NO_GRACE, RECLAIM_BAD,
// RECLAIM_CONFLICT, DENIED; or its open was not reclaimed) is lost
// (OpenState, "Lost locks"): warned about once per file, and that file's
// I/O and the owner's new locks fail with EIO until it is closed. Owners
// that held nothing just start over under a new name.
//
// The operations go through RecoveryOps, a seam: the engine's
// implementation sends real compounds (Nfs41Engine::StateRecoveryOps in
// nfs/v4/state_recovery.cc); unit tests pass a fake that records them.
//
// Threads: RecoverState runs on the engine's recovery thread and blocks on
// each call in turn (other requests wait parked until recovery is done).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "nfs/status.h"
#include "nfs/v4/open_state.h"
#include "nfs/v4/ops.h"

namespace floatmount::nfs {

class RecoveryOps {
 public:
  virtual ~RecoveryOps() = default;
  // SEQUENCE, PUTFH, OPEN (CLAIM_PREVIOUS if `previous`, else CLAIM_FH)
  // with the open's owner and share access; the new open stateid.
  virtual Result<v4::Stateid> Reopen(const OpenState& open, bool previous) = 0;
  // SEQUENCE, PUTFH, LOCK of `args` on the open's file, sent as the opener;
  // the lock stateid. The implementation fills in the lock owner's client ID.
  virtual Result<v4::Stateid> Lock(const OpenState& open, v4::LockArgs args) = 0;
  // SEQUENCE, RECLAIM_COMPLETE.
  virtual Status ReclaimComplete() = 0;
  // SEQUENCE, TEST_STATEID (18.48): one status per stateid, in order.
  // Used by stateid recovery (nfs/v4/stateid_recovery.h).
  virtual Result<std::vector<uint32_t>> TestStateids(const std::vector<v4::Stateid>& stateids) = 0;
  // SEQUENCE, FREE_STATEID (18.38).
  virtual Status FreeStateid(const v4::Stateid& stateid) = 0;
};

// The session or client ID was lost again while a recovery call waited
// (BADSESSION, DEADSESSION, STALE_CLIENTID, or the engine shutting down):
// that call says nothing about the state it was about.
bool IsRecoveryInterrupted(const Status& s);

// Recovers `opens` (see the top of this file). `reclaim`: the server gave
// us a new client ID, so it may be in its grace period: reclaim, then send
// RECLAIM_COMPLETE. Returns false, having stopped at once, if a call was
// interrupted (IsRecoveryInterrupted): no lock is marked lost for it, and
// the caller runs the whole pass again once the session is back.
bool RecoverState(RecoveryOps& ops, const std::vector<std::shared_ptr<OpenState>>& opens,
                  bool reclaim);

}  // namespace floatmount::nfs
