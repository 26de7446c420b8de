// FileCache: read-ahead (see file_cache.h).
#include <cstring>
#include <mutex>
#include <optional>
#include <vector>

#include "fuse/errno_map.h"
#include "fuse/cache/file_cache.h"
#include "fuse/cache/file_cache_state.h"

namespace floatmount::fuse {

namespace {

// [offset, offset + dest.size()) as READs of at most `piece` bytes, all
// sent at once (one READ when it fits, or when piece is 0). `done` gets
// the bytes from the start of `dest` that came back without a gap, and
// whether the file ends there: a READ that came back short ends them
// (what later READs brought is not counted; the caller asks again from
// there), and an error counts only if no short READ came before it.
void ReadInPieces(nfs::Client* client, const CacheIdentity& who, const nfs::FileHandle& fh,
                  uint64_t offset, std::span<uint8_t> dest, uint32_t piece,
                  nfs::Callback<nfs::ReadResult> done) {
  if (piece == 0 || dest.size() <= piece) {
    return client->Read(who.cred, fh, who.file.get(), offset, dest, std::move(done));
  }
  struct Pieces {
    CacheIdentity who;  // keeps the open alive while READs use it
    std::mutex mu;
    std::vector<std::optional<nfs::Result<nfs::ReadResult>>> results;  // GUARDED_BY(mu)
    size_t left = 0;                                                   // GUARDED_BY(mu)
    nfs::Callback<nfs::ReadResult> done;
  };
  const size_t n = (dest.size() + piece - 1) / piece;
  auto pieces = std::make_shared<Pieces>();
  pieces->who = who;
  pieces->results.resize(n);
  pieces->left = n;
  pieces->done = std::move(done);
  auto finish = [pieces, piece, size = dest.size()] {
    nfs::ReadResult total;
    for (size_t i = 0; i < pieces->results.size(); ++i) {
      const nfs::Result<nfs::ReadResult>& r = *pieces->results[i];
      if (!r.ok()) return pieces->done(r.status());
      total.count += r->count;
      const size_t asked = std::min<size_t>(piece, size - i * size_t(piece));
      if (r->eof || r->count < asked) {
        total.eof = r->eof;
        break;
      }
    }
    pieces->done(total);
  };
  for (size_t i = 0; i < n; ++i) {
    const size_t at = i * size_t(piece);
    client->Read(pieces->who.cred, fh, pieces->who.file.get(), offset + at,
                 dest.subspan(at, std::min<size_t>(piece, dest.size() - at)),
                 [pieces, i, finish](nfs::Result<nfs::ReadResult> r) {
                   {
                     std::lock_guard<std::mutex> lock(pieces->mu);
                     pieces->results[i] = std::move(r);
                     if (--pieces->left != 0) return;
                   }
                   finish();  // the last one back: no other callback touches results now
                 });
  }
}

}  // namespace

void FileCache::Read(const CacheIdentity& who, const ReadPlan& plan, uint64_t offset,
                     size_t size, DataVersion version, uint64_t file_size,
                     Reply<ReadOut> reply) {
  auto self = shared_from_this();
  auto job = std::make_shared<ReadJob>();
  job->offset = offset;
  job->size = size;
  job->reply = std::move(reply);
  Actions actions;
  bool direct = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (clean_version_ != version) {
      DropCleanLocked();
      clean_version_ = version;
    }
    if (PendingAtOrAfterLocked(offset)) {
      direct = true;  // our own writes first (ReadDirect sends them)
    } else {
      const size_t cs = chunk();
      for (uint64_t base = offset / cs * cs; base < offset + size; base += cs) {
        auto it = clean_.find(base);
        std::shared_ptr<CleanChunk> c;
        if (it != clean_.end() && it->second->state != CleanChunk::State::kFailed) {
          c = it->second;
        } else if (plan.sequential && (c = NewCleanLocked(base, false, who))) {
          actions.fetches.push_back(c);
        }
        if (!c) {
          direct = true;  // random, or no memory for it: ask the server as asked
          break;
        }
        job->chunks.push_back(std::move(c));
      }
      const uint64_t ahead_to = std::min(plan.ahead_to, (file_size + cs - 1) / cs * cs);
      for (uint64_t base = plan.ahead_from; base < ahead_to; base += cs) {
        if (clean_.count(base) != 0 || dirty_.count(base) != 0) continue;
        auto c = NewCleanLocked(base, true, who);
        if (!c) break;  // the budget is spent: read-ahead yields
        actions.fetches.push_back(std::move(c));
      }
      if (!direct) {
        for (auto& c : job->chunks) {
          if (c->state != CleanChunk::State::kFetching) continue;
          if (job->remaining++ == 1) context_.counters->read_waits++;
          c->waiters.push_back([self, job] {
            if (--job->remaining == 0) self->Assemble(job);
          });
        }
      }
    }
  }
  Run(std::move(actions));
  if (direct) return ReadDirect(who, offset, size, std::move(job->reply));
  if (--job->remaining == 0) Assemble(job);
}

std::shared_ptr<FileCache::CleanChunk> FileCache::NewCleanLocked(uint64_t base, bool prefetched,
                                                                 const CacheIdentity& who) {
  CacheBudget::Buffer buffer = context_.budget->TryAcquire();
  if (!buffer) return nullptr;
  auto c = std::make_shared<CleanChunk>();
  c->base = base;
  c->data = std::move(buffer);
  c->who = who;
  c->prefetched = prefetched;
  clean_[base] = c;
  return c;
}

void FileCache::Fetch(std::shared_ptr<CleanChunk> c) {
  auto self = shared_from_this();
  const uint32_t have = c->valid;  // only the fetch changes it, one step at a time
  CleanChunk* raw = c.get();
  ReadInPieces(context_.client, raw->who, fh_, raw->base + have,
               std::span<uint8_t>(raw->data.get() + have, chunk() - have), context_.max_read,
               [self, c = std::move(c)](nfs::Result<nfs::ReadResult> r) {
                 self->FetchDone(c, std::move(r));
               });
}

void FileCache::FetchDone(const std::shared_ptr<CleanChunk>& c, nfs::Result<nfs::ReadResult> r) {
  std::vector<std::function<void()>> waiters;
  bool more = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!r.ok()) {
      c->state = CleanChunk::State::kFailed;
      c->error = ErrnoFromStatus(r.status());
      auto it = clean_.find(c->base);
      if (it != clean_.end() && it->second == c) clean_.erase(it);
    } else {
      c->valid += r->count;
      (c->prefetched ? context_.counters->prefetched : context_.counters->read_from_server) +=
          r->count;
      if (r->eof || r->count == 0) c->eof = true;
      more = !c->eof && c->valid < chunk();  // a short READ: fetch the rest
      if (!more) c->state = CleanChunk::State::kReady;
    }
    if (!more) waiters.swap(c->waiters);
  }
  if (more) return Fetch(c);
  for (auto& w : waiters) w();
}

void FileCache::Assemble(const std::shared_ptr<ReadJob>& job) {
  struct Piece {
    const CleanChunk* chunk;
    uint32_t lo, len;
  };
  std::vector<Piece> pieces;
  size_t total = 0;
  int error = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t end = job->offset + job->size;
    uint64_t at = job->offset;
    for (auto& c : job->chunks) {
      if (c->state == CleanChunk::State::kFailed) {
        error = c->error;
        break;
      }
      const uint32_t lo = uint32_t(at - c->base);
      const uint32_t hi = uint32_t(std::min<uint64_t>(end - c->base, chunk()));
      const uint32_t avail = std::min(hi, c->valid);
      if (avail > lo) {
        pieces.push_back(Piece{c.get(), lo, avail - lo});
        total += avail - lo;
        c->served += avail - lo;
        at += avail - lo;
      }
      if (c->prefetched && !c->hit) {
        c->hit = true;
        context_.counters->prefetch_hits++;
      }
      if (c->served >= c->valid) {  // every byte has been read: release it
        auto it = clean_.find(c->base);
        if (it != clean_.end() && it->second == c) clean_.erase(it);
      }
      if (avail < hi) break;  // end of file
    }
  }
  if (error != 0) return job->reply(error, {});
  context_.counters->read_from_cache += total;
  ReadOut out;
  out.size = total;
  if (pieces.size() == 1) {
    // Straight from the chunk's memory; the chunk lives while the reply does.
    out.data = CacheBudget::Buffer(job->chunks.front()->data,
                                   job->chunks.front()->data.get() + pieces[0].lo);
  } else if (total > 0) {
    out.data = std::shared_ptr<uint8_t[]>(new uint8_t[total]);
    size_t at = 0;
    for (const Piece& p : pieces) {
      std::memcpy(out.data.get() + at, p.chunk->data.get() + p.lo, p.len);
      at += p.len;
    }
  }
  job->reply(0, std::move(out));
}

void FileCache::ReadDirect(const CacheIdentity& who, uint64_t offset, size_t size,
                           Reply<ReadOut> reply) {
  bool pending;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending = PendingAtOrAfterLocked(offset);
  }
  if (!pending) return ReadFromServer(who, offset, size, std::move(reply));
  auto self = shared_from_this();
  WriteOut([self, who, offset, size, reply] { self->ReadFromServer(who, offset, size, reply); });
}

// One read as asked, in as many READs as the server needs.
void FileCache::ReadFromServer(const CacheIdentity& who, uint64_t offset, size_t size,
                               Reply<ReadOut> reply) {
  struct Progress {
    CacheIdentity who;
    ReadOut out;
    size_t want;
  };
  auto progress = std::make_shared<Progress>();
  progress->who = who;
  progress->out.data = std::shared_ptr<uint8_t[]>(new uint8_t[std::max<size_t>(size, 1)]);
  progress->want = size;
  auto self = shared_from_this();
  auto step = std::make_shared<std::function<void()>>();
  *step = [self, offset, progress, step, reply]() {
    const size_t have = progress->out.size;
    ReadInPieces(
        self->context_.client, progress->who, self->fh_, offset + have,
        std::span<uint8_t>(progress->out.data.get() + have, progress->want - have),
        self->context_.max_read,
        [self, progress, step, reply](nfs::Result<nfs::ReadResult> r) {
          if (!r.ok()) {
            *step = nullptr;  // breaks the self-reference
            return reply(ErrnoFromStatus(r.status()), {});
          }
          progress->out.size += r->count;
          self->context_.counters->read_from_server += r->count;
          if (r->eof || r->count == 0 || progress->out.size >= progress->want) {
            auto out = std::move(progress->out);
            *step = nullptr;
            return reply(0, std::move(out));
          }
          (*step)();
        });
  };
  (*step)();
}

std::optional<uint64_t> FileCache::SeedMark() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (PendingAtOrAfterLocked(0)) return std::nullopt;
  return clean_generation_;
}

bool FileCache::Seed(const CacheIdentity& who, uint64_t mark, uint64_t change,
                     std::span<const uint8_t> data) {
  std::lock_guard<std::mutex> lock(mu_);
  if (mark != clean_generation_ || PendingAtOrAfterLocked(0) || data.size() > chunk() ||
      clean_.count(0) != 0) {
    return false;
  }
  if (clean_version_ != DataVersion{change}) {
    DropCleanLocked();
    clean_version_ = DataVersion{change};
  }
  auto c = NewCleanLocked(0, false, who);
  if (!c) return false;  // no memory to spare: the read asks the server
  // An empty file (truncated since it was seen) has no bytes to copy, and
  // memcpy from an empty span's null pointer is undefined.
  if (!data.empty()) std::memcpy(c->data.get(), data.data(), data.size());
  c->valid = uint32_t(data.size());
  c->eof = true;
  c->state = CleanChunk::State::kReady;
  context_.counters->read_from_server += data.size();
  return true;
}

void FileCache::DropClean() {
  std::lock_guard<std::mutex> lock(mu_);
  DropCleanLocked();
}

void FileCache::DropCleanLocked() {
  ++clean_generation_;
  for (auto& [base, c] : clean_) {
    if (c->prefetched) context_.counters->prefetch_wasted += c->valid - std::min<uint64_t>(c->served, c->valid);
  }
  clean_.clear();
}

void FileCache::DropCleanAtLocked(uint64_t base) {
  ++clean_generation_;
  auto it = clean_.find(base);
  if (it == clean_.end()) return;
  const CleanChunk& c = *it->second;
  if (c.prefetched) context_.counters->prefetch_wasted += c.valid - std::min<uint64_t>(c.served, c.valid);
  clean_.erase(it);
}

void FileCache::DropStaleEndLocked(uint64_t end) {
  // A chunk that met the end of the file knows only that the file ended
  // there when it was fetched; a write that reaches past that end makes it
  // wrong (the bytes between are now a hole of zeros, or data), and serving
  // it would be a short read in the middle of the file, which the kernel
  // takes for the file having shrunk (issue 13). A chunk still on its way
  // may meet that old end too.
  ++clean_generation_;
  for (auto it = clean_.begin(); it != clean_.end() && it->first < end;) {
    const CleanChunk& c = *it->second;
    const bool stale = (c.eof && c.base + c.valid < end) || c.state == CleanChunk::State::kFetching;
    if (!stale) {
      ++it;
      continue;
    }
    if (c.prefetched) context_.counters->prefetch_wasted += c.valid - std::min<uint64_t>(c.served, c.valid);
    it = clean_.erase(it);
  }
}

bool FileCache::PendingAtOrAfterLocked(uint64_t offset) const {
  const size_t cs = chunk();
  for (auto it = dirty_.lower_bound(offset / cs * cs); it != dirty_.end(); ++it) {
    if (!it->second->dirty.empty() || it->second->in_flight > 0) return true;
  }
  return false;
}

}  // namespace floatmount::fuse
