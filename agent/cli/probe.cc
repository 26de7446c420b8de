// floatmount probe: connects like a mount would and prints what the server
// says about itself and the session it grants. For debugging a server.
#include <boost/program_options.hpp>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/daemon/engine_setup.h"
#include "agent/exit_codes.h"
#include "agent/config/nfs_url.h"
#include "nfs/v4/client.h"

namespace floatmount::agent {

namespace po = boost::program_options;

int RunProbe(const std::vector<std::string>& args) {
  po::options_description opts("floatmount probe [--nconnect N] nfs://HOST[:PORT]/EXPORT");
  int nconnect = 4;
  opts.add_options()("help,h", "show this help")(
      "nconnect", po::value<int>(&nconnect)->default_value(4), "connections to open (1-64)");
  po::options_description hidden;
  hidden.add_options()("url", po::value<std::string>());
  po::positional_options_description pos;
  pos.add("url", 1);
  po::options_description all;
  all.add(opts).add(hidden);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(all).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "floatmount probe: " << e.what() << ". See 'floatmount probe --help'.\n";
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << opts;
    return kExitOk;
  }
  if (!vm.count("url")) {
    std::cerr << "floatmount probe: give the server as nfs://HOST[:PORT]/EXPORT.\n";
    return kExitUsage;
  }
  if (nconnect < 1 || nconnect > 64) {
    std::cerr << "floatmount probe: --nconnect must be 1..64.\n";
    return kExitUsage;
  }
  std::string error;
  auto url = ParseNfsUrl(vm["url"].as<std::string>(), &error);
  if (!url) {
    std::cerr << "floatmount probe: " << error << ".\n";
    return kExitUsage;
  }
  auto addresses = ResolveServer(url->host);
  if (!addresses.ok()) {
    std::cerr << "floatmount probe: " << addresses.status().message() << ".\n";
    return kExitUnreachable;
  }
  auto client = nfs::Nfs41Client::Mount(
      OneShotOptions(EndpointsOf(*addresses, url->port), url->path, nconnect));
  if (!client.ok()) {
    std::cerr << "floatmount probe: " << DescribeMountFailure(url->host, url->path, client.status())
              << "\n";
    return ExitCodeFor(client.status());
  }
  const nfs::ServerInfo info = (*client)->info();
  std::cout << "server:            " << url->host << " port " << url->port << "\n"
            << "export:            " << url->path << "\n"
            << "server owner:      major " << info.server_owner_major << ", minor "
            << info.server_owner_minor << "\n"
            << "server scope:      " << info.server_scope << "\n"
            << "implementation:    " << (info.impl_name.empty() ? "(not given)" : info.impl_name)
            << (info.impl_domain.empty() ? "" : " (" + info.impl_domain + ")") << "\n"
            << "lease time:        " << info.lease_time << " s\n"
            << "session:           max request " << info.max_request_size << " B, max response "
            << info.max_response_size << " B, cached response " << info.max_response_size_cached
            << " B, max ops " << info.max_operations << "\n"
            << "slots:             " << info.slots << " (usable now " << info.slot_limit << ")\n"
            << "rsize / wsize:     " << info.rsize << " / " << info.wsize << "\n"
            << "connections:       " << info.connections.size() << "\n";
  for (size_t i = 0; i < info.connections.size(); ++i) {
    const auto& c = info.connections[i];
    std::cout << "  [" << i << "] " << c.endpoint.ToString() << (c.up ? " up" : " down") << "\n";
  }
  for (const auto& ep : info.excluded) {
    std::cout << "not the same server (unused): " << ep.ToString() << "\n";
  }
  (*client)->Shutdown();
  return kExitOk;
}

}  // namespace floatmount::agent
