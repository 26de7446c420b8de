// Non-idempotent requests the server may have run twice.
//
// A session's reply cache answers a resent request with the reply of its
// first run (RFC 8881 2.10.6.1.3), so a lost connection costs nothing. It
// does not survive the session: after a server restart (or a new slot) a
// request whose first reply was lost runs again, and the second run
// answers for the first one's work. REMOVE then says ENOENT, RENAME says
// ENOENT (its source is gone), LINK, CREATE (mkdir, symlink, mknod) say
// EEXIST. The engine marks such a compound (Compound::may_have_run); the
// checks here look at the server's namespace and turn the error into
// success when what is there is what the request would have made, and keep
// the error otherwise. The kernel client reports these errors; floatmount
// reports the work.
//
// What each check accepts (each is one extra round trip, on this error
// path only):
//   REMOVE  ENOENT: the name is gone, as asked.
//   RENAME  ENOENT: the target name exists and the source name is gone.
//   LINK    EEXIST: the name leads to the linked file (same file handle).
//   CREATE  EEXIST: the name leads to an object of the asked type, owned by
//           the asking user, with the asked permission bits (and, for a
//           symlink, the asked target).
// What is left: a RENAME or CREATE whose first run was lost in a restart,
// while another client of the same user made the same change at the same
// moment, is reported as done by both.
//
// Each success so reported is counted (ServerInfo::reruns_done, `floatmount
// status`).
//
// Threads: the checks run on the engine's completion threads and only
// submit compounds; `done` runs where the last one completes.
#pragma once

#include <string>

#include "nfs/client.h"
#include "nfs/types.h"
#include "nfs/v4/ops_util.h"

namespace floatmount::nfs {

class Nfs41Engine;

ReplayCheck<Unit> RemoveReplayCheck(Nfs41Engine* engine);
ReplayCheck<Unit> RenameReplayCheck(Nfs41Engine* engine, const Credentials& cred,
                                    const FileHandle& from_dir, const std::string& from_name,
                                    const FileHandle& to_dir, const std::string& to_name);
ReplayCheck<Attributes> LinkReplayCheck(Nfs41Engine* engine, const Credentials& cred,
                                        const FileHandle& fh, const FileHandle& dir,
                                        const std::string& name);
ReplayCheck<Entry> CreateReplayCheck(Nfs41Engine* engine, const Credentials& cred,
                                     const FileHandle& dir, const std::string& name,
                                     const CreateRequest& req);

}  // namespace floatmount::nfs
