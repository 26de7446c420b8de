// Compound: one NFSv4.1 request as the engine carries it.
//
// An operation (nfs/v4/client.cc) describes its COMPOUND as two functions:
// `encode` writes the operations that follow SEQUENCE, and `decode` reads
// their results. The engine adds SEQUENCE, picks slot and connection, and
// may encode the same Compound several times: after a new session or a
// new client ID the slot, the session and the stateids differ, so nothing
// that depends on them is captured at construction. `complete` runs once,
// with the final status, on the thread that decoded the last reply.
//
// Example (a builder names its ops): SEQUENCE, PUTFH, READ.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "nfs/rpc/connection.h"
#include "nfs/status.h"
#include "nfs/types.h"
#include "nfs/rpc/xdr.h"

namespace floatmount::nfs {

class OpenState;  // nfs/v4/open_state.h

struct Compound {
  const char* name = "";  // for logs: the main operation, "READ"
  Credentials cred;
  // Ask the server to keep the reply in its reply cache (sa_cachethis), so
  // a resend after a lost connection gets the original answer. Set for
  // every non-idempotent operation.
  bool cachethis = false;
  // The open whose stateid the ops use, if any: a stateid error makes the
  // engine recover that state and retry.
  OpenState* open = nullptr;
  // Recovery's own requests (reopen, RECLAIM_COMPLETE) run while other
  // requests wait for recovery to finish.
  bool recovery = false;
  // I/O through `open` (READ, WRITE): fails with NFS4ERR_IO, unsent, once
  // a byte-range lock on the open was lost (OpenState, "Lost locks").
  // Checked every time the compound is started, so one that waited out
  // the recovery that lost the lock fails too.
  bool io = false;
  // Set by the engine when the compound is sent again where no reply cache
  // can answer for an earlier send that went unanswered (a lost
  // connection, then a new session or slot: a server restart takes the
  // reply cache with it, RFC 8881 2.10.6.1.3). The server may have run it
  // already, so an error such as ENOENT from REMOVE may describe our own
  // first run (nfs/v4/replay.h). Read in `decode` and `complete`.
  bool may_have_run = false;
  // Bulk READ data goes straight to the caller's buffer.
  PayloadSink sink;

  // Writes the ops after SEQUENCE; returns how many it wrote.
  std::function<uint32_t(XdrEncoder& e)> encode;
  // Reads the results after SEQUENCE; returns the status of the first op
  // that failed (or OK). May be called more than once (retries).
  std::function<Status(XdrDecoder& d, bool payload_received)> decode;
  // Runs once with the final status.
  std::function<void(const Status& status)> complete;
};

}  // namespace floatmount::nfs
