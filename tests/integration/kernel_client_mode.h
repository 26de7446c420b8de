// Kernel-client mode of MountTest (mount_fixture.h): the POSIX suite run
// against the Linux kernel's own NFSv4.1 client instead of floatmount, on
// the same server, so that its results can be put next to floatmount's (the
// kernel client as the reference, issue 16). It runs where a kernel NFS
// client and the server's own disk are both at hand: inside the knfsd test
// guest (tests/harness/knfsd/kernel_client_posix.sh), where the kernel
// client mounts the guest's own export over loopback.
//
//   FLOATMOUNT_TEST_KERNEL_CLIENT=127.0.0.1:/           the export to mount
//   FLOATMOUNT_TEST_KERNEL_CLIENT_SERVER_DIR=/export    the server's view of it
//   FLOATMOUNT_TEST_KERNEL_CLIENT_OPTIONS=...           base -o options
//                       (default vers=4.1,addr=127.0.0.1,clientaddr=127.0.0.1)
//
// No server is started and no floatmount runs. Each test gets a fresh
// directory in the server's view (ServerPath()), and each of its mounts
// (the test's own and MountSecond()'s) is a kernel mount of that directory
// with `nosharecache`: without it the kernel gives every mount of one
// server the same superblock, so a "second mount" would share the first's
// inode, attribute and dentry caches and coherence tests would test
// nothing. With it each mount has its own caches and honours its own
// options (noac, actimeo=, lookupcache=), as a second floatmount does. The
// mounts do share one NFSv4 client ID (one nfs_client per server address in
// the kernel), unlike two floatmount agents; locks still meet on the server
// because each process is its own lock owner. Delegations do not: knfsd
// recalls none for an open by the client that holds it, so one mount could
// serve a delegation's stale cache after the other wrote.
// kernel_client_posix.sh turns the guest's leases (and so delegations) off.
//
// Thread-safety: reads the environment only.
#pragma once

#include <optional>
#include <string>

namespace floatmount::testing {

struct KernelClientTarget {
  std::string export_spec;  // "127.0.0.1:/": what the kernel client mounts
  std::string server_dir;   // "/export": the same directory on the server
  std::string options;      // base mount options, comma-separated
};

// The target from the environment, or nullopt when kernel-client mode is
// not requested (FLOATMOUNT_TEST_KERNEL_CLIENT unset or empty).
std::optional<KernelClientTarget> KernelClientRequested();

// "127.0.0.1:/" + "kposix-1-abc" -> "127.0.0.1:/kposix-1-abc".
std::string KernelExportOf(const KernelClientTarget& target, const std::string& subdir);

// The -o options of a kernel mount: the target's base options, then
// `nosharecache`, then the test's floatmount options `extra` without those
// that only mean something to a FUSE mount (allow_other: a kernel NFS mount
// is open to every user anyway).
std::string KernelMountOptions(const KernelClientTarget& target, const std::string& extra);

}  // namespace floatmount::testing
