// floatmount: the command-line entry point. Sets up logging (logging.h:
// the terminal, or the journal when systemd connected stderr to it) and
// dispatches to the subcommands of agent/cli/cli.h.
#include <iostream>
#include <string>
#include <vector>

#include "agent/cli/cli.h"
#include "agent/exit_codes.h"
#include "agent/daemon/logging.h"
#include "agent/config/mount_args.h"

namespace {

constexpr const char* kCommands =
    "\n"
    "commands:\n"
    "  unmount MOUNTPOINT                 flush, commit and unmount\n"
    "  status [--json|--prometheus] [MOUNTPOINT...]\n"
    "                                     session, connections, throughput and cache of\n"
    "                                     each mount (all of them without a mount point)\n"
    "  client-id [options]                print this node's NFSv4 client ID and where it\n"
    "                                     came from (state_dir, machine fingerprint)\n"
    "  probe nfs://HOST[:PORT]/EXPORT     show what the server offers (NFSv4.1 session)\n"
    "  cp [options] SRC DST               copy a file to or from nfs://HOST[:PORT]/EXPORT/PATH\n"
    "                                     through the NFSv4.1 engine, printing MB/s\n"
    "  --version                          print the version\n"
    "\n"
    "Run 'floatmount COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  floatmount::agent::SetUpLogging(floatmount::agent::DetectLogTarget());
  std::vector<std::string> args(argv + 1, argv + argc);
  const std::string self = argv[0];
  if (self.size() >= 16 && self.compare(self.size() - 16, 16, "mount.floatmount") == 0) {
    // mount(8): mount.floatmount SPEC DIR [-sfnv] [-o OPTIONS]
    return floatmount::agent::RunMount(args);
  }
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << floatmount::agent::MountHelp() << kCommands;
    return args.empty() ? floatmount::agent::kExitUsage : floatmount::agent::kExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "floatmount " << FLOATMOUNT_VERSION << "\n";
    return 0;
  }
  const std::string command = args[0];
  if (command.find(":/") != std::string::npos || command[0] == '-') {
    return floatmount::agent::RunMount(args);
  }
  args.erase(args.begin());
  if (command == "probe") return floatmount::agent::RunProbe(args);
  if (command == "client-id") return floatmount::agent::RunClientId(args);
  if (command == "status") return floatmount::agent::RunStatus(args);
  if (command == "cp") return floatmount::agent::RunCp(args);
  if (command == "mount") return floatmount::agent::RunMount(args);
  if (command == "unmount" || command == "umount") return floatmount::agent::RunUnmount(args);
  std::cerr << "floatmount: unknown command '" << command << "'. Run 'floatmount --help'.\n";
  return floatmount::agent::kExitUsage;
}
