// FileSystem: names and attributes (lookup, getattr/setattr, create and
// remove of names). I/O is in file_system_io.cc, directories in
// file_system_dir.cc. See file_system.h.
#include "fuse/file_system.h"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <memory>

#include "fuse/cache/cache_budget.h"
#include "fuse/errno_map.h"
#include "fuse/file_system_state.h"
#include "fuse/set_id_bits.h"

namespace floatmount::fuse {

FileSystem::FileSystem(nfs::Client* client, FsOptions options)
    : client_(client),
      options_(options),
      budget_(std::make_shared<CacheBudget>(
          options.cache_size != 0 ? options.cache_size : CacheBudget::DefaultBytes(), kChunkSize)),
      counters_(std::make_shared<CacheCounters>()),
      inodes_(client->root()) {
  budget_->SetPressureHook([this] { RelieveCaches(); });
  budget_->SetScheduler([this](std::chrono::milliseconds delay, std::function<void()> fn) {
    budget_queue_.Schedule(delay, std::move(fn));
  });
  writeback_timer_.Schedule(kTickInterval, [this] { TickCaches(); });
}

FileSystem::~FileSystem() {
  // Buffers (and so the budget) may outlive this: no more grants through
  // budget_queue_, which goes with this object.
  budget_->SetScheduler({});
}

EntryOut FileSystem::MakeEntry(const nfs::Entry& entry, InodeId parent, const std::string& name,
                               std::optional<uint64_t> stamp, InodeTable::SendMark sent,
                               bool* overlapped, std::optional<InodeTable::Name>* moved) {
  EntryOut out;
  InodeTable::Applied applied;
  out.ino = inodes_.Learn(entry.fh, entry.attr, sent, &applied);
  if (overlapped) *overlapped = applied.overlapped;
  auto before = inodes_.Named(out.ino, parent, name);
  if (moved) *moved = std::move(before);
  missing_.Forget(parent, name);
  out.attr = entry.attr;
  ApplyPendingSize(out.ino, stamp, &out.attr);
  out.attr_timeout = options_.attr_timeout;
  out.entry_timeout = options_.entry_timeout;
  return out;
}

void FileSystem::Lookup(const nfs::Credentials& cred, InodeId parent, const std::string& name,
                        Reply<EntryOut> reply) {
  auto dir = HandleOf(parent);
  if (!dir) return reply(ESTALE, {});
  if (name.size() > 255) return reply(ENAMETOOLONG, {});
  const bool negative_entries = options_.negative_entries && options_.entry_timeout > 0;
  if (negative_entries) {
    if (auto left = missing_.Missing(parent, name, NegativeNames::Clock::now())) {
      EntryOut negative;  // no longer than the server's answer may be trusted
      negative.entry_timeout = std::chrono::duration<double>(*left).count();
      return reply(0, negative);
    }
  }
  if (LookupListed(cred, parent, *dir, name, reply)) return;
  const uint64_t stamp = missing_.Stamp();
  const uint64_t size_stamp = SizeStamp();
  const auto sent = inodes_.Mark();
  client_->Lookup(cred, *dir, name,
                  [this, cred, parent, dir = *dir, name, negative_entries, stamp, size_stamp, sent,
                   reply](nfs::Result<nfs::Entry> r) {
    if (!r.ok()) {
      const int err = ErrnoFromStatus(r.status());
      if (err == ENOENT && negative_entries) {
        // The kernel remembers the absence for entry_timeout, as it does
        // a name that exists: a repeated stat of it costs no round trip.
        // Remembered here for no longer than there (the kernel's clock
        // starts when it gets the reply, after this one).
        const auto timeout = std::chrono::duration<double>(options_.entry_timeout);
        missing_.Remember(parent, name,
                          NegativeNames::Clock::now() +
                              std::chrono::duration_cast<NegativeNames::Clock::duration>(timeout),
                          stamp);
        EntryOut negative;
        negative.entry_timeout = options_.entry_timeout;
        return reply(0, negative);
      }
      return reply(err, {});
    }
    bool overlapped = false;
    std::optional<InodeTable::Name> moved;
    EntryOut out = MakeEntry(*r, parent, name, size_stamp, sent, &overlapped, &moved);
    LookupFound(cred, parent, dir);
    if (!moved) return ReplyOverlapped(out.ino, overlapped, reply, std::move(out));
    ForgetMovedDirectoryThen(*moved, [this, overlapped, reply, out = std::move(out)]() mutable {
      ReplyOverlapped(out.ino, overlapped, reply, std::move(out));
    });
  });
}

// Another client moved a directory this mount knew: the kernel still has
// it under its old name, and a directory may have one dentry only. Its
// lookup under the new name then moves that dentry, which it cannot do in
// a rename across directories (the rename holds the lock it needs): the
// rename fails with ESTALE, and again when the kernel retries it (the
// names torture, two mounts taking turns). So the old name goes from the
// kernel first. If the kernel holds that name's directory locked (the
// rename's own), dropping it waits for the rename: the answer then goes
// after kMovedDirectoryWait anyway, as before.
void FileSystem::ForgetMovedDirectoryThen(const InodeTable::Name& old, std::function<void()> then) {
  if (!invalidate_kernel_entry_) return then();
  constexpr auto kMovedDirectoryWait = std::chrono::milliseconds(20);
  auto once = std::make_shared<std::atomic<bool>>(false);
  auto run = [once, then = std::move(then)] {
    if (!once->exchange(true)) then();
  };
  entry_queue_.Schedule(std::chrono::milliseconds(0), [this, old, run] {
    invalidate_kernel_entry_(old.parent, old.name);
    run();
  });
  coherence_queue_.Schedule(kMovedDirectoryWait, run);
}

void FileSystem::Forget(InodeId ino, uint64_t count) {
  const auto name = inodes_.NameOf(ino);
  const auto fh = inodes_.Handle(ino);
  inodes_.Forget(ino, count);
  if (!inodes_.Handle(ino)) written_->Forget(ino);
  // Gone from the table, so a listing would hand it out again with what
  // may be older attributes than this mount last had: ask the server.
  if (name && fh && !inodes_.Knows(*fh)) listings_.Forget(name->parent, name->name);
}

// Answered from the attributes of the file's OPEN when they are still
// fresh (within attr_timeout, and nothing changed through this mount
// since: InodeTable::FreshAttributes) and nobody here has it open to write.
// The kernel asks again for them after a read through it only because
// the read may have changed the atime (fuse_invalidate_atime): `cat f;
// stat f` and the fstat of a reopened file would each cost a round trip.
// Likewise from a SETATTR's reply, also while the file is open to write
// until its next write: the kernel asks before each chown only to refresh
// the set-ID bits it may clear (fuse_setattr), and tar sets the times, the
// owner and the mode of each file it writes, one after the other.
// Another client's change shows after attr_timeout, as for any attribute.
void FileSystem::GetAttr(const nfs::Credentials& cred, InodeId ino, Reply<AttrOut> reply) {
  auto fh = HandleOf(ino);
  if (!fh) return reply(ESTALE, {});
  const uint64_t stamp = SizeStamp();
  if (auto fresh = inodes_.FreshAttributes(ino, InodeTable::Clock::now(), OpenForWriting(ino))) {
    AttrOut out{fresh->attr, std::min(options_.attr_timeout,
                                      std::chrono::duration<double>(fresh->left).count())};
    ApplyPendingSize(ino, stamp, &out.attr);
    return reply(0, std::move(out));
  }
  const auto sent = inodes_.Mark();
  client_->GetAttr(cred, *fh, [this, ino, stamp, sent, reply](nfs::Result<nfs::Attributes> r) {
    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
    const bool overlapped = inodes_.UpdateAttributes(ino, *r, sent).overlapped;
    AttrOut out{*r, options_.attr_timeout};
    ApplyPendingSize(ino, stamp, &out.attr);
    ReplyOverlapped(ino, overlapped, reply, std::move(out));
  });
}

void FileSystem::SetAttr(const nfs::Credentials& cred, InodeId ino,
                         const nfs::SetAttributes& requested, uint64_t handle,
                         Reply<AttrOut> reply) {
  auto fh = HandleOf(ino);
  if (!fh) return reply(ESTALE, {});
  reply = Changing(std::move(reply));
  nfs::SetAttributes attrs = requested;
  // The kernel's own kill of the set-ID bits before a non-owner's write or
  // truncate: the server would refuse it and fail the write; its write
  // clears the bits instead (set_id_bits.h). The attributes are fresh: the
  // kernel fetched them just before.
  const auto known = inodes_.Attributes(ino);
  if (attrs.mode && known && IsSetIdKillTheServerRefuses(cred, *known, *attrs.mode)) {
    attrs.mode.reset();
    if (attrs.empty()) {
      // Alone, it comes before a write (the kernel's file_remove_privs):
      // the flush that sends that write will drop the kernel's stale mode.
      // With a size (truncate) the SETATTR's reply carries the mode the
      // server left, so the kernel's is right.
      {
        std::lock_guard<std::mutex> lock(mu_);
        set_id_kills_.insert(ino);
      }
      return GetAttr(cred, ino, std::move(reply));
    }
  }
  std::shared_ptr<OpenFileState> open = handle != 0 ? FindOpen(handle) : nullptr;
  std::shared_ptr<nfs::OpenFile> file = open ? open->shared->File() : nullptr;
  const bool size_only = attrs.size && !attrs.mode && !attrs.uid && !attrs.gid &&
                         attrs.atime_how == nfs::SetAttributes::TimeHow::kDontChange &&
                         attrs.mtime_how == nfs::SetAttributes::TimeHow::kDontChange;
  const bool truncates = attrs.size.has_value();
  const auto sent = inodes_.Mark();
  auto done = [this, ino, reply, file, size_only, truncates, sent](uint64_t stamp,
                                                                    nfs::Result<nfs::Attributes> r) {
    if (!r.ok()) {
      int err = ErrnoFromStatus(r.status());
      // POSIX truncate(2) says EACCES for a file one may not write; servers
      // answer NFS4ERR_PERM.
      if (size_only && err == EPERM) err = EACCES;
      return reply(err, {});
    }
    inodes_.UpdateAttributes(ino, *r, sent);
    if (options_.attr_timeout > 0) inodes_.FreshAfterChange(ino, sent, sent.at + FreshFor());
    if (truncates) Resized(ino);
    AttrOut out{*r, options_.attr_timeout};
    ApplyPendingSize(ino, truncates ? std::nullopt : std::optional<uint64_t>(stamp), &out.attr);
    reply(0, std::move(out));
  };
  auto alone = [this, cred, fh = *fh, attrs, file, done]() {
    client_->SetAttr(
        cred, fh, attrs, file.get(),
        [stamp = SizeStamp(), done](nfs::Result<nfs::Attributes> r) { done(stamp, std::move(r)); });
  };
  // Our buffered writes reach the server first (a truncate must not be
  // undone by bytes sent after it, nor times by a later WRITE). When they
  // are one WRITE, the SETATTR goes in its compound (not a truncate: that
  // waits for every byte before it).
  auto cache = FindCache(ino);
  if (cache && !truncates && cache->HasUncommitted()) {
    cache->FlushThenSetAttr(cred, attrs,
                            [stamp = SizeStamp(), done, alone](FileCache::SetAttrOutcome set) {
                              if (!set) return alone();
                              done(stamp, std::move(*set));
                            });
    return;
  }
  AfterPendingWrites(ino, std::move(alone));
}

void FileSystem::ReadLink(const nfs::Credentials& cred, InodeId ino, Reply<std::string> reply) {
  auto fh = HandleOf(ino);
  if (!fh) return reply(ESTALE, {});
  client_->ReadLink(cred, *fh, [reply](nfs::Result<std::string> r) {
    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
    reply(0, std::move(*r));
  });
}

void FileSystem::CreateNode(const nfs::Credentials& cred, InodeId parent,
                            const std::string& name, const nfs::CreateRequest& req,
                            Reply<EntryOut> reply) {
  auto dir = HandleOf(parent);
  if (!dir) return reply(ESTALE, {});
  if (name.size() > 255) return reply(ENAMETOOLONG, {});
  missing_.Forget(parent, name);
  NamesChanging(parent);
  const uint64_t stamp = SizeStamp();
  const auto sent = inodes_.Mark();
  client_->Create(cred, *dir, name, req,
                  [this, parent, name, stamp, sent, reply](nfs::Result<nfs::Entry> r) {
    NamesChanging(parent);
    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
    reply(0, MakeEntry(*r, parent, name, stamp, sent));
  });
}

void FileSystem::MkNod(const nfs::Credentials& cred, InodeId parent, const std::string& name,
                       uint32_t mode, uint64_t rdev, Reply<EntryOut> reply) {
  nfs::CreateRequest req;
  switch (mode & S_IFMT) {
    case S_IFIFO: req.type = nfs::FileType::kFifo; break;
    case S_IFSOCK: req.type = nfs::FileType::kSocket; break;
    case S_IFCHR: req.type = nfs::FileType::kCharDevice; break;
    case S_IFBLK: req.type = nfs::FileType::kBlockDevice; break;
    case S_IFREG: {
      // mknod of a regular file: an exclusive create, closed at once.
      OpenFlags flags;
      flags.write = true;
      flags.exclusive = true;
      Create(cred, parent, name, mode, flags, [this, reply](int err, CreateOut out) {
        if (err != 0) return reply(err, {});
        Release(out.open.handle, 0, [reply, entry = out.entry](int, None) { reply(0, entry); });
      });
      return;
    }
    default: return reply(EINVAL, {});
  }
  req.attrs.mode = mode & 07777;
  req.rdev_major = major(rdev);
  req.rdev_minor = minor(rdev);
  CreateNode(cred, parent, name, req, std::move(reply));
}

void FileSystem::MkDir(const nfs::Credentials& cred, InodeId parent, const std::string& name,
                       uint32_t mode, Reply<EntryOut> reply) {
  nfs::CreateRequest req;
  req.type = nfs::FileType::kDirectory;
  req.attrs.mode = mode & 07777;
  CreateNode(cred, parent, name, req, std::move(reply));
}

void FileSystem::Symlink(const nfs::Credentials& cred, const std::string& target,
                         InodeId parent, const std::string& name, Reply<EntryOut> reply) {
  nfs::CreateRequest req;
  req.type = nfs::FileType::kSymlink;
  req.symlink_target = target;
  CreateNode(cred, parent, name, req, std::move(reply));
}

// NFSv4 REMOVE takes files and empty directories alike; unlink(2) and
// rmdir(2) must each refuse the other kind. The kernel asks for a name it
// has just looked up (through this mount, so the inode table knows its
// type): then REMOVE goes at once, one round trip, as the kernel NFS
// client's; a name not known here is looked up first.
void FileSystem::RemoveChecked(const nfs::Credentials& cred, InodeId parent,
                               const std::string& name, bool want_dir, Reply<None> reply) {
  auto dir = HandleOf(parent);
  if (!dir) return reply(ESTALE, {});
  const auto known = inodes_.InodeAt(parent, name);
  const auto attr = known ? inodes_.Attributes(*known) : std::nullopt;
  NamesChanging(parent);
  if (attr && attr->Has(nfs::Attributes::kType)) {
    const bool is_dir = attr->type == nfs::FileType::kDirectory;
    if (is_dir && !want_dir) return reply(EISDIR, {});
    if (!is_dir && want_dir) return reply(ENOTDIR, {});
    client_->Remove(cred, *dir, name, [this, parent, name, reply](nfs::Result<nfs::Unit> removed) {
      NamesChanging(parent);
      if (removed.ok()) inodes_.Removed(parent, name);
      reply(ErrnoFromStatus(removed.status()), {});
    });
    return;
  }
  client_->Lookup(cred, *dir, name,
                  [this, cred, parent, dir = *dir, name, want_dir, reply](nfs::Result<nfs::Entry> r) {
                    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
                    const bool is_dir = r->attr.type == nfs::FileType::kDirectory;
                    if (is_dir && !want_dir) return reply(EISDIR, {});
                    if (!is_dir && want_dir) return reply(ENOTDIR, {});
                    client_->Remove(cred, dir, name, [this, parent, name, reply](nfs::Result<nfs::Unit> removed) {
                      NamesChanging(parent);
                      if (removed.ok()) inodes_.Removed(parent, name);
                      reply(ErrnoFromStatus(removed.status()), {});
                    });
                  });
}

void FileSystem::Unlink(const nfs::Credentials& cred, InodeId parent, const std::string& name,
                        Reply<None> reply) {
  RemoveChecked(cred, parent, name, false, std::move(reply));
}

void FileSystem::RmDir(const nfs::Credentials& cred, InodeId parent, const std::string& name,
                       Reply<None> reply) {
  if (name == ".") return reply(EINVAL, {});
  if (name == "..") return reply(ENOTEMPTY, {});
  RemoveChecked(cred, parent, name, true, std::move(reply));
}

void FileSystem::Rename(const nfs::Credentials& cred, InodeId parent, const std::string& name,
                        InodeId new_parent, const std::string& new_name, uint32_t flags,
                        Reply<None> reply) {
  constexpr uint32_t kNoReplace = 1;  // RENAME_NOREPLACE
  constexpr uint32_t kExchange = 2;   // RENAME_EXCHANGE
  if ((flags & kExchange) != 0) return reply(EINVAL, {});  // NFSv4 cannot swap atomically
  if ((flags & ~kNoReplace) != 0) return reply(EINVAL, {});
  auto from = HandleOf(parent);
  auto to = HandleOf(new_parent);
  if (!from || !to) return reply(ESTALE, {});
  if (new_name.size() > 255) return reply(ENAMETOOLONG, {});
  missing_.Forget(new_parent, new_name);
  NamesChanging(parent);
  NamesChanging(new_parent);
  auto rename = [this, cred, parent, from = *from, name, new_parent, to = *to, new_name, reply]() {
    client_->Rename(cred, from, name, to, new_name,
                    [this, parent, name, new_parent, new_name, reply](nfs::Result<nfs::Unit> r) {
                      NamesChanging(parent);
                      NamesChanging(new_parent);
                      if (r.ok()) inodes_.Renamed(parent, name, new_parent, new_name);
                      reply(ErrnoFromStatus(r.status()), {});
                    });
  };
  if ((flags & kNoReplace) == 0) return rename();
  // NFSv4 has no "no replace": look first (another client could still
  // create the name in between; the kernel NFS client has the same limit).
  client_->Lookup(cred, *to, new_name, [reply, rename](nfs::Result<nfs::Entry> r) {
    if (r.ok()) return reply(EEXIST, {});
    const int err = ErrnoFromStatus(r.status());
    if (err != ENOENT) return reply(err, {});
    rename();
  });
}

void FileSystem::Link(const nfs::Credentials& cred, InodeId ino, InodeId new_parent,
                      const std::string& new_name, Reply<EntryOut> reply) {
  auto fh = HandleOf(ino);
  auto dir = HandleOf(new_parent);
  if (!fh || !dir) return reply(ESTALE, {});
  missing_.Forget(new_parent, new_name);
  NamesChanging(new_parent);
  const uint64_t stamp = SizeStamp();
  const auto sent = inodes_.Mark();
  client_->Link(cred, *fh, *dir, new_name,
                [this, fh = *fh, new_parent, new_name, stamp, sent,
                 reply](nfs::Result<nfs::Attributes> r) {
                  NamesChanging(new_parent);
                  if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
                  reply(0, MakeEntry(nfs::Entry{fh, *r}, new_parent, new_name, stamp, sent));
                });
}

void FileSystem::Access(const nfs::Credentials& cred, InodeId ino, int mask, Reply<None> reply) {
  auto fh = HandleOf(ino);
  if (!fh) return reply(ESTALE, {});
  if (mask == F_OK) {
    client_->GetAttr(cred, *fh, [reply](nfs::Result<nfs::Attributes> r) {
      reply(ErrnoFromStatus(r.status()), {});
    });
    return;
  }
  uint32_t want = 0;
  if (mask & R_OK) want |= nfs::kAccessRead;
  if (mask & W_OK) want |= nfs::kAccessModify | nfs::kAccessExtend;
  if (mask & X_OK) want |= nfs::kAccessExecute | nfs::kAccessLookup;
  auto type = inodes_.Attributes(ino);
  const bool is_dir = type && type->type == nfs::FileType::kDirectory;
  client_->Access(cred, *fh, want, [mask, is_dir, reply](nfs::Result<uint32_t> r) {
    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
    const uint32_t got = *r;
    bool ok = true;
    if ((mask & R_OK) && !(got & nfs::kAccessRead)) ok = false;
    if ((mask & W_OK) && !(got & (nfs::kAccessModify | nfs::kAccessExtend))) ok = false;
    if ((mask & X_OK) && !(got & (is_dir ? nfs::kAccessLookup : nfs::kAccessExecute))) ok = false;
    reply(ok ? 0 : EACCES, {});
  });
}

void FileSystem::StatFs(const nfs::Credentials& cred, InodeId ino, Reply<nfs::FsStats> reply) {
  auto fh = HandleOf(ino);
  if (!fh) fh = HandleOf(kRootInode);
  client_->StatFs(cred, *fh, [reply](nfs::Result<nfs::FsStats> r) {
    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
    reply(0, *r);
  });
}

}  // namespace floatmount::fuse
