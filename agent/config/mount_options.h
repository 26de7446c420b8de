// MountConfig: what a mount asks for, and the one table of mount options
// that both the command line (-o key=value,...) and the configuration file
// (/etc/floatmount/NAME.conf, "key = value" lines; agent/config/config_file.h)
// are checked against, and that `floatmount --help` is printed from.
//
// Options follow nfs(5) where they mean the same: port, nconnect, rsize,
// wsize, actimeo, noac, lookupcache, hard, soft, timeo (tenths of a second), retrans,
// vers; plus floatmount's own (server, export, mountpoint, allow_other,
// state_dir, client_id, machine_id_file, product_uuid_file, debug,
// cache_size, readahead). Flags take no value on the command line ("ro")
// or a boolean ("ro=true", "ro = false" in a file); "rw" undoes "ro",
// "hard" undoes "soft". The generic mount(8) options that mean nothing
// here are accepted after -o and ignored (_netdev, nofail, defaults, ...),
// so fstab lines work; a config file takes only the table's keys.
//
// Validation happens in two steps: ApplyOption checks one key=value on its
// own (range, syntax); CheckMountConfig checks what needs the whole
// configuration (server and mount point present, readahead within
// cache_size). Each problem is one line that names the option and says
// what to do; the caller adds where the option came from.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nfs/types.h"

namespace floatmount::agent {

struct MountConfig {
  std::string server;       // host name or address
  std::string export_path;  // "/export"
  std::string mountpoint;   // as given (made absolute by the caller)
  uint16_t port = 2049;
  int nconnect = 16;
  int max_connections_per_address = 0;  // 0: no limit
  std::string dns_server;  // "IP:PORT": ask only this DNS server; empty: the system's
  uint32_t rsize = nfs::kDefaultRsize;
  uint32_t wsize = 1u << 20;
  double actimeo = 1.0;  // seconds; CheckMountConfig makes it 0 with noac
  bool noac = false;
  // "all": names known to be missing are cached too (for actimeo), as the
  // kernel NFS client's default; "positive": a missing name is asked for
  // every time, so another client's new file shows at once (nfs(5)).
  std::string lookupcache = "all";
  bool soft = false;
  int timeo_deciseconds = 600;
  int retrans = 2;
  // New NFSv4.1 sessions allowed in any minute (a recovery loop's bound).
  int max_sessions = 10;
  std::string vers = "4.1";  // "4.1", "3" or "auto"
  uint16_t mount_port = 0;   // NFSv3 MOUNT; 0: from rpcbind
  bool allow_other = false;
  bool read_only = false;
  bool foreground = false;  // -f, or debug
  bool debug = false;
  // Memory for read-ahead and dirty data together; 0: chosen by fuse/
  // (min(1 GiB, 10% of RAM)).
  uint64_t cache_size = 0;
  // Largest read-ahead window of one stream; unset: kDefaultReadahead, or
  // cache_size if that is smaller.
  std::optional<uint64_t> readahead;
  std::string state_dir = "/var/lib/floatmount";
  std::string client_id;  // pins the node ID (else generated in state_dir)
  std::string machine_id_file = "/etc/machine-id";
  std::string product_uuid_file = "/sys/class/dmi/id/product_uuid";
};

inline constexpr uint64_t kDefaultReadahead = 64ull << 20;
inline constexpr uint64_t kMinReadahead = 1ull << 20;

// One row of the option table.
struct MountOption {
  const char* name;
  const char* value_name;  // "N", "DIR", ...; nullptr for a flag
  const char* help;        // nullptr: an alias, not listed by --help
  // The value in `config` as --help shows it ("" if there is no default).
  std::string (*show)(const MountConfig& config);
  // Checks `value` and stores it. For a flag, `value` is "true" or
  // "false". On error sets *why to what the option takes, without its
  // name ("takes a number from 1 to 64").
  bool (*apply)(const std::string& value, MountConfig* config, std::string* why);
};

// Every option, in the order --help lists them.
const std::vector<MountOption>& MountOptionTable();
const MountOption* FindMountOption(const std::string& name);

// Applies one option of the table; `value` is nullopt when none was given
// ("ro" rather than "ro=true"). On error sets *why to what the option
// takes ("nconnect takes a number from 1 to 64"); the caller says where
// the value came from.
bool ApplyOption(const MountOption& option, const std::optional<std::string>& value,
                 MountConfig* config, std::string* why);

// Applies one "-o" list ("a=1,b"), including the generic mount(8) options
// that mean nothing here. Appends one line per problem to *problems.
bool ApplyOptions(const std::string& list, MountConfig* config, std::vector<std::string>* problems);

// The checks that need the whole configuration; resolves what depends on
// other options (readahead's default, noac, debug's foreground). Appends one line per problem to
// *problems.
bool CheckMountConfig(MountConfig* config, std::vector<std::string>* problems);

// The options part of --help, one line or more per option with its default.
std::string MountOptionsHelp();

// "64M", "1048576", "2g" -> bytes (K, M, G, T: powers of 1024).
std::optional<uint64_t> ParseSize(const std::string& text);
// Bytes as the shortest exact "64M" / "1536K" / "1000".
std::string FormatSize(uint64_t bytes);

}  // namespace floatmount::agent
