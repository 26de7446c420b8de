#include "agent/config/mount_args.h"

#include "agent/config/config_file.h"
#include "agent/exit_codes.h"

namespace floatmount::agent {
namespace {

constexpr const char* kUsageLine =
    "give the export and the mount point: floatmount [-o OPTIONS] SERVER:/EXPORT MOUNTPOINT, "
    "or a config file: floatmount --config NAME";

// Applies "SERVER:/EXPORT" and "MOUNTPOINT" from the command line.
void ApplyPositional(const std::string& spec, const std::string& mountpoint, MountConfig* c,
                     std::vector<std::string>* problems) {
  const size_t colon = spec.rfind(":/");
  std::string why;
  if (colon == std::string::npos || colon == 0 ||
      !ApplyOption(*FindMountOption("server"), spec.substr(0, colon), c, &why) ||
      !ApplyOption(*FindMountOption("export"), spec.substr(colon + 1), c, &why)) {
    problems->push_back("'" + spec + "' is not SERVER:/EXPORT (e.g. nfs.example.com:/export)");
  }
  if (!ApplyOption(*FindMountOption("mountpoint"), mountpoint, c, &why)) {
    problems->push_back("bad mount point '" + mountpoint + "': " + why);
  }
}

}  // namespace

MountArgs ParseMountArgs(const std::vector<std::string>& args) {
  MountArgs r;
  std::vector<std::string> lists;  // of -o, in order
  std::vector<std::string> positional;
  std::optional<std::string> config_arg;
  std::string config_dir = kDefaultConfigDir;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    // "FLAG VALUE" or "FLAG=VALUE" ("" if missing); false if `a` is not FLAG.
    auto value_of = [&](const std::string& flag, std::string* out) {
      if (a.rfind(flag + "=", 0) == 0) {
        *out = a.substr(flag.size() + 1);
      } else if (a != flag) {
        return false;
      } else {
        *out = i + 1 < args.size() ? args[++i] : "";
      }
      return true;
    };
    std::string config;
    if (a == "-h" || a == "--help") {
      r.help = true;
    } else if (value_of("--config", &config)) {
      config_arg = config;
    } else if (value_of("--config-dir", &config_dir)) {
      // used with --config NAME
    } else if (a == "-o" || (a.rfind("-o", 0) == 0 && a.size() > 2)) {
      if (a.size() > 2) {
        lists.push_back(a.substr(2));
      } else if (i + 1 < args.size()) {
        lists.push_back(args[++i]);
      } else {
        r.problems.push_back("-o needs a list of options, e.g. -o port=2049,nconnect=8");
      }
    } else if (a == "-f" || a == "--foreground") {
      r.config.foreground = true;
    } else if (a == "-d") {
      lists.push_back("debug");
    } else if (a == "-s" || a == "-n" || a == "-v") {
      // from mount(8): sloppy, no mtab, verbose
    } else if (!a.empty() && a[0] == '-') {
      r.problems.push_back("unknown flag '" + a + "'. See 'floatmount --help'.");
    } else {
      positional.push_back(a);
    }
  }
  if (r.help) return r;
  if (config_arg && config_arg->empty()) r.problems.push_back("--config needs a NAME or a FILE");
  if (config_dir.empty()) r.problems.push_back("--config-dir needs a directory");
  if (config_arg && !config_arg->empty()) {
    r.config_file = ResolveConfigPath(*config_arg, config_dir);
    r.exit_code = ApplyConfigFile(r.config_file, &r.config, &r.problems);
    if (r.exit_code == kExitLocalFile) return r;
  }
  for (const auto& list : lists) ApplyOptions(list, &r.config, &r.problems);
  if (positional.size() == 2) {
    ApplyPositional(positional[0], positional[1], &r.config, &r.problems);
  } else if (!positional.empty() || (!config_arg && r.config.server.empty())) {
    r.problems.push_back(kUsageLine);
  }
  if (r.problems.empty()) CheckMountConfig(&r.config, &r.problems);
  r.exit_code = r.problems.empty() ? kExitOk : kExitUsage;
  return r;
}

std::string MountHelp() {
  return std::string(
             "usage: floatmount [-f] [-o OPTIONS] SERVER:/EXPORT MOUNTPOINT\n"
             "       floatmount [-f] --config NAME|FILE [--config-dir DIR] [-o OPTIONS]\n"
             "\n"
             "  -f, --foreground        stay in the foreground\n"
             "  -o KEY[=VALUE],...      mount options, as in nfs(5); they override the file\n"
             "  --config NAME|FILE      read options from DIR/NAME.conf, or from FILE if it\n"
             "                          contains a '/': 'key = value' lines, same keys as -o,\n"
             "                          flags as 'key = true'\n"
             "  --config-dir DIR        where --config NAME looks (default: ") +
         kDefaultConfigDir +
         ")\n"
         "\n"
         "mount options (-o key=value, or key = value in a config file):\n" +
         MountOptionsHelp();
}

}  // namespace floatmount::agent
