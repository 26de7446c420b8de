// FileSystem: open files — open/create, read, write, flush/fsync/release,
// and locks. See file_system.h.
#include <cerrno>
#include <cstring>
#include <future>

#include "fuse/errno_map.h"
#include "fuse/file_system.h"
#include "fuse/file_system_state.h"
#include "nfs/nfs4_protocol.h"

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

void FileSystem::Open(const nfs::Credentials& cred, InodeId ino, OpenFlags flags,
                      Reply<OpenOut> reply) {
  auto fh = HandleOf(ino);
  if (!fh) return reply(ESTALE, {});
  // The kernel's writeback cache reads partial pages of files open for
  // writing, so ask for read access too; fall back to write-only if the
  // server refuses it (a 0200 file).
  auto opened = [this, cred, ino, fh = *fh, flags, reply](nfs::Result<nfs::OpenResult> r) {
    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
    auto state = std::make_shared<OpenFileState>();
    state->ino = ino;
    state->fh = fh;
    state->cred = cred;
    state->file = r->file;
    state->direct = flags.direct;
    // Close-to-open: keep the kernel's cached pages only if the file did
    // not change since we last saw it.
    const auto previous = inodes_.UpdateAttributes(ino, r->attr);
    OpenOut out;
    out.keep_cache = previous && r->attr.Has(nfs::Attributes::kChange) &&
                     *previous == r->attr.change && !flags.direct;
    out.direct_io = flags.direct;
    if (!(flags.truncate && flags.write)) {
      out.handle = RegisterOpen(std::move(state));
      return reply(0, out);
    }
    // O_TRUNC arrives with the open (libfuse negotiates atomic_o_trunc):
    // empty the file through this open before answering.
    nfs::SetAttributes size0;
    size0.size = 0;
    client_->SetAttr(cred, fh, size0, state->file.get(),
                     [this, ino, state, out, reply](nfs::Result<nfs::Attributes> t) mutable {
                       if (!t.ok()) {
                         const int err = ErrnoFromStatus(t.status());
                         client_->Close(state->cred, state->file, [](nfs::Result<nfs::Unit>) {});
                         return reply(err, {});
                       }
                       inodes_.UpdateAttributes(ino, *t);
                       out.keep_cache = false;
                       out.handle = RegisterOpen(std::move(state));
                       reply(0, out);
                     });
  };
  if (!flags.write) {
    client_->OpenHandle(cred, *fh, true, false, std::move(opened));
    return;
  }
  client_->OpenHandle(cred, *fh, true, true,
                      [this, cred, fh = *fh, opened](nfs::Result<nfs::OpenResult> r) {
                        if (!r.ok() && ErrnoFromStatus(r.status()) == EACCES) {
                          client_->OpenHandle(cred, fh, false, true, opened);
                          return;
                        }
                        opened(std::move(r));
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
  req.create = flags.exclusive ? nfs::CreateMode::kGuarded : nfs::CreateMode::kUnchecked;
  req.attrs.mode = mode & 07777;
  req.truncate = flags.truncate && !flags.exclusive;
  client_->Open(cred, *dir, name, req, [this, cred, flags, reply](nfs::Result<nfs::OpenResult> r) {
    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
    CreateOut out;
    out.entry = MakeEntry(nfs::Entry{r->fh, r->attr});
    auto state = std::make_shared<OpenFileState>();
    state->ino = out.entry.ino;
    state->fh = r->fh;
    state->cred = cred;
    state->file = r->file;
    state->direct = flags.direct;
    out.open.direct_io = flags.direct;
    out.open.keep_cache = false;
    out.open.handle = RegisterOpen(std::move(state));
    reply(0, out);
  });
}

void FileSystem::Read(uint64_t handle, size_t size, uint64_t offset, Reply<ReadOut> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  struct Progress {
    ReadOut out;
    size_t want;
  };
  auto progress = std::make_shared<Progress>();
  progress->out.data = std::shared_ptr<uint8_t[]>(new uint8_t[std::max<size_t>(size, 1)]);
  progress->want = size;
  // Reads until `size` bytes or end of file (the server may return less).
  auto step = std::make_shared<std::function<void()>>();
  *step = [this, state, offset, progress, step, reply]() {
    const size_t have = progress->out.size;
    client_->Read(state->cred, state->fh, state->file.get(), offset + have,
                  std::span<uint8_t>(progress->out.data.get() + have, progress->want - have),
                  [progress, step, reply](nfs::Result<nfs::ReadResult> r) {
                    if (!r.ok()) {
                      *step = nullptr;
                      return reply(ErrnoFromStatus(r.status()), {});
                    }
                    progress->out.size += r->count;
                    if (r->eof || r->count == 0 || progress->out.size >= progress->want) {
                      auto out = std::move(progress->out);
                      *step = nullptr;  // breaks the self-reference
                      return reply(0, std::move(out));
                    }
                    (*step)();
                  });
  };
  (*step)();
}

void FileSystem::Write(uint64_t handle, std::span<const uint8_t> data, uint64_t offset,
                       Reply<size_t> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  if (int err = state->TakeError(); err != 0) return reply(err, {});
  // The kernel reuses its buffer once we return: keep our own copy until
  // the server has the bytes.
  auto copy = std::make_shared<std::vector<uint8_t>>(data.begin(), data.end());
  struct Progress {
    size_t done = 0;
  };
  auto progress = std::make_shared<Progress>();
  auto step = std::make_shared<std::function<void()>>();
  const auto stability = state->direct ? nfs::Stability::kFileSync : nfs::Stability::kUnstable;
  *step = [this, state, copy, offset, progress, step, stability, reply]() {
    const size_t done = progress->done;
    client_->Write(
        state->cred, state->fh, state->file.get(), offset + done,
        std::span<const uint8_t>(copy->data() + done, copy->size() - done), stability,
        [state, copy, progress, step, reply](nfs::Result<nfs::WriteResult> r) {
          if (!r.ok()) {
            *step = nullptr;
            return reply(ErrnoFromStatus(r.status()), {});
          }
          if (r->committed == nfs::Stability::kUnstable) {
            std::lock_guard<std::mutex> lock(state->mu);
            if (state->verifier && *state->verifier != r->verifier) state->verifier_changed = true;
            state->verifier = r->verifier;
            state->dirty = true;
          }
          progress->done += r->count;
          if (r->count == 0 || progress->done >= copy->size()) {
            const size_t written = progress->done;
            *step = nullptr;
            return reply(0, written);
          }
          (*step)();
        });
  };
  (*step)();
}

// COMMIT what this open wrote UNSTABLE. A verifier that moved means the
// server restarted and may have dropped bytes we no longer hold: that is
// reported (EIO), never passed over.
void FileSystem::CommitIfDirty(std::shared_ptr<OpenFileState> state, Reply<None> reply) {
  std::optional<nfs::WriteVerifier> expected;
  bool changed;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    if (state->error != 0) return reply(std::exchange(state->error, 0), {});
    if (!state->dirty) return reply(0, {});
    state->dirty = false;
    expected = state->verifier;
    changed = state->verifier_changed;
    state->verifier.reset();
    state->verifier_changed = false;
  }
  client_->Commit(state->cred, state->fh, 0, 0,
                  [expected, changed, reply](nfs::Result<nfs::WriteVerifier> r) {
                    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
                    if (changed || (expected && *expected != *r)) return reply(EIO, {});
                    reply(0, {});
                  });
}

void FileSystem::Flush(uint64_t handle, Reply<None> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  CommitIfDirty(std::move(state), std::move(reply));
}

void FileSystem::Fsync(uint64_t handle, Reply<None> reply) { Flush(handle, std::move(reply)); }

void FileSystem::Release(uint64_t handle, Reply<None> reply) {
  std::shared_ptr<OpenFileState> state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = open_.find(handle);
    if (it == open_.end()) return reply(EBADF, {});
    state = std::move(it->second);
    open_.erase(it);
  }
  CommitIfDirty(state, [this, state, reply](int err, None) {
    client_->Close(state->cred, state->file, [err, reply](nfs::Result<nfs::Unit> r) {
      reply(err != 0 ? err : ErrnoFromStatus(r.status()), {});
    });
  });
}

void FileSystem::CloseAll() {
  std::unordered_map<uint64_t, std::shared_ptr<OpenFileState>> open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [handle, state] : open_) open.emplace(handle, state);
  }
  for (auto& [handle, state] : open) {
    std::promise<void> done;
    Release(handle, [&done](int, None) { done.set_value(); });
    done.get_future().wait();
  }
}

namespace {
uint64_t LockLength(uint64_t start, uint64_t end) {
  return end == UINT64_MAX ? nfs::kLockToEnd : end - start + 1;
}
}  // namespace

void FileSystem::GetLock(uint64_t handle, uint64_t owner, nfs::LockType type, uint64_t start,
                         uint64_t end, Reply<LockOut> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  client_->TestLock(state->cred, state->file.get(), owner, type, start, LockLength(start, end),
                    [reply](nfs::Result<std::optional<nfs::LockConflict>> r) {
                      if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
                      LockOut out;
                      if (r->has_value()) {
                        const nfs::LockConflict& c = **r;
                        out.conflict = true;
                        out.type = c.type;
                        out.start = c.offset;
                        out.end = c.length == nfs::kLockToEnd ? UINT64_MAX
                                                              : c.offset + c.length - 1;
                      }
                      reply(0, out);
                    });
}

void FileSystem::SetLock(uint64_t handle, uint64_t owner, bool unlock, nfs::LockType type,
                         uint64_t start, uint64_t end, bool wait, Interrupted interrupted,
                         Reply<None> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  if (unlock) {
    client_->Unlock(state->cred, state->file.get(), owner, start, LockLength(start, end),
                    [reply](nfs::Result<nfs::Unit> r) { reply(ErrnoFromStatus(r.status()), {}); });
    return;
  }
  TryLock(std::move(state), owner, type, start, end, wait, std::move(interrupted),
          std::move(reply));
}

void FileSystem::TryLock(std::shared_ptr<OpenFileState> state, uint64_t owner,
                         nfs::LockType type, uint64_t start, uint64_t end, bool wait,
                         Interrupted interrupted, Reply<None> reply) {
  client_->Lock(state->cred, state->file.get(), owner, type, start, LockLength(start, end),
                [this, state, owner, type, start, end, wait, interrupted,
                 reply](nfs::Result<nfs::Unit> r) {
                  if (r.ok()) return reply(0, {});
                  if (!r.status().IsNfs(nfs::v4::NFS4ERR_DENIED)) {
                    return reply(ErrnoFromStatus(r.status()), {});
                  }
                  if (!wait) return reply(EAGAIN, {});
                  if (interrupted && interrupted()) return reply(EINTR, {});
                  // Held elsewhere: ask again shortly (NFSv4.1 servers may
                  // also call back, which we do not listen for).
                  lock_timer_.Schedule(options_.lock_poll, [=, this] {
                    TryLock(state, owner, type, start, end, wait, interrupted, reply);
                  });
                });
}

}  // namespace floatmount::fuse
