// The mount command line, as `floatmount`, `floatmount mount` and
// mount.floatmount (mount(8), fstab) receive it:
//
//   floatmount [-f] [--config NAME|FILE [--config-dir DIR]] [-o OPTIONS]
//              [SERVER:/EXPORT MOUNTPOINT]
//
// Precedence, lowest first: defaults, the config file, -o options (in
// order), then SERVER:/EXPORT MOUNTPOINT. So `-o` overrides the file
// wherever it stands on the line. Every problem found is reported, one line
// each, before anything is mounted.
//
// Thread-safety: functions.
#pragma once

#include <string>
#include <vector>

#include "agent/config/mount_options.h"

namespace floatmount::agent {

struct MountArgs {
  MountConfig config;                 // valid only if exit_code is kExitOk and !help
  bool help = false;                  // -h/--help was given
  int exit_code = 0;                  // exit_codes.h; kExitOk unless `problems` is non-empty
  std::vector<std::string> problems;  // one line each, without "floatmount: "
  std::string config_file;            // the file read, if any
};

MountArgs ParseMountArgs(const std::vector<std::string>& args);

// The help of the mount command: usage, flags, and every option with its
// default.
std::string MountHelp();

}  // namespace floatmount::agent
