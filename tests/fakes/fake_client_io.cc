// FakeClient: OPEN/CLOSE, READ/WRITE/COMMIT, locks, the test hooks,
// counters and the completion queue. The server state, permissions and
// namespace operations are in fake_client.cc.
#include <algorithm>
#include <stdexcept>

#include "nfs/v4/protocol.h"
#include "tests/fakes/fake_client.h"

namespace floatmount::fakes {

using nfs::Credentials;
using nfs::FileHandle;
using nfs::FileType;
using nfs::LockType;
using nfs::Result;
using nfs::Status;
using namespace nfs::v4;  // NFS4ERR_*

namespace {

constexpr uint32_t kRead = 4, kWrite = 2, kExec = 1;

void CheckHook(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("FakeClient test hook: " + what);
}

// [first, last] of a lock request; false if the range is empty or wraps.
bool LockRangeOf(uint64_t offset, uint64_t length, uint64_t* first, uint64_t* last) {
  if (length == 0) return false;
  *first = offset;
  if (length == nfs::kLockToEnd) {
    *last = UINT64_MAX;
    return true;
  }
  if (length - 1 > UINT64_MAX - offset) return false;
  *last = offset + length - 1;
  return true;
}

// Whether [a1, b1] and [a2, b2] overlap or are adjacent.
bool Touches(uint64_t a1, uint64_t b1, uint64_t a2, uint64_t b2) {
  return (b1 == UINT64_MAX || a2 <= b1 + 1) && (b2 == UINT64_MAX || a1 <= b2 + 1);
}

bool Overlaps(uint64_t a1, uint64_t b1, uint64_t a2, uint64_t b2) { return a1 <= b2 && a2 <= b1; }

}  // namespace

// The OpenFile handed out by Open: names its state in opens_. Its fields
// are constant; whether it is still open is in opens_ (under mu_).
class FakeClient::FakeOpenFile : public nfs::OpenFile {
 public:
  FakeOpenFile(const FakeClient* client, uint64_t id, FileHandle fh)
      : client_(client), id_(id), fh_(std::move(fh)) {}
  const FileHandle& fh() const override { return fh_; }
  const FakeClient* client() const { return client_; }
  uint64_t id() const { return id_; }

 private:
  const FakeClient* const client_;
  const uint64_t id_;
  const FileHandle fh_;
};

FakeClient::~FakeClient() {
  ReleaseCompletions();
  {
    std::lock_guard lock(cb_mu_);
    stop_ = true;
  }
  cb_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

// ---- open state ----

Result<FakeClient::OpenState*> FakeClient::GetOpen(const nfs::OpenFile* file, const char* op) {
  const auto* fake = dynamic_cast<const FakeOpenFile*>(file);
  if (fake == nullptr || fake->client() != this) return Err(NFS4ERR_BAD_STATEID, op);
  auto it = opens_.find(fake->id());
  if (it == opens_.end()) return Err(NFS4ERR_BAD_STATEID, op, "closed");
  return &it->second;
}

Result<nfs::OpenResult> FakeClient::NewOpen(Inode& n, bool read, bool write, bool created) {
  const uint64_t id = next_open_id_++;
  opens_[id] = OpenState{n.ino, read, write};
  ++n.opens;
  nfs::OpenResult result;
  result.fh = HandleOf(n);
  result.file = std::make_shared<FakeOpenFile>(this, id, result.fh);
  result.attr = AttrsOf(n);
  result.created = created;
  return result;
}

void FakeClient::CloseOpen(uint64_t open_id) {
  auto it = opens_.find(open_id);
  Inode& n = inodes_.at(it->second.ino);
  std::erase_if(n.locks, [&](const LockRange& l) { return l.open_id == open_id; });
  --n.opens;
  opens_.erase(it);
  MaybeFree(n.ino);
}

void FakeClient::Open(const Credentials& cred, const FileHandle& dir, const std::string& name,
                      const nfs::OpenRequest& req, nfs::Callback<nfs::OpenResult> done) {
  Complete(std::move(done), [&]() -> Result<nfs::OpenResult> {
    std::lock_guard lock(mu_);
    Count("OPEN", cred);
    if (!req.read && !req.write) return Err(NFS4ERR_INVAL, "OPEN", name);
    auto d = GetDir(dir, "OPEN");
    if (!d.ok()) return d.status();
    if (Status s = ValidateName(name, "OPEN"); !s.ok()) return s;
    if (!Permits(cred, **d, kExec)) return Err(NFS4ERR_ACCESS, "OPEN", name);
    Inode* n = Child(**d, name);
    if (n != nullptr) {
      if (req.create == nfs::CreateMode::kGuarded || req.create == nfs::CreateMode::kExclusive) {
        return Err(NFS4ERR_EXIST, "OPEN", name);
      }
      if (Status s = CheckRegular(*n, "OPEN"); !s.ok()) return s;
      if ((req.read && !Permits(cred, *n, kRead)) || (req.write && !Permits(cred, *n, kWrite))) {
        return Err(NFS4ERR_ACCESS, "OPEN", name);
      }
      // UNCHECKED4 with size 0 in createattrs truncates too (RFC 8881 18.16.3).
      const bool truncate = req.truncate || (req.create == nfs::CreateMode::kUnchecked &&
                                             req.attrs.size && *req.attrs.size == 0);
      if (truncate) {
        if (!Permits(cred, *n, kWrite)) return Err(NFS4ERR_ACCESS, "OPEN", name);
        if (n->data.size() != 0) {
          SetSize(*n, 0);
          Touch(*n, true);
        }
      }
      auto opened = NewOpen(*n, req.read, req.write, false);
      if (opened.ok() && req.read && req.read_first > 0 && !truncate &&
          req.create == nfs::CreateMode::kNoCreate) {
        // The READ in the OPEN's compound (after its attributes).
        nfs::FirstRead first;
        first.data.resize(std::min<uint64_t>(req.read_first, n->data.size()));
        n->data.Read(0, first.data.data(), first.data.size());
        first.eof = first.data.size() == n->data.size();
        opened->first_read = std::move(first);
      }
      return opened;
    }
    if (req.create == nfs::CreateMode::kNoCreate) return Err(NFS4ERR_NOENT, "OPEN", name);
    if (!Permits(cred, **d, kWrite | kExec)) return Err(NFS4ERR_ACCESS, "OPEN", name);
    if (Status s = CheckCreateAttrs(cred, req.attrs, "OPEN"); !s.ok()) return s;
    NewInode what;
    what.type = FileType::kRegular;
    what.mode = req.attrs.mode.value_or(0644);
    Inode& made = MakeInode(cred, **d, name, what);
    ApplyCreateAttrs(made, req.attrs);
    return NewOpen(made, req.read, req.write, true);  // no r/w check for the creator
  }());
}

void FakeClient::OpenHandle(const Credentials& cred, const FileHandle& fh, bool read, bool write,
                            nfs::Callback<nfs::OpenResult> done) {
  Complete(std::move(done), [&]() -> Result<nfs::OpenResult> {
    std::lock_guard lock(mu_);
    Count("OPEN", cred);
    if (!read && !write) return Err(NFS4ERR_INVAL, "OPEN");
    auto n = Get(fh, "OPEN");
    if (!n.ok()) return n.status();
    if (Status s = CheckRegular(**n, "OPEN"); !s.ok()) return s;
    if ((read && !Permits(cred, **n, kRead)) || (write && !Permits(cred, **n, kWrite))) {
      return Err(NFS4ERR_ACCESS, "OPEN");
    }
    return NewOpen(**n, read, write, false);
  }());
}

void FakeClient::Upgrade(const Credentials& cred, const nfs::OpenFile* file, bool read,
                         bool write, nfs::Callback<nfs::Unit> done) {
  Complete(std::move(done), [&]() -> Result<nfs::Unit> {
    std::lock_guard lock(mu_);
    Count("OPEN", cred);
    auto open = GetOpen(file, "OPEN");
    if (!open.ok()) return open.status();
    auto n = Get(file->fh(), "OPEN");
    if (!n.ok()) return n.status();
    const bool add_read = read && !(*open)->read;
    const bool add_write = write && !(*open)->write;
    if ((add_read && !Permits(cred, **n, kRead)) || (add_write && !Permits(cred, **n, kWrite))) {
      return Err(NFS4ERR_ACCESS, "OPEN");
    }
    (*open)->read |= read;
    (*open)->write |= write;
    return nfs::Unit{};
  }());
}

void FakeClient::Close(const Credentials& cred, std::shared_ptr<nfs::OpenFile> file,
                       nfs::Callback<nfs::Unit> done) {
  Complete(std::move(done), [&]() -> Result<nfs::Unit> {
    std::lock_guard lock(mu_);
    Count("CLOSE", cred);
    if (file == nullptr) return Status::InvalidArgument("CLOSE without a file");
    auto open = GetOpen(file.get(), "CLOSE");
    if (!open.ok()) return open.status();
    CloseOpen(static_cast<const FakeOpenFile*>(file.get())->id());
    return nfs::Unit{};
  }());
}

// ---- I/O ----

Status FakeClient::CheckIo(const Credentials& cred, const Inode& n, const nfs::OpenFile* file,
                           bool write, const char* op) {
  if (Status s = CheckRegular(n, op); !s.ok()) return s;
  if (file == nullptr) {  // the anonymous stateid: plain permission checks
    if (!Permits(cred, n, write ? kWrite : kRead)) return Err(NFS4ERR_ACCESS, op);
    return Status::Ok();
  }
  auto open = GetOpen(file, op);
  if (!open.ok()) return open.status();
  if ((*open)->ino != n.ino) return Err(NFS4ERR_BAD_STATEID, op, "other file");
  if (write && !(*open)->write) return Err(NFS4ERR_OPENMODE, op);
  if (!write && !(*open)->read && !Permits(cred, n, kRead)) return Err(NFS4ERR_OPENMODE, op);
  return Status::Ok();
}

void FakeClient::WriteData(Inode& n, uint64_t offset, const uint8_t* src, uint64_t len,
                           bool stable) {
  n.data.Write(offset, src, len, stable ? nullptr : &n.dirty);
  if (stable) n.disk.Write(offset, src, len, nullptr);
}

void FakeClient::Read(const Credentials& cred, const FileHandle& fh, const nfs::OpenFile* file,
                      uint64_t offset, std::span<uint8_t> dest,
                      nfs::Callback<nfs::ReadResult> done) {
  Complete(std::move(done), [&]() -> Result<nfs::ReadResult> {
    std::lock_guard lock(mu_);
    Count("READ", cred);
    auto n = Get(fh, "READ");
    if (!n.ok()) return n.status();
    if (Status s = CheckIo(cred, **n, file, false, "READ"); !s.ok()) return s;
    uint64_t want = dest.size();
    if (options_.max_read != 0) want = std::min<uint64_t>(want, options_.max_read);
    nfs::ReadResult result;
    result.count = static_cast<uint32_t>((*n)->data.Read(offset, dest.data(), want));
    result.eof = offset + result.count >= (*n)->data.size();
    bytes_read_ += result.count;
    return result;
  }());
}

Result<nfs::WriteResult> FakeClient::WriteLocked(const Credentials& cred, const FileHandle& fh,
                                                 const nfs::OpenFile* file, uint64_t offset,
                                                 std::span<const uint8_t> data,
                                                 nfs::Stability stability) {
  Count("WRITE", cred);
  auto n = Get(fh, "WRITE");
  if (!n.ok()) return n.status();
  if (Status s = CheckIo(cred, **n, file, true, "WRITE"); !s.ok()) return s;
  uint64_t len = data.size();
  if (options_.max_write != 0) len = std::min<uint64_t>(len, options_.max_write);
  if (offset > options_.max_file_size || len > options_.max_file_size - offset) {
    return Err(NFS4ERR_FBIG, "WRITE");
  }
  const bool asked_stable = stability != nfs::Stability::kUnstable || options_.writes_always_stable;
  const nfs::Stability answer =
      asked_stable ? options_.stable_writes_answered : nfs::Stability::kUnstable;
  const bool stable = answer != nfs::Stability::kUnstable;
  if (len > 0) {
    WriteData(**n, offset, data.data(), len, stable);
    Touch(**n, true);
  }
  bytes_written_ += len;
  nfs::WriteResult result;
  result.count = static_cast<uint32_t>(len);
  result.committed = answer;
  result.verifier = VerifierLocked();
  return result;
}

void FakeClient::Write(const Credentials& cred, const FileHandle& fh, const nfs::OpenFile* file,
                       uint64_t offset, std::span<const uint8_t> data, nfs::Stability stability,
                       nfs::Callback<nfs::WriteResult> done) {
  Complete(std::move(done), [&]() -> Result<nfs::WriteResult> {
    std::lock_guard lock(mu_);
    return WriteLocked(cred, fh, file, offset, data, stability);
  }());
}

void FakeClient::WriteThenGetAttr(const Credentials& cred, const FileHandle& fh,
                                  const nfs::OpenFile* file, uint64_t offset,
                                  std::span<const uint8_t> data, nfs::Stability stability,
                                  WriteGetAttrDone done) {
  std::optional<nfs::Attributes> after;
  Result<nfs::WriteResult> written = [&]() -> Result<nfs::WriteResult> {
    std::lock_guard lock(mu_);
    auto w = WriteLocked(cred, fh, file, offset, data, stability);
    if (auto n = Get(fh, "GETATTR"); w.ok() && n.ok()) after = AttrsOf(**n);
    return w;
  }();
  Post([done = std::move(done), written = std::move(written), after]() mutable {
    done(std::move(written), std::move(after));
  });
}

void FakeClient::Commit(const Credentials& cred, const FileHandle& fh, uint64_t offset,
                        uint32_t count, nfs::Callback<nfs::WriteVerifier> done) {
  Complete(std::move(done), [&]() -> Result<nfs::WriteVerifier> {
    std::lock_guard lock(mu_);
    Count("COMMIT", cred);
    auto got = Get(fh, "COMMIT");
    if (!got.ok()) return got.status();
    Inode& n = **got;
    if (Status s = CheckRegular(n, "COMMIT"); !s.ok()) return s;
    for (uint64_t page : n.dirty) n.disk.CopyPage(n.data, page);  // the whole file
    n.disk.set_size_only(n.data.size());
    n.dirty.clear();
    return VerifierLocked();
  }());
}

nfs::WriteVerifier FakeClient::VerifierLocked() const {
  nfs::WriteVerifier v{'f', 'a', 'k', 'e', 0, 0, 0, 0};
  for (int i = 7; i >= 4; --i) v[i] = static_cast<uint8_t>(boot_ >> (8 * (7 - i)));
  return v;
}

void FakeClient::SimulateRestart() {
  std::lock_guard lock(mu_);
  ++boot_;
  for (auto& [ino, n] : inodes_) {
    if (n.type != FileType::kRegular) continue;
    if (n.dirty.empty() && n.data.size() == n.disk.size()) continue;
    for (uint64_t page : n.dirty) n.data.CopyPage(n.disk, page);
    n.data.set_size_only(n.disk.size());
    n.dirty.clear();
    Touch(n, true);
  }
}

// ---- locks ----

std::optional<nfs::LockConflict> FakeClient::FindConflict(const Inode& n, uint64_t owner,
                                                          bool external, LockType type,
                                                          uint64_t first, uint64_t last) const {
  for (const LockRange& l : n.locks) {
    if (l.owner == owner && l.external == external) continue;
    if (!Overlaps(l.first, l.last, first, last)) continue;
    if (l.type == LockType::kRead && type == LockType::kRead) continue;
    nfs::LockConflict c;
    c.type = l.type;
    c.offset = l.first;
    c.length = l.last == UINT64_MAX ? nfs::kLockToEnd : l.last - l.first + 1;
    c.same_client = !l.external;
    if (c.same_client) c.owner = l.owner;
    return c;
  }
  return std::nullopt;
}

void FakeClient::RemoveLockRange(Inode& n, uint64_t owner, bool external, uint64_t first,
                                 uint64_t last) {
  std::vector<LockRange> kept;
  for (const LockRange& l : n.locks) {
    if (l.owner != owner || l.external != external || !Overlaps(l.first, l.last, first, last)) {
      kept.push_back(l);
      continue;
    }
    if (l.first < first) {
      LockRange left = l;
      left.last = first - 1;
      kept.push_back(left);
    }
    if (l.last > last) {
      LockRange right = l;
      right.first = last + 1;
      kept.push_back(right);
    }
  }
  n.locks = std::move(kept);
}

void FakeClient::AddLockRange(Inode& n, LockRange range) {
  for (auto it = n.locks.begin(); it != n.locks.end();) {
    if (it->owner == range.owner && it->external == range.external && it->type == range.type &&
        Touches(it->first, it->last, range.first, range.last)) {
      range.first = std::min(range.first, it->first);
      range.last = std::max(range.last, it->last);
      it = n.locks.erase(it);
    } else {
      ++it;
    }
  }
  n.locks.push_back(range);
}

void FakeClient::Lock(const Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
                      LockType type, uint64_t offset, uint64_t length,
                      nfs::Callback<nfs::Attributes> done) {
  Complete(std::move(done), [&]() -> Result<nfs::Attributes> {
    std::lock_guard lock(mu_);
    Count("LOCK", cred);
    if (file == nullptr) return Status::InvalidArgument("LOCK without an open file");
    auto open = GetOpen(file, "LOCK");
    if (!open.ok()) return open.status();
    if ((type == LockType::kWrite && !(*open)->write) ||
        (type == LockType::kRead && !(*open)->read)) {
      return Err(NFS4ERR_OPENMODE, "LOCK");
    }
    uint64_t first = 0, last = 0;
    if (!LockRangeOf(offset, length, &first, &last)) return Err(NFS4ERR_INVAL, "LOCK");
    Inode& n = inodes_.at((*open)->ino);
    if (FindConflict(n, owner, false, type, first, last)) return Err(NFS4ERR_DENIED, "LOCK");
    RemoveLockRange(n, owner, false, first, last);
    const uint64_t open_id = static_cast<const FakeOpenFile*>(file)->id();
    AddLockRange(n, LockRange{owner, false, open_id, type, first, last});
    return AttrsOf(n);  // as the GETATTR in NFSv4.1's LOCK compound
  }());
}

void FakeClient::Unlock(const Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
                        uint64_t offset, uint64_t length, nfs::Callback<nfs::Unit> done) {
  Complete(std::move(done), [&]() -> Result<nfs::Unit> {
    std::lock_guard lock(mu_);
    Count("LOCKU", cred);
    if (file == nullptr) return Status::InvalidArgument("LOCKU without an open file");
    auto open = GetOpen(file, "LOCKU");
    if (!open.ok()) return open.status();
    uint64_t first = 0, last = 0;
    if (!LockRangeOf(offset, length, &first, &last)) return Err(NFS4ERR_INVAL, "LOCKU");
    RemoveLockRange(inodes_.at((*open)->ino), owner, false, first, last);
    return nfs::Unit{};
  }());
}

void FakeClient::TestLock(const Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
                          LockType type, uint64_t offset, uint64_t length,
                          nfs::Callback<std::optional<nfs::LockConflict>> done) {
  Complete(std::move(done), [&]() -> Result<std::optional<nfs::LockConflict>> {
    std::lock_guard lock(mu_);
    Count("LOCKT", cred);
    if (file == nullptr) return Status::InvalidArgument("LOCKT without an open file");
    auto open = GetOpen(file, "LOCKT");
    if (!open.ok()) return open.status();
    uint64_t first = 0, last = 0;
    if (!LockRangeOf(offset, length, &first, &last)) return Err(NFS4ERR_INVAL, "LOCKT");
    return FindConflict(inodes_.at((*open)->ino), owner, false, type, first, last);
  }());
}

// ---- test hooks ----

FakeClient::Inode* FakeClient::Walk(const std::string& path) const {
  Inode* n = &inodes_.at(root_ino_);
  size_t pos = 0;
  while (n != nullptr && pos < path.size()) {
    size_t end = path.find('/', pos);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    if (n->type != FileType::kDirectory) return nullptr;
    n = Child(*n, part);
  }
  return n;
}

FakeClient::Inode& FakeClient::ParentFor(const std::string& path, std::string* name) {
  std::string p = path;
  while (!p.empty() && p.back() == '/') p.pop_back();
  const size_t slash = p.rfind('/');
  *name = slash == std::string::npos ? p : p.substr(slash + 1);
  CheckHook(!name->empty() && name->size() <= 255, "bad path '" + path + "'");
  Inode* dir = &inodes_.at(root_ino_);
  const std::string parent = slash == std::string::npos ? "" : p.substr(0, slash);
  size_t pos = 0;
  while (pos < parent.size()) {
    size_t end = parent.find('/', pos);
    if (end == std::string::npos) end = parent.size();
    const std::string part = parent.substr(pos, end - pos);
    pos = end + 1;
    if (part.empty() || part == ".") continue;
    Inode* next = Child(*dir, part);
    if (next == nullptr) {
      NewInode what;
      what.type = FileType::kDirectory;
      what.mode = 0755;
      next = &MakeInode(Credentials{}, *dir, part, what);
    }
    CheckHook(next->type == FileType::kDirectory, "'" + part + "' is not a directory");
    dir = next;
  }
  return *dir;
}

FileHandle FakeClient::AddNode(const std::string& path, const NewInode& what, uint32_t uid,
                               uint32_t gid, std::string_view content) {
  std::lock_guard lock(mu_);
  std::string name;
  Inode& dir = ParentFor(path, &name);
  CheckHook(Child(dir, name) == nullptr, "'" + path + "' exists");
  Inode& n = MakeInode(Credentials{uid, gid, {}}, dir, name, what);
  n.uid = uid;
  n.gid = gid;
  n.mode = what.mode & 07777;
  const auto* bytes = reinterpret_cast<const uint8_t*>(content.data());
  WriteData(n, 0, bytes, content.size(), true);
  return HandleOf(n);
}

FileHandle FakeClient::AddFile(const std::string& path, std::string_view content, uint32_t mode,
                               uint32_t uid, uint32_t gid) {
  return AddNode(path, NewInode{FileType::kRegular, mode, {}, 0, 0}, uid, gid, content);
}

FileHandle FakeClient::AddDir(const std::string& path, uint32_t mode, uint32_t uid, uint32_t gid) {
  return AddNode(path, NewInode{FileType::kDirectory, mode, {}, 0, 0}, uid, gid, {});
}

FileHandle FakeClient::AddSymlink(const std::string& path, const std::string& target, uint32_t uid,
                                  uint32_t gid) {
  return AddNode(path, NewInode{FileType::kSymlink, 0777, target, 0, 0}, uid, gid, {});
}

std::optional<FileHandle> FakeClient::Find(const std::string& path) const {
  std::lock_guard lock(mu_);
  const Inode* n = Walk(path);
  if (n == nullptr) return std::nullopt;
  return HandleOf(*n);
}

std::optional<nfs::Attributes> FakeClient::AttrOf(const FileHandle& fh) const {
  std::lock_guard lock(mu_);
  auto n = Get(fh, "hook");
  if (!n.ok()) return std::nullopt;
  return AttrsOf(**n);
}

std::optional<nfs::Attributes> FakeClient::AttrOf(const std::string& path) const {
  auto fh = Find(path);
  return fh ? AttrOf(*fh) : std::nullopt;
}

FakeClient::Inode& FakeClient::MustGet(const FileHandle& fh) const {
  auto n = Get(fh, "hook");
  CheckHook(n.ok(), "stale handle");
  return **n;
}

std::string FakeClient::ContentOf(const FileHandle& fh) const {
  std::lock_guard lock(mu_);
  return MustGet(fh).data.ToString();
}

std::string FakeClient::ContentOf(const std::string& path) const {
  auto fh = Find(path);
  CheckHook(fh.has_value(), "no '" + path + "'");
  return ContentOf(*fh);
}

std::string FakeClient::CommittedContentOf(const FileHandle& fh) const {
  std::lock_guard lock(mu_);
  return MustGet(fh).disk.ToString();
}

bool FakeClient::HasUncommittedData(const FileHandle& fh) const {
  std::lock_guard lock(mu_);
  const Inode& n = MustGet(fh);
  return !n.dirty.empty() || n.data.size() != n.disk.size();
}

size_t FakeClient::open_count(const FileHandle& fh) const {
  std::lock_guard lock(mu_);
  auto n = Get(fh, "hook");
  return n.ok() ? (*n)->opens : 0;
}

size_t FakeClient::open_count() const {
  std::lock_guard lock(mu_);
  return opens_.size();
}

size_t FakeClient::lock_count(const FileHandle& fh) const {
  std::lock_guard lock(mu_);
  auto n = Get(fh, "hook");
  return n.ok() ? (*n)->locks.size() : 0;
}

nfs::WriteVerifier FakeClient::write_verifier() const {
  std::lock_guard lock(mu_);
  return VerifierLocked();
}

void FakeClient::ExternalWrite(const FileHandle& fh, uint64_t offset, std::string_view data) {
  std::lock_guard lock(mu_);
  Inode& n = MustGet(fh);
  CheckHook(n.type == FileType::kRegular, "ExternalWrite to a non-file");
  WriteData(n, offset, reinterpret_cast<const uint8_t*>(data.data()), data.size(), true);
  Touch(n, true);
}

void FakeClient::ExternalWriteWithinOneTick(const FileHandle& fh, uint64_t offset,
                                            std::string_view data) {
  std::lock_guard lock(mu_);
  Inode& n = MustGet(fh);
  CheckHook(n.type == FileType::kRegular, "ExternalWriteWithinOneTick to a non-file");
  WriteData(n, offset, reinterpret_cast<const uint8_t*>(data.data()), data.size(), true);
}

void FakeClient::ExternalWrite(const std::string& path, uint64_t offset, std::string_view data) {
  auto fh = Find(path);
  CheckHook(fh.has_value(), "no '" + path + "'");
  ExternalWrite(*fh, offset, data);
}

void FakeClient::ExternalSetAttr(const FileHandle& fh, const nfs::SetAttributes& attrs) {
  std::lock_guard lock(mu_);
  ApplySetAttr(Credentials{}, MustGet(fh), attrs);
}

void FakeClient::ExternalRemove(const std::string& path) {
  std::lock_guard lock(mu_);
  std::string name;
  Inode& dir = ParentFor(path, &name);
  Status s = DoRemove(Credentials{}, dir, name);
  CheckHook(s.ok(), "remove '" + path + "': " + s.ToString());
}

void FakeClient::ExternalRename(const std::string& from, const std::string& to) {
  std::lock_guard lock(mu_);
  std::string from_name, to_name;
  Inode& from_dir = ParentFor(from, &from_name);
  Inode& to_dir = ParentFor(to, &to_name);
  Status s = DoRename(Credentials{}, from_dir, from_name, to_dir, to_name);
  CheckHook(s.ok(), "rename '" + from + "': " + s.ToString());
}

bool FakeClient::ExternalLock(const FileHandle& fh, LockType type, uint64_t offset, uint64_t length,
                              uint64_t owner) {
  std::lock_guard lock(mu_);
  Inode& n = MustGet(fh);
  uint64_t first = 0, last = 0;
  CheckHook(LockRangeOf(offset, length, &first, &last), "bad lock range");
  if (FindConflict(n, owner, true, type, first, last)) return false;
  RemoveLockRange(n, owner, true, first, last);
  AddLockRange(n, LockRange{owner, true, 0, type, first, last});
  return true;
}

void FakeClient::ExternalUnlock(const FileHandle& fh, uint64_t offset, uint64_t length,
                                uint64_t owner) {
  std::lock_guard lock(mu_);
  uint64_t first = 0, last = 0;
  CheckHook(LockRangeOf(offset, length, &first, &last), "bad lock range");
  RemoveLockRange(MustGet(fh), owner, true, first, last);
}

// ---- counters ----

uint64_t FakeClient::calls(const std::string& op) const {
  std::lock_guard lock(mu_);
  auto it = calls_.find(op);
  return it == calls_.end() ? 0 : it->second;
}

uint64_t FakeClient::total_calls() const {
  std::lock_guard lock(mu_);
  return total_calls_;
}

uint64_t FakeClient::bytes_read() const {
  std::lock_guard lock(mu_);
  return bytes_read_;
}

uint64_t FakeClient::bytes_written() const {
  std::lock_guard lock(mu_);
  return bytes_written_;
}

std::vector<uint32_t> FakeClient::readdir_sizes() const {
  std::lock_guard lock(mu_);
  return readdir_sizes_;
}

Credentials FakeClient::last_credentials() const {
  std::lock_guard lock(mu_);
  return last_cred_;
}

void FakeClient::ResetCounters() {
  std::lock_guard lock(mu_);
  calls_.clear();
  total_calls_ = bytes_read_ = bytes_written_ = 0;
  readdir_sizes_.clear();
}

// ---- completions ----

void FakeClient::Post(std::function<void()> fn) {
  {
    std::lock_guard lock(cb_mu_);
    if (holding_) {
      held_.push_back(std::move(fn));
      return;
    }
  }
  Dispatch(std::move(fn));
}

void FakeClient::Dispatch(std::function<void()> fn) {
  if (!options_.async) {
    fn();
    return;
  }
  {
    std::lock_guard lock(cb_mu_);
    queue_.push_back(std::move(fn));
  }
  cb_cv_.notify_one();
}

void FakeClient::HoldCompletions() {
  std::lock_guard lock(cb_mu_);
  holding_ = true;
}

size_t FakeClient::held_completions() const {
  std::lock_guard lock(cb_mu_);
  return held_.size();
}

void FakeClient::RunHeldCompletion(size_t index) {
  std::function<void()> fn;
  {
    std::lock_guard lock(cb_mu_);
    CheckHook(index < held_.size(), "no held completion " + std::to_string(index));
    fn = std::move(held_[index]);
    held_.erase(held_.begin() + static_cast<ptrdiff_t>(index));
  }
  Dispatch(std::move(fn));
}

void FakeClient::ReleaseCompletions() {
  std::deque<std::function<void()>> held;
  {
    std::lock_guard lock(cb_mu_);
    holding_ = false;
    held.swap(held_);
  }
  for (auto& fn : held) Dispatch(std::move(fn));
}

void FakeClient::WaitIdle() {
  std::unique_lock lock(cb_mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && !running_; });
}

void FakeClient::WorkerLoop() {
  std::unique_lock lock(cb_mu_);
  while (true) {
    cb_cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything ran
    std::function<void()> fn = std::move(queue_.front());
    queue_.pop_front();
    running_ = true;
    lock.unlock();
    fn();
    fn = nullptr;  // drop what the callback captured before reporting idle
    lock.lock();
    running_ = false;
    idle_cv_.notify_all();
  }
}

}  // namespace floatmount::fakes
