#include "fuse/errno_map.h"

#include <cerrno>

#include "nfs/nfsstat4.h"

namespace floatmount::fuse {
namespace {

int ErrnoFromNfs4(uint32_t code) {
  using namespace nfs::v4;  // NOLINT: RFC names
  switch (code) {
    case NFS4_OK: return 0;
    case NFS4ERR_PERM: return EPERM;
    case NFS4ERR_NOENT: return ENOENT;
    case NFS4ERR_IO: return EIO;
    case NFS4ERR_NXIO: return ENXIO;
    case NFS4ERR_ACCESS: return EACCES;
    case NFS4ERR_EXIST: return EEXIST;
    case NFS4ERR_XDEV: return EXDEV;
    case NFS4ERR_NOTDIR: return ENOTDIR;
    case NFS4ERR_ISDIR: return EISDIR;
    case NFS4ERR_INVAL: return EINVAL;
    case NFS4ERR_FBIG: return EFBIG;
    case NFS4ERR_NOSPC: return ENOSPC;
    case NFS4ERR_ROFS: return EROFS;
    case NFS4ERR_MLINK: return EMLINK;
    case NFS4ERR_NAMETOOLONG: return ENAMETOOLONG;
    case NFS4ERR_NOTEMPTY: return ENOTEMPTY;
    case NFS4ERR_DQUOT: return EDQUOT;
    case NFS4ERR_STALE: return ESTALE;
    case NFS4ERR_BADHANDLE: return ESTALE;
    case NFS4ERR_FHEXPIRED: return ESTALE;
    case NFS4ERR_NOTSUPP: return EOPNOTSUPP;
    case NFS4ERR_ATTRNOTSUPP: return EOPNOTSUPP;
    case NFS4ERR_OP_ILLEGAL: return EOPNOTSUPP;
    case NFS4ERR_TOOSMALL: return EINVAL;
    case NFS4ERR_SERVERFAULT: return EREMOTEIO;
    case NFS4ERR_BADTYPE: return EINVAL;
    case NFS4ERR_DELAY: return EAGAIN;
    case NFS4ERR_GRACE: return EAGAIN;
    case NFS4ERR_DENIED: return EAGAIN;
    case NFS4ERR_LOCKED: return EAGAIN;
    case NFS4ERR_SHARE_DENIED: return EACCES;
    case NFS4ERR_WRONGSEC: return EPERM;
    case NFS4ERR_RESOURCE: return EREMOTEIO;
    case NFS4ERR_MINOR_VERS_MISMATCH: return EPROTONOSUPPORT;
    case NFS4ERR_NOT_SAME: return EINVAL;
    case NFS4ERR_LOCK_RANGE: return EINVAL;
    case NFS4ERR_SYMLINK: return ELOOP;
    case NFS4ERR_OPENMODE: return EBADF;
    case NFS4ERR_BADOWNER: return EINVAL;
    case NFS4ERR_BADCHAR: return EINVAL;
    case NFS4ERR_BADNAME: return EINVAL;
    case NFS4ERR_BAD_RANGE: return EINVAL;
    case NFS4ERR_LOCK_NOTSUPP: return ENOLCK;
    case NFS4ERR_DEADLOCK: return EDEADLK;
    case NFS4ERR_FILE_OPEN: return EBUSY;
    case NFS4ERR_WRONG_TYPE: return EINVAL;
    default: return EIO;
  }
}

}  // namespace

int ErrnoFromStatus(const nfs::Status& status) {
  using Kind = nfs::Status::Kind;
  switch (status.kind()) {
    case Kind::kOk: return 0;
    case Kind::kNfs: return ErrnoFromNfs4(status.nfs_status());
    case Kind::kTimedOut: return ETIMEDOUT;
    case Kind::kInvalidArgument: return EINVAL;
    case Kind::kShutdown: return ENOTCONN;
    case Kind::kRpc:
    case Kind::kTransport:
    case Kind::kProtocol:
    case Kind::kInternal: return EIO;
  }
  return EIO;
}

}  // namespace floatmount::fuse
