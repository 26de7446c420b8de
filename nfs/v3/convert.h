// Translation between libnfs's NFSv3 XDR types (RFC 1813, as libnfs-raw-nfs.h
// declares them) and the project's own types (types.h, status.h).
//
// Pure functions, tested without a server (tests/unit/nfs/v3/convert_test.cc).
// NFSv3 has no change attribute: `change` is the ctime in nanoseconds,
// which moves on every data or metadata change, as the Linux client uses
// it for NFSv3. nfsstat3 codes are the nfsstat4 codes of the same names
// (RFC 1813 2.6, RFC 8881 15.1), so a Status carries them unchanged.
//
// Thread-safety: pure functions.
#pragma once

#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>

#include <string>

#include "nfs/status.h"
#include "nfs/types.h"

namespace floatmount::nfs::v3 {

Attributes FromFattr3(const fattr3& attr);
// The attributes if the server sent them (post_op_attr), else nullopt.
std::optional<Attributes> FromPostOp(const post_op_attr& attr);

// sattr3 for a SETATTR, or the initial attributes of a create.
sattr3 ToSattr3(const SetAttributes& attrs);

// An nfs_fh3 that points into `fh` (valid while `fh` is).
nfs_fh3 ToFh3(const FileHandle& fh);
FileHandle FromFh3(const nfs_fh3& fh);

FileType FromFtype3(ftype3 type);

// libnfs's last error on `rpc` ("unknown error" when it has none).
std::string RpcError(rpc_context* rpc);

// An NFS error from an nfsstat3, with `what` naming the call ("LOOKUP a").
Status StatusFrom(int nfsstat3, const std::string& what);

}  // namespace floatmount::nfs::v3
