// InodeTable: FUSE inode numbers <-> NFS file handles, with the kernel's
// lookup counts.
//
// The kernel refers to files by inode number and tells us how many times
// it learned each one (every successful lookup, create, mkdir, readdirplus
// entry counts once) and forgets them in batches; an entry lives until its
// count drops to zero. One NFS file handle maps to one inode, so hard links
// share an inode. Inode 1 is the export root and is never forgotten.
//
// Each entry also remembers the last attributes seen, so that open can tell
// whether the file changed on the server since (close-to-open consistency),
// and the name the kernel last learned it by (parent directory and name,
// kept up to date by this mount's renames and removes), so that open can
// ask the server whether that name still leads to this file: another client
// may have renamed a new file over it while the kernel's dentry still
// points here (close-to-open for names, as the kernel NFS client's OPEN by
// name gives).
//
// Threads: any (FUSE workers, network threads). One mutex; no callbacks.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "nfs/types.h"

namespace floatmount::fuse {

using InodeId = uint64_t;
inline constexpr InodeId kRootInode = 1;

class InodeTable {
 public:
  explicit InodeTable(nfs::FileHandle root);

  // Records that the kernel learned `fh` once more, with `attr` from a
  // reply to a request sent at `sent` (see UpdateAttributes); returns its
  // inode.
  struct SendMark;
  struct Applied;
  InodeId Learn(const nfs::FileHandle& fh, const nfs::Attributes& attr, SendMark sent,
                Applied* applied = nullptr);
  // The kernel forgets `count` lookups of `ino`.
  void Forget(InodeId ino, uint64_t count);

  // The file handle of a live inode.
  std::optional<nfs::FileHandle> Handle(InodeId ino) const;

  // Names: `ino` was learned as `name` in `parent` (it replaces the name
  // it had). This mount renamed or removed a name.
  struct Name {
    InodeId parent = 0;
    std::string name;
  };
  // Returns the name it had before if it is a directory whose name that
  // was: a directory has one name, so that one is gone (another client
  // moved it).
  std::optional<Name> Named(InodeId ino, InodeId parent, const std::string& name);
  void Renamed(InodeId parent, const std::string& name, InodeId new_parent,
               const std::string& new_name);
  void Removed(InodeId parent, const std::string& name);
  // The name `ino` was last learned by, if it still has it.
  std::optional<Name> NameOf(InodeId ino) const;
  // The inode last learned as `name` in `parent`, if any.
  std::optional<InodeId> InodeAt(InodeId parent, const std::string& name) const;
  bool Knows(const nfs::FileHandle& fh) const;  // an inode of `fh` is in the table
  // Replies to requests on several connections are applied in another
  // order than the server answered them, so the attributes applied last
  // are not always the newest. `sent` is Mark() from before the reply's
  // request went out:
  // - if other attributes of the file were applied since, either may be
  //   the newer: the file's version is uncertain (VersionOf) until
  //   attributes come that were asked for after all others were applied;
  // - the kernel applies a reply's attributes only if none came since its
  //   request went out (FUSE's attr_version), and when the thread that
  //   asked runs again, which may be later: of two replies out at once it
  //   keeps the one it took first, older or not, while the other's caller
  //   sees the other. A size a process saw could then be followed by an
  //   older one from the kernel's cache. So a reply is `overlapped` if
  //   any attributes of the file other than its own were handed out
  //   (applied here, or FreshAttributes) since its request went out, or
  //   any within kKernelApplyWindow before, unless they all went to the
  //   thread that asks now: it took them before it could ask again.
  //   FileSystem drops the kernel's attributes before it answers it.
  static constexpr std::chrono::milliseconds kKernelApplyWindow{100};
  struct SendMark {
    uint64_t epoch = 0;    // Changed() count
    uint64_t applied = 0;  // attribute applications, hand-outs and writes, all inodes
    std::chrono::steady_clock::time_point at{};  // when
    // The thread that asks (the FUSE request's pid), 0 if unknown. The
    // kernel applies a reply in the thread that asked, before that thread
    // can ask anything again. kNoThread: the attributes go to no thread
    // (an OPEN's, a LOCK's, a flush's: FUSE's replies to those carry none).
    uint32_t caller = 0;
  };
  static constexpr uint32_t kNoThread = UINT32_MAX;
  // The FUSE request this thread serves now: its caller goes in the
  // SendMark of each Mark() made while serving it (set by the FUSE
  // adapter around each request that may hand attributes out).
  class CallerScope {
   public:
    explicit CallerScope(uint32_t caller) : previous_(current_) { current_ = caller; }
    ~CallerScope() { current_ = previous_; }
    CallerScope(const CallerScope&) = delete;
    CallerScope& operator=(const CallerScope&) = delete;
    static uint32_t Current() { return current_; }

   private:
    const uint32_t previous_;
    static thread_local uint32_t current_;
  };
  SendMark Mark(uint32_t caller = CallerScope::Current()) const;
  struct Applied {
    std::optional<uint64_t> previous_change;  // the change attribute before
    bool overlapped = false;
  };
  Applied UpdateAttributes(InodeId ino, const nfs::Attributes& attr, SendMark sent);
  // Whether attributes of `ino` overlapped since the last call (which it
  // clears): the kernel was told to drop them, so it did not compare their
  // size and mtime with its own either, as it does to drop a changed
  // file's pages. Its pages may be older than the attributes applied here:
  // the next open drops them whatever the change attribute says.
  bool TakeOverlappedSinceOpen(InodeId ino);
  std::optional<nfs::Attributes> Attributes(InodeId ino) const;
  // Attributes fresh from an OPEN that GETATTR may answer without asking
  // the server again (FileSystem::GetAttr says when). Marked only if they
  // are the newest this table has, and used only while they are:
  // - each change this mount makes to any file (a write, SETATTR, link,
  //   remove, rename) calls Changed() as it starts and as it ends;
  // - replies may be applied out of the order the server answered them
  //   (several connections): another reply's attributes applied between
  //   the OPEN's sending and its own may be newer than the OPEN's, and any
  //   applied after the mark may be older or newer. Either ends it.
  // `sent` is Mark() from before the OPEN was sent; FreshUntil comes
  // after the OPEN's attributes were applied (UpdateAttributes).
  using Clock = std::chrono::steady_clock;
  void Changed();
  void FreshUntil(InodeId ino, SendMark sent, Clock::time_point until);
  // The attributes of this mount's own change to the file (a SETATTR's
  // reply), marked as its reply comes, before the change's last Changed():
  // `sent` is Mark() from after its first. Unlike an OPEN's, they answer
  // while the file is open to write: the change went out after every byte
  // written before it, and Written ends them at the next write.
  void FreshAfterChange(InodeId ino, SendMark sent, Clock::time_point until);
  // A write through this mount to `ino` (buffered: it may reach the server
  // at any time, and moves the mtime there).
  void Written(InodeId ino);
  struct Fresh {
    nfs::Attributes attr;
    Clock::duration left;
  };
  // Hands them out: a reply to a request out meanwhile overlaps them.
  // `open_for_writing`: someone here may write the file; only a change's
  // attributes answer then (FreshAfterChange).
  std::optional<Fresh> FreshAttributes(InodeId ino, Clock::time_point now,
                                       bool open_for_writing = false,
                                       uint32_t caller = CallerScope::Current());
  // The change attribute and size last seen (0: unknown), for each read.
  // While overlapping replies leave it uncertain, the change is
  // kUncertainChange and `uncertain_at` (non-zero) names the attributes
  // applied last: data read then may be older than the next ones, which
  // the kernel may take for the file's size (FileCache's DataVersion).
  static constexpr uint64_t kUncertainChange = ~uint64_t{0};
  struct Version {
    uint64_t change = 0;
    uint64_t uncertain_at = 0;
    uint64_t size = 0;
  };
  Version VersionOf(InodeId ino) const;

  size_t size() const;
  uint64_t lookups(InodeId ino) const;  // for tests

 private:
  struct Entry {
    nfs::FileHandle fh;
    uint64_t lookups = 0;
    nfs::Attributes attr;
    std::optional<Name> name;
    uint64_t applied = 0;         // applied_ when `attr` was last set
    uint64_t applied_before = 0;  // and when it was set before that
    uint64_t handed = 0;          // applied_ when last applied or handed out
    Clock::time_point handed_at{};  // and when
    uint32_t handed_to = 0;         // and to which thread (SendMark::caller)
    Clock::time_point handed_elsewhere_at{};  // the last hand-out to another one
    uint64_t handed_other = 0;      // the same, of the last version other than attr's
    bool uncertain = false;       // overlapped (UpdateAttributes)
    bool overlapped = false;      // since TakeOverlappedSinceOpen
    uint64_t fresh_epoch = 0;     // FreshUntil's, valid while it is epoch_
    uint64_t fresh_applied = 0;   // and while it is `applied`
    Clock::time_point fresh_until{};
    bool fresh_while_writing = false;  // FreshAfterChange's
    uint64_t written = 0;              // applied_ at the last Written
  };
  static std::string Key(const nfs::FileHandle& fh) {
    return std::string(reinterpret_cast<const char*>(fh.data()), fh.size());
  }
  static std::string NameKey(InodeId parent, const std::string& name) {
    return std::to_string(parent) + '/' + name;
  }
  void UnnameLocked(Entry& e, InodeId ino);
  void MarkFreshLocked(InodeId ino, SendMark sent, uint64_t changes_to_come,
                       Clock::time_point until, bool while_writing);
  Applied ApplyLocked(Entry& e, const nfs::Attributes& attr, SendMark sent);
  void HandedLocked(Entry& e, uint32_t caller);  // e.handed_at and who to

  mutable std::mutex mu_;
  std::unordered_map<InodeId, Entry> entries_;       // GUARDED_BY(mu_)
  std::unordered_map<std::string, InodeId> by_fh_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, InodeId> by_name_;  // GUARDED_BY(mu_): NameKey -> inode
  InodeId next_ = kRootInode + 1;                    // GUARDED_BY(mu_)
  uint64_t epoch_ = 1;                               // GUARDED_BY(mu_): see Changed
  uint64_t applied_ = 0;                             // GUARDED_BY(mu_): see ApplyLocked
};

}  // namespace floatmount::fuse
