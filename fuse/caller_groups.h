// The supplementary groups of the process behind a FUSE request.
//
// The kernel tells a FUSE daemon the caller's uid, gid and thread id, not
// its groups; the only source is the "Groups:" line of
// /proc/TID/task/TID/status. libfuse's fuse_req_getgroups reads it with a
// 1 KiB buffer first and, since the file is longer (about 1.5 KiB), opens
// and reads it a second time with 4 KiB. ReadCallerGroups reads it once.
//
// They are read for every request that carries credentials, with no cache:
// a cache keyed by (pid, uid, gid) served a process the groups it had
// before a setgroups() for up to its lifetime (2 s), so a process that
// dropped a group kept its access and one that gained it was refused; and
// nothing that userspace can see cheaply changes when the groups do.
// Measured on the 2-core test VM (tests/bench/groups_bench.cc): about 9 us
// per read here, 18 us for libfuse's two reads; a stat(2) that reaches the
// server (noac, ganesha on loopback) took 260-420 us with the cache and the
// same, within the noise, without it. See docs/options.md.
//
// Threads: any (no state).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <vector>

namespace floatmount::fuse {

// The groups of thread `tid` (a FUSE request's pid is the caller's thread
// id), or nullopt if it is gone or /proc cannot be read.
std::optional<std::vector<uint32_t>> ReadCallerGroups(pid_t tid);

// The numbers after "Groups:" in a /proc status text; nullopt without one.
std::optional<std::vector<uint32_t>> ParseStatusGroups(const char* text, size_t size);

}  // namespace floatmount::fuse
