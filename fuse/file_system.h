// FileSystem: the POSIX filesystem over an nfs::Client, in the project's
// own types, so it can be tested without the kernel (fuse_adapter.cc turns
// kernel requests into these calls and these replies into kernel replies).
//
// Semantics (as the kernel NFS client):
//   - Every call carries the caller's credentials; the server decides
//     permissions. Reads and writes on an open file use the opener's.
//   - Close-to-open: open fetches fresh attributes; if the change attribute
//     moved since we last saw the file, the kernel's cached pages are
//     dropped (keep_cache = false). Close (flush/release) returns after the
//     written data is committed on the server.
//   - Reads and writes go through floatmount's cache (file_cache.h):
//     read-ahead for sequential readers, write-back with COMMIT on
//     flush/fsync/close, one memory budget. O_DIRECT bypasses both.
//   - A failed background WRITE or COMMIT is returned by the next write,
//     flush, fsync or release of each descriptor open when it happened.
//   - Attribute and entry timeouts come from the options (actimeo / noac).
//
// Replies: every method calls its `reply` exactly once, with an errno
// (0 = success) and the value; possibly on a network thread, possibly
// before the method returns. No method blocks on the network. A Write that
// waits for cache memory (backpressure) delays its reply, not its thread
// (fuse/cache/file_cache.h), up to a bound of parked writes on the mount.
//
// Threads: FUSE worker threads call in; completions run on the engine's
// network threads. State: the inode table and the open-file registry, each
// with its own lock; no lock is held while calling the client or a reply.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <tuple>
#include <optional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "fuse/inode_table.h"
#include "fuse/dir_listings.h"
#include "fuse/negative_names.h"
#include "fuse/timer_queue.h"
#include "fuse/written_ends.h"
#include "nfs/client.h"

namespace floatmount::fuse {

class CacheBudget;
struct CacheCounters;
class FileCache;

template <typename T>
using Reply = std::function<void(int error, T value)>;
struct None {};

struct FsOptions {
  double attr_timeout = 1.0;   // seconds the kernel may cache attributes (actimeo)
  double entry_timeout = 1.0;  // seconds the kernel may cache name lookups
  // A name the server says does not exist is answered as a negative entry
  // (ino 0) valid for entry_timeout, so the kernel answers the next lookup
  // of it with ENOENT itself (libfuse's fuse_entry_param with ino 0). The
  // kernel drops it when a create through this mount makes the name; a
  // create on another client shows here once it expires. False
  // (lookupcache=positive): a missing name is asked for every time.
  bool negative_entries = true;
  // A storm of LOOKUPs in one directory by one user (git status, find)
  // reads the whole directory and answers the rest from it (DirListings;
  // within entry_timeout, so never with noac).
  bool dir_listings = true;
  // A file last seen no larger than this (and not empty) is read in the
  // compound of its OPEN, when that OPEN is the first of the file by this
  // user and is to read: open + read of a small file in one round trip
  // (issue 18). 0: never. The kernel's read-ahead window by default.
  uint32_t open_read_max = 128 << 10;
  // Poll interval while waiting for a blocking lock (F_SETLKW, flock).
  std::chrono::milliseconds lock_poll{50};
  // Memory for read-ahead and dirty data together (0: min(1 GiB, 10% of RAM)).
  uint64_t cache_size = 0;
  // Largest read-ahead window of one sequential stream.
  uint64_t readahead_max = 64ull << 20;
  // The client's largest WRITE (wsize): write-back sends a chunk's dirty
  // bytes as WRITEs of at most this size, in parallel (0: one per range).
  uint32_t max_write = 0;
  // The client's largest READ (rsize): a chunk, or a read that bypasses
  // the cache, is fetched as READs of at most this size, in parallel (0:
  // one READ, and more only if it comes back short).
  uint32_t max_read = 0;
};

struct EntryOut {
  InodeId ino = 0;  // 0: a negative entry, the name does not exist (no attributes)
  nfs::Attributes attr;
  double attr_timeout = 0;
  double entry_timeout = 0;
};

struct AttrOut {
  nfs::Attributes attr;
  double timeout = 0;
};

struct OpenOut {
  uint64_t handle = 0;
  bool keep_cache = false;  // the kernel may keep its cached pages
  bool direct_io = false;   // O_DIRECT: bypass the kernel's page cache
};

struct CreateOut {
  EntryOut entry;
  OpenOut open;
};

// Data read: `data` owns the bytes, `size` of them are valid.
struct ReadOut {
  std::shared_ptr<uint8_t[]> data;
  size_t size = 0;
};

// The data cache's figures (bytes unless named), for `floatmount status`.
struct CacheStats {
  uint64_t budget = 0;           // cache_size
  uint64_t in_use = 0;           // read-ahead + dirty + unstable now
  uint64_t high_water = 0;       // most ever in use
  uint64_t writer_waits = 0;     // writes that waited for memory
  uint64_t read_from_cache = 0;
  uint64_t read_from_server = 0;
  uint64_t prefetched = 0;
  uint64_t prefetch_hits = 0;    // chunks
  uint64_t prefetch_wasted = 0;
  uint64_t read_waits = 0;       // reads that waited for a chunk on the wire
  int64_t dirty = 0;
  int64_t unstable = 0;
  uint64_t written_back = 0;
  uint64_t commits = 0;
  uint64_t resent = 0;
  uint64_t write_errors = 0;
  uint64_t flushes = 0;
  double flush_seconds_total = 0;
  double flush_seconds_max = 0;
  uint64_t lock_invalidations = 0;  // granted locks that found the file changed elsewhere
  uint64_t parked_writes = 0;    // writes that waited without holding a FUSE thread
};

struct DirEntryOut {
  std::string name;
  uint64_t next_offset = 0;  // the offset to pass to continue after this entry
  EntryOut entry;            // ino 0 for "." and ".." (not looked up)
  nfs::FileType type = nfs::FileType::kRegular;
};

struct LockOut {
  bool conflict = false;
  uint32_t pid = 0;  // the holder, when it is a process on this machine
  nfs::LockType type = nfs::LockType::kRead;
  uint64_t start = 0;
  uint64_t end = 0;  // inclusive; UINT64_MAX to EOF
};

// Open flags, decoded from open(2)'s.
struct OpenFlags {
  bool read = true;
  bool write = false;
  bool truncate = false;
  bool exclusive = false;  // O_EXCL (create)
  bool direct = false;     // O_DIRECT
};

class FileSystem {
 public:
  FileSystem(nfs::Client* client, FsOptions options);
  ~FileSystem();

  void Lookup(const nfs::Credentials& cred, InodeId parent, const std::string& name,
              Reply<EntryOut> reply);
  void Forget(InodeId ino, uint64_t count);
  void GetAttr(const nfs::Credentials& cred, InodeId ino, Reply<AttrOut> reply);
  // `handle` (0 = none) is the open file for truncate by ftruncate(2). A
  // mode change that only kills the set-ID bits of a file the caller does
  // not own is left out (the server's write clears them: set_id_bits.h).
  void SetAttr(const nfs::Credentials& cred, InodeId ino, const nfs::SetAttributes& attrs,
               uint64_t handle, Reply<AttrOut> reply);
  void ReadLink(const nfs::Credentials& cred, InodeId ino, Reply<std::string> reply);
  void MkNod(const nfs::Credentials& cred, InodeId parent, const std::string& name,
             uint32_t mode, uint64_t rdev, Reply<EntryOut> reply);
  void MkDir(const nfs::Credentials& cred, InodeId parent, const std::string& name,
             uint32_t mode, Reply<EntryOut> reply);
  void Symlink(const nfs::Credentials& cred, const std::string& target, InodeId parent,
               const std::string& name, Reply<EntryOut> reply);
  void Unlink(const nfs::Credentials& cred, InodeId parent, const std::string& name,
              Reply<None> reply);
  void RmDir(const nfs::Credentials& cred, InodeId parent, const std::string& name,
             Reply<None> reply);
  // flags: RENAME_NOREPLACE is honoured; RENAME_EXCHANGE fails with EINVAL.
  void Rename(const nfs::Credentials& cred, InodeId parent, const std::string& name,
              InodeId new_parent, const std::string& new_name, uint32_t flags,
              Reply<None> reply);
  void Link(const nfs::Credentials& cred, InodeId ino, InodeId new_parent,
            const std::string& new_name, Reply<EntryOut> reply);
  void Access(const nfs::Credentials& cred, InodeId ino, int mask, Reply<None> reply);
  void StatFs(const nfs::Credentials& cred, InodeId ino, Reply<nfs::FsStats> reply);

  void Open(const nfs::Credentials& cred, InodeId ino, OpenFlags flags, Reply<OpenOut> reply);
  void Create(const nfs::Credentials& cred, InodeId parent, const std::string& name,
              uint32_t mode, OpenFlags flags, Reply<CreateOut> reply);
  void Read(uint64_t handle, size_t size, uint64_t offset, Reply<ReadOut> reply);
  // Takes the bytes (copied: the caller's buffer is reused after return).
  void Write(uint64_t handle, std::span<const uint8_t> data, uint64_t offset,
             Reply<size_t> reply);
  // close(2) of a descriptor: commits, and drops the POSIX locks of
  // `lock_owner` (the closing process) on the file, as POSIX wants.
  void Flush(uint64_t handle, uint64_t lock_owner, Reply<None> reply);
  void Fsync(uint64_t handle, Reply<None> reply);
  // The last close of an open file description; `flock_owner` (0: none)
  // holds flock(2) locks that go with it.
  void Release(uint64_t handle, uint64_t flock_owner, Reply<None> reply);

  void OpenDir(const nfs::Credentials& cred, InodeId ino, Reply<uint64_t> reply);
  // Entries after `offset` (0: from the start, with "." and ".."), at most
  // about `max_bytes` of them. With `plus`, each entry's inode is learned
  // (the caller calls Forget(ino, 1) for any entry it does not pass on).
  void ReadDir(const nfs::Credentials& cred, uint64_t dir_handle, uint64_t offset,
               size_t max_bytes, bool plus, Reply<std::vector<DirEntryOut>> reply);
  void ReleaseDir(uint64_t dir_handle);

  // POSIX locks (fcntl) and flock, by lock owner; `end` is inclusive,
  // UINT64_MAX for "to the end". `wait`: the reply comes once the lock is
  // taken, or with EINTR once `interrupted` returns true. A grant
  // revalidates the file's cached data; an unlock commits written data
  // first (file_system_locks.cc).
  using Interrupted = std::function<bool()>;
  // How the FUSE adapter lets the file system drop what the kernel caches
  // of an inode (fuse_lowlevel_notify_inval_inode): its attributes, and
  // with `data` its pages too. Call before serving; without one, only
  // floatmount's own cache is dropped (unit tests).
  using KernelCacheInvalidator = std::function<void(InodeId, bool data)>;
  void SetKernelCacheInvalidator(KernelCacheInvalidator invalidate);
  // The same for a name in a directory (fuse_lowlevel_notify_inval_entry).
  using KernelEntryInvalidator = std::function<void(InodeId parent, const std::string& name)>;
  void SetKernelEntryInvalidator(KernelEntryInvalidator invalidate);
  void GetLock(uint64_t handle, uint64_t owner, nfs::LockType type, uint64_t start,
               uint64_t end, Reply<LockOut> reply);
  void SetLock(uint64_t handle, uint64_t owner, uint32_t pid, bool unlock, nfs::LockType type,
               uint64_t start, uint64_t end, bool wait, Interrupted interrupted,
               Reply<None> reply);

  // Commits and closes every open file (unmount). Blocks; not for FUSE threads.
  void CloseAll();

  InodeTable& inodes() { return inodes_; }
  size_t open_files() const;
  CacheStats cache_stats() const;

 private:
  struct SharedOpen;
  struct OpenFileState;
  struct DirState;
  // inode, uid, gid, groups: an NFS open is shared only between callers the
  // server would treat alike (the same uid with other groups may not open).
  using SharedKey = std::tuple<InodeId, uint32_t, uint32_t, std::vector<uint32_t>>;
  static SharedKey KeyOf(InodeId ino, const nfs::Credentials& cred) {
    return SharedKey{ino, cred.uid, cred.gid, cred.groups};
  }

  static constexpr size_t kChunkSize = 1u << 20;  // cache chunks: the largest wsize
  static constexpr std::chrono::milliseconds kTickInterval{1000};

  std::optional<nfs::FileHandle> HandleOf(InodeId ino) const { return inodes_.Handle(ino); }
  // `read_first`: see nfs::OpenRequest (by name only).
  void OpenByName(const nfs::Credentials& cred, InodeId ino, const nfs::FileHandle& fh, bool read,
                  bool write, uint32_t read_first, nfs::Callback<nfs::OpenResult> done);
  // How much of the file an OPEN for `flags` reads in its compound (0:
  // none), and the cache's mark for keeping those bytes (FileCache::Seed).
  uint32_t ReadFirstSize(InodeId ino, OpenFlags flags, const FileCache& cache,
                         uint64_t* mark) const;
  // LOOKUP from a listing of `parent` (true: answered). After one the
  // server answered with a name found, LookupFound counts it and maybe
  // starts a listing (ListDirectory). Only found names count: a storm of
  // missing ones is a tar or cp making them, whose creates would cancel it.
  bool LookupListed(const nfs::Credentials& cred, InodeId parent, const nfs::FileHandle& dir,
                    const std::string& name, const Reply<EntryOut>& reply);
  void LookupFound(const nfs::Credentials& cred, InodeId parent, const nfs::FileHandle& dir);
  void ListDirectory(const nfs::Credentials& cred, InodeId parent, const nfs::FileHandle& dir);
  // Also a change to the files named (link counts, ctime): see Changing.
  void NamesChanging(InodeId dir) {
    listings_.Changed(dir);
    inodes_.Changed();
  }
  // A change to a file's attributes through this mount (SETATTR, a write,
  // written data flushed): marks every file's attributes from an OPEN as
  // no longer answerable by GETATTR (InodeTable::FreshAttributes), now and
  // again when `reply` is called.
  template <typename T>
  Reply<T> Changing(Reply<T> reply) {
    inodes_.Changed();
    return [this, reply = std::move(reply)](int err, T value) {
      inodes_.Changed();
      reply(err, std::move(value));
    };
  }
  // Answers with attributes that another reply's overlapped
  // (InodeTable::UpdateAttributes) after dropping the kernel's: it may
  // have kept the other reply's, older than these, and would hand them to
  // the next stat. Its pages go too: the kernel drops this reply as well,
  // so it does not compare its size and mtime with its own, as it does to
  // drop a changed file's pages, and the read that asked (FUSE asks before
  // each read) would return its old pages up to its old size: another
  // client's rewrite read as the old bytes. Without them that read gets
  // the new bytes, up to the old size; the next one asks again.
  template <typename T>
  void ReplyOverlapped(InodeId ino, bool overlapped, const Reply<T>& reply, T out) {
    if (!overlapped) return reply(0, std::move(out));
    InvalidateKernelThen({ino}, true,
                         [reply, out = std::move(out)]() mutable { reply(0, std::move(out)); });
  }
  // The same for a listing's entries: `overlapped` names their files.
  void ReplyListing(std::vector<InodeId> overlapped, std::vector<DirEntryOut> out,
                    Reply<std::vector<DirEntryOut>> reply);
  // Some descriptor of `ino`, of any user, may write (its share access).
  bool OpenForWriting(InodeId ino);
  // How long attributes just fetched may answer GETATTR (attr_timeout).
  InodeTable::Clock::duration FreshFor() const {
    return std::chrono::duration_cast<InodeTable::Clock::duration>(
        std::chrono::duration<double>(options_.attr_timeout));
  }
  // Learns the entry's inode, as `name` in `parent` (see InodeTable).
  // `stamp`: SizeStamp() from before the request that found the entry;
  // nullopt when its answer is the size whatever this mount wrote (a
  // truncating create).
  // `sent`: inodes_.Mark() from before that request; *overlapped: see
  // InodeTable::UpdateAttributes (the caller of a LOOKUP drops the
  // kernel's attributes before it answers).
  // *moved: the name a directory found here had before (InodeTable::Named).
  EntryOut MakeEntry(const nfs::Entry& entry, InodeId parent, const std::string& name,
                     std::optional<uint64_t> stamp, InodeTable::SendMark sent,
                     bool* overlapped = nullptr, std::optional<InodeTable::Name>* moved = nullptr);
  // A LOOKUP found a directory another client moved: the kernel's dentry
  // of its old name goes first (see file_system.cc), then `then` runs.
  void ForgetMovedDirectoryThen(const InodeTable::Name& old, std::function<void()> then);
  std::shared_ptr<OpenFileState> FindOpen(uint64_t handle) const;
  uint64_t RegisterOpen(std::shared_ptr<OpenFileState> state);
  // Takes a reference on the shared open of (ino, uid), creating it if
  // needed; *created says the caller must perform the NFS OPEN.
  std::shared_ptr<SharedOpen> AcquireShared(InodeId ino, const nfs::FileHandle& fh,
                                            const nfs::Credentials& cred, bool* created);
  // Drops a reference; true if it was the last (the caller closes it).
  bool ReleaseShared(const std::shared_ptr<SharedOpen>& shared);
  // Marks the first OPEN finished and runs the opens that waited for it.
  void SharedReady(const std::shared_ptr<SharedOpen>& shared, int error,
                   std::shared_ptr<nfs::OpenFile> file, bool read, bool write);
  // Continues an open once its shared NFS open is usable.
  void OpenWithShared(const nfs::Credentials& cred, std::shared_ptr<SharedOpen> shared,
                      OpenFlags flags, std::optional<nfs::Attributes> fresh,
                      InodeTable::SendMark sent, Reply<OpenOut> reply);
  // `attr` from a reply to a request sent after `sent` (inodes_.Mark()).
  void FinishOpen(std::shared_ptr<SharedOpen> shared, OpenFlags flags, const nfs::Attributes& attr,
                  InodeTable::SendMark sent, Reply<OpenOut> reply);
  // FinishOpen after the kernel's stale attributes are gone: O_TRUNC, then
  // the descriptor.
  void ContinueOpen(std::shared_ptr<SharedOpen> shared, OpenFlags flags, bool keep_cache,
                    Reply<OpenOut> reply);
  void DropShared(const std::shared_ptr<SharedOpen>& shared);
  void CreateNode(const nfs::Credentials& cred, InodeId parent, const std::string& name,
                  const nfs::CreateRequest& req, Reply<EntryOut> reply);
  void RemoveChecked(const nfs::Credentials& cred, InodeId parent, const std::string& name,
                     bool want_dir, Reply<None> reply);
  // Waits until what was written to the file is committed; the reply
  // carries any write-back error this descriptor has not seen yet.
  void FlushCache(std::shared_ptr<OpenFileState> state, Reply<None> reply);
  void DirectWrite(std::shared_ptr<OpenFileState> state, std::vector<uint8_t> data,
                   uint64_t offset, Reply<size_t> reply);
  // The cache of `ino`, shared by its opens (creates it). Needs mu_.
  std::shared_ptr<FileCache> CacheForLocked(InodeId ino, const nfs::FileHandle& fh);
  std::shared_ptr<FileCache> FindCache(InodeId ino) const;
  // Runs `then` once this mount's buffered writes to `ino` are on the
  // server and committed (at once when there are none). Every truncate goes
  // through it: one sent before those bytes would be undone when they
  // arrive (ftruncate, O_TRUNC at open and at create alike).
  void AfterPendingWrites(InodeId ino, std::function<void()> then);
  // This mount changed the file's bytes without its cache (a truncate, an
  // O_DIRECT write): what the cache read before is stale, and so are bytes
  // an OPEN in flight read (FileCache::Seed). Call once the server answered.
  void DropCachedBytes(InodeId ino);
  // Taken before a request whose answer carries attributes (WrittenEnds).
  uint64_t SizeStamp() const { return written_->Stamp(); }
  // A file being written here is at least as long as our pending writes,
  // and as the WRITEs that completed after `stamp` made it.
  void ApplyPendingSize(InodeId ino, std::optional<uint64_t> stamp, nfs::Attributes* attr) const;
  // This mount set the file's size (a truncate answered): cached bytes
  // and our earlier WRITEs' ends are stale.
  void Resized(InodeId ino);
  std::vector<std::shared_ptr<FileCache>> LiveCaches() const;  // outside mu_
  void RelieveCaches();  // the budget is full
  void TickCaches();     // every second: idle dirty data goes out
  void UnlockAll(const std::shared_ptr<SharedOpen>& shared, uint64_t owner,
                 std::function<void()> then);
  // Lock-time coherence (file_system_locks.cc): fresh attributes; if the
  // file changed, drop its clean cached data here and in the kernel.
  void RevalidateForLock(const std::shared_ptr<SharedOpen>& shared, const nfs::Attributes& fresh,
                         InodeTable::SendMark sent, std::function<void()> then);
  // Drops the kernel's cached attributes of each of `inos` (and with `data`
  // their pages) on the coherence queue's thread, then runs `then` there.
  void InvalidateKernelThen(std::vector<InodeId> inos, bool data, std::function<void()> then);
  void TryLock(std::shared_ptr<SharedOpen> shared, uint64_t owner, uint32_t pid, nfs::LockType type,
               uint64_t start, uint64_t end, bool wait, Interrupted interrupted,
               Reply<None> reply);

  nfs::Client* const client_;
  const FsOptions options_;
  std::shared_ptr<CacheBudget> budget_;
  std::shared_ptr<CacheCounters> counters_;
  TimerQueue lock_timer_;  // polls for blocked locks
  // Set before the file system serves (constant after): drops the kernel's
  // cached attributes (and pages) of an inode (the FUSE adapter's notify).
  KernelCacheInvalidator invalidate_kernel_cache_;
  TimerQueue coherence_queue_;  // runs invalidate_kernel_cache_ off network threads
  KernelEntryInvalidator invalidate_kernel_entry_;  // set as invalidate_kernel_cache_ is
  // Runs invalidate_kernel_entry_, which may wait for a directory the
  // kernel holds locked (a rename's): nothing else waits on this queue.
  TimerQueue entry_queue_;
  InodeTable inodes_;
  // Names the server said are missing, while the kernel may remember that
  // too (negative_entries): its repeated LOOKUPs (mkdir and O_EXCL always
  // look again) are answered from here. Every op that may make a name
  // forgets it first.
  NegativeNames missing_;
  // Whole directories read for a storm of LOOKUPs (dir_listings.h). Every
  // op that changes a directory's names calls NamesChanging before it is
  // sent and when it is answered.
  DirListings listings_;
  // The ends of this mount's completed WRITEs, against answers that raced
  // them (shared with every file's cache).
  const std::shared_ptr<WrittenEnds> written_ = std::make_shared<WrittenEnds>();

  mutable std::mutex mu_;
  std::unordered_map<uint64_t, std::shared_ptr<OpenFileState>> open_;  // GUARDED_BY(mu_)
  std::unordered_map<uint64_t, std::shared_ptr<DirState>> dirs_;       // GUARDED_BY(mu_)
  std::map<SharedKey, std::shared_ptr<SharedOpen>> shared_;            // GUARDED_BY(mu_)
  // Locks granted through this mount: (inode, lock owner) -> pid. Tells
  // F_GETLK the holder and close() whether there is anything to unlock.
  std::map<std::pair<InodeId, uint64_t>, uint32_t> lock_pids_;  // GUARDED_BY(mu_)
  uint64_t next_handle_ = 1;                                          // GUARDED_BY(mu_)
  std::unordered_map<InodeId, std::weak_ptr<FileCache>> caches_;     // GUARDED_BY(mu_)
  // Files whose set-ID kill was left to the server's WRITE (SetAttr): the
  // next flush drops the kernel's cached mode, which still shows the bits.
  std::unordered_set<InodeId> set_id_kills_;                          // GUARDED_BY(mu_)
  int idle_ticks_ = 0;  // timer thread only

  // Runs budget grants: writes parked for memory go on here ("fm-timer").
  TimerQueue budget_queue_;
  TimerQueue writeback_timer_;  // last: stops before the state above goes
};

}  // namespace floatmount::fuse
