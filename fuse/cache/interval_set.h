// IntervalSet: disjoint, sorted half-open byte ranges [lo, hi) within one
// chunk; adding a range merges it with those it touches. Chunks hold at
// most a few hundred ranges (random 4 KiB writes into 1 MiB), so a sorted
// vector is enough.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace floatmount::fuse {

class IntervalSet {
 public:
  using Range = std::pair<uint32_t, uint32_t>;

  void Add(uint32_t lo, uint32_t hi) {
    if (lo >= hi) return;
    std::vector<Range> out;
    out.reserve(ranges_.size() + 1);
    size_t i = 0;
    while (i < ranges_.size() && ranges_[i].second < lo) out.push_back(ranges_[i++]);
    while (i < ranges_.size() && ranges_[i].first <= hi) {
      lo = std::min(lo, ranges_[i].first);
      hi = std::max(hi, ranges_[i].second);
      ++i;
    }
    out.emplace_back(lo, hi);
    while (i < ranges_.size()) out.push_back(ranges_[i++]);
    ranges_.swap(out);
  }
  void AddAll(const IntervalSet& other) {
    for (const Range& r : other.ranges_) Add(r.first, r.second);
  }
  bool empty() const { return ranges_.empty(); }
  void clear() { ranges_.clear(); }
  uint64_t bytes() const {
    uint64_t n = 0;
    for (const Range& r : ranges_) n += r.second - r.first;
    return n;
  }
  uint32_t end() const { return ranges_.empty() ? 0 : ranges_.back().second; }
  bool Covers(uint32_t lo, uint32_t hi) const {
    for (const Range& r : ranges_) {
      if (r.first <= lo && hi <= r.second) return true;
    }
    return false;
  }
  const std::vector<Range>& ranges() const { return ranges_; }

 private:
  std::vector<Range> ranges_;
};

}  // namespace floatmount::fuse
