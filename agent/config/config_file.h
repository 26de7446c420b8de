// Configuration files: /etc/floatmount/NAME.conf, for a systemd service
// per mount (`floatmount --config NAME`).
//
// The format is the one Boost.Program_options reads: "key = value" lines,
// '#' starts a comment (so values cannot contain '#'). The keys are the -o
// options of mount_options.h with the same names, plus nothing else;
// flags take a boolean ("ro = true"). Sections ("[name]") are not used.
// Example:
//
//   server = nfs.example.com
//   export = /checkpoints
//   mountpoint = /mnt/checkpoints
//   nconnect = 8
//   cache_size = 2G
//
// Each line goes through Program_options on its own, so every problem is
// reported with its line number, and all of them are reported, not just
// the first: "FILE:LINE: unknown key 'x'. ...".
//
// Thread-safety: functions.
#pragma once

#include <string>
#include <vector>

#include "agent/config/mount_options.h"

namespace floatmount::agent {

inline constexpr const char* kDefaultConfigDir = "/etc/floatmount";

// --config ARG: ARG is a path if it contains '/' (./x.conf for one in the
// current directory), else a NAME for `config_dir`/NAME.conf.
std::string ResolveConfigPath(const std::string& arg, const std::string& config_dir);

// Applies the keys of the file at `path` to *config, in file order.
// Returns an exit code (exit_codes.h): kExitOk; kExitLocalFile if the file
// cannot be read; kExitUsage if a line is wrong. Appends one line per
// problem to *problems.
int ApplyConfigFile(const std::string& path, MountConfig* config,
                    std::vector<std::string>* problems);

}  // namespace floatmount::agent
