// Stateid recovery: RecoverRevokedState; see nfs/v4/stateid_recovery.h.
#include "nfs/v4/stateid_recovery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <string>

#include "nfs/v4/ops_util.h"
#include "nfs/v4/protocol.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

namespace {

// One stateid we hold, and whose it is.
struct Held {
  std::shared_ptr<OpenState> open;
  bool lock = false;   // a lock stateid (of `owner`), else the open stateid
  uint64_t owner = 0;
  Stateid stateid;
};

// TEST_STATEID results after which the server keeps a record that only
// FREE_STATEID removes (8.2.3, 18.38.3).
bool NeedsFree(uint32_t code) {
  return code == NFS4ERR_ADMIN_REVOKED || code == NFS4ERR_EXPIRED ||
         code == NFS4ERR_DELEG_REVOKED;
}

// The stateid is gone: revoked, expired, or unknown to the server
// (ganesha answers STALE_STATEID for one it cannot place). OLD_STATEID
// only means it changed since we read it: not lost.
bool IsGone(uint32_t code) {
  return NeedsFree(code) || code == NFS4ERR_BAD_STATEID || code == NFS4ERR_STALE_STATEID;
}

std::vector<Held> Collect(const std::vector<std::shared_ptr<OpenState>>& opens) {
  std::vector<Held> held;
  for (const std::shared_ptr<OpenState>& open : opens) {
    if (open->closing()) continue;  // closed or closing: nothing to repair
    held.push_back(Held{open, false, 0, open->stateid()});
    for (const auto& [owner, state] : open->lock_owners()) {
      if (state.known && !state.lost) held.push_back(Held{open, true, owner, state.stateid});
    }
  }
  return held;
}

// The open's lock state went with its open on the server: owners that
// held locks lose them, the others start over under a new name.
size_t DropLocksOf(OpenState& open, const std::string& why) {
  size_t lost = 0;
  for (const auto& [owner, state] : open.lock_owners()) {
    if (state.lost || !state.known) continue;
    const bool held = !state.held.empty();
    open.ForgetLockOwner(owner);
    if (held) {
      LoseLocks(open, owner, why);
      ++lost;
    }
  }
  return lost;
}

// Some I/O of the open was refused carrying this very open stateid (I/O
// sends seqid 0, "the current one": compare the rest).
bool RefusedWith(const std::vector<RefusedIo>& refused, const Held& h) {
  return std::any_of(refused.begin(), refused.end(), [&h](const RefusedIo& r) {
    return r.open == h.open.get() && r.carried.other == h.stateid.other;
  });
}

}  // namespace

bool RevokedFlagEpisode::OnReply(bool flagged) {
  if (!flagged) {
    if (phase_ == Phase::kDone) phase_ = Phase::kIdle;
    return false;
  }
  if (phase_ != Phase::kIdle) return false;
  phase_ = Phase::kPending;
  return true;
}

bool RevokedFlagEpisode::Begin() {
  if (phase_ != Phase::kPending) return false;
  phase_ = Phase::kRunning;
  return true;
}

void RevokedFlagEpisode::End(bool answered) {
  if (phase_ == Phase::kRunning) phase_ = answered ? Phase::kDone : Phase::kIdle;
}

RevokedStateReport RecoverRevokedState(RecoveryOps& ops,
                                       const std::vector<std::shared_ptr<OpenState>>& opens,
                                       const std::vector<RefusedIo>& refused) {
  RevokedStateReport report;
  const std::vector<Held> held = Collect(opens);
  std::vector<uint32_t> codes;
  for (size_t at = 0; at < held.size(); at += kTestStateidBatch) {
    const size_t end = std::min(held.size(), at + kTestStateidBatch);
    std::vector<Stateid> batch;
    for (size_t i = at; i < end; ++i) batch.push_back(held[i].stateid);
    Result<std::vector<uint32_t>> r = ops.TestStateids(batch);
    report.tested += batch.size();
    if (!r.ok() || r->size() != batch.size()) {
      // Without an answer nothing is known to be lost: touch nothing.
      spdlog::warn("TEST_STATEID: {}", r.ok() ? "wrong number of results" : r.status().ToString());
      codes.resize(end, NFS4_OK);
      report.answered = false;
      continue;
    }
    codes.insert(codes.end(), r->begin(), r->end());
  }

  // FREE_STATEID first: it is what ends the server's revoked-state flag.
  std::set<OpenState*> reopen;
  for (size_t i = 0; i < held.size(); ++i) {
    const Held& valid = held[i];
    if (codes[i] == NFS4_OK && !valid.lock && RefusedWith(refused, valid) &&
        valid.open->VouchedBefore(valid.stateid)) {
      spdlog::warn("the server refused a file's open stateid again although TEST_STATEID calls "
                   "it valid; opening the file again");
      ++report.refused_valid;
      reopen.insert(valid.open.get());
    }
    if (!IsGone(codes[i])) continue;
    ++report.revoked;
    const Held& h = held[i];
    if (NeedsFree(codes[i])) {
      Status s = ops.FreeStateid(h.stateid);
      if (s.ok()) {
        ++report.freed;
      } else {
        spdlog::warn("FREE_STATEID: {}", s.ToString());
      }
    }
    if (!h.lock) reopen.insert(h.open.get());
  }
  // Lock stateids: what their owners held is lost.
  for (size_t i = 0; i < held.size(); ++i) {
    const Held& h = held[i];
    if (!h.lock || !IsGone(codes[i]) || reopen.count(h.open.get()) > 0) continue;
    const bool had = !h.open->lock_owner(h.owner).held.empty();
    h.open->ForgetLockOwner(h.owner);
    if (had) {
      LoseLocks(*h.open, h.owner, "the server revoked them (" + Status::Nfs(codes[i], "LOCK").ToString() + ")");
      ++report.locks_lost;
    }
  }
  // Open stateids: open again what is still open; its locks are lost.
  for (const std::shared_ptr<OpenState>& open : opens) {
    if (reopen.count(open.get()) == 0) continue;
    report.locks_lost += DropLocksOf(*open, "the server revoked their open");
    if (open->closing()) continue;  // closed meanwhile: gets nothing
    Result<Stateid> r = ops.Reopen(*open, /*previous=*/false);
    if (r.ok()) {
      open->set_stateid(*r);
      ++report.reopened;
    } else {
      spdlog::error("could not reopen a file whose open the server revoked: {}",
                    r.status().ToString());
    }
  }
  if (report.revoked > 0) {
    spdlog::warn("the server no longer has {} of {} stateids: freed {}, reopened {} files, {} lock "
                 "owners lost their locks",
                 report.revoked, report.tested, report.freed, report.reopened, report.locks_lost);
  }
  return report;
}

}  // namespace floatmount::nfs
