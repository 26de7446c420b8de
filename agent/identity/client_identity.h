// The NFSv4 client owner (co_ownerid, RFC 8881 2.4) of a mount: unique per
// node and mount point, and stable across restarts of the agent.
//
// A node ID (a random UUID) is generated once and kept in
// `state_dir`/node-id (dir 0700, file 0600), together with a fingerprint
// of the machine: a hash of the contents of the machine-id file and of the
// DMI product UUID file. The owner string is
// "floatmount/<node id>/<mount point>", so two mounts on one node never
// present the same owner to a server.
//
// Cloned nodes: a VM image or a disk snapshot copies the state directory,
// and with it the node ID; two nodes with one co_ownerid would steal each
// other's NFSv4 state on the server. A clone has a different DMI product
// UUID (and usually machine-id), so when the stored fingerprint differs
// from the current one, the stored ID is taken to be another machine's and
// a new one is made (IdSource::kRegenerated; the caller logs a warning).
// An unreadable fingerprint file counts as empty (containers often have
// neither); if both are empty a clone cannot be detected, and the
// description says so. A non-root reader cannot read product_uuid (0400),
// but it cannot read the root-owned node-id file either, so a user never
// disturbs the root agent's ID.
//
// The fingerprint is FNV-1a 64 over the two contents, in hex. It detects
// an accidental copy; it is not a secret and need not resist forgery.
// std::hash would not do: its value may change between builds, which
// would regenerate every node's ID on upgrade.
//
// File format: line 1 the ID, line 2 "fingerprint=fnv1a64:<16 hex>". One
// file, so ID and fingerprint change together with one atomic rename. A
// node-id file without the second line (written before fingerprints
// existed) keeps its ID and gets the current fingerprint added.
//
// IDs are secrets of a sort (another host presenting one takes over the
// node's state), so nothing here logs them; DescribeIdentity leaves the ID
// out.
//
// Thread-safety: functions. Processes on one node that load the identity
// at the same moment are serialized by an flock on the state directory.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/config/mount_options.h"
#include "nfs/status.h"

namespace floatmount::agent {

struct IdentityOptions {
  std::string state_dir;
  std::string machine_id_file;
  std::string product_uuid_file;
  std::string pinned_id;  // the client_id option: used as is, state_dir untouched
};
IdentityOptions IdentityOptionsFor(const MountConfig& config);

enum class IdSource {
  kPinned,       // the client_id option
  kGenerated,    // none was stored: made now
  kLoaded,       // stored, with this machine's fingerprint
  kRegenerated,  // stored with another machine's fingerprint: state cloned, made anew
};

struct MachineFingerprint {
  std::string value;  // "fnv1a64:0123456789abcdef"
  std::string machine_id_file;
  std::string product_uuid_file;
  bool machine_id_read = false;  // the file gave something
  bool product_uuid_read = false;
};

struct NodeIdentity {
  std::string node_id;
  IdSource source = IdSource::kGenerated;
  std::string id_file;             // where it is kept; empty when pinned
  MachineFingerprint fingerprint;  // not computed when pinned
  bool fingerprint_added = false;  // kLoaded from a file that had none
};

// Reads both files (unreadable: empty) and hashes them.
MachineFingerprint ComputeFingerprint(const std::string& machine_id_file,
                                      const std::string& product_uuid_file);

// The node ID, loaded, generated or regenerated as the header describes.
// Fails only if the state directory or its node-id file cannot be made,
// read or written.
nfs::Result<NodeIdentity> LoadNodeIdentity(const IdentityOptions& options);

// Where the ID came from, one line each, for `floatmount client-id` and
// the log. Never contains the ID.
std::vector<std::string> DescribeIdentity(const NodeIdentity& identity);

std::string OwnerIdFor(const std::string& node_id, const std::string& mountpoint);

// A fresh boot verifier (RFC 8881 18.35): it must change on every start
// of the agent, so it is random.
std::array<uint8_t, 8> NewBootVerifier();

// FNV-1a 64 of `bytes`, as 16 lower-case hex digits.
std::string Fnv1a64Hex(const std::string& bytes);

}  // namespace floatmount::agent
