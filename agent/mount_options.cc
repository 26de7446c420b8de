#include "agent/mount_options.h"

#include <charconv>
#include <set>

namespace floatmount::agent {
namespace {

bool ParseInt(const std::string& value, long min, long max, long* out) {
  long v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v < min || v > max) return false;
  *out = v;
  return true;
}

// Generic mount(8)/fstab options with no meaning for floatmount.
const std::set<std::string>& IgnoredOptions() {
  static const std::set<std::string> kIgnored = {
      "defaults", "rw",   "auto",  "noauto", "user",   "nouser",   "users",   "_netdev",
      "nofail",   "suid", "nosuid", "dev",   "nodev",  "exec",     "noexec",  "atime",
      "noatime",  "relatime", "norelatime", "strictatime", "async", "sync", "lock", "intr",
      "nointr",   "proto=tcp", "sec=sys"};
  return kIgnored;
}

}  // namespace

bool ApplyOptions(const std::string& list, MountConfig* c, std::string* error) {
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string opt = list.substr(pos, end - pos);
    pos = end + 1;
    if (opt.empty()) continue;
    const size_t eq = opt.find('=');
    const std::string key = opt.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : opt.substr(eq + 1);
    const bool has_value = eq != std::string::npos;
    auto number = [&](long min, long max, long* out) {
      if (has_value && ParseInt(value, min, max, out)) return true;
      *error = "bad option '" + opt + "': " + key + " takes a number from " +
               std::to_string(min) + " to " + std::to_string(max);
      return false;
    };
    long n = 0;
    if (key == "port") {
      if (!number(1, 65535, &n)) return false;
      c->port = static_cast<uint16_t>(n);
    } else if (key == "nconnect") {
      if (!number(1, 64, &n)) return false;
      c->nconnect = static_cast<int>(n);
    } else if (key == "rsize" || key == "wsize") {
      if (!number(4096, 1 << 20, &n)) return false;
      (key == "rsize" ? c->rsize : c->wsize) = static_cast<uint32_t>(n);
    } else if (key == "actimeo") {
      if (!number(0, 3600, &n)) return false;
      c->actimeo = static_cast<double>(n);
    } else if (key == "noac" && !has_value) {
      c->actimeo = 0;
    } else if (key == "hard" && !has_value) {
      c->soft = false;
    } else if (key == "soft" && !has_value) {
      c->soft = true;
    } else if (key == "timeo") {
      if (!number(1, 36000, &n)) return false;
      c->timeo_deciseconds = static_cast<int>(n);
    } else if (key == "retrans") {
      if (!number(1, 100, &n)) return false;
      c->retrans = static_cast<int>(n);
    } else if (key == "vers" || key == "nfsvers") {
      if (value != "4.1" && value != "4") {
        *error = "bad option '" + opt + "': this version of floatmount speaks NFS 4.1 only "
                 "(vers=4.1); NFSv3 support is planned";
        return false;
      }
      c->vers = "4.1";
    } else if (key == "minorversion") {
      if (value != "1") {
        *error = "bad option '" + opt + "': only minorversion=1 (NFSv4.1) is supported";
        return false;
      }
    } else if (key == "allow_other" && !has_value) {
      c->allow_other = true;
    } else if (key == "ro" && !has_value) {
      c->read_only = true;
    } else if (key == "debug" && !has_value) {
      c->debug = true;
      c->foreground = true;  // the trace goes to the terminal
    } else if (key == "state_dir") {
      if (value.empty() || value[0] != '/') {
        *error = "bad option '" + opt + "': state_dir takes an absolute path";
        return false;
      }
      c->state_dir = value;
    } else if (key == "client_id") {
      if (value.size() < 8 || value.size() > 512) {
        *error = "bad option '" + opt + "': client_id takes 8 to 512 characters";
        return false;
      }
      c->client_id = value;
    } else if (IgnoredOptions().count(opt) > 0 || key.rfind("x-", 0) == 0 || key == "comment") {
      // accepted for fstab compatibility
    } else {
      *error = "unknown option '" + opt + "'. See 'floatmount --help' for the options.";
      return false;
    }
  }
  return true;
}

std::optional<MountConfig> ParseMountArgs(const std::vector<std::string>& args,
                                          std::string* error) {
  MountConfig c;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "-o") {
      if (i + 1 >= args.size()) {
        *error = "-o needs a list of options, e.g. -o port=2049,nconnect=8";
        return std::nullopt;
      }
      if (!ApplyOptions(args[++i], &c, error)) return std::nullopt;
    } else if (a.rfind("-o", 0) == 0 && a.size() > 2) {
      if (!ApplyOptions(a.substr(2), &c, error)) return std::nullopt;
    } else if (a == "-f" || a == "--foreground") {
      c.foreground = true;
    } else if (a == "-d") {
      c.debug = true;
      c.foreground = true;
    } else if (a == "-s" || a == "-n" || a == "-v") {
      // from mount(8): sloppy, no mtab, verbose
    } else if (!a.empty() && a[0] == '-') {
      *error = "unknown flag '" + a + "'. See 'floatmount --help'.";
      return std::nullopt;
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) {
    *error = "give the export and the mount point: floatmount [-o OPTIONS] SERVER:/EXPORT "
             "MOUNTPOINT";
    return std::nullopt;
  }
  const std::string& spec = positional[0];
  const size_t colon = spec.rfind(":/");
  if (colon == std::string::npos || colon == 0) {
    *error = "'" + spec + "' is not SERVER:/EXPORT (e.g. nfs.example.com:/export)";
    return std::nullopt;
  }
  c.server = spec.substr(0, colon);
  if (c.server.size() > 2 && c.server.front() == '[' && c.server.back() == ']') {
    c.server = c.server.substr(1, c.server.size() - 2);
  }
  c.export_path = spec.substr(colon + 1);
  c.mountpoint = positional[1];
  return c;
}

}  // namespace floatmount::agent
