// FileCache: floatmount's read-ahead and write-back for one file (inode),
// shared by every open of it on this mount.
//
// Read-ahead: reads that a ReadPattern calls sequential are served from
// chunks (chunk_size bytes, aligned) fetched ahead in parallel over the
// session's connections; the NFS READ lands straight in the chunk, and a read
// within one chunk is answered from the chunk's memory without a copy. A
// chunk is released once every byte of it has been read, when the file's
// change attribute moves, when the file is written there, and under memory
// pressure. Random reads go to the server as asked.
//
// Write-back: writes are copied into chunks and the writer returns; a chunk
// is sent (UNSTABLE WRITEs, one per dirty range and wsize piece of it, in
// parallel with each other and with other chunks) once the writer has moved past its end, on flush/fsync/close, when
// the file has been idle for a second, and under memory pressure. Sent bytes
// are kept until a COMMIT answers with the verifier their WRITEs returned;
// a different verifier means the server restarted and may have lost them,
// so they are sent again (the chunk always holds the newest bytes: a writer
// waits while a WRITE of its chunk is on the wire, never changing bytes under
// it). Flush returns once everything written before it is committed. A
// background COMMIT runs when a file holds `commit_threshold` unstable bytes.
//
// Errors: a failed WRITE or COMMIT drops those bytes (they cannot be
// written), is logged, and bumps the file's error sequence; each open file
// description sees every error that happened after it was opened once, on
// its next write, flush, fsync or close (as Linux's errseq).
//
// Reads see this mount's writes: a read at or after bytes not yet on the
// server first sends them (the kernel's page cache serves most such reads
// itself).
//
// Back-pressure without holding threads (issue 14): a write that must wait
// (the budget is full, or a WRITE of its chunk is on the wire) copies its
// bytes, parks, and returns; it goes on from the budget's grant (the
// budget's scheduler thread) or from the chunk's last WRITE completion (a
// network thread), and its `done` runs once every byte is buffered. So the
// FUSE write's reply is delayed, not its worker: 32 writers on a slow server
// leave the workers free for other users' stat and read. The parked copies
// are bounded: past `max_parked` parked writes on the mount a write waits in
// its thread as before (memory then stays what 64 blocked workers' request
// buffers held). Waiting writers are served in order.
//
// Threads: FUSE threads call in; NFS completions run on network threads,
// budget grants on the budget's scheduler thread. One mutex per file, never
// held while calling the client, a reply or `done`. Nothing blocks, except
// the blocking Write and a write past `max_parked`.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <vector>

#include "fuse/cache/cache_budget.h"
#include "fuse/file_system.h"
#include "fuse/cache/interval_set.h"
#include "fuse/cache/read_pattern.h"
#include "nfs/client.h"

namespace floatmount::fuse {

// Mount-wide counters (for `floatmount status`). Bytes unless named.
struct CacheCounters {
  std::atomic<uint64_t> read_from_cache{0};   // served from read-ahead chunks
  std::atomic<uint64_t> read_from_server{0};  // READs asked by the application (not ahead)
  std::atomic<uint64_t> prefetched{0};        // fetched ahead of the application
  std::atomic<uint64_t> prefetch_hits{0};     // prefetched chunks that were read (chunks)
  std::atomic<uint64_t> prefetch_wasted{0};   // prefetched bytes dropped unread
  std::atomic<uint64_t> read_waits{0};        // reads that waited for a chunk on the wire
  std::atomic<int64_t> dirty{0};              // buffered, not yet acknowledged by the server
  std::atomic<int64_t> unstable{0};           // on the server, not yet committed
  std::atomic<uint64_t> written_back{0};      // sent by WRITE from the cache
  std::atomic<uint64_t> commits{0};           // COMMIT calls
  std::atomic<uint64_t> resent{0};            // sent again after a verifier change
  std::atomic<uint64_t> write_errors{0};      // failed WRITE/COMMIT calls
  std::atomic<uint64_t> flushes{0};           // flush/fsync/close waits
  std::atomic<uint64_t> flush_ns{0};          // their total time
  std::atomic<uint64_t> flush_ns_max{0};
  std::atomic<uint64_t> lock_invalidations{0};  // granted locks that found the file changed
  std::atomic<int64_t> parked_writes{0};  // writes waiting without a thread, now
  std::atomic<uint64_t> parked_total{0};  // writes that ever parked
};

// Who the cache reads and writes as: the opener's credentials and open.
struct CacheIdentity {
  nfs::Credentials cred;
  std::shared_ptr<nfs::OpenFile> file;
};

// The version of the file that cached chunks belong to: its change
// attribute, and while replies applied out of order leave that uncertain,
// which attributes were applied last (non-zero). Data read under an
// uncertain version may be older than attributes applied after it, sizes
// the kernel was handed: it must not answer once they came.
struct DataVersion {
  uint64_t change = 0;
  uint64_t uncertain_at = 0;
  bool operator==(const DataVersion&) const = default;
};

// What every file's cache of a mount shares.
struct CacheContext {
  nfs::Client* client = nullptr;  // outlives every FileCache
  std::shared_ptr<CacheBudget> budget;
  std::shared_ptr<CacheCounters> counters;
  uint64_t commit_threshold = 256ull << 20;
  std::chrono::milliseconds idle_flush{1000};  // Tick sends data idle this long
  uint32_t max_write = 0;  // the client's wsize: larger ranges go as several WRITEs
  uint32_t max_read = 0;   // the client's rsize: larger fetches go as several READs at once
  int64_t max_parked = 64;  // parked writes on the mount (each holds a copy of its bytes)
  // Called with the file's end reached by each WRITE that completed, under
  // the file's lock (WrittenEnds::Written: it calls nothing back).
  std::function<void(uint64_t end)> written;
  // For the one FILE_SYNC WRITE a flush sends (the last of a small file's
  // close or fsync), unless a SETATTR rides with it: called as it is sent,
  // outside the file's lock; what it returns gets the file's attributes
  // from the WRITE's compound once all its bytes are written, before the
  // flush completes (nfs::Client::WriteThenGetAttr). Unset: WRITE alone.
  using Synced = std::function<void(const nfs::Attributes& after)>;
  std::function<Synced()> file_sync_sending;
};

class FileCache : public std::enable_shared_from_this<FileCache> {
 public:
  FileCache(const CacheContext& context, nfs::FileHandle fh);
  ~FileCache();

  // Reads [offset, offset + size) as `who`. `version` and `file_size` are
  // the file's as last seen: cached chunks of another version are dropped,
  // and nothing is fetched ahead beyond the end.
  void Read(const CacheIdentity& who, const ReadPlan& plan, uint64_t offset, size_t size,
            DataVersion version, uint64_t file_size, Reply<ReadOut> reply);
  // O_DIRECT: no read-ahead, and nothing of this mount's writes pending.
  void ReadDirect(const CacheIdentity& who, uint64_t offset, size_t size, Reply<ReadOut> reply);
  // Buffers the bytes (copied; `data` need not outlive the call); `done`
  // runs once all are buffered: at once, or later from a grant or a WRITE
  // completion when the write had to wait (see above).
  void Write(const CacheIdentity& who, uint64_t offset, std::span<const uint8_t> data,
             std::function<void()> done);
  // The same, returning once the bytes are buffered.
  void Write(const CacheIdentity& who, uint64_t offset, std::span<const uint8_t> data);

  // `done` runs once every byte written before the call is committed (or
  // failed: see TakeError).
  void Flush(std::function<void()> done);
  // Flush, then the SETATTR `attrs` (not the size) as `cred`: when the
  // flush is one FILE_SYNC WRITE made as `cred`, the SETATTR goes in its
  // compound (nfs::Client::WriteThenSetAttr; tar's write then futimens, one
  // round trip less). `done` gets the SETATTR's outcome, or nullopt when it
  // did not go (the caller sends it alone).
  using SetAttrOutcome = std::optional<nfs::Result<nfs::Attributes>>;
  void FlushThenSetAttr(const nfs::Credentials& cred, const nfs::SetAttributes& attrs,
                        std::function<void(SetAttrOutcome)> done);
  // `done` runs once every byte written before the call is on the server
  // (not necessarily committed).
  void WriteOut(std::function<void()> done);

  // The error sequence now (a new descriptor starts here).
  uint64_t error_seq() const;
  // The newest error after `seen` (0: none); moves `seen` on.
  int TakeError(std::atomic<uint64_t>& seen) const;

  // Where this mount's writes not yet on the server end (0: none): the
  // file is at least this long even if the server does not know yet.
  uint64_t PendingEnd() const;
  bool HasUncommitted() const;

  // Bytes read with the file's OPEN (OpenRequest::read_first) become a
  // chunk, as if fetched, so the first read needs no READ. Between the two
  // calls nothing of this mount may have changed the file's bytes: take the
  // mark before the OPEN goes out (nullopt: this mount has writes on the
  // way, do not read first); Seed refuses bytes once a write, a truncate
  // (DropClean) or a drop of cached bytes came after the mark. `data` must
  // be the whole file (its READ said eof); it is labelled `change`.
  std::optional<uint64_t> SeedMark() const;
  bool Seed(const CacheIdentity& who, uint64_t mark, uint64_t change,
            std::span<const uint8_t> data);

  void DropClean();  // read-ahead chunks
  void Relieve();    // memory pressure: drop read-ahead, send, commit
  void Tick();       // periodic: send and commit data idle for idle_flush

 private:
  struct CleanChunk;
  struct DirtyChunk;
  struct ReadJob;
  struct PendingWrite;
  struct Send {
    std::shared_ptr<DirtyChunk> chunk;
    uint32_t lo = 0, hi = 0;
    uint64_t seq = 0;
    bool file_sync = false;  // the only WRITE a flush needs: no COMMIT after it
    // A SETATTR to send in the WRITE's compound, and where its outcome goes
    // (FlushThenSetAttr).
    struct ThenSet {
      nfs::SetAttributes attrs;
      std::shared_ptr<SetAttrOutcome> outcome;
    };
    std::shared_ptr<const ThenSet> then_set;
  };
  struct Waiter {
    uint64_t target = 0;  // every WRITE up to this sequence number must be done
    bool commit = false;  // ... and then a COMMIT started after that
    uint64_t round = 0;   // the COMMIT round it waits for (0: none yet)
    std::function<void()> done;
  };
  // What to do once the lock is released.
  struct Actions {
    std::vector<Send> sends;
    std::vector<std::shared_ptr<CleanChunk>> fetches;
    std::optional<uint64_t> commit_round;
    std::vector<std::function<void()>> done;
  };

  size_t chunk() const { return context_.budget->chunk_size(); }
  void Run(Actions actions);
  // Flush's sends and waiter (`done`), into `actions`.
  void FlushLocked(Actions* actions, std::function<void()> done);

  // Read-ahead (file_cache_read.cc).
  void ReadFromServer(const CacheIdentity& who, uint64_t offset, size_t size,
                      Reply<ReadOut> reply);
  void Fetch(std::shared_ptr<CleanChunk> c);
  void FetchDone(const std::shared_ptr<CleanChunk>& c, nfs::Result<nfs::ReadResult> r);
  void Assemble(const std::shared_ptr<ReadJob>& job);
  std::shared_ptr<CleanChunk> NewCleanLocked(uint64_t base, bool prefetched,
                                             const CacheIdentity& who);
  void DropCleanLocked();
  void DropCleanAtLocked(uint64_t base);
  // Drops the chunks that met the file's end before `end` (a write reaches
  // past it) and those still being fetched.
  void DropStaleEndLocked(uint64_t end);
  bool PendingAtOrAfterLocked(uint64_t offset) const;

  // Write-back (file_cache_write.cc).
  // Copies what it can; returns once `w` is done or parked.
  static std::shared_ptr<PendingWrite> MakePendingWrite(const CacheIdentity& who, uint64_t offset,
                                                        std::span<const uint8_t> data);
  void Continue(const std::shared_ptr<PendingWrite>& w);
  // Continue, waiting in this thread until the bytes are buffered.
  void ContinueAndWait(const std::shared_ptr<PendingWrite>& w);
  void Park(const std::shared_ptr<PendingWrite>& w);
  void InstallLocked(uint64_t base, CacheBudget::Buffer buffer);
  void SendLocked(const std::shared_ptr<DirtyChunk>& c, Actions* actions);
  void SendAllLocked(Actions* actions);
  void SendOne(const Send& send);
  void SendDone(const Send& send, nfs::Result<nfs::WriteResult> r);
  void Commit(uint64_t round);
  void CommitDone(uint64_t round, nfs::Result<nfs::WriteVerifier> r);
  void ProgressLocked(Actions* actions, bool want_commit);
  bool WritesDoneLocked(uint64_t target) const;
  void MaybeFreeLocked(const std::shared_ptr<DirtyChunk>& c);
  void FailLocked(int error);

  const CacheContext context_;
  const nfs::FileHandle fh_;

  mutable std::mutex mu_;

  // Read-ahead state.
  std::map<uint64_t, std::shared_ptr<CleanChunk>> clean_;  // GUARDED_BY(mu_): by offset
  std::optional<DataVersion> clean_version_;                 // GUARDED_BY(mu_)
  // Moves on every write buffered and every drop of clean chunks (SeedMark).
  uint64_t clean_generation_ = 0;  // GUARDED_BY(mu_)

  // Write-back state.
  std::map<uint64_t, std::shared_ptr<DirtyChunk>> dirty_;  // GUARDED_BY(mu_): by offset
  std::set<uint64_t> sending_;                             // GUARDED_BY(mu_): WRITEs on the wire
  uint64_t next_seq_ = 1;                                  // GUARDED_BY(mu_)
  uint64_t unstable_bytes_ = 0;                            // GUARDED_BY(mu_)
  uint64_t committing_round_ = 0;                          // GUARDED_BY(mu_): 0 = none
  uint64_t last_round_ = 0;                                // GUARDED_BY(mu_)
  std::vector<std::pair<std::shared_ptr<DirtyChunk>, uint64_t>> round_chunks_;  // GUARDED_BY(mu_)
  std::vector<Waiter> waiters_;                            // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point last_write_;       // GUARDED_BY(mu_)
  mutable std::atomic<uint64_t> error_seq_{0};
  std::atomic<int> error_{0};
};

}  // namespace floatmount::fuse
