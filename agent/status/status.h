// MountStatus: what `floatmount status` shows about one mount, and its
// three renderings: a summary for people, JSON (--json) for scripts, and
// the Prometheus text exposition format (--prometheus) for node_exporter's
// textfile collector or a scrape.
//
// The agent builds a MountStatus on request (status_server.h) from the
// engine (nfs::ServerInfo: session, connections, recoveries), the cache
// (fuse::CacheStats) and the throughput it samples every second.
//
// The node ID is shown (the control socket is readable only by the agent's
// user, as the state directory is); it is never logged.
//
// Thread-safety: plain data and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fuse/file_system.h"
#include "nfs/mounted_client.h"
#include "nfs/status.h"

namespace floatmount::agent {

struct Throughput {
  double read_bytes_per_s = 0;   // what programs read through the mount
  double write_bytes_per_s = 0;  // what the cache wrote to the server
};

struct MountStatus {
  std::string mountpoint;
  std::string server;  // as given: name or address
  std::string export_path;
  std::string node_id;
  std::string owner_id;  // the NFSv4 client owner (co_ownerid)
  int nconnect = 0;
  double uptime_s = 0;
  nfs::ServerInfo engine;
  fuse::CacheStats cache;
  Throughput throughput;
};

std::string FormatHuman(const MountStatus& s);
std::string FormatJson(const MountStatus& s);  // one object, one line
// Reads FormatJson's output back (the status command gets it from the agent).
nfs::Result<MountStatus> ParseStatusJson(const std::string& text);
// The metrics of every mount given, grouped by metric family.
std::string FormatPrometheus(const std::vector<MountStatus>& mounts);

}  // namespace floatmount::agent
