// NegativeNames: see negative_names.h.
#include "fuse/negative_names.h"

namespace floatmount::fuse {

uint64_t NegativeNames::Stamp() const {
  std::lock_guard<std::mutex> lock(mu_);
  return forgets_;
}

void NegativeNames::Remember(InodeId parent, const std::string& name, Clock::time_point until,
                             uint64_t stamp) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stamp != forgets_) return;
  if (until_.size() >= capacity_) {
    const Clock::time_point now = Clock::now();
    std::erase_if(until_, [now](const auto& kv) { return kv.second <= now; });
    if (until_.size() >= capacity_) until_.clear();
  }
  until_[Key{parent, name}] = until;
}

std::optional<NegativeNames::Clock::duration> NegativeNames::Missing(InodeId parent,
                                                                     const std::string& name,
                                                                     Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = until_.find(Key{parent, name});
  if (it == until_.end()) return std::nullopt;
  if (it->second <= now) {
    until_.erase(it);
    return std::nullopt;
  }
  return it->second - now;
}

void NegativeNames::Forget(InodeId parent, const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ++forgets_;
  until_.erase(Key{parent, name});
}

size_t NegativeNames::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return until_.size();
}

}  // namespace floatmount::fuse
