#include "fuse/inode_table.h"

namespace floatmount::fuse {

InodeTable::InodeTable(nfs::FileHandle root) {
  by_fh_[Key(root)] = kRootInode;
  entries_[kRootInode] = Entry{std::move(root), 1, {}, std::nullopt, 0, {}};
}

InodeId InodeTable::Learn(const nfs::FileHandle& fh, const nfs::Attributes& attr) {
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
  if (attr.valid != 0) e.attr = attr;
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

void InodeTable::Named(InodeId ino, InodeId parent, const std::string& name) {
  if (ino == kRootInode || name == "." || name == "..") return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return;
  UnnameLocked(it->second, ino);
  const std::string key = NameKey(parent, name);
  auto old = by_name_.find(key);
  if (old != by_name_.end() && old->second != ino) {
    auto other = entries_.find(old->second);  // the name leads elsewhere now
    if (other != entries_.end()) other->second.name.reset();
  }
  by_name_[key] = ino;
  it->second.name = Name{parent, name};
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

std::optional<uint64_t> InodeTable::UpdateAttributes(InodeId ino, const nfs::Attributes& attr) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return std::nullopt;
  std::optional<uint64_t> previous;
  if (it->second.attr.Has(nfs::Attributes::kChange)) previous = it->second.attr.change;
  it->second.attr = attr;
  return previous;
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

uint64_t InodeTable::Epoch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return epoch_;
}

void InodeTable::Changed() {
  std::lock_guard<std::mutex> lock(mu_);
  ++epoch_;
}

void InodeTable::FreshUntil(InodeId ino, uint64_t epoch, Clock::time_point until) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end() || epoch != epoch_) return;
  it->second.fresh_epoch = epoch;
  it->second.fresh_until = until;
}

std::optional<InodeTable::Fresh> InodeTable::FreshAttributes(InodeId ino,
                                                             Clock::time_point now) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end() || it->second.fresh_epoch != epoch_ || now >= it->second.fresh_until) {
    return std::nullopt;
  }
  return Fresh{it->second.attr, it->second.fresh_until - now};
}

InodeTable::Version InodeTable::VersionOf(InodeId ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  Version v;
  auto it = entries_.find(ino);
  if (it == entries_.end()) return v;
  const nfs::Attributes& a = it->second.attr;
  if (a.Has(nfs::Attributes::kChange)) v.change = a.change;
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
