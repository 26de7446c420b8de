#include "agent/daemon/run_files.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace floatmount::agent {

std::string RunDir() {
  const char* dir = std::getenv("FLOATMOUNT_RUN_DIR");
  return dir != nullptr && *dir != '\0' ? dir : "/run/floatmount";
}

std::string RunFileFor(const std::string& mountpoint, const std::string& suffix) {
  std::string name;
  for (char ch : mountpoint.substr(mountpoint.empty() ? 0 : 1)) {
    if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.') {
      name += ch;
    } else if (ch == '/') {
      name += '-';
    } else {
      char hex[5];
      std::snprintf(hex, sizeof(hex), "\\x%02x", static_cast<unsigned char>(ch));
      name += hex;
    }
  }
  return RunDir() + "/" + (name.empty() ? "-" : name) + suffix;
}

std::vector<std::string> RunFiles(const std::string& suffix) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(RunDir(), ec)) {
    const std::string path = entry.path().string();
    if (path.size() > suffix.size() && path.ends_with(suffix)) out.push_back(path);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool ProcessRuns(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string stat{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  // "pid (comm) S ...": comm may hold spaces and parentheses.
  const size_t paren = stat.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat.size()) return false;
  const char state = stat[paren + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace floatmount::agent
