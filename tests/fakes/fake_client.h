// FakeClient: an in-memory NFSv4.1 server behind the nfs::Client interface.
//
// It is the unit-test double for fuse/: the filesystem layer is tested
// against it without a network, so it models what a real server (knfsd,
// ganesha over a POSIX filesystem, AUTH_SYS) does in the ways a POSIX
// filesystem depends on. What fuse/ may rely on, test by test, is written
// down in tests/unit/fakes/fake_client_test.cc. In short:
//
//   - One export: a tree of inodes (regular, directory, symlink, fifo,
//     socket, block and char devices) starting at root(). A file handle is
//     16 bytes: inode number and generation, big-endian. Unknown handles
//     give NFS4ERR_STALE, malformed ones NFS4ERR_BADHANDLE. An inode lives
//     while it has a link or an open (a removed open file stays readable
//     and writable through its handle until the last Close).
//   - Every attribute is returned (Attributes::valid has every field). The
//     change attribute grows on every data or metadata change of the inode
//     (a directory's when its entries change). space_used counts the 4 KiB
//     pages written (files are sparse). atime is only set by SETATTR.
//   - AUTH_SYS permission checks with the caller's uid, gid and groups
//     against the mode bits: the owner class wins over the group class,
//     which wins over other; uid 0 passes every check except execute on a
//     non-directory with no x bit at all. LOOKUP needs x on the directory;
//     creating, removing, renaming and linking need w and x on the
//     directory(ies); a sticky directory lets only root, the directory's
//     owner or the entry's owner remove or replace an entry (NFS4ERR_PERM);
//     moving a directory to another parent needs w on it. OPEN needs r/w as
//     asked (not for a file the OPEN itself created), READDIR r, READLINK
//     r. SETATTR: mode and client-chosen times only by the owner or root;
//     uid only by root; gid by root or by the owner to one of their
//     groups (else NFS4ERR_PERM); "touch" (server time) by anyone with w;
//     size needs w, or a write open passed as `file`. chmod by a non-root
//     caller outside the file's group drops S_ISGID; chown/chgrp of a
//     regular file drops S_ISUID (and S_ISGID with group x), as Linux does.
//     New entries take the caller's uid and gid, or the directory's gid if
//     it is set-gid (new subdirectories inherit the set-gid bit).
//   - I/O: READ/WRITE with an OpenFile check it is an open of this file
//     and of this client that is not closed (NFS4ERR_BAD_STATEID) and that
//     it allows the access (a WRITE through a read-only open:
//     NFS4ERR_OPENMODE; a READ through a write-only open needs r
//     permission). A null `file` is the anonymous stateid: r or w
//     permission is checked instead. Only regular files: NFS4ERR_ISDIR for
//     a directory, NFS4ERR_SYMLINK for a symlink, NFS4ERR_WRONG_TYPE else.
//   - Stable storage: an UNSTABLE WRITE only changes what reads see; a
//     DATA_SYNC/FILE_SYNC WRITE, a truncate and a COMMIT (of the whole file,
//     whatever range is asked) also reach "disk". SimulateRestart() makes
//     every file what is on disk again and changes the write verifier (the
//     change attribute of files that reverted grows). Open files and locks
//     survive a restart, as the engine's state recovery hides it.
//   - Namespace ops as RFC 8881 says and Linux-backed servers answer:
//     names are 1..255 bytes without '/' ("." and ".." are NFS4ERR_BADNAME);
//     REMOVE takes files and empty directories (NFS4ERR_NOTEMPTY);
//     RENAME over an existing entry replaces it when both are files or both
//     directories (NFS4ERR_NOTEMPTY for a non-empty directory), else
//     NFS4ERR_EXIST (RFC 8881 18.26.3); renaming an entry onto itself or
//     onto another link to the same file does nothing; a directory moved
//     below itself is NFS4ERR_INVAL. LINK of a directory: NFS4ERR_ISDIR.
//   - READDIR: no "." or "..". Each directory hands out cookies from a
//     counter (starting at 3, as 1 and 2 are reserved) and an entry keeps
//     its cookie while it exists, so a listing continued after inserts and
//     removals returns every surviving entry once; new entries come last.
//     A page holds entries while their cost (name length + 100 bytes each)
//     fits in max_bytes (NFS4ERR_TOOSMALL if not even one does). A cookie
//     not handed out is NFS4ERR_BAD_COOKIE; a non-zero cookie with another
//     verifier than the directory's is NFS4ERR_NOT_SAME.
//   - Locks: POSIX byte-range locks per (file, owner). Different owners
//     conflict when they overlap and one is a write lock (NFS4ERR_DENIED);
//     an owner's own locks never conflict: a new lock replaces the owner's
//     overlapping ranges (upgrade, downgrade, split) and adjacent ranges of
//     one type merge; unlock splits. A write lock needs a write open and a
//     read lock a read open (NFS4ERR_OPENMODE). Length 0 is NFS4ERR_INVAL.
//     Close releases the locks taken through that open. ExternalLock()
//     takes a lock as another client (LockConflict::same_client false).
//
// Errors are Status::Nfs(NFS4ERR_X, "OPNAME name"); a local misuse of the
// interface (Create of a regular file, a null OpenFile for locks) is
// Status::InvalidArgument. Operation names for calls() are the NFSv4 ones:
// LOOKUP GETATTR SETATTR ACCESS OPEN (also OpenHandle) CLOSE READ WRITE
// COMMIT CREATE REMOVE RENAME LINK READLINK READDIR STATFS LOCK LOCKU LOCKT.
//
// Threads: every method may be called from any thread. One mutex (mu_)
// guards the whole server state; an operation runs entirely under it and
// its callback runs after it is released. Callbacks run inline on the
// calling thread (default), or in call order on one worker thread
// (Options::async), or are held until the test releases them
// (HoldCompletions). The completion queue has its own mutex (cb_mu_),
// never held together with mu_ and never while a callback runs.
//
// Test hooks (Add*, External*, Content*, SimulateRestart) act directly on
// the server state as the administrator or "another client"; they do not
// count as calls. A hook misused by the test (a missing path, a parent that
// is not a directory) throws std::invalid_argument, which gtest reports.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "nfs/client.h"

namespace floatmount::fakes {

// The bytes of a file, in 4 KiB pages; missing pages read as zeros.
// Thread-safety: none (guarded by the FakeClient's mutex).
class SparseData {
 public:
  static constexpr uint64_t kPageSize = 4096;

  uint64_t size() const { return size_; }
  uint64_t pages() const { return pages_.size(); }
  // Copies min(n, size - offset) bytes; returns how many.
  uint64_t Read(uint64_t offset, uint8_t* dest, uint64_t n) const;
  // Writes and extends; `touched` (if not null) gets the page indexes.
  void Write(uint64_t offset, const uint8_t* src, uint64_t n, std::set<uint64_t>* touched);
  // Cuts or zero-extends to `size`.
  void Resize(uint64_t size);
  // Makes page `index` equal to `from`'s page (or absent), size untouched.
  void CopyPage(const SparseData& from, uint64_t index);
  void set_size_only(uint64_t size) { size_ = size; }
  std::string ToString() const;

 private:
  std::map<uint64_t, std::vector<uint8_t>> pages_;  // index -> kPageSize bytes
  uint64_t size_ = 0;
};

class FakeClient : public nfs::Client {
 public:
  struct Options {
    bool async = false;                 // completions on one worker thread, in call order
    uint32_t max_read = 0;              // READ returns at most this many bytes (0: no limit)
    uint32_t max_write = 0;             // WRITE takes at most this many bytes (0: no limit)
    bool writes_always_stable = false;  // answer FILE_SYNC even to UNSTABLE writes
    // How a stable (FILE_SYNC, DATA_SYNC) WRITE is answered: a server may
    // commit less than asked; below FILE_SYNC the client must COMMIT.
    // kUnstable keeps the bytes uncommitted (lost on a restart).
    nfs::Stability stable_writes_answered = nfs::Stability::kFileSync;
    uint32_t root_mode = 0755;
    uint32_t root_uid = 0;
    uint32_t root_gid = 0;
    uint64_t space_total = 1ull << 40;    // STATFS; free = total - space used
    uint64_t files_total = 1ull << 20;    // STATFS; free = total - inodes
    uint64_t max_file_size = 1ull << 40;  // larger sizes: NFS4ERR_FBIG
    uint64_t fsid_major = 42;
    uint64_t fsid_minor = 0;
    std::function<nfs::Timestamp()> clock;  // null: the system's real-time clock
  };

  FakeClient();
  explicit FakeClient(Options options);
  // Runs held completions, drains the worker queue, joins the worker.
  ~FakeClient() override;
  FakeClient(const FakeClient&) = delete;
  FakeClient& operator=(const FakeClient&) = delete;

  // nfs::Client.
  const nfs::FileHandle& root() const override { return root_fh_; }
  void Lookup(const nfs::Credentials& cred, const nfs::FileHandle& dir, const std::string& name,
              nfs::Callback<nfs::Entry> done) override;
  void GetAttr(const nfs::Credentials& cred, const nfs::FileHandle& fh,
               nfs::Callback<nfs::Attributes> done) override;
  void SetAttr(const nfs::Credentials& cred, const nfs::FileHandle& fh,
               const nfs::SetAttributes& attrs, const nfs::OpenFile* file,
               nfs::Callback<nfs::Attributes> done) override;
  void Access(const nfs::Credentials& cred, const nfs::FileHandle& fh, uint32_t mask,
              nfs::Callback<uint32_t> done) override;
  void Open(const nfs::Credentials& cred, const nfs::FileHandle& dir, const std::string& name,
            const nfs::OpenRequest& req, nfs::Callback<nfs::OpenResult> done) override;
  void Upgrade(const nfs::Credentials& cred, const nfs::OpenFile* file, bool read, bool write,
               nfs::Callback<nfs::Unit> done) override;
  void OpenHandle(const nfs::Credentials& cred, const nfs::FileHandle& fh, bool read, bool write,
                  nfs::Callback<nfs::OpenResult> done) override;
  void Close(const nfs::Credentials& cred, std::shared_ptr<nfs::OpenFile> file,
             nfs::Callback<nfs::Unit> done) override;
  void Read(const nfs::Credentials& cred, const nfs::FileHandle& fh, const nfs::OpenFile* file,
            uint64_t offset, std::span<uint8_t> dest, nfs::Callback<nfs::ReadResult> done) override;
  void Write(const nfs::Credentials& cred, const nfs::FileHandle& fh, const nfs::OpenFile* file,
             uint64_t offset, std::span<const uint8_t> data, nfs::Stability stability,
             nfs::Callback<nfs::WriteResult> done) override;
  void Commit(const nfs::Credentials& cred, const nfs::FileHandle& fh, uint64_t offset,
              uint32_t count, nfs::Callback<nfs::WriteVerifier> done) override;
  // Counted as a WRITE (the GETATTR in its compound is not a call of its
  // own); the attributes are the file's right after the WRITE.
  void WriteThenGetAttr(const nfs::Credentials& cred, const nfs::FileHandle& fh,
                        const nfs::OpenFile* file, uint64_t offset, std::span<const uint8_t> data,
                        nfs::Stability stability, WriteGetAttrDone done) override;
  void Create(const nfs::Credentials& cred, const nfs::FileHandle& dir, const std::string& name,
              const nfs::CreateRequest& req, nfs::Callback<nfs::Entry> done) override;
  void Remove(const nfs::Credentials& cred, const nfs::FileHandle& dir, const std::string& name,
              nfs::Callback<nfs::Unit> done) override;
  void Rename(const nfs::Credentials& cred, const nfs::FileHandle& from_dir,
              const std::string& from_name, const nfs::FileHandle& to_dir,
              const std::string& to_name, nfs::Callback<nfs::Unit> done) override;
  void Link(const nfs::Credentials& cred, const nfs::FileHandle& fh, const nfs::FileHandle& dir,
            const std::string& name, nfs::Callback<nfs::Attributes> done) override;
  void ReadLink(const nfs::Credentials& cred, const nfs::FileHandle& fh,
                nfs::Callback<std::string> done) override;
  void ReadDir(const nfs::Credentials& cred, const nfs::FileHandle& dir, uint64_t cookie,
               const std::array<uint8_t, 8>& verifier, uint32_t max_bytes,
               nfs::Callback<nfs::DirPage> done) override;
  void StatFs(const nfs::Credentials& cred, const nfs::FileHandle& fh,
              nfs::Callback<nfs::FsStats> done) override;
  void Lock(const nfs::Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
            nfs::LockType type, uint64_t offset, uint64_t length,
            nfs::Callback<nfs::Attributes> done) override;
  void Unlock(const nfs::Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
              uint64_t offset, uint64_t length, nfs::Callback<nfs::Unit> done) override;
  void TestLock(const nfs::Credentials& cred, const nfs::OpenFile* file, uint64_t owner,
                nfs::LockType type, uint64_t offset, uint64_t length,
                nfs::Callback<std::optional<nfs::LockConflict>> done) override;

  // Setup, as the administrator. Paths are relative to the root ("a/b" or
  // "/a/b"); missing parent directories are made (0755, root). Content is
  // on disk (committed). Each returns the new file's handle.
  nfs::FileHandle AddFile(const std::string& path, std::string_view content = {},
                          uint32_t mode = 0644, uint32_t uid = 0, uint32_t gid = 0);
  nfs::FileHandle AddDir(const std::string& path, uint32_t mode = 0755, uint32_t uid = 0,
                         uint32_t gid = 0);
  nfs::FileHandle AddSymlink(const std::string& path, const std::string& target, uint32_t uid = 0,
                             uint32_t gid = 0);

  // Inspection: no permission checks, no counting.
  std::optional<nfs::FileHandle> Find(const std::string& path) const;
  std::optional<nfs::Attributes> AttrOf(const nfs::FileHandle& fh) const;
  std::optional<nfs::Attributes> AttrOf(const std::string& path) const;
  std::string ContentOf(const nfs::FileHandle& fh) const;  // what READ returns now
  std::string ContentOf(const std::string& path) const;
  std::string CommittedContentOf(const nfs::FileHandle& fh) const;  // what survives a restart
  bool HasUncommittedData(const nfs::FileHandle& fh) const;
  size_t open_count(const nfs::FileHandle& fh) const;  // opens not yet closed
  size_t open_count() const;                           // over all files
  size_t lock_count(const nfs::FileHandle& fh) const;  // lock ranges held (all owners)
  nfs::WriteVerifier write_verifier() const;

  // "Another client" changes things behind the back of the one under test;
  // each counts as a change (change attribute, mtime/ctime) like the real op.
  void ExternalWrite(const nfs::FileHandle& fh, uint64_t offset, std::string_view data);
  void ExternalWrite(const std::string& path, uint64_t offset, std::string_view data);
  // A write that leaves ctime, mtime and the change attribute as they were,
  // as on a server that makes the change attribute from a coarse ctime (knfsd
  // on tmpfs) when two writes fall within one clock tick.
  void ExternalWriteWithinOneTick(const nfs::FileHandle& fh, uint64_t offset,
                                  std::string_view data);
  void ExternalSetAttr(const nfs::FileHandle& fh, const nfs::SetAttributes& attrs);
  void ExternalRemove(const std::string& path);
  void ExternalRename(const std::string& from, const std::string& to);
  // false if a lock of another owner is in the way.
  bool ExternalLock(const nfs::FileHandle& fh, nfs::LockType type, uint64_t offset, uint64_t length,
                    uint64_t owner = 1);
  void ExternalUnlock(const nfs::FileHandle& fh, uint64_t offset, uint64_t length,
                      uint64_t owner = 1);

  // The server reboots: uncommitted writes are lost, the verifier changes.
  void SimulateRestart();

  // Completion control. While holding, completions queue up instead of
  // running; RunHeldCompletion(i) runs the i-th (0-based, in call order),
  // ReleaseCompletions() runs the rest in order and stops holding. In
  // async mode released completions go to the worker thread.
  void HoldCompletions();
  size_t held_completions() const;
  void RunHeldCompletion(size_t index);
  void ReleaseCompletions();
  // Async mode: returns once the worker has run everything queued. Not
  // from a callback.
  void WaitIdle();

  // Counters.
  uint64_t calls(const std::string& op) const;
  uint64_t total_calls() const;
  uint64_t bytes_read() const;
  uint64_t bytes_written() const;
  // The size (max_bytes) each READDIR asked for, in order.
  std::vector<uint32_t> readdir_sizes() const;
  nfs::Credentials last_credentials() const;
  void ResetCounters();

 private:
  class FakeOpenFile;
  struct DirSlot {
    uint64_t ino = 0;
    uint64_t cookie = 0;
  };
  struct LockRange {
    uint64_t owner = 0;
    bool external = false;  // held by "another client"
    uint64_t open_id = 0;   // the open it was taken through (0: external)
    nfs::LockType type = nfs::LockType::kRead;
    uint64_t first = 0;  // inclusive byte range
    uint64_t last = 0;
  };
  struct Inode {
    uint64_t ino = 0;
    uint64_t generation = 0;
    nfs::FileType type = nfs::FileType::kRegular;
    uint32_t mode = 0;
    uint32_t nlink = 0;
    uint32_t uid = 0;
    uint32_t gid = 0;
    uint32_t rdev_major = 0;
    uint32_t rdev_minor = 0;
    nfs::Timestamp atime, mtime, ctime;
    uint64_t change = 0;
    uint32_t opens = 0;
    SparseData data;                            // regular: what READ sees
    SparseData disk;                            // regular: what survives SimulateRestart
    std::set<uint64_t> dirty;                   // pages where data and disk may differ
    std::string target;                         // symlink
    uint64_t parent = 0;                        // directory: its parent's ino (root: itself)
    std::map<std::string, DirSlot> entries;     // directory
    std::map<uint64_t, std::string> by_cookie;  // directory: cookie -> name
    uint64_t next_cookie = 3;                   // directory
    std::vector<LockRange> locks;               // regular
  };
  struct OpenState {
    uint64_t ino = 0;
    bool read = false;
    bool write = false;
  };
  // What a create makes, before it is linked into a directory.
  struct NewInode {
    nfs::FileType type = nfs::FileType::kRegular;
    uint32_t mode = 0;
    std::string target;
    uint32_t rdev_major = 0;
    uint32_t rdev_minor = 0;
  };

  // All below: require mu_ (the static ones need nothing).
  static nfs::Status Err(uint32_t code, const char* op, const std::string& name = {});
  static bool InGroup(const nfs::Credentials& cred, uint32_t gid);
  // `want`: 4 read, 2 write, 1 execute/search, or'ed.
  static bool Permits(const nfs::Credentials& cred, const Inode& n, uint32_t want);
  // The sticky-directory rule.
  static bool MayDelete(const nfs::Credentials& cred, const Inode& dir, const Inode& victim);
  static nfs::Status ValidateName(const std::string& name, const char* op);
  static nfs::Status CheckRegular(const Inode& n, const char* op);
  void Count(const char* op, const nfs::Credentials& cred);
  nfs::Timestamp Now() const;
  void Touch(Inode& n, bool data_changed);  // ctime and change (and mtime)
  nfs::FileHandle HandleOf(const Inode& n) const;
  nfs::Attributes AttrsOf(const Inode& n) const;
  nfs::Result<Inode*> Get(const nfs::FileHandle& fh, const char* op) const;
  nfs::Result<Inode*> GetDir(const nfs::FileHandle& fh, const char* op) const;
  Inode* Child(const Inode& dir, const std::string& name) const;
  Inode* Walk(const std::string& path) const;       // null if missing
  Inode& MustGet(const nfs::FileHandle& fh) const;  // hooks: throws if stale
  // The directory that holds `path` (made as needed) and the last name.
  Inode& ParentFor(const std::string& path, std::string* name);
  nfs::FileHandle AddNode(const std::string& path, const NewInode& what, uint32_t uid, uint32_t gid,
                          std::string_view content);
  void AddEntry(Inode& dir, const std::string& name, uint64_t ino);
  void RemoveEntry(Inode& dir, const std::string& name);
  Inode& MakeInode(const nfs::Credentials& cred, Inode& dir, const std::string& name,
                   const NewInode& what);
  void Unlink(Inode& dir, const std::string& name);  // drops the entry and a link
  void MaybeFree(uint64_t ino);
  nfs::Status DoRemove(const nfs::Credentials& cred, Inode& dir, const std::string& name);
  nfs::Status DoRename(const nfs::Credentials& cred, Inode& from, const std::string& from_name,
                       Inode& to, const std::string& to_name);
  nfs::Status CheckSetAttr(const nfs::Credentials& cred, const Inode& n,
                           const nfs::SetAttributes& a, const OpenState* open, const char* op);
  void ApplySetAttr(const nfs::Credentials& cred, Inode& n, const nfs::SetAttributes& a);
  static nfs::Status CheckCreateAttrs(const nfs::Credentials& cred, const nfs::SetAttributes& a,
                                      const char* op);
  static void ApplyCreateAttrs(Inode& n, const nfs::SetAttributes& a);
  void SetSize(Inode& n, uint64_t size);
  nfs::Result<OpenState*> GetOpen(const nfs::OpenFile* file, const char* op);
  nfs::Result<nfs::OpenResult> NewOpen(Inode& n, bool read, bool write, bool created);
  void CloseOpen(uint64_t open_id);  // releases its locks
  nfs::Status CheckIo(const nfs::Credentials& cred, const Inode& n, const nfs::OpenFile* file,
                      bool write, const char* op);
  void WriteData(Inode& n, uint64_t offset, const uint8_t* src, uint64_t len, bool stable);
  nfs::Result<nfs::WriteResult> WriteLocked(const nfs::Credentials& cred, const nfs::FileHandle& fh,
                                            const nfs::OpenFile* file, uint64_t offset,
                                            std::span<const uint8_t> data,
                                            nfs::Stability stability);
  nfs::WriteVerifier VerifierLocked() const;
  std::optional<nfs::LockConflict> FindConflict(const Inode& n, uint64_t owner, bool external,
                                                nfs::LockType type, uint64_t first,
                                                uint64_t last) const;
  void RemoveLockRange(Inode& n, uint64_t owner, bool external, uint64_t first, uint64_t last);
  void AddLockRange(Inode& n, LockRange range);  // merges with the owner's neighbours

  // Holds `fn` or hands it to Dispatch. Never with mu_ held.
  void Post(std::function<void()> fn);
  // Runs `fn` now (inline mode) or queues it for the worker (async mode).
  void Dispatch(std::function<void()> fn);
  template <typename T>
  void Complete(nfs::Callback<T> done, nfs::Result<T> result) {
    Post([done = std::move(done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }
  void WorkerLoop();

  const Options options_;    // constant after construction
  uint64_t root_ino_ = 0;    // constant after construction
  nfs::FileHandle root_fh_;  // constant after construction

  mutable std::mutex mu_;
  // GUARDED_BY(mu_). Mutable so that const inspection shares the lookups.
  mutable std::map<uint64_t, Inode> inodes_;
  std::map<uint64_t, OpenState> opens_;    // GUARDED_BY(mu_): open id -> state
  uint64_t next_ino_ = 1;                  // GUARDED_BY(mu_)
  uint64_t next_open_id_ = 1;              // GUARDED_BY(mu_)
  uint64_t change_counter_ = 0;            // GUARDED_BY(mu_)
  uint64_t boot_ = 1;                      // GUARDED_BY(mu_): the write verifier
  std::map<std::string, uint64_t> calls_;  // GUARDED_BY(mu_)
  uint64_t total_calls_ = 0;               // GUARDED_BY(mu_)
  uint64_t bytes_read_ = 0;                // GUARDED_BY(mu_)
  uint64_t bytes_written_ = 0;             // GUARDED_BY(mu_)
  std::vector<uint32_t> readdir_sizes_;    // GUARDED_BY(mu_)
  nfs::Credentials last_cred_;             // GUARDED_BY(mu_)

  // Completions. Never held together with mu_.
  mutable std::mutex cb_mu_;
  std::condition_variable cb_cv_;            // work queued or stop
  std::condition_variable idle_cv_;          // the worker went idle
  std::deque<std::function<void()>> queue_;  // GUARDED_BY(cb_mu_): for the worker
  std::deque<std::function<void()>> held_;   // GUARDED_BY(cb_mu_)
  bool holding_ = false;                     // GUARDED_BY(cb_mu_)
  bool running_ = false;                     // GUARDED_BY(cb_mu_): worker in a callback
  bool stop_ = false;                        // GUARDED_BY(cb_mu_)
  std::thread worker_;                       // async mode only
};

}  // namespace floatmount::fakes
