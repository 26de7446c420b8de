#include "fuse/written_ends.h"

#include <algorithm>

namespace floatmount::fuse {

uint64_t WrittenEnds::Stamp() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seq_;
}

void WrittenEnds::Written(InodeId ino, uint64_t end) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Step>& steps = files_[ino];
  // An older write that ended no further adds nothing for any stamp.
  while (!steps.empty() && steps.back().end <= end) steps.pop_back();
  steps.push_back(Step{++seq_, end});
  if (steps.size() > kSteps) {
    steps[1].end = steps[0].end;  // larger for stamps between the two: never smaller
    steps.erase(steps.begin());
  }
}

void WrittenEnds::Resized(InodeId ino) {
  std::lock_guard<std::mutex> lock(mu_);
  files_.erase(ino);
}

void WrittenEnds::Forget(InodeId ino) { Resized(ino); }

uint64_t WrittenEnds::SizeAfter(InodeId ino, uint64_t stamp, uint64_t size) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = files_.find(ino);
  if (it == files_.end()) return size;
  // Ends fall as sequence numbers rise: the first step after the stamp
  // ended furthest of all the writes after it.
  const std::vector<Step>& steps = it->second;
  auto first = std::upper_bound(steps.begin(), steps.end(), stamp,
                                [](uint64_t s, const Step& step) { return s < step.seq; });
  return first == steps.end() ? size : std::max(size, first->end);
}

size_t WrittenEnds::files() const {
  std::lock_guard<std::mutex> lock(mu_);
  return files_.size();
}

}  // namespace floatmount::fuse
