// Set-user-ID / set-group-ID bits on a write or truncate by a non-owner.
//
// Linux clears S_ISUID, and S_ISGID when the group-execute bit is set, on a
// write or truncate by a process without CAP_FSETID, owner or not. With the
// libfuse we link (3.14), the kernel does that itself: libfuse never passes
// FUSE_HANDLE_KILLPRIV to the kernel (INIT reply flags 0x4040b42b, measured)
// and knows no FUSE_HANDLE_KILLPRIV_V2, so before each such write, truncate
// or O_TRUNC open the kernel sends a SETATTR(mode without the bits) as the
// writer. An NFS server refuses a chmod by anyone but the owner (and root),
// so a group member's permitted write failed with EPERM (EIO for write(2)).
//
// The Linux NFS client's nfs_setattr drops a mode change that only exists to
// kill the bits and leaves the clearing to the server. floatmount drops it
// when the server would refuse it anyway (the caller is neither the owner
// nor root): a write then clears the bits where the server's own write does
// (knfsd and ganesha run it with the caller's fsuid, without CAP_FSETID).
// The owner's SETATTR still goes out, so the owner's writes clear the bits
// on every server, as on a local file system.
//
// With default_permissions (every allow_other mount) the kernel refuses a
// chmod(2) by a non-owner before it reaches floatmount, so a mode change
// from a non-owner that only clears these bits is the kernel's. Without
// allow_other only the mounting user (root) uses the mount.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>

#include "nfs/types.h"

namespace floatmount::fuse {

// True if `requested` is `current` with S_ISUID and/or S_ISGID cleared and
// nothing else changed (what the kernel sends to kill them).
bool OnlyClearsSetIdBits(uint32_t current, uint32_t requested);

// True if a SETATTR of `requested` mode by `caller` is the kernel's kill of
// the set-ID bits of a file `caller` does not own: the server would refuse
// it, and floatmount leaves the bits to the server's write instead.
bool IsSetIdKillTheServerRefuses(const nfs::Credentials& caller, const nfs::Attributes& file,
                                 uint32_t requested);

}  // namespace floatmount::fuse
