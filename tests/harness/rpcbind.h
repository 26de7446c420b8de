// EnsureRpcbind: NFSv3 servers register their MOUNT (and NFS) ports with
// rpcbind (the portmapper, RFC 1833) on port 111, and NFSv3 clients ask it
// for them. ganesha refuses to start NFSv3 without it.
//
// If no rpcbind answers on 127.0.0.1:111, starts `rpcbind -f -w` as a child
// of this process (killed with it, PR_SET_PDEATHSIG) and keeps it for the
// rest of the process; one that already runs (a system service) is used as
// it is.
//
// Thread-safety: call from the thread that outlives the servers (the test's
// main thread), as GaneshaServer::Start() is.
#pragma once

#include <string>

namespace floatmount::testing {

// "" once rpcbind answers, else why not.
std::string EnsureRpcbind();
// Full path of the rpcbind binary, or empty.
std::string FindRpcbind();

}  // namespace floatmount::testing
