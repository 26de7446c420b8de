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

  // Records that the kernel learned `fh` once more; returns its inode.
  InodeId Learn(const nfs::FileHandle& fh, const nfs::Attributes& attr);
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
  void Named(InodeId ino, InodeId parent, const std::string& name);
  void Renamed(InodeId parent, const std::string& name, InodeId new_parent,
               const std::string& new_name);
  void Removed(InodeId parent, const std::string& name);
  // The name `ino` was last learned by, if it still has it.
  std::optional<Name> NameOf(InodeId ino) const;
  // The inode last learned as `name` in `parent`, if any.
  std::optional<InodeId> InodeAt(InodeId parent, const std::string& name) const;
  bool Knows(const nfs::FileHandle& fh) const;  // an inode of `fh` is in the table
  // Updates the remembered attributes; returns the previous change value.
  std::optional<uint64_t> UpdateAttributes(InodeId ino, const nfs::Attributes& attr);
  std::optional<nfs::Attributes> Attributes(InodeId ino) const;
  // Attributes fresh from an OPEN that GETATTR may answer without asking
  // the server again (FileSystem::GetAttr says when). Each change this
  // mount makes to any file (a write, SETATTR, link, remove, rename)
  // calls Changed() as it starts and as it ends, which ends every such
  // answer: `epoch`, Epoch() from before the OPEN was sent, must still be
  // current when the attributes are marked and when they are used.
  using Clock = std::chrono::steady_clock;
  uint64_t Epoch() const;
  void Changed();
  void FreshUntil(InodeId ino, uint64_t epoch, Clock::time_point until);
  struct Fresh {
    nfs::Attributes attr;
    Clock::duration left;
  };
  std::optional<Fresh> FreshAttributes(InodeId ino, Clock::time_point now) const;
  // The change attribute and size last seen (0: unknown), for each read.
  struct Version {
    uint64_t change = 0;
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
    uint64_t fresh_epoch = 0;             // FreshUntil's, valid while it is epoch_
    Clock::time_point fresh_until{};
  };
  static std::string Key(const nfs::FileHandle& fh) {
    return std::string(reinterpret_cast<const char*>(fh.data()), fh.size());
  }
  static std::string NameKey(InodeId parent, const std::string& name) {
    return std::to_string(parent) + '/' + name;
  }
  void UnnameLocked(Entry& e, InodeId ino);

  mutable std::mutex mu_;
  std::unordered_map<InodeId, Entry> entries_;       // GUARDED_BY(mu_)
  std::unordered_map<std::string, InodeId> by_fh_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, InodeId> by_name_;  // GUARDED_BY(mu_): NameKey -> inode
  InodeId next_ = kRootInode + 1;                    // GUARDED_BY(mu_)
  uint64_t epoch_ = 1;                               // GUARDED_BY(mu_): see Changed
};

}  // namespace floatmount::fuse
