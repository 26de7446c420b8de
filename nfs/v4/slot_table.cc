#include "nfs/v4/slot_table.h"

#include <algorithm>
#include <utility>

namespace floatmount::nfs {
namespace {
constexpr uint8_t kFree = 0;
constexpr uint8_t kBusy = 1;
constexpr uint8_t kInterrupted = 2;
}  // namespace

SlotTable::SlotTable(uint32_t slots)
    : seqids_(std::max<uint32_t>(slots, 1), 1),
      busy_(std::max<uint32_t>(slots, 1), kFree),
      limit_(std::max<uint32_t>(slots, 1)),
      ceiling_(std::max<uint32_t>(slots, 1)) {}

int SlotTable::FindFreeSlot() const {
  for (uint32_t i = 0; i < limit_; ++i) {
    if (busy_[i] == kFree) return static_cast<int>(i);
  }
  return -1;
}

uint32_t SlotTable::HighestBusy() const {
  for (uint32_t i = static_cast<uint32_t>(busy_.size()); i > 0; --i) {
    if (busy_[i - 1] == kBusy) return i - 1;
  }
  return 0;
}

bool SlotTable::BulkMayTakeLocked() const {
  const auto busy = static_cast<uint32_t>(std::count(busy_.begin(), busy_.end(), kBusy));
  return busy + std::min<uint32_t>(4, limit_ / 4) < limit_;
}

void SlotTable::Acquire(Grant grant, bool bulk) {
  uint32_t slot, seqid, highest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int free_slot = FindFreeSlot();
    if (bulk && (free_slot < 0 || !bulk_waiters_.empty() || !BulkMayTakeLocked())) {
      bulk_waiters_.push_back(std::move(grant));
      return;
    }
    if (free_slot < 0) {
      waiters_.push_back(std::move(grant));
      return;
    }
    slot = static_cast<uint32_t>(free_slot);
    busy_[slot] = kBusy;
    seqid = seqids_[slot];
    highest = HighestBusy();
  }
  grant(slot, seqid, highest);
}

bool SlotTable::NextGrant(Grant* grant, uint32_t* slot, uint32_t* seqid, uint32_t* highest) {
  const int free_slot = FindFreeSlot();
  if (free_slot < 0) return false;
  if (!waiters_.empty()) {
    *grant = std::move(waiters_.front());
    waiters_.pop_front();
  } else if (!bulk_waiters_.empty() && BulkMayTakeLocked()) {
    *grant = std::move(bulk_waiters_.front());
    bulk_waiters_.pop_front();
  } else {
    return false;
  }
  *slot = static_cast<uint32_t>(free_slot);
  busy_[*slot] = kBusy;
  *seqid = seqids_[*slot];
  *highest = HighestBusy();
  return true;
}

void SlotTable::Complete(uint32_t slot, uint32_t server_highest, uint32_t target_highest) {
  Grant grant;
  uint32_t next_slot, seqid, highest;
  bool have;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (slot >= busy_.size()) return;
    ++seqids_[slot];
    if (busy_[slot] == kBusy) busy_[slot] = kFree;
    const uint32_t cap = std::min(server_highest, target_highest) + 1;
    limit_ = std::clamp<uint32_t>(cap, 1, ceiling_);
    have = NextGrant(&grant, &next_slot, &seqid, &highest);
  }
  if (have) grant(next_slot, seqid, highest);
}

void SlotTable::Release(uint32_t slot) {
  Grant grant;
  uint32_t next_slot, seqid, highest;
  bool have;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (slot >= busy_.size()) return;
    if (busy_[slot] == kBusy) busy_[slot] = kFree;
    have = NextGrant(&grant, &next_slot, &seqid, &highest);
  }
  if (have) grant(next_slot, seqid, highest);
}

void SlotTable::Interrupt(uint32_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  if (slot < busy_.size()) busy_[slot] = kInterrupted;
}

bool SlotTable::TakeInterrupted(uint32_t* slot, uint32_t* seqid) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(busy_.begin(), busy_.end(), kInterrupted);
  if (it == busy_.end()) return false;
  *it = kBusy;
  *slot = static_cast<uint32_t>(it - busy_.begin());
  *seqid = ++seqids_[*slot];
  return true;
}

uint32_t SlotTable::StepBack(uint32_t slot) {
  std::lock_guard<std::mutex> lock(mu_);
  return slot < seqids_.size() ? --seqids_[slot] : 0;
}

void SlotTable::Refuse(uint32_t slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (slot >= busy_.size()) return;
    ceiling_ = std::clamp<uint32_t>(slot, 1, ceiling_);
    limit_ = std::min(limit_, ceiling_);
  }
  Release(slot);
}

uint32_t SlotTable::interrupted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint32_t>(std::count(busy_.begin(), busy_.end(), kInterrupted));
}

std::deque<SlotTable::Grant> SlotTable::TakeWaiters() {
  std::lock_guard<std::mutex> lock(mu_);
  std::deque<Grant> all = std::exchange(waiters_, {});
  for (auto& g : bulk_waiters_) all.push_back(std::move(g));
  bulk_waiters_.clear();
  return all;
}

uint32_t SlotTable::small_reserve() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::min<uint32_t>(4, limit_ / 4);
}

uint32_t SlotTable::limit() const {
  std::lock_guard<std::mutex> lock(mu_);
  return limit_;
}

uint32_t SlotTable::in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint32_t>(std::count(busy_.begin(), busy_.end(), kBusy));
}

}  // namespace floatmount::nfs
