#include "nfs/v4/protocol.h"

#include <algorithm>
#include <cstdio>
#include <span>

#include "nfs/status.h"

namespace floatmount::nfs::v4 {
namespace {

// The name of a number that has none, in the caller's thread_local buffer:
// valid until the next such call for the same kind of name on this thread,
// which is enough for building a message.
const char* Unnamed(char (&buf)[32], const char* prefix, uint32_t n) {
  std::snprintf(buf, sizeof(buf), "%s%u", prefix, n);
  return buf;
}

struct Named {
  uint32_t value;
  const char* name;
};

const char* Lookup(std::span<const Named> table, uint32_t value) {
  for (const Named& n : table) {
    if (n.value == value) return n.name;
  }
  return nullptr;
}

// RFC 8881 section 15.1.
constexpr Named kStatusNames[] = {
    {NFS4_OK, "NFS4_OK"},
    {NFS4ERR_PERM, "NFS4ERR_PERM"},
    {NFS4ERR_NOENT, "NFS4ERR_NOENT"},
    {NFS4ERR_IO, "NFS4ERR_IO"},
    {NFS4ERR_NXIO, "NFS4ERR_NXIO"},
    {NFS4ERR_ACCESS, "NFS4ERR_ACCESS"},
    {NFS4ERR_EXIST, "NFS4ERR_EXIST"},
    {NFS4ERR_XDEV, "NFS4ERR_XDEV"},
    {NFS4ERR_NOTDIR, "NFS4ERR_NOTDIR"},
    {NFS4ERR_ISDIR, "NFS4ERR_ISDIR"},
    {NFS4ERR_INVAL, "NFS4ERR_INVAL"},
    {NFS4ERR_FBIG, "NFS4ERR_FBIG"},
    {NFS4ERR_NOSPC, "NFS4ERR_NOSPC"},
    {NFS4ERR_ROFS, "NFS4ERR_ROFS"},
    {NFS4ERR_MLINK, "NFS4ERR_MLINK"},
    {NFS4ERR_NAMETOOLONG, "NFS4ERR_NAMETOOLONG"},
    {NFS4ERR_NOTEMPTY, "NFS4ERR_NOTEMPTY"},
    {NFS4ERR_DQUOT, "NFS4ERR_DQUOT"},
    {NFS4ERR_STALE, "NFS4ERR_STALE"},
    {NFS4ERR_BADHANDLE, "NFS4ERR_BADHANDLE"},
    {NFS4ERR_BAD_COOKIE, "NFS4ERR_BAD_COOKIE"},
    {NFS4ERR_NOTSUPP, "NFS4ERR_NOTSUPP"},
    {NFS4ERR_TOOSMALL, "NFS4ERR_TOOSMALL"},
    {NFS4ERR_SERVERFAULT, "NFS4ERR_SERVERFAULT"},
    {NFS4ERR_BADTYPE, "NFS4ERR_BADTYPE"},
    {NFS4ERR_DELAY, "NFS4ERR_DELAY"},
    {NFS4ERR_SAME, "NFS4ERR_SAME"},
    {NFS4ERR_DENIED, "NFS4ERR_DENIED"},
    {NFS4ERR_EXPIRED, "NFS4ERR_EXPIRED"},
    {NFS4ERR_LOCKED, "NFS4ERR_LOCKED"},
    {NFS4ERR_GRACE, "NFS4ERR_GRACE"},
    {NFS4ERR_FHEXPIRED, "NFS4ERR_FHEXPIRED"},
    {NFS4ERR_SHARE_DENIED, "NFS4ERR_SHARE_DENIED"},
    {NFS4ERR_WRONGSEC, "NFS4ERR_WRONGSEC"},
    {NFS4ERR_CLID_INUSE, "NFS4ERR_CLID_INUSE"},
    {NFS4ERR_RESOURCE, "NFS4ERR_RESOURCE"},
    {NFS4ERR_MOVED, "NFS4ERR_MOVED"},
    {NFS4ERR_NOFILEHANDLE, "NFS4ERR_NOFILEHANDLE"},
    {NFS4ERR_MINOR_VERS_MISMATCH, "NFS4ERR_MINOR_VERS_MISMATCH"},
    {NFS4ERR_STALE_CLIENTID, "NFS4ERR_STALE_CLIENTID"},
    {NFS4ERR_STALE_STATEID, "NFS4ERR_STALE_STATEID"},
    {NFS4ERR_OLD_STATEID, "NFS4ERR_OLD_STATEID"},
    {NFS4ERR_BAD_STATEID, "NFS4ERR_BAD_STATEID"},
    {NFS4ERR_BAD_SEQID, "NFS4ERR_BAD_SEQID"},
    {NFS4ERR_NOT_SAME, "NFS4ERR_NOT_SAME"},
    {NFS4ERR_LOCK_RANGE, "NFS4ERR_LOCK_RANGE"},
    {NFS4ERR_SYMLINK, "NFS4ERR_SYMLINK"},
    {NFS4ERR_RESTOREFH, "NFS4ERR_RESTOREFH"},
    {NFS4ERR_LEASE_MOVED, "NFS4ERR_LEASE_MOVED"},
    {NFS4ERR_ATTRNOTSUPP, "NFS4ERR_ATTRNOTSUPP"},
    {NFS4ERR_NO_GRACE, "NFS4ERR_NO_GRACE"},
    {NFS4ERR_RECLAIM_BAD, "NFS4ERR_RECLAIM_BAD"},
    {NFS4ERR_RECLAIM_CONFLICT, "NFS4ERR_RECLAIM_CONFLICT"},
    {NFS4ERR_BADXDR, "NFS4ERR_BADXDR"},
    {NFS4ERR_LOCKS_HELD, "NFS4ERR_LOCKS_HELD"},
    {NFS4ERR_OPENMODE, "NFS4ERR_OPENMODE"},
    {NFS4ERR_BADOWNER, "NFS4ERR_BADOWNER"},
    {NFS4ERR_BADCHAR, "NFS4ERR_BADCHAR"},
    {NFS4ERR_BADNAME, "NFS4ERR_BADNAME"},
    {NFS4ERR_BAD_RANGE, "NFS4ERR_BAD_RANGE"},
    {NFS4ERR_LOCK_NOTSUPP, "NFS4ERR_LOCK_NOTSUPP"},
    {NFS4ERR_OP_ILLEGAL, "NFS4ERR_OP_ILLEGAL"},
    {NFS4ERR_DEADLOCK, "NFS4ERR_DEADLOCK"},
    {NFS4ERR_FILE_OPEN, "NFS4ERR_FILE_OPEN"},
    {NFS4ERR_ADMIN_REVOKED, "NFS4ERR_ADMIN_REVOKED"},
    {NFS4ERR_CB_PATH_DOWN, "NFS4ERR_CB_PATH_DOWN"},
    {NFS4ERR_BADIOMODE, "NFS4ERR_BADIOMODE"},
    {NFS4ERR_BADLAYOUT, "NFS4ERR_BADLAYOUT"},
    {NFS4ERR_BAD_SESSION_DIGEST, "NFS4ERR_BAD_SESSION_DIGEST"},
    {NFS4ERR_BADSESSION, "NFS4ERR_BADSESSION"},
    {NFS4ERR_BADSLOT, "NFS4ERR_BADSLOT"},
    {NFS4ERR_COMPLETE_ALREADY, "NFS4ERR_COMPLETE_ALREADY"},
    {NFS4ERR_CONN_NOT_BOUND_TO_SESSION, "NFS4ERR_CONN_NOT_BOUND_TO_SESSION"},
    {NFS4ERR_DELEG_ALREADY_WANTED, "NFS4ERR_DELEG_ALREADY_WANTED"},
    {NFS4ERR_BACK_CHAN_BUSY, "NFS4ERR_BACK_CHAN_BUSY"},
    {NFS4ERR_LAYOUTTRYLATER, "NFS4ERR_LAYOUTTRYLATER"},
    {NFS4ERR_LAYOUTUNAVAILABLE, "NFS4ERR_LAYOUTUNAVAILABLE"},
    {NFS4ERR_NOMATCHING_LAYOUT, "NFS4ERR_NOMATCHING_LAYOUT"},
    {NFS4ERR_RECALLCONFLICT, "NFS4ERR_RECALLCONFLICT"},
    {NFS4ERR_UNKNOWN_LAYOUTTYPE, "NFS4ERR_UNKNOWN_LAYOUTTYPE"},
    {NFS4ERR_SEQ_MISORDERED, "NFS4ERR_SEQ_MISORDERED"},
    {NFS4ERR_SEQUENCE_POS, "NFS4ERR_SEQUENCE_POS"},
    {NFS4ERR_REQ_TOO_BIG, "NFS4ERR_REQ_TOO_BIG"},
    {NFS4ERR_REP_TOO_BIG, "NFS4ERR_REP_TOO_BIG"},
    {NFS4ERR_REP_TOO_BIG_TO_CACHE, "NFS4ERR_REP_TOO_BIG_TO_CACHE"},
    {NFS4ERR_RETRY_UNCACHED_REP, "NFS4ERR_RETRY_UNCACHED_REP"},
    {NFS4ERR_UNSAFE_COMPOUND, "NFS4ERR_UNSAFE_COMPOUND"},
    {NFS4ERR_TOO_MANY_OPS, "NFS4ERR_TOO_MANY_OPS"},
    {NFS4ERR_OP_NOT_IN_SESSION, "NFS4ERR_OP_NOT_IN_SESSION"},
    {NFS4ERR_HASH_ALG_UNSUPP, "NFS4ERR_HASH_ALG_UNSUPP"},
    {NFS4ERR_CLIENTID_BUSY, "NFS4ERR_CLIENTID_BUSY"},
    {NFS4ERR_PNFS_IO_HOLE, "NFS4ERR_PNFS_IO_HOLE"},
    {NFS4ERR_SEQ_FALSE_RETRY, "NFS4ERR_SEQ_FALSE_RETRY"},
    {NFS4ERR_BAD_HIGH_SLOT, "NFS4ERR_BAD_HIGH_SLOT"},
    {NFS4ERR_DEADSESSION, "NFS4ERR_DEADSESSION"},
    {NFS4ERR_ENCR_ALG_UNSUPP, "NFS4ERR_ENCR_ALG_UNSUPP"},
    {NFS4ERR_PNFS_NO_LAYOUT, "NFS4ERR_PNFS_NO_LAYOUT"},
    {NFS4ERR_NOT_ONLY_OP, "NFS4ERR_NOT_ONLY_OP"},
    {NFS4ERR_WRONG_CRED, "NFS4ERR_WRONG_CRED"},
    {NFS4ERR_WRONG_TYPE, "NFS4ERR_WRONG_TYPE"},
    {NFS4ERR_DIRDELEG_UNAVAIL, "NFS4ERR_DIRDELEG_UNAVAIL"},
    {NFS4ERR_REJECT_DELEG, "NFS4ERR_REJECT_DELEG"},
    {NFS4ERR_RETURNCONFLICT, "NFS4ERR_RETURNCONFLICT"},
    {NFS4ERR_DELEG_REVOKED, "NFS4ERR_DELEG_REVOKED"},
};

// RFC 8881 section 16.2.1.
constexpr Named kOpNames[] = {
    {OP_ACCESS, "ACCESS"},
    {OP_CLOSE, "CLOSE"},
    {OP_COMMIT, "COMMIT"},
    {OP_CREATE, "CREATE"},
    {OP_DELEGPURGE, "DELEGPURGE"},
    {OP_DELEGRETURN, "DELEGRETURN"},
    {OP_GETATTR, "GETATTR"},
    {OP_GETFH, "GETFH"},
    {OP_LINK, "LINK"},
    {OP_LOCK, "LOCK"},
    {OP_LOCKT, "LOCKT"},
    {OP_LOCKU, "LOCKU"},
    {OP_LOOKUP, "LOOKUP"},
    {OP_LOOKUPP, "LOOKUPP"},
    {OP_NVERIFY, "NVERIFY"},
    {OP_OPEN, "OPEN"},
    {OP_OPENATTR, "OPENATTR"},
    {OP_OPEN_CONFIRM, "OPEN_CONFIRM"},
    {OP_OPEN_DOWNGRADE, "OPEN_DOWNGRADE"},
    {OP_PUTFH, "PUTFH"},
    {OP_PUTPUBFH, "PUTPUBFH"},
    {OP_PUTROOTFH, "PUTROOTFH"},
    {OP_READ, "READ"},
    {OP_READDIR, "READDIR"},
    {OP_READLINK, "READLINK"},
    {OP_REMOVE, "REMOVE"},
    {OP_RENAME, "RENAME"},
    {OP_RENEW, "RENEW"},
    {OP_RESTOREFH, "RESTOREFH"},
    {OP_SAVEFH, "SAVEFH"},
    {OP_SECINFO, "SECINFO"},
    {OP_SETATTR, "SETATTR"},
    {OP_SETCLIENTID, "SETCLIENTID"},
    {OP_SETCLIENTID_CONFIRM, "SETCLIENTID_CONFIRM"},
    {OP_VERIFY, "VERIFY"},
    {OP_WRITE, "WRITE"},
    {OP_RELEASE_LOCKOWNER, "RELEASE_LOCKOWNER"},
    {OP_BACKCHANNEL_CTL, "BACKCHANNEL_CTL"},
    {OP_BIND_CONN_TO_SESSION, "BIND_CONN_TO_SESSION"},
    {OP_EXCHANGE_ID, "EXCHANGE_ID"},
    {OP_CREATE_SESSION, "CREATE_SESSION"},
    {OP_DESTROY_SESSION, "DESTROY_SESSION"},
    {OP_FREE_STATEID, "FREE_STATEID"},
    {OP_GET_DIR_DELEGATION, "GET_DIR_DELEGATION"},
    {OP_GETDEVICEINFO, "GETDEVICEINFO"},
    {OP_GETDEVICELIST, "GETDEVICELIST"},
    {OP_LAYOUTCOMMIT, "LAYOUTCOMMIT"},
    {OP_LAYOUTGET, "LAYOUTGET"},
    {OP_LAYOUTRETURN, "LAYOUTRETURN"},
    {OP_SECINFO_NO_NAME, "SECINFO_NO_NAME"},
    {OP_SEQUENCE, "SEQUENCE"},
    {OP_SET_SSV, "SET_SSV"},
    {OP_TEST_STATEID, "TEST_STATEID"},
    {OP_WANT_DELEGATION, "WANT_DELEGATION"},
    {OP_DESTROY_CLIENTID, "DESTROY_CLIENTID"},
    {OP_RECLAIM_COMPLETE, "RECLAIM_COMPLETE"},
    {OP_ILLEGAL, "ILLEGAL"},
};

}  // namespace

const char* OpName(uint32_t op) {
  thread_local char buf[32];
  const char* name = Lookup(kOpNames, op);
  return name != nullptr ? name : Unnamed(buf, "OP_", op);
}

bool Bitmap::operator==(const Bitmap& other) const {
  const size_t n = std::max(words.size(), other.words.size());
  for (size_t i = 0; i < n; ++i) {
    const uint32_t a = i < words.size() ? words[i] : 0;
    const uint32_t b = i < other.words.size() ? other.words[i] : 0;
    if (a != b) return false;
  }
  return true;
}

void EncodeStateid(XdrEncoder& e, const Stateid& stateid) {
  e.PutUint32(stateid.seqid);
  e.PutFixedOpaque(stateid.other.data(), stateid.other.size());
}

void DecodeStateid(XdrDecoder& d, Stateid* stateid) {
  stateid->seqid = d.GetUint32();
  std::span<const uint8_t> other = d.GetFixedOpaque(NFS4_OTHER_SIZE);
  if (d.ok()) std::copy(other.begin(), other.end(), stateid->other.begin());
}

void EncodeBitmap(XdrEncoder& e, const Bitmap& bitmap) {
  size_t n = bitmap.words.size();
  while (n > 0 && bitmap.words[n - 1] == 0) --n;
  e.PutUint32(static_cast<uint32_t>(n));
  for (size_t i = 0; i < n; ++i) e.PutUint32(bitmap.words[i]);
}

void DecodeBitmap(XdrDecoder& d, Bitmap* bitmap) {
  const uint32_t n = d.GetUint32();
  bitmap->words.clear();
  if (n > kMaxBitmapWords) {
    d.Fail();
    return;
  }
  for (uint32_t i = 0; i < n && d.ok(); ++i) bitmap->words.push_back(d.GetUint32());
}

void DecodeChangeInfo(XdrDecoder& d, ChangeInfo* cinfo) {
  cinfo->atomic = d.GetBool();
  cinfo->before = d.GetUint64();
  cinfo->after = d.GetUint64();
}

void EncodeNfstime(XdrEncoder& e, const Timestamp& t) {
  e.PutInt64(t.seconds);
  e.PutUint32(t.nanoseconds);
}

void DecodeNfstime(XdrDecoder& d, Timestamp* t) {
  t->seconds = d.GetInt64();
  t->nanoseconds = d.GetUint32();
  if (t->nanoseconds >= 1000000000u) d.Fail();
}

void EncodeChannelAttrs(XdrEncoder& e, const ChannelAttrs& attrs) {
  e.PutUint32(attrs.headerpadsize);
  e.PutUint32(attrs.maxrequestsize);
  e.PutUint32(attrs.maxresponsesize);
  e.PutUint32(attrs.maxresponsesize_cached);
  e.PutUint32(attrs.maxoperations);
  e.PutUint32(attrs.maxrequests);
  e.PutUint32(attrs.rdma_ird ? 1 : 0);
  if (attrs.rdma_ird) e.PutUint32(*attrs.rdma_ird);
}

void DecodeChannelAttrs(XdrDecoder& d, ChannelAttrs* attrs) {
  attrs->headerpadsize = d.GetUint32();
  attrs->maxrequestsize = d.GetUint32();
  attrs->maxresponsesize = d.GetUint32();
  attrs->maxresponsesize_cached = d.GetUint32();
  attrs->maxoperations = d.GetUint32();
  attrs->maxrequests = d.GetUint32();
  const uint32_t n = d.GetUint32();
  attrs->rdma_ird.reset();
  if (n > 1) {
    d.Fail();
  } else if (n == 1) {
    attrs->rdma_ird = d.GetUint32();
  }
}

void EncodeStateOwner(XdrEncoder& e, const StateOwner& owner) {
  e.PutUint64(owner.clientid);
  e.PutString(owner.owner);
}

void DecodeStateOwner(XdrDecoder& d, StateOwner* owner) {
  owner->clientid = d.GetUint64();
  owner->owner = d.GetString(NFS4_OPAQUE_LIMIT);
}

}  // namespace floatmount::nfs::v4

namespace floatmount::nfs {

const char* NfsStatusName(uint32_t nfsstat) {
  thread_local char buf[32];
  const char* name = v4::Lookup(v4::kStatusNames, nfsstat);
  return name != nullptr ? name : v4::Unnamed(buf, "NFS4ERR_", nfsstat);
}

}  // namespace floatmount::nfs
