// DirListings: a whole directory read (READDIR with attributes) when one
// user looks up many names in it that exist, in a row (a storm of missing
// names is a tar or cp making them, whose creates would cancel a listing
// at once), so that the rest of the storm
// is answered here instead of one round trip per name (git status, find,
// a Python import scanning site-packages, `ls` of a tree the kernel has not
// seen: issue 18). The kernel NFS client has no such thing; what it saves
// is what readdirplus saves for `ls -l`, for programs that stat without
// listing first.
//
// What an answer promises is no more than readdirplus gives the kernel: a
// name found, with its attributes, at most the entry timeout old (actimeo),
// counted from when the listing's first READDIR was sent; the kernel is
// told to keep it only for what is left of that. Only names found are
// answered: a name not in the listing is asked of the server, as the
// kernel NFS client does for a name it never saw, so a file another client
// created and closed is found at once by an open here (close-to-open);
// the torture suite's cross-mount checks fail when missing names are
// answered from the listing. Beyond that:
//   - Per credential (uid, gid, groups): a listing is made only after
//     ACCESS says that user may search and read the directory, and serves
//     only that user; another user's LOOKUPs go to the server.
//   - A name is handed out once; the next question about it goes to the
//     server. The caller hands out only inodes it does not know (one this
//     mount knows may have changed here since the listing was read).
//   - Every change this mount makes to the directory's names (create,
//     mkdir, symlink, link, remove, rename in or out) drops its listings
//     and refuses a listing under way (Changed, before the call is sent and
//     again when it is answered), so this mount never finds a name it
//     removed or renamed away. A name another client removed may be found
//     for up to actimeo, as with readdirplus; opens go by name to the
//     server (close-to-open), which then says it is gone.
//
// Threads: any (FUSE workers, network completions); one mutex, no calls
// out while it is held.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "fuse/inode_table.h"
#include "nfs/types.h"

namespace floatmount::fuse {

class DirListings {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    int trigger = 8;  // this many LOOKUPs sent for one directory and user...
    Clock::duration window = std::chrono::seconds(1);  // ... this close together
    Clock::duration after_failure = std::chrono::seconds(10);  // no new listing for this long
    // Memory: an entry is about 250 bytes, so at most ~80 MB in all.
    size_t max_entries = 20000;  // a larger directory is not kept (one READDIR series wasted)
    size_t max_listings = 16;    // the least recently used goes first
  };
  enum class Answer { kAsk, kFound };

  explicit DirListings(Options options) : options_(options) {}
  DirListings() : DirListings(Options{}) {}

  // A LOOKUP in `dir` by `cred` found a name on the server: true when the
  // caller should list the directory now (Begin, then Complete or Abandon).
  bool NoteLookup(InodeId dir, const nfs::Credentials& cred, Clock::time_point now);
  // A listing of `dir` for `cred` starts; Complete takes its entries if
  // no change to the directory came in between.
  void Begin(InodeId dir, const nfs::Credentials& cred);
  void Complete(InodeId dir, const nfs::Credentials& cred, std::vector<nfs::DirEntry> entries,
                Clock::time_point until);
  void Abandon(InodeId dir, const nfs::Credentials& cred);

  // What the listing says about `name` at `now`. kFound fills `entry`,
  // sets `left`, how long the answer may be kept, and forgets the name
  // (asked of the server next time).
  Answer Find(InodeId dir, const nfs::Credentials& cred, const std::string& name,
              Clock::time_point now, nfs::Entry* entry, Clock::duration* left);
  // `name` in `dir` is to be asked of the server from now on (every user).
  void Forget(InodeId dir, const std::string& name);
  // This mount changes names in `dir` (see above).
  void Changed(InodeId dir);

  size_t listings() const;  // for tests and status
  size_t max_entries() const { return options_.max_entries; }

 private:
  using Key = std::tuple<InodeId, uint32_t, uint32_t, std::vector<uint32_t>>;
  static Key KeyOf(InodeId dir, const nfs::Credentials& cred) {
    return Key{dir, cred.uid, cred.gid, cred.groups};
  }
  struct Listing {
    bool fetching = true;   // Begin'd, not Complete'd
    bool cancelled = false;  // a change came while fetching
    Clock::time_point until{};
    Clock::time_point used{};
    // nullopt: the server is to be asked (handed out, forgotten, or the
    // READDIR did not say enough).
    std::unordered_map<std::string, std::optional<nfs::Entry>> names;
  };
  struct Burst {
    int count = 0;
    Clock::time_point since{};
    Clock::time_point quiet_until{};  // after a failed listing: not again before
  };
  void EvictLocked();

  const Options options_;
  mutable std::mutex mu_;
  std::map<Key, Listing> listings_;  // GUARDED_BY(mu_)
  std::map<Key, Burst> bursts_;      // GUARDED_BY(mu_)
};

}  // namespace floatmount::fuse
