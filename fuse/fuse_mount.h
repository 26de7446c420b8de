// FuseMount: puts a FileSystem at a mount point through libfuse3's
// low-level API and runs the kernel request loop (fuse_adapter.cc is the
// only file that sees libfuse's low-level API header).
//
// Threads: Mount/Run/Exit from the agent's main thread; libfuse's worker
// threads ("fm-fuse") decode requests and call the FileSystem; replies go
// back from whichever thread completes them (libfuse replies are
// thread-safe).
#pragma once

#include <memory>
#include <string>

#include "fuse/file_system.h"

namespace floatmount::fuse {

struct FuseMountOptions {
  std::string mountpoint;
  std::string fsname;       // shown in /proc/mounts, e.g. "server:/export"
  bool allow_other = false;  // other users may use the mount (needs root)
  bool read_only = false;
  bool debug = false;        // libfuse's request trace on stderr
  unsigned max_write = 1u << 20;
  unsigned max_idle_threads = 16;
  // Workers serving requests at once. A writer waiting for cache memory or
  // for its chunk on the wire holds none (its reply is delayed instead,
  // fuse/cache/file_cache.h) unless the mount already has 64 such writes
  // parked; the rest serve other users' stat, ls, reads and closes.
  // (libfuse's pre-3.12 loop capped this at 10.)
  unsigned max_threads = 64;
};

class FuseMount {
 public:
  // Mounts (the kernel sees the mount point from here on). On failure
  // returns null and sets *error to one line.
  static std::unique_ptr<FuseMount> Mount(FileSystem* fs, const FuseMountOptions& options,
                                          std::string* error);
  ~FuseMount();

  // Serves requests until the file system is unmounted or Exit() is called.
  // Returns 0, or an errno-style code from the loop.
  int Run();
  // Makes Run() return (signal-safe: only sets a flag and wakes the loop).
  void Exit();
  // Unmounts now (after Run returned). Idempotent.
  void Unmount();

 private:
  FuseMount() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace floatmount::fuse
