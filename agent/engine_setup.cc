#include "agent/engine_setup.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <random>

#include "agent/exit_codes.h"
#include "nfs/nfs4_protocol.h"

namespace floatmount::agent {

nfs::Result<std::vector<nfs::Endpoint>> ResolveServer(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_family = AF_UNSPEC;
  addrinfo* res = nullptr;
  const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    return nfs::Status::Transport("cannot resolve '" + host + "': " + gai_strerror(rc));
  }
  std::vector<nfs::Endpoint> endpoints;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    const void* addr = ai->ai_family == AF_INET
                           ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_addr)
                           : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_addr);
    if (inet_ntop(ai->ai_family, addr, buf, sizeof(buf)) == nullptr) continue;
    nfs::Endpoint ep{buf, port};
    bool seen = false;
    for (const auto& e : endpoints) seen |= (e == ep);
    if (!seen) endpoints.push_back(ep);
  }
  freeaddrinfo(res);
  if (endpoints.empty()) return nfs::Status::Transport("'" + host + "' has no address");
  return endpoints;
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
                                 const nfs::Status& status) {
  using Kind = nfs::Status::Kind;
  using namespace nfs::v4;  // NOLINT
  const std::string what = "cannot mount " + server + ":" + export_path + ": ";
  switch (status.kind()) {
    case Kind::kTransport:
    case Kind::kTimedOut:
      return what + status.message() +
             ". Check that the server is up and that the address and port are right.";
    case Kind::kRpc:
    case Kind::kProtocol:
      return what + status.message() + ". The server must support NFSv4.1.";
    case Kind::kNfs:
      if (status.IsNfs(NFS4ERR_NOENT) || status.IsNfs(NFS4ERR_NOTDIR)) {
        return what + "the server has no such export. Check the export path (try 'floatmount probe').";
      }
      if (status.IsNfs(NFS4ERR_ACCESS) || status.IsNfs(NFS4ERR_PERM) ||
          status.IsNfs(NFS4ERR_WRONGSEC)) {
        return what + "permission denied by the server. Check the export's client list and security flavor.";
      }
      if (status.IsNfs(NFS4ERR_MINOR_VERS_MISMATCH)) {
        return what + "the server does not support NFSv4.1.";
      }
      return what + status.ToString();
    default:
      return what + status.ToString();
  }
}

}  // namespace floatmount::agent
