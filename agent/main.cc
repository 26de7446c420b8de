// floatmount: the command-line entry point. Dispatches to the subcommands
// of agent/cli.h.
#include <spdlog/spdlog.h>

#include <iostream>
#include <string>
#include <vector>

#include "agent/cli.h"
#include "agent/exit_codes.h"

namespace {

constexpr const char* kUsage =
    "usage: floatmount COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  probe nfs://HOST[:PORT]/EXPORT     show what the server offers (NFSv4.1 session)\n"
    "  cp [options] SRC DST               copy a file to or from nfs://HOST[:PORT]/EXPORT/PATH\n"
    "                                     through the NFSv4.1 engine, printing MB/s\n"
    "  --version                          print the version\n"
    "\n"
    "Run 'floatmount COMMAND --help' for a command's options.\n";

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  if (const char* level = std::getenv("FLOATMOUNT_LOG")) {
    spdlog::set_level(spdlog::level::from_str(level));
  }
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? floatmount::agent::kExitUsage : floatmount::agent::kExitOk;
  }
  if (args[0] == "--version") {
    std::cout << "floatmount " << FLOATMOUNT_VERSION << "\n";
    return 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  if (command == "probe") return floatmount::agent::RunProbe(args);
  if (command == "cp") return floatmount::agent::RunCp(args);
  std::cerr << "floatmount: unknown command '" << command << "'. Run 'floatmount --help'.\n";
  return floatmount::agent::kExitUsage;
}
