// State recovery: RecoverState and the engine's RecoveryOps; see
// nfs/v4/state_recovery.h.
#include "nfs/v4/state_recovery.h"

#include <spdlog/spdlog.h>

#include <string>
#include <utility>

#include "nfs/v4/engine.h"
#include "nfs/v4/ops_util.h"
#include "nfs/v4/protocol.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

namespace {

// The server will not let us reclaim: open anew instead (no locks).
bool IsReclaimRefused(const Status& s) {
  return s.IsNfs(NFS4ERR_NO_GRACE) || s.IsNfs(NFS4ERR_RECLAIM_BAD);
}

// LOCK reclaim = true of every range each owner held (8.4.2.1, 18.10.3),
// through the open just reclaimed as `open_stateid`.
void ReclaimLocks(RecoveryOps& ops, OpenState& open, const Stateid& open_stateid) {
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

void RecoverState(RecoveryOps& ops, const std::vector<std::shared_ptr<OpenState>>& opens,
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
      ReclaimLocks(ops, *open, *r);
      continue;
    }
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
    if (!s.ok()) spdlog::warn("RECLAIM_COMPLETE: {}", s.ToString());
  }
  for (const std::shared_ptr<OpenState>& open : anew) {
    Result<Stateid> r = ops.Reopen(*open, /*previous=*/false);
    if (r.ok()) {
      open->set_stateid(*r);
    } else {
      spdlog::error("could not reopen a file after server state loss: {}", r.status().ToString());
    }
    DropLocksOfLostOpen(*open, reclaim || !r.ok(),
                        reclaim ? "the server restarted and would not let us reclaim them"
                                : "the server lost them");
  }
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

 private:
  Nfs41Engine* const engine_;
};

void Nfs41Engine::RecoverOpens(bool reclaim) {
  StateRecoveryOps ops(this);
  RecoverState(ops, LiveOpens(), reclaim);
}

}  // namespace floatmount::nfs
