// FileSystem: open files — open/create (one shared NFS open per file and
// user, see SharedOpen), read, write, flush/fsync/release, and locks. See
// file_system.h.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <optional>

#include "fuse/cache/file_cache.h"
#include "fuse/errno_map.h"
#include "fuse/file_system.h"
#include "fuse/file_system_state.h"
#include "nfs/nfsstat4.h"

namespace floatmount::fuse {

std::shared_ptr<FileSystem::OpenFileState> FileSystem::FindOpen(uint64_t handle) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = open_.find(handle);
  return it == open_.end() ? nullptr : it->second;
}

uint64_t FileSystem::RegisterOpen(std::shared_ptr<OpenFileState> state) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t handle = next_handle_++;
  open_[handle] = std::move(state);
  return handle;
}

size_t FileSystem::open_files() const {
  std::lock_guard<std::mutex> lock(mu_);
  return open_.size();
}

std::shared_ptr<FileSystem::SharedOpen> FileSystem::AcquireShared(InodeId ino,
                                                                  const nfs::FileHandle& fh,
                                                                  const nfs::Credentials& cred,
                                                                  bool* created) {
  std::lock_guard<std::mutex> lock(mu_);
  std::shared_ptr<SharedOpen>& slot = shared_[KeyOf(ino, cred)];
  if (slot != nullptr) {
    // An open whose locks were lost fails I/O with EIO until it is closed;
    // its descriptors keep it, a new opener gets a new one (the kernel
    // sends RELEASE after close returns, so a quick reopen would find it).
    auto file = slot->File();
    if (file && !file->usable()) slot = nullptr;
  }
  *created = slot == nullptr;
  if (*created) {
    slot = std::make_shared<SharedOpen>();
    slot->ino = ino;
    slot->fh = fh;
    slot->cred = cred;
    slot->cache = CacheForLocked(ino, fh);
  }
  ++slot->refs;
  return slot;
}

bool FileSystem::ReleaseShared(const std::shared_ptr<SharedOpen>& shared) {
  std::lock_guard<std::mutex> lock(mu_);
  if (--shared->refs > 0) return false;
  auto it = shared_.find(KeyOf(shared->ino, shared->cred));
  if (it != shared_.end() && it->second == shared) shared_.erase(it);
  return true;
}

// Drops a reference taken by an open that failed; closes the NFS open if
// nobody else uses it.
void FileSystem::DropShared(const std::shared_ptr<SharedOpen>& shared) {
  if (!ReleaseShared(shared)) return;
  if (auto file = shared->File()) {
    client_->Close(shared->cred, std::move(file), [](nfs::Result<nfs::Unit>) {});
  }
}

void FileSystem::SharedReady(const std::shared_ptr<SharedOpen>& shared, int error,
                             std::shared_ptr<nfs::OpenFile> file, bool read, bool write) {
  std::vector<std::function<void()>> waiting;
  {
    std::lock_guard<std::mutex> lock(shared->mu);
    shared->ready = true;
    shared->open_error = error;
    shared->file = std::move(file);
    shared->read = read;
    shared->write = write;
    waiting.swap(shared->waiting);
  }
  for (auto& w : waiting) w();
}

void FileSystem::Open(const nfs::Credentials& cred, InodeId ino, OpenFlags flags,
                      Reply<OpenOut> reply) {
  auto fh = HandleOf(ino);
  if (!fh) return reply(ESTALE, {});
  const auto sent = inodes_.Mark();
  if (!flags.write && options_.attr_timeout > 0) {
    // The attributes this open fetched (FinishOpen) may answer GETATTR.
    reply = [this, ino, sent, reply = std::move(reply)](int err, OpenOut out) {
      if (err == 0) inodes_.FreshUntil(ino, sent, sent.at + FreshFor());
      reply(err, std::move(out));
    };
  }
  bool created;
  auto shared = AcquireShared(ino, *fh, cred, &created);
  if (!created) {
    // Wait for an OPEN under way, then use (and maybe widen) the open.
    std::unique_lock<std::mutex> lock(shared->mu);
    if (!shared->ready) {
      shared->waiting.push_back([this, cred, shared, flags, sent, reply] {
        OpenWithShared(cred, shared, flags, std::nullopt, sent, reply);
      });
      return;
    }
    lock.unlock();
    OpenWithShared(cred, shared, flags, std::nullopt, sent, std::move(reply));
    return;
  }
  // The first open of this file by this user: ask for read access too (a
  // later read-only descriptor can then share it); fall back to what was
  // asked if the server refuses (a 0200 file). A small file to be read is
  // read in the same compound.
  uint64_t mark = 0;
  const uint32_t read_first = ReadFirstSize(ino, flags, *shared->cache, &mark);
  auto opened = [this, cred, shared, flags, mark, sent, reply](nfs::Result<nfs::OpenResult> r,
                                                               bool read) {
    int err = r.ok() ? 0 : ErrnoFromStatus(r.status());
    if (r.ok() && r->fh != shared->fh) {
      // The name leads to another file now: not this inode's to open.
      client_->Close(cred, r->file, [](nfs::Result<nfs::Unit>) {});
      err = ESTALE;
    }
    if (err != 0) {
      SharedReady(shared, err, nullptr, false, false);
      DropShared(shared);
      return reply(err, {});
    }
    if (r->first_read && r->first_read->eof && r->attr.Has(nfs::Attributes::kChange)) {
      shared->cache->Seed(CacheIdentity{cred, r->file}, mark, r->attr.change,
                          r->first_read->data);
    }
    SharedReady(shared, 0, r->file, read, flags.write);
    FinishOpen(shared, flags, r->attr, sent, reply);
  };
  OpenByName(cred, ino, *fh, true, flags.write, read_first,
             [this, cred, ino, fh = *fh, flags, opened](nfs::Result<nfs::OpenResult> r) {
               if (!r.ok() && flags.write && !flags.read && ErrnoFromStatus(r.status()) == EACCES) {
                 OpenByName(cred, ino, fh, false, true, 0,
                            [opened](nfs::Result<nfs::OpenResult> w) {
                              opened(std::move(w), false);
                            });
                 return;
               }
               opened(std::move(r), true);
             });
}

uint32_t FileSystem::ReadFirstSize(InodeId ino, OpenFlags flags, const FileCache& cache,
                                   uint64_t* mark) const {
  if (options_.open_read_max == 0 || !flags.read || flags.direct || flags.truncate) return 0;
  const auto attr = inodes_.Attributes(ino);
  if (!attr || !attr->Has(nfs::Attributes::kSize) || attr->size == 0 ||
      attr->size > options_.open_read_max) {
    return 0;
  }
  const auto m = cache.SeedMark();
  if (!m) return 0;  // this mount's writes are on the way: read after them
  *mark = *m;
  // A little more than the size last seen: a file that grew a little since
  // is still read whole (the READ says eof).
  constexpr uint64_t kSlack = 4096;
  return uint32_t(std::min<uint64_t>(options_.open_read_max, attr->size + kSlack));
}

// Close-to-open for names. The kernel opens the inode its dentry names, and
// that dentry may be older than a rename another client made over the name
// (`mv new f` on another node); the kernel NFS client opens by name and
// sees the new file. So does this: OPEN by the name the inode was learned
// by (the same one round trip as OPEN by handle). If the name has gone or
// leads to another file, the open fails with ESTALE, on which the kernel
// looks the name up again (LOOKUP_REVAL) and opens what it finds. Without a
// known name (never learned, or removed by this mount: an open through
// /proc/self/fd) the open goes by handle.
void FileSystem::OpenByName(const nfs::Credentials& cred, InodeId ino, const nfs::FileHandle& fh,
                            bool read, bool write, uint32_t read_first,
                            nfs::Callback<nfs::OpenResult> done) {
  const auto name = inodes_.NameOf(ino);
  const auto dir = name ? HandleOf(name->parent) : std::nullopt;
  if (!dir) return client_->OpenHandle(cred, fh, read, write, std::move(done));
  nfs::OpenRequest req;
  req.read = read;
  req.write = write;
  req.create = nfs::CreateMode::kNoCreate;
  req.read_first = read_first;
  client_->Open(cred, *dir, name->name, req, [done](nfs::Result<nfs::OpenResult> r) {
    if (!r.ok() && ErrnoFromStatus(r.status()) == ENOENT) {
      return done(nfs::Status::Nfs(nfs::v4::NFS4ERR_STALE, "the name is gone"));
    }
    done(std::move(r));
  });
}

void FileSystem::OpenWithShared(const nfs::Credentials& cred, std::shared_ptr<SharedOpen> shared,
                                OpenFlags flags, std::optional<nfs::Attributes> fresh,
                                InodeTable::SendMark sent, Reply<OpenOut> reply) {
  std::shared_ptr<nfs::OpenFile> file;
  bool need_read, need_write;
  int open_error;
  {
    std::lock_guard<std::mutex> lock(shared->mu);
    open_error = shared->open_error;
    file = shared->file;
    need_read = flags.read && !shared->read;
    need_write = flags.write && !shared->write;
  }
  if (open_error != 0) {
    DropShared(shared);
    return reply(open_error, {});
  }
  auto revalidate = [this, cred, shared, flags, fresh, sent, reply]() {
    if (fresh) return FinishOpen(shared, flags, *fresh, sent, reply);
    // Close-to-open: this open sent no OPEN, so fetch the attributes; by
    // the name, if known, which must still lead here (see OpenByName).
    auto finish = [this, shared, flags, sent, reply](nfs::Result<nfs::Attributes> a) {
      if (!a.ok()) {
        DropShared(shared);
        return reply(ErrnoFromStatus(a.status()), {});
      }
      FinishOpen(shared, flags, *a, sent, reply);
    };
    const auto name = inodes_.NameOf(shared->ino);
    const auto dir = name ? HandleOf(name->parent) : std::nullopt;
    if (!dir) return client_->GetAttr(cred, shared->fh, finish);
    client_->Lookup(cred, *dir, name->name, [shared, finish](nfs::Result<nfs::Entry> e) {
      if (e.ok() && e->fh == shared->fh) return finish(e->attr);
      if (e.ok() || ErrnoFromStatus(e.status()) == ENOENT) {
        return finish(nfs::Status::Nfs(nfs::v4::NFS4ERR_STALE, "the name leads elsewhere"));
      }
      finish(e.status());
    });
  };
  if (!need_read && !need_write) return revalidate();
  client_->Upgrade(cred, file.get(), flags.read, flags.write,
                   [this, shared, flags, revalidate, reply](nfs::Result<nfs::Unit> r) {
                     if (!r.ok()) {
                       DropShared(shared);
                       return reply(ErrnoFromStatus(r.status()), {});
                     }
                     {
                       std::lock_guard<std::mutex> lock(shared->mu);
                       shared->read |= flags.read;
                       shared->write |= flags.write;
                     }
                     revalidate();
                   });
}

// The open has its NFS open and fresh attributes: decide about the
// kernel's cached pages, apply O_TRUNC, hand out the descriptor.
void FileSystem::FinishOpen(std::shared_ptr<SharedOpen> shared, OpenFlags flags,
                            const nfs::Attributes& attr, InodeTable::SendMark sent,
                            Reply<OpenOut> reply) {
  InodeTable::SendMark opened = sent;
  opened.caller = InodeTable::kNoThread;  // the open's reply carries no attributes
  const auto previous = inodes_.UpdateAttributes(shared->ino, attr, opened).previous_change;
  // The kernel may not have taken the attributes last applied here.
  const bool overlapped = inodes_.TakeOverlappedSinceOpen(shared->ino);
  const bool changed =
      overlapped || !(previous && attr.Has(nfs::Attributes::kChange) && *previous == attr.change);
  if (changed) {
    // Close-to-open: the kernel's cached size and times of the file are
    // from before the change (the open reply carries no attributes); they
    // go before the descriptor is handed out. Its pages go with
    // keep_cache = false.
    return InvalidateKernelThen({shared->ino}, false, [this, shared, flags, reply]() mutable {
      ContinueOpen(std::move(shared), flags, false, std::move(reply));
    });
  }
  ContinueOpen(std::move(shared), flags, !flags.direct, std::move(reply));
}

void FileSystem::ContinueOpen(std::shared_ptr<SharedOpen> shared, OpenFlags flags, bool keep_cache,
                              Reply<OpenOut> reply) {
  OpenOut out;
  out.keep_cache = keep_cache;
  out.direct_io = flags.direct;
  auto state = std::make_shared<OpenFileState>();
  state->shared = shared;
  state->ino = shared->ino;
  state->direct = flags.direct;
  state->pattern = std::make_unique<ReadPattern>(kChunkSize, options_.readahead_max);
  state->errors_seen = shared->cache->error_seq();
  if (!(flags.truncate && flags.write)) {
    out.handle = RegisterOpen(std::move(state));
    return reply(0, out);
  }
  // O_TRUNC arrives with the open (libfuse negotiates atomic_o_trunc). As
  // for ftruncate, bytes another descriptor wrote before it go out first.
  AfterPendingWrites(shared->ino, [this, shared, state, out, reply]() mutable {
    nfs::SetAttributes size0;
    size0.size = 0;
    auto file = shared->File();
    client_->SetAttr(shared->cred, shared->fh, size0, file.get(),
                     [this, state, out, sent = inodes_.Mark(InodeTable::kNoThread),
                      reply](nfs::Result<nfs::Attributes> t) mutable {
                       if (!t.ok()) {
                         DropShared(state->shared);
                         return reply(ErrnoFromStatus(t.status()), {});
                       }
                       inodes_.UpdateAttributes(state->ino, *t, sent);
                       Resized(state->ino);
                       out.keep_cache = false;
                       out.handle = RegisterOpen(std::move(state));
                       reply(0, out);
                     });
  });
}

void FileSystem::Create(const nfs::Credentials& cred, InodeId parent, const std::string& name,
                        uint32_t mode, OpenFlags flags, Reply<CreateOut> reply) {
  auto dir = HandleOf(parent);
  if (!dir) return reply(ESTALE, {});
  if (name.size() > 255) return reply(ENAMETOOLONG, {});
  nfs::OpenRequest req;
  req.read = true;
  req.write = true;
  // O_EXCL: EXCLUSIVE4_1 with a verifier (RFC 8881 18.16.3), so a create resent
  // after a lost reply or session finds its own file instead of EEXIST.
  req.create = flags.exclusive ? nfs::CreateMode::kExclusive : nfs::CreateMode::kUnchecked;
  req.attrs.mode = mode & 07777;
  req.truncate = flags.truncate && !flags.exclusive;
  missing_.Forget(parent, name);
  NamesChanging(parent);
  // A truncating create's answer is the size, whatever this mount wrote.
  const std::optional<uint64_t> stamp =
      req.truncate ? std::nullopt : std::optional<uint64_t>(SizeStamp());
  const auto sent = inodes_.Mark();
  client_->Open(cred, *dir, name, req,
                [this, cred, parent, name, flags, stamp, sent,
                 reply](nfs::Result<nfs::OpenResult> r) {
    NamesChanging(parent);
    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
    CreateOut out;
    out.entry = MakeEntry(nfs::Entry{r->fh, r->attr}, parent, name, stamp, sent);
    if (flags.truncate) Resized(out.entry.ino);
    bool created;
    auto shared = AcquireShared(out.entry.ino, r->fh, cred, &created);
    if (created) {
      SharedReady(shared, 0, r->file, true, true);
    } else {
      // This user already had the file open (O_CREAT of an existing, open
      // file): keep one NFS open; the new one is redundant.
      client_->Close(cred, r->file, [](nfs::Result<nfs::Unit>) {});
    }
    auto finish = [this, shared, flags, out, reply](int err, OpenOut open) mutable {
      if (err != 0) return reply(err, {});
      out.open = open;
      reply(0, out);
    };
    OpenFlags rw = flags;
    rw.read = true;
    rw.write = true;
    // The OPEN truncated the file; but bytes another descriptor of this
    // mount wrote before it and has not sent yet would undo that when they
    // arrive. Then the truncate runs again after them (FinishOpen).
    auto cache = FindCache(out.entry.ino);
    rw.truncate = flags.truncate && !flags.exclusive && cache && cache->HasUncommitted();
    if (created) {
      FinishOpen(shared, rw, r->attr, sent, std::move(finish));
    } else {
      std::unique_lock<std::mutex> lock(shared->mu);
      if (!shared->ready) {
        shared->waiting.push_back([this, cred, shared, rw, attr = r->attr, sent, finish] {
          OpenWithShared(cred, shared, rw, attr, sent, finish);
        });
        return;
      }
      lock.unlock();
      OpenWithShared(cred, shared, rw, r->attr, sent, std::move(finish));
    }
  });
}

void FileSystem::Read(uint64_t handle, size_t size, uint64_t offset, Reply<ReadOut> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  FileCache& cache = *state->shared->cache;
  if (state->direct) return cache.ReadDirect(state->Identity(), offset, size, std::move(reply));
  const InodeTable::Version version = inodes_.VersionOf(state->ino);
  cache.Read(state->Identity(), state->pattern->Note(offset, size), offset, size,
             DataVersion{version.change, version.uncertain_at}, version.size, std::move(reply));
}

void FileSystem::Write(uint64_t handle, std::span<const uint8_t> data, uint64_t offset,
                       Reply<size_t> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  // No Changing(): the file is open for writing until its last flush (which
  // is one), and GetAttr never answers such a file from its OPEN's
  // attributes, nor from a SETATTR's after this; other files' do not change
  // with its bytes.
  inodes_.Written(state->ino);
  FileCache& cache = *state->shared->cache;
  if (int err = cache.TakeError(state->errors_seen); err != 0) return reply(err, {});
  if (state->direct) {
    // O_DIRECT: the bytes go to stable storage now, after our buffered
    // ones, and after those are committed: a buffered WRITE still
    // uncommitted would be sent again over these bytes if the server
    // restarted before its COMMIT (a new write verifier), undoing this
    // write. The kernel client also writes back and commits the page cache
    // before a direct write (nfs_start_io_direct).
    std::vector<uint8_t> copy(data.begin(), data.end());
    cache.Flush([this, state, copy = std::move(copy), offset, reply]() mutable {
      inodes_.Written(state->ino);  // after the flush's attributes
      DirectWrite(state, std::move(copy), offset, std::move(reply));
    });
    return;
  }
  // Answered once the bytes are buffered: later if the write waits for
  // memory (its thread serves other requests meanwhile).
  cache.Write(state->Identity(), offset, data,
              [reply = std::move(reply), size = data.size()] { reply(0, size); });
}

// O_DIRECT: FILE_SYNC WRITEs straight from the caller's bytes. A server
// may answer with less than FILE_SYNC (DATA_SYNC, UNSTABLE); then a COMMIT
// follows before the write returns, as the kernel client does, and if its
// verifier is not the WRITEs' (the server restarted between them and lost
// the bytes) they are sent again, a bounded number of times.
void FileSystem::DirectWrite(std::shared_ptr<OpenFileState> state, std::vector<uint8_t> data,
                             uint64_t offset, Reply<size_t> reply) {
  struct Progress {
    std::vector<uint8_t> data;
    size_t done = 0;
    // Of the first WRITE answered below FILE_SYNC: set while a COMMIT is owed.
    std::optional<nfs::WriteVerifier> verifier;
    int passes = 0;
  };
  constexpr int kMaxPasses = 3;
  auto progress = std::make_shared<Progress>();
  progress->data = std::move(data);
  auto shared = state->shared;
  shared->cache->DropClean();
  auto file = shared->File();
  auto step = std::make_shared<std::function<void()>>();
  auto finish = [this, shared, step, reply](int err, size_t n) {
    *step = nullptr;  // breaks the self-reference
    DropCachedBytes(shared->ino);  // chunks read meanwhile may predate the WRITEs
    reply(err, n);
  };
  auto commit = [this, shared, offset, progress, step, finish]() {
    const auto count = static_cast<uint32_t>(std::min<size_t>(progress->done, UINT32_MAX));
    client_->Commit(shared->cred, shared->fh, offset, count,
                    [progress, step, finish](nfs::Result<nfs::WriteVerifier> r) {
                      if (!r.ok()) return finish(ErrnoFromStatus(r.status()), 0);
                      if (*r == *progress->verifier) return finish(0, progress->done);
                      if (++progress->passes >= kMaxPasses) return finish(EIO, 0);
                      // The server restarted since the WRITEs: send them again.
                      progress->done = 0;
                      progress->verifier.reset();
                      (*step)();
                    });
  };
  *step = [this, shared, file, offset, progress, step, finish, commit]() {
    const size_t done = progress->done;
    client_->Write(
        shared->cred, shared->fh, file.get(), offset + done,
        std::span<const uint8_t>(progress->data.data() + done, progress->data.size() - done),
        nfs::Stability::kFileSync,
        [progress, step, finish, commit](nfs::Result<nfs::WriteResult> r) {
          if (!r.ok()) return finish(ErrnoFromStatus(r.status()), 0);
          if (r->committed != nfs::Stability::kFileSync && r->count > 0) {
            if (!progress->verifier) progress->verifier = r->verifier;
          }
          progress->done += r->count;
          if (r->count == 0 || progress->done >= progress->data.size()) {
            if (progress->verifier) return commit();
            return finish(0, progress->done);
          }
          (*step)();
        });
  };
  (*step)();
}

void FileSystem::FlushCache(std::shared_ptr<OpenFileState> state, Reply<None> reply) {
  const auto start = std::chrono::steady_clock::now();
  auto cache = state->shared->cache;
  bool may_write;
  {
    std::lock_guard<std::mutex> lock(state->shared->mu);
    may_write = state->shared->write;
  }
  // Written data goes out. Nothing to send, nothing changes: a RELEASE
  // after the FLUSH that sent the bytes leaves that flush's attributes
  // answering GETATTR (a chown's after a close, busybox tar's).
  if (may_write && cache->HasUncommitted()) reply = Changing(std::move(reply));
  cache->Flush([this, state, cache, start, reply] {
    const uint64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    counters_->flushes++;
    counters_->flush_ns += ns;
    uint64_t max = counters_->flush_ns_max.load();
    while (ns > max && !counters_->flush_ns_max.compare_exchange_weak(max, ns)) {
    }
    const int err = cache->TakeError(state->errors_seen);
    bool killed_set_id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      killed_set_id = set_id_kills_.erase(state->ino) > 0;
    }
    // The server cleared the set-ID bits as our WRITEs arrived; the kernel
    // still has the mode it got before them (the kernel NFS client takes
    // it from the WRITE reply).
    if (killed_set_id) {
      return InvalidateKernelThen({state->ino}, false, [reply, err] { reply(err, {}); });
    }
    reply(err, {});
  });
}

void FileSystem::Flush(uint64_t handle, uint64_t lock_owner, Reply<None> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  auto shared = state->shared;
  // POSIX: closing any descriptor drops the process's locks on the file.
  // Written data goes out first, so the next holder on another node reads
  // it (file_system_locks.cc).
  FlushCache(state, [this, shared, lock_owner, reply](int err, None) {
    UnlockAll(shared, lock_owner, [err, reply] { reply(err, {}); });
  });
}

void FileSystem::Fsync(uint64_t handle, Reply<None> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  FlushCache(std::move(state), std::move(reply));
}

void FileSystem::Release(uint64_t handle, uint64_t flock_owner, Reply<None> reply) {
  std::shared_ptr<OpenFileState> state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = open_.find(handle);
    if (it != open_.end()) {
      state = std::move(it->second);
      open_.erase(it);
    }
  }
  if (!state) return reply(EBADF, {});
  auto shared = state->shared;
  // Commit, then drop the flock locks of this description (the next holder
  // reads our data), then CLOSE (servers refuse it while locks are held).
  FlushCache(state, [this, shared, flock_owner, reply](int err, None) {
    UnlockAll(shared, flock_owner, [this, shared, err, reply] {
      if (!ReleaseShared(shared)) return reply(err, {});  // other descriptors still use it
      client_->Close(shared->cred, shared->File(), [err, reply](nfs::Result<nfs::Unit> r) {
        reply(err != 0 ? err : ErrnoFromStatus(r.status()), {});
      });
    });
  });
}

bool FileSystem::OpenForWriting(InodeId ino) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = shared_.lower_bound(SharedKey{ino, 0, 0, {}});
       it != shared_.end() && std::get<0>(it->first) == ino; ++it) {
    std::lock_guard<std::mutex> shared_lock(it->second->mu);
    if (it->second->write) return true;
  }
  return false;
}

void FileSystem::CloseAll() {
  std::vector<uint64_t> handles;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [handle, state] : open_) handles.push_back(handle);
  }
  for (uint64_t handle : handles) {
    std::promise<void> done;
    Release(handle, 0, [&done](int, None) { done.set_value(); });
    done.get_future().wait();
  }
}

}  // namespace floatmount::fuse
