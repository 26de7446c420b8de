// FakeClient: server state, permissions and the namespace operations
// (LOOKUP, GETATTR, SETATTR, ACCESS, CREATE, REMOVE, RENAME, LINK,
// READLINK, READDIR, STATFS). Open files, I/O, locks, test hooks and
// completions are in fake_client_io.cc.
#include "tests/fakes/fake_client.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "nfs/v4/protocol.h"

namespace floatmount::fakes {

using nfs::Attributes;
using nfs::Credentials;
using nfs::FileHandle;
using nfs::FileType;
using nfs::Result;
using nfs::SetAttributes;
using nfs::Status;
using namespace nfs::v4;  // NFS4ERR_*

namespace {

constexpr size_t kHandleSize = 16;
constexpr size_t kMaxName = 255;
constexpr uint32_t kRead = 4, kWrite = 2, kExec = 1;

void PutBe64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}

uint64_t GetBe64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

std::array<uint8_t, 8> DirVerifier(uint64_t ino) {
  std::array<uint8_t, 8> v{};
  PutBe64(v.data(), ino * 0x9E3779B97F4A7C15ull | 1);
  return v;
}

}  // namespace

// ---- SparseData ----

uint64_t SparseData::Read(uint64_t offset, uint8_t* dest, uint64_t n) const {
  if (offset >= size_) return 0;
  n = std::min(n, size_ - offset);
  std::memset(dest, 0, n);
  for (uint64_t done = 0; done < n;) {
    const uint64_t pos = offset + done;
    const uint64_t in_page = pos % kPageSize;
    const uint64_t chunk = std::min(n - done, kPageSize - in_page);
    auto it = pages_.find(pos / kPageSize);
    if (it != pages_.end()) std::memcpy(dest + done, it->second.data() + in_page, chunk);
    done += chunk;
  }
  return n;
}

void SparseData::Write(uint64_t offset, const uint8_t* src, uint64_t n,
                       std::set<uint64_t>* touched) {
  for (uint64_t done = 0; done < n;) {
    const uint64_t pos = offset + done;
    const uint64_t index = pos / kPageSize;
    const uint64_t in_page = pos % kPageSize;
    const uint64_t chunk = std::min(n - done, kPageSize - in_page);
    std::vector<uint8_t>& page = pages_[index];
    page.resize(kPageSize);
    std::memcpy(page.data() + in_page, src + done, chunk);
    if (touched != nullptr) touched->insert(index);
    done += chunk;
  }
  size_ = std::max(size_, offset + n);
}

void SparseData::Resize(uint64_t size) {
  if (size < size_) {
    const uint64_t keep = (size + kPageSize - 1) / kPageSize;  // pages with live bytes
    pages_.erase(pages_.lower_bound(keep), pages_.end());
    auto last = pages_.find(size / kPageSize);
    if (size % kPageSize != 0 && last != pages_.end()) {
      std::fill(last->second.begin() + size % kPageSize, last->second.end(), 0);
    }
  }
  size_ = size;
}

void SparseData::CopyPage(const SparseData& from, uint64_t index) {
  auto it = from.pages_.find(index);
  if (it == from.pages_.end()) {
    pages_.erase(index);
  } else {
    pages_[index] = it->second;
  }
}

std::string SparseData::ToString() const {
  std::string s(size_, '\0');
  Read(0, reinterpret_cast<uint8_t*>(s.data()), size_);
  return s;
}

// ---- construction, helpers ----

FakeClient::FakeClient() : FakeClient(Options{}) {}

FakeClient::FakeClient(Options options) : options_(std::move(options)) {
  Inode root;
  root.ino = next_ino_++;
  root.generation = 1;
  root.type = FileType::kDirectory;
  root.mode = options_.root_mode & 07777;
  root.nlink = 2;
  root.uid = options_.root_uid;
  root.gid = options_.root_gid;
  root.atime = root.mtime = root.ctime = Now();
  root.change = ++change_counter_;
  root.parent = root.ino;
  root_ino_ = root.ino;
  root_fh_ = HandleOf(root);
  inodes_.emplace(root.ino, std::move(root));
  if (options_.async) worker_ = std::thread([this] { WorkerLoop(); });
}

Status FakeClient::Err(uint32_t code, const char* op, const std::string& name) {
  return Status::Nfs(code, name.empty() ? std::string(op) : std::string(op) + " " + name);
}

bool FakeClient::InGroup(const Credentials& cred, uint32_t gid) {
  return cred.gid == gid ||
         std::find(cred.groups.begin(), cred.groups.end(), gid) != cred.groups.end();
}

bool FakeClient::Permits(const Credentials& cred, const Inode& n, uint32_t want) {
  if (cred.uid == 0) {
    return (want & kExec) == 0 || n.type == FileType::kDirectory || (n.mode & 0111) != 0;
  }
  uint32_t bits = n.mode & 7;
  if (cred.uid == n.uid) {
    bits = (n.mode >> 6) & 7;
  } else if (InGroup(cred, n.gid)) {
    bits = (n.mode >> 3) & 7;
  }
  return (bits & want) == want;
}

bool FakeClient::MayDelete(const Credentials& cred, const Inode& dir, const Inode& victim) {
  return (dir.mode & S_ISVTX) == 0 || cred.uid == 0 || cred.uid == dir.uid ||
         cred.uid == victim.uid;
}

Status FakeClient::ValidateName(const std::string& name, const char* op) {
  if (name.empty()) return Err(NFS4ERR_INVAL, op);
  if (name.size() > kMaxName) return Err(NFS4ERR_NAMETOOLONG, op, name.substr(0, 32) + "...");
  if (name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    return Err(NFS4ERR_BADNAME, op, name);
  }
  return Status::Ok();
}

Status FakeClient::CheckRegular(const Inode& n, const char* op) {
  switch (n.type) {
    case FileType::kRegular:
      return Status::Ok();
    case FileType::kDirectory:
      return Err(NFS4ERR_ISDIR, op);
    case FileType::kSymlink:
      return Err(NFS4ERR_SYMLINK, op);
    default:
      return Err(NFS4ERR_WRONG_TYPE, op);
  }
}

void FakeClient::Count(const char* op, const Credentials& cred) {
  ++calls_[op];
  ++total_calls_;
  last_cred_ = cred;
}

nfs::Timestamp FakeClient::Now() const {
  if (options_.clock) return options_.clock();
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return nfs::Timestamp{ts.tv_sec, static_cast<uint32_t>(ts.tv_nsec)};
}

void FakeClient::Touch(Inode& n, bool data_changed) {
  n.ctime = Now();
  if (data_changed) n.mtime = n.ctime;
  n.change = ++change_counter_;
}

FileHandle FakeClient::HandleOf(const Inode& n) const {
  uint8_t bytes[kHandleSize];
  PutBe64(bytes, n.ino);
  PutBe64(bytes + 8, n.generation);
  return FileHandle(bytes, sizeof(bytes));
}

Attributes FakeClient::AttrsOf(const Inode& n) const {
  Attributes a;
  a.valid = (Attributes::kRdev << 1) - 1;  // every field
  a.type = n.type;
  a.mode = n.mode;
  a.nlink = n.nlink;
  a.uid = n.uid;
  a.gid = n.gid;
  switch (n.type) {
    case FileType::kRegular:
      a.size = n.data.size();
      a.space_used = n.data.pages() * SparseData::kPageSize;
      break;
    case FileType::kDirectory:
      a.size = a.space_used = SparseData::kPageSize;
      break;
    case FileType::kSymlink:
      a.size = n.target.size();
      break;
    default:
      break;
  }
  a.atime = n.atime;
  a.mtime = n.mtime;
  a.ctime = n.ctime;
  a.change = n.change;
  a.fileid = n.ino;
  a.fsid_major = options_.fsid_major;
  a.fsid_minor = options_.fsid_minor;
  a.rdev_major = n.rdev_major;
  a.rdev_minor = n.rdev_minor;
  return a;
}

Result<FakeClient::Inode*> FakeClient::Get(const FileHandle& fh, const char* op) const {
  if (fh.size() != kHandleSize) return Err(NFS4ERR_BADHANDLE, op);
  auto it = inodes_.find(GetBe64(fh.data()));
  if (it == inodes_.end() || it->second.generation != GetBe64(fh.data() + 8)) {
    return Err(NFS4ERR_STALE, op);
  }
  return &it->second;
}

Result<FakeClient::Inode*> FakeClient::GetDir(const FileHandle& fh, const char* op) const {
  auto n = Get(fh, op);
  if (!n.ok()) return n;
  if ((*n)->type == FileType::kSymlink) return Err(NFS4ERR_SYMLINK, op);
  if ((*n)->type != FileType::kDirectory) return Err(NFS4ERR_NOTDIR, op);
  return n;
}

FakeClient::Inode* FakeClient::Child(const Inode& dir, const std::string& name) const {
  auto it = dir.entries.find(name);
  return it == dir.entries.end() ? nullptr : &inodes_.at(it->second.ino);
}

void FakeClient::AddEntry(Inode& dir, const std::string& name, uint64_t ino) {
  const uint64_t cookie = dir.next_cookie++;
  dir.entries[name] = DirSlot{ino, cookie};
  dir.by_cookie[cookie] = name;
}

void FakeClient::RemoveEntry(Inode& dir, const std::string& name) {
  auto it = dir.entries.find(name);
  dir.by_cookie.erase(it->second.cookie);
  dir.entries.erase(it);
}

FakeClient::Inode& FakeClient::MakeInode(const Credentials& cred, Inode& dir,
                                         const std::string& name, const NewInode& what) {
  Inode n;
  n.ino = next_ino_++;
  n.generation = change_counter_ + 1;
  n.type = what.type;
  n.mode = what.mode & 07777;
  n.uid = cred.uid;
  n.gid = cred.gid;
  if ((dir.mode & S_ISGID) != 0) {  // BSD group semantics of a set-gid directory
    n.gid = dir.gid;
    if (what.type == FileType::kDirectory) n.mode |= S_ISGID;
  }
  n.nlink = what.type == FileType::kDirectory ? 2 : 1;
  n.target = what.target;
  n.rdev_major = what.rdev_major;
  n.rdev_minor = what.rdev_minor;
  n.parent = dir.ino;
  n.atime = n.mtime = n.ctime = Now();
  n.change = ++change_counter_;
  const uint64_t ino = n.ino;
  Inode& made = inodes_.emplace(ino, std::move(n)).first->second;
  AddEntry(dir, name, ino);
  if (what.type == FileType::kDirectory) ++dir.nlink;
  Touch(dir, true);
  return made;
}

void FakeClient::Unlink(Inode& dir, const std::string& name) {
  Inode& victim = *Child(dir, name);
  RemoveEntry(dir, name);
  if (victim.type == FileType::kDirectory) {
    victim.nlink = 0;
    --dir.nlink;
  } else {
    --victim.nlink;
  }
  Touch(victim, false);
  Touch(dir, true);
  MaybeFree(victim.ino);
}

void FakeClient::MaybeFree(uint64_t ino) {
  auto it = inodes_.find(ino);
  if (it != inodes_.end() && it->second.nlink == 0 && it->second.opens == 0) inodes_.erase(it);
}

// ---- SETATTR and create attributes ----

Status FakeClient::CheckSetAttr(const Credentials& cred, const Inode& n, const SetAttributes& a,
                                const OpenState* open, const char* op) {
  const bool owner_or_root = cred.uid == 0 || cred.uid == n.uid;
  if (a.mode && !owner_or_root) return Err(NFS4ERR_PERM, op, "mode");
  if (a.uid && *a.uid != n.uid && cred.uid != 0) return Err(NFS4ERR_PERM, op, "owner");
  if (a.gid && *a.gid != n.gid && cred.uid != 0 && (cred.uid != n.uid || !InGroup(cred, *a.gid))) {
    return Err(NFS4ERR_PERM, op, "group");
  }
  for (SetAttributes::TimeHow how : {a.atime_how, a.mtime_how}) {
    if (how == SetAttributes::TimeHow::kClientTime && !owner_or_root) {
      return Err(NFS4ERR_PERM, op, "time");
    }
    if (how == SetAttributes::TimeHow::kServerTime && !owner_or_root && !Permits(cred, n, kWrite)) {
      return Err(NFS4ERR_ACCESS, op, "time");
    }
  }
  if (a.size) {
    if (n.type == FileType::kDirectory) return Err(NFS4ERR_ISDIR, op);
    if (n.type != FileType::kRegular) return Err(NFS4ERR_INVAL, op, "size");
    if (open != nullptr) {
      if (!open->write) return Err(NFS4ERR_OPENMODE, op, "size");
    } else if (!Permits(cred, n, kWrite)) {
      return Err(NFS4ERR_ACCESS, op, "size");
    }
    if (*a.size > options_.max_file_size) return Err(NFS4ERR_FBIG, op);
  }
  return Status::Ok();
}

void FakeClient::ApplySetAttr(const Credentials& cred, Inode& n, const SetAttributes& a) {
  if (a.empty()) return;
  if (a.size) SetSize(n, *a.size);
  Touch(n, a.size.has_value());
  if (a.uid || a.gid) {
    if (a.uid) n.uid = *a.uid;
    if (a.gid) n.gid = *a.gid;
    if (n.type == FileType::kRegular && !a.mode) {
      n.mode &= ~static_cast<uint32_t>(S_ISUID);
      if ((n.mode & S_IXGRP) != 0) n.mode &= ~static_cast<uint32_t>(S_ISGID);
    }
  }
  if (a.mode) {
    n.mode = *a.mode & 07777;
    if (cred.uid != 0 && !InGroup(cred, n.gid)) n.mode &= ~static_cast<uint32_t>(S_ISGID);
  }
  using How = SetAttributes::TimeHow;
  if (a.atime_how != How::kDontChange) {
    n.atime = a.atime_how == How::kServerTime ? n.ctime : a.atime;
  }
  if (a.mtime_how != How::kDontChange) {
    n.mtime = a.mtime_how == How::kServerTime ? n.ctime : a.mtime;
  }
}

void FakeClient::SetSize(Inode& n, uint64_t size) {
  n.data.Resize(size);
  n.disk.Resize(size);
  const uint64_t live_pages = (size + SparseData::kPageSize - 1) / SparseData::kPageSize;
  n.dirty.erase(n.dirty.lower_bound(live_pages), n.dirty.end());
}

Status FakeClient::CheckCreateAttrs(const Credentials& cred, const SetAttributes& a,
                                    const char* op) {
  if (cred.uid == 0) return Status::Ok();
  if (a.uid && *a.uid != cred.uid) return Err(NFS4ERR_PERM, op, "owner");
  if (a.gid && !InGroup(cred, *a.gid)) return Err(NFS4ERR_PERM, op, "group");
  return Status::Ok();
}

void FakeClient::ApplyCreateAttrs(Inode& n, const SetAttributes& a) {
  if (a.uid) n.uid = *a.uid;
  if (a.gid) n.gid = *a.gid;
  if (a.atime_how == SetAttributes::TimeHow::kClientTime) n.atime = a.atime;
  if (a.mtime_how == SetAttributes::TimeHow::kClientTime) n.mtime = a.mtime;
}

// ---- namespace operations ----

void FakeClient::Lookup(const Credentials& cred, const FileHandle& dir, const std::string& name,
                        nfs::Callback<nfs::Entry> done) {
  Complete(std::move(done), [&]() -> Result<nfs::Entry> {
    std::lock_guard lock(mu_);
    Count("LOOKUP", cred);
    auto d = GetDir(dir, "LOOKUP");
    if (!d.ok()) return d.status();
    if (Status s = ValidateName(name, "LOOKUP"); !s.ok()) return s;
    if (!Permits(cred, **d, kExec)) return Err(NFS4ERR_ACCESS, "LOOKUP", name);
    Inode* child = Child(**d, name);
    if (child == nullptr) return Err(NFS4ERR_NOENT, "LOOKUP", name);
    return nfs::Entry{HandleOf(*child), AttrsOf(*child)};
  }());
}

void FakeClient::GetAttr(const Credentials& cred, const FileHandle& fh,
                         nfs::Callback<Attributes> done) {
  Complete(std::move(done), [&]() -> Result<Attributes> {
    std::lock_guard lock(mu_);
    Count("GETATTR", cred);
    auto n = Get(fh, "GETATTR");
    if (!n.ok()) return n.status();
    return AttrsOf(**n);
  }());
}

void FakeClient::SetAttr(const Credentials& cred, const FileHandle& fh, const SetAttributes& attrs,
                         const nfs::OpenFile* file, nfs::Callback<Attributes> done) {
  Complete(std::move(done), [&]() -> Result<Attributes> {
    std::lock_guard lock(mu_);
    Count("SETATTR", cred);
    auto n = Get(fh, "SETATTR");
    if (!n.ok()) return n.status();
    const OpenState* open = nullptr;
    if (file != nullptr) {
      auto o = GetOpen(file, "SETATTR");
      if (!o.ok()) return o.status();
      if ((*o)->ino != (*n)->ino) return Err(NFS4ERR_BAD_STATEID, "SETATTR");
      open = *o;
    }
    if (Status s = CheckSetAttr(cred, **n, attrs, open, "SETATTR"); !s.ok()) return s;
    ApplySetAttr(cred, **n, attrs);
    return AttrsOf(**n);
  }());
}

void FakeClient::Access(const Credentials& cred, const FileHandle& fh, uint32_t mask,
                        nfs::Callback<uint32_t> done) {
  Complete(std::move(done), [&]() -> Result<uint32_t> {
    std::lock_guard lock(mu_);
    Count("ACCESS", cred);
    auto got = Get(fh, "ACCESS");
    if (!got.ok()) return got.status();
    const Inode& n = **got;
    const bool dir = n.type == FileType::kDirectory;
    uint32_t granted = 0;
    if (Permits(cred, n, kRead)) granted |= nfs::kAccessRead;
    if (Permits(cred, n, kWrite)) granted |= nfs::kAccessModify | nfs::kAccessExtend;
    if (dir && Permits(cred, n, kExec)) granted |= nfs::kAccessLookup;
    if (dir && Permits(cred, n, kWrite | kExec)) granted |= nfs::kAccessDelete;
    if (!dir && Permits(cred, n, kExec)) granted |= nfs::kAccessExecute;
    return granted & mask;
  }());
}

void FakeClient::Create(const Credentials& cred, const FileHandle& dir, const std::string& name,
                        const nfs::CreateRequest& req, nfs::Callback<nfs::Entry> done) {
  Complete(std::move(done), [&]() -> Result<nfs::Entry> {
    std::lock_guard lock(mu_);
    Count("CREATE", cred);
    if (req.type == FileType::kRegular) {
      return Status::InvalidArgument("CREATE of a regular file: use Open");
    }
    auto d = GetDir(dir, "CREATE");
    if (!d.ok()) return d.status();
    if (Status s = ValidateName(name, "CREATE"); !s.ok()) return s;
    if (!Permits(cred, **d, kExec)) return Err(NFS4ERR_ACCESS, "CREATE", name);
    if (Child(**d, name) != nullptr) return Err(NFS4ERR_EXIST, "CREATE", name);
    if (!Permits(cred, **d, kWrite | kExec)) return Err(NFS4ERR_ACCESS, "CREATE", name);
    if (req.type == FileType::kSymlink && req.symlink_target.empty()) {
      return Err(NFS4ERR_INVAL, "CREATE", name);
    }
    if (Status s = CheckCreateAttrs(cred, req.attrs, "CREATE"); !s.ok()) return s;
    NewInode what;
    what.type = req.type;
    what.mode = req.type == FileType::kSymlink     ? 0777
                : req.type == FileType::kDirectory ? req.attrs.mode.value_or(0755)
                                                   : req.attrs.mode.value_or(0644);
    what.target = req.symlink_target;
    if (req.type == FileType::kBlockDevice || req.type == FileType::kCharDevice) {
      what.rdev_major = req.rdev_major;
      what.rdev_minor = req.rdev_minor;
    }
    Inode& n = MakeInode(cred, **d, name, what);
    ApplyCreateAttrs(n, req.attrs);
    return nfs::Entry{HandleOf(n), AttrsOf(n)};
  }());
}

Status FakeClient::DoRemove(const Credentials& cred, Inode& dir, const std::string& name) {
  if (Status s = ValidateName(name, "REMOVE"); !s.ok()) return s;
  if (!Permits(cred, dir, kExec)) return Err(NFS4ERR_ACCESS, "REMOVE", name);
  Inode* victim = Child(dir, name);
  if (victim == nullptr) return Err(NFS4ERR_NOENT, "REMOVE", name);
  if (!Permits(cred, dir, kWrite | kExec)) return Err(NFS4ERR_ACCESS, "REMOVE", name);
  if (!MayDelete(cred, dir, *victim)) return Err(NFS4ERR_PERM, "REMOVE", name);
  if (victim->type == FileType::kDirectory && !victim->entries.empty()) {
    return Err(NFS4ERR_NOTEMPTY, "REMOVE", name);
  }
  Unlink(dir, name);
  return Status::Ok();
}

void FakeClient::Remove(const Credentials& cred, const FileHandle& dir, const std::string& name,
                        nfs::Callback<nfs::Unit> done) {
  Complete(std::move(done), [&]() -> Result<nfs::Unit> {
    std::lock_guard lock(mu_);
    Count("REMOVE", cred);
    auto d = GetDir(dir, "REMOVE");
    if (!d.ok()) return d.status();
    if (Status s = DoRemove(cred, **d, name); !s.ok()) return s;
    return nfs::Unit{};
  }());
}

Status FakeClient::DoRename(const Credentials& cred, Inode& from, const std::string& from_name,
                            Inode& to, const std::string& to_name) {
  const char* op = "RENAME";
  if (Status s = ValidateName(from_name, op); !s.ok()) return s;
  if (Status s = ValidateName(to_name, op); !s.ok()) return s;
  if (!Permits(cred, from, kExec) || !Permits(cred, to, kExec)) {
    return Err(NFS4ERR_ACCESS, op, from_name);
  }
  Inode* src = Child(from, from_name);
  if (src == nullptr) return Err(NFS4ERR_NOENT, op, from_name);
  if (!Permits(cred, from, kWrite | kExec) || !Permits(cred, to, kWrite | kExec)) {
    return Err(NFS4ERR_ACCESS, op, from_name);
  }
  if (!MayDelete(cred, from, *src)) return Err(NFS4ERR_PERM, op, from_name);
  Inode* dst = Child(to, to_name);
  if (dst == src) return Status::Ok();  // the same name, or two links to one file
  const bool src_dir = src->type == FileType::kDirectory;
  if (src_dir) {
    for (uint64_t p = to.ino;; p = inodes_.at(p).parent) {
      if (p == src->ino) return Err(NFS4ERR_INVAL, op, to_name);  // below itself
      if (p == inodes_.at(p).parent) break;                       // the root
    }
    // Its ".." entry changes: Linux wants write permission on it.
    if (&from != &to && !Permits(cred, *src, kWrite)) return Err(NFS4ERR_ACCESS, op, from_name);
  }
  if (dst != nullptr) {
    if (!MayDelete(cred, to, *dst)) return Err(NFS4ERR_PERM, op, to_name);
    const bool dst_dir = dst->type == FileType::kDirectory;
    if (src_dir != dst_dir) return Err(NFS4ERR_EXIST, op, to_name);
    if (dst_dir && !dst->entries.empty()) return Err(NFS4ERR_NOTEMPTY, op, to_name);
    Unlink(to, to_name);
  }
  RemoveEntry(from, from_name);
  AddEntry(to, to_name, src->ino);
  if (src_dir && &from != &to) {
    --from.nlink;
    ++to.nlink;
    src->parent = to.ino;
  }
  Touch(*src, false);
  Touch(from, true);
  if (&to != &from) Touch(to, true);
  return Status::Ok();
}

void FakeClient::Rename(const Credentials& cred, const FileHandle& from_dir,
                        const std::string& from_name, const FileHandle& to_dir,
                        const std::string& to_name, nfs::Callback<nfs::Unit> done) {
  Complete(std::move(done), [&]() -> Result<nfs::Unit> {
    std::lock_guard lock(mu_);
    Count("RENAME", cred);
    auto from = GetDir(from_dir, "RENAME");
    if (!from.ok()) return from.status();
    auto to = GetDir(to_dir, "RENAME");
    if (!to.ok()) return to.status();
    if (Status s = DoRename(cred, **from, from_name, **to, to_name); !s.ok()) return s;
    return nfs::Unit{};
  }());
}

void FakeClient::Link(const Credentials& cred, const FileHandle& fh, const FileHandle& dir,
                      const std::string& name, nfs::Callback<Attributes> done) {
  Complete(std::move(done), [&]() -> Result<Attributes> {
    std::lock_guard lock(mu_);
    Count("LINK", cred);
    auto n = Get(fh, "LINK");
    if (!n.ok()) return n.status();
    auto d = GetDir(dir, "LINK");
    if (!d.ok()) return d.status();
    if (Status s = ValidateName(name, "LINK"); !s.ok()) return s;
    if ((*n)->type == FileType::kDirectory) return Err(NFS4ERR_ISDIR, "LINK", name);
    if (!Permits(cred, **d, kExec)) return Err(NFS4ERR_ACCESS, "LINK", name);
    if (Child(**d, name) != nullptr) return Err(NFS4ERR_EXIST, "LINK", name);
    if (!Permits(cred, **d, kWrite | kExec)) return Err(NFS4ERR_ACCESS, "LINK", name);
    if ((*n)->nlink == 0) return Err(NFS4ERR_NOENT, "LINK", name);  // removed, still open
    AddEntry(**d, name, (*n)->ino);
    ++(*n)->nlink;
    Touch(**n, false);
    Touch(**d, true);
    return AttrsOf(**n);
  }());
}

void FakeClient::ReadLink(const Credentials& cred, const FileHandle& fh,
                          nfs::Callback<std::string> done) {
  Complete(std::move(done), [&]() -> Result<std::string> {
    std::lock_guard lock(mu_);
    Count("READLINK", cred);
    auto n = Get(fh, "READLINK");
    if (!n.ok()) return n.status();
    if ((*n)->type != FileType::kSymlink) return Err(NFS4ERR_INVAL, "READLINK");
    if (!Permits(cred, **n, kRead)) return Err(NFS4ERR_ACCESS, "READLINK");
    return (*n)->target;
  }());
}

void FakeClient::ReadDir(const Credentials& cred, const FileHandle& dir, uint64_t cookie,
                         const std::array<uint8_t, 8>& verifier, uint32_t max_bytes,
                         nfs::Callback<nfs::DirPage> done) {
  Complete(std::move(done), [&]() -> Result<nfs::DirPage> {
    std::lock_guard lock(mu_);
    Count("READDIR", cred);
    readdir_sizes_.push_back(max_bytes);
    auto got = GetDir(dir, "READDIR");
    if (!got.ok()) return got.status();
    const Inode& d = **got;
    if (!Permits(cred, d, kRead)) return Err(NFS4ERR_ACCESS, "READDIR");
    nfs::DirPage page;
    page.cookie_verifier = DirVerifier(d.ino);
    if (cookie != 0) {
      if (verifier != page.cookie_verifier) return Err(NFS4ERR_NOT_SAME, "READDIR");
      if (cookie < 3 || cookie >= d.next_cookie) return Err(NFS4ERR_BAD_COOKIE, "READDIR");
    }
    uint64_t used = 0;
    auto it = d.by_cookie.upper_bound(cookie);
    for (; it != d.by_cookie.end(); ++it) {
      const uint64_t cost = it->second.size() + 100;
      if (used + cost > max_bytes) {
        if (page.entries.empty()) return Err(NFS4ERR_TOOSMALL, "READDIR");
        break;
      }
      used += cost;
      const Inode& child = inodes_.at(d.entries.at(it->second).ino);
      page.entries.push_back(nfs::DirEntry{it->second, it->first, HandleOf(child), AttrsOf(child)});
    }
    page.eof = it == d.by_cookie.end();
    return page;
  }());
}

void FakeClient::StatFs(const Credentials& cred, const FileHandle& fh,
                        nfs::Callback<nfs::FsStats> done) {
  Complete(std::move(done), [&]() -> Result<nfs::FsStats> {
    std::lock_guard lock(mu_);
    Count("STATFS", cred);
    auto n = Get(fh, "STATFS");
    if (!n.ok()) return n.status();
    uint64_t used = 0;
    for (const auto& [ino, inode] : inodes_) used += AttrsOf(inode).space_used;
    nfs::FsStats st;
    st.space_total = options_.space_total;
    st.space_free = st.space_avail = options_.space_total - std::min(used, options_.space_total);
    st.files_total = options_.files_total;
    st.files_free = st.files_avail =
        options_.files_total - std::min<uint64_t>(inodes_.size(), options_.files_total);
    return st;
  }());
}

}  // namespace floatmount::fakes
