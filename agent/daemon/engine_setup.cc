#include "agent/daemon/engine_setup.h"

#include <unistd.h>

#include <random>

#include "agent/exit_codes.h"
#include "nfs/v4/protocol.h"

namespace floatmount::agent {

std::vector<nfs::Endpoint> EndpointsOf(const std::vector<ResolvedAddress>& addresses,
                                       uint16_t port) {
  std::vector<nfs::Endpoint> endpoints;
  for (const ResolvedAddress& a : addresses) endpoints.push_back(nfs::Endpoint{a.address, port});
  return endpoints;
}

nfs::Result<std::vector<ResolvedAddress>> ResolveServer(const std::string& host,
                                                        const std::string& dns_server) {
  AresResolverOptions options;
  options.dns_server = dns_server;
  AresResolver resolver(options);
  return resolver.Resolve(host);
}

nfs::Nfs41Options OneShotOptions(std::vector<nfs::Endpoint> endpoints, std::string export_path,
                                 int nconnect) {
  nfs::Nfs41Options options;
  options.endpoints = std::move(endpoints);
  options.export_path = std::move(export_path);
  options.nconnect = nconnect;
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  char id[64];
  snprintf(id, sizeof(id), "%016llx", static_cast<unsigned long long>(rng()));
  options.owner_id = std::string("floatmount-oneshot/") + host + "/" + id;
  for (auto& b : options.boot_verifier) b = static_cast<uint8_t>(rng());
  options.timeo = std::chrono::seconds(30);
  return options;
}

int ExitCodeFor(const nfs::Status& status) {
  using Kind = nfs::Status::Kind;
  using namespace nfs::v4;  // NOLINT
  switch (status.kind()) {
    case Kind::kOk: return kExitOk;
    case Kind::kTransport:
    case Kind::kTimedOut: return kExitUnreachable;
    case Kind::kInvalidArgument: return kExitUsage;
    case Kind::kRpc:
    case Kind::kProtocol: return kExitProtocol;
    case Kind::kNfs:
      if (status.IsNfs(NFS4ERR_NOENT) || status.IsNfs(NFS4ERR_NOTDIR)) return kExitNoExport;
      if (status.IsNfs(NFS4ERR_ACCESS) || status.IsNfs(NFS4ERR_PERM) ||
          status.IsNfs(NFS4ERR_WRONGSEC)) {
        return kExitPermission;
      }
      if (status.IsNfs(NFS4ERR_MINOR_VERS_MISMATCH)) return kExitProtocol;
      return kExitIo;
    default: return kExitFailure;
  }
}

std::string DescribeMountFailure(const std::string& server, const std::string& export_path,
                                 const nfs::Status& status, const std::string& vers) {
  using Kind = nfs::Status::Kind;
  using namespace nfs::v4;  // NOLINT
  const std::string what = "cannot mount " + server + ":" + export_path + ": ";
  switch (status.kind()) {
    case Kind::kTransport:
    case Kind::kTimedOut:
      if (vers != "4.1") {
        return what + status.message() +
               ". Check that the server is up and serves NFSv3 and MOUNT (rpcbind on port 111, "
               "or give mountport=), and that port= is its NFS port.";
      }
      return what + status.message() +
             ". Check that the server is up and that the address and port are right.";
    case Kind::kRpc:
    case Kind::kProtocol:
      if (vers == "3") return what + status.message() + ". The server must serve NFSv3.";
      if (vers == "auto") {
        return what + status.message() + ". The server must serve NFSv4.1 or NFSv3.";
      }
      return what + status.message() +
             ". The server must support NFSv4.1 (vers=3 or vers=auto for an NFSv3 server).";
    case Kind::kNfs:
      if (status.IsNfs(NFS4ERR_NOENT) || status.IsNfs(NFS4ERR_NOTDIR)) {
        return what + "the server has no such export. Check the export path on the server.";
      }
      if (status.IsNfs(NFS4ERR_ACCESS) && status.message().rfind("MOUNT", 0) == 0) {
        // NFSv3 MOUNT servers (ganesha, knfsd) answer ACCES for an unknown
        // path as for a client they refuse.
        return what +
               "the server's MOUNT refused it: no such export, or this client is not in the "
               "export's client list. Check the export path (showmount -e SERVER).";
      }
      if (status.IsNfs(NFS4ERR_ACCESS) || status.IsNfs(NFS4ERR_PERM) ||
          status.IsNfs(NFS4ERR_WRONGSEC)) {
        return what + "permission denied by the server. Check the export's client list and security flavor.";
      }
      if (status.IsNfs(NFS4ERR_MINOR_VERS_MISMATCH)) {
        return what + "the server does not support NFSv4.1 (try vers=auto or vers=3).";
      }
      return what + status.ToString();
    default:
      return what + status.ToString();
  }
}

}  // namespace floatmount::agent
