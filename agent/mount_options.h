// MountConfig: what `floatmount [-o OPTIONS] SERVER:/EXPORT MOUNTPOINT`
// (and `mount -t floatmount`, fstab) asks for, parsed and validated.
//
// Options follow nfs(5) where they mean the same: port, nconnect, rsize,
// wsize, actimeo, noac, hard, soft, timeo (tenths of a second), retrans,
// vers; plus floatmount's own (allow_other, state_dir, client_id, debug)
// and the generic mount(8) options, which are accepted and, where they do
// not apply, ignored (rw, ro, _netdev, nofail, defaults, ...).
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace floatmount::agent {

struct MountConfig {
  std::string server;       // host name or address
  std::string export_path;  // "/export"
  std::string mountpoint;   // as given (made absolute by the caller)
  uint16_t port = 2049;
  int nconnect = 16;
  uint32_t rsize = 1u << 20;
  uint32_t wsize = 1u << 20;
  double actimeo = 1.0;  // seconds; 0 with noac
  bool soft = false;
  int timeo_deciseconds = 600;
  int retrans = 2;
  std::string vers = "4.1";
  bool allow_other = false;
  bool read_only = false;
  bool foreground = false;
  bool debug = false;
  std::string state_dir = "/var/lib/floatmount";
  std::string client_id;  // pins the node ID (else generated in state_dir)
};

// Parses the arguments after the command name. On error returns nullopt
// and sets *error to one line naming the bad input and what to do.
std::optional<MountConfig> ParseMountArgs(const std::vector<std::string>& args,
                                          std::string* error);

// Applies one "-o" list ("a=1,b") to `config`.
bool ApplyOptions(const std::string& list, MountConfig* config, std::string* error);

}  // namespace floatmount::agent
