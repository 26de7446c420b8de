#include "fuse/inode_table.h"

#include <utility>

namespace floatmount::fuse {

InodeTable::InodeTable(nfs::FileHandle root) {
  by_fh_[Key(root)] = kRootInode;
  entries_[kRootInode].fh = std::move(root);
  entries_[kRootInode].lookups = 1;
}

InodeId InodeTable::Learn(const nfs::FileHandle& fh, const nfs::Attributes& attr, SendMark sent,
                          Applied* applied) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string key = Key(fh);
  auto it = by_fh_.find(key);
  InodeId ino;
  if (it != by_fh_.end()) {
    ino = it->second;
  } else {
    ino = next_++;
    by_fh_.emplace(key, ino);
    entries_[ino].fh = fh;
  }
  Entry& e = entries_[ino];
  if (ino != kRootInode) ++e.lookups;
  if (attr.valid != 0) {
    const Applied a = ApplyLocked(e, attr, sent);
    if (applied) *applied = a;
  }
  return ino;
}

void InodeTable::Forget(InodeId ino, uint64_t count) {
  if (ino == kRootInode) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return;
  if (it->second.lookups > count) {
    it->second.lookups -= count;
    return;
  }
  UnnameLocked(it->second, ino);
  by_fh_.erase(Key(it->second.fh));
  entries_.erase(it);
}

void InodeTable::UnnameLocked(Entry& e, InodeId ino) {
  if (!e.name) return;
  auto it = by_name_.find(NameKey(e.name->parent, e.name->name));
  if (it != by_name_.end() && it->second == ino) by_name_.erase(it);
  e.name.reset();
}

std::optional<InodeTable::Name> InodeTable::Named(InodeId ino, InodeId parent,
                                                  const std::string& name) {
  if (ino == kRootInode || name == "." || name == "..") return std::nullopt;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return std::nullopt;
  std::optional<Name> moved;
  const Entry& e = it->second;
  if (e.attr.type == nfs::FileType::kDirectory && e.name &&
      (e.name->parent != parent || e.name->name != name)) {
    moved = e.name;
  }
  UnnameLocked(it->second, ino);
  const std::string key = NameKey(parent, name);
  auto old = by_name_.find(key);
  if (old != by_name_.end() && old->second != ino) {
    auto other = entries_.find(old->second);  // the name leads elsewhere now
    if (other != entries_.end()) other->second.name.reset();
  }
  by_name_[key] = ino;
  it->second.name = Name{parent, name};
  return moved;
}

void InodeTable::Renamed(InodeId parent, const std::string& name, InodeId new_parent,
                         const std::string& new_name) {
  std::lock_guard<std::mutex> lock(mu_);
  // Whatever the new name led to is gone (replaced).
  auto target = by_name_.find(NameKey(new_parent, new_name));
  if (target != by_name_.end()) {
    auto e = entries_.find(target->second);
    if (e != entries_.end()) e->second.name.reset();
    by_name_.erase(target);
  }
  auto it = by_name_.find(NameKey(parent, name));
  if (it == by_name_.end()) return;
  const InodeId ino = it->second;
  by_name_.erase(it);
  by_name_[NameKey(new_parent, new_name)] = ino;
  auto e = entries_.find(ino);
  if (e != entries_.end()) e->second.name = Name{new_parent, new_name};
}

void InodeTable::Removed(InodeId parent, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(NameKey(parent, name));
  if (it == by_name_.end()) return;
  auto e = entries_.find(it->second);
  if (e != entries_.end()) e->second.name.reset();
  by_name_.erase(it);
}

std::optional<InodeId> InodeTable::InodeAt(InodeId parent, const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_name_.find(NameKey(parent, name));
  if (it == by_name_.end()) return std::nullopt;
  return it->second;
}

std::optional<InodeTable::Name> InodeTable::NameOf(InodeId ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return std::nullopt;
  return it->second.name;
}

std::optional<nfs::FileHandle> InodeTable::Handle(InodeId ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return std::nullopt;
  return it->second.fh;
}

InodeTable::Applied InodeTable::UpdateAttributes(InodeId ino, const nfs::Attributes& attr,
                                                 SendMark sent) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return {};
  return ApplyLocked(it->second, attr, sent);
}

bool InodeTable::Knows(const nfs::FileHandle& fh) const {
  std::lock_guard<std::mutex> lock(mu_);
  return by_fh_.count(Key(fh)) != 0;
}

std::optional<nfs::Attributes> InodeTable::Attributes(InodeId ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return std::nullopt;
  return it->second.attr;
}

namespace {

// The same version of the file: nothing an overlap could reorder.
bool SameVersion(const nfs::Attributes& a, const nfs::Attributes& b) {
  using A = nfs::Attributes;
  if (a.Has(A::kChange) != b.Has(A::kChange) || (a.Has(A::kChange) && a.change != b.change)) {
    return false;
  }
  return a.size == b.size && a.mtime == b.mtime && a.ctime == b.ctime;
}

}  // namespace

void InodeTable::HandedLocked(Entry& e, uint32_t caller) {
  if (caller == kNoThread) return;
  if (caller == 0 || caller != e.handed_to) e.handed_elsewhere_at = e.handed_at;
  e.handed_at = Clock::now();
  e.handed_to = caller;
}

InodeTable::Applied InodeTable::ApplyLocked(Entry& e, const nfs::Attributes& attr,
                                            SendMark sent) {
  Applied result;
  if (e.attr.Has(nfs::Attributes::kChange)) result.previous_change = e.attr.change;
  const bool same = SameVersion(e.attr, attr);
  // Applied here since this one's request went out: either may be the
  // newer. Only attributes asked for after all others were applied are
  // newer than all of them.
  const bool applied_since = e.applied > sent.applied;
  e.uncertain = applied_since && (e.uncertain || !same);
  // Attributes other than these handed to the kernel since, or so shortly
  // before that the kernel may take them only after this request went
  // out (it applies a reply when the thread that asked runs again). Or,
  // though these are the same as the last ones, others handed out since.
  // Not others shortly before: each overlapped reply is one the kernel
  // drops, and a file read at once after it changed would never get its
  // new size into the kernel (reads there stop at the old end). For the
  // same reason the window spares the thread that asks now, if the last
  // ones went to it (it took them before it could ask again) and none
  // went to another thread within the window.
  const bool taken_by_asker = sent.caller != 0 && sent.caller == e.handed_to;
  const bool kernel_may_take_later =
      (!taken_by_asker && e.handed_at + kKernelApplyWindow > sent.at) ||
      e.handed_elsewhere_at + kKernelApplyWindow > sent.at;
  result.overlapped = (!same && (e.handed > sent.applied || kernel_may_take_later)) ||
                      e.handed_other > sent.applied;
  e.overlapped |= result.overlapped;
  if (!same) e.handed_other = e.handed;
  HandedLocked(e, sent.caller);
  e.attr = attr;
  e.applied_before = e.applied;
  e.handed = e.applied = ++applied_;
  return result;
}

bool InodeTable::TakeOverlappedSinceOpen(InodeId ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return false;
  return std::exchange(it->second.overlapped, false);
}

thread_local uint32_t InodeTable::CallerScope::current_ = 0;

InodeTable::SendMark InodeTable::Mark(uint32_t caller) const {
  std::lock_guard<std::mutex> lock(mu_);
  return SendMark{epoch_, applied_, Clock::now(), caller};
}

void InodeTable::Changed() {
  std::lock_guard<std::mutex> lock(mu_);
  ++epoch_;
}

void InodeTable::FreshUntil(InodeId ino, SendMark sent, Clock::time_point until) {
  std::lock_guard<std::mutex> lock(mu_);
  MarkFreshLocked(ino, sent, 0, until, false);
}

void InodeTable::FreshAfterChange(InodeId ino, SendMark sent, Clock::time_point until) {
  std::lock_guard<std::mutex> lock(mu_);
  MarkFreshLocked(ino, sent, 1, until, true);
}

// Valid while nothing else changed through this mount: `changes_to_come`
// are the caller's own Changed() still to come.
void InodeTable::MarkFreshLocked(InodeId ino, SendMark sent, uint64_t changes_to_come,
                                 Clock::time_point until, bool while_writing) {
  auto it = entries_.find(ino);
  if (it == entries_.end() || sent.epoch != epoch_) return;
  Entry& e = it->second;
  // Exactly one application since the request was sent: its own.
  if (e.applied <= sent.applied || e.applied_before > sent.applied || e.uncertain) return;
  // A write since may not be in them, and may reach the server any time.
  if (while_writing && e.written > sent.applied) return;
  e.fresh_epoch = sent.epoch + changes_to_come;
  e.fresh_applied = e.applied;
  e.fresh_until = until;
  e.fresh_while_writing = while_writing;
}

void InodeTable::Written(InodeId ino) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return;
  it->second.written = ++applied_;
}

std::optional<InodeTable::Fresh> InodeTable::FreshAttributes(InodeId ino, Clock::time_point now,
                                                             bool open_for_writing,
                                                             uint32_t caller) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return std::nullopt;
  Entry& e = it->second;
  // A write since the mark may reach the server any time.
  if (e.fresh_epoch != epoch_ || e.fresh_applied != e.applied || e.uncertain ||
      e.written > e.fresh_applied || now >= e.fresh_until ||
      (open_for_writing && !e.fresh_while_writing)) {
    return std::nullopt;
  }
  e.handed = ++applied_;
  HandedLocked(e, caller);
  return Fresh{e.attr, e.fresh_until - now};
}

InodeTable::Version InodeTable::VersionOf(InodeId ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  Version v;
  auto it = entries_.find(ino);
  if (it == entries_.end()) return v;
  const nfs::Attributes& a = it->second.attr;
  if (it->second.uncertain) {
    v.change = kUncertainChange;
    v.uncertain_at = it->second.applied;
  } else if (a.Has(nfs::Attributes::kChange)) {
    v.change = a.change;
  }
  if (a.Has(nfs::Attributes::kSize)) v.size = a.size;
  return v;
}

size_t InodeTable::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

uint64_t InodeTable::lookups(InodeId ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  return it == entries_.end() ? 0 : it->second.lookups;
}

}  // namespace floatmount::fuse
