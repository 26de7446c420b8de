#include "fuse/cache/read_pattern.h"

#include <algorithm>

namespace floatmount::fuse {

ReadPlan ReadPattern::Note(uint64_t offset, size_t size) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t end = offset + size;
  const uint64_t slack = 2 * chunk_;
  ++clock_;
  Stream* match = nullptr;
  for (Stream& s : streams_) {
    // A new stream must be continued exactly; an established one within
    // `slack` (its reads come on several threads).
    const bool near = s.window == 0 ? offset == s.next
                                    : offset + slack >= s.next && offset <= s.next + slack;
    if (s.live && near) {
      match = &s;
      break;
    }
  }
  if (match == nullptr) {
    Stream* lru = &streams_[0];
    for (Stream& s : streams_) {
      if (!s.live) {
        lru = &s;
        break;
      }
      if (s.used < lru->used) lru = &s;
    }
    *lru = Stream{true, end, 0, 0, clock_};
    return ReadPlan{};
  }
  Stream& s = *match;
  s.used = clock_;
  s.next = std::max(s.next, end);
  s.window = std::min(max_window_, s.window == 0 ? chunk_ : 2 * s.window);
  ReadPlan plan;
  plan.sequential = true;
  const uint64_t to = (s.next + s.window + chunk_ - 1) / chunk_ * chunk_;
  const uint64_t from = std::max(s.ahead, end / chunk_ * chunk_);
  if (from < to) {
    plan.ahead_from = from;
    plan.ahead_to = to;
    s.ahead = to;
  }
  return plan;
}

uint64_t ReadPattern::window_for_test(size_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_[i].window;
}

}  // namespace floatmount::fuse
