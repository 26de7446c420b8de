#include "agent/config/config_file.h"

#include <sys/stat.h>

#include <boost/program_options.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/exit_codes.h"

namespace floatmount::agent {
namespace {

namespace po = boost::program_options;

// The keys Program_options accepts: every row of the option table.
po::options_description ConfigKeys() {
  po::options_description keys;
  for (const auto& o : MountOptionTable()) {
    keys.add_options()(o.name, po::value<std::string>(), o.help ? o.help : "");
  }
  return keys;
}

// True if `line` holds something once its comment and blanks are gone.
bool HasContent(const std::string& line) {
  for (char ch : line.substr(0, line.find('#'))) {
    if (!std::isspace(static_cast<unsigned char>(ch))) return true;
  }
  return false;
}

}  // namespace

std::string ResolveConfigPath(const std::string& arg, const std::string& config_dir) {
  if (arg.find('/') != std::string::npos) return arg;
  return config_dir + "/" + arg + ".conf";
}

int ApplyConfigFile(const std::string& path, MountConfig* config,
                    std::vector<std::string>* problems) {
  struct stat st;
  std::ifstream in(path);
  if (stat(path.c_str(), &st) != 0 || !in) {
    problems->push_back("cannot read the config file " + path + ": " + std::strerror(errno) +
                        ". Check the name, or give the file's path to --config.");
    return kExitLocalFile;
  }
  if (!S_ISREG(st.st_mode)) {
    problems->push_back("the config file " + path + " is not a regular file.");
    return kExitLocalFile;
  }
  const po::options_description keys = ConfigKeys();
  const size_t before = problems->size();
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (!HasContent(line)) continue;
    po::parsed_options parsed(&keys);
    try {
      std::istringstream one(line);
      parsed = po::parse_config_file(one, keys, /*allow_unregistered=*/true);
    } catch (const po::error&) {  // only a line without '=' gets here
      problems->push_back(where + "cannot read '" + line +
                          "': write key = value, e.g. nconnect = 8 (flags: ro = true)");
      continue;
    }
    if (parsed.options.empty()) {  // Program_options took it for a section
      problems->push_back(where + "sections ('" + line +
                          "') are not used: write the keys at the top level");
      continue;
    }
    for (const po::option& opt : parsed.options) {
      const MountOption* option = FindMountOption(opt.string_key);
      const std::string value = opt.value.empty() ? "" : opt.value[0];
      std::string why;
      if (opt.unregistered || option == nullptr) {
        problems->push_back(where + "unknown key '" + opt.string_key +
                            "'. The keys are the -o options: see 'floatmount --help'.");
      } else if (!ApplyOption(*option, value, config, &why)) {
        problems->push_back(where + "bad value in '" + opt.string_key + " = " + value +
                            "': " + why);
      }
    }
  }
  if (in.bad()) {
    problems->push_back("cannot read the config file " + path + ": " + std::strerror(errno));
    return kExitLocalFile;
  }
  return problems->size() == before ? kExitOk : kExitUsage;
}

}  // namespace floatmount::agent
