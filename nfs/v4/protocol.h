// NFSv4.1 protocol constants and the small XDR value types shared by the
// operation codecs (nfs/v4/ops.h) and the attribute codec (nfs/v4/attrs.h).
//
// Everything here comes from RFC 8881 (NFSv4.1) and its XDR, RFC 5662.
// Names follow the RFC so that a grep for "NFS4ERR_DELAY" or "OP_SEQUENCE"
// finds both the spec and the code:
//   - an XDR `enum` becomes a C++ enum with a fixed uint32_t base and the
//     RFC's enumerator names (unscoped, so values pass as uint32_t);
//   - an XDR `const` becomes an `inline constexpr uint32_t` of the same name.
// The only exception is the RPC auth flavors (RFC 5531), whose RFC names
// collide with macros of <rpc/auth.h>; they are kAuthNone etc.
//
// These types are XDR types: they never leave nfs/ (see DESIGN.md).
//
// Thread-safety: constants and plain value types; the functions are pure.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "nfs/nfsstat4.h"
#include "nfs/rpc/xdr.h"
#include "nfs/types.h"

namespace floatmount::nfs::v4 {

// RPC program and procedures (RFC 8881 section 16 and 20).
inline constexpr uint32_t NFS4_PROGRAM = 100003;
inline constexpr uint32_t NFS_V4 = 4;
inline constexpr uint32_t NFS4_MINOR_VERSION = 1;
inline constexpr uint32_t NFSPROC4_NULL = 0;
inline constexpr uint32_t NFSPROC4_COMPOUND = 1;
inline constexpr uint32_t NFS4_CALLBACK = 0x40000000;  // first transient program number
inline constexpr uint32_t NFS_CB = 1;                  // callback program version
inline constexpr uint32_t CB_NULL = 0;
inline constexpr uint32_t CB_COMPOUND = 1;

// RPC auth flavors (RFC 5531 section 8.2; RFC 2203 for RPCSEC_GSS).
inline constexpr uint32_t kAuthNone = 0;
inline constexpr uint32_t kAuthSys = 1;
inline constexpr uint32_t kRpcsecGss = 6;

// Sizes (RFC 5662 "Basic constants").
inline constexpr uint32_t NFS4_FHSIZE = 128;
inline constexpr uint32_t NFS4_VERIFIER_SIZE = 8;
inline constexpr uint32_t NFS4_OTHER_SIZE = 12;
inline constexpr uint32_t NFS4_SESSIONID_SIZE = 16;
inline constexpr uint32_t NFS4_OPAQUE_LIMIT = 1024;
inline constexpr uint32_t NFS4_UINT32_MAX = 0xffffffff;
inline constexpr uint64_t NFS4_UINT64_MAX = 0xffffffffffffffffULL;
inline constexpr uint64_t NFS4_INT64_MAX = 0x7fffffffffffffffULL;

// nfs_opnum4 (RFC 8881 section 16.2.1 / 18).
enum NfsOpnum4 : uint32_t {
  OP_ACCESS = 3,
  OP_CLOSE = 4,
  OP_COMMIT = 5,
  OP_CREATE = 6,
  OP_DELEGPURGE = 7,
  OP_DELEGRETURN = 8,
  OP_GETATTR = 9,
  OP_GETFH = 10,
  OP_LINK = 11,
  OP_LOCK = 12,
  OP_LOCKT = 13,
  OP_LOCKU = 14,
  OP_LOOKUP = 15,
  OP_LOOKUPP = 16,
  OP_NVERIFY = 17,
  OP_OPEN = 18,
  OP_OPENATTR = 19,
  OP_OPEN_CONFIRM = 20,  // MUST NOT be used in NFSv4.1
  OP_OPEN_DOWNGRADE = 21,
  OP_PUTFH = 22,
  OP_PUTPUBFH = 23,
  OP_PUTROOTFH = 24,
  OP_READ = 25,
  OP_READDIR = 26,
  OP_READLINK = 27,
  OP_REMOVE = 28,
  OP_RENAME = 29,
  OP_RENEW = 30,  // MUST NOT be used in NFSv4.1
  OP_RESTOREFH = 31,
  OP_SAVEFH = 32,
  OP_SECINFO = 33,
  OP_SETATTR = 34,
  OP_SETCLIENTID = 35,          // MUST NOT be used in NFSv4.1
  OP_SETCLIENTID_CONFIRM = 36,  // MUST NOT be used in NFSv4.1
  OP_VERIFY = 37,
  OP_WRITE = 38,
  OP_RELEASE_LOCKOWNER = 39,  // MUST NOT be used in NFSv4.1
  OP_BACKCHANNEL_CTL = 40,
  OP_BIND_CONN_TO_SESSION = 41,
  OP_EXCHANGE_ID = 42,
  OP_CREATE_SESSION = 43,
  OP_DESTROY_SESSION = 44,
  OP_FREE_STATEID = 45,
  OP_GET_DIR_DELEGATION = 46,
  OP_GETDEVICEINFO = 47,
  OP_GETDEVICELIST = 48,
  OP_LAYOUTCOMMIT = 49,
  OP_LAYOUTGET = 50,
  OP_LAYOUTRETURN = 51,
  OP_SECINFO_NO_NAME = 52,
  OP_SEQUENCE = 53,
  OP_SET_SSV = 54,
  OP_TEST_STATEID = 55,
  OP_WANT_DELEGATION = 56,
  OP_DESTROY_CLIENTID = 57,
  OP_RECLAIM_COMPLETE = 58,
  OP_ILLEGAL = 10044,
};

// nfs_ftype4 (RFC 8881 section 3.3.8). NF4REG..NF4FIFO equal FileType's values.
enum NfsFtype4 : uint32_t {
  NF4REG = 1,
  NF4DIR = 2,
  NF4BLK = 3,
  NF4CHR = 4,
  NF4LNK = 5,
  NF4SOCK = 6,
  NF4FIFO = 7,
  NF4ATTRDIR = 8,
  NF4NAMEDATTR = 9,
};

// fattr4 attribute numbers (RFC 8881 sections 5.6-5.8, 5.11-5.13).
inline constexpr uint32_t FATTR4_SUPPORTED_ATTRS = 0;
inline constexpr uint32_t FATTR4_TYPE = 1;
inline constexpr uint32_t FATTR4_FH_EXPIRE_TYPE = 2;
inline constexpr uint32_t FATTR4_CHANGE = 3;
inline constexpr uint32_t FATTR4_SIZE = 4;
inline constexpr uint32_t FATTR4_LINK_SUPPORT = 5;
inline constexpr uint32_t FATTR4_SYMLINK_SUPPORT = 6;
inline constexpr uint32_t FATTR4_NAMED_ATTR = 7;
inline constexpr uint32_t FATTR4_FSID = 8;
inline constexpr uint32_t FATTR4_UNIQUE_HANDLES = 9;
inline constexpr uint32_t FATTR4_LEASE_TIME = 10;
inline constexpr uint32_t FATTR4_RDATTR_ERROR = 11;
inline constexpr uint32_t FATTR4_ACL = 12;
inline constexpr uint32_t FATTR4_ACLSUPPORT = 13;
inline constexpr uint32_t FATTR4_ARCHIVE = 14;
inline constexpr uint32_t FATTR4_CANSETTIME = 15;
inline constexpr uint32_t FATTR4_CASE_INSENSITIVE = 16;
inline constexpr uint32_t FATTR4_CASE_PRESERVING = 17;
inline constexpr uint32_t FATTR4_CHOWN_RESTRICTED = 18;
inline constexpr uint32_t FATTR4_FILEHANDLE = 19;
inline constexpr uint32_t FATTR4_FILEID = 20;
inline constexpr uint32_t FATTR4_FILES_AVAIL = 21;
inline constexpr uint32_t FATTR4_FILES_FREE = 22;
inline constexpr uint32_t FATTR4_FILES_TOTAL = 23;
inline constexpr uint32_t FATTR4_FS_LOCATIONS = 24;
inline constexpr uint32_t FATTR4_HIDDEN = 25;
inline constexpr uint32_t FATTR4_HOMOGENEOUS = 26;
inline constexpr uint32_t FATTR4_MAXFILESIZE = 27;
inline constexpr uint32_t FATTR4_MAXLINK = 28;
inline constexpr uint32_t FATTR4_MAXNAME = 29;
inline constexpr uint32_t FATTR4_MAXREAD = 30;
inline constexpr uint32_t FATTR4_MAXWRITE = 31;
inline constexpr uint32_t FATTR4_MIMETYPE = 32;
inline constexpr uint32_t FATTR4_MODE = 33;
inline constexpr uint32_t FATTR4_NO_TRUNC = 34;
inline constexpr uint32_t FATTR4_NUMLINKS = 35;
inline constexpr uint32_t FATTR4_OWNER = 36;
inline constexpr uint32_t FATTR4_OWNER_GROUP = 37;
inline constexpr uint32_t FATTR4_QUOTA_AVAIL_HARD = 38;
inline constexpr uint32_t FATTR4_QUOTA_AVAIL_SOFT = 39;
inline constexpr uint32_t FATTR4_QUOTA_USED = 40;
inline constexpr uint32_t FATTR4_RAWDEV = 41;
inline constexpr uint32_t FATTR4_SPACE_AVAIL = 42;
inline constexpr uint32_t FATTR4_SPACE_FREE = 43;
inline constexpr uint32_t FATTR4_SPACE_TOTAL = 44;
inline constexpr uint32_t FATTR4_SPACE_USED = 45;
inline constexpr uint32_t FATTR4_SYSTEM = 46;
inline constexpr uint32_t FATTR4_TIME_ACCESS = 47;
inline constexpr uint32_t FATTR4_TIME_ACCESS_SET = 48;
inline constexpr uint32_t FATTR4_TIME_BACKUP = 49;
inline constexpr uint32_t FATTR4_TIME_CREATE = 50;
inline constexpr uint32_t FATTR4_TIME_DELTA = 51;
inline constexpr uint32_t FATTR4_TIME_METADATA = 52;
inline constexpr uint32_t FATTR4_TIME_MODIFY = 53;
inline constexpr uint32_t FATTR4_TIME_MODIFY_SET = 54;
inline constexpr uint32_t FATTR4_MOUNTED_ON_FILEID = 55;
inline constexpr uint32_t FATTR4_DIR_NOTIF_DELAY = 56;
inline constexpr uint32_t FATTR4_DIRENT_NOTIF_DELAY = 57;
inline constexpr uint32_t FATTR4_DACL = 58;
inline constexpr uint32_t FATTR4_SACL = 59;
inline constexpr uint32_t FATTR4_CHANGE_POLICY = 60;
inline constexpr uint32_t FATTR4_FS_STATUS = 61;
inline constexpr uint32_t FATTR4_FS_LAYOUT_TYPES = 62;
inline constexpr uint32_t FATTR4_LAYOUT_HINT = 63;
inline constexpr uint32_t FATTR4_LAYOUT_TYPES = 64;
inline constexpr uint32_t FATTR4_LAYOUT_BLKSIZE = 65;
inline constexpr uint32_t FATTR4_LAYOUT_ALIGNMENT = 66;
inline constexpr uint32_t FATTR4_FS_LOCATIONS_INFO = 67;
inline constexpr uint32_t FATTR4_MDSTHRESHOLD = 68;
inline constexpr uint32_t FATTR4_RETENTION_GET = 69;
inline constexpr uint32_t FATTR4_RETENTION_SET = 70;
inline constexpr uint32_t FATTR4_RETENTEVT_GET = 71;
inline constexpr uint32_t FATTR4_RETENTEVT_SET = 72;
inline constexpr uint32_t FATTR4_RETENTION_HOLD = 73;
inline constexpr uint32_t FATTR4_MODE_SET_MASKED = 74;
inline constexpr uint32_t FATTR4_SUPPATTR_EXCLCREAT = 75;
inline constexpr uint32_t FATTR4_FS_CHARSET_CAP = 76;

// fh_expire_type bits (RFC 8881 section 4.2.1).
inline constexpr uint32_t FH4_PERSISTENT = 0x00000000;
inline constexpr uint32_t FH4_NOEXPIRE_WITH_OPEN = 0x00000001;
inline constexpr uint32_t FH4_VOLATILE_ANY = 0x00000002;
inline constexpr uint32_t FH4_VOL_MIGRATION = 0x00000004;
inline constexpr uint32_t FH4_VOL_RENAME = 0x00000008;

// time_how4 of settime4 (RFC 8881 section 3.3.7).
enum TimeHow4 : uint32_t {
  SET_TO_SERVER_TIME4 = 0,
  SET_TO_CLIENT_TIME4 = 1,
};

// ACCESS bits (RFC 8881 section 18.1).
inline constexpr uint32_t ACCESS4_READ = 0x00000001;
inline constexpr uint32_t ACCESS4_LOOKUP = 0x00000002;
inline constexpr uint32_t ACCESS4_MODIFY = 0x00000004;
inline constexpr uint32_t ACCESS4_EXTEND = 0x00000008;
inline constexpr uint32_t ACCESS4_DELETE = 0x00000010;
inline constexpr uint32_t ACCESS4_EXECUTE = 0x00000020;

// OPEN share access, want flags and deny (RFC 8881 section 18.16).
inline constexpr uint32_t OPEN4_SHARE_ACCESS_READ = 0x00000001;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WRITE = 0x00000002;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_BOTH = 0x00000003;
inline constexpr uint32_t OPEN4_SHARE_DENY_NONE = 0x00000000;
inline constexpr uint32_t OPEN4_SHARE_DENY_READ = 0x00000001;
inline constexpr uint32_t OPEN4_SHARE_DENY_WRITE = 0x00000002;
inline constexpr uint32_t OPEN4_SHARE_DENY_BOTH = 0x00000003;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WANT_DELEG_MASK = 0xFF00;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WANT_NO_PREFERENCE = 0x0000;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WANT_READ_DELEG = 0x0100;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WANT_WRITE_DELEG = 0x0200;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WANT_ANY_DELEG = 0x0300;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WANT_NO_DELEG = 0x0400;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WANT_CANCEL = 0x0500;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WANT_SIGNAL_DELEG_WHEN_RESRC_AVAIL = 0x10000;
inline constexpr uint32_t OPEN4_SHARE_ACCESS_WANT_PUSH_DELEG_WHEN_UNCONTENDED = 0x20000;

// OPEN result flags (RFC 8881 section 18.16.3).
inline constexpr uint32_t OPEN4_RESULT_CONFIRM = 0x00000002;  // never set in 4.1
inline constexpr uint32_t OPEN4_RESULT_LOCKTYPE_POSIX = 0x00000004;
inline constexpr uint32_t OPEN4_RESULT_PRESERVE_UNLINKED = 0x00000008;
inline constexpr uint32_t OPEN4_RESULT_MAY_NOTIFY_LOCK = 0x00000020;

enum Opentype4 : uint32_t {
  OPEN4_NOCREATE = 0,
  OPEN4_CREATE = 1,
};

enum Createmode4 : uint32_t {
  UNCHECKED4 = 0,
  GUARDED4 = 1,
  EXCLUSIVE4 = 2,  // NFSv4.0 style; 4.1 clients use EXCLUSIVE4_1
  EXCLUSIVE4_1 = 3,
};

enum OpenClaimType4 : uint32_t {
  CLAIM_NULL = 0,
  CLAIM_PREVIOUS = 1,
  CLAIM_DELEGATE_CUR = 2,
  CLAIM_DELEGATE_PREV = 3,
  CLAIM_FH = 4,
  CLAIM_DELEG_CUR_FH = 5,
  CLAIM_DELEG_PREV_FH = 6,
};

enum OpenDelegationType4 : uint32_t {
  OPEN_DELEGATE_NONE = 0,
  OPEN_DELEGATE_READ = 1,
  OPEN_DELEGATE_WRITE = 2,
  OPEN_DELEGATE_NONE_EXT = 3,
};

enum WhyNoDelegation4 : uint32_t {
  WND4_NOT_WANTED = 0,
  WND4_CONTENTION = 1,
  WND4_RESOURCE = 2,
  WND4_NOT_SUPP_FTYPE = 3,
  WND4_WRITE_DELEG_NOT_SUPP_FTYPE = 4,
  WND4_NOT_SUPP_UPGRADE = 5,
  WND4_NOT_SUPP_DOWNGRADE = 6,
  WND4_CANCELLED = 7,
  WND4_IS_DIR = 8,
};

// limit_by4 of nfs_space_limit4 (write delegations).
enum LimitBy4 : uint32_t {
  NFS_LIMIT_SIZE = 1,
  NFS_LIMIT_BLOCKS = 2,
};

enum StableHow4 : uint32_t {
  UNSTABLE4 = 0,
  DATA_SYNC4 = 1,
  FILE_SYNC4 = 2,
};

// nfs_lock_type4 (RFC 8881 section 18.10).
enum NfsLockType4 : uint32_t {
  READ_LT = 1,
  WRITE_LT = 2,
  READW_LT = 3,
  WRITEW_LT = 4,
};

// EXCHANGE_ID flags (RFC 8881 section 18.35; SUPP_FENCE_OPS from RFC 7862).
inline constexpr uint32_t EXCHGID4_FLAG_SUPP_MOVED_REFER = 0x00000001;
inline constexpr uint32_t EXCHGID4_FLAG_SUPP_MOVED_MIGR = 0x00000002;
inline constexpr uint32_t EXCHGID4_FLAG_SUPP_FENCE_OPS = 0x00000004;
inline constexpr uint32_t EXCHGID4_FLAG_BIND_PRINC_STATEID = 0x00000100;
inline constexpr uint32_t EXCHGID4_FLAG_USE_NON_PNFS = 0x00010000;
inline constexpr uint32_t EXCHGID4_FLAG_USE_PNFS_MDS = 0x00020000;
inline constexpr uint32_t EXCHGID4_FLAG_USE_PNFS_DS = 0x00040000;
inline constexpr uint32_t EXCHGID4_FLAG_MASK_PNFS = 0x00070000;
inline constexpr uint32_t EXCHGID4_FLAG_UPD_CONFIRMED_REC_A = 0x40000000;
inline constexpr uint32_t EXCHGID4_FLAG_CONFIRMED_R = 0x80000000;

enum StateProtectHow4 : uint32_t {
  SP4_NONE = 0,
  SP4_MACH_CRED = 1,
  SP4_SSV = 2,
};

// CREATE_SESSION flags (RFC 8881 section 18.36).
inline constexpr uint32_t CREATE_SESSION4_FLAG_PERSIST = 0x00000001;
inline constexpr uint32_t CREATE_SESSION4_FLAG_CONN_BACK_CHAN = 0x00000002;
inline constexpr uint32_t CREATE_SESSION4_FLAG_CONN_RDMA = 0x00000004;

// BIND_CONN_TO_SESSION directions (RFC 8881 section 18.34).
enum ChannelDirFromClient4 : uint32_t {
  CDFC4_FORE = 0x1,
  CDFC4_BACK = 0x2,
  CDFC4_FORE_OR_BOTH = 0x3,
  CDFC4_BACK_OR_BOTH = 0x7,
};
enum ChannelDirFromServer4 : uint32_t {
  CDFS4_FORE = 0x1,
  CDFS4_BACK = 0x2,
  CDFS4_BOTH = 0x3,
};

// SEQUENCE sr_status_flags (RFC 8881 section 18.46.3).
inline constexpr uint32_t SEQ4_STATUS_CB_PATH_DOWN = 0x00000001;
inline constexpr uint32_t SEQ4_STATUS_CB_GSS_CONTEXTS_EXPIRING = 0x00000002;
inline constexpr uint32_t SEQ4_STATUS_CB_GSS_CONTEXTS_EXPIRED = 0x00000004;
inline constexpr uint32_t SEQ4_STATUS_EXPIRED_ALL_STATE_REVOKED = 0x00000008;
inline constexpr uint32_t SEQ4_STATUS_EXPIRED_SOME_STATE_REVOKED = 0x00000010;
inline constexpr uint32_t SEQ4_STATUS_ADMIN_STATE_REVOKED = 0x00000020;
inline constexpr uint32_t SEQ4_STATUS_RECALLABLE_STATE_REVOKED = 0x00000040;
inline constexpr uint32_t SEQ4_STATUS_LEASE_MOVED = 0x00000080;
inline constexpr uint32_t SEQ4_STATUS_RESTART_RECLAIM_NEEDED = 0x00000100;
inline constexpr uint32_t SEQ4_STATUS_CB_PATH_DOWN_SESSION = 0x00000200;
inline constexpr uint32_t SEQ4_STATUS_BACKCHANNEL_FAULT = 0x00000400;
inline constexpr uint32_t SEQ4_STATUS_DEVID_CHANGED = 0x00000800;
inline constexpr uint32_t SEQ4_STATUS_DEVID_DELETED = 0x00001000;

// SECINFO_NO_NAME (RFC 8881 section 18.45).
enum SecinfoStyle4 : uint32_t {
  SECINFO_STYLE4_CURRENT_FH = 0,
  SECINFO_STYLE4_PARENT = 1,
};
enum RpcGssSvc : uint32_t {
  RPC_GSS_SVC_NONE = 1,
  RPC_GSS_SVC_INTEGRITY = 2,
  RPC_GSS_SVC_PRIVACY = 3,
};

// "ACCESS", "SEQUENCE", ... or "OP_<n>" for an unknown number (a
// thread_local string, valid until the next unknown number on this thread).
const char* OpName(uint32_t op);

// ---------------------------------------------------------------------------
// Value types.

using SessionId = std::array<uint8_t, NFS4_SESSIONID_SIZE>;
using Verifier = std::array<uint8_t, NFS4_VERIFIER_SIZE>;

// stateid4 (RFC 8881 section 8.2).
struct Stateid {
  uint32_t seqid = 0;
  std::array<uint8_t, NFS4_OTHER_SIZE> other{};
  bool operator==(const Stateid&) const = default;
};

// Whether seqid `a` of a stateid comes after `b`: the server increments
// it with each change of the state and wraps past 2^32 - 1 (RFC 8881
// 8.2.2), so compare in serial-number arithmetic.
inline bool SeqidNewer(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

// Special stateids (RFC 8881 section 8.2.3).
inline constexpr Stateid kAnonymousStateid{};  // all zeros: I/O without an open
inline constexpr Stateid kReadBypassStateid{
    0xffffffff, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
inline constexpr Stateid kCurrentStateid{1, {}};           // the compound's current stateid
inline constexpr Stateid kInvalidStateid{0xffffffff, {}};  // never valid

// bitmap4 (RFC 8881 section 3.3.2): bit n is bit (n % 32) of word n / 32.
struct Bitmap {
  std::vector<uint32_t> words;

  Bitmap() = default;
  // A bitmap with the given bits set.
  Bitmap(std::initializer_list<uint32_t> bits) {
    for (uint32_t bit : bits) Set(bit);
  }
  void Set(uint32_t bit) {
    if (words.size() <= bit / 32) words.resize(bit / 32 + 1, 0);
    words[bit / 32] |= 1u << (bit % 32);
  }
  void Clear(uint32_t bit) {
    if (bit / 32 < words.size()) words[bit / 32] &= ~(1u << (bit % 32));
  }
  bool Test(uint32_t bit) const {
    return bit / 32 < words.size() && (words[bit / 32] & (1u << (bit % 32))) != 0;
  }
  bool empty() const {
    for (uint32_t w : words) {
      if (w != 0) return false;
    }
    return true;
  }
  // Equal when the same bits are set (trailing zero words do not count).
  bool operator==(const Bitmap& other) const;
};

// change_info4 (RFC 8881 section 3.3.9).
struct ChangeInfo {
  bool atomic = false;
  uint64_t before = 0;
  uint64_t after = 0;
  bool operator==(const ChangeInfo&) const = default;
};

// channel_attrs4 (RFC 8881 section 18.36).
struct ChannelAttrs {
  uint32_t headerpadsize = 0;
  uint32_t maxrequestsize = 0;
  uint32_t maxresponsesize = 0;
  uint32_t maxresponsesize_cached = 0;
  uint32_t maxoperations = 0;
  uint32_t maxrequests = 0;
  std::optional<uint32_t> rdma_ird;  // ca_rdma_ird<1>
  bool operator==(const ChannelAttrs&) const = default;
};

// state_owner4: open_owner4 and lock_owner4 (RFC 8881 section 3.3.10).
struct StateOwner {
  uint64_t clientid = 0;
  std::string owner;  // opaque bytes, at most NFS4_OPAQUE_LIMIT
  bool operator==(const StateOwner&) const = default;
};

// ---------------------------------------------------------------------------
// Codecs of the value types. Decoders use the sticky error of XdrDecoder:
// check d.ok() after a group of them. A bitmap longer than kMaxBitmapWords
// fails the decoder.
inline constexpr size_t kMaxBitmapWords = 8;

void EncodeStateid(XdrEncoder& e, const Stateid& stateid);
void DecodeStateid(XdrDecoder& d, Stateid* stateid);
// Writes the words up to the last non-zero one (no trailing zero words).
void EncodeBitmap(XdrEncoder& e, const Bitmap& bitmap);
void DecodeBitmap(XdrDecoder& d, Bitmap* bitmap);
void DecodeChangeInfo(XdrDecoder& d, ChangeInfo* cinfo);
// nfstime4 (RFC 8881 section 3.3.1). Decoding fails on nseconds >= 10^9.
void EncodeNfstime(XdrEncoder& e, const Timestamp& t);
void DecodeNfstime(XdrDecoder& d, Timestamp* t);
void EncodeChannelAttrs(XdrEncoder& e, const ChannelAttrs& attrs);
void DecodeChannelAttrs(XdrDecoder& d, ChannelAttrs* attrs);
void EncodeStateOwner(XdrEncoder& e, const StateOwner& owner);
void DecodeStateOwner(XdrDecoder& d, StateOwner* owner);

}  // namespace floatmount::nfs::v4
