// Stateid recovery: repairing the one open or lock stateid the server
// revoked, without a new client ID (RFC 8881 8.2.3, 18.46.3, 18.48, 18.38).
//
// Two things send us here:
//   - SEQUENCE's sr_status_flags say the server revoked some of our state
//     (SEQ4_STATUS_EXPIRED_SOME_STATE_REVOKED, EXPIRED_ALL_STATE_REVOKED,
//     ADMIN_STATE_REVOKED, RECALLABLE_STATE_REVOKED) but not which. The
//     flag stays set on every reply until we FREE_STATEID what was revoked
//     (18.46.3), so the engine handles it once per episode: one pass over
//     every open and lock stateid we hold, then nothing until a reply
//     comes back without the flag (Nfs41Engine::OnRevokedFlags).
//   - An operation failed with BAD_STATEID (or ADMIN_REVOKED,
//     DELEG_REVOKED, STALE_STATEID) on one open: one pass over that open
//     only; its request waits for it and is then resent. Other files'
//     requests go on meanwhile. (OLD_STATEID needs none of this: the
//     engine re-encodes the request, which reads the current stateid.)
//
// One pass (RecoverRevokedState), in order:
//   1. TEST_STATEID of every stateid of the given opens still open (not
//      closing): the open stateid and each lock owner's lock stateid, in
//      batches of kTestStateidBatch per compound;
//   2. FREE_STATEID of each one the server reports revoked or expired
//      (NFS4ERR_ADMIN_REVOKED, NFS4ERR_EXPIRED, NFS4ERR_DELEG_REVOKED):
//      this is what clears the SEQUENCE flag. A BAD_STATEID or
//      STALE_STATEID one is not freed (the server does not know it) but is
//      recovered the same way;
//   3. a revoked lock stateid: the owner's locks are lost if it held any
//      (OpenState, "Lost locks": I/O through that open fails with EIO
//      until close), else it just starts over under a new name;
//   4. a revoked open stateid: the open is opened again (OPEN CLAIM_FH),
//      unless it was closed meanwhile; every lock made through it is lost
//      (it went with the open on the server).
// Opens and locks the server still reports NFS4_OK are left alone, with
// one exception: an open whose READ or WRITE the server refused although
// it carried the very stateid TEST_STATEID calls valid, for the second
// time in a row, is opened again as in step 4 (the first time may be a
// race with the open's own stateid changing). TEST_STATEID does not check
// the file a stateid is for, and a server can hold the number for another
// file: two nodes that number state alike (one ganesha epoch) and claim to
// be one server, reached in turn through a floating IP. Resending would
// fail the same way until EIO; a new open gets a number the server means
// for it.
//
// Threads: runs on the engine's recovery thread ("fm-nfs-recover"),
// blocking on each call; no request waits for it but those of the opens it
// repairs.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "nfs/v4/open_state.h"
#include "nfs/v4/state_recovery.h"

namespace floatmount::nfs {

// Stateids per TEST_STATEID: the op takes an array, but a reply must fit
// the session's maximum response size (4 bytes per result).
constexpr size_t kTestStateidBatch = 64;

// What one pass did (for logs and tests).
struct RevokedStateReport {
  size_t tested = 0;     // stateids sent in TEST_STATEID
  size_t revoked = 0;    // reported not valid (revoked, expired or unknown)
  size_t freed = 0;      // FREE_STATEID answered OK
  size_t reopened = 0;   // opens opened again
  size_t locks_lost = 0; // lock owners whose held locks were lost
  size_t refused_valid = 0;  // opens reopened: refused twice, valid each time
  bool answered = true;  // every TEST_STATEID was answered
};

// The SEQUENCE revoked-state flags, one episode at a time. The flag is set
// on every reply from the revocation until we FREE_STATEID what was
// revoked, so it must start one pass, not one per reply; and if the server
// keeps it set after our pass (a stateid we could not free) we must not
// loop. So: a flagged reply starts a pass when idle; after the pass,
// flagged replies are ignored until one comes without the flag, which
// ends the episode.
//
// Threads: not thread-safe; the engine guards it with its mu_.
class RevokedFlagEpisode {
 public:
  // A reply's flags (`flagged`: any revoked-state flag). True when this
  // reply starts an episode: schedule a pass.
  bool OnReply(bool flagged);
  // A pass is due (OnReply returned true and the pass has not begun).
  bool pending() const { return phase_ == Phase::kPending; }
  // The pass begins; false if none was due.
  bool Begin();
  // The pass is over. `answered`: it learnt what was revoked, so the
  // episode stays handled until an unflagged reply; else the next flagged
  // reply starts another pass.
  void End(bool answered);

 private:
  enum class Phase { kIdle, kPending, kRunning, kDone };
  Phase phase_ = Phase::kIdle;
};

// A READ or WRITE the server refused with a stateid error: its open and
// the open stateid it carried.
struct RefusedIo {
  const OpenState* open = nullptr;
  v4::Stateid carried;
};

// One pass over `opens` (see the top of this file); `refused`: the I/O of
// them the server refused since the last pass.
RevokedStateReport RecoverRevokedState(RecoveryOps& ops,
                                       const std::vector<std::shared_ptr<OpenState>>& opens,
                                       const std::vector<RefusedIo>& refused = {});

}  // namespace floatmount::nfs
