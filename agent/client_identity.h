// The NFSv4 client owner (co_ownerid, RFC 8881 2.4) of a mount: unique per
// node and mount point, and stable across restarts of the agent.
//
// A node ID (a random UUID) is generated once and kept in the state
// directory; the owner string is "floatmount/<node id>/<mount point>", so
// two mounts on one node, and the same mount on two cloned nodes with their
// own state directories, never present the same owner to a server.
// (The agent issue adds a machine fingerprint to detect a cloned state
// directory.)
//
// Thread-safety: functions; file access is not locked against another
// process creating the ID at the same moment (the loser's write is atomic
// via rename, and both then read the same file).
#pragma once

#include <array>
#include <string>

#include "nfs/status.h"

namespace floatmount::agent {

// Reads the node ID from `state_dir`/node-id, creating both if needed.
nfs::Result<std::string> LoadOrCreateNodeId(const std::string& state_dir);

std::string OwnerIdFor(const std::string& node_id, const std::string& mountpoint);

// A fresh boot verifier: it must change on every start of the agent.
std::array<uint8_t, 8> NewBootVerifier();

}  // namespace floatmount::agent
