// FileCache's chunks (internal to fuse/file_cache*.cc).
#pragma once

#include "fuse/cache/file_cache.h"

namespace floatmount::fuse {

// Bytes of the file at [base, base + chunk size), read from the server.
// `data` and `valid` change only while kFetching; after that the chunk is
// read-only and may be read without the lock.
struct FileCache::CleanChunk {
  enum class State { kFetching, kReady, kFailed };
  uint64_t base = 0;
  CacheBudget::Buffer data;
  CacheIdentity who;         // reads as
  State state = State::kFetching;
  uint32_t valid = 0;        // bytes fetched
  bool eof = false;          // the file ends at base + valid
  int error = 0;             // kFailed
  bool prefetched = false;   // fetched ahead of any read that needed it
  bool hit = false;          // a read used it (prefetch hit counted)
  uint64_t served = 0;       // bytes handed to reads: released when all are
  std::vector<std::function<void()>> waiters;  // reads waiting for kReady/kFailed
};

// Bytes written through this mount at [base, base + chunk size), the
// newest version of each. `dirty` is not yet sent; `written` was sent
// UNSTABLE and is kept until a COMMIT vouches for it.
struct FileCache::DirtyChunk {
  uint64_t base = 0;
  CacheBudget::Buffer data;
  CacheIdentity who;  // the last writer: WRITEs and COMMIT go as them
  IntervalSet dirty;
  IntervalSet written;
  int in_flight = 0;          // WRITEs on the wire: `data` must not change
  uint32_t sending_end = 0;   // where the WRITEs on the wire end
  std::optional<nfs::WriteVerifier> verifier;  // of the WRITEs in `written`
  bool mixed = false;         // those WRITEs got different verifiers
  uint64_t write_gen = 0;     // WRITEs completed
  std::vector<std::function<void()>> idle_waiters;  // parked writes: run when in_flight is 0
};

// One application write on its way into the chunks (FileCache::Write).
// `data` is the caller's memory until the write parks; from then on it
// points into `owned`.
struct FileCache::PendingWrite {
  CacheIdentity who;
  uint64_t offset = 0;
  std::span<const uint8_t> data;
  std::vector<uint8_t> owned;
  size_t copied = 0;   // bytes of `data` in chunks
  bool parked = false;  // counted in parked_writes
  std::function<void()> done;
};

// One read served from chunks: assembled when the last one is ready.
struct FileCache::ReadJob {
  uint64_t offset = 0;
  size_t size = 0;
  std::vector<std::shared_ptr<CleanChunk>> chunks;
  std::atomic<int> remaining{1};
  Reply<ReadOut> reply;
};

}  // namespace floatmount::fuse
