#include "agent/daemon/nfs_mount.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/identity/client_identity.h"
#include "nfs/v3/client.h"
#include "nfs/v4/client.h"
#include "nfs/v4/protocol.h"

namespace floatmount::agent {
namespace {

// What both versions' options take from the mount configuration alike.
template <typename Options>
Options CommonOptions(const NfsMountRequest& r) {
  const MountConfig& c = *r.config;
  Options o;
  o.endpoints = r.endpoints;
  o.export_path = c.export_path;
  o.nconnect = c.nconnect;
  o.rsize = c.rsize;
  o.wsize = c.wsize;
  o.timeo = std::chrono::milliseconds(c.timeo_deciseconds * 100);
  o.soft = c.soft;
  o.retrans = c.retrans;
  o.connect_timeout = std::min(o.timeo, std::chrono::milliseconds(15000));
  o.max_connections_per_address = size_t(c.max_connections_per_address);
  o.on_address_down = r.on_address_down;
  return o;
}

nfs::Nfs41Options Nfs41OptionsFor(const NfsMountRequest& r) {
  auto o = CommonOptions<nfs::Nfs41Options>(r);
  o.owner_id = r.owner_id;
  o.max_sessions_per_minute = uint32_t(r.config->max_sessions);
  o.boot_verifier = NewBootVerifier();
  return o;
}

nfs::Nfs3Options Nfs3OptionsFor(const NfsMountRequest& r) {
  auto o = CommonOptions<nfs::Nfs3Options>(r);
  o.mount_port = r.config->mount_port;
  return o;
}

nfs::Result<MountedNfs> Mount41(const NfsMountRequest& r) {
  auto client = nfs::Nfs41Client::Mount(Nfs41OptionsFor(r));
  if (!client.ok()) return client.status();
  return MountedNfs{std::move(*client), "4.1"};
}

nfs::Result<MountedNfs> Mount3(const NfsMountRequest& r) {
  auto client = nfs::Nfs3Client::Mount(Nfs3OptionsFor(r));
  if (!client.ok()) return client.status();
  return MountedNfs{std::move(*client), "3"};
}

}  // namespace

bool ServerLacksNfs41(const nfs::Status& status) {
  using Kind = nfs::Status::Kind;
  // PROG_MISMATCH/PROG_UNAVAIL (an NFSv3-only server), a reply we cannot
  // decode, or a refused minor version.
  return status.kind() == Kind::kRpc || status.kind() == Kind::kProtocol ||
         status.IsNfs(nfs::v4::NFS4ERR_MINOR_VERS_MISMATCH);
}

nfs::Result<MountedNfs> MountNfs(const NfsMountRequest& request) {
  const std::string& vers = request.config->vers;
  if (vers == "3") return Mount3(request);
  auto v41 = Mount41(request);
  if (vers != "auto" || v41.ok() || !ServerLacksNfs41(v41.status())) return v41;
  spdlog::warn("vers=auto: {} does not speak NFSv4.1 ({}); mounting with NFSv3",
               request.config->server, v41.status().ToString());
  return Mount3(request);
}

}  // namespace floatmount::agent
