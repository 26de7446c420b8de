#include "agent/config/mount_options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

namespace floatmount::agent {
namespace {

// Generic mount(8)/fstab options with no meaning for floatmount (-o only).
const std::set<std::string>& IgnoredOptions() {
  static const std::set<std::string> kIgnored = {
      "defaults", "auto",    "noauto",      "user",       "nouser",   "users", "_netdev",
      "nofail",   "suid",    "nosuid",      "dev",        "nodev",    "exec",  "noexec",
      "atime",    "noatime", "relatime",    "norelatime", "async",    "sync",  "lock",
      "intr",     "nointr",  "strictatime", "sec=sys",    "proto=tcp"};
  return kIgnored;
}

}  // namespace

bool ApplyOption(const MountOption& option, const std::optional<std::string>& value,
                 MountConfig* config, std::string* why) {
  static const std::set<std::string> kTrue = {"", "true", "yes", "on", "1"};
  static const std::set<std::string> kFalse = {"false", "no", "off", "0"};
  std::string what;
  bool ok = false;
  if (option.value_name != nullptr) {
    ok = value && option.apply(*value, config, &what);
    if (!value) what = std::string("needs a value: ") + option.name + "=" + option.value_name;
  } else if (!value || kTrue.count(*value) > 0) {
    ok = option.apply("true", config, &what);
  } else if (kFalse.count(*value) > 0) {
    ok = option.apply("false", config, &what);
  } else {
    what = "is a flag: give no value, or true or false";
  }
  if (!ok) *why = std::string(option.name) + " " + what;
  return ok;
}

bool ApplyOptions(const std::string& list, MountConfig* config,
                  std::vector<std::string>* problems) {
  const size_t before = problems->size();
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string opt = list.substr(pos, end - pos);
    pos = end + 1;
    if (opt.empty()) continue;
    const size_t eq = opt.find('=');
    const std::string key = opt.substr(0, eq);
    if (IgnoredOptions().count(opt) > 0 || key.rfind("x-", 0) == 0 || key == "comment") {
      continue;  // accepted for fstab compatibility
    }
    const MountOption* option = FindMountOption(key);
    std::string why;
    if (option == nullptr) {
      problems->push_back("unknown option '" + opt + "'. See 'floatmount --help' for the options.");
    } else if (!ApplyOption(
                   *option,
                   eq == std::string::npos ? std::nullopt : std::optional(opt.substr(eq + 1)),
                   config, &why)) {
      problems->push_back("bad option '" + opt + "': " + why);
    }
  }
  return problems->size() == before;
}

bool CheckMountConfig(MountConfig* c, std::vector<std::string>* problems) {
  const size_t before = problems->size();
  const char* how = ": give SERVER:/EXPORT MOUNTPOINT, or set server, export and mountpoint";
  if (c->server.empty()) problems->push_back(std::string("no server given") + how);
  if (c->export_path.empty()) problems->push_back(std::string("no export given") + how);
  if (c->mountpoint.empty()) problems->push_back(std::string("no mount point given") + how);
  if (c->noac) c->actimeo = 0;
  if (c->debug) c->foreground = true;  // the trace goes to the terminal
  if (!c->readahead) {
    c->readahead =
        c->cache_size != 0 ? std::min(kDefaultReadahead, c->cache_size) : kDefaultReadahead;
  } else if (c->cache_size != 0 && *c->readahead > c->cache_size) {
    problems->push_back("readahead=" + FormatSize(*c->readahead) + " is larger than cache_size=" +
                        FormatSize(c->cache_size) + ": lower readahead or raise cache_size");
  }
  return problems->size() == before;
}

std::optional<uint64_t> ParseSize(const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  const std::string suffix(end, text.data() + text.size());
  static const std::string kUnits = "KMGT";
  int shift = 0;
  if (suffix.size() == 1) {
    const size_t unit = kUnits.find(static_cast<char>(std::toupper(suffix[0])));
    if (unit == std::string::npos) return std::nullopt;
    shift = 10 * static_cast<int>(unit + 1);
  } else if (!suffix.empty()) {
    return std::nullopt;
  }
  if (shift > 0 && v > (UINT64_MAX >> shift)) return std::nullopt;
  return v << shift;
}

std::string FormatSize(uint64_t bytes) {
  static const char kUnits[] = "KMGT";
  int unit = -1;
  while (bytes != 0 && unit < 3 && bytes % 1024 == 0) {
    bytes /= 1024;
    ++unit;
  }
  return std::to_string(bytes) + (unit < 0 ? "" : std::string(1, kUnits[unit]));
}

std::string MountOptionsHelp() {
  constexpr size_t kTextColumn = 26;
  constexpr size_t kWidth = 79;
  const MountConfig defaults;
  std::string out;
  for (const auto& o : MountOptionTable()) {
    if (o.help == nullptr) continue;
    std::string line = std::string("  ") + o.name;
    if (o.value_name != nullptr) line += std::string("=") + o.value_name;
    line.resize(std::max(line.size() + 2, kTextColumn), ' ');
    std::string text = o.help;
    const std::string shown = o.show(defaults);
    if (!shown.empty()) text += " (default: " + shown + ")";
    // Wrap at kWidth, continuing under the text column.
    size_t start = 0;
    while (start < text.size()) {
      size_t len = std::min(text.size() - start, kWidth - line.size());
      if (start + len < text.size()) {
        const size_t space = text.rfind(' ', start + len);
        if (space != std::string::npos && space > start) len = space - start;
      }
      out += line + text.substr(start, len) + "\n";
      start += len;
      while (start < text.size() && text[start] == ' ') ++start;
      line.assign(kTextColumn, ' ');
    }
  }
  return out;
}

}  // namespace floatmount::agent
