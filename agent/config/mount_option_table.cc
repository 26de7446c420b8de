// The table of mount options (see mount_options.h): for each, its name,
// its help line, how --help shows its default, and the function that
// checks and stores a value. Adding an option is adding a row here.
#include <charconv>
#include <type_traits>

#include "agent/config/mount_options.h"
#include "agent/dns/resolver.h"

namespace floatmount::agent {
namespace {

using C = MountConfig;
using S = std::string;

// The setters below leave the option's name out of *why: ApplyOption puts
// it in front ("nconnect" + " takes a number from 1 to 64").

template <auto kField, long kMin, long kMax>
bool SetNumber(const S& value, C* c, S* why) {
  long v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v < kMin || v > kMax) {
    *why = "takes a number from " + std::to_string(kMin) + " to " + std::to_string(kMax);
    return false;
  }
  c->*kField = static_cast<std::remove_reference_t<decltype(c->*kField)>>(v);
  return true;
}

template <auto kField>
S ShowNumber(const C& c) {
  return std::to_string(static_cast<long>(c.*kField));
}

// A flag; kInverse for the one of a pair that clears the field (hard, rw).
template <auto kField, bool kInverse = false>
bool SetFlag(const S& value, C* c, S*) {
  c->*kField = (value == "true") != kInverse;
  return true;
}

template <auto kField, bool kInverse = false>
S ShowFlag(const C& c) {
  return c.*kField != kInverse ? "on" : "off";
}

template <auto kField>
bool SetPath(const S& value, C* c, S* why) {
  if (value.empty() || value[0] != '/') {
    *why = "takes an absolute path";
    return false;
  }
  c->*kField = value;
  return true;
}

template <auto kField>
S ShowString(const C& c) {
  return c.*kField;
}

bool SetSize(const S& value, uint64_t min, uint64_t max, bool zero_ok, uint64_t* out, S* why) {
  const auto v = ParseSize(value);
  if (v && ((*v == 0 && zero_ok) || (*v >= min && *v <= max))) {
    *out = *v;
    return true;
  }
  *why = "takes a size from " + FormatSize(min) + " to " + FormatSize(max) +
         ", in bytes or with a K, M or G suffix (e.g. 256M)" + (zero_ok ? "; 0: automatic" : "");
  return false;
}

bool SetServer(const S& v, C* c, S* why) {
  const bool bracketed = v.size() > 2 && v.front() == '[' && v.back() == ']';  // IPv6
  const S host = bracketed ? v.substr(1, v.size() - 2) : v;
  if (host.empty() || host.find_first_of(" \t/,") != S::npos) {
    *why = "takes a host name or address";
    return false;
  }
  c->server = host;
  return true;
}

bool SetMountpoint(const S& v, C* c, S* why) {
  if (v.empty()) {
    *why = "takes a directory";
    return false;
  }
  c->mountpoint = v;
  return true;
}

bool SetVers(const S& v, C* c, S* why) {
  if (v == "4.1" || v == "4" || v == "4.2") {
    c->vers = "4.1";  // 4.2 servers speak 4.1; "4" means the newest minor version
  } else if (v == "3" || v == "auto") {
    c->vers = v;
  } else {
    *why = "takes 4.1, 3 or auto (4.1, falling back to 3)";
    return false;
  }
  return true;
}

bool SetLookupCache(const S& v, C* c, S* why) {
  if (v == "all") {
    c->lookupcache = "all";
  } else if (v == "positive" || v == "pos") {
    c->lookupcache = "positive";
  } else {
    // nfs(5)'s "none" revalidates names that exist too: here that is noac.
    *why = "takes all or positive (for no caching of names at all, use noac)";
    return false;
  }
  return true;
}

bool SetMinorVersion(const S& v, C* c, S* why) {
  if (v == "1") {
    c->vers = "4.1";
    return true;
  }
  *why = "takes 1 only (NFSv4.1)";
  return false;
}

bool SetClientId(const S& v, C* c, S* why) {
  if (v.size() < 8 || v.size() > 512) {
    *why = "takes 8 to 512 characters";
    return false;
  }
  c->client_id = v;
  return true;
}

bool SetCacheSize(const S& v, C* c, S* why) {
  return SetSize(v, 1ull << 20, 1ull << 40, true, &c->cache_size, why);
}

bool SetReadahead(const S& v, C* c, S* why) {
  uint64_t n = 0;
  if (!SetSize(v, kMinReadahead, 16ull << 30, false, &n, why)) return false;
  c->readahead = n;
  return true;
}

bool SetDnsServer(const S& v, C* c, S* why) {
  std::string normalized, error;
  if (!ParseDnsServer(v, &normalized, &error)) {
    const size_t detail = error.find("': ");  // past "dns_server 'VALUE': "
    *why = "takes IP:PORT or [IPv6]:PORT: " +
           (detail == std::string::npos ? error : error.substr(detail + 3));
    return false;
  }
  c->dns_server = normalized;
  return true;
}

std::vector<MountOption> MakeTable() {
  return {
      {"server", "HOST", "NFS server name or address (or give SERVER:/EXPORT)",
       ShowString<&C::server>, SetServer},
      {"export", "PATH", "path of the export on the server", ShowString<&C::export_path>,
       SetPath<&C::export_path>},
      {"mountpoint", "DIR", "where to mount: an existing directory", ShowString<&C::mountpoint>,
       SetMountpoint},
      {"port", "N", "server port", ShowNumber<&C::port>, SetNumber<&C::port, 1, 65535>},
      {"nconnect", "N", "TCP connections to the server, 1-64", ShowNumber<&C::nconnect>,
       SetNumber<&C::nconnect, 1, 64>},
      {"max_connections_per_address", "N",
       "at most N connections to one server address (servers with a per-client limit); 0: none",
       ShowNumber<&C::max_connections_per_address>,
       SetNumber<&C::max_connections_per_address, 0, 64>},
      {"dns_server", "IP:PORT",
       "resolve the server name with this DNS server only (default: the system's resolvers)",
       ShowString<&C::dns_server>, SetDnsServer},
      {"rsize", "N", "READ size in bytes, 4096-1048576", ShowNumber<&C::rsize>,
       SetNumber<&C::rsize, 4096, 1 << 20>},
      {"wsize", "N", "WRITE size in bytes, 4096-1048576", ShowNumber<&C::wsize>,
       SetNumber<&C::wsize, 4096, 1 << 20>},
      {"actimeo", "N", "seconds attributes and names may be cached, 0-3600",
       ShowNumber<&C::actimeo>, SetNumber<&C::actimeo, 0, 3600>},
      {"noac", nullptr, "no attribute caching (actimeo=0)", ShowFlag<&C::noac>, SetFlag<&C::noac>},
      {"lookupcache", "MODE",
       "all: remember missing names for actimeo too; positive: ask for them every time",
       ShowString<&C::lookupcache>, SetLookupCache},
      {"hard", nullptr, "wait through server outages", ShowFlag<&C::soft, true>,
       SetFlag<&C::soft, true>},
      {"soft", nullptr, "fail calls with ETIMEDOUT after timeo*retrans", ShowFlag<&C::soft>,
       SetFlag<&C::soft>},
      {"timeo", "N", "tenths of a second before a silent connection is replaced",
       ShowNumber<&C::timeo_deciseconds>, SetNumber<&C::timeo_deciseconds, 1, 36000>},
      {"retrans", "N", "soft: tries before a call fails, 1-100", ShowNumber<&C::retrans>,
       SetNumber<&C::retrans, 1, 100>},
      {"max_sessions", "N", "NFSv4.1: new sessions allowed in any minute, 1-1000",
       ShowNumber<&C::max_sessions>, SetNumber<&C::max_sessions, 1, 1000>},
      {"vers", "V", "NFS version: 4.1, 3 (through libnfs) or auto (4.1, else 3)",
       ShowString<&C::vers>, SetVers},
      {"nfsvers", "V", nullptr, ShowString<&C::vers>, SetVers},
      {"mountport", "N", "NFSv3: the server's MOUNT port; 0: ask rpcbind on the server",
       ShowNumber<&C::mount_port>, SetNumber<&C::mount_port, 0, 65535>},
      {"minorversion", "1", nullptr, [](const C&) { return S("1"); }, SetMinorVersion},
      {"allow_other", nullptr, "let other users use the mount (multi-user hosts)",
       ShowFlag<&C::allow_other>, SetFlag<&C::allow_other>},
      {"ro", nullptr, "read-only", ShowFlag<&C::read_only>, SetFlag<&C::read_only>},
      {"rw", nullptr, "read-write", ShowFlag<&C::read_only, true>, SetFlag<&C::read_only, true>},
      {"cache_size", "SIZE", "memory for read-ahead and dirty data; 0: min(1G, 10% of RAM)",
       [](const C& c) { return FormatSize(c.cache_size); }, SetCacheSize},
      {"readahead", "SIZE", "largest read-ahead of one stream, 1M to cache_size",
       [](const C& c) { return FormatSize(c.readahead.value_or(kDefaultReadahead)); },
       SetReadahead},
      {"state_dir", "DIR", "where the node ID is kept", ShowString<&C::state_dir>,
       SetPath<&C::state_dir>},
      {"client_id", "ID", "pin the node ID instead of keeping one in state_dir",
       ShowString<&C::client_id>, SetClientId},
      {"machine_id_file", "FILE", "machine fingerprint, part 1 (unreadable: empty)",
       ShowString<&C::machine_id_file>, SetPath<&C::machine_id_file>},
      {"product_uuid_file", "FILE", "machine fingerprint, part 2 (unreadable: empty)",
       ShowString<&C::product_uuid_file>, SetPath<&C::product_uuid_file>},
      {"debug", nullptr, "trace FUSE requests to the terminal (implies -f)", ShowFlag<&C::debug>,
       SetFlag<&C::debug>},
  };
}

}  // namespace

const std::vector<MountOption>& MountOptionTable() {
  static const auto* table = new std::vector<MountOption>(MakeTable());
  return *table;
}

const MountOption* FindMountOption(const std::string& name) {
  for (const auto& o : MountOptionTable()) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

}  // namespace floatmount::agent
