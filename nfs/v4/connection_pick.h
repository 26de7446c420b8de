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
// A stalled connection (calls waiting and nothing received for a while:
// its address went silent, its node is off, the path black-holes) gets no
// new calls while another works. Until timeo closes it, least outstanding
// alone kept sending it every call that found it no busier than the rest,
// and each waited there for timeo (60 s by default); an idle connection to
// a silent address still takes the first call, which is how it is found.
//
// Threads: pure functions; the engine calls them under its connections lock.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <span>

namespace floatmount::nfs {

struct ConnLoad {
  bool usable = false;    // up and alive
  bool draining = false;  // moving elsewhere: only if nothing else is usable
  size_t outstanding = 0;
  bool stalled = false;   // see StallAfter: last resort, after draining ones
};

// Calls of at least this many bytes (sent or expected back) are bulk.
inline constexpr size_t kBulkCallBytes = 64 * 1024;

// How long a connection with calls outstanding may receive nothing before
// it counts as stalled: 2 s (a server that answers no call of a connection
// for 2 s while its others answer is most likely not there), or half of a
// shorter timeo, so that the stall is seen before timeo ends the calls.
constexpr std::chrono::milliseconds StallAfter(std::chrono::milliseconds timeo) {
  return std::min<std::chrono::milliseconds>(std::chrono::seconds(2), timeo / 2);
}

// The index of the connection to use, or -1 if none is usable.
int PickConnection(std::span<const ConnLoad> conns, bool bulk);

}  // namespace floatmount::nfs
