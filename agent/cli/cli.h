// The floatmount subcommands. Each takes the arguments after its name and
// returns the process exit code (exit_codes.h). Errors are printed as one
// line on stderr that says what was wrong and what to do.
#pragma once

#include <string>
#include <vector>

namespace floatmount::agent {

// floatmount probe nfs://HOST[:PORT]/EXPORT
int RunProbe(const std::vector<std::string>& args);
// floatmount cp [--nconnect N] [--export PATH] SRC DST
int RunCp(const std::vector<std::string>& args);

// floatmount client-id [--state-dir DIR] [--machine-id-file FILE]
//                     [--product-uuid-file FILE] [--client-id ID]
int RunClientId(const std::vector<std::string>& args);

// floatmount [-f] [--config NAME|FILE] [-o OPTIONS] [SERVER:/EXPORT MOUNTPOINT]
int RunMount(const std::vector<std::string>& args);
// floatmount unmount MOUNTPOINT
int RunUnmount(const std::vector<std::string>& args);
// floatmount status [--json | --prometheus] [MOUNTPOINT...]
int RunStatus(const std::vector<std::string>& args);

}  // namespace floatmount::agent
