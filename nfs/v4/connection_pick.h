// Which connection of a mount's session a call goes out on.
//
// Least outstanding calls wins, as before; and bulk calls (a WRITE's data,
// a large READ) keep off one connection, the first usable one, while there
// are others. Small calls (GETATTR, LOOKUP, OPEN, CLOSE, COMMIT: another
// user's `stat`) then find a connection with no megabytes of WRITEs queued
// ahead of them in the socket, the network and the server's receive buffer
// (issue 14: 32 writers through +5 ms kept ~4 MiB queued on every
// connection, and a GETATTR waited behind it for hundreds of ms).
//
// Threads: a pure function; the engine calls it under its connections lock.
#pragma once

#include <cstddef>
#include <span>

namespace floatmount::nfs {

struct ConnLoad {
  bool usable = false;    // up and alive
  bool draining = false;  // moving elsewhere: only if nothing else is usable
  size_t outstanding = 0;
};

// Calls of at least this many bytes (sent or expected back) are bulk.
inline constexpr size_t kBulkCallBytes = 64 * 1024;

// The index of the connection to use, or -1 if none is usable.
int PickConnection(std::span<const ConnLoad> conns, bool bulk);

}  // namespace floatmount::nfs
