// Exit codes of the floatmount command: each failure class has its own, so
// scripts (and the Databricks init script) can tell them apart.
#pragma once

namespace floatmount::agent {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;      // anything not listed below
inline constexpr int kExitUsage = 2;        // bad command line or option
inline constexpr int kExitUnreachable = 3;  // no address of the server answered
inline constexpr int kExitNoExport = 4;     // the server has no such export / path
inline constexpr int kExitPermission = 5;   // the server or the OS denied access
inline constexpr int kExitProtocol = 6;     // the server does not speak NFSv4.1 as needed
inline constexpr int kExitIo = 7;           // an I/O error during the job
inline constexpr int kExitLocalFile = 8;    // a local file could not be read or written
                                            // (cp's file, the config file, state_dir)
inline constexpr int kExitMountPoint = 9;   // the mount point is missing, not a dir, or busy
inline constexpr int kExitFuse = 10;        // the kernel refused the FUSE mount

}  // namespace floatmount::agent
