// The one place where an nfs::Status becomes an errno (STYLE.md: errors).
//
// NFSv4 status codes map as the Linux kernel client maps them where that
// is well known (RFC 8881 section 15.1 gives their meaning); local kinds
// map to what a program can act on: kTimedOut -> ETIMEDOUT (soft mounts),
// a connection or protocol failure -> EIO, a shut-down client -> ENOTCONN.
//
// Thread-safety: pure function.
#pragma once

#include "nfs/status.h"

namespace floatmount::fuse {

// 0 for OK, else a positive errno.
int ErrnoFromStatus(const nfs::Status& status);

}  // namespace floatmount::fuse
