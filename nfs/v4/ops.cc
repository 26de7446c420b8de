// File, attribute, open-state, I/O, namespace and lock operations of
// nfs/v4/ops.h. Session and client ID operations: nfs/v4/session_ops.cc.
#include "nfs/v4/ops.h"

#include <algorithm>
#include <string>
#include <utility>

namespace floatmount::nfs::v4 {
namespace {

// Writes an optional out param.
template <typename T>
void Assign(T* out, T value) {
  if (out != nullptr) *out = std::move(value);
}

void DecodeVerifier(XdrDecoder& d, Verifier* verifier) {
  std::span<const uint8_t> bytes = d.GetFixedOpaque(NFS4_VERIFIER_SIZE);
  if (d.ok()) std::copy(bytes.begin(), bytes.end(), verifier->begin());
}

// nfsace4 (RFC 8881 section 6.2.1).
void DecodeAce(XdrDecoder& d, Nfsace4* ace) {
  ace->type = d.GetUint32();
  ace->flag = d.GetUint32();
  ace->access_mask = d.GetUint32();
  ace->who = d.GetString(NFS4_OPAQUE_LIMIT);
}

// open_delegation4 (RFC 8881 section 18.16.2).
void DecodeDelegation(XdrDecoder& d, OpenDelegation* deleg) {
  deleg->type = d.GetUint32();
  switch (deleg->type) {
    case OPEN_DELEGATE_NONE:
      break;
    case OPEN_DELEGATE_READ:  // open_read_delegation4
      DecodeStateid(d, &deleg->stateid);
      deleg->recall = d.GetBool();
      DecodeAce(d, &deleg->permissions);
      break;
    case OPEN_DELEGATE_WRITE:  // open_write_delegation4
      DecodeStateid(d, &deleg->stateid);
      deleg->recall = d.GetBool();
      deleg->limitby = d.GetUint32();  // nfs_space_limit4
      if (deleg->limitby == NFS_LIMIT_SIZE) {
        deleg->filesize = d.GetUint64();
      } else if (deleg->limitby == NFS_LIMIT_BLOCKS) {
        deleg->num_blocks = d.GetUint32();
        deleg->bytes_per_block = d.GetUint32();
      } else {
        d.Fail();
      }
      DecodeAce(d, &deleg->permissions);
      break;
    case OPEN_DELEGATE_NONE_EXT:  // open_none_delegation4
      deleg->why_none = d.GetUint32();
      if (deleg->why_none == WND4_CONTENTION) {
        deleg->server_will_push_deleg = d.GetBool();
      } else if (deleg->why_none == WND4_RESOURCE) {
        deleg->server_will_signal_avail = d.GetBool();
      }
      break;
    default:
      d.Fail();
  }
}

// LOCK4denied (RFC 8881 section 18.10.2).
void DecodeLockDenied(XdrDecoder& d, LockDenied* denied) {
  denied->offset = d.GetUint64();
  denied->length = d.GetUint64();
  denied->locktype = d.GetUint32();
  DecodeStateOwner(d, &denied->owner);
}

// A result whose body is one stateid4 (CLOSE, OPEN_DOWNGRADE, LOCKU).
Status DecodeStateidResult(XdrDecoder& d, uint32_t op, Stateid* stateid) {
  Status s = DecodeOpHeader(d, op);
  if (!s.ok()) return s;
  Stateid r;
  DecodeStateid(d, &r);
  s = CheckDecoded(d, op);
  if (s.ok()) Assign(stateid, r);
  return s;
}

// A result whose body is one change_info4 (REMOVE, LINK).
Status DecodeChangeInfoResult(XdrDecoder& d, uint32_t op, ChangeInfo* cinfo) {
  Status s = DecodeOpHeader(d, op);
  if (!s.ok()) return s;
  ChangeInfo r;
  DecodeChangeInfo(d, &r);
  s = CheckDecoded(d, op);
  if (s.ok()) Assign(cinfo, r);
  return s;
}

}  // namespace

// RFC 8881 sections 18.21, 18.19, 18.8, 18.15, 18.14, 18.31, 18.27.
void EncodePutRootFh(XdrEncoder& e) { e.PutUint32(OP_PUTROOTFH); }
Status DecodePutRootFh(XdrDecoder& d) { return DecodeOpHeader(d, OP_PUTROOTFH); }

void EncodePutFh(XdrEncoder& e, const FileHandle& fh) {
  e.PutUint32(OP_PUTFH);
  e.PutOpaque(fh.data(), fh.size());
}
Status DecodePutFh(XdrDecoder& d) { return DecodeOpHeader(d, OP_PUTFH); }

void EncodeGetFh(XdrEncoder& e) { e.PutUint32(OP_GETFH); }
Status DecodeGetFh(XdrDecoder& d, FileHandle* fh) {
  Status s = DecodeOpHeader(d, OP_GETFH);
  if (!s.ok()) return s;
  std::span<const uint8_t> bytes = d.GetOpaque(NFS4_FHSIZE);
  if (bytes.empty()) d.Fail();
  s = CheckDecoded(d, OP_GETFH);
  if (s.ok()) Assign(fh, FileHandle(bytes.data(), bytes.size()));
  return s;
}

void EncodeLookup(XdrEncoder& e, std::string_view name) {
  e.PutUint32(OP_LOOKUP);
  e.PutString(name);
}
Status DecodeLookup(XdrDecoder& d) { return DecodeOpHeader(d, OP_LOOKUP); }

void EncodeLookupp(XdrEncoder& e) { e.PutUint32(OP_LOOKUPP); }
Status DecodeLookupp(XdrDecoder& d) { return DecodeOpHeader(d, OP_LOOKUPP); }

void EncodeSaveFh(XdrEncoder& e) { e.PutUint32(OP_SAVEFH); }
Status DecodeSaveFh(XdrDecoder& d) { return DecodeOpHeader(d, OP_SAVEFH); }

void EncodeRestoreFh(XdrEncoder& e) { e.PutUint32(OP_RESTOREFH); }
Status DecodeRestoreFh(XdrDecoder& d) { return DecodeOpHeader(d, OP_RESTOREFH); }

// RFC 8881 section 18.7.
void EncodeGetAttr(XdrEncoder& e, const Bitmap& attr_request) {
  e.PutUint32(OP_GETATTR);
  EncodeBitmap(e, attr_request);
}

Status DecodeGetAttr(XdrDecoder& d, const IdMapper& ids, Attributes* attrs, FsStats* stats,
                     ServerLimits* limits, FileHandle* fh) {
  Status s = DecodeOpHeader(d, OP_GETATTR);
  if (!s.ok()) return s;
  DecodeFattr(d, ids, attrs, stats, limits, fh);
  return CheckDecoded(d, OP_GETATTR);
}

// RFC 8881 section 18.30.
void EncodeSetAttr(XdrEncoder& e, const Stateid& stateid, const SetAttributes& attrs,
                   const IdMapper& ids) {
  e.PutUint32(OP_SETATTR);
  EncodeStateid(e, stateid);
  EncodeFattr(e, attrs, ids);
}

Status DecodeSetAttr(XdrDecoder& d, Bitmap* attrsset) {
  uint32_t st = NFS4_OK;
  Status s = DecodeOpStatus(d, OP_SETATTR, &st);
  if (!s.ok()) return s;
  Bitmap r;
  DecodeBitmap(d, &r);  // SETATTR4res carries attrsset in every arm
  s = CheckDecoded(d, OP_SETATTR);
  if (!s.ok()) return s;
  Assign(attrsset, std::move(r));
  if (st != NFS4_OK) return Status::Nfs(st, OpName(OP_SETATTR));
  return Status::Ok();
}

// RFC 8881 section 18.1.
void EncodeAccess(XdrEncoder& e, uint32_t mask) {
  e.PutUint32(OP_ACCESS);
  e.PutUint32(mask);
}

Status DecodeAccess(XdrDecoder& d, AccessRes* res) {
  Status s = DecodeOpHeader(d, OP_ACCESS);
  if (!s.ok()) return s;
  AccessRes r;
  r.supported = d.GetUint32();
  r.access = d.GetUint32();
  s = CheckDecoded(d, OP_ACCESS);
  if (s.ok()) Assign(res, r);
  return s;
}

// RFC 8881 section 18.16.
void EncodeOpen(XdrEncoder& e, const OpenArgs& args, const IdMapper& ids) {
  e.PutUint32(OP_OPEN);
  e.PutUint32(args.seqid);
  e.PutUint32(args.share_access);
  e.PutUint32(args.share_deny);
  EncodeStateOwner(e, args.owner);
  e.PutUint32(args.opentype);  // openflag4
  if (args.opentype == OPEN4_CREATE) {
    e.PutUint32(args.createmode);  // createhow4
    switch (args.createmode) {
      case UNCHECKED4:
      case GUARDED4:
        EncodeFattr(e, args.createattrs, ids);
        break;
      case EXCLUSIVE4:
        e.PutFixedOpaque(args.createverf.data(), args.createverf.size());
        break;
      case EXCLUSIVE4_1:  // creatverfattr
        e.PutFixedOpaque(args.createverf.data(), args.createverf.size());
        EncodeFattr(e, args.createattrs, ids);
        break;
    }
  }
  e.PutUint32(args.claim);  // open_claim4
  switch (args.claim) {
    case CLAIM_NULL:
    case CLAIM_DELEGATE_PREV:
      e.PutString(args.name);
      break;
    case CLAIM_PREVIOUS:
      e.PutUint32(args.delegate_type);
      break;
    case CLAIM_DELEGATE_CUR:  // open_claim_delegate_cur4
      EncodeStateid(e, args.delegate_stateid);
      e.PutString(args.name);
      break;
    case CLAIM_DELEG_CUR_FH:
      EncodeStateid(e, args.delegate_stateid);
      break;
    case CLAIM_FH:
    case CLAIM_DELEG_PREV_FH:
      break;
  }
}

Status DecodeOpen(XdrDecoder& d, OpenRes* res) {
  Status s = DecodeOpHeader(d, OP_OPEN);
  if (!s.ok()) return s;
  OpenRes r;
  DecodeStateid(d, &r.stateid);
  DecodeChangeInfo(d, &r.cinfo);
  r.rflags = d.GetUint32();
  DecodeBitmap(d, &r.attrset);
  DecodeDelegation(d, &r.delegation);
  s = CheckDecoded(d, OP_OPEN);
  if (s.ok()) Assign(res, std::move(r));
  return s;
}

// RFC 8881 section 18.2.
void EncodeClose(XdrEncoder& e, uint32_t seqid, const Stateid& open_stateid) {
  e.PutUint32(OP_CLOSE);
  e.PutUint32(seqid);
  EncodeStateid(e, open_stateid);
}
Status DecodeClose(XdrDecoder& d, Stateid* stateid) {
  return DecodeStateidResult(d, OP_CLOSE, stateid);
}

// RFC 8881 section 18.18.
void EncodeOpenDowngrade(XdrEncoder& e, const Stateid& open_stateid, uint32_t seqid,
                         uint32_t share_access, uint32_t share_deny) {
  e.PutUint32(OP_OPEN_DOWNGRADE);
  EncodeStateid(e, open_stateid);
  e.PutUint32(seqid);
  e.PutUint32(share_access);
  e.PutUint32(share_deny);
}
Status DecodeOpenDowngrade(XdrDecoder& d, Stateid* stateid) {
  return DecodeStateidResult(d, OP_OPEN_DOWNGRADE, stateid);
}

// RFC 8881 section 18.6.
void EncodeDelegReturn(XdrEncoder& e, const Stateid& deleg_stateid) {
  e.PutUint32(OP_DELEGRETURN);
  EncodeStateid(e, deleg_stateid);
}
Status DecodeDelegReturn(XdrDecoder& d) { return DecodeOpHeader(d, OP_DELEGRETURN); }

// RFC 8881 section 18.22.
void EncodeRead(XdrEncoder& e, const Stateid& stateid, uint64_t offset, uint32_t count) {
  e.PutUint32(OP_READ);
  EncodeStateid(e, stateid);
  e.PutUint64(offset);
  e.PutUint32(count);
}

Status DecodeRead(XdrDecoder& d, bool* eof, std::span<const uint8_t>* data) {
  Status s = DecodeOpHeader(d, OP_READ);
  if (!s.ok()) return s;
  const bool r_eof = d.GetBool();
  std::span<const uint8_t> r_data = d.GetOpaque();
  s = CheckDecoded(d, OP_READ);
  if (!s.ok()) return s;
  Assign(eof, r_eof);
  Assign(data, r_data);
  return s;
}

Status DecodeReadHeader(XdrDecoder& d, bool* eof, uint32_t* len) {
  Status s = DecodeOpHeader(d, OP_READ);
  if (!s.ok()) return s;
  const bool r_eof = d.GetBool();
  const uint32_t r_len = d.GetUint32();
  s = CheckDecoded(d, OP_READ);
  if (!s.ok()) return s;
  Assign(eof, r_eof);
  Assign(len, r_len);
  return s;
}

// RFC 8881 section 18.32.
void EncodeWrite(XdrEncoder& e, const Stateid& stateid, uint64_t offset, uint32_t stable,
                 std::span<const uint8_t> data) {
  e.PutUint32(OP_WRITE);
  EncodeStateid(e, stateid);
  e.PutUint64(offset);
  e.PutUint32(stable);
  e.PutOpaqueRef(data.data(), data.size());
}

Status DecodeWrite(XdrDecoder& d, WriteRes* res) {
  Status s = DecodeOpHeader(d, OP_WRITE);
  if (!s.ok()) return s;
  WriteRes r;
  r.count = d.GetUint32();
  r.committed = d.GetUint32();
  if (r.committed > FILE_SYNC4) d.Fail();
  DecodeVerifier(d, &r.verifier);
  s = CheckDecoded(d, OP_WRITE);
  if (s.ok()) Assign(res, r);
  return s;
}

// RFC 8881 section 18.3.
void EncodeCommit(XdrEncoder& e, uint64_t offset, uint32_t count) {
  e.PutUint32(OP_COMMIT);
  e.PutUint64(offset);
  e.PutUint32(count);
}

Status DecodeCommit(XdrDecoder& d, Verifier* verifier) {
  Status s = DecodeOpHeader(d, OP_COMMIT);
  if (!s.ok()) return s;
  Verifier r{};
  DecodeVerifier(d, &r);
  s = CheckDecoded(d, OP_COMMIT);
  if (s.ok()) Assign(verifier, r);
  return s;
}

// RFC 8881 section 18.4.
void EncodeCreate(XdrEncoder& e, std::string_view name, const CreateRequest& req,
                  const IdMapper& ids) {
  e.PutUint32(OP_CREATE);
  const uint32_t type = static_cast<uint32_t>(req.type);  // FileType == nfs_ftype4
  e.PutUint32(type);                                      // createtype4
  if (type == NF4LNK) {
    e.PutString(req.symlink_target);
  } else if (type == NF4BLK || type == NF4CHR) {  // specdata4
    e.PutUint32(req.rdev_major);
    e.PutUint32(req.rdev_minor);
  }
  e.PutString(name);
  EncodeFattr(e, req.attrs, ids);
}

Status DecodeCreate(XdrDecoder& d, ChangeInfo* cinfo, Bitmap* attrset) {
  Status s = DecodeOpHeader(d, OP_CREATE);
  if (!s.ok()) return s;
  ChangeInfo r_cinfo;
  Bitmap r_attrset;
  DecodeChangeInfo(d, &r_cinfo);
  DecodeBitmap(d, &r_attrset);
  s = CheckDecoded(d, OP_CREATE);
  if (!s.ok()) return s;
  Assign(cinfo, r_cinfo);
  Assign(attrset, std::move(r_attrset));
  return s;
}

// RFC 8881 section 18.25.
void EncodeRemove(XdrEncoder& e, std::string_view name) {
  e.PutUint32(OP_REMOVE);
  e.PutString(name);
}
Status DecodeRemove(XdrDecoder& d, ChangeInfo* cinfo) {
  return DecodeChangeInfoResult(d, OP_REMOVE, cinfo);
}

// RFC 8881 section 18.26.
void EncodeRename(XdrEncoder& e, std::string_view oldname, std::string_view newname) {
  e.PutUint32(OP_RENAME);
  e.PutString(oldname);
  e.PutString(newname);
}

Status DecodeRename(XdrDecoder& d, ChangeInfo* source, ChangeInfo* target) {
  Status s = DecodeOpHeader(d, OP_RENAME);
  if (!s.ok()) return s;
  ChangeInfo r_source;
  ChangeInfo r_target;
  DecodeChangeInfo(d, &r_source);
  DecodeChangeInfo(d, &r_target);
  s = CheckDecoded(d, OP_RENAME);
  if (!s.ok()) return s;
  Assign(source, r_source);
  Assign(target, r_target);
  return s;
}

// RFC 8881 section 18.9.
void EncodeLink(XdrEncoder& e, std::string_view newname) {
  e.PutUint32(OP_LINK);
  e.PutString(newname);
}
Status DecodeLink(XdrDecoder& d, ChangeInfo* cinfo) {
  return DecodeChangeInfoResult(d, OP_LINK, cinfo);
}

// RFC 8881 section 18.24.
void EncodeReadLink(XdrEncoder& e) { e.PutUint32(OP_READLINK); }

Status DecodeReadLink(XdrDecoder& d, std::string* target) {
  Status s = DecodeOpHeader(d, OP_READLINK);
  if (!s.ok()) return s;
  std::string r = d.GetString(kMaxLinkLen);
  s = CheckDecoded(d, OP_READLINK);
  if (s.ok()) Assign(target, std::move(r));
  return s;
}

// RFC 8881 section 18.23.
void EncodeReadDir(XdrEncoder& e, uint64_t cookie, const Verifier& cookieverf, uint32_t dircount,
                   uint32_t maxcount, const Bitmap& attr_request) {
  e.PutUint32(OP_READDIR);
  e.PutUint64(cookie);
  e.PutFixedOpaque(cookieverf.data(), cookieverf.size());
  e.PutUint32(dircount);
  e.PutUint32(maxcount);
  EncodeBitmap(e, attr_request);
}

Status DecodeReadDir(XdrDecoder& d, const IdMapper& ids, DirPage* page) {
  Status s = DecodeOpHeader(d, OP_READDIR);
  if (!s.ok()) return s;
  DirPage r;
  DecodeVerifier(d, &r.cookie_verifier);
  // dirlist4: entry4 *entries (a bool "value follows" before each), eof.
  while (d.ok() && d.GetBool()) {
    DirEntry& entry = r.entries.emplace_back();
    entry.cookie = d.GetUint64();
    entry.name = d.GetString(kMaxNameLen);
    DecodeFattr(d, ids, &entry.attr, nullptr, nullptr, &entry.fh);
  }
  r.eof = d.GetBool();
  s = CheckDecoded(d, OP_READDIR);
  if (s.ok()) Assign(page, std::move(r));
  return s;
}

// RFC 8881 section 18.10.
void EncodeLock(XdrEncoder& e, const LockArgs& args) {
  e.PutUint32(OP_LOCK);
  e.PutUint32(args.locktype);
  e.PutBool(args.reclaim);
  e.PutUint64(args.offset);
  e.PutUint64(args.length);
  e.PutBool(args.new_lock_owner);  // locker4
  if (args.new_lock_owner) {       // open_to_lock_owner4
    e.PutUint32(args.open_seqid);
    EncodeStateid(e, args.open_stateid);
    e.PutUint32(args.lock_seqid);
    EncodeStateOwner(e, args.lock_owner);
  } else {  // exist_lock_owner4
    EncodeStateid(e, args.lock_stateid);
    e.PutUint32(args.lock_seqid);
  }
}

Status DecodeLock(XdrDecoder& d, Stateid* lock_stateid, LockDenied* denied) {
  uint32_t st = NFS4_OK;
  Status s = DecodeOpStatus(d, OP_LOCK, &st);
  if (!s.ok()) return s;
  if (st == NFS4_OK) {
    Stateid r;
    DecodeStateid(d, &r);
    s = CheckDecoded(d, OP_LOCK);
    if (s.ok()) Assign(lock_stateid, r);
    return s;
  }
  if (st == NFS4ERR_DENIED) {
    LockDenied r;
    DecodeLockDenied(d, &r);
    s = CheckDecoded(d, OP_LOCK);
    if (!s.ok()) return s;
    Assign(denied, std::move(r));
  }
  return Status::Nfs(st, OpName(OP_LOCK));
}

// RFC 8881 section 18.11.
void EncodeLockT(XdrEncoder& e, uint32_t locktype, uint64_t offset, uint64_t length,
                 const StateOwner& owner) {
  e.PutUint32(OP_LOCKT);
  e.PutUint32(locktype);
  e.PutUint64(offset);
  e.PutUint64(length);
  EncodeStateOwner(e, owner);
}

Status DecodeLockT(XdrDecoder& d, LockDenied* denied) {
  uint32_t st = NFS4_OK;
  Status s = DecodeOpStatus(d, OP_LOCKT, &st);
  if (!s.ok() || st == NFS4_OK) return s;
  if (st == NFS4ERR_DENIED) {
    LockDenied r;
    DecodeLockDenied(d, &r);
    s = CheckDecoded(d, OP_LOCKT);
    if (!s.ok()) return s;
    Assign(denied, std::move(r));
  }
  return Status::Nfs(st, OpName(OP_LOCKT));
}

// RFC 8881 section 18.12.
void EncodeLockU(XdrEncoder& e, uint32_t locktype, uint32_t seqid, const Stateid& lock_stateid,
                 uint64_t offset, uint64_t length) {
  e.PutUint32(OP_LOCKU);
  e.PutUint32(locktype);
  e.PutUint32(seqid);
  EncodeStateid(e, lock_stateid);
  e.PutUint64(offset);
  e.PutUint64(length);
}
Status DecodeLockU(XdrDecoder& d, Stateid* lock_stateid) {
  return DecodeStateidResult(d, OP_LOCKU, lock_stateid);
}

}  // namespace floatmount::nfs::v4
