// State recovery: RecoverState and the engine's RecoveryOps; see
// nfs/v4/state_recovery.h.
#include "nfs/v4/state_recovery.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <utility>

#include "nfs/v4/engine.h"
#include "nfs/v4/ops_util.h"
#include "nfs/v4/protocol.h"
#include "nfs/v4/stateid_recovery.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

namespace {

// The server will not let us reclaim: open anew instead (no locks).
bool IsReclaimRefused(const Status& s) {
  return s.IsNfs(NFS4ERR_NO_GRACE) || s.IsNfs(NFS4ERR_RECLAIM_BAD);
}

// LOCK reclaim = true of every range each owner held (8.4.2.1, 18.10.3),
// through the open just reclaimed as `open_stateid`. False if interrupted.
bool ReclaimLocks(RecoveryOps& ops, OpenState& open, const Stateid& open_stateid) {
  for (auto& [owner, state] : open.lock_owners()) {
    if (state.lost) continue;  // lost before: stays lost until close
    const std::vector<LockRange> ranges = state.held.ranges();
    if (ranges.empty()) {  // nothing held: only the name is gone
      open.ForgetLockOwner(owner);
      continue;
    }
    bool first = true;
    Stateid lock_stateid;
    Status failed = Status::Ok();
    for (const LockRange& range : ranges) {
      LockArgs args;
      args.locktype = range.locktype;
      args.reclaim = true;
      args.offset = range.offset;
      args.length = range.length;
      args.new_lock_owner = first;
      if (first) {
        // The old name: it is ours, and the server forgot it anyway.
        args.open_stateid = open_stateid;
        args.lock_owner = StateOwner{0, state.name};
      } else {
        args.lock_stateid = lock_stateid;
      }
      Result<Stateid> r = ops.Lock(open, std::move(args));
      if (!r.ok() && IsRecoveryInterrupted(r.status())) return false;
      if (!r.ok()) {
        failed = r.status();
        break;
      }
      lock_stateid = *r;
      first = false;
    }
    // What was reclaimed is the server's again: CLOSE's unlock finds it.
    if (!first) open.SetLockStateid(owner, lock_stateid, open_stateid);
    if (!failed.ok()) LoseLocks(open, owner, "reclaim refused: " + failed.ToString());
  }
  return true;
}

// Owners whose lock state hangs off an open the server no longer has lose
// their locks: all of them when `all` (the server lost every state of
// ours, or the open could not be had again), else those made from another
// open stateid than the open's now (a CLAIM_FH reopen that handed back the
// same open keeps its locks).
void DropLocksOfLostOpen(OpenState& open, bool all, const std::string& why) {
  const Stateid now = open.stateid();
  for (auto& [owner, state] : open.lock_owners()) {
    if (state.lost || !state.known) continue;
    if (!all && state.open_stateid.other == now.other) continue;
    const bool held = !state.held.empty();
    open.ForgetLockOwner(owner);
    if (held) LoseLocks(open, owner, why);
  }
}

}  // namespace

bool IsRecoveryInterrupted(const Status& s) {
  return s.IsNfs(NFS4ERR_BADSESSION) || s.IsNfs(NFS4ERR_DEADSESSION) ||
         s.IsNfs(NFS4ERR_STALE_CLIENTID) || s.kind() == Status::Kind::kShutdown;
}

bool RecoverState(RecoveryOps& ops, const std::vector<std::shared_ptr<OpenState>>& opens,
                  bool reclaim) {
  std::vector<std::shared_ptr<OpenState>> anew;  // step 3
  bool in_grace = reclaim;
  for (const std::shared_ptr<OpenState>& open : opens) {
    if (!in_grace) {
      anew.push_back(open);
      continue;
    }
    Result<Stateid> r = ops.Reopen(*open, /*previous=*/true);
    if (r.ok()) {
      open->set_stateid(*r);
      if (!ReclaimLocks(ops, *open, *r)) return false;
      continue;
    }
    if (IsRecoveryInterrupted(r.status())) return false;
    if (IsReclaimRefused(r.status())) {
      // NO_GRACE holds for every file; RECLAIM_BAD may be this one only.
      if (r.status().IsNfs(NFS4ERR_NO_GRACE)) in_grace = false;
      spdlog::debug("reclaim of an open refused ({}); opening it anew", r.status().ToString());
      anew.push_back(open);
      continue;
    }
    spdlog::error("could not reopen a file after server state loss: {}", r.status().ToString());
    DropLocksOfLostOpen(*open, true, "its open could not be reclaimed");
  }
  if (reclaim) {
    Status s = ops.ReclaimComplete();
    if (IsRecoveryInterrupted(s)) return false;
    if (!s.ok()) spdlog::warn("RECLAIM_COMPLETE: {}", s.ToString());
  }
  for (const std::shared_ptr<OpenState>& open : anew) {
    if (open->closing()) continue;  // its CLOSE is on the way: a reopen would leak
    Result<Stateid> r = ops.Reopen(*open, /*previous=*/false);
    if (!r.ok() && IsRecoveryInterrupted(r.status())) return false;
    if (r.ok()) {
      open->set_stateid(*r);
    } else {
      spdlog::error("could not reopen a file after server state loss: {}", r.status().ToString());
    }
    DropLocksOfLostOpen(*open, reclaim || !r.ok(),
                        reclaim ? "the server restarted and would not let us reclaim them"
                                : "the server lost them");
  }
  return true;
}

// --- the engine's operations ------------------------------------------------

class Nfs41Engine::StateRecoveryOps : public RecoveryOps {
 public:
  explicit StateRecoveryOps(Nfs41Engine* engine) : engine_(engine) {}

  Result<Stateid> Reopen(const OpenState& open, bool previous) override {
    auto c = std::make_shared<Compound>();
    c->name = previous ? "OPEN (reclaim)" : "OPEN (reopen)";
    c->recovery = true;
    c->cachethis = true;
    c->cred = open.cred();
    auto stateid = std::make_shared<Stateid>();
    Nfs41Engine* engine = engine_;
    c->encode = [&open, previous, engine](XdrEncoder& e) {  // SEQUENCE, PUTFH, OPEN
      EncodePutFh(e, open.fh());
      OpenArgs args;
      args.share_access = open.share_access() | OPEN4_SHARE_ACCESS_WANT_NO_DELEG;
      args.share_deny = OPEN4_SHARE_DENY_NONE;
      args.owner = StateOwner{engine->clientid(), open.owner()};
      args.claim = previous ? CLAIM_PREVIOUS : CLAIM_FH;
      EncodeOpen(e, args, engine->id_mapper());
      return 2u;
    };
    c->decode = [stateid](XdrDecoder& d, bool) {
      if (Status s = DecodePutFh(d); !s.ok()) return s;
      OpenRes res;
      Status s = DecodeOpen(d, &res);
      if (s.ok()) *stateid = res.stateid;
      return s;
    };
    Status s = engine_->SubmitAndWait(c);
    if (!s.ok()) return s;
    return *stateid;
  }

  Result<Stateid> Lock(const OpenState& open, LockArgs args) override {
    auto c = std::make_shared<Compound>();
    c->name = "LOCK (reclaim)";
    c->recovery = true;
    c->cachethis = true;
    c->cred = open.cred();
    auto stateid = std::make_shared<Stateid>();
    Nfs41Engine* engine = engine_;
    c->encode = [&open, args, engine](XdrEncoder& e) mutable {  // SEQUENCE, PUTFH, LOCK
      EncodePutFh(e, open.fh());
      if (args.new_lock_owner) args.lock_owner.clientid = engine->clientid();
      EncodeLock(e, args);
      return 2u;
    };
    c->decode = [stateid](XdrDecoder& d, bool) {
      if (Status s = DecodePutFh(d); !s.ok()) return s;
      LockDenied denied;
      return DecodeLock(d, stateid.get(), &denied);
    };
    Status s = engine_->SubmitAndWait(c);
    if (!s.ok()) return s;
    return *stateid;
  }

  Status ReclaimComplete() override { return engine_->ReclaimComplete(); }

  Result<std::vector<uint32_t>> TestStateids(const std::vector<Stateid>& stateids) override {
    auto c = std::make_shared<Compound>();
    c->name = "TEST_STATEID";
    auto codes = std::make_shared<std::vector<uint32_t>>();
    c->encode = [stateids](XdrEncoder& e) {  // SEQUENCE, TEST_STATEID
      EncodeTestStateid(e, stateids);
      return 1u;
    };
    c->decode = [codes](XdrDecoder& d, bool) { return DecodeTestStateid(d, codes.get()); };
    // Bounded: a session lost meanwhile needs this thread (RunRecovery).
    Status s = engine_->SubmitAndWait(c, engine_->SetupTimeout());
    if (!s.ok()) return s;
    return *codes;
  }

  Status FreeStateid(const Stateid& stateid) override {
    auto c = std::make_shared<Compound>();
    c->name = "FREE_STATEID";
    c->cachethis = true;
    c->encode = [stateid](XdrEncoder& e) {  // SEQUENCE, FREE_STATEID
      EncodeFreeStateid(e, stateid);
      return 1u;
    };
    c->decode = [](XdrDecoder& d, bool) { return DecodeFreeStateid(d); };
    return engine_->SubmitAndWait(c, engine_->SetupTimeout());
  }

 private:
  Nfs41Engine* const engine_;
};

bool Nfs41Engine::RecoverOpens(bool reclaim) {
  StateRecoveryOps ops(this);
  return RecoverState(ops, LiveOpens(), reclaim);
}

// Per-stateid recovery (nfs/v4/stateid_recovery.h): a revoked-state flag
// tests every open; a stateid error on one request tests its open only.
// Only the requests that waited for an open wait for this pass.
void Nfs41Engine::RunStateidRecovery() {
  bool all = false;
  std::vector<StateidWaiter> waiters;
  {
    std::lock_guard<std::mutex> lock(mu_);
    all = revoked_flags_.Begin();
    waiters.swap(stateid_waiters_);
  }
  std::vector<std::shared_ptr<OpenState>> opens;
  if (all) {
    opens = LiveOpens();
  } else {
    for (const StateidWaiter& w : waiters) {
      if (std::find(opens.begin(), opens.end(), w.open) == opens.end()) opens.push_back(w.open);
    }
  }
  // READ and WRITE carry the open stateid only (a LOCK's refusal may be
  // of its lock stateid).
  std::vector<RefusedIo> refused;
  for (const StateidWaiter& w : waiters) {
    if (w.flight->compound->io) refused.push_back(RefusedIo{w.open.get(), w.flight->open_stateid});
  }
  StateRecoveryOps ops(this);
  const RevokedStateReport report = RecoverRevokedState(ops, opens, refused);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (all) revoked_flags_.End(report.answered);
    ++stateid_recoveries_;
    stateids_revoked_ += report.revoked;
  }
  for (StateidWaiter& w : waiters) {
    if (w.open->closing()) {
      Finish(w.flight.get(), w.status);  // closed meanwhile: nothing to resend for
    } else {
      Start(std::move(w.flight));  // re-encoded with the open's stateid now
    }
  }
}

}  // namespace floatmount::nfs
