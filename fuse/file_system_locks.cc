// FileSystem: byte-range and whole-file locks (fcntl, OFD locks, flock)
// and the coherence between clients that they give, as every NFS client
// keeps it (the kernel client's do_setlk/do_unlk):
//
//   - A granted lock revalidates the file before the grant is returned:
//     fresh attributes from the server (they come back in the LOCK's
//     compound, nfs::Client::Lock: no round trip of its own), and
//     floatmount's clean read-ahead chunks of the file are dropped and the
//     kernel's page cache of it is invalidated
//     (FileSystem::SetKernelCacheInvalidator), so the holder reads what the
//     previous holder wrote. The data is dropped even when the change
//     attribute did not move, as the kernel client does without a
//     delegation (nfs_zap_caches in do_setlk): many servers make the change
//     attribute from ctime (knfsd on tmpfs, ext4 without i_version), which
//     stays the same for two writes within one clock tick, so an unchanged
//     value proves nothing. Found on knfsd: SQLite on two mounts ended at
//     198-199 of 200 when an unchanged change attribute kept the cache.
//   - An unlock first sends and commits this mount's buffered writes to the
//     file (AfterPendingWrites), so the next holder, maybe on another node,
//     reads them. At close (FUSE flush and release) the data is committed
//     before the locks of the closing owner are dropped.
//
// SQLite, lock-file protocols and job queues on shared mounts depend on
// both (issue 20: a counter updated from two mounts lost a quarter of its
// transactions without them).
//
// Threads: FUSE threads call in; completions run on network threads; the
// kernel invalidation runs on the coherence queue's thread, never on a
// network thread (it may wait for pages whose READ replies those threads
// deliver).
#include <cerrno>

#include "fuse/cache/file_cache.h"
#include "fuse/errno_map.h"
#include "fuse/file_system.h"
#include "fuse/file_system_state.h"
#include "nfs/nfsstat4.h"

namespace floatmount::fuse {

void FileSystem::SetKernelCacheInvalidator(KernelCacheInvalidator invalidate) {
  invalidate_kernel_cache_ = std::move(invalidate);
}

void FileSystem::SetKernelEntryInvalidator(KernelEntryInvalidator invalidate) {
  invalidate_kernel_entry_ = std::move(invalidate);
}

void FileSystem::InvalidateKernelThen(std::vector<InodeId> inos, bool data,
                                      std::function<void()> then) {
  if (!invalidate_kernel_cache_) return then();
  coherence_queue_.Schedule(std::chrono::milliseconds(0),
                            [this, inos = std::move(inos), data, then = std::move(then)] {
                              for (InodeId ino : inos) invalidate_kernel_cache_(ino, data);
                              then();
                            });
}

void FileSystem::RevalidateForLock(const std::shared_ptr<SharedOpen>& shared,
                                   const nfs::Attributes& fresh, InodeTable::SendMark sent,
                                   std::function<void()> then) {
  if (fresh.Has(nfs::Attributes::kChange)) inodes_.UpdateAttributes(shared->ino, fresh, sent);
  counters_->lock_invalidations++;
  shared->cache->DropClean();
  InvalidateKernelThen({shared->ino}, true, std::move(then));
}

void FileSystem::UnlockAll(const std::shared_ptr<SharedOpen>& shared, uint64_t owner,
                           std::function<void()> then) {
  bool held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held = owner != 0 && lock_pids_.erase({shared->ino, owner}) > 0;
  }
  if (!held) return then();
  client_->Unlock(shared->cred, shared->File().get(), owner, 0, nfs::kLockToEnd,
                  [then](nfs::Result<nfs::Unit>) { then(); });
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
  auto shared = state->shared;
  client_->TestLock(shared->cred, shared->File().get(), owner, type, start,
                    LockLength(start, end),
                    [this, ino = shared->ino, reply](nfs::Result<std::optional<nfs::LockConflict>> r) {
                      if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
                      LockOut out;
                      if (r->has_value()) {
                        const nfs::LockConflict& c = **r;
                        out.conflict = true;
                        if (c.same_client && c.owner != 0) {
                          std::lock_guard<std::mutex> lock(mu_);
                          auto it = lock_pids_.find({ino, c.owner});
                          if (it != lock_pids_.end()) out.pid = it->second;
                        }
                        out.type = c.type;
                        out.start = c.offset;
                        out.end = c.length == nfs::kLockToEnd ? UINT64_MAX
                                                              : c.offset + c.length - 1;
                      }
                      reply(0, out);
                    });
}

void FileSystem::SetLock(uint64_t handle, uint64_t owner, uint32_t pid, bool unlock,
                         nfs::LockType type, uint64_t start, uint64_t end, bool wait,
                         Interrupted interrupted, Reply<None> reply) {
  auto state = FindOpen(handle);
  if (!state) return reply(EBADF, {});
  auto shared = state->shared;
  if (unlock) {
    // The next holder, maybe on another node, must read what we wrote under
    // the lock: send and commit it before the LOCKU.
    AfterPendingWrites(shared->ino, [this, shared, owner, start, end, reply] {
      client_->Unlock(shared->cred, shared->File().get(), owner, start, LockLength(start, end),
                      [reply](nfs::Result<nfs::Unit> r) { reply(ErrnoFromStatus(r.status()), {}); });
    });
    return;
  }
  bool can_write;
  {
    std::lock_guard<std::mutex> lock(shared->mu);
    can_write = shared->write;
  }
  if (type == nfs::LockType::kWrite && !can_write) {
    // NFSv4 write locks need an open for writing (flock(LOCK_EX) on an
    // O_RDONLY descriptor): widen the open if the user may write, else
    // EBADF as the kernel NFS client answers.
    client_->Upgrade(shared->cred, shared->File().get(), false, true,
                     [this, shared, owner, pid, type, start, end, wait, interrupted,
                      reply](nfs::Result<nfs::Unit> r) {
                       if (!r.ok()) return reply(EBADF, {});
                       {
                         std::lock_guard<std::mutex> lock(shared->mu);
                         shared->write = true;
                       }
                       TryLock(shared, owner, pid, type, start, end, wait, interrupted, reply);
                     });
    return;
  }
  TryLock(std::move(shared), owner, pid, type, start, end, wait, std::move(interrupted),
          std::move(reply));
}

void FileSystem::TryLock(std::shared_ptr<SharedOpen> shared, uint64_t owner, uint32_t pid,
                         nfs::LockType type, uint64_t start, uint64_t end, bool wait,
                         Interrupted interrupted, Reply<None> reply) {
  client_->Lock(shared->cred, shared->File().get(), owner, type, start, LockLength(start, end),
                [this, shared, owner, pid, type, start, end, wait, interrupted,
                 sent = inodes_.Mark(InodeTable::kNoThread),
                 reply](nfs::Result<nfs::Attributes> r) {
                  if (r.ok()) {
                    {
                      std::lock_guard<std::mutex> lock(mu_);
                      lock_pids_[{shared->ino, owner}] = pid;
                    }
                    return RevalidateForLock(shared, *r, sent, [reply] { reply(0, {}); });
                  }
                  if (!r.status().IsNfs(nfs::v4::NFS4ERR_DENIED)) {
                    return reply(ErrnoFromStatus(r.status()), {});
                  }
                  if (!wait) return reply(EAGAIN, {});
                  if (interrupted && interrupted()) return reply(EINTR, {});
                  // Held elsewhere: ask again shortly (NFSv4.1 servers may
                  // also call back, which we do not listen for).
                  lock_timer_.Schedule(options_.lock_poll, [=, this] {
                    TryLock(shared, owner, pid, type, start, end, wait, interrupted, reply);
                  });
                });
}

}  // namespace floatmount::fuse
