// COMPOUND framing, result headers, and the client ID / session / state
// management operations of nfs/v4/ops.h.
#include <algorithm>
#include <string>
#include <utility>

#include "nfs/v4/ops.h"

namespace floatmount::nfs::v4 {
namespace {

// Writes an optional out param.
template <typename T>
void Assign(T* out, T value) {
  if (out != nullptr) *out = std::move(value);
}

void EncodeSessionId(XdrEncoder& e, const SessionId& sessionid) {
  e.PutFixedOpaque(sessionid.data(), sessionid.size());
}

void DecodeSessionId(XdrDecoder& d, SessionId* sessionid) {
  std::span<const uint8_t> bytes = d.GetFixedOpaque(NFS4_SESSIONID_SIZE);
  if (d.ok()) std::copy(bytes.begin(), bytes.end(), sessionid->begin());
}

// nfs_impl_id4.
void EncodeImplId(XdrEncoder& e, const ImplId& id) {
  e.PutString(id.domain);
  e.PutString(id.name);
  EncodeNfstime(e, id.date);
}

void DecodeImplId(XdrDecoder& d, ImplId* id) {
  id->domain = d.GetString(NFS4_OPAQUE_LIMIT);
  id->name = d.GetString(NFS4_OPAQUE_LIMIT);
  DecodeNfstime(d, &id->date);
}

}  // namespace

// RFC 8881 section 16.2.
size_t EncodeCompoundHeader(XdrEncoder& e, std::string_view tag, uint32_t minorversion) {
  e.PutString(tag);
  e.PutUint32(minorversion);
  return e.ReserveUint32();
}

Status DecodeCompoundHeader(XdrDecoder& d, uint32_t* status, uint32_t* num_results) {
  const uint32_t st = d.GetUint32();
  d.GetOpaque(kMaxTagLen);
  const uint32_t n = d.GetUint32();
  if (!d.ok()) return Status::Protocol("malformed COMPOUND reply header");
  Assign(status, uint32_t{st});
  Assign(num_results, uint32_t{n});
  return Status::Ok();
}

Status DecodeOpStatus(XdrDecoder& d, uint32_t op, uint32_t* nfsstat) {
  const uint32_t resop = d.GetUint32();
  const uint32_t st = d.GetUint32();
  if (!d.ok()) return Status::Protocol(std::string("truncated ") + OpName(op) + " reply");
  if (resop == OP_ILLEGAL) return Status::Nfs(st, OpName(OP_ILLEGAL));
  if (resop != op) {
    return Status::Protocol(std::string("expected ") + OpName(op) + " result, got " +
                            OpName(resop));
  }
  *nfsstat = st;
  return Status::Ok();
}

Status DecodeOpHeader(XdrDecoder& d, uint32_t op) {
  uint32_t st = NFS4_OK;
  Status s = DecodeOpStatus(d, op, &st);
  if (!s.ok()) return s;
  if (st != NFS4_OK) return Status::Nfs(st, OpName(op));
  return Status::Ok();
}

Status CheckDecoded(const XdrDecoder& d, uint32_t op) {
  if (!d.ok()) return Status::Protocol(std::string("malformed ") + OpName(op) + " reply");
  return Status::Ok();
}

// RFC 8881 section 18.35.
void EncodeExchangeId(XdrEncoder& e, const ExchangeIdArgs& args) {
  e.PutUint32(OP_EXCHANGE_ID);
  e.PutFixedOpaque(args.verifier.data(), args.verifier.size());
  e.PutString(args.owner_id);
  e.PutUint32(args.flags);
  e.PutUint32(SP4_NONE);
  e.PutUint32(args.impl_id ? 1 : 0);
  if (args.impl_id) EncodeImplId(e, *args.impl_id);
}

Status DecodeExchangeId(XdrDecoder& d, ExchangeIdRes* res) {
  Status s = DecodeOpHeader(d, OP_EXCHANGE_ID);
  if (!s.ok()) return s;
  ExchangeIdRes r;
  r.clientid = d.GetUint64();
  r.sequenceid = d.GetUint32();
  r.flags = d.GetUint32();
  r.state_protect = d.GetUint32();
  switch (r.state_protect) {
    case SP4_NONE:
      break;
    case SP4_MACH_CRED:  // state_protect_ops4
      DecodeBitmap(d, &r.must_enforce);
      DecodeBitmap(d, &r.must_allow);
      break;
    case SP4_SSV:
      if (!d.ok()) break;
      return Status::Protocol("EXCHANGE_ID: SP4_SSV state protection is not supported");
    default:
      d.Fail();
  }
  r.server_owner_minor = d.GetUint64();
  r.server_owner_major = d.GetString(NFS4_OPAQUE_LIMIT);
  r.server_scope = d.GetString(NFS4_OPAQUE_LIMIT);
  const uint32_t n = d.GetUint32();
  if (n > 1) d.Fail();
  if (n == 1 && d.ok()) {
    r.server_impl_id.emplace();
    DecodeImplId(d, &*r.server_impl_id);
  }
  s = CheckDecoded(d, OP_EXCHANGE_ID);
  if (s.ok()) Assign(res, std::move(r));
  return s;
}

// RFC 8881 section 18.36.
void EncodeCreateSession(XdrEncoder& e, const CreateSessionArgs& args) {
  e.PutUint32(OP_CREATE_SESSION);
  e.PutUint64(args.clientid);
  e.PutUint32(args.sequence);
  e.PutUint32(args.flags);
  EncodeChannelAttrs(e, args.fore);
  EncodeChannelAttrs(e, args.back);
  e.PutUint32(args.cb_program);
  e.PutUint32(static_cast<uint32_t>(args.sec_parms.size()));
  for (const CallbackSecParms& p : args.sec_parms) {
    e.PutUint32(p.flavor);
    if (p.flavor != kAuthSys) continue;  // AUTH_NONE: void
    e.PutUint32(p.stamp);
    e.PutString(std::string_view(p.machinename).substr(0, kMaxMachineName));
    e.PutUint32(p.uid);
    e.PutUint32(p.gid);
    const size_t ngids = std::min(p.gids.size(), kMaxAuthSysGids);
    e.PutUint32(static_cast<uint32_t>(ngids));
    for (size_t i = 0; i < ngids; ++i) e.PutUint32(p.gids[i]);
  }
}

Status DecodeCreateSession(XdrDecoder& d, CreateSessionRes* res) {
  Status s = DecodeOpHeader(d, OP_CREATE_SESSION);
  if (!s.ok()) return s;
  CreateSessionRes r;
  DecodeSessionId(d, &r.sessionid);
  r.sequence = d.GetUint32();
  r.flags = d.GetUint32();
  DecodeChannelAttrs(d, &r.fore);
  DecodeChannelAttrs(d, &r.back);
  s = CheckDecoded(d, OP_CREATE_SESSION);
  if (s.ok()) Assign(res, std::move(r));
  return s;
}

// RFC 8881 section 18.46.
void EncodeSequence(XdrEncoder& e, const SequenceArgs& args) {
  e.PutUint32(OP_SEQUENCE);
  EncodeSessionId(e, args.sessionid);
  e.PutUint32(args.sequenceid);
  e.PutUint32(args.slotid);
  e.PutUint32(args.highest_slotid);
  e.PutBool(args.cachethis);
}

Status DecodeSequence(XdrDecoder& d, SequenceRes* res) {
  Status s = DecodeOpHeader(d, OP_SEQUENCE);
  if (!s.ok()) return s;
  SequenceRes r;
  DecodeSessionId(d, &r.sessionid);
  r.sequenceid = d.GetUint32();
  r.slotid = d.GetUint32();
  r.highest_slotid = d.GetUint32();
  r.target_highest_slotid = d.GetUint32();
  r.status_flags = d.GetUint32();
  s = CheckDecoded(d, OP_SEQUENCE);
  if (s.ok()) Assign(res, std::move(r));
  return s;
}

// RFC 8881 section 18.34.
void EncodeBindConnToSession(XdrEncoder& e, const SessionId& sessionid, uint32_t dir,
                             bool use_rdma) {
  e.PutUint32(OP_BIND_CONN_TO_SESSION);
  EncodeSessionId(e, sessionid);
  e.PutUint32(dir);
  e.PutBool(use_rdma);
}

Status DecodeBindConnToSession(XdrDecoder& d, BindConnToSessionRes* res) {
  Status s = DecodeOpHeader(d, OP_BIND_CONN_TO_SESSION);
  if (!s.ok()) return s;
  BindConnToSessionRes r;
  DecodeSessionId(d, &r.sessionid);
  r.dir = d.GetUint32();
  r.use_rdma = d.GetBool();
  if (r.dir != CDFS4_FORE && r.dir != CDFS4_BACK && r.dir != CDFS4_BOTH) d.Fail();
  s = CheckDecoded(d, OP_BIND_CONN_TO_SESSION);
  if (s.ok()) Assign(res, std::move(r));
  return s;
}

// RFC 8881 section 18.37.
void EncodeDestroySession(XdrEncoder& e, const SessionId& sessionid) {
  e.PutUint32(OP_DESTROY_SESSION);
  EncodeSessionId(e, sessionid);
}

Status DecodeDestroySession(XdrDecoder& d) { return DecodeOpHeader(d, OP_DESTROY_SESSION); }

// RFC 8881 section 18.50.
void EncodeDestroyClientId(XdrEncoder& e, uint64_t clientid) {
  e.PutUint32(OP_DESTROY_CLIENTID);
  e.PutUint64(clientid);
}

Status DecodeDestroyClientId(XdrDecoder& d) { return DecodeOpHeader(d, OP_DESTROY_CLIENTID); }

// RFC 8881 section 18.51.
void EncodeReclaimComplete(XdrEncoder& e, bool one_fs) {
  e.PutUint32(OP_RECLAIM_COMPLETE);
  e.PutBool(one_fs);
}

Status DecodeReclaimComplete(XdrDecoder& d) { return DecodeOpHeader(d, OP_RECLAIM_COMPLETE); }

// RFC 8881 section 18.48.
void EncodeTestStateid(XdrEncoder& e, std::span<const Stateid> stateids) {
  e.PutUint32(OP_TEST_STATEID);
  e.PutUint32(static_cast<uint32_t>(stateids.size()));
  for (const Stateid& stateid : stateids) EncodeStateid(e, stateid);
}

Status DecodeTestStateid(XdrDecoder& d, std::vector<uint32_t>* codes) {
  Status s = DecodeOpHeader(d, OP_TEST_STATEID);
  if (!s.ok()) return s;
  const uint32_t n = d.GetUint32();
  if (n > d.remaining() / 4) d.Fail();
  std::vector<uint32_t> r;
  for (uint32_t i = 0; i < n && d.ok(); ++i) r.push_back(d.GetUint32());
  s = CheckDecoded(d, OP_TEST_STATEID);
  if (s.ok()) Assign(codes, std::move(r));
  return s;
}

// RFC 8881 section 18.38.
void EncodeFreeStateid(XdrEncoder& e, const Stateid& stateid) {
  e.PutUint32(OP_FREE_STATEID);
  EncodeStateid(e, stateid);
}

Status DecodeFreeStateid(XdrDecoder& d) { return DecodeOpHeader(d, OP_FREE_STATEID); }

// RFC 8881 section 18.45 (secinfo4 of 18.29).
void EncodeSecinfoNoName(XdrEncoder& e, uint32_t style) {
  e.PutUint32(OP_SECINFO_NO_NAME);
  e.PutUint32(style);
}

Status DecodeSecinfoNoName(XdrDecoder& d, std::vector<SecInfo>* flavors) {
  Status s = DecodeOpHeader(d, OP_SECINFO_NO_NAME);
  if (!s.ok()) return s;
  const uint32_t n = d.GetUint32();
  if (n > d.remaining() / 4) d.Fail();
  std::vector<SecInfo> r;
  for (uint32_t i = 0; i < n && d.ok(); ++i) {
    SecInfo& info = r.emplace_back();
    info.flavor = d.GetUint32();
    if (info.flavor == kRpcsecGss) {  // rpcsec_gss_info
      info.oid = d.GetString(NFS4_OPAQUE_LIMIT);
      info.qop = d.GetUint32();
      info.service = d.GetUint32();
    }
  }
  s = CheckDecoded(d, OP_SECINFO_NO_NAME);
  if (s.ok()) Assign(flavors, std::move(r));
  return s;
}

}  // namespace floatmount::nfs::v4
