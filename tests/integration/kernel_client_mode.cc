#include "tests/integration/kernel_client_mode.h"

#include <cstdlib>
#include <sstream>

namespace floatmount::testing {
namespace {

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' ? std::string(value) : fallback;
}

// floatmount -o options that have no kernel NFS equivalent.
bool FuseOnlyOption(const std::string& option) { return option == "allow_other"; }

}  // namespace

std::optional<KernelClientTarget> KernelClientRequested() {
  const std::string spec = EnvOr("FLOATMOUNT_TEST_KERNEL_CLIENT", "");
  if (spec.empty()) return std::nullopt;
  KernelClientTarget target;
  target.export_spec = spec;
  target.server_dir = EnvOr("FLOATMOUNT_TEST_KERNEL_CLIENT_SERVER_DIR", "/export");
  // The kernel takes the server's address from addr= only (mount.nfs
  // normally adds it; busybox mount does not), and clientaddr= is where the
  // server sends callbacks (delegations need them).
  target.options = EnvOr("FLOATMOUNT_TEST_KERNEL_CLIENT_OPTIONS",
                         "vers=4.1,addr=127.0.0.1,clientaddr=127.0.0.1");
  return target;
}

std::string KernelExportOf(const KernelClientTarget& target, const std::string& subdir) {
  const std::string& spec = target.export_spec;
  return !spec.empty() && spec.back() == '/' ? spec + subdir : spec + "/" + subdir;
}

std::string KernelMountOptions(const KernelClientTarget& target, const std::string& extra) {
  std::string options = target.options;
  options += options.empty() ? "nosharecache" : ",nosharecache";
  std::istringstream in(extra);
  for (std::string option; std::getline(in, option, ',');) {
    if (option.empty() || FuseOnlyOption(option)) continue;
    options += "," + option;
  }
  return options;
}

}  // namespace floatmount::testing
