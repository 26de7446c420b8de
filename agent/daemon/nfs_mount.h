// Mounting the export over the NFS version the configuration asks for:
// vers=4.1 (the NFSv4.1 engine), vers=3 (NFSv3 through libnfs), or
// vers=auto (4.1; when the server does not speak NFSv4.1, 3, with one log
// line that says why).
//
// Thread-safety: functions of the calling thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/config/mount_options.h"
#include "nfs/mounted_client.h"

namespace floatmount::agent {

struct NfsMountRequest {
  const MountConfig* config = nullptr;
  std::vector<nfs::Endpoint> endpoints;
  std::string owner_id;  // NFSv4.1 co_ownerid
  // Called when an address stops answering (must only signal).
  std::function<void(const nfs::Endpoint&)> on_address_down;
};

struct MountedNfs {
  std::unique_ptr<nfs::MountedClient> client;
  std::string version;  // "4.1" or "3": what carries the mount
};

// The mounted client, or the Status of the version tried last.
nfs::Result<MountedNfs> MountNfs(const NfsMountRequest& request);

// True if `status` (from an NFSv4.1 mount attempt) says the server does not
// speak NFSv4.1, so that vers=auto tries NFSv3.
bool ServerLacksNfs41(const nfs::Status& status);

}  // namespace floatmount::agent
