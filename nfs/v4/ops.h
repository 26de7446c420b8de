// NFSv4.1 COMPOUND framing and per-operation codecs (RFC 8881 sections 16
// and 18; XDR from RFC 5662).
//
// A compound is built by writing the header, then each operation with its
// EncodeXxx, then patching the operation count:
//
//   size_t numops_at = EncodeCompoundHeader(e, "", 1);
//   EncodeSequence(e, seq);             // SEQUENCE, PUTFH, READ
//   EncodePutFh(e, fh);
//   EncodeRead(e, stateid, offset, count);
//   e.PatchUint32(numops_at, 3);
//
// and its reply is read in the same order: DecodeCompoundHeader, then one
// DecodeXxx per operation until one returns a non-OK Status (the server
// stops at the first failing operation, RFC 8881 section 16.2.3).
//
// Conventions:
//   - EncodeXxx(e, args...) writes the nfs_opnum4 and the arguments. Callers
//     pass valid RFC values; an encoder does not check them (the server
//     answers NFS4ERR_BADXDR/INVAL).
//   - DecodeXxx(d, outs...) reads the result's opcode (a different one is
//     Status::Protocol, except OP_ILLEGAL, which gives the server's status),
//     the nfsstat4 and the body. On a non-OK nfsstat4 it consumes what that
//     arm carries (SETATTR's attrsset, LOCK/LOCKT's LOCK4denied, returned
//     through the out param) and returns Status::Nfs(code, OpName(op)). A
//     malformed or truncated reply returns Status::Protocol. Out params may
//     be null when the caller does not need the value; they are written only
//     on success (and the error arms above).
//   - Views (READ data) point into the decoder's buffer; everything else is
//     copied out.
//   - Decoders are strict: opaque lengths are bounded (file handles 128,
//     names, owners, scopes and strings 1024, symlink targets 4096), array
//     counts by the bytes left, and unknown union arms fail.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "nfs/v4/id_mapper.h"
#include "nfs/v4/attrs.h"
#include "nfs/v4/protocol.h"
#include "nfs/status.h"
#include "nfs/types.h"
#include "nfs/rpc/xdr.h"

namespace floatmount::nfs::v4 {

// component4 in READDIR replies. Not NAME_MAX (255): servers may allow
// longer names (ganesha advertises maxname 1024), and one such entry must
// not make a whole directory unreadable; callers skip names they cannot use.
inline constexpr size_t kMaxNameLen = NFS4_OPAQUE_LIMIT;
inline constexpr size_t kMaxLinkLen = 4096;     // linktext4 (PATH_MAX)
inline constexpr size_t kMaxTagLen = 1024;      // COMPOUND tag
inline constexpr size_t kMaxAuthSysGids = 16;   // RFC 5531 authsys_parms
inline constexpr size_t kMaxMachineName = 255;  // RFC 5531 authsys_parms

// ---------------------------------------------------------------------------
// COMPOUND (RFC 8881 section 16.2).

// Writes tag, minorversion and a placeholder for the operation count;
// returns the placeholder's offset for XdrEncoder::PatchUint32.
size_t EncodeCompoundHeader(XdrEncoder& e, std::string_view tag, uint32_t minorversion);
// Reads status, tag and the number of results.
Status DecodeCompoundHeader(XdrDecoder& d, uint32_t* status, uint32_t* num_results);

// Reads one result's opcode and nfsstat4 into *nfsstat. Protocol error if
// the opcode is neither `op` nor OP_ILLEGAL; OP_ILLEGAL gives Nfs(status).
Status DecodeOpStatus(XdrDecoder& d, uint32_t op, uint32_t* nfsstat);
// The same, and a non-OK nfsstat4 becomes Status::Nfs(code, OpName(op)).
// This is the whole decoder of a result that carries nothing but a status.
Status DecodeOpHeader(XdrDecoder& d, uint32_t op);
// Status::Protocol("malformed <OP> reply") unless d.ok(), else OK.
Status CheckDecoded(const XdrDecoder& d, uint32_t op);

// ---------------------------------------------------------------------------
// Client ID and session (RFC 8881 sections 18.34-18.37, 18.46, 18.50, 18.51).

// nfs_impl_id4.
struct ImplId {
  std::string domain;
  std::string name;
  Timestamp date;
  bool operator==(const ImplId&) const = default;
};

// EXCHANGE_ID (18.35); always SP4_NONE state protection.
struct ExchangeIdArgs {
  Verifier verifier{};   // co_verifier: changes when the client reboots
  std::string owner_id;  // co_ownerid bytes, at most 1024
  uint32_t flags = 0;    // EXCHGID4_FLAG_*
  std::optional<ImplId> impl_id;
};
struct ExchangeIdRes {
  uint64_t clientid = 0;
  uint32_t sequenceid = 0;
  uint32_t flags = 0;
  uint32_t state_protect = SP4_NONE;  // SP4_NONE or SP4_MACH_CRED
  Bitmap must_enforce;                // SP4_MACH_CRED only
  Bitmap must_allow;                  // SP4_MACH_CRED only
  uint64_t server_owner_minor = 0;
  std::string server_owner_major;  // so_major_id bytes
  std::string server_scope;        // bytes
  std::optional<ImplId> server_impl_id;
};
void EncodeExchangeId(XdrEncoder& e, const ExchangeIdArgs& args);
// SP4_SSV in the reply is a Protocol error (never asked for).
Status DecodeExchangeId(XdrDecoder& d, ExchangeIdRes* res);

// callback_sec_parms4: AUTH_NONE or AUTH_SYS (authsys_parms, RFC 5531).
struct CallbackSecParms {
  uint32_t flavor = kAuthNone;
  uint32_t stamp = 0;
  std::string machinename;  // at most 255
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> gids;  // at most 16 are sent
};

// CREATE_SESSION (18.36).
struct CreateSessionArgs {
  uint64_t clientid = 0;
  uint32_t sequence = 0;  // eir_sequenceid from EXCHANGE_ID
  uint32_t flags = 0;     // CREATE_SESSION4_FLAG_*
  ChannelAttrs fore;
  ChannelAttrs back;
  uint32_t cb_program = NFS4_CALLBACK;
  std::vector<CallbackSecParms> sec_parms;
};
struct CreateSessionRes {
  SessionId sessionid{};
  uint32_t sequence = 0;
  uint32_t flags = 0;
  ChannelAttrs fore;
  ChannelAttrs back;
};
void EncodeCreateSession(XdrEncoder& e, const CreateSessionArgs& args);
Status DecodeCreateSession(XdrDecoder& d, CreateSessionRes* res);

// SEQUENCE (18.46).
struct SequenceArgs {
  SessionId sessionid{};
  uint32_t sequenceid = 0;
  uint32_t slotid = 0;
  uint32_t highest_slotid = 0;
  bool cachethis = false;
};
struct SequenceRes {
  SessionId sessionid{};
  uint32_t sequenceid = 0;
  uint32_t slotid = 0;
  uint32_t highest_slotid = 0;
  uint32_t target_highest_slotid = 0;
  uint32_t status_flags = 0;  // SEQ4_STATUS_*
};
void EncodeSequence(XdrEncoder& e, const SequenceArgs& args);
Status DecodeSequence(XdrDecoder& d, SequenceRes* res);

// BIND_CONN_TO_SESSION (18.34).
struct BindConnToSessionRes {
  SessionId sessionid{};
  uint32_t dir = CDFS4_FORE;  // ChannelDirFromServer4
  bool use_rdma = false;
};
void EncodeBindConnToSession(XdrEncoder& e, const SessionId& sessionid, uint32_t dir,
                             bool use_rdma);
Status DecodeBindConnToSession(XdrDecoder& d, BindConnToSessionRes* res);

// DESTROY_SESSION (18.37), DESTROY_CLIENTID (18.50), RECLAIM_COMPLETE (18.51).
void EncodeDestroySession(XdrEncoder& e, const SessionId& sessionid);
Status DecodeDestroySession(XdrDecoder& d);
void EncodeDestroyClientId(XdrEncoder& e, uint64_t clientid);
Status DecodeDestroyClientId(XdrDecoder& d);
void EncodeReclaimComplete(XdrEncoder& e, bool one_fs);
Status DecodeReclaimComplete(XdrDecoder& d);

// TEST_STATEID (18.48): one nfsstat4 per stateid. FREE_STATEID (18.38).
void EncodeTestStateid(XdrEncoder& e, std::span<const Stateid> stateids);
Status DecodeTestStateid(XdrDecoder& d, std::vector<uint32_t>* codes);
void EncodeFreeStateid(XdrEncoder& e, const Stateid& stateid);
Status DecodeFreeStateid(XdrDecoder& d);

// SECINFO_NO_NAME (18.45): the flavors the server accepts, in its order.
struct SecInfo {
  uint32_t flavor = kAuthNone;
  std::string oid;  // RPCSEC_GSS only: mechanism OID bytes
  uint32_t qop = 0;
  uint32_t service = 0;  // RpcGssSvc
};
void EncodeSecinfoNoName(XdrEncoder& e, uint32_t style);
Status DecodeSecinfoNoName(XdrDecoder& d, std::vector<SecInfo>* flavors);

// ---------------------------------------------------------------------------
// File handles and lookups.

void EncodePutRootFh(XdrEncoder& e);
Status DecodePutRootFh(XdrDecoder& d);
void EncodePutFh(XdrEncoder& e, const FileHandle& fh);
Status DecodePutFh(XdrDecoder& d);
void EncodeGetFh(XdrEncoder& e);
Status DecodeGetFh(XdrDecoder& d, FileHandle* fh);
void EncodeLookup(XdrEncoder& e, std::string_view name);
Status DecodeLookup(XdrDecoder& d);
void EncodeLookupp(XdrEncoder& e);
Status DecodeLookupp(XdrDecoder& d);
void EncodeSaveFh(XdrEncoder& e);
Status DecodeSaveFh(XdrDecoder& d);
void EncodeRestoreFh(XdrEncoder& e);
Status DecodeRestoreFh(XdrDecoder& d);

// ---------------------------------------------------------------------------
// Attributes and access.

// GETATTR (18.7): decoded with DecodeFattr into the non-null outputs.
void EncodeGetAttr(XdrEncoder& e, const Bitmap& attr_request);
Status DecodeGetAttr(XdrDecoder& d, const IdMapper& ids, Attributes* attrs,
                     FsStats* stats = nullptr, ServerLimits* limits = nullptr,
                     FileHandle* fh = nullptr);

// SETATTR (18.30): attrsset is returned on success and on failure.
void EncodeSetAttr(XdrEncoder& e, const Stateid& stateid, const SetAttributes& attrs,
                   const IdMapper& ids);
Status DecodeSetAttr(XdrDecoder& d, Bitmap* attrsset);

// ACCESS (18.1).
struct AccessRes {
  uint32_t supported = 0;
  uint32_t access = 0;
};
void EncodeAccess(XdrEncoder& e, uint32_t mask);
Status DecodeAccess(XdrDecoder& d, AccessRes* res);

// ---------------------------------------------------------------------------
// Open state (RFC 8881 sections 18.16, 18.2, 18.18, 18.6).

struct OpenArgs {
  uint32_t seqid = 0;                               // ignored by NFSv4.1 servers (18.16.3)
  uint32_t share_access = OPEN4_SHARE_ACCESS_READ;  // with OPEN4_SHARE_ACCESS_WANT_*
  uint32_t share_deny = OPEN4_SHARE_DENY_NONE;
  StateOwner owner;
  uint32_t opentype = OPEN4_NOCREATE;
  // With OPEN4_CREATE:
  uint32_t createmode = UNCHECKED4;
  SetAttributes createattrs;  // UNCHECKED4, GUARDED4, EXCLUSIVE4_1
  Verifier createverf{};      // EXCLUSIVE4, EXCLUSIVE4_1
  uint32_t claim = CLAIM_NULL;
  std::string name;                             // CLAIM_NULL, _DELEGATE_CUR, _DELEGATE_PREV
  uint32_t delegate_type = OPEN_DELEGATE_NONE;  // CLAIM_PREVIOUS
  Stateid delegate_stateid;                     // CLAIM_DELEGATE_CUR, CLAIM_DELEG_CUR_FH
};

// nfsace4 (RFC 8881 section 6.2.1).
struct Nfsace4 {
  uint32_t type = 0;
  uint32_t flag = 0;
  uint32_t access_mask = 0;
  std::string who;
};

// open_delegation4: every arm decoded.
struct OpenDelegation {
  uint32_t type = OPEN_DELEGATE_NONE;  // OpenDelegationType4
  // OPEN_DELEGATE_READ / _WRITE: return `stateid` with DELEGRETURN when
  // the delegation is not wanted.
  Stateid stateid;
  bool recall = false;
  Nfsace4 permissions;
  // OPEN_DELEGATE_WRITE: nfs_space_limit4.
  uint32_t limitby = NFS_LIMIT_SIZE;
  uint64_t filesize = 0;         // NFS_LIMIT_SIZE
  uint32_t num_blocks = 0;       // NFS_LIMIT_BLOCKS
  uint32_t bytes_per_block = 0;  // NFS_LIMIT_BLOCKS
  // OPEN_DELEGATE_NONE_EXT.
  uint32_t why_none = WND4_NOT_WANTED;
  bool server_will_push_deleg = false;    // WND4_CONTENTION
  bool server_will_signal_avail = false;  // WND4_RESOURCE

  bool has_stateid() const { return type == OPEN_DELEGATE_READ || type == OPEN_DELEGATE_WRITE; }
};

struct OpenRes {
  Stateid stateid;
  ChangeInfo cinfo;
  uint32_t rflags = 0;  // OPEN4_RESULT_*
  Bitmap attrset;
  OpenDelegation delegation;
};
void EncodeOpen(XdrEncoder& e, const OpenArgs& args, const IdMapper& ids);
Status DecodeOpen(XdrDecoder& d, OpenRes* res);

void EncodeClose(XdrEncoder& e, uint32_t seqid, const Stateid& open_stateid);
Status DecodeClose(XdrDecoder& d, Stateid* stateid);
void EncodeOpenDowngrade(XdrEncoder& e, const Stateid& open_stateid, uint32_t seqid,
                         uint32_t share_access, uint32_t share_deny);
Status DecodeOpenDowngrade(XdrDecoder& d, Stateid* stateid);
void EncodeDelegReturn(XdrEncoder& e, const Stateid& deleg_stateid);
Status DecodeDelegReturn(XdrDecoder& d);

// ---------------------------------------------------------------------------
// I/O (RFC 8881 sections 18.22, 18.32, 18.3).

void EncodeRead(XdrEncoder& e, const Stateid& stateid, uint64_t offset, uint32_t count);
// `data` views the decoder's buffer.
Status DecodeRead(XdrDecoder& d, bool* eof, std::span<const uint8_t>* data);
// Stops right after the data length word, for a receive path that lands
// the `len` payload bytes (plus XdrPad(len)) in the caller's buffer.
Status DecodeReadHeader(XdrDecoder& d, bool* eof, uint32_t* len);

// `data` is referenced (PutOpaqueRef), not copied: keep it alive until sent.
void EncodeWrite(XdrEncoder& e, const Stateid& stateid, uint64_t offset, uint32_t stable,
                 std::span<const uint8_t> data);
struct WriteRes {
  uint32_t count = 0;
  uint32_t committed = UNSTABLE4;  // StableHow4
  Verifier verifier{};
};
Status DecodeWrite(XdrDecoder& d, WriteRes* res);

void EncodeCommit(XdrEncoder& e, uint64_t offset, uint32_t count);
Status DecodeCommit(XdrDecoder& d, Verifier* verifier);

// ---------------------------------------------------------------------------
// Namespace (RFC 8881 sections 18.4, 18.25, 18.26, 18.9, 18.24, 18.23).

// CREATE of a directory, symlink, device, socket or FIFO (req.type;
// kRegular is not valid here: regular files are made with OPEN).
void EncodeCreate(XdrEncoder& e, std::string_view name, const CreateRequest& req,
                  const IdMapper& ids);
Status DecodeCreate(XdrDecoder& d, ChangeInfo* cinfo, Bitmap* attrset);

void EncodeRemove(XdrEncoder& e, std::string_view name);
Status DecodeRemove(XdrDecoder& d, ChangeInfo* cinfo);
// Saved filehandle: source directory; current filehandle: target directory.
void EncodeRename(XdrEncoder& e, std::string_view oldname, std::string_view newname);
Status DecodeRename(XdrDecoder& d, ChangeInfo* source, ChangeInfo* target);
// Saved filehandle: the file; current filehandle: the directory.
void EncodeLink(XdrEncoder& e, std::string_view newname);
Status DecodeLink(XdrDecoder& d, ChangeInfo* cinfo);
void EncodeReadLink(XdrEncoder& e);
Status DecodeReadLink(XdrDecoder& d, std::string* target);

// READDIR: entries' attributes (typically StandardAttrs() plus
// FATTR4_FILEHANDLE) go through DecodeFattr; `page` is replaced.
void EncodeReadDir(XdrEncoder& e, uint64_t cookie, const Verifier& cookieverf, uint32_t dircount,
                   uint32_t maxcount, const Bitmap& attr_request);
Status DecodeReadDir(XdrDecoder& d, const IdMapper& ids, DirPage* page);

// ---------------------------------------------------------------------------
// Byte-range locks (RFC 8881 sections 18.10-18.12).

struct LockArgs {
  uint32_t locktype = READ_LT;  // NfsLockType4
  bool reclaim = false;
  uint64_t offset = 0;
  uint64_t length = 0;  // NFS4_UINT64_MAX: to end of file
  // locker4: open_to_lock_owner4 when new_lock_owner, else exist_lock_owner4.
  bool new_lock_owner = true;
  uint32_t open_seqid = 0;  // new owner
  Stateid open_stateid;     // new owner
  StateOwner lock_owner;    // new owner
  Stateid lock_stateid;     // existing owner
  uint32_t lock_seqid = 0;  // both
};
// LOCK4denied: the conflicting lock.
struct LockDenied {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t locktype = READ_LT;
  StateOwner owner;
};
void EncodeLock(XdrEncoder& e, const LockArgs& args);
// NFS4ERR_DENIED fills `denied` and returns that Nfs status.
Status DecodeLock(XdrDecoder& d, Stateid* lock_stateid, LockDenied* denied);
void EncodeLockT(XdrEncoder& e, uint32_t locktype, uint64_t offset, uint64_t length,
                 const StateOwner& owner);
Status DecodeLockT(XdrDecoder& d, LockDenied* denied);
void EncodeLockU(XdrEncoder& e, uint32_t locktype, uint32_t seqid, const Stateid& lock_stateid,
                 uint64_t offset, uint64_t length);
Status DecodeLockU(XdrDecoder& d, Stateid* lock_stateid);

}  // namespace floatmount::nfs::v4
