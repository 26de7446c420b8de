// ONC RPC v2 messages (RFC 5531): the call header with AUTH_SYS
// credentials, and the reply header.
//
// A call is encoded into one XdrEncoder as
//   [record mark][xid][CALL][rpcvers=2][prog][vers][proc][cred][verf][args]
// The record mark and xid are placeholders that RpcConnection fills in when
// it sends, so the same encoded call can be resent on another connection
// with a fresh xid.
//
// Thread-safety: stateless functions.
#pragma once

#include <cstdint>
#include <string>

#include "nfs/status.h"
#include "nfs/types.h"
#include "nfs/rpc/xdr.h"

namespace floatmount::nfs::rpc {

inline constexpr size_t kRecordMarkOffset = 0;
inline constexpr size_t kXidOffset = 4;
inline constexpr uint32_t kLastFragment = 0x80000000u;
inline constexpr size_t kMaxAuthSysGroups = 16;

// Writes the header of a call (record mark and xid left as placeholders).
// `machine_name` goes into authsys_parms (RFC 5531 appendix A).
void EncodeCallHeader(XdrEncoder& e, uint32_t prog, uint32_t vers, uint32_t proc,
                      const Credentials& cred, const std::string& machine_name);

// Fills the record mark from the encoder's final size (single fragment).
void FinishRecord(XdrEncoder& e);

// Reads a reply header after the xid: MSG_ACCEPTED with SUCCESS leaves the
// decoder at the procedure's results and returns OK; anything else returns
// a kRpc status that says what the server rejected.
Status DecodeReplyHeader(XdrDecoder& d);

}  // namespace floatmount::nfs::rpc
