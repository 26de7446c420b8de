#include "nfs/v4/id_mapper.h"

#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>
#include <vector>

namespace floatmount::nfs {
namespace {

constexpr size_t kInitialBuffer = 1024;
constexpr size_t kMaxBuffer = 1 << 20;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// ASCII case-insensitive (domains are compared as DNS names).
bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// A decimal id that fits in 32 bits ("007" is accepted, "-1" and "" not).
bool ParseDecimal(std::string_view s, uint32_t* id) {
  if (s.empty()) return false;
  uint32_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return false;
  *id = v;
  return true;
}

// Calls a getXXX_r function, growing the buffer on ERANGE. Returns the
// entry or null (no such entry, or an error).
template <typename Entry, typename Fn>
Entry* ReentrantLookup(Fn fn, Entry* entry, std::vector<char>* buf) {
  buf->resize(kInitialBuffer);
  while (true) {
    Entry* result = nullptr;
    const int rc = fn(entry, buf->data(), buf->size(), &result);
    if (rc == ERANGE && buf->size() < kMaxBuffer) {
      buf->resize(buf->size() * 2);
      continue;
    }
    return rc == 0 ? result : nullptr;
  }
}

bool UserName(uint32_t uid, std::string* name) {
  passwd pw;
  std::vector<char> buf;
  passwd* r = ReentrantLookup(
      [uid](passwd* e, char* b, size_t n, passwd** out) { return getpwuid_r(uid, e, b, n, out); },
      &pw, &buf);
  if (r == nullptr || r->pw_name == nullptr) return false;
  *name = r->pw_name;
  return true;
}

bool GroupName(uint32_t gid, std::string* name) {
  group gr;
  std::vector<char> buf;
  group* r = ReentrantLookup(
      [gid](group* e, char* b, size_t n, group** out) { return getgrgid_r(gid, e, b, n, out); },
      &gr, &buf);
  if (r == nullptr || r->gr_name == nullptr) return false;
  *name = r->gr_name;
  return true;
}

bool UidByName(const std::string& name, uint32_t* id) {
  passwd pw;
  std::vector<char> buf;
  passwd* r =
      ReentrantLookup([&name](passwd* e, char* b, size_t n,
                              passwd** out) { return getpwnam_r(name.c_str(), e, b, n, out); },
                      &pw, &buf);
  if (r == nullptr) return false;
  *id = r->pw_uid;
  return true;
}

bool GidByName(const std::string& name, uint32_t* id) {
  group gr;
  std::vector<char> buf;
  group* r =
      ReentrantLookup([&name](group* e, char* b, size_t n,
                              group** out) { return getgrnam_r(name.c_str(), e, b, n, out); },
                      &gr, &buf);
  if (r == nullptr) return false;
  *id = r->gr_gid;
  return true;
}

// The DNS domain of this host: what follows the first dot of its canonical
// name, or "" when it has none.
std::string HostDnsDomain() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) return "";
  std::string name = host;
  if (name.find('.') == std::string::npos) {
    addrinfo hints = {};
    hints.ai_flags = AI_CANONNAME;
    addrinfo* res = nullptr;
    if (getaddrinfo(host, nullptr, &hints, &res) == 0 && res != nullptr) {
      if (res->ai_canonname != nullptr) name = res->ai_canonname;
      freeaddrinfo(res);
    }
  }
  const size_t dot = name.find('.');
  return dot == std::string::npos ? "" : name.substr(dot + 1);
}

// Shared by the user and group directions; `by_name` looks a name up.
uint32_t IdFromString(std::string_view s, std::string_view domain, uint32_t nobody,
                      bool (*by_name)(const std::string&, uint32_t*)) {
  uint32_t id = 0;
  if (ParseDecimal(s, &id)) return id;
  std::string_view name = s;
  const size_t at = s.rfind('@');
  if (at != std::string_view::npos) {
    name = s.substr(0, at);
    if (!EqualsIgnoreCase(s.substr(at + 1), domain)) return nobody;
  }
  if (name.empty() || name == "nobody") return nobody;
  if (name.find('\0') != std::string_view::npos) return nobody;
  if (by_name(std::string(name), &id)) return id;
  // "1000@domain" from a server that maps unknown ids to numbers.
  if (ParseDecimal(name, &id)) return id;
  return nobody;
}

}  // namespace

IdMapper::IdMapper(IdMapperOptions options)
    : numeric_owners_(options.numeric_owners), domain_(std::move(options.domain)) {
  if (domain_.empty() && !options.idmapd_conf.empty()) {
    std::ifstream in(options.idmapd_conf);
    if (in) {
      std::stringstream text;
      text << in.rdbuf();
      domain_ = DomainFromIdmapdConf(text.str());
    }
  }
  if (domain_.empty()) domain_ = HostDnsDomain();
  if (domain_.empty()) domain_ = "localdomain";
}

std::string IdMapper::DomainFromIdmapdConf(std::string_view text) {
  bool in_general = false;
  while (!text.empty()) {
    const size_t eol = text.find('\n');
    std::string_view line = Trim(text.substr(0, eol));
    text.remove_prefix(eol == std::string_view::npos ? text.size() : eol + 1);
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      in_general = EqualsIgnoreCase(line, "[General]");
      continue;
    }
    if (!in_general) continue;
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    if (EqualsIgnoreCase(Trim(line.substr(0, eq)), "Domain")) {
      return std::string(Trim(line.substr(eq + 1)));
    }
  }
  return "";
}

std::string IdMapper::OwnerString(uint32_t uid) const {
  std::string name;
  if (numeric_owners_ || !UserName(uid, &name)) return std::to_string(uid);
  return name + "@" + domain_;
}

std::string IdMapper::GroupString(uint32_t gid) const {
  std::string name;
  if (numeric_owners_ || !GroupName(gid, &name)) return std::to_string(gid);
  return name + "@" + domain_;
}

uint32_t IdMapper::UidFromOwner(std::string_view owner) const {
  return IdFromString(owner, domain_, kNobodyUid, &UidByName);
}

uint32_t IdMapper::GidFromGroup(std::string_view group) const {
  return IdFromString(group, domain_, kNobodyGid, &GidByName);
}

}  // namespace floatmount::nfs
