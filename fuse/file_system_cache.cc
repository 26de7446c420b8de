// FileSystem: the per-file caches (file_cache.h), their budget and timer.
#include <algorithm>

#include "fuse/cache/cache_budget.h"
#include "fuse/file_system.h"
#include "fuse/file_system_state.h"

namespace floatmount::fuse {

std::shared_ptr<FileCache> FileSystem::CacheForLocked(InodeId ino, const nfs::FileHandle& fh) {
  std::weak_ptr<FileCache>& slot = caches_[ino];
  if (auto cache = slot.lock()) return cache;
  // Forget the caches of files nobody has open any more.
  for (auto it = caches_.begin(); it != caches_.end();) {
    it = it->second.expired() && it->first != ino ? caches_.erase(it) : std::next(it);
  }
  CacheContext context;
  context.client = client_;
  context.budget = budget_;
  context.counters = counters_;
  // Commit in the background once a file holds a quarter of the budget
  // unstable, so writers rarely find it full of data waiting for COMMIT.
  context.commit_threshold = budget_->capacity() * budget_->chunk_size() / 4;
  context.max_write = options_.max_write;
  context.max_read = options_.max_read;
  context.written = [written = written_, ino](uint64_t end) { written->Written(ino, end); };
  // The attributes after a flush's only WRITE answer the GETATTR that
  // follows a close (a chown's, a stat's) as a SETATTR's reply does
  // (InodeTable::FreshAfterChange): the WRITE went out after every byte
  // written before the flush (Changing() in FlushCache), and a write since
  // ends them.
  if (options_.attr_timeout > 0) {
    context.file_sync_sending = [this, ino]() -> CacheContext::Synced {
      const auto sent = inodes_.Mark(InodeTable::kNoThread);  // the flush's reply has none
      return [this, ino, sent](const nfs::Attributes& after) {
        inodes_.UpdateAttributes(ino, after, sent);
        inodes_.FreshAfterChange(ino, sent, sent.at + FreshFor());
      };
    };
  }
  auto cache = std::make_shared<FileCache>(context, fh);
  slot = cache;
  return cache;
}

std::shared_ptr<FileCache> FileSystem::FindCache(InodeId ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = caches_.find(ino);
  return it == caches_.end() ? nullptr : it->second.lock();
}

void FileSystem::AfterPendingWrites(InodeId ino, std::function<void()> then) {
  auto cache = FindCache(ino);
  if (!cache || !cache->HasUncommitted()) return then();
  cache->Flush(std::move(then));
}

void FileSystem::DropCachedBytes(InodeId ino) {
  if (auto cache = FindCache(ino)) cache->DropClean();
}

void FileSystem::Resized(InodeId ino) {
  written_->Resized(ino);
  DropCachedBytes(ino);
}

void FileSystem::ApplyPendingSize(InodeId ino, std::optional<uint64_t> stamp,
                                  nfs::Attributes* attr) const {
  if (attr->type != nfs::FileType::kRegular) return;
  // Pending first: a WRITE completing now is recorded in written_ before
  // it stops being pending, so one of the two sees it.
  if (auto cache = FindCache(ino)) attr->size = std::max(attr->size, cache->PendingEnd());
  if (stamp) attr->size = written_->SizeAfter(ino, *stamp, attr->size);
}

std::vector<std::shared_ptr<FileCache>> FileSystem::LiveCaches() const {
  std::vector<std::shared_ptr<FileCache>> caches;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [ino, weak] : caches_) {
    if (auto cache = weak.lock()) caches.push_back(std::move(cache));
  }
  return caches;
}

void FileSystem::RelieveCaches() {
  for (auto& cache : LiveCaches()) cache->Relieve();
}

void FileSystem::TickCaches() {
  for (auto& cache : LiveCaches()) cache->Tick();
  // Give memory back once the cache has been empty for a while.
  if (budget_->in_use() == 0 && ++idle_ticks_ >= 30) {
    budget_->Trim();
    idle_ticks_ = 0;
  }
  writeback_timer_.Schedule(kTickInterval, [this] { TickCaches(); });
}

CacheStats FileSystem::cache_stats() const {
  const CacheCounters& c = *counters_;
  CacheStats s;
  s.budget = uint64_t(budget_->capacity()) * budget_->chunk_size();
  s.in_use = uint64_t(budget_->in_use()) * budget_->chunk_size();
  s.high_water = uint64_t(budget_->high_water()) * budget_->chunk_size();
  s.writer_waits = budget_->waits();
  s.read_from_cache = c.read_from_cache;
  s.read_from_server = c.read_from_server;
  s.prefetched = c.prefetched;
  s.prefetch_hits = c.prefetch_hits;
  s.prefetch_wasted = c.prefetch_wasted;
  s.read_waits = c.read_waits;
  s.dirty = c.dirty;
  s.unstable = c.unstable;
  s.written_back = c.written_back;
  s.commits = c.commits;
  s.resent = c.resent;
  s.write_errors = c.write_errors;
  s.flushes = c.flushes;
  s.flush_seconds_total = double(c.flush_ns) / 1e9;
  s.flush_seconds_max = double(c.flush_ns_max) / 1e9;
  s.lock_invalidations = c.lock_invalidations;
  s.parked_writes = c.parked_total;
  return s;
}

}  // namespace floatmount::fuse
