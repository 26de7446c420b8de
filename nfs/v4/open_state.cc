// OpenState's lock-owner bookkeeping; see nfs/v4/open_state.h. The lock
// operations that use it are in nfs/v4/locks.cc, the reclaim after a server
// restart in nfs/v4/state_recovery.cc.
#include <fmt/format.h>

#include <string>
#include <utility>
#include <vector>

#include "nfs/v4/open_state.h"

namespace floatmount::nfs {

using v4::Stateid;

namespace {

// The lock_owner4 owner string: unique per open (its open owner) and local
// owner; a new generation after the server forgot the old one.
std::string LockOwnerName(const std::string& open_owner, uint64_t owner, uint32_t generation) {
  std::string name = fmt::format("fm-lock-{}-{:x}", open_owner, owner);
  if (generation > 0) name += fmt::format(".{}", generation);
  return name;
}

}  // namespace

OpenState::LockOwnerSlot& OpenState::SlotLocked(uint64_t owner) {
  auto [it, inserted] = lock_owners_.try_emplace(owner);
  if (inserted) it->second.state.name = LockOwnerName(owner_, owner, 0);
  return it->second;
}

OpenState::LockOwner OpenState::lock_owner(uint64_t owner) {
  std::lock_guard<std::mutex> lock(mu_);
  return SlotLocked(owner).state;
}

std::vector<OpenState::LockOwner> OpenState::known_lock_owners() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<LockOwner> known;
  for (const auto& [owner, slot] : lock_owners_) {
    if (slot.state.known) known.push_back(slot.state);
  }
  return known;
}

void OpenState::SetLockStateid(uint64_t owner, const Stateid& lock_stateid,
                               const Stateid& open_stateid) {
  std::lock_guard<std::mutex> lock(mu_);
  LockOwner& state = SlotLocked(owner).state;
  state.known = true;
  state.stateid = lock_stateid;
  state.open_stateid = open_stateid;
}

std::vector<std::pair<uint64_t, OpenState::LockOwner>> OpenState::lock_owners() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::pair<uint64_t, LockOwner>> owners;
  for (const auto& [owner, slot] : lock_owners_) {
    const LockOwner& state = slot.state;
    if (state.known || !state.held.empty() || state.lost) owners.emplace_back(owner, state);
  }
  return owners;
}

void OpenState::Granted(uint64_t owner, uint32_t locktype, uint64_t offset, uint64_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  SlotLocked(owner).state.held.Lock(locktype, offset, length);
}

void OpenState::Released(uint64_t owner, uint64_t offset, uint64_t length) {
  std::lock_guard<std::mutex> lock(mu_);
  SlotLocked(owner).state.held.Unlock(offset, length);
}

OpenState::LockOwner OpenState::ForgetLockOwner(uint64_t owner) {
  std::lock_guard<std::mutex> lock(mu_);
  LockOwner& state = SlotLocked(owner).state;
  ++state.generation;
  state.name = LockOwnerName(owner_, owner, state.generation);
  state.known = false;
  state.stateid = Stateid{};
  state.open_stateid = Stateid{};
  state.held.Clear();
  return state;
}

bool OpenState::MarkLockLost(uint64_t owner) {
  std::lock_guard<std::mutex> lock(mu_);
  SlotLocked(owner).state.lost = true;
  const bool first = !locks_lost_;
  locks_lost_ = true;
  return first;
}

void OpenState::RunLockOp(uint64_t owner, std::function<void()> op) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    LockOwnerSlot& slot = SlotLocked(owner);
    if (slot.busy) {
      slot.queued.push_back(std::move(op));
      return;
    }
    slot.busy = true;
  }
  op();
}

void OpenState::FinishLockOp(uint64_t owner) {
  std::function<void()> next;
  {
    std::lock_guard<std::mutex> lock(mu_);
    LockOwnerSlot& slot = SlotLocked(owner);
    if (slot.queued.empty()) {
      slot.busy = false;
      return;
    }
    next = std::move(slot.queued.front());
    slot.queued.pop_front();  // stays busy: `next` is the one under way now
  }
  next();
}

}  // namespace floatmount::nfs
