// The MOUNT protocol, version 3 (RFC 1813 appendix I): the export's root
// file handle for an NFSv3 mount, and the UMNT that ends it.
//
// Each call runs to the end on a private libnfs context on the calling
// thread, bounded by `timeout`. MOUNT's port is `mount_port`, or asked from
// rpcbind (port 111) on the server when it is 0.
//
// Thread-safety: functions of the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "nfs/rpc/connection.h"
#include "nfs/status.h"
#include "nfs/types.h"

namespace floatmount::nfs::v3 {

struct MountReply {
  FileHandle root;
  std::vector<int> auth_flavors;  // RPC security flavors the export takes (1: AUTH_SYS)
};

// MNT. Errors: kTransport when MOUNT cannot be reached (no rpcbind, no
// MOUNT service), kNfs with the mountstat3 code (the nfsstat codes of the
// same names: NOENT, ACCES, ...) when the server refuses.
Result<MountReply> MountExport(const std::string& address, uint16_t mount_port,
                               const std::string& export_path, std::chrono::milliseconds timeout,
                               const std::string& machine_name);
// UMNT: tells the server the mount is gone (its list for showmount -a).
// Best effort: the result is only logged.
void UnmountExport(const std::string& address, uint16_t mount_port,
                   const std::string& export_path, std::chrono::milliseconds timeout,
                   const std::string& machine_name);

}  // namespace floatmount::nfs::v3
