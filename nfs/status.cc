#include "nfs/status.h"

namespace floatmount::nfs {

std::string Status::ToString() const {
  switch (kind_) {
    case Kind::kOk: return "OK";
    case Kind::kNfs: return std::string(NfsStatusName(nfs_status_)) + (message_.empty() ? "" : ": " + message_);
    case Kind::kRpc: return "RPC error: " + message_;
    case Kind::kTransport: return "connection error: " + message_;
    case Kind::kTimedOut: return "timed out: " + message_;
    case Kind::kProtocol: return "protocol error: " + message_;
    case Kind::kInvalidArgument: return "invalid argument: " + message_;
    case Kind::kShutdown: return "shut down: " + message_;
    case Kind::kInternal: return "internal error: " + message_;
  }
  return message_;
}

}  // namespace floatmount::nfs
