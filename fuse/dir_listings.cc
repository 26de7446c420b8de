#include "fuse/dir_listings.h"

namespace floatmount::fuse {

bool DirListings::NoteLookup(InodeId dir, const nfs::Credentials& cred, Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  const Key key = KeyOf(dir, cred);
  if (listings_.count(key) != 0) return false;  // one under way or kept (the name was asked)
  if (bursts_.size() > 4 * options_.max_listings) {
    for (auto it = bursts_.begin(); it != bursts_.end();) {
      const bool stale = now - it->second.since > options_.window && now >= it->second.quiet_until;
      it = stale ? bursts_.erase(it) : std::next(it);
    }
  }
  Burst& b = bursts_[key];
  if (now < b.quiet_until) return false;
  if (b.count == 0 || now - b.since > options_.window) {
    b.count = 0;
    b.since = now;
  }
  if (++b.count < options_.trigger) return false;
  bursts_.erase(key);
  return true;
}

void DirListings::Begin(InodeId dir, const nfs::Credentials& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  listings_[KeyOf(dir, cred)] = Listing{};
  EvictLocked();
}

void DirListings::Complete(InodeId dir, const nfs::Credentials& cred,
                           std::vector<nfs::DirEntry> entries, Clock::time_point until) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = listings_.find(KeyOf(dir, cred));
  if (it == listings_.end() || !it->second.fetching) return;  // evicted meanwhile
  if (it->second.cancelled || entries.size() > options_.max_entries) {
    listings_.erase(it);
    return;
  }
  Listing& l = it->second;
  l.fetching = false;
  l.until = until;
  l.used = Clock::now();
  l.names.reserve(entries.size());
  for (nfs::DirEntry& e : entries) {
    std::optional<nfs::Entry> entry;
    if (!e.fh.empty() && e.attr.Has(nfs::Attributes::kType)) {
      entry = nfs::Entry{std::move(e.fh), std::move(e.attr)};
    }
    l.names.emplace(std::move(e.name), std::move(entry));
  }
}

void DirListings::Abandon(InodeId dir, const nfs::Credentials& cred) {
  std::lock_guard<std::mutex> lock(mu_);
  const Key key = KeyOf(dir, cred);
  listings_.erase(key);
  bursts_[key].quiet_until = Clock::now() + options_.after_failure;
}

DirListings::Answer DirListings::Find(InodeId dir, const nfs::Credentials& cred,
                                      const std::string& name, Clock::time_point now,
                                      nfs::Entry* entry, Clock::duration* left) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = listings_.find(KeyOf(dir, cred));
  if (it == listings_.end() || it->second.fetching) return Answer::kAsk;
  Listing& l = it->second;
  if (now >= l.until) {
    listings_.erase(it);
    return Answer::kAsk;
  }
  l.used = now;
  auto n = l.names.find(name);
  if (n == l.names.end() || !n->second) return Answer::kAsk;
  *left = l.until - now;
  *entry = std::move(*n->second);
  n->second.reset();  // handed out once
  return Answer::kFound;
}

void DirListings::Forget(InodeId dir, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = listings_.lower_bound(Key{dir, 0, 0, {}});
       it != listings_.end() && std::get<0>(it->first) == dir; ++it) {
    auto n = it->second.names.find(name);
    if (n != it->second.names.end()) n->second.reset();
  }
}

void DirListings::Changed(InodeId dir) {
  std::lock_guard<std::mutex> lock(mu_);
  // Lookups around this mount's own changes are no storm to list for.
  for (auto it = bursts_.lower_bound(Key{dir, 0, 0, {}});
       it != bursts_.end() && std::get<0>(it->first) == dir;) {
    it = bursts_.erase(it);
  }
  for (auto it = listings_.lower_bound(Key{dir, 0, 0, {}});
       it != listings_.end() && std::get<0>(it->first) == dir;) {
    if (it->second.fetching) {
      it->second.cancelled = true;
      ++it;
    } else {
      it = listings_.erase(it);
    }
  }
}

size_t DirListings::listings() const {
  std::lock_guard<std::mutex> lock(mu_);
  return listings_.size();
}

void DirListings::EvictLocked() {
  while (listings_.size() > options_.max_listings) {
    auto oldest = listings_.end();
    for (auto it = listings_.begin(); it != listings_.end(); ++it) {
      if (it->second.fetching) continue;
      if (oldest == listings_.end() || it->second.used < oldest->second.used) oldest = it;
    }
    if (oldest == listings_.end()) return;  // all under way: they end soon
    listings_.erase(oldest);
  }
}

}  // namespace floatmount::fuse
