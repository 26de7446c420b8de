#include "nfs/rpc/message.h"

#include <algorithm>

namespace floatmount::nfs::rpc {
namespace {
constexpr uint32_t kCall = 0;
constexpr uint32_t kReply = 1;
constexpr uint32_t kRpcVersion = 2;
constexpr uint32_t kAuthNone = 0;
constexpr uint32_t kAuthSys = 1;
constexpr uint32_t kMsgAccepted = 0;
constexpr uint32_t kMsgDenied = 1;

const char* AcceptStatName(uint32_t s) {
  switch (s) {
    case 1: return "PROG_UNAVAIL";
    case 2: return "PROG_MISMATCH";
    case 3: return "PROC_UNAVAIL";
    case 4: return "GARBAGE_ARGS";
    case 5: return "SYSTEM_ERR";
    default: return "unknown accept_stat";
  }
}

const char* AuthStatName(uint32_t s) {
  switch (s) {
    case 1: return "AUTH_BADCRED";
    case 2: return "AUTH_REJECTEDCRED";
    case 3: return "AUTH_BADVERF";
    case 4: return "AUTH_REJECTEDVERF";
    case 5: return "AUTH_TOOWEAK";
    default: return "auth error";
  }
}
}  // namespace

void EncodeCallHeader(XdrEncoder& e, uint32_t prog, uint32_t vers, uint32_t proc,
                      const Credentials& cred, const std::string& machine_name) {
  e.ReserveUint32();  // record mark
  e.ReserveUint32();  // xid
  e.PutUint32(kCall);
  e.PutUint32(kRpcVersion);
  e.PutUint32(prog);
  e.PutUint32(vers);
  e.PutUint32(proc);
  // AUTH_SYS body: stamp, machinename<255>, uid, gid, gids<16>.
  const size_t groups = std::min(cred.groups.size(), kMaxAuthSysGroups);
  const std::string name = machine_name.substr(0, 255);
  e.PutUint32(kAuthSys);
  e.PutUint32(static_cast<uint32_t>(4 + 4 + name.size() + XdrPad(name.size()) + 4 + 4 + 4 +
                                    4 * groups));
  e.PutUint32(0);  // stamp
  e.PutString(name);
  e.PutUint32(cred.uid);
  e.PutUint32(cred.gid);
  e.PutUint32(static_cast<uint32_t>(groups));
  for (size_t i = 0; i < groups; ++i) e.PutUint32(cred.groups[i]);
  e.PutUint32(kAuthNone);  // verifier
  e.PutUint32(0);
}

void FinishRecord(XdrEncoder& e) {
  e.PatchUint32(kRecordMarkOffset, kLastFragment | static_cast<uint32_t>(e.size() - 4));
}

Status DecodeReplyHeader(XdrDecoder& d) {
  if (d.GetUint32() != kReply) return Status::Protocol("RPC message is not a reply");
  const uint32_t reply_stat = d.GetUint32();
  if (reply_stat == kMsgAccepted) {
    d.GetUint32();      // verifier flavor
    d.GetOpaque(400);   // verifier body
    const uint32_t accept = d.GetUint32();
    if (!d.ok()) return Status::Protocol("truncated RPC reply header");
    if (accept == 0) return Status::Ok();
    if (accept == 2) {  // PROG_MISMATCH: low, high
      const uint32_t low = d.GetUint32();
      const uint32_t high = d.GetUint32();
      return Status::Rpc("server does not support this NFS version (supports " +
                         std::to_string(low) + ".." + std::to_string(high) + ")");
    }
    return Status::Rpc(std::string("server rejected the call: ") + AcceptStatName(accept));
  }
  if (reply_stat == kMsgDenied) {
    const uint32_t reject = d.GetUint32();
    if (reject == 0) return Status::Rpc("server rejected the call: RPC version mismatch");
    const uint32_t auth = d.GetUint32();
    return Status::Rpc(std::string("server rejected the credentials: ") + AuthStatName(auth));
  }
  return Status::Protocol("bad RPC reply_stat");
}

}  // namespace floatmount::nfs::rpc
