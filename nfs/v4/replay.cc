// The checks of nfs/v4/replay.h: each looks the request's names up on the
// server and compares what is there with what the request would have made.
#include "nfs/v4/replay.h"

#include <memory>
#include <utility>

#include "nfs/log_limiter.h"
#include "nfs/v4/attrs.h"
#include "nfs/v4/engine.h"
#include "nfs/v4/ops.h"
#include "nfs/v4/protocol.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

namespace {

// What a name in a directory leads to, as one LOOKUP found it.
struct Found {
  bool exists = false;
  FileHandle fh;
  Attributes attr;
  std::string symlink_target;  // when asked for and the name is a symlink
};

// The error stands, or the request is reported done (logged: a rerun is
// rare and says the server lost replies, which an operator may want to
// know; no names at info level).
template <typename T>
void Conclude(Nfs41Engine* engine, const char* op, const Status& error, bool ours, Result<T> result,
              const Callback<T>& done) {
  if (!ours) {
    done(error);
    return;
  }
  engine->NoteRerunDone();
  static LogLimiter limiter(5, std::chrono::seconds(60));
  LogLimited(limiter, spdlog::level::info, op,
             "{} was run again after the server lost its reply (a restart); its {} is the "
             "trace of our own first run, so it is reported done",
             op, error.ToString());
  done(std::move(result));
}

// SEQUENCE, PUTFH (dir), LOOKUP, GETFH, GETATTR [, READLINK].
void LookUp(Nfs41Engine* engine, const Credentials& cred, const FileHandle& dir,
            const std::string& name, bool read_link, Callback<Found> done) {
  const IdMapper* ids = &engine->id_mapper();
  Run<Found>(
      engine, "LOOKUP (after a rerun)", cred, false,
      [dir, name, read_link](XdrEncoder& e) {
        EncodePutFh(e, dir);
        EncodeLookup(e, name);
        EncodeGetFh(e);
        EncodeGetAttr(e, StandardAttrs());
        if (read_link) EncodeReadLink(e);
        return read_link ? 5u : 4u;
      },
      [ids, read_link](XdrDecoder& d, bool, Found* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        if (Status s = DecodeLookup(d); !s.ok()) {
          return s.IsNfs(NFS4ERR_NOENT) ? Status::Ok() : s;  // out->exists stays false
        }
        if (Status s = DecodeGetFh(d, &out->fh); !s.ok()) return s;
        if (Status s = DecodeGetAttr(d, *ids, &out->attr); !s.ok()) return s;
        out->exists = true;
        // READLINK of something else fails (INVAL): the type tells.
        if (read_link) DecodeReadLink(d, &out->symlink_target);
        return Status::Ok();
      },
      std::move(done));
}

// The name was made by this request: its type, owner, permission bits and
// symlink target are the asked ones.
bool MadeAsAsked(const Found& found, const Credentials& cred, const CreateRequest& req) {
  const Attributes& a = found.attr;
  if (!found.exists || a.type != req.type) return false;
  const uint32_t owner = req.attrs.uid.value_or(cred.uid);
  if ((a.valid & Attributes::kUid) == 0 || a.uid != owner) return false;
  // Only the permission bits: a directory may inherit set-group-ID.
  if (req.attrs.mode &&
      ((a.valid & Attributes::kMode) == 0 || (a.mode & 0777) != (*req.attrs.mode & 0777))) {
    return false;
  }
  if (req.type == FileType::kSymlink && found.symlink_target != req.symlink_target) return false;
  return true;
}

}  // namespace

ReplayCheck<Unit> RemoveReplayCheck(Nfs41Engine* engine) {
  return [engine](const Status& error, Callback<Unit> done) {
    Conclude<Unit>(engine, "REMOVE", error, error.IsNfs(NFS4ERR_NOENT), Unit{}, done);
  };
}

ReplayCheck<Unit> RenameReplayCheck(Nfs41Engine* engine, const Credentials& cred,
                                    const FileHandle& from_dir, const std::string& from_name,
                                    const FileHandle& to_dir, const std::string& to_name) {
  return [=](const Status& error, Callback<Unit> done) {
    if (!error.IsNfs(NFS4ERR_NOENT)) {
      done(error);
      return;
    }
    LookUp(engine, cred, to_dir, to_name, false, [=](Result<Found> target) {
      if (!target.ok() || !target->exists) {
        done(error);
        return;
      }
      LookUp(engine, cred, from_dir, from_name, false, [=](Result<Found> source) {
        Conclude<Unit>(engine, "RENAME", error, source.ok() && !source->exists, Unit{}, done);
      });
    });
  };
}

ReplayCheck<Attributes> LinkReplayCheck(Nfs41Engine* engine, const Credentials& cred,
                                        const FileHandle& fh, const FileHandle& dir,
                                        const std::string& name) {
  return [=](const Status& error, Callback<Attributes> done) {
    if (!error.IsNfs(NFS4ERR_EXIST)) {
      done(error);
      return;
    }
    LookUp(engine, cred, dir, name, false, [=](Result<Found> found) {
      const bool ours = found.ok() && found->exists && found->fh == fh;
      Conclude<Attributes>(engine, "LINK", error, ours, ours ? found->attr : Attributes{}, done);
    });
  };
}

ReplayCheck<Entry> CreateReplayCheck(Nfs41Engine* engine, const Credentials& cred,
                                     const FileHandle& dir, const std::string& name,
                                     const CreateRequest& req) {
  return [=](const Status& error, Callback<Entry> done) {
    if (!error.IsNfs(NFS4ERR_EXIST)) {
      done(error);
      return;
    }
    const bool symlink = req.type == FileType::kSymlink;
    LookUp(engine, cred, dir, name, symlink, [=](Result<Found> found) {
      const bool ours = found.ok() && MadeAsAsked(*found, cred, req);
      Entry entry;
      if (ours) entry = Entry{found->fh, found->attr};
      Conclude<Entry>(engine, "CREATE", error, ours, std::move(entry), done);
    });
  };
}

}  // namespace floatmount::nfs
