#include "agent/client_identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

namespace floatmount::agent {
namespace {

std::string NewUuid() {
  std::random_device rd;
  uint8_t b[16];
  for (auto& x : b) x = static_cast<uint8_t>(rd());
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  char out[37];
  snprintf(out, sizeof(out),
           "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
           b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
           b[15]);
  return out;
}

bool MakeDirs(const std::string& path) {
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos == path.size() || path[pos] == '/') {
      const std::string part = path.substr(0, pos);
      if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return false;
    }
  }
  return true;
}

}  // namespace

nfs::Result<std::string> LoadOrCreateNodeId(const std::string& state_dir) {
  const std::string path = state_dir + "/node-id";
  {
    std::ifstream in(path);
    std::string id;
    if (in && std::getline(in, id) && id.size() >= 16) return id;
  }
  if (!MakeDirs(state_dir)) {
    return nfs::Status::InvalidArgument("cannot create the state directory " + state_dir + ": " +
                                        std::strerror(errno));
  }
  const std::string id = NewUuid();
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  {
    std::ofstream out(tmp);
    out << id << "\n";
    if (!out) {
      return nfs::Status::InvalidArgument("cannot write " + tmp + ": " + std::strerror(errno));
    }
  }
  if (link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    const int err = errno;
    unlink(tmp.c_str());
    return nfs::Status::InvalidArgument("cannot create " + path + ": " + std::strerror(err));
  }
  unlink(tmp.c_str());
  std::ifstream in(path);  // whoever created it first wins
  std::string stored;
  std::getline(in, stored);
  return stored;
}

std::string OwnerIdFor(const std::string& node_id, const std::string& mountpoint) {
  return "floatmount/" + node_id + "/" + mountpoint;
}

std::array<uint8_t, 8> NewBootVerifier() {
  std::random_device rd;
  std::array<uint8_t, 8> v;
  for (auto& b : v) b = static_cast<uint8_t>(rd());
  return v;
}

}  // namespace floatmount::agent
