// Helpers shared by the files that build Nfs41Client's compounds
// (nfs/v4/client.cc, nfs/v4/locks.cc). Internal to nfs/.
//
// Threads: Run may be called from any thread; its callback runs where the
// engine completes the Compound (see compound.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "nfs/client.h"
#include "nfs/v4/compound.h"
#include "nfs/v4/engine.h"
#include "nfs/v4/open_state.h"
#include "nfs/v4/ops.h"
#include "nfs/rpc/xdr.h"

namespace floatmount::nfs {

// The largest READDIR reply asked for (the FUSE layer grows a listing's
// READDIRs up to it). The session's fore channel makes room for it
// whatever rsize is: capped at a 512 KiB rsize, a listing of 10,000 names
// took 6 READDIRs where 5 did.
inline constexpr uint32_t kMaxReadDirReply = 1u << 20;

// What a non-idempotent request makes of an error when the server may
// have run it before (Compound::may_have_run): looks at the server and
// calls `done` with the request's result, or with `error` (nfs/v4/replay.h).
template <typename T>
using ReplayCheck = std::function<void(const Status& error, Callback<T> done)>;

// Builds and submits a Compound whose result is a T. An error of a
// compound that may have run before goes through `replayed`, if given.
template <typename T>
void Run(Nfs41Engine* engine, const char* name, const Credentials& cred, bool cachethis,
         std::function<uint32_t(XdrEncoder&)> encode,
         std::function<Status(XdrDecoder&, bool, T*)> decode, Callback<T> done,
         OpenState* open = nullptr, PayloadSink sink = {}, bool io = false,
         ReplayCheck<T> replayed = {}) {
  auto c = std::make_shared<Compound>();
  auto out = std::make_shared<T>();
  c->name = name;
  c->cred = cred;
  c->cachethis = cachethis;
  c->open = open;
  c->io = io;
  c->sink = std::move(sink);
  c->encode = std::move(encode);
  c->decode = [out, decode = std::move(decode)](XdrDecoder& d, bool payload_received) {
    *out = T{};
    return decode(d, payload_received, out.get());
  };
  // `complete` runs while the engine still holds the Compound.
  const Compound* self = c.get();
  c->complete = [out, self, done = std::move(done),
                 replayed = std::move(replayed)](const Status& s) {
    if (s.ok()) {
      done(std::move(*out));
    } else if (replayed && self->may_have_run) {
      replayed(s, done);
    } else {
      done(s);
    }
  };
  engine->Submit(std::move(c));
}

// Run for a non-idempotent request (REMOVE, RENAME, LINK, CREATE): the
// server keeps its reply for a resend (sa_cachethis); `replayed` judges an
// error after a rerun the reply cache could not answer.
template <typename T>
void RunOnce(Nfs41Engine* engine, const char* name, const Credentials& cred,
             std::function<uint32_t(XdrEncoder&)> encode,
             std::function<Status(XdrDecoder&, bool, T*)> decode, ReplayCheck<T> replayed,
             Callback<T> done) {
  Run<T>(engine, name, cred, /*cachethis=*/true, std::move(encode), std::move(decode),
         std::move(done), nullptr, {}, false, std::move(replayed));
}

// The stateid to use for I/O on `file` (the anonymous stateid without one).
// Its seqid is 0, "whatever is current" (RFC 8881 8.2.2), so that I/O in
// flight while the open is upgraded is not refused as OLD_STATEID.
inline v4::Stateid StateidOf(const OpenFile* file) {
  const auto* open = dynamic_cast<const OpenState*>(file);
  if (open == nullptr) return v4::kAnonymousStateid;
  v4::Stateid stateid = open->stateid();
  stateid.seqid = 0;
  return stateid;
}

inline OpenState* OpenStateOf(const OpenFile* file) {
  return const_cast<OpenState*>(dynamic_cast<const OpenState*>(file));
}

// Unlocks everything the open's lock owners hold (SEQUENCE, PUTFH, LOCKU
// per owner), then runs `then` whatever the outcome; runs it at once when
// no owner holds a lock stateid. CLOSE goes after it: a server may refuse
// to close under locks (NFS4ERR_LOCKS_HELD, RFC 8881 18.2.4).
// In nfs/v4/locks.cc.
void ReleaseLocks(Nfs41Engine* engine, const Credentials& cred, std::shared_ptr<OpenState> open,
                  std::function<void()> then);

// Marks `owner`'s locks on `open` lost (OpenState::MarkLockLost), warning
// once per file. In nfs/v4/locks.cc.
void LoseLocks(OpenState& open, uint64_t owner, const std::string& why);

// NFS4ERR_IO when a byte-range lock on `file` was lost: READ and WRITE
// through it must fail until it is closed (OpenState, "Lost locks"; the
// engine checks Compound::io with it); else OK. In nfs/v4/locks.cc.
Status LockLostStatus(const OpenFile* file);

}  // namespace floatmount::nfs
