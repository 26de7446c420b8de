#include "fuse/inode_table.h"

namespace floatmount::fuse {

InodeTable::InodeTable(nfs::FileHandle root) {
  by_fh_[Key(root)] = kRootInode;
  entries_[kRootInode] = Entry{std::move(root), 1, {}};
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
  by_fh_.erase(Key(it->second.fh));
  entries_.erase(it);
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

std::optional<nfs::Attributes> InodeTable::Attributes(InodeId ino) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(ino);
  if (it == entries_.end()) return std::nullopt;
  return it->second.attr;
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
