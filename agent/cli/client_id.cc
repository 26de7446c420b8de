// floatmount client-id: prints the node ID a mount on this node would use
// (first line, alone, for scripts), then where it came from. Loads the ID
// exactly as a mount does, so on a fresh node it generates and stores it,
// and on a cloned one it replaces it.
#include <algorithm>
#include <boost/program_options.hpp>
#include <iostream>

#include "agent/cli/cli.h"
#include "agent/identity/client_identity.h"
#include "agent/exit_codes.h"
#include "agent/config/mount_options.h"

namespace floatmount::agent {

namespace {

namespace po = boost::program_options;

// "state_dir" -> "state-dir"
std::string FlagFor(const char* key) {
  std::string flag = key;
  std::replace(flag.begin(), flag.end(), '_', '-');
  return flag;
}

}  // namespace

int RunClientId(const std::vector<std::string>& args) {
  // --state-dir and the others are the mount options of the same names.
  const char* const kKeys[] = {"state_dir", "machine_id_file", "product_uuid_file", "client_id"};
  const MountConfig defaults;
  po::options_description opts(
      "floatmount client-id [--state-dir DIR] [--machine-id-file FILE] "
      "[--product-uuid-file FILE] [--client-id ID]");
  opts.add_options()("help,h", "show this help");
  for (const char* key : kKeys) {
    const MountOption* o = FindMountOption(key);
    const std::string flag = FlagFor(key);
    const std::string shown = o->show(defaults);
    opts.add_options()(
        flag.c_str(), po::value<std::string>()->value_name(o->value_name),
        (std::string(o->help) + (shown.empty() ? "" : " (default: " + shown + ")")).c_str());
  }
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(opts).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "floatmount client-id: " << e.what() << ". See 'floatmount client-id --help'.\n";
    return kExitUsage;
  }
  if (vm.count("help")) {
    std::cout << opts;
    return kExitOk;
  }
  MountConfig config;
  for (const char* key : kKeys) {
    const std::string flag = FlagFor(key);
    if (!vm.count(flag)) continue;
    std::string why;
    if (!ApplyOption(*FindMountOption(key), vm[flag].as<std::string>(), &config, &why)) {
      std::cerr << "floatmount client-id: bad --" << flag << ": " << why << ".\n";
      return kExitUsage;
    }
  }
  auto identity = LoadNodeIdentity(IdentityOptionsFor(config));
  if (!identity.ok()) {
    std::cerr << "floatmount client-id: " << identity.status().message()
              << ". Give a writable --state-dir.\n";
    return kExitLocalFile;
  }
  std::cout << identity->node_id << "\n";
  for (const auto& line : DescribeIdentity(*identity)) std::cout << line << "\n";
  return kExitOk;
}

}  // namespace floatmount::agent
