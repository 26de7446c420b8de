// FileSystem: directories — opendir, readdir(plus) with stable offsets,
// releasedir. See file_system.h.
//
// Offsets handed to the kernel: 1 and 2 stand after "." and ".." (NFSv4
// reserves cookies 1 and 2, RFC 8881 18.23.3, so they never collide);
// every other offset is the NFS cookie of the entry it follows, so a
// seekdir/telldir offset stays valid for as long as the server's cookie.
#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <functional>
#include <iterator>
#include <memory>

#include "fuse/errno_map.h"
#include "fuse/file_system.h"
#include "fuse/file_system_state.h"

namespace floatmount::fuse {
namespace {

// Bytes a kernel dirent takes, so a page is not over-filled.
size_t DirentSize(const std::string& name, bool plus) {
  const size_t base = plus ? 152 : 24;
  return (base + name.size() + 7) & ~size_t{7};
}

// READDIR sizes (maxcount; the client caps them at its rsize). A
// directory stream's first READDIR asks for 64 KiB (some 300 entries with
// attributes), so that reading the first few names of a huge directory
// costs the server little; each next one of the same stream asks for twice
// as much, up to 1 MiB, so a listing of 10,000 names takes 5 round trips,
// not 29. The Linux client also grows its READDIR size as a stream goes on.
// A whole listing for a storm of LOOKUPs reads everything: 1 MiB at once.
constexpr uint32_t kReadDirFirstBytes = 64 * 1024;
constexpr uint32_t kReadDirMaxBytes = 1024 * 1024;

}  // namespace

void FileSystem::OpenDir(const nfs::Credentials& cred, InodeId ino, Reply<uint64_t> reply) {
  auto fh = HandleOf(ino);
  if (!fh) return reply(ESTALE, {});
  auto state = std::make_shared<DirState>();
  state->ino = ino;
  state->fh = *fh;
  // READDIR needs read permission: an opendir the server would refuse
  // fails here, as on a local filesystem.
  client_->Access(cred, *fh, nfs::kAccessRead,
                  [this, state, reply](nfs::Result<uint32_t> r) {
                    if (!r.ok()) return reply(ErrnoFromStatus(r.status()), {});
                    if ((*r & nfs::kAccessRead) == 0) return reply(EACCES, {});
                    uint64_t handle;
                    {
                      std::lock_guard<std::mutex> lock(mu_);
                      handle = next_handle_++;
                      dirs_[handle] = state;
                    }
                    reply(0, handle);
                  });
}

void FileSystem::ReleaseDir(uint64_t dir_handle) {
  std::lock_guard<std::mutex> lock(mu_);
  dirs_.erase(dir_handle);
}

void FileSystem::ReadDir(const nfs::Credentials& cred, uint64_t dir_handle, uint64_t offset,
                         size_t max_bytes, bool plus, Reply<std::vector<DirEntryOut>> reply) {
  std::shared_ptr<DirState> state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = dirs_.find(dir_handle);
    if (it != dirs_.end()) state = it->second;
  }
  if (!state) return reply(EBADF, {});
  std::vector<DirEntryOut> out;
  size_t used = 0;
  // "." and ".." need a non-zero d_ino (readdir(3) skips zero): the
  // directory's own file id, and for ".." the root's when the parent is
  // not known (a FUSE directory handle does not name its parent).
  auto fileid_of = [this](InodeId ino) -> uint64_t {
    auto attr = inodes_.Attributes(ino);
    return attr && attr->Has(nfs::Attributes::kFileId) ? attr->fileid : ino;
  };
  auto add_dot = [&](const char* name, uint64_t next) {
    DirEntryOut e;
    e.name = name;
    e.next_offset = next;
    e.type = nfs::FileType::kDirectory;
    e.entry.attr.type = nfs::FileType::kDirectory;
    e.entry.attr.valid = nfs::Attributes::kType | nfs::Attributes::kFileId;
    e.entry.attr.fileid = fileid_of(next == 1 ? state->ino : kRootInode);
    used += DirentSize(e.name, plus);
    out.push_back(std::move(e));
  };
  if (offset == 0) add_dot(".", 1);
  if (offset <= 1) add_dot("..", 2);
  const uint64_t cookie = offset <= 2 ? 0 : offset;

  // Hands buffered entries to the kernel while they fit. Returns the files
  // whose entries' attributes another reply's overlapped (InodeTable).
  auto serve = [this, state, plus, max_bytes](std::vector<DirEntryOut>& out, size_t used) {
    std::vector<InodeId> overlapped;
    std::lock_guard<std::mutex> lock(state->mu);
    // A page of entries may wait here a while (a slow reader of a long
    // listing): their attributes are as old as their READDIR, so the
    // kernel keeps them only for what is left of the timeouts, as the
    // kernel NFS client ages readdirplus attributes from the call.
    const double age =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - state->buffered_asked)
            .count();
    size_t taken = 0;
    for (const nfs::DirEntry& d : state->buffered) {
      const size_t need = DirentSize(d.name, plus);
      if (used + need > max_bytes && !out.empty()) break;
      DirEntryOut e;
      e.name = d.name;
      e.next_offset = d.cookie;
      e.type = d.attr.Has(nfs::Attributes::kType) ? d.attr.type : nfs::FileType::kRegular;
      if (plus && !d.fh.empty()) {
        bool overlaps = false;
        e.entry = MakeEntry(nfs::Entry{d.fh, d.attr}, state->ino, d.name, state->buffered_stamp,
                            state->buffered_sent, &overlaps);
        e.entry.attr_timeout = std::max(0.0, e.entry.attr_timeout - age);
        e.entry.entry_timeout = std::max(0.0, e.entry.entry_timeout - age);
        if (overlaps) overlapped.push_back(e.entry.ino);
      } else {
        e.entry.attr = d.attr;
      }
      used += need;
      out.push_back(std::move(e));
      ++taken;
    }
    if (taken > 0) state->buffered_after = state->buffered[taken - 1].cookie;
    state->buffered.erase(state->buffered.begin(), state->buffered.begin() + taken);
    return overlapped;
  };

  bool have_buffer;
  std::array<uint8_t, 8> verifier;
  uint32_t size;
  {
    std::lock_guard<std::mutex> lock(state->mu);
    have_buffer = state->buffered_after == cookie && (!state->buffered.empty() ||
                                                     state->buffered_eof) && cookie != 0;
    verifier = cookie == 0 ? std::array<uint8_t, 8>{} : state->verifier;
    // From the start again (rewinddir): small again.
    if (cookie == 0) state->readdir_bytes = kReadDirFirstBytes;
    size = state->readdir_bytes;
  }
  if (have_buffer) {
    auto overlapped = serve(out, used);
    return ReplyListing(std::move(overlapped), std::move(out), std::move(reply));
  }
  client_->ReadDir(cred, state->fh, cookie, verifier, size,
                   [this, state, cookie, serve, reply, out = std::move(out), used,
                    stamp = SizeStamp(), sent = inodes_.Mark(),
                    asked = std::chrono::steady_clock::now()](nfs::Result<nfs::DirPage> r) mutable {
                     if (!r.ok()) {
                       if (!out.empty() && cookie == 0) return reply(0, std::move(out));
                       return reply(ErrnoFromStatus(r.status()), {});
                     }
                     {
                       std::lock_guard<std::mutex> lock(state->mu);
                       state->verifier = r->cookie_verifier;
                       state->buffered.assign(std::make_move_iterator(r->entries.begin()),
                                              std::make_move_iterator(r->entries.end()));
                       state->buffered_after = cookie;
                       state->buffered_eof = r->eof;
                       state->buffered_stamp = stamp;
                       state->buffered_sent = sent;
                       state->buffered_asked = asked;
                       state->readdir_bytes =
                           std::min(state->readdir_bytes * 2, kReadDirMaxBytes);
                     }
                     auto overlapped = serve(out, used);
                     ReplyListing(std::move(overlapped), std::move(out), std::move(reply));
                   });
}

void FileSystem::ReplyListing(std::vector<InodeId> overlapped, std::vector<DirEntryOut> out,
                              Reply<std::vector<DirEntryOut>> reply) {
  if (overlapped.empty()) return reply(0, std::move(out));
  // As ReplyOverlapped for one file: the kernel takes an entry's attributes
  // only if none came for the file since the READDIRPLUS was asked, so it
  // keeps neither these nor the newer ones handed out meanwhile.
  InvalidateKernelThen(std::move(overlapped), false,
                       [reply = std::move(reply), out = std::move(out)]() mutable {
                         reply(0, std::move(out));
                       });
}

bool FileSystem::LookupListed(const nfs::Credentials& cred, InodeId parent,
                              const nfs::FileHandle& dir, const std::string& name,
                              const Reply<EntryOut>& reply) {
  if (!options_.dir_listings || options_.entry_timeout <= 0) return false;
  const auto now = DirListings::Clock::now();
  nfs::Entry found;
  DirListings::Clock::duration left{};
  switch (listings_.Find(parent, cred, name, now, &found, &left)) {
    case DirListings::Answer::kFound:
      // An inode this mount knows may have changed here since the listing
      // was read: its name goes to the server.
      if (!inodes_.Knows(found.fh)) {
        // Unknown here, so nothing of this mount's writes to it: any stamp;
        // and no attributes applied before (if some came since, those win
        // the doubt: a mark from before all of them).
        EntryOut out = MakeEntry(found, parent, name, 0, InodeTable::SendMark{});
        const double seconds = std::chrono::duration<double>(left).count();
        out.entry_timeout = std::min(out.entry_timeout, seconds);
        out.attr_timeout = std::min(out.attr_timeout, seconds);
        reply(0, out);
        return true;
      }
      break;
    case DirListings::Answer::kAsk:
      break;
  }
  return false;
}

void FileSystem::LookupFound(const nfs::Credentials& cred, InodeId parent,
                             const nfs::FileHandle& dir) {
  if (!options_.dir_listings || options_.entry_timeout <= 0) return;
  if (listings_.NoteLookup(parent, cred, DirListings::Clock::now())) {
    ListDirectory(cred, parent, dir);
  }
}

// ACCESS first: the listing stands in for LOOKUPs, which need search
// permission, and READDIR needs read permission; a user without both gets
// no listing and every LOOKUP goes to the server, which decides. The
// listing is as old as its first READDIR.
void FileSystem::ListDirectory(const nfs::Credentials& cred, InodeId parent,
                               const nfs::FileHandle& dir) {
  listings_.Begin(parent, cred);
  const auto start = DirListings::Clock::now();
  const auto until = start + std::chrono::duration_cast<DirListings::Clock::duration>(
                                 std::chrono::duration<double>(options_.entry_timeout));
  struct Progress {
    std::vector<nfs::DirEntry> entries;
    std::array<uint8_t, 8> verifier{};
  };
  auto progress = std::make_shared<Progress>();
  auto step = std::make_shared<std::function<void(uint64_t)>>();
  *step = [this, cred, parent, dir, until, progress, step](uint64_t cookie) {
    client_->ReadDir(cred, dir, cookie, progress->verifier, kReadDirMaxBytes,
                     [this, cred, parent, until, progress, step](nfs::Result<nfs::DirPage> page) {
                       if (!page.ok() || (page->entries.empty() && !page->eof)) {
                         *step = nullptr;
                         return listings_.Abandon(parent, cred);
                       }
                       progress->verifier = page->cookie_verifier;
                       const uint64_t next = page->entries.empty() ? 0 : page->entries.back().cookie;
                       for (auto& e : page->entries) progress->entries.push_back(std::move(e));
                       if (progress->entries.size() > listings_.max_entries()) {
                         *step = nullptr;
                         return listings_.Abandon(parent, cred);  // too large to keep
                       }
                       if (!page->eof) return (*step)(next);
                       *step = nullptr;
                       listings_.Complete(parent, cred, std::move(progress->entries), until);
                     });
  };
  client_->Access(cred, dir, nfs::kAccessRead | nfs::kAccessLookup,
                  [this, cred, parent, step](nfs::Result<uint32_t> r) {
                    constexpr uint32_t kBoth = nfs::kAccessRead | nfs::kAccessLookup;
                    if (!r.ok() || (*r & kBoth) != kBoth) {
                      *step = nullptr;
                      return listings_.Abandon(parent, cred);
                    }
                    (*step)(0);
                  });
}

}  // namespace floatmount::fuse
