// The operations of Nfs41Client: each builds one COMPOUND (its ops are
// named in a comment) and hands it to the engine. See nfs/v4/client.h.
#include "nfs/v4/client.h"

#include <spdlog/spdlog.h>

#include <cstring>
#include <random>

#include "nfs/v4/engine.h"
#include "nfs/v4/ops_util.h"
#include "nfs/v4/attrs.h"
#include "nfs/v4/protocol.h"
#include "nfs/v4/replay.h"
#include "nfs/rpc/message.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

namespace {

const Bitmap& DirEntryAttrs() {
  static const Bitmap bits = [] {
    Bitmap b = StandardAttrs();
    b.Set(FATTR4_FILEHANDLE);
    return b;
  }();
  return bits;
}

const Bitmap& MountAttrs() {
  static const Bitmap bits = [] {
    Bitmap b = StandardAttrs();
    const Bitmap probe = ProbeAttrs();
    if (b.words.size() < probe.words.size()) b.words.resize(probe.words.size(), 0);
    for (size_t i = 0; i < probe.words.size(); ++i) b.words[i] |= probe.words[i];
    return b;
  }();
  return bits;
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    if (end > pos) parts.push_back(path.substr(pos, end - pos));
    pos = end + 1;
  }
  return parts;
}

// The stateid was revoked or expired (the server keeps it until FREE_STATEID).
bool IsRevokedStatus(const Status& s) {
  return s.IsNfs(NFS4ERR_ADMIN_REVOKED) || s.IsNfs(NFS4ERR_EXPIRED) ||
         s.IsNfs(NFS4ERR_DELEG_REVOKED);
}

// SEQUENCE, FREE_STATEID (18.38), answer ignored.
void FreeStateidLater(Nfs41Engine* engine, const Stateid& stateid) {
  auto c = std::make_shared<Compound>();
  c->name = "FREE_STATEID";
  c->cachethis = true;
  c->encode = [stateid](XdrEncoder& e) {
    EncodeFreeStateid(e, stateid);
    return 1u;
  };
  c->decode = [](XdrDecoder& d, bool) { return DecodeFreeStateid(d); };
  engine->Submit(std::move(c));
}

struct MountRoot {
  FileHandle fh;
  Attributes attr;
  ServerLimits limits;
};

// The export path from the server's root: SEQUENCE, PUTROOTFH, LOOKUP per
// component, GETFH, then GETATTR of the last. A path longer than the
// session's ca_maxoperations allows is walked in several compounds, each
// going on from the file handle the previous one reached (PUTFH).
// `root` is shared with the compounds: one that outlives its wait decodes
// into it later.
Status WalkExportPath(Nfs41Engine& engine, const std::vector<std::string>& parts,
                      const std::shared_ptr<MountRoot>& root) {
  // SEQUENCE, PUTROOTFH or PUTFH, GETFH and GETATTR take four operations.
  const uint32_t max_ops = engine.Info().max_operations;
  const size_t per_compound = max_ops > 5 ? max_ops - 4 : 1;
  const IdMapper* ids = &engine.id_mapper();
  size_t done = 0;
  bool from_root = true;
  do {
    const std::vector<std::string> chunk(
        parts.begin() + done, parts.begin() + std::min(parts.size(), done + per_compound));
    const bool last = done + chunk.size() == parts.size();
    auto c = std::make_shared<Compound>();
    c->name = "mount (PUTROOTFH, LOOKUP)";
    const FileHandle start = root->fh;
    c->encode = [chunk, last, from_root, start](XdrEncoder& e) {
      if (from_root) {
        EncodePutRootFh(e);
      } else {
        EncodePutFh(e, start);
      }
      for (const std::string& part : chunk) EncodeLookup(e, part);
      EncodeGetFh(e);
      if (last) EncodeGetAttr(e, MountAttrs());
      return static_cast<uint32_t>(chunk.size() + (last ? 3 : 2));
    };
    c->decode = [n = chunk.size(), last, from_root, root, ids](XdrDecoder& d, bool) {
      if (Status st = from_root ? DecodePutRootFh(d) : DecodePutFh(d); !st.ok()) return st;
      for (size_t i = 0; i < n; ++i) {
        if (Status st = DecodeLookup(d); !st.ok()) return st;
      }
      if (Status st = DecodeGetFh(d, &root->fh); !st.ok() || !last) return st;
      return DecodeGetAttr(d, *ids, &root->attr, nullptr, &root->limits);
    };
    if (Status s = engine.SubmitAndWait(c, engine.SetupTimeout()); !s.ok()) return s;
    done += chunk.size();
    from_root = false;
  } while (done < parts.size());
  return Status::Ok();
}

}  // namespace

Nfs41Client::Nfs41Client(std::unique_ptr<Nfs41Engine> engine) : engine_(std::move(engine)) {}

Nfs41Client::~Nfs41Client() { Shutdown(); }

void Nfs41Client::Shutdown() { engine_->Shutdown(); }

void Nfs41Client::UpdateEndpoints(const std::vector<Endpoint>& endpoints) {
  engine_->UpdateEndpoints(endpoints);
}

ServerInfo Nfs41Client::info() const {
  ServerInfo info = engine_->Info();
  info.protocol = "4.1";
  info.rsize = rsize_;
  info.wsize = wsize_;
  return info;
}

Result<std::unique_ptr<Nfs41Client>> Nfs41Client::Mount(const Nfs41Options& options) {
  auto engine = std::make_unique<Nfs41Engine>(options);
  Status s = engine->Start();
  if (!s.ok()) {
    engine->Shutdown();
    return s;
  }
  const std::vector<std::string> parts = SplitPath(options.export_path);
  auto walked = std::make_shared<MountRoot>();
  s = WalkExportPath(*engine, parts, walked);
  const MountRoot root = *walked;
  if (!s.ok()) {
    engine->Shutdown();
    if (s.IsNfs(NFS4ERR_NOENT)) {
      return Status::Nfs(NFS4ERR_NOENT, "the server has no export " + options.export_path);
    }
    return s;
  }
  if (root.attr.Has(Attributes::kType) && root.attr.type != FileType::kDirectory) {
    engine->Shutdown();
    return Status::Nfs(NFS4ERR_NOTDIR, options.export_path + " is not a directory");
  }
  engine->set_lease_time(root.limits.lease_time);
  const ServerInfo info = engine->Info();
  auto client = std::unique_ptr<Nfs41Client>(new Nfs41Client(std::move(engine)));
  client->root_ = root.fh;
  // I/O sizes: what we asked, within what the server and the session allow.
  uint32_t rsize = options.rsize, wsize = options.wsize;
  if (root.limits.maxread > 0) rsize = std::min<uint64_t>(rsize, root.limits.maxread);
  if (root.limits.maxwrite > 0) wsize = std::min<uint64_t>(wsize, root.limits.maxwrite);
  if (info.max_response_size > 1024) rsize = std::min(rsize, info.max_response_size - 1024);
  if (info.max_request_size > 1024) wsize = std::min(wsize, info.max_request_size - 1024);
  client->rsize_ = std::max<uint32_t>(rsize & ~4095u, 4096);
  client->wsize_ = std::max<uint32_t>(wsize & ~4095u, 4096);
  // READDIR is bounded by the session's reply size only, not by rsize.
  uint32_t readdir_max = kMaxReadDirReply;
  if (info.max_response_size > 1024) {
    readdir_max = std::min(readdir_max, info.max_response_size - 1024);
  }
  client->readdir_max_ = std::max<uint32_t>(readdir_max & ~4095u, 4096);
  return client;
}

void Nfs41Client::Lookup(const Credentials& cred, const FileHandle& dir, const std::string& name,
                         Callback<Entry> done) {
  const IdMapper* ids = &engine_->id_mapper();
  Run<Entry>(
      engine_.get(), "LOOKUP", cred, false,
      [dir, name](XdrEncoder& e) {  // SEQUENCE, PUTFH, LOOKUP, GETFH, GETATTR
        EncodePutFh(e, dir);
        EncodeLookup(e, name);
        EncodeGetFh(e);
        EncodeGetAttr(e, StandardAttrs());
        return 4u;
      },
      [ids](XdrDecoder& d, bool, Entry* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        if (Status s = DecodeLookup(d); !s.ok()) return s;
        if (Status s = DecodeGetFh(d, &out->fh); !s.ok()) return s;
        return DecodeGetAttr(d, *ids, &out->attr);
      },
      std::move(done));
}

void Nfs41Client::GetAttr(const Credentials& cred, const FileHandle& fh,
                          Callback<Attributes> done) {
  const IdMapper* ids = &engine_->id_mapper();
  Run<Attributes>(
      engine_.get(), "GETATTR", cred, false,
      [fh](XdrEncoder& e) {  // SEQUENCE, PUTFH, GETATTR
        EncodePutFh(e, fh);
        EncodeGetAttr(e, StandardAttrs());
        return 2u;
      },
      [ids](XdrDecoder& d, bool, Attributes* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        return DecodeGetAttr(d, *ids, out);
      },
      std::move(done));
}

void Nfs41Client::SetAttr(const Credentials& cred, const FileHandle& fh,
                          const SetAttributes& attrs, const OpenFile* file,
                          Callback<Attributes> done) {
  const IdMapper* ids = &engine_->id_mapper();
  OpenState* open = OpenStateOf(file);
  Run<Attributes>(
      engine_.get(), "SETATTR", cred, true,
      [fh, attrs, open, ids](XdrEncoder& e) {  // SEQUENCE, PUTFH, SETATTR, GETATTR
        EncodePutFh(e, fh);
        EncodeSetAttr(e, StateidOf(open), attrs, *ids);
        EncodeGetAttr(e, StandardAttrs());
        return 3u;
      },
      [ids](XdrDecoder& d, bool, Attributes* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        Bitmap set;
        if (Status s = DecodeSetAttr(d, &set); !s.ok()) return s;
        return DecodeGetAttr(d, *ids, out);
      },
      std::move(done), open);
}

void Nfs41Client::Access(const Credentials& cred, const FileHandle& fh, uint32_t mask,
                         Callback<uint32_t> done) {
  Run<uint32_t>(
      engine_.get(), "ACCESS", cred, false,
      [fh, mask](XdrEncoder& e) {  // SEQUENCE, PUTFH, ACCESS
        EncodePutFh(e, fh);
        EncodeAccess(e, mask);
        return 2u;
      },
      [](XdrDecoder& d, bool, uint32_t* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        AccessRes res;
        Status s = DecodeAccess(d, &res);
        *out = res.access;
        return s;
      },
      std::move(done));
}

namespace {

uint32_t ShareAccess(bool read, bool write) {
  uint32_t access = 0;
  if (read) access |= OPEN4_SHARE_ACCESS_READ;
  if (write) access |= OPEN4_SHARE_ACCESS_WRITE;
  return access == 0 ? OPEN4_SHARE_ACCESS_READ : access;
}

struct OpenOutcome {
  OpenRes res;
  FileHandle fh;
  Attributes attr;
  std::optional<FirstRead> first_read;
};

}  // namespace

// Shared by Open and OpenHandle: SEQUENCE, PUTFH, OPEN, GETFH, [SETATTR,]
// GETATTR, [READ]. SETATTR (size 0, with the current stateid of RFC 8881
// 16.2.3.1.2) implements O_TRUNC in the same round trip; READ (the same
// stateid, after GETATTR, so the bytes are no older than the attributes)
// the first read of a small file.
void Nfs41Client::DoOpen(const Credentials& cred, const FileHandle& fh, OpenArgs args,
                         bool truncate, uint32_t read_first, Callback<OpenResult> done) {
  args.owner = StateOwner{engine_->clientid(), engine_->NewOpenOwner()};
  const IdMapper* ids = &engine_->id_mapper();
  auto outcome = std::make_shared<OpenOutcome>();
  Nfs41Engine* engine = engine_.get();
  auto c = std::make_shared<Compound>();
  c->name = "OPEN";
  c->cred = cred;
  // The reply cache keeps an OPEN's reply, so that a resent OPEN that
  // creates or truncates is answered rather than run twice. Servers keep
  // only small replies there (knfsd about 2 KiB): with a READ it would not
  // fit. An OPEN that neither creates nor truncates may run twice (the
  // same open owner: the same open, a newer seqid), so it goes uncached.
  c->cachethis = read_first == 0;
  c->encode = [fh, args, truncate, read_first, ids, engine](XdrEncoder& e) mutable {
    EncodePutFh(e, fh);
    // Read now: an OPEN parked across a client-ID recovery carried the old
    // client ID in its owner, the server answered STALE_CLIENTID to every
    // resend, each asked for another recovery (8 new sessions in 5 ms) and
    // the call failed EIO (LocksUnderRestartsTest).
    args.owner.clientid = engine->clientid();
    EncodeOpen(e, args, *ids);
    EncodeGetFh(e);
    uint32_t ops = 4;
    if (truncate) {
      SetAttributes size0;
      size0.size = 0;
      EncodeSetAttr(e, kCurrentStateid, size0, *ids);
      ++ops;
    }
    EncodeGetAttr(e, StandardAttrs());
    if (read_first != 0) {
      EncodeRead(e, kCurrentStateid, 0, read_first);
      ++ops;
    }
    return ops;
  };
  c->decode = [outcome, truncate, read_first, ids](XdrDecoder& d, bool) {
    *outcome = OpenOutcome{};
    if (Status s = DecodePutFh(d); !s.ok()) return s;
    if (Status s = DecodeOpen(d, &outcome->res); !s.ok()) return s;
    if (Status s = DecodeGetFh(d, &outcome->fh); !s.ok()) return s;
    if (truncate) {
      Bitmap set;
      if (Status s = DecodeSetAttr(d, &set); !s.ok()) return s;
    }
    if (Status s = DecodeGetAttr(d, *ids, &outcome->attr); !s.ok()) return s;
    if (read_first == 0) return Status::Ok();
    // The file is open whatever became of the READ: its error only means
    // the first read goes on its own.
    FirstRead first;
    std::span<const uint8_t> data;
    if (DecodeRead(d, &first.eof, &data).ok() && data.size() <= read_first) {
      first.data.assign(data.begin(), data.end());
      outcome->first_read = std::move(first);
    }
    return Status::Ok();
  };
  const Credentials owner_cred = cred;
  const uint32_t share = args.share_access & OPEN4_SHARE_ACCESS_BOTH;
  const std::string owner = args.owner.owner;
  c->complete = [this, engine, outcome, done, owner_cred, share, owner](const Status& s) {
    if (!s.ok()) {
      done(s);
      return;
    }
    if (outcome->res.delegation.type != OPEN_DELEGATE_NONE &&
        outcome->res.delegation.type != OPEN_DELEGATE_NONE_EXT) {
      ReturnDelegation(owner_cred, outcome->fh, outcome->res.delegation.stateid);
    }
    std::shared_ptr<OpenState> open(
        new OpenState(outcome->fh, owner, share, owner_cred), [engine](OpenState* o) {
          engine->UnregisterOpen(o);
          delete o;
        });
    open->set_stateid(outcome->res.stateid);
    engine->RegisterOpen(open);
    OpenResult result;
    result.file = std::move(open);
    result.fh = outcome->fh;
    result.attr = outcome->attr;
    result.created = !outcome->res.attrset.empty() ||
                     outcome->res.cinfo.before != outcome->res.cinfo.after;
    result.first_read = std::move(outcome->first_read);
    done(std::move(result));
  };
  engine_->Submit(std::move(c));
}

void Nfs41Client::ReturnDelegation(const Credentials& cred, const FileHandle& fh,
                                   const Stateid& stateid) {
  auto c = std::make_shared<Compound>();
  c->name = "DELEGRETURN";
  c->cred = cred;
  c->encode = [fh, stateid](XdrEncoder& e) {  // SEQUENCE, PUTFH, DELEGRETURN
    EncodePutFh(e, fh);
    EncodeDelegReturn(e, stateid);
    return 2u;
  };
  c->decode = [](XdrDecoder& d, bool) {
    if (Status s = DecodePutFh(d); !s.ok()) return s;
    return DecodeDelegReturn(d);
  };
  engine_->Submit(std::move(c));
}

void Nfs41Client::Open(const Credentials& cred, const FileHandle& dir, const std::string& name,
                       const OpenRequest& req, Callback<OpenResult> done) {
  OpenArgs args;
  args.share_access = ShareAccess(req.read, req.write) | OPEN4_SHARE_ACCESS_WANT_NO_DELEG;
  args.claim = CLAIM_NULL;
  args.name = name;
  switch (req.create) {
    case CreateMode::kNoCreate:
      args.opentype = OPEN4_NOCREATE;
      break;
    case CreateMode::kUnchecked:
      args.opentype = OPEN4_CREATE;
      args.createmode = UNCHECKED4;
      args.createattrs = req.attrs;
      break;
    case CreateMode::kGuarded:
      args.opentype = OPEN4_CREATE;
      args.createmode = GUARDED4;
      args.createattrs = req.attrs;
      break;
    case CreateMode::kExclusive: {
      args.opentype = OPEN4_CREATE;
      args.createmode = EXCLUSIVE4_1;
      args.createattrs = req.attrs;
      // Unique per create, not secret: a random_device per create cost
      // 1.2% of the agent's CPU samples in a create-heavy run.
      thread_local std::mt19937_64 verifiers{std::random_device{}()};
      const uint64_t verf = verifiers();
      static_assert(sizeof(args.createverf) == sizeof(verf));
      std::memcpy(args.createverf.data(), &verf, sizeof(verf));
      break;
    }
  }
  const bool plain_read = req.read && !req.truncate && req.create == CreateMode::kNoCreate;
  const uint32_t read_first = plain_read ? std::min<uint32_t>(req.read_first, rsize_) : 0;
  DoOpen(cred, dir, std::move(args), req.truncate, read_first, std::move(done));
}

void Nfs41Client::OpenHandle(const Credentials& cred, const FileHandle& fh, bool read, bool write,
                             Callback<OpenResult> done) {
  OpenArgs args;
  args.share_access = ShareAccess(read, write) | OPEN4_SHARE_ACCESS_WANT_NO_DELEG;
  args.claim = CLAIM_FH;
  args.opentype = OPEN4_NOCREATE;
  DoOpen(cred, fh, std::move(args), false, 0, std::move(done));
}

// SEQUENCE, PUTFH, OPEN (same open owner, wider share access: the server
// upgrades the open and returns its stateid with a new seqid, 9.11).
void Nfs41Client::Upgrade(const Credentials& cred, const OpenFile* file, bool read, bool write,
                          Callback<Unit> done) {
  OpenState* open = OpenStateOf(file);
  if (open == nullptr) {
    done(Status::InvalidArgument("not an NFSv4.1 open file"));
    return;
  }
  const uint32_t current = open->share_access();
  const uint32_t want = current | (read ? OPEN4_SHARE_ACCESS_READ : 0u) |
                        (write ? OPEN4_SHARE_ACCESS_WRITE : 0u);
  if (want == current) {
    done(Unit{});
    return;
  }
  const IdMapper* ids = &engine_->id_mapper();
  Nfs41Engine* engine = engine_.get();
  auto stateid = std::make_shared<Stateid>();
  Run<Unit>(
      engine, "OPEN (upgrade)", cred, true,
      [open, want, engine, ids](XdrEncoder& e) {
        EncodePutFh(e, open->fh());
        OpenArgs args;
        args.share_access = want | OPEN4_SHARE_ACCESS_WANT_NO_DELEG;
        args.share_deny = OPEN4_SHARE_DENY_NONE;
        args.owner = StateOwner{engine->clientid(), open->owner()};
        args.claim = CLAIM_FH;
        args.opentype = OPEN4_NOCREATE;
        EncodeOpen(e, args, *ids);
        return 2u;
      },
      [stateid](XdrDecoder& d, bool, Unit*) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        OpenRes res;
        Status s = DecodeOpen(d, &res);
        if (s.ok()) *stateid = res.stateid;
        return s;
      },
      [open, want, stateid, done](Result<Unit> r) {
        if (r.ok()) open->Upgraded(*stateid, want);
        done(std::move(r));
      },
      open);
}

void Nfs41Client::Close(const Credentials& cred, std::shared_ptr<OpenFile> file,
                        Callback<Unit> done) {
  auto open = std::dynamic_pointer_cast<OpenState>(file);
  if (!open) {
    done(Status::InvalidArgument("not an NFSv4.1 open file"));
    return;
  }
  open->MarkClosing();  // from now on recovery leaves it alone
  // Byte-range locks go first (nfs/v4/locks.cc); CLOSE frees their stateids.
  Nfs41Engine* engine = engine_.get();
  ReleaseLocks(engine, cred, open, [engine, cred, open, done] {
    Run<Unit>(
        engine, "CLOSE", cred, true,
        [open](XdrEncoder& e) {  // SEQUENCE, PUTFH, CLOSE
          EncodePutFh(e, open->fh());
          EncodeClose(e, 0, open->stateid());
          return 2u;
        },
        [](XdrDecoder& d, bool, Unit*) {
          if (Status s = DecodePutFh(d); !s.ok()) return s;
          Stateid closed;
          return DecodeClose(d, &closed);
        },
        [engine, open, done](Result<Unit> r) {
          // The open is gone on the server either way once CLOSE was answered.
          const Stateid was = open->stateid();
          open->set_stateid(kInvalidStateid);
          if (!r.ok() && IsRevokedStatus(r.status())) {
            // Revoked or expired: the server keeps a record of it until
            // FREE_STATEID (8.2.3). Closed all the same, as far as the
            // program can tell.
            FreeStateidLater(engine, was);
            r = Unit{};
          } else if (r.status().IsNfs(NFS4ERR_BAD_STATEID) ||
                     r.status().IsNfs(NFS4ERR_STALE_STATEID)) {
            r = Unit{};  // the server had forgotten it already
          }
          done(std::move(r));
        },
        open.get());
  });
}

void Nfs41Client::Read(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                       uint64_t offset, std::span<uint8_t> dest, Callback<ReadResult> done) {
  OpenState* open = OpenStateOf(file);
  const uint32_t count = static_cast<uint32_t>(std::min<size_t>(dest.size(), rsize_));
  PayloadSink sink;
  sink.dest = dest.first(count);
  // Finds the data in "xid, reply header, COMPOUND, SEQUENCE, PUTFH, READ".
  sink.locate = [](std::span<const uint8_t> prefix, size_t* at, size_t* length) {
    XdrDecoder d(prefix);
    d.Skip(4);  // xid
    if (!rpc::DecodeReplyHeader(d).ok()) return false;
    uint32_t status = 0, results = 0;
    if (!DecodeCompoundHeader(d, &status, &results).ok() || status != NFS4_OK) return false;
    SequenceRes seq;
    if (!DecodeSequence(d, &seq).ok() || !DecodePutFh(d).ok()) return false;
    bool eof;
    uint32_t len;
    if (!DecodeReadHeader(d, &eof, &len).ok() || !d.ok()) return false;
    *at = d.position();
    *length = len;
    return true;
  };
  Run<ReadResult>(
      engine_.get(), "READ", cred, false,
      [fh, open, offset, count](XdrEncoder& e) {  // SEQUENCE, PUTFH, READ
        EncodePutFh(e, fh);
        EncodeRead(e, StateidOf(open), offset, count);
        return 2u;
      },
      [dest](XdrDecoder& d, bool payload_received, ReadResult* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        if (payload_received) {
          uint32_t len = 0;
          Status s = DecodeReadHeader(d, &out->eof, &len);
          d.Skip(XdrPad(len));
          out->count = len;
          return s;
        }
        std::span<const uint8_t> data;
        Status s = DecodeRead(d, &out->eof, &data);
        if (!s.ok()) return s;
        if (data.size() > dest.size()) return Status::Protocol("READ returned more than asked");
        std::memcpy(dest.data(), data.data(), data.size());
        out->count = static_cast<uint32_t>(data.size());
        return s;
      },
      std::move(done), open, std::move(sink), /*io=*/true);
}

namespace {

// PUTFH, WRITE: how Write and WriteThen start.
void EncodePutFhWrite(XdrEncoder& e, const FileHandle& fh, const OpenState* open, uint64_t offset,
                      uint32_t stable, std::span<const uint8_t> chunk) {
  EncodePutFh(e, fh);
  EncodeWrite(e, StateidOf(open), offset, stable, chunk);
}

Status DecodePutFhWrite(XdrDecoder& d, WriteResult* out) {
  if (Status s = DecodePutFh(d); !s.ok()) return s;
  WriteRes res;
  Status s = DecodeWrite(d, &res);
  *out = WriteResult{res.count, static_cast<Stability>(res.committed), res.verifier};
  return s;
}

}  // namespace

void Nfs41Client::Write(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                        uint64_t offset, std::span<const uint8_t> data, Stability stability,
                        Callback<WriteResult> done) {
  OpenState* open = OpenStateOf(file);
  const auto chunk = data.first(std::min<size_t>(data.size(), wsize_));
  const uint32_t stable = static_cast<uint32_t>(stability);
  Run<WriteResult>(
      engine_.get(), "WRITE", cred, false,
      [fh, open, offset, chunk, stable](XdrEncoder& e) {  // SEQUENCE, PUTFH, WRITE
        EncodePutFhWrite(e, fh, open, offset, stable, chunk);
        return 2u;
      },
      [](XdrDecoder& d, bool, WriteResult* out) { return DecodePutFhWrite(d, out); },
      std::move(done), open, {}, /*io=*/true);
}

void Nfs41Client::WriteThen(const Credentials& cred, const FileHandle& fh, const OpenFile* file,
                            uint64_t offset, std::span<const uint8_t> data, Stability stability,
                            std::optional<SetAttributes> then_set, WriteThenDone done) {
  OpenState* open = OpenStateOf(file);
  const IdMapper* ids = &engine_->id_mapper();
  const auto chunk = data.first(std::min<size_t>(data.size(), wsize_));
  const uint32_t stable = static_cast<uint32_t>(stability);
  // What the last reply said, op by op: the compound stops at the first op
  // that fails, so a WRITE's result may come with a later op's error.
  struct Outcome {
    std::optional<WriteResult> written;
    Attributes attr;
  };
  auto outcome = std::make_shared<Outcome>();
  const bool set = then_set.has_value();
  Run<Unit>(
      engine_.get(), set ? "WRITE, SETATTR" : "WRITE, GETATTR", cred, /*cachethis=*/set,
      [fh, open, offset, chunk, stable, then_set, ids](XdrEncoder& e) {
        // A SETATTR, of anything but the size, needs no stateid (RFC
        // 8881 18.30.3); with one, the reply is small and kept for a
        // resend (sa_cachethis), as a SETATTR's is. A WRITE and GETATTR
        // may run twice, as a WRITE alone does.
        EncodePutFhWrite(e, fh, open, offset, stable, chunk);
        if (then_set) EncodeSetAttr(e, kAnonymousStateid, *then_set, *ids);
        EncodeGetAttr(e, StandardAttrs());
        return then_set ? 4u : 3u;
      },
      [outcome, set, ids](XdrDecoder& d, bool, Unit*) {
        *outcome = Outcome{};
        WriteResult written;
        if (Status s = DecodePutFhWrite(d, &written); !s.ok()) return s;
        outcome->written = written;
        Bitmap attrsset;
        if (set) {
          if (Status s = DecodeSetAttr(d, &attrsset); !s.ok()) return s;
        }
        return DecodeGetAttr(d, *ids, &outcome->attr);
      },
      [outcome, done](Result<Unit> r) {
        if (!r.ok()) return done(outcome->written, r.status());
        done(outcome->written, outcome->attr);
      },
      open, {}, /*io=*/true);
}

void Nfs41Client::WriteThenSetAttr(const Credentials& cred, const FileHandle& fh,
                                   const OpenFile* file, uint64_t offset,
                                   std::span<const uint8_t> data, Stability stability,
                                   const SetAttributes& attrs, WriteSetAttrDone done) {
  const size_t asked = std::min<size_t>(data.size(), wsize_);
  WriteThen(cred, fh, file, offset, data, stability, attrs,
            [asked, done](std::optional<WriteResult> written, Result<Attributes> rest) {
              if (!written) return done(rest.status(), std::nullopt);
              // A short WRITE: the SETATTR ran before the rest of the bytes.
              if (written->count < asked) return done(*written, std::nullopt);
              done(*written, std::optional<Result<Attributes>>(std::move(rest)));
            });
}

void Nfs41Client::WriteThenGetAttr(const Credentials& cred, const FileHandle& fh,
                                   const OpenFile* file, uint64_t offset,
                                   std::span<const uint8_t> data, Stability stability,
                                   WriteGetAttrDone done) {
  WriteThen(cred, fh, file, offset, data, stability, std::nullopt,
            [done](std::optional<WriteResult> written, Result<Attributes> rest) {
              if (!written) return done(rest.status(), std::nullopt);
              // A failed GETATTR leaves the WRITE's result.
              done(*written, rest.ok() ? std::optional<Attributes>(*rest) : std::nullopt);
            });
}

void Nfs41Client::Commit(const Credentials& cred, const FileHandle& fh, uint64_t offset,
                         uint32_t count, Callback<WriteVerifier> done) {
  Run<WriteVerifier>(
      engine_.get(), "COMMIT", cred, false,
      [fh, offset, count](XdrEncoder& e) {  // SEQUENCE, PUTFH, COMMIT
        EncodePutFh(e, fh);
        EncodeCommit(e, offset, count);
        return 2u;
      },
      [](XdrDecoder& d, bool, WriteVerifier* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        return DecodeCommit(d, out);
      },
      std::move(done));
}

void Nfs41Client::Create(const Credentials& cred, const FileHandle& dir, const std::string& name,
                         const CreateRequest& req, Callback<Entry> done) {
  if (req.type == FileType::kRegular) {
    done(Status::InvalidArgument("regular files are created with Open"));
    return;
  }
  const IdMapper* ids = &engine_->id_mapper();
  RunOnce<Entry>(
      engine_.get(), "CREATE", cred,
      [dir, name, req, ids](XdrEncoder& e) {  // SEQUENCE, PUTFH, CREATE, GETFH, GETATTR
        EncodePutFh(e, dir);
        EncodeCreate(e, name, req, *ids);
        EncodeGetFh(e);
        EncodeGetAttr(e, StandardAttrs());
        return 4u;
      },
      [ids](XdrDecoder& d, bool, Entry* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        ChangeInfo cinfo;
        Bitmap set;
        if (Status s = DecodeCreate(d, &cinfo, &set); !s.ok()) return s;
        if (Status s = DecodeGetFh(d, &out->fh); !s.ok()) return s;
        return DecodeGetAttr(d, *ids, &out->attr);
      },
      CreateReplayCheck(engine_.get(), cred, dir, name, req), std::move(done));
}

void Nfs41Client::Remove(const Credentials& cred, const FileHandle& dir, const std::string& name,
                         Callback<Unit> done) {
  RunOnce<Unit>(
      engine_.get(), "REMOVE", cred,
      [dir, name](XdrEncoder& e) {  // SEQUENCE, PUTFH, REMOVE
        EncodePutFh(e, dir);
        EncodeRemove(e, name);
        return 2u;
      },
      [](XdrDecoder& d, bool, Unit*) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        ChangeInfo cinfo;
        return DecodeRemove(d, &cinfo);
      },
      RemoveReplayCheck(engine_.get()), std::move(done));
}

void Nfs41Client::Rename(const Credentials& cred, const FileHandle& from_dir,
                         const std::string& from_name, const FileHandle& to_dir,
                         const std::string& to_name, Callback<Unit> done) {
  RunOnce<Unit>(
      engine_.get(), "RENAME", cred,
      [from_dir, from_name, to_dir, to_name](XdrEncoder& e) {
        // SEQUENCE, PUTFH (source), SAVEFH, PUTFH (target), RENAME
        EncodePutFh(e, from_dir);
        EncodeSaveFh(e);
        EncodePutFh(e, to_dir);
        EncodeRename(e, from_name, to_name);
        return 4u;
      },
      [](XdrDecoder& d, bool, Unit*) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        if (Status s = DecodeSaveFh(d); !s.ok()) return s;
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        ChangeInfo source, target;
        return DecodeRename(d, &source, &target);
      },
      RenameReplayCheck(engine_.get(), cred, from_dir, from_name, to_dir, to_name),
      std::move(done));
}

void Nfs41Client::Link(const Credentials& cred, const FileHandle& fh, const FileHandle& dir,
                       const std::string& name, Callback<Attributes> done) {
  const IdMapper* ids = &engine_->id_mapper();
  RunOnce<Attributes>(
      engine_.get(), "LINK", cred,
      [fh, dir, name](XdrEncoder& e) {
        // SEQUENCE, PUTFH (file), SAVEFH, PUTFH (dir), LINK, RESTOREFH, GETATTR
        EncodePutFh(e, fh);
        EncodeSaveFh(e);
        EncodePutFh(e, dir);
        EncodeLink(e, name);
        EncodeRestoreFh(e);
        EncodeGetAttr(e, StandardAttrs());
        return 6u;
      },
      [ids](XdrDecoder& d, bool, Attributes* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        if (Status s = DecodeSaveFh(d); !s.ok()) return s;
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        ChangeInfo cinfo;
        if (Status s = DecodeLink(d, &cinfo); !s.ok()) return s;
        if (Status s = DecodeRestoreFh(d); !s.ok()) return s;
        return DecodeGetAttr(d, *ids, out);
      },
      LinkReplayCheck(engine_.get(), cred, fh, dir, name), std::move(done));
}

void Nfs41Client::ReadLink(const Credentials& cred, const FileHandle& fh,
                           Callback<std::string> done) {
  Run<std::string>(
      engine_.get(), "READLINK", cred, false,
      [fh](XdrEncoder& e) {  // SEQUENCE, PUTFH, READLINK
        EncodePutFh(e, fh);
        EncodeReadLink(e);
        return 2u;
      },
      [](XdrDecoder& d, bool, std::string* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        return DecodeReadLink(d, out);
      },
      std::move(done));
}

void Nfs41Client::ReadDir(const Credentials& cred, const FileHandle& dir, uint64_t cookie,
                          const std::array<uint8_t, 8>& verifier, uint32_t max_bytes,
                          Callback<DirPage> done) {
  const IdMapper* ids = &engine_->id_mapper();
  const uint32_t maxcount = std::min(std::max<uint32_t>(max_bytes, 4096), readdir_max_);
  Run<DirPage>(
      engine_.get(), "READDIR", cred, false,
      [dir, cookie, verifier, maxcount](XdrEncoder& e) {  // SEQUENCE, PUTFH, READDIR
        EncodePutFh(e, dir);
        EncodeReadDir(e, cookie, verifier, maxcount, maxcount, DirEntryAttrs());
        return 2u;
      },
      [ids](XdrDecoder& d, bool, DirPage* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        return DecodeReadDir(d, *ids, out);
      },
      std::move(done));
}

void Nfs41Client::StatFs(const Credentials& cred, const FileHandle& fh, Callback<FsStats> done) {
  const IdMapper* ids = &engine_->id_mapper();
  Run<FsStats>(
      engine_.get(), "GETATTR (statfs)", cred, false,
      [fh](XdrEncoder& e) {  // SEQUENCE, PUTFH, GETATTR
        EncodePutFh(e, fh);
        EncodeGetAttr(e, StatFsAttrs());
        return 2u;
      },
      [ids](XdrDecoder& d, bool, FsStats* out) {
        if (Status s = DecodePutFh(d); !s.ok()) return s;
        Attributes ignored;
        return DecodeGetAttr(d, *ids, &ignored, out);
      },
      std::move(done));
}

}  // namespace floatmount::nfs
