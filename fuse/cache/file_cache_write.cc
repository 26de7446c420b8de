// FileCache: write-back (see file_cache.h).
#include <spdlog/spdlog.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <utility>

#include "fuse/errno_map.h"
#include "fuse/cache/file_cache.h"
#include "fuse/cache/file_cache_state.h"
#include "nfs/log_limiter.h"
#include "nfs/nfsstat4.h"

namespace floatmount::fuse {
namespace {

// A server that refuses every WRITE (a full disk) fails thousands a second.
nfs::LogLimiter& WriteBackErrors() {
  static nfs::LogLimiter limiter(5, std::chrono::seconds(10));
  return limiter;
}

}  // namespace

FileCache::FileCache(const CacheContext& context, nfs::FileHandle fh)
    : context_(context), fh_(std::move(fh)) {}

FileCache::~FileCache() {
  std::lock_guard<std::mutex> lock(mu_);
  DropCleanLocked();
  for (auto& [base, c] : dirty_) {
    context_.counters->dirty -= int64_t(c->dirty.bytes());
    context_.counters->unstable -= int64_t(c->written.bytes());
  }
}

void FileCache::Run(Actions actions) {
  for (auto& c : actions.fetches) Fetch(std::move(c));
  for (const Send& s : actions.sends) SendOne(s);
  if (actions.commit_round) Commit(*actions.commit_round);
  for (auto& done : actions.done) done();
}

std::shared_ptr<FileCache::PendingWrite> FileCache::MakePendingWrite(
    const CacheIdentity& who, uint64_t offset, std::span<const uint8_t> data) {
  auto w = std::make_shared<PendingWrite>();
  w->who = who;
  w->offset = offset;
  w->data = data;
  return w;
}

void FileCache::Write(const CacheIdentity& who, uint64_t offset, std::span<const uint8_t> data,
                      std::function<void()> done) {
  auto w = MakePendingWrite(who, offset, data);
  if (context_.counters->parked_writes.load() < context_.max_parked) {
    w->done = std::move(done);
    Continue(w);
    return;
  }
  // Too many parked copies on the mount: wait here, holding this thread.
  ContinueAndWait(w);
  done();
}

void FileCache::Write(const CacheIdentity& who, uint64_t offset, std::span<const uint8_t> data) {
  ContinueAndWait(MakePendingWrite(who, offset, data));
}

void FileCache::ContinueAndWait(const std::shared_ptr<PendingWrite>& w) {
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  w->done = [&] {
    std::lock_guard<std::mutex> lock(m);
    finished = true;
    cv.notify_all();
  };
  Continue(w);
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return finished; });
}

// From here on the write waits without a thread: its bytes must outlive
// the caller's buffer.
void FileCache::Park(const std::shared_ptr<PendingWrite>& w) {
  if (w->parked) return;
  w->parked = true;
  w->owned.assign(w->data.begin(), w->data.end());
  w->data = w->owned;
  context_.counters->parked_writes++;
  context_.counters->parked_total++;
}

void FileCache::InstallLocked(uint64_t base, CacheBudget::Buffer buffer) {
  if (dirty_.count(base) != 0) return;  // another writer made it meanwhile
  auto c = std::make_shared<DirtyChunk>();
  c->base = base;
  c->data = std::move(buffer);
  dirty_.emplace(base, std::move(c));
}

void FileCache::Continue(const std::shared_ptr<PendingWrite>& w) {
  const size_t chunk_size = chunk();
  const CacheIdentity& who = w->who;
  while (w->copied < w->data.size()) {
    const uint64_t at = w->offset + w->copied;
    const uint64_t base = at / chunk_size * chunk_size;
    const uint32_t lo = uint32_t(at - base);
    const uint32_t hi = uint32_t(std::min<uint64_t>(chunk_size, lo + (w->data.size() - w->copied)));
    Actions actions;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto it = dirty_.find(base);
      if (it == dirty_.end()) {
        lock.unlock();
        CacheBudget::Buffer buffer = context_.budget->TryAcquire();
        if (!buffer) {
          Park(w);  // before the grant can run on another thread
          buffer = context_.budget->AcquireOr(
              [self = shared_from_this(), w, base](CacheBudget::Buffer granted) {
                {
                  std::lock_guard<std::mutex> lock(self->mu_);
                  self->InstallLocked(base, std::move(granted));
                }
                self->Continue(w);
              });
          if (!buffer) return;  // parked: the grant goes on
        }
        lock.lock();
        InstallLocked(base, std::move(buffer));
        continue;
      }
      std::shared_ptr<DirtyChunk> c = it->second;
      if (c->in_flight > 0) {
        // Never change bytes a WRITE is sending; go on once it is done.
        Park(w);
        c->idle_waiters.push_back([self = shared_from_this(), w] { self->Continue(w); });
        return;
      }
      if (!c->dirty.empty() && c->who.cred.uid != who.cred.uid) {
        SendLocked(c, &actions);  // another user's bytes go out as that user
        lock.unlock();
        Run(std::move(actions));
        continue;
      }
      std::memcpy(c->data.get() + lo, w->data.data() + w->copied, hi - lo);
      const uint64_t before = c->dirty.bytes();
      c->dirty.Add(lo, hi);
      context_.counters->dirty += int64_t(c->dirty.bytes() - before);
      c->who = who;
      DropCleanAtLocked(base);
      if (w->copied == 0) DropStaleEndLocked(w->offset + w->data.size());
      last_write_ = std::chrono::steady_clock::now();
      // The writer has moved past this chunk: send it.
      if (c->dirty.end() == chunk_size) SendLocked(c, &actions);
      w->copied += hi - lo;
    }
    Run(std::move(actions));
  }
  if (w->parked) context_.counters->parked_writes--;
  if (w->done) std::exchange(w->done, nullptr)();
}

void FileCache::SendLocked(const std::shared_ptr<DirtyChunk>& c, Actions* actions) {
  // One WRITE per wsize piece of each range, all at once: a server with a
  // small wsize would otherwise take a chunk one short WRITE at a time.
  const uint32_t piece = context_.max_write == 0 ? uint32_t(chunk()) : context_.max_write;
  for (const auto& [lo, hi] : c->dirty.ranges()) {
    for (uint32_t at = lo; at < hi;) {
      const uint32_t end = at + std::min(piece, hi - at);
      const uint64_t seq = next_seq_++;
      sending_.insert(seq);
      if (c->in_flight++ == 0) c->sending_end = 0;
      c->sending_end = std::max(c->sending_end, end);
      actions->sends.push_back(Send{c, at, end, seq, false, nullptr});
      at = end;
    }
  }
  c->dirty.clear();
}

void FileCache::SendAllLocked(Actions* actions) {
  for (auto& [base, c] : dirty_) {
    if (!c->dirty.empty()) SendLocked(c, actions);
  }
}

void FileCache::SendOne(const Send& send) {
  auto self = shared_from_this();
  const DirtyChunk& c = *send.chunk;
  const std::span<const uint8_t> bytes(c.data.get() + send.lo, send.hi - send.lo);
  const auto stability = send.file_sync ? nfs::Stability::kFileSync : nfs::Stability::kUnstable;
  if (send.then_set) {
    // The SETATTR's outcome is in place before SendDone completes the flush.
    context_.client->WriteThenSetAttr(
        c.who.cred, fh_, c.who.file.get(), c.base + send.lo, bytes, stability, send.then_set->attrs,
        [self, send](nfs::Result<nfs::WriteResult> r, SetAttrOutcome set) {
          *send.then_set->outcome = std::move(set);
          self->SendDone(send, std::move(r));
        });
    return;
  }
  if (send.file_sync && context_.file_sync_sending) {
    context_.client->WriteThenGetAttr(
        c.who.cred, fh_, c.who.file.get(), c.base + send.lo, bytes, stability,
        [self, send, synced = context_.file_sync_sending()](nfs::Result<nfs::WriteResult> r,
                                                            std::optional<nfs::Attributes> after) {
          // A short WRITE's attributes are not the file's after the flush.
          if (r.ok() && after && r->count >= send.hi - send.lo) synced(*after);
          self->SendDone(send, std::move(r));
        });
    return;
  }
  context_.client->Write(
      c.who.cred, fh_, c.who.file.get(), c.base + send.lo, bytes, stability,
      [self, send](nfs::Result<nfs::WriteResult> r) { self->SendDone(send, std::move(r)); });
}

void FileCache::SendDone(const Send& send, nfs::Result<nfs::WriteResult> r) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    DirtyChunk& c = *send.chunk;
    const uint32_t asked = send.hi - send.lo;
    context_.counters->dirty -= asked;
    if (r.ok() && r->count == 0) r = nfs::Status::Nfs(nfs::v4::NFS4ERR_IO, "the server wrote nothing");
    const bool short_write = r.ok() && r->count < asked;
    // Recorded before the bytes stop counting as pending (PendingEnd), so
    // that an answer the server made before this WRITE cannot shrink the
    // file in between (written_ends.h).
    if (r.ok() && context_.written) {
      context_.written(c.base + send.lo + std::min<uint32_t>(r->count, asked));
    }
    if (!short_write) {
      sending_.erase(send.seq);
      if (--c.in_flight == 0) {
        for (auto& waiter : c.idle_waiters) actions.done.push_back(std::move(waiter));
        c.idle_waiters.clear();
      }
    }
    if (!r.ok()) {
      FailLocked(ErrnoFromStatus(r.status()));
      nfs::LogLimited(WriteBackErrors(), spdlog::level::warn, "write-back",
                      "write-back of {} bytes at offset {} failed: {}", asked, c.base + send.lo,
                      r.status().message());
    } else {
      const uint32_t count = std::min<uint32_t>(r->count, asked);
      context_.counters->written_back += count;
      // Only FILE_SYNC4 spares the COMMIT: DATA_SYNC4 promises the data
      // but not all of the file's metadata (RFC 8881 18.32.3), and fsync
      // and close promise the whole file (so does the Linux client,
      // nfs_write_need_commit). A server that commits less than a
      // FILE_SYNC WRITE asked gets a COMMIT all the same.
      if (r->committed != nfs::Stability::kFileSync) {
        const uint64_t before = c.written.bytes();
        c.written.Add(send.lo, send.lo + count);
        const uint64_t added = c.written.bytes() - before;
        unstable_bytes_ += added;
        context_.counters->unstable += int64_t(added);
        if (c.verifier && *c.verifier != r->verifier) c.mixed = true;
        c.verifier = r->verifier;
        ++c.write_gen;
      }
      if (short_write) {
        // The rest goes again under the same sequence number, still in
        // flight: whoever waits for this WRITE (a flush, fsync, a read of
        // these bytes) waits for all of it (issue 13: knfsd's 128 KiB wsize
        // let fsync and reads overtake the rest of a chunk). Alone: a
        // SETATTR that rode with the first part goes again after it.
        context_.counters->dirty += asked - count;
        actions.sends.push_back(
            Send{send.chunk, send.lo + count, send.hi, send.seq, send.file_sync, nullptr});
      }
    }
    MaybeFreeLocked(send.chunk);
    ProgressLocked(&actions, false);
  }
  Run(std::move(actions));
}

void FileCache::FailLocked(int error) {
  error_.store(error == 0 ? EIO : error);
  error_seq_.fetch_add(1);
  context_.counters->write_errors++;
}

void FileCache::MaybeFreeLocked(const std::shared_ptr<DirtyChunk>& c) {
  if (!c->dirty.empty() || !c->written.empty() || c->in_flight > 0) return;
  auto it = dirty_.find(c->base);
  if (it != dirty_.end() && it->second == c) dirty_.erase(it);
}

bool FileCache::WritesDoneLocked(uint64_t target) const {
  return sending_.empty() || *sending_.begin() > target;
}

// Completes the waiters whose writes are done, and starts a COMMIT round
// when a waiter needs one, memory is short, or enough is unstable.
void FileCache::ProgressLocked(Actions* actions, bool want_commit) {
  bool anything_written = unstable_bytes_ > 0;
  bool need_round = want_commit && anything_written;
  if (anything_written && unstable_bytes_ >= context_.commit_threshold) need_round = true;
  for (auto it = waiters_.begin(); it != waiters_.end();) {
    if (!WritesDoneLocked(it->target) || it->round != 0) {
      ++it;
      continue;
    }
    if (!it->commit || !anything_written) {
      actions->done.push_back(std::move(it->done));
      it = waiters_.erase(it);
      continue;
    }
    need_round = true;
    ++it;
  }
  if (!need_round || committing_round_ != 0) return;
  committing_round_ = ++last_round_;
  round_chunks_.clear();
  for (auto& [base, c] : dirty_) {
    if (!c->written.empty()) round_chunks_.emplace_back(c, c->write_gen);
  }
  for (Waiter& w : waiters_) {
    if (w.commit && w.round == 0 && WritesDoneLocked(w.target)) w.round = committing_round_;
  }
  actions->commit_round = committing_round_;
}

void FileCache::Commit(uint64_t round) {
  CacheIdentity who;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!round_chunks_.empty()) who = round_chunks_.front().first->who;
  }
  context_.counters->commits++;
  auto self = shared_from_this();
  context_.client->Commit(who.cred, fh_, 0, 0, [self, round](nfs::Result<nfs::WriteVerifier> r) {
    self->CommitDone(round, std::move(r));
  });
}

void FileCache::CommitDone(uint64_t round, nfs::Result<nfs::WriteVerifier> r) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    committing_round_ = 0;
    bool resent = false;
    for (auto& [c, gen] : round_chunks_) {
      const uint64_t bytes = c->written.bytes();
      if (!r.ok()) {
        // The server could not make the bytes stable: they are lost to us.
        unstable_bytes_ -= bytes;
        context_.counters->unstable -= int64_t(bytes);
        c->written.clear();
      } else if (!c->verifier || *c->verifier != *r || c->mixed) {
        // The server restarted since these WRITEs: send them again.
        unstable_bytes_ -= bytes;
        context_.counters->unstable -= int64_t(bytes);
        context_.counters->resent += bytes;
        context_.counters->dirty += int64_t(bytes);
        c->dirty.AddAll(c->written);
        c->written.clear();
        c->verifier.reset();
        c->mixed = false;
        SendLocked(c, &actions);
        resent = true;
      } else if (c->write_gen == gen) {
        unstable_bytes_ -= bytes;
        context_.counters->unstable -= int64_t(bytes);
        c->written.clear();
      }  // else: written again since the round began; the next round takes it
      MaybeFreeLocked(c);
    }
    round_chunks_.clear();
    if (!r.ok()) {
      FailLocked(ErrnoFromStatus(r.status()));
      nfs::LogLimited(WriteBackErrors(), spdlog::level::warn, "commit", "COMMIT failed: {}",
                      r.status().message());
    } else if (resent) {
      spdlog::warn("the server's write verifier changed (it restarted): sending uncommitted data again");
    }
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->round != round) {
        ++it;
        continue;
      }
      if (resent && r.ok()) {  // wait for the resent bytes and another COMMIT
        it->round = 0;
        it->target = next_seq_ - 1;
        ++it;
        continue;
      }
      actions.done.push_back(std::move(it->done));
      it = waiters_.erase(it);
    }
    ProgressLocked(&actions, false);
  }
  Run(std::move(actions));
}

void FileCache::FlushLocked(Actions* actions, std::function<void()> done) {
  SendAllLocked(actions);
  // A flush that needs one WRITE and nothing else made stable (a small
  // file written and closed) sends it FILE_SYNC: the server commits it
  // with the WRITE, and the COMMIT round trip is saved (the kernel
  // client's FLUSH_STABLE). Anything unstable or in flight already needs
  // a COMMIT, which then covers this WRITE too.
  if (actions->sends.size() == 1 && sending_.size() == 1 && unstable_bytes_ == 0) {
    actions->sends.front().file_sync = true;
  }
  waiters_.push_back(Waiter{next_seq_ - 1, true, 0, std::move(done)});
}

void FileCache::Flush(std::function<void()> done) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    FlushLocked(&actions, std::move(done));
    ProgressLocked(&actions, false);
  }
  Run(std::move(actions));
}

void FileCache::FlushThenSetAttr(const nfs::Credentials& cred, const nfs::SetAttributes& attrs,
                                 std::function<void(SetAttrOutcome)> done) {
  auto outcome = std::make_shared<SetAttrOutcome>();
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    FlushLocked(&actions, [outcome, done = std::move(done)] { done(std::move(*outcome)); });
    // Only with the one WRITE this flush waits for, and only as its
    // writer: one compound carries one user's credentials.
    Send* only = actions.sends.size() == 1 ? &actions.sends.front() : nullptr;
    if (only && only->file_sync && !attrs.size && only->chunk->who.cred == cred) {
      only->then_set = std::make_shared<Send::ThenSet>(Send::ThenSet{attrs, outcome});
    }
    ProgressLocked(&actions, false);
  }
  Run(std::move(actions));
}

void FileCache::WriteOut(std::function<void()> done) {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    SendAllLocked(&actions);
    waiters_.push_back(Waiter{next_seq_ - 1, false, 0, std::move(done)});
    ProgressLocked(&actions, false);
  }
  Run(std::move(actions));
}

void FileCache::Relieve() {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    DropCleanLocked();
    SendAllLocked(&actions);
    ProgressLocked(&actions, true);
  }
  Run(std::move(actions));
}

void FileCache::Tick() {
  Actions actions;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (dirty_.empty() ||
        std::chrono::steady_clock::now() - last_write_ < context_.idle_flush) {
      return;
    }
    SendAllLocked(&actions);
    ProgressLocked(&actions, true);
  }
  Run(std::move(actions));
}

uint64_t FileCache::error_seq() const { return error_seq_.load(); }

int FileCache::TakeError(std::atomic<uint64_t>& seen) const {
  const uint64_t now = error_seq_.load();
  return seen.exchange(now) == now ? 0 : error_.load();
}

uint64_t FileCache::PendingEnd() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = dirty_.rbegin(); it != dirty_.rend(); ++it) {
    const DirtyChunk& c = *it->second;
    const uint32_t end = std::max(c.dirty.end(), c.in_flight > 0 ? c.sending_end : 0u);
    if (end > 0) return c.base + end;
  }
  return 0;
}

bool FileCache::HasUncommitted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !dirty_.empty();
}

}  // namespace floatmount::fuse
