// Where a mount's agent keeps its run-time files: /run/floatmount/<name>.pid
// (for `floatmount unmount`) and <name>.sock (the control socket of
// `floatmount status`), <name> being the mount point with '/' as '-' and
// other unusual bytes hex-escaped, so one directory holds every mount's.
//
// FLOATMOUNT_RUN_DIR overrides the directory (tests).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace floatmount::agent {

std::string RunDir();
// RunDir()/<escaped mountpoint><suffix>; `mountpoint` is absolute.
std::string RunFileFor(const std::string& mountpoint, const std::string& suffix);
// Every file in RunDir() ending in `suffix`.
std::vector<std::string> RunFiles(const std::string& suffix);
// Whether process `pid` still runs. An agent that exited is a zombie until
// its parent (init, once the mount command is gone) reaps it, which some
// inits do only every few seconds; kill(pid, 0) still succeeds then.
bool ProcessRuns(pid_t pid);

}  // namespace floatmount::agent
