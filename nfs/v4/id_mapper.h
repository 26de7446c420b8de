// IdMapper: translates between local uids/gids and the owner and
// owner_group strings of NFSv4 (RFC 8881 section 5.9).
//
// Outgoing (SETATTR, create attributes): with numeric_owners (the default,
// what servers such as ganesha with Only_Numeric_Owners and the Linux
// client with AUTH_SYS expect) an id is sent as its decimal string "1000";
// otherwise as "name@domain" from the local passwd/group database, falling
// back to the decimal form when the id has no name.
//
// Incoming (GETATTR, READDIR): both forms are accepted whatever the option:
//   "1000"          -> 1000
//   "name@domain"   -> the local id of `name` if `domain` matches ours
//                      (case-insensitively); otherwise nobody
//   "name"          -> the local id of `name`
//   "nobody", unknown names, malformed strings -> 65534 (nobody / nogroup)
//
// The domain is fixed at construction: the configured one, else Domain= of
// the [General] section of /etc/idmapd.conf, else the host's DNS domain,
// else "localdomain". Construction may read that file and resolve the host
// name: make one IdMapper at startup and share it.
//
// Thread-safety: immutable after construction; all methods are const and use
// the reentrant getpw*_r/getgr*_r lookups, so any thread may call them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace floatmount::nfs {

struct IdMapperOptions {
  bool numeric_owners = true;
  // "" = from idmapd_conf, else the DNS domain, else "localdomain".
  std::string domain;
  std::string idmapd_conf = "/etc/idmapd.conf";
};

class IdMapper {
 public:
  static constexpr uint32_t kNobodyUid = 65534;
  static constexpr uint32_t kNobodyGid = 65534;

  IdMapper() : IdMapper(IdMapperOptions()) {}
  explicit IdMapper(IdMapperOptions options);

  std::string OwnerString(uint32_t uid) const;
  std::string GroupString(uint32_t gid) const;
  uint32_t UidFromOwner(std::string_view owner) const;
  uint32_t GidFromGroup(std::string_view group) const;

  const std::string& domain() const { return domain_; }
  bool numeric_owners() const { return numeric_owners_; }

  // The Domain= value of the [General] section of an idmapd.conf text, or "".
  static std::string DomainFromIdmapdConf(std::string_view text);

 private:
  // Constant after construction.
  bool numeric_owners_;
  std::string domain_;
};

}  // namespace floatmount::nfs
