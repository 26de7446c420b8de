// MountedClient: an nfs::Client that owns its connections to one mounted
// export: what the agent holds for a mount, whichever NFS version carries
// it. Implementations: Nfs41Client (nfs/v4/client.h, the default) and
// Nfs3Client (nfs/v3/client.h, NFSv3 through libnfs).
//
// Thread-safety: as Client; info() and UpdateEndpoints() from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "nfs/client.h"
#include "nfs/latency.h"
#include "nfs/rpc/connection.h"

namespace floatmount::nfs {

struct ConnectionInfo {
  Endpoint endpoint;
  bool up = false;
  bool draining = false;  // moving to another address once its calls are answered
  size_t outstanding = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
};

// One address of the server, as the NFSv4.1 engine sees it (RFC 8881
// 2.10.5): the role its last EXCHANGE_ID gave it ("session": joins the
// session; "client-id": the same client on another node, not this session;
// "other-server": another server's state, not used; "unknown": not asked
// yet) and the server owner that answered there.
struct AddressInfo {
  Endpoint endpoint;
  std::string role;
  std::string server_owner;  // "MAJOR minor N", printable; empty until asked
  std::string server_scope;
  bool listed = true;     // in the latest DNS answer
  bool answering = true;  // connects succeed
};

// What probe prints and status reports. The session and owner fields are
// NFSv4.1's; an NFSv3 mount leaves them empty.
struct ServerInfo {
  std::string protocol;            // "4.1" or "3"
  std::string server_owner_major;  // printable (hex if binary)
  uint64_t server_owner_minor = 0;
  uint64_t clientid = 0;           // this client's, from EXCHANGE_ID
  std::string session_id;          // hex
  std::string server_scope;
  std::string impl_domain;
  std::string impl_name;
  uint32_t max_request_size = 0;
  uint32_t max_response_size = 0;
  uint32_t max_response_size_cached = 0;
  uint32_t max_operations = 0;
  uint32_t slots = 0;
  uint32_t slot_limit = 0;
  // Soft mounts: slots whose last request was given up before its reply,
  // waiting to be resynchronised now, and resynchronisations so far.
  uint32_t slots_interrupted = 0;
  uint64_t slot_resyncs = 0;
  uint32_t lease_time = 0;
  uint32_t rsize = 0;
  uint32_t wsize = 0;
  std::vector<Endpoint> excluded;  // addresses that were not the same server
  std::vector<AddressInfo> addresses;
  std::vector<ConnectionInfo> connections;
  uint64_t reconnects = 0;
  uint64_t session_recoveries = 0;
  uint64_t clientid_recoveries = 0;
  // Per-stateid recovery (TEST_STATEID passes: a revoked-state flag or a
  // stateid error on one request) and the stateids found gone in them.
  uint64_t stateid_recoveries = 0;
  uint64_t stateids_revoked = 0;
  // Requests the server ran again after it lost their replies (a
  // restart), whose ENOENT/EEXIST was their own first run's work: reported
  // done (nfs/v4/replay.h).
  uint64_t reruns_done = 0;
  // Sessions created since the mount was made, the first included.
  uint64_t sessions_created = 0;
  // Non-empty once the bound on new sessions per minute held some back (a
  // session storm: a bug); what happened.
  std::string session_storm;
  uint64_t retries = 0;
  // Compounds submitted, by name ("OPEN", "WRITE", ...; what follows
  // SEQUENCE and PUTFH), since the mount was made. A call resent after a
  // lost connection or DELAY is not counted again (see reconnects,
  // retries). Round trips per operation are measured with these
  // (tests/integration/round_trips_test.cc).
  std::map<std::string, uint64_t> calls;
  // How long compounds took, by the same names (nfs/latency.h): the round
  // trip of the last send, and submission to completion.
  std::map<std::string, OpLatency> latency;
};

class MountedClient : public Client {
 public:
  // Ends the mount's state on the server and closes the connections; calls
  // made afterwards fail with kShutdown. Idempotent.
  virtual void Shutdown() = 0;
  virtual ServerInfo info() const = 0;
  // The server's addresses now (the name looked up again): connections
  // move off addresses that left and spread onto new ones.
  virtual void UpdateEndpoints(const std::vector<Endpoint>& endpoints) = 0;
  // READ/WRITE sizes in use: the options, within the server's limits.
  virtual uint32_t rsize() const = 0;
  virtual uint32_t wsize() const = 0;
};

}  // namespace floatmount::nfs
