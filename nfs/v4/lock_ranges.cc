// LockRanges; see nfs/v4/lock_ranges.h.
#include "nfs/v4/lock_ranges.h"

#include <iterator>

#include "nfs/v4/protocol.h"

namespace floatmount::nfs {

using namespace v4;  // NOLINT: RFC names read best unqualified here

namespace {

constexpr uint64_t kToEnd = UINT64_MAX;

// [offset, end) of a wire range; length4 all ones (or a range reaching
// 2^64 - 1) locks to the end of the file.
uint64_t EndOf(uint64_t offset, uint64_t length) {
  if (length == NFS4_UINT64_MAX || length > kToEnd - offset) return kToEnd;
  return offset + length;
}

}  // namespace

void LockRanges::Unlock(uint64_t offset, uint64_t length) {
  const uint64_t end = EndOf(offset, length);
  // The first range that may overlap starts at or before `offset`.
  auto it = held_.upper_bound(offset);
  if (it != held_.begin()) --it;
  while (it != held_.end() && it->first < end) {
    const uint64_t start = it->first;
    const Held held = it->second;
    if (held.end <= offset) {
      ++it;
      continue;
    }
    it = held_.erase(it);
    if (start < offset) held_[start] = Held{offset, held.locktype};  // the part before
    if (held.end > end) held_[end] = Held{held.end, held.locktype};  // the part after
  }
}

void LockRanges::Lock(uint32_t locktype, uint64_t offset, uint64_t length) {
  const uint32_t type = locktype == READ_LT || locktype == READW_LT ? READ_LT : WRITE_LT;
  uint64_t start = offset;
  uint64_t end = EndOf(offset, length);
  Unlock(offset, length);  // the new lock replaces what was held there
  // Merge with neighbours of the same type that touch it.
  auto next = held_.lower_bound(end);
  if (next != held_.end() && next->first == end && next->second.locktype == type) {
    end = next->second.end;
    held_.erase(next);
  }
  auto at = held_.lower_bound(start);
  if (at != held_.begin()) {
    auto prev = std::prev(at);
    if (prev->second.end == start && prev->second.locktype == type) {
      start = prev->first;
      held_.erase(prev);
    }
  }
  held_[start] = Held{end, type};
}

std::vector<LockRange> LockRanges::ranges() const {
  std::vector<LockRange> out;
  out.reserve(held_.size());
  for (const auto& [start, held] : held_) {
    const uint64_t length = held.end == kToEnd ? NFS4_UINT64_MAX : held.end - start;
    out.push_back(LockRange{held.locktype, start, length});
  }
  return out;
}

}  // namespace floatmount::nfs
