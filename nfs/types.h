// The project's own NFS value types: what nfs::Client callers (fuse/, the
// CLI, tests) see. Nothing here is an XDR type; the engine translates.
//
// Thread-safety: plain value types.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace floatmount::nfs {

// An opaque NFS file handle (at most 128 bytes, NFS4_FHSIZE).
class FileHandle {
 public:
  static constexpr size_t kMaxSize = 128;
  FileHandle() = default;
  FileHandle(const uint8_t* data, size_t size) : bytes_(data, data + size) {}
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return bytes_.size(); }
  bool empty() const { return bytes_.empty(); }
  bool operator==(const FileHandle& other) const = default;
  // Hex form, for debug logs only.
  std::string ToHex() const;

 private:
  std::vector<uint8_t> bytes_;
};

// Who makes a call: sent as AUTH_SYS on every RPC (RFC 5531 appendix A).
struct Credentials {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> groups;  // supplementary groups; at most 16 are sent
  bool operator==(const Credentials&) const = default;
};

enum class FileType : uint8_t {
  kRegular = 1,
  kDirectory = 2,
  kBlockDevice = 3,
  kCharDevice = 4,
  kSymlink = 5,
  kSocket = 6,
  kFifo = 7,
};

struct Timestamp {
  int64_t seconds = 0;
  uint32_t nanoseconds = 0;
  bool operator==(const Timestamp&) const = default;
};

// File attributes. `valid` says which fields the server returned.
struct Attributes {
  enum Field : uint32_t {
    kType = 1u << 0,
    kMode = 1u << 1,
    kNlink = 1u << 2,
    kUid = 1u << 3,
    kGid = 1u << 4,
    kSize = 1u << 5,
    kSpaceUsed = 1u << 6,
    kAtime = 1u << 7,
    kMtime = 1u << 8,
    kCtime = 1u << 9,
    kChange = 1u << 10,
    kFileId = 1u << 11,
    kFsid = 1u << 12,
    kRdev = 1u << 13,
  };
  uint32_t valid = 0;
  FileType type = FileType::kRegular;
  uint32_t mode = 0;  // permission bits and set-id/sticky bits only (07777)
  uint32_t nlink = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t size = 0;
  uint64_t space_used = 0;
  Timestamp atime;
  Timestamp mtime;
  Timestamp ctime;  // time_metadata
  uint64_t change = 0;
  uint64_t fileid = 0;
  uint64_t fsid_major = 0;
  uint64_t fsid_minor = 0;
  uint32_t rdev_major = 0;
  uint32_t rdev_minor = 0;

  bool Has(Field f) const { return (valid & f) != 0; }
};

// Attributes to change (SETATTR, or the attributes of a create).
struct SetAttributes {
  enum class TimeHow : uint8_t { kDontChange, kServerTime, kClientTime };
  std::optional<uint64_t> size;
  std::optional<uint32_t> mode;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  TimeHow atime_how = TimeHow::kDontChange;
  Timestamp atime;
  TimeHow mtime_how = TimeHow::kDontChange;
  Timestamp mtime;
  bool empty() const {
    return !size && !mode && !uid && !gid && atime_how == TimeHow::kDontChange &&
           mtime_how == TimeHow::kDontChange;
  }
};

// For statfs.
struct FsStats {
  uint64_t space_total = 0;
  uint64_t space_free = 0;
  uint64_t space_avail = 0;
  uint64_t files_total = 0;
  uint64_t files_free = 0;
  uint64_t files_avail = 0;
};

// A name in a directory with the attributes that came with it.
struct Entry {
  FileHandle fh;
  Attributes attr;
};

struct DirEntry {
  std::string name;
  uint64_t cookie = 0;  // pass back to continue after this entry
  FileHandle fh;        // may be empty if the server did not return one
  Attributes attr;
};

struct DirPage {
  std::vector<DirEntry> entries;
  std::array<uint8_t, 8> cookie_verifier{};
  bool eof = false;
};

// The server's write verifier: changes when the server loses uncommitted data.
using WriteVerifier = std::array<uint8_t, 8>;

enum class Stability : uint8_t { kUnstable = 0, kDataSync = 1, kFileSync = 2 };

struct WriteResult {
  uint32_t count = 0;
  Stability committed = Stability::kUnstable;
  WriteVerifier verifier{};
};

// The default largest READ (rsize), the same for NFSv4.1, NFSv3 and the
// engine's `cp`: 512 KiB, half the usual server maximum, chosen by
// measurement (tests/bench/README.md, "READ size"). nfs-ganesha on glibc
// takes each 1 MiB READ's reply buffer from a fresh mapping, a page fault
// per 4 KiB, and so spent 2.5 s of CPU per GiB served at 1 MiB against
// 0.5 s at 512 KiB (or 256 or 768 KiB): cold sequential reads ran 3x as
// fast with these 2 cores shared. A chunk of read-ahead (1 MiB) goes out
// as its READs at once, so the smaller size costs no round trip.
inline constexpr uint32_t kDefaultRsize = 512u << 10;

struct ReadResult {
  uint32_t count = 0;  // bytes placed in the caller's buffer
  bool eof = false;
};

// ACCESS bits (RFC 8881 18.1).
enum AccessBits : uint32_t {
  kAccessRead = 0x01,
  kAccessLookup = 0x02,
  kAccessModify = 0x04,
  kAccessExtend = 0x08,
  kAccessDelete = 0x10,
  kAccessExecute = 0x20,
};

// What a create makes (CREATE op; regular files go through Open).
struct CreateRequest {
  FileType type = FileType::kDirectory;
  std::string symlink_target;  // kSymlink
  uint32_t rdev_major = 0;     // kBlockDevice / kCharDevice
  uint32_t rdev_minor = 0;
  SetAttributes attrs;  // mode etc.
};

enum class CreateMode : uint8_t {
  kNoCreate,   // open an existing file
  kUnchecked,  // create or open
  kGuarded,    // create; fail with EXIST if present (O_EXCL)
  kExclusive,  // EXCLUSIVE4_1: create with a verifier; safe to retry
};

struct OpenRequest {
  bool read = true;
  bool write = false;
  CreateMode create = CreateMode::kNoCreate;
  SetAttributes attrs;  // on create: mode (and uid/gid where allowed)
  bool truncate = false;  // O_TRUNC: sets size 0 in the same compound
  // Opening an existing file to read it: READ this many bytes from offset 0
  // in the OPEN's own compound (0: none). A small file then needs no READ
  // round trip of its own. Ignored with create or truncate, and by NFSv3.
  uint32_t read_first = 0;
};


// POSIX byte-range locks (NFSv4 LOCK/LOCKU/LOCKT, RFC 8881 9, 18.10-18.12).
enum class LockType : uint8_t { kRead, kWrite };
// A length of kLockToEnd covers everything from the offset on.
inline constexpr uint64_t kLockToEnd = UINT64_MAX;

// A lock that stands in the way, as far as the server tells.
struct LockConflict {
  LockType type = LockType::kWrite;
  uint64_t offset = 0;
  uint64_t length = 0;
  bool same_client = false;  // held through this client (another local owner)
  uint64_t owner = 0;        // with same_client: that local owner
};

}  // namespace floatmount::nfs
