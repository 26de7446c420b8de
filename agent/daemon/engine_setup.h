// Helpers shared by the CLI commands that talk to a server directly
// (probe, cp): resolve the server name, build engine options, and turn a
// failed mount into one line and an exit code.
//
// Thread-safety: functions of the calling thread.
#pragma once

#include <string>
#include <vector>

#include "agent/dns/resolver.h"
#include "nfs/v4/client.h"
#include "nfs/status.h"

namespace floatmount::agent {

// Every IPv4/IPv6 address of `host` (a name or a numeric address), from
// the system's resolvers or from `dns_server` (HOST:PORT) alone.
nfs::Result<std::vector<ResolvedAddress>> ResolveServer(const std::string& host,
                                                        const std::string& dns_server = "");
std::vector<nfs::Endpoint> EndpointsOf(const std::vector<ResolvedAddress>& addresses,
                                       uint16_t port);

// Options for a one-shot command: a fresh client owner ID per run (so it
// never collides with a mounted agent on this node) and a random verifier.
nfs::Nfs41Options OneShotOptions(std::vector<nfs::Endpoint> endpoints, std::string export_path,
                                 int nconnect);

// The exit code for a failed mount or operation.
int ExitCodeFor(const nfs::Status& status);
// "cannot mount 127.0.0.1:/export: <reason>. <what to do>"
// `vers` is the version asked for ("4.1", "3", "auto").
std::string DescribeMountFailure(const std::string& server, const std::string& export_path,
                                 const nfs::Status& status, const std::string& vers = "4.1");

}  // namespace floatmount::agent
