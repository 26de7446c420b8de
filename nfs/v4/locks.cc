// Byte-range locks of Nfs41Client: LOCK, LOCKU, LOCKT (RFC 8881 section 9,
// 18.10-18.12). The per-owner state they keep lives in OpenState
// (nfs/v4/open_state.h, .cc).
//
// Lock owners. A local owner (what FUSE passes) locks through an open file.
// Its first LOCK on that open names a new lock-owner with
// open_to_lock_owner4 (the open stateid and a lock-owner string unique to
// the open and the local owner); the server answers with a lock stateid,
// and every later LOCK/LOCKU of that owner on that open sends it
// (exist_lock_owner4) and stores the one the reply carries (9.1.4). The
// stateid stays valid after its last lock is gone, until CLOSE frees it
// with the open (8.2.4), so nothing here needs FREE_STATEID; NFSv4.1 has no
// RELEASE_LOCKOWNER. A server may refuse to CLOSE while locks remain
// (NFS4ERR_LOCKS_HELD, 18.2.4; ganesha does), so Close first unlocks the
// whole file for every owner (ReleaseLocks). lock_seqid and open_seqid are
// 0: NFSv4.1 servers ignore them (the session gives exactly-once, 18.10.3).
// Every granted LOCK and successful LOCKU is recorded (OpenState::LockOwner
// ::held), so the ranges can be reclaimed.
//
// Ordering. Operations of one owner on one open run one at a time
// (OpenState::RunLockOp), so each sends the latest lock stateid and a
// second first-LOCK cannot race the one that creates the lock-owner.
// Owners are independent of each other.
//
// Recovery. After a server restart the engine reclaims each open and then
// each owner's held ranges (LOCK reclaim = true) in the grace period,
// before RECLAIM_COMPLETE (nfs/v4/state_recovery.h). A lock that does not
// come back is lost: the owner's LOCK and LOCKT, and READ and WRITE through
// the open, fail with NFS4ERR_IO (EIO) until the file is closed; its
// unlocks succeed (nothing is held). The same holds when the server drops
// a lock stateid while the owner holds locks (BAD_STATEID, STALE_STATEID,
// ADMIN_REVOKED: revoked or expired state). An owner that held nothing
// just starts over as a new lock-owner: LOCK forgets it and retries once,
// LOCKU forgets it and succeeds. A LOCK that names a new lock-owner carries
// the open stateid, so it is submitted with Compound::open: a stale open
// stateid makes the engine reopen and resend (the stateid is read when
// encoded). OLD_STATEID is retried once with seqid 0 ("the current one",
// 8.2.2). Lock state made from an open stateid the engine has since
// replaced without reclaiming it is dropped before use (and is lost if it
// held locks).
//
// Threads: the Nfs41Client methods run on any thread; completions on the
// engine's network threads. Nothing here blocks.
#include <spdlog/spdlog.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "nfs/v4/client.h"
#include "nfs/v4/engine.h"
#include "nfs/v4/open_state.h"
#include "nfs/v4/ops_util.h"
#include "nfs/v4/ops.h"
#include "nfs/v4/protocol.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

// --- LOCK, LOCKU, LOCKT ------------------------------------------------------

namespace {

// The local owner a lock-owner name of ours stands for (0 if not ours).
uint64_t LocalOwnerOf(const std::string& name) {
  if (name.rfind("fm-lock-", 0) != 0) return 0;
  const size_t dash = name.rfind('-');
  const size_t dot = name.find('.', dash);
  const std::string hex = name.substr(dash + 1, dot == std::string::npos ? dot : dot - dash - 1);
  uint64_t owner = 0;
  for (char c : hex) {
    const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return 0;
    owner = owner * 16 + static_cast<uint64_t>(v);
  }
  return owner;
}

// The server no longer has this lock stateid (nor the locks under it).
bool IsLockStateLost(const Status& s) {
  return s.IsNfs(NFS4ERR_BAD_STATEID) || s.IsNfs(NFS4ERR_STALE_STATEID) ||
         s.IsNfs(NFS4ERR_ADMIN_REVOKED);
}

uint32_t WireLockType(LockType type) { return type == LockType::kRead ? READ_LT : WRITE_LT; }

LockType FromWireLockType(uint32_t locktype) {
  return locktype == READ_LT || locktype == READW_LT ? LockType::kRead : LockType::kWrite;
}

// length4 (18.10.3): all ones locks to the end of the file; a range that
// would pass 2^64 - 1 is INVAL on the wire, and means the same thing.
uint64_t WireLength(uint64_t offset, uint64_t length) {
  if (length == kLockToEnd || length > NFS4_UINT64_MAX - offset) return NFS4_UINT64_MAX;
  return length;
}

std::string RangeText(uint64_t offset, uint64_t length) {
  if (length == NFS4_UINT64_MAX) return fmt::format("{}..end", offset);
  return fmt::format("{}+{}", offset, length);
}

// LOCK4denied's length. No lock has length 0; ganesha sends 0 for a lock
// to the end of the file (its internal form), so 0 means all ones here.
uint64_t DeniedLength(const LockDenied& denied) {
  return denied.length == 0 ? NFS4_UINT64_MAX : denied.length;
}

std::string DeniedText(const char* op, const LockDenied& denied) {
  return fmt::format("{}: denied by a {} lock on {}", op,
                     FromWireLockType(denied.locktype) == LockType::kRead ? "read" : "write",
                     RangeText(denied.offset, DeniedLength(denied)));
}

// Checks a call's arguments; the open state it locks through, or null
// after answering `done` with the error.
template <typename T>
OpenState* CheckLockArgs(const OpenFile* file, uint64_t length, const Callback<T>& done) {
  OpenState* open = OpenStateOf(file);
  if (open == nullptr) {
    done(Status::InvalidArgument("byte-range locks need a file opened over NFSv4.1"));
    return nullptr;
  }
  if (length == 0) {
    done(Status::InvalidArgument("a byte-range lock needs a length (kLockToEnd: to the end)"));
    return nullptr;
  }
  return open;
}

// What a lost owner's LOCK and LOCKT, and I/O through its open, fail with.
Status LostLockStatus() {
  return Status::Nfs(NFS4ERR_IO, "a byte-range lock on this file was lost; close and reopen it");
}

// The owner's state, without lock state made from an open stateid the
// engine has since replaced: that open died with the server's state
// (8.4.2), and recovery did not take this owner's locks back with it.
OpenState::LockOwner CurrentLockOwner(OpenState* open, uint64_t owner) {
  OpenState::LockOwner state = open->lock_owner(owner);
  if (state.known && state.open_stateid.other != open->stateid().other) {
    const bool held = !state.held.empty();
    state = open->ForgetLockOwner(owner);
    if (held) {
      LoseLocks(*open, owner, "its open was replaced");
      state.lost = true;
    }
  }
  return state;
}

// One call, from its turn in the owner's queue to its answer.
template <typename T>
struct LockCall {
  Nfs41Engine* engine;
  Credentials cred;
  OpenState* open;  // kept alive by the caller until `done` has run
  uint64_t owner;
  uint32_t locktype;
  uint64_t offset;
  uint64_t length;  // on the wire (WireLength)
  Callback<T> done;

  // Lets the owner's next operation start, then answers the caller.
  void Answer(Result<T> result) const {
    open->FinishLockOp(owner);
    done(std::move(result));
  }
};

// What a granted LOCK's compound returns.
struct LockGrant {
  Stateid stateid;
  Attributes attr;  // none set if the server did not return them
};

// SEQUENCE, PUTFH, LOCK, GETATTR. The GETATTR tells the caller whether the
// file changed (lock-time revalidation) without a round trip of its own;
// its failure does not undo the grant.
void SendLock(std::shared_ptr<const LockCall<Attributes>> call, bool retried) {
  const OpenState::LockOwner state = CurrentLockOwner(call->open, call->owner);
  if (state.lost) {
    call->Answer(LostLockStatus());
    return;
  }
  const bool new_owner = !state.known;
  // The open stateid a new lock-owner was made from, as last encoded.
  auto open_stateid = std::make_shared<Stateid>(state.open_stateid);
  // Whether the last encoding made the lock-owner anew (see below).
  auto sent_as_new = std::make_shared<bool>(new_owner);
  Nfs41Engine* engine = call->engine;
  const IdMapper* ids = &engine->id_mapper();
  Run<LockGrant>(
      engine, "LOCK", call->cred, true,
      [call, engine, name = state.name, retried, open_stateid, sent_as_new](XdrEncoder& e) {
        EncodePutFh(e, call->open->fh());
        LockArgs args;
        args.locktype = call->locktype;
        args.offset = call->offset;
        args.length = call->length;
        // Read now: a LOCK parked across a client-ID recovery was sent with
        // the lock stateid of the old client ID (or for an owner recovery
        // had forgotten, having nothing to reclaim); the server refused it
        // on every resend, each asking for another recovery (8 sessions in
        // 5 ms), and the call failed EIO (LocksUnderRestartsTest under load).
        const OpenState::LockOwner now = call->open->lock_owner(call->owner);
        args.new_lock_owner = !now.known;
        *sent_as_new = args.new_lock_owner;
        if (args.new_lock_owner) {
          *open_stateid = call->open->stateid();
          args.open_stateid = *open_stateid;
          args.lock_owner = StateOwner{engine->clientid(), name};
        } else {
          args.lock_stateid = now.stateid;
          if (retried) args.lock_stateid.seqid = 0;  // the server's current one (8.2.2)
          *open_stateid = now.open_stateid;
        }
        EncodeLock(e, args);
        EncodeGetAttr(e, StandardAttrs());
        return 3u;
      },
      [ids](XdrDecoder& d, bool, LockGrant* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        LockDenied denied;
        Status s = DecodeLock(d, &out->stateid, &denied);
        if (s.IsNfs(NFS4ERR_DENIED)) return Status::Nfs(NFS4ERR_DENIED, DeniedText("LOCK", denied));
        if (!s.ok()) return s;
        if (!DecodeGetAttr(d, *ids, &out->attr).ok()) out->attr = Attributes{};
        return Status::Ok();
      },
      [call, sent_as_new, open_stateid, retried, new_owner,
       held = !state.held.empty()](Result<LockGrant> r) {
        if (r.ok()) {
          call->open->SetLockStateid(call->owner, r->stateid, *open_stateid);
          call->open->Granted(call->owner, call->locktype, call->offset, call->length);
          call->Answer(std::move(r->attr));
          return;
        }
        if (*sent_as_new && !new_owner && !retried && IsLockStateLost(r.status())) {
          // Made anew when encoded (recovery forgot the owner after the
          // call was made), so not tied to its open for per-stateid
          // recovery: sent again as the new owner it now is, which is.
          SendLock(call, /*retried=*/true);
          return;
        }
        if (!*sent_as_new && !retried) {
          if (r.status().IsNfs(NFS4ERR_OLD_STATEID)) {
            SendLock(call, /*retried=*/true);
            return;
          }
          if (IsLockStateLost(r.status())) {
            call->open->ForgetLockOwner(call->owner);
            if (held) {  // the server dropped locks the owner holds
              LoseLocks(*call->open, call->owner, r.status().ToString());
              call->Answer(LostLockStatus());
              return;
            }
            // It held nothing: only the name is gone. Start over.
            SendLock(call, /*retried=*/true);
            return;
          }
        }
        call->Answer(r.status());
      },
      new_owner ? call->open : nullptr);
}

// SEQUENCE, PUTFH, LOCKU
void SendUnlock(std::shared_ptr<const LockCall<Unit>> call, bool retried) {
  const OpenState::LockOwner state = CurrentLockOwner(call->open, call->owner);
  if (!state.known || state.lost) {
    // Never locked through this open, or its locks are lost: nothing is
    // held. Unlocking stays possible (and is what close does); only new
    // locks and I/O fail.
    call->Answer(Unit{});
    return;
  }
  Stateid lock_stateid = state.stateid;
  if (retried) lock_stateid.seqid = 0;
  Run<Stateid>(
      call->engine, "LOCKU", call->cred, true,
      [call, lock_stateid](XdrEncoder& e) {  // SEQUENCE, PUTFH, LOCKU
        EncodePutFh(e, call->open->fh());
        EncodeLockU(e, call->locktype, 0, lock_stateid, call->offset, call->length);
        return 2u;
      },
      [](XdrDecoder& d, bool, Stateid* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        return DecodeLockU(d, out);
      },
      [call, state, retried](Result<Stateid> r) {
        if (r.ok()) {
          // The stateid stays the owner's for its next LOCK (8.2.4).
          call->open->SetLockStateid(call->owner, *r, state.open_stateid);
          call->open->Released(call->owner, call->offset, call->length);
          call->Answer(Unit{});
          return;
        }
        if (r.status().IsNfs(NFS4ERR_OLD_STATEID) && !retried) {
          SendUnlock(call, /*retried=*/true);
          return;
        }
        if (IsLockStateLost(r.status())) {
          call->open->ForgetLockOwner(call->owner);
          // Whatever the owner held beyond this range went with it.
          LockRanges rest = state.held;
          rest.Unlock(call->offset, call->length);
          if (!rest.empty()) LoseLocks(*call->open, call->owner, r.status().ToString());
          call->Answer(Unit{});  // the range is not locked any more
          return;
        }
        call->Answer(r.status());
      });
}

// SEQUENCE, PUTFH, LOCKT
void SendTestLock(std::shared_ptr<const LockCall<std::optional<LockConflict>>> call) {
  const OpenState::LockOwner state = CurrentLockOwner(call->open, call->owner);
  if (state.lost) {
    call->Answer(LostLockStatus());
    return;
  }
  auto clientid = std::make_shared<uint64_t>(0);  // ours, as last encoded
  Nfs41Engine* engine = call->engine;
  Run<std::optional<LockConflict>>(
      engine, "LOCKT", call->cred, false,
      [call, engine, name = state.name, clientid](XdrEncoder& e) {  // SEQUENCE, PUTFH, LOCKT
        EncodePutFh(e, call->open->fh());
        *clientid = engine->clientid();
        EncodeLockT(e, call->locktype, call->offset, call->length, StateOwner{*clientid, name});
        return 2u;
      },
      [clientid](XdrDecoder& d, bool, std::optional<LockConflict>* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        LockDenied denied;
        Status s = DecodeLockT(d, &denied);
        if (!s.IsNfs(NFS4ERR_DENIED)) return s;
        LockConflict conflict;
        conflict.type = FromWireLockType(denied.locktype);
        conflict.offset = denied.offset;
        conflict.length = DeniedLength(denied);  // all ones is kLockToEnd
        conflict.same_client = denied.owner.clientid == *clientid;
        if (conflict.same_client) conflict.owner = LocalOwnerOf(denied.owner.owner);
        *out = conflict;
        return Status::Ok();
      },
      [call](Result<std::optional<LockConflict>> r) { call->Answer(std::move(r)); });
}

}  // namespace

void LoseLocks(OpenState& open, uint64_t owner, const std::string& why) {
  // The owner is the kernel's lock owner (a pointer value): debug only.
  spdlog::debug("byte-range locks of owner {:x} are lost: {}", owner, why);
  if (open.MarkLockLost(owner)) {
    spdlog::warn("byte-range locks on a file were lost ({}); its I/O and new locks fail with "
                 "EIO until it is closed",
                 why);
  }
}

Status LockLostStatus(const OpenFile* file) {
  const OpenState* open = OpenStateOf(file);
  if (open != nullptr && open->locks_lost()) return LostLockStatus();
  return Status::Ok();
}

// SEQUENCE, PUTFH, LOCKU (one per owner)
void ReleaseLocks(Nfs41Engine* engine, const Credentials& cred, std::shared_ptr<OpenState> open,
                  std::function<void()> then) {
  // Lock state made from an older open stateid died with it.
  const Stateid current = open->stateid();
  std::vector<OpenState::LockOwner> owners;
  for (OpenState::LockOwner& owner : open->known_lock_owners()) {
    if (owner.open_stateid.other == current.other) owners.push_back(std::move(owner));
  }
  if (owners.empty()) {
    then();
    return;
  }
  const auto count = static_cast<uint32_t>(owners.size());
  Run<Unit>(
      engine, "LOCKU (before CLOSE)", cred, true,
      [open, owners](XdrEncoder& e) {  // SEQUENCE, PUTFH, LOCKU...
        EncodePutFh(e, open->fh());
        for (const OpenState::LockOwner& owner : owners) {
          Stateid lock_stateid = owner.stateid;
          lock_stateid.seqid = 0;  // whatever the latest is (8.2.2)
          EncodeLockU(e, WRITE_LT, 0, lock_stateid, 0, NFS4_UINT64_MAX);
        }
        return 1 + static_cast<uint32_t>(owners.size());
      },
      [count](XdrDecoder& d, bool, Unit*) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        for (uint32_t i = 0; i < count; ++i) {
          if (Status s = DecodeLockU(d, nullptr); !s.ok()) return s;
        }
        return Status::Ok();
      },
      [then = std::move(then)](Result<Unit> r) {
        // CLOSE says whether anything is still held (NFS4ERR_LOCKS_HELD).
        if (!r.ok()) spdlog::debug("unlock before CLOSE: {}", r.status().ToString());
        then();
      });
}

void Nfs41Client::Lock(const Credentials& cred, const OpenFile* file, uint64_t owner, LockType type,
                       uint64_t offset, uint64_t length, Callback<Attributes> done) {
  OpenState* open = CheckLockArgs(file, length, done);
  if (open == nullptr) return;
  // READ_LT/WRITE_LT, not the blocking variants: waiting is the caller's
  // polling (we do not handle CB_NOTIFY_LOCK, 20.11).
  auto call = std::make_shared<const LockCall<Attributes>>(
      LockCall<Attributes>{engine_.get(), cred, open, owner, WireLockType(type), offset,
                     WireLength(offset, length), std::move(done)});
  open->RunLockOp(owner, [call] { SendLock(call, /*retried=*/false); });
}

void Nfs41Client::Unlock(const Credentials& cred, const OpenFile* file, uint64_t owner,
                         uint64_t offset, uint64_t length, Callback<Unit> done) {
  OpenState* open = CheckLockArgs(file, length, done);
  if (open == nullptr) return;
  // LOCKU's locktype is not used by servers; WRITE_LT covers either kind.
  auto call = std::make_shared<const LockCall<Unit>>(
      LockCall<Unit>{engine_.get(), cred, open, owner, WRITE_LT, offset, WireLength(offset, length),
                     std::move(done)});
  open->RunLockOp(owner, [call] { SendUnlock(call, /*retried=*/false); });
}

void Nfs41Client::TestLock(const Credentials& cred, const OpenFile* file, uint64_t owner,
                           LockType type, uint64_t offset, uint64_t length,
                           Callback<std::optional<LockConflict>> done) {
  OpenState* open = CheckLockArgs(file, length, done);
  if (open == nullptr) return;
  using Call = LockCall<std::optional<LockConflict>>;
  auto call =
      std::make_shared<const Call>(Call{engine_.get(), cred, open, owner, WireLockType(type),
                                        offset, WireLength(offset, length), std::move(done)});
  open->RunLockOp(owner, [call] { SendTestLock(call); });
}

}  // namespace floatmount::nfs
