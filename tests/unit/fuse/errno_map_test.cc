#include "fuse/errno_map.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "nfs/v4/protocol.h"

namespace floatmount::fuse {
namespace {

using nfs::Status;
using namespace nfs::v4;  // NOLINT

TEST(ErrnoMapTest, OkIsZero) { EXPECT_EQ(ErrnoFromStatus(Status::Ok()), 0); }

TEST(ErrnoMapTest, PosixLikeNfsCodesKeepTheirMeaning) {
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_NOENT, "LOOKUP")), ENOENT);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_ACCESS, "OPEN")), EACCES);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_PERM, "SETATTR")), EPERM);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_EXIST, "CREATE")), EEXIST);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_NOTEMPTY, "REMOVE")), ENOTEMPTY);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_NOSPC, "WRITE")), ENOSPC);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_DQUOT, "WRITE")), EDQUOT);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_ROFS, "WRITE")), EROFS);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_NAMETOOLONG, "LOOKUP")), ENAMETOOLONG);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_XDEV, "RENAME")), EXDEV);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_ISDIR, "OPEN")), EISDIR);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_NOTDIR, "LOOKUP")), ENOTDIR);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_FBIG, "WRITE")), EFBIG);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_MLINK, "LINK")), EMLINK);
}

TEST(ErrnoMapTest, NfsSpecificCodes) {
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_STALE, "GETATTR")), ESTALE);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_FHEXPIRED, "GETATTR")), ESTALE);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_SYMLINK, "LOOKUP")), ELOOP);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_DENIED, "LOCK")), EAGAIN);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_DEADLOCK, "LOCK")), EDEADLK);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_NOTSUPP, "CREATE")), EOPNOTSUPP);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_SERVERFAULT, "READ")), EREMOTEIO);
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(NFS4ERR_BADNAME, "CREATE")), EINVAL);
}

TEST(ErrnoMapTest, UnknownNfsCodeIsEio) {
  EXPECT_EQ(ErrnoFromStatus(Status::Nfs(99999, "READ")), EIO);
}

TEST(ErrnoMapTest, LocalKinds) {
  EXPECT_EQ(ErrnoFromStatus(Status::TimedOut("READ")), ETIMEDOUT);
  EXPECT_EQ(ErrnoFromStatus(Status::Transport("lost")), EIO);
  EXPECT_EQ(ErrnoFromStatus(Status::Protocol("bad reply")), EIO);
  EXPECT_EQ(ErrnoFromStatus(Status::Shutdown("gone")), ENOTCONN);
  EXPECT_EQ(ErrnoFromStatus(Status::InvalidArgument("x")), EINVAL);
}

}  // namespace
}  // namespace floatmount::fuse
