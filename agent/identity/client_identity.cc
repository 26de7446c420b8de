#include "agent/identity/client_identity.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

namespace floatmount::agent {
namespace {

constexpr const char* kFingerprintKey = "fingerprint=";

std::string NewUuid() {
  std::random_device rd;
  uint8_t b[16];
  for (auto& x : b) x = static_cast<uint8_t>(rd());
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  char out[37];
  snprintf(out, sizeof(out), "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
           b[14], b[15]);
  return out;
}

std::string Trim(const std::string& s) {
  size_t begin = 0, end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return s.substr(begin, end - begin);
}

// The trimmed, lower-cased start of a file; "" if it cannot be read.
std::string ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::string text(4096, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  for (auto& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return Trim(text);
}

nfs::Status Failed(const std::string& what, const std::string& path, int err) {
  return nfs::Status::InvalidArgument("cannot " + what + " " + path + ": " + std::strerror(err));
}

// Creates `dir` (0700) and any missing parents (0755).
bool MakeDirs(const std::string& dir) {
  for (size_t pos = 1; pos <= dir.size(); ++pos) {
    if (pos == dir.size() || dir[pos] == '/') {
      const std::string part = dir.substr(0, pos);
      if (mkdir(part.c_str(), pos == dir.size() ? 0700 : 0755) != 0 && errno != EEXIST) {
        return false;
      }
    }
  }
  return true;
}

// The state directory, open and locked (flock) until destroyed.
class LockedDir {
 public:
  ~LockedDir() {
    if (fd_ >= 0) close(fd_);
  }
  nfs::Status Open(const std::string& dir) {
    if (!MakeDirs(dir)) return Failed("create the state directory", dir, errno);
    fd_ = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd_ < 0) return Failed("open the state directory", dir, errno);
    if (flock(fd_, LOCK_EX) != 0) return Failed("lock the state directory", dir, errno);
    return nfs::Status::Ok();
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// What `path` holds: nothing (ENOENT or an unusable ID), or the ID and the
// fingerprint it was stored with ("" if none).
struct Stored {
  std::string id;
  std::string fingerprint;
};
nfs::Result<Stored> ReadIdFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return Stored{};
    return Failed("read", path, errno);
  }
  std::string text(4096, '\0');
  const ssize_t n = read(fd, text.data(), text.size());
  const int err = errno;
  close(fd);
  if (n < 0) return Failed("read", path, err);
  text.resize(static_cast<size_t>(n));
  Stored s;
  const size_t eol = text.find('\n');
  s.id = Trim(text.substr(0, eol));
  const std::string second =
      eol == std::string::npos ? "" : text.substr(eol + 1, text.find('\n', eol + 1) - eol - 1);
  if (second.rfind(kFingerprintKey, 0) == 0) {
    s.fingerprint = Trim(second.substr(std::strlen(kFingerprintKey)));
  }
  bool usable = s.id.size() >= 16 && s.id.size() <= 512;
  for (char ch : s.id) usable = usable && std::isgraph(static_cast<unsigned char>(ch));
  if (!usable) return Stored{};  // damaged: as if absent
  return s;
}

// Replaces `path` (in the locked directory) atomically: temp, fsync, rename.
nfs::Status WriteIdFile(const LockedDir& dir, const std::string& path, const Stored& s) {
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  const std::string text = s.id + "\n" + kFingerprintKey + s.fingerprint + "\n";
  unlink(tmp.c_str());
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return Failed("create", tmp, errno);
  const bool written =
      write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && fsync(fd) == 0;
  const int err = errno;
  close(fd);
  if (!written || rename(tmp.c_str(), path.c_str()) != 0) {
    const int rename_err = written ? errno : err;
    unlink(tmp.c_str());
    return Failed("write", path, rename_err);
  }
  fsync(dir.fd());  // make the rename durable
  return nfs::Status::Ok();
}

}  // namespace

IdentityOptions IdentityOptionsFor(const MountConfig& c) {
  return IdentityOptions{c.state_dir, c.machine_id_file, c.product_uuid_file, c.client_id};
}

std::string Fnv1a64Hex(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV offset basis
  for (unsigned char b : bytes) {
    h ^= b;
    h *= 0x100000001b3ull;  // FNV prime
  }
  char out[17];
  snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return out;
}

MachineFingerprint ComputeFingerprint(const std::string& machine_id_file,
                                      const std::string& product_uuid_file) {
  MachineFingerprint f;
  f.machine_id_file = machine_id_file;
  f.product_uuid_file = product_uuid_file;
  const std::string machine_id = ReadSmallFile(machine_id_file);
  const std::string product_uuid = ReadSmallFile(product_uuid_file);
  f.machine_id_read = !machine_id.empty();
  f.product_uuid_read = !product_uuid.empty();
  f.value =
      "fnv1a64:" + Fnv1a64Hex("machine-id=" + machine_id + "\nproduct-uuid=" + product_uuid + "\n");
  return f;
}

nfs::Result<NodeIdentity> LoadNodeIdentity(const IdentityOptions& options) {
  NodeIdentity identity;
  if (!options.pinned_id.empty()) {
    identity.node_id = options.pinned_id;
    identity.source = IdSource::kPinned;
    return identity;
  }
  LockedDir dir;
  if (auto status = dir.Open(options.state_dir); !status.ok()) return status;
  identity.id_file = options.state_dir + "/node-id";
  identity.fingerprint = ComputeFingerprint(options.machine_id_file, options.product_uuid_file);
  auto stored = ReadIdFile(identity.id_file);
  if (!stored.ok()) return stored.status();
  if (stored->id.empty()) {
    identity.source = IdSource::kGenerated;
  } else if (stored->fingerprint.empty()) {
    identity.source = IdSource::kLoaded;
    identity.fingerprint_added = true;
  } else if (stored->fingerprint == identity.fingerprint.value) {
    identity.source = IdSource::kLoaded;
    identity.node_id = stored->id;
    return identity;
  } else {
    identity.source = IdSource::kRegenerated;
  }
  identity.node_id = identity.source == IdSource::kLoaded ? stored->id : NewUuid();
  auto written =
      WriteIdFile(dir, identity.id_file, Stored{identity.node_id, identity.fingerprint.value});
  if (!written.ok()) return written;
  return identity;
}

std::vector<std::string> DescribeIdentity(const NodeIdentity& identity) {
  if (identity.source == IdSource::kPinned) {
    return {"source: pinned by the client_id option; the state directory is not used"};
  }
  std::vector<std::string> lines;
  switch (identity.source) {
    case IdSource::kGenerated:
      lines.push_back("source: generated now and stored in " + identity.id_file);
      break;
    case IdSource::kLoaded:
      lines.push_back("source: loaded from " + identity.id_file +
                      (identity.fingerprint_added ? " (it had no machine fingerprint; added now)"
                                                  : " (machine fingerprint matches)"));
      break;
    case IdSource::kRegenerated:
      lines.push_back("source: cloned state detected: " + identity.id_file +
                      " was made on a machine with another fingerprint, so a new ID was "
                      "generated and stored");
      break;
    case IdSource::kPinned:
      break;
  }
  const MachineFingerprint& f = identity.fingerprint;
  auto part = [](const std::string& path, bool read) {
    return path + (read ? "" : " (unreadable or empty)");
  };
  lines.push_back("fingerprint: " + f.value + " of " + part(f.machine_id_file, f.machine_id_read) +
                  " and " + part(f.product_uuid_file, f.product_uuid_read));
  if (!f.machine_id_read && !f.product_uuid_read) {
    lines.push_back(
        "note: neither fingerprint file could be read, so a copied state "
        "directory cannot be detected; set machine_id_file or product_uuid_file");
  }
  return lines;
}

std::string OwnerIdFor(const std::string& node_id, const std::string& mountpoint) {
  return "floatmount/" + node_id + "/" + mountpoint;
}

std::array<uint8_t, 8> NewBootVerifier() {
  std::random_device rd;
  std::array<uint8_t, 8> v;
  for (size_t i = 0; i < v.size(); i += 4) {
    const uint32_t r = rd();
    std::memcpy(v.data() + i, &r, 4);
  }
  return v;
}

}  // namespace floatmount::agent
