// NegativeNames: names the server said were missing, remembered here for
// as long as the kernel was told it may remember them (the negative entry's
// timeout), so that a LOOKUP the kernel sends again within that time is
// answered without a round trip.
//
// Why the kernel asks again: for an exclusive create (mkdir, O_EXCL) and
// for LOOKUP_REVAL it revalidates even a fresh negative dentry, and it may
// drop dentries under memory pressure. Answering such a LOOKUP "missing"
// from here promises nothing the kernel's own negative dentry did not: the
// absence is at most the entry timeout old (an entry expires here no later
// than the kernel's), and the create that follows is checked by the server
// anyway (CREATE and OPEN EXCLUSIVE4_1 fail with EXIST if the name exists).
//
// Invariant kept by FileSystem: every operation of this mount that may make
// a name (create, mknod, mkdir, symlink, link, rename's target) forgets it
// before it is sent, and every name learned to exist is forgotten, so a
// name is never answered "missing" after this mount made it.
//
// Bounded: past `capacity` names the expired ones go, and if that is not
// enough all of them (a name not remembered is simply asked for).
//
// Threads: any (FUSE workers, network completions); one mutex.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "fuse/inode_table.h"

namespace floatmount::fuse {

class NegativeNames {
 public:
  using Clock = std::chrono::steady_clock;

  explicit NegativeNames(size_t capacity = 65536) : capacity_(capacity) {}

  // Taken before a LOOKUP is sent, given back to Remember with its answer.
  uint64_t Stamp() const;
  // `name` in `parent` is missing until `until`, as a LOOKUP sent at
  // `stamp` found; ignored if any name was forgotten since (a create may
  // have overtaken that LOOKUP's answer, e.g. one whose caller was killed).
  void Remember(InodeId parent, const std::string& name, Clock::time_point until, uint64_t stamp);
  // How much longer `name` is known to be missing at `now`, or nullopt if
  // it is not (never remembered, forgotten, or expired: then dropped).
  std::optional<Clock::duration> Missing(InodeId parent, const std::string& name,
                                         Clock::time_point now);
  void Forget(InodeId parent, const std::string& name);
  size_t size() const;

 private:
  using Key = std::pair<InodeId, std::string>;

  const size_t capacity_;
  mutable std::mutex mu_;
  std::map<Key, Clock::time_point> until_;  // GUARDED_BY(mu_)
  uint64_t forgets_ = 0;                     // GUARDED_BY(mu_): Forget calls so far
};

}  // namespace floatmount::fuse
