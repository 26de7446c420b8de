// The FUSE adapter: the only file that includes <fuse_lowlevel.h>. It turns
// each kernel request into a FileSystem call and each FileSystem reply into
// a fuse_reply_*; nothing else. Every request is answered exactly once:
// FileSystem guarantees its reply callback runs once, and the helpers below
// always reply on every path.
// 3.12: the loop configuration object (fuse_loop_cfg_*), without which
// libfuse caps the multi-threaded loop at 10 workers.
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

#include "fuse/caller_groups.h"
#include "fuse/fuse_mount.h"
#include "fuse/killable.h"

namespace floatmount::fuse {
namespace {

FileSystem* Fs(fuse_req_t req) { return static_cast<FileSystem*>(fuse_req_userdata(req)); }

// --- killable requests (fuse/killable.h) ---

void OnInterrupt(fuse_req_t, void* data) { static_cast<KillableRequest*>(data)->Interrupted(); }

std::shared_ptr<KillableRequest> Watch(fuse_req_t req) {
  auto k = std::make_shared<KillableRequest>(
      fuse_req_ctx(req)->pid, [req] { fuse_reply_err(req, EINTR); },
      [req] { fuse_req_interrupt_func(req, nullptr, nullptr); });
  // May call OnInterrupt at once (the signal came first): it only schedules.
  fuse_req_interrupt_func(req, OnInterrupt, k.get());
  return k;
}

// `answer` (a Reply) guarded so that a killed caller gets EINTR at once and
// the operation's own answer is dropped; `lost` runs instead of `answer`
// then (an open whose caller is gone releases its handle).
template <typename F, typename L>
auto Killable(fuse_req_t req, F answer, L lost) {
  return [k = Watch(req), answer = std::move(answer), lost = std::move(lost)](auto... args) mutable {
    if (k->Claim()) {
      answer(std::move(args)...);
    } else {
      lost(std::move(args)...);
    }
  };
}
template <typename F>
auto Killable(fuse_req_t req, F answer) {
  return Killable(req, std::move(answer), [](auto...) {});
}

// The caller's supplementary groups are read from /proc for every request
// that carries credentials, uncached, so a setgroups() counts at once
// (caller_groups.h: why, and what it costs).
nfs::Credentials Cred(fuse_req_t req) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  nfs::Credentials cred;
  cred.uid = ctx->uid;
  cred.gid = ctx->gid;
  if (ctx->pid > 0) {
    if (auto groups = ReadCallerGroups(ctx->pid)) cred.groups = std::move(*groups);
  }
  return cred;
}

// The thread that asks, for what the request hands out
// (InodeTable::SendMark::caller): 0 when the kernel could not name it in
// the FUSE daemon's pid namespace.
InodeTable::CallerScope Asking(fuse_req_t req) {
  const pid_t pid = fuse_req_ctx(req)->pid;
  return InodeTable::CallerScope(pid > 0 ? static_cast<uint32_t>(pid) : 0);
}

mode_t TypeBits(nfs::FileType type) {
  switch (type) {
    case nfs::FileType::kRegular: return S_IFREG;
    case nfs::FileType::kDirectory: return S_IFDIR;
    case nfs::FileType::kBlockDevice: return S_IFBLK;
    case nfs::FileType::kCharDevice: return S_IFCHR;
    case nfs::FileType::kSymlink: return S_IFLNK;
    case nfs::FileType::kSocket: return S_IFSOCK;
    case nfs::FileType::kFifo: return S_IFIFO;
  }
  return S_IFREG;
}

struct stat ToStat(const nfs::Attributes& a, fuse_ino_t ino) {
  struct stat st {};
  st.st_ino = a.Has(nfs::Attributes::kFileId) ? a.fileid : ino;
  st.st_mode = TypeBits(a.type) | (a.mode & 07777);
  st.st_nlink = a.nlink;
  st.st_uid = a.uid;
  st.st_gid = a.gid;
  st.st_size = static_cast<off_t>(a.size);
  st.st_blocks = static_cast<blkcnt_t>((a.space_used + 511) / 512);
  st.st_blksize = 1 << 20;  // tools size their I/O by this: the cache's chunk and wsize
  st.st_rdev = makedev(a.rdev_major, a.rdev_minor);
  st.st_atim = {static_cast<time_t>(a.atime.seconds), static_cast<long>(a.atime.nanoseconds)};
  st.st_mtim = {static_cast<time_t>(a.mtime.seconds), static_cast<long>(a.mtime.nanoseconds)};
  st.st_ctim = {static_cast<time_t>(a.ctime.seconds), static_cast<long>(a.ctime.nanoseconds)};
  return st;
}

fuse_entry_param ToEntry(const EntryOut& e) {
  fuse_entry_param p{};
  p.ino = e.ino;
  p.attr = ToStat(e.attr, e.ino);
  p.attr_timeout = e.attr_timeout;
  p.entry_timeout = e.entry_timeout;
  return p;
}

void ReplyEntry(fuse_req_t req, int err, const EntryOut& e) {
  if (err != 0) {
    fuse_reply_err(req, err);
    return;
  }
  fuse_entry_param p = ToEntry(e);
  fuse_reply_entry(req, &p);
}

Reply<EntryOut> EntryReply(fuse_req_t req) {
  return Killable(req, [req](int err, EntryOut e) { ReplyEntry(req, err, e); },
                  [fs = Fs(req)](int err, EntryOut e) {
                    // The kernel never learned it (a negative entry has no inode).
                    if (err == 0 && e.ino != 0) fs->Forget(e.ino, 1);
                  });
}

Reply<None> ErrReply(fuse_req_t req) {
  return Killable(req, [req](int err, None) { fuse_reply_err(req, err); });
}

// For requests no process waits for (release): not killable.
Reply<None> PlainErrReply(fuse_req_t req) {
  return [req](int err, None) { fuse_reply_err(req, err); };
}

Reply<AttrOut> AttrReply(fuse_req_t req, fuse_ino_t ino) {
  return Killable(req, [req, ino](int err, AttrOut a) {
    if (err != 0) {
      fuse_reply_err(req, err);
      return;
    }
    struct stat st = ToStat(a.attr, ino);
    fuse_reply_attr(req, &st, a.timeout);
  });
}

OpenFlags DecodeFlags(int flags) {
  OpenFlags f;
  const int mode = flags & O_ACCMODE;
  f.read = mode == O_RDONLY || mode == O_RDWR;
  f.write = mode == O_WRONLY || mode == O_RDWR;
  f.truncate = (flags & O_TRUNC) != 0;
  f.exclusive = (flags & O_EXCL) != 0;
  f.direct = (flags & O_DIRECT) != 0;
  return f;
}

void ApplyOpen(fuse_file_info* fi, const OpenOut& o) {
  fi->fh = o.handle;
  fi->keep_cache = o.keep_cache ? 1 : 0;
  fi->direct_io = o.direct_io ? 1 : 0;
}

// --- the operations ---

void OpInit(void* userdata, fuse_conn_info* conn) {
  (void)userdata;
  auto want = [conn](unsigned cap) {
    if (conn->capable & cap) conn->want |= cap;
  };
  // Not FUSE_CAP_WRITEBACK_CACHE: under it the kernel keeps its own size
  // and mtime for regular files and ignores the server's, so a file grown
  // by another client never shows its new size (close-to-open breaks).
  // Write-back is floatmount's own job (fuse/), where it can be coherent.
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  want(FUSE_CAP_READDIRPLUS);
  want(FUSE_CAP_ASYNC_READ);
  want(FUSE_CAP_ASYNC_DIO);
  want(FUSE_CAP_PARALLEL_DIROPS);
  want(FUSE_CAP_POSIX_LOCKS);
  want(FUSE_CAP_FLOCK_LOCKS);
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;  // always plus: saves a LOOKUP per entry
  spdlog::debug("FUSE: kernel protocol {}.{}, capable {:#x}, wanted {:#x}", conn->proto_major,
                conn->proto_minor, conn->capable, conn->want);
  conn->max_write = 1u << 20;
  conn->max_readahead = 1u << 20;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  const auto asking = Asking(req);
  Fs(req)->Lookup(Cred(req), parent, name, EntryReply(req));
}

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Fs(req)->Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) Fs(req)->Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void OpGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  const auto asking = Asking(req);
  Fs(req)->GetAttr(Cred(req), ino, AttrReply(req, ino));
}

void OpSetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
               fuse_file_info* fi) {
  const auto asking = Asking(req);
  nfs::SetAttributes s;
  if (to_set & FUSE_SET_ATTR_MODE) s.mode = attr->st_mode & 07777;
  if (to_set & FUSE_SET_ATTR_UID) s.uid = attr->st_uid;
  if (to_set & FUSE_SET_ATTR_GID) s.gid = attr->st_gid;
  if (to_set & FUSE_SET_ATTR_SIZE) s.size = static_cast<uint64_t>(attr->st_size);
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    s.atime_how = nfs::SetAttributes::TimeHow::kServerTime;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    s.atime_how = nfs::SetAttributes::TimeHow::kClientTime;
    s.atime = {attr->st_atim.tv_sec, static_cast<uint32_t>(attr->st_atim.tv_nsec)};
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    s.mtime_how = nfs::SetAttributes::TimeHow::kServerTime;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    s.mtime_how = nfs::SetAttributes::TimeHow::kClientTime;
    s.mtime = {attr->st_mtim.tv_sec, static_cast<uint32_t>(attr->st_mtim.tv_nsec)};
  }
  // FUSE_SET_ATTR_CTIME: the server sets ctime itself on any change.
  if (s.empty()) {
    Fs(req)->GetAttr(Cred(req), ino, AttrReply(req, ino));
    return;
  }
  Fs(req)->SetAttr(Cred(req), ino, s, fi != nullptr ? fi->fh : 0, AttrReply(req, ino));
}

void OpReadLink(fuse_req_t req, fuse_ino_t ino) {
  Fs(req)->ReadLink(Cred(req), ino, Killable(req, [req](int err, std::string target) {
    if (err != 0) {
      fuse_reply_err(req, err);
      return;
    }
    fuse_reply_readlink(req, target.c_str());
  }));
}

void OpMkNod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  const auto asking = Asking(req);
  Fs(req)->MkNod(Cred(req), parent, name, mode, rdev, EntryReply(req));
}

void OpMkDir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  const auto asking = Asking(req);
  Fs(req)->MkDir(Cred(req), parent, name, mode, EntryReply(req));
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Fs(req)->Unlink(Cred(req), parent, name, ErrReply(req));
}

void OpRmDir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Fs(req)->RmDir(Cred(req), parent, name, ErrReply(req));
}

void OpSymlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  const auto asking = Asking(req);
  Fs(req)->Symlink(Cred(req), link, parent, name, EntryReply(req));
}

void OpRename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags) {
  Fs(req)->Rename(Cred(req), parent, name, newparent, newname, flags, ErrReply(req));
}

void OpLink(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  const auto asking = Asking(req);
  Fs(req)->Link(Cred(req), ino, newparent, newname, EntryReply(req));
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  fuse_file_info copy = *fi;
  FileSystem* fs = Fs(req);
  auto gone = [fs](int err, OpenOut o) {  // the opener was killed meanwhile
    if (err == 0) fs->Release(o.handle, 0, [](int, None) {});
  };
  fs->Open(Cred(req), ino, DecodeFlags(fi->flags), Killable(req, [req, copy, gone](int err, OpenOut o) mutable {
    if (err != 0) {
      fuse_reply_err(req, err);
      return;
    }
    ApplyOpen(&copy, o);
    if (fuse_reply_open(req, &copy) == -ENOENT) gone(0, o);  // the opener was interrupted
  }, gone));
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
              fuse_file_info* fi) {
  const auto asking = Asking(req);
  fuse_file_info copy = *fi;
  FileSystem* fs = Fs(req);
  auto gone = [fs](int err, CreateOut c) {  // the creator was killed meanwhile
    if (err != 0) return;
    fs->Release(c.open.handle, 0, [](int, None) {});
    fs->Forget(c.entry.ino, 1);  // the kernel never learned the entry
  };
  fs->Create(Cred(req), parent, name, mode, DecodeFlags(fi->flags),
             Killable(req, [req, copy, gone](int err, CreateOut c) mutable {
               if (err != 0) {
                 fuse_reply_err(req, err);
                 return;
               }
               ApplyOpen(&copy, c.open);
               fuse_entry_param p = ToEntry(c.entry);
               if (fuse_reply_create(req, &p, &copy) == -ENOENT) gone(0, c);
             }, gone));
}

void OpRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  Fs(req)->Read(fi->fh, size, static_cast<uint64_t>(off), Killable(req, [req](int err, ReadOut out) {
    if (err != 0) {
      fuse_reply_err(req, err);
      return;
    }
    fuse_reply_buf(req, reinterpret_cast<const char*>(out.data.get()), out.size);
  }));
}

void OpWrite(fuse_req_t req, fuse_ino_t, const char* buf, size_t size, off_t off,
             fuse_file_info* fi) {
  Fs(req)->Write(fi->fh, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf), size),
                 static_cast<uint64_t>(off), Killable(req, [req](int err, size_t written) {
                   if (err != 0) {
                     fuse_reply_err(req, err);
                     return;
                   }
                   fuse_reply_write(req, written);
                 }));
}

void OpFlush(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Fs(req)->Flush(fi->fh, fi->lock_owner, ErrReply(req));
}

void OpRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Fs(req)->Release(fi->fh, fi->flock_release ? fi->lock_owner : 0, PlainErrReply(req));
}

void OpFsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info* fi) {
  Fs(req)->Fsync(fi->fh, ErrReply(req));
}

void OpOpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  fuse_file_info copy = *fi;
  FileSystem* fs = Fs(req);
  auto gone = [fs](int err, uint64_t handle) {
    if (err == 0) fs->ReleaseDir(handle);
  };
  fs->OpenDir(Cred(req), ino, Killable(req, [req, copy, gone](int err, uint64_t handle) mutable {
    if (err != 0) {
      fuse_reply_err(req, err);
      return;
    }
    copy.fh = handle;
    copy.cache_readdir = 0;
    if (fuse_reply_open(req, &copy) == -ENOENT) gone(0, handle);
  }, gone));
}

void ReadDirCommon(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi,
                   bool plus) {
  Fs(req)->ReadDir(
      Cred(req), fi->fh, static_cast<uint64_t>(off), size, plus,
      Killable(req, [req, size, plus](int err, std::vector<DirEntryOut> entries) {
        if (err != 0) {
          fuse_reply_err(req, err);
          return;
        }
        std::vector<char> buf(size);
        size_t used = 0;
        size_t i = 0;
        for (; i < entries.size(); ++i) {
          const DirEntryOut& e = entries[i];
          size_t need;
          if (plus) {
            fuse_entry_param p = ToEntry(e.entry);
            if (e.entry.ino == 0) {
              p.attr.st_mode = TypeBits(e.type);
              p.attr.st_ino = e.entry.attr.fileid;
            }
            need = fuse_add_direntry_plus(req, buf.data() + used, size - used, e.name.c_str(),
                                          &p, static_cast<off_t>(e.next_offset));
          } else {
            struct stat st {};
            st.st_ino = e.entry.attr.fileid;
            st.st_mode = TypeBits(e.type);
            need = fuse_add_direntry(req, buf.data() + used, size - used, e.name.c_str(), &st,
                                     static_cast<off_t>(e.next_offset));
          }
          if (need > size - used) break;
          used += need;
        }
        // Entries that did not fit were never passed on: undo their lookup.
        for (; i < entries.size(); ++i) {
          if (plus && entries[i].entry.ino != 0) Fs(req)->Forget(entries[i].entry.ino, 1);
        }
        fuse_reply_buf(req, buf.data(), used);
      }, [fs = Fs(req), plus](int err, std::vector<DirEntryOut> entries) {
        // The reader was killed: none of the entries reached the kernel.
        if (err != 0 || !plus) return;
        for (const DirEntryOut& e : entries) {
          if (e.entry.ino != 0) fs->Forget(e.entry.ino, 1);
        }
      }));
}

void OpReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  ReadDirCommon(req, ino, size, off, fi, false);
}

void OpReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  const auto asking = Asking(req);
  ReadDirCommon(req, ino, size, off, fi, true);
}

void OpReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Fs(req)->ReleaseDir(fi->fh);
  fuse_reply_err(req, 0);
}

void OpFsyncDir(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, 0);  // directory operations are synchronous on the server
}

void OpStatFs(fuse_req_t req, fuse_ino_t ino) {
  Fs(req)->StatFs(Cred(req), ino, Killable(req, [req](int err, nfs::FsStats s) {
    if (err != 0) {
      fuse_reply_err(req, err);
      return;
    }
    struct statvfs v {};
    v.f_bsize = 1 << 20;
    v.f_frsize = 4096;
    v.f_blocks = s.space_total / v.f_frsize;
    v.f_bfree = s.space_free / v.f_frsize;
    v.f_bavail = s.space_avail / v.f_frsize;
    v.f_files = s.files_total;
    v.f_ffree = s.files_free;
    v.f_favail = s.files_avail;
    v.f_namemax = 255;
    fuse_reply_statfs(req, &v);
  }));
}

void OpAccess(fuse_req_t req, fuse_ino_t ino, int mask) {
  Fs(req)->Access(Cred(req), ino, mask, ErrReply(req));
}

uint64_t LockEnd(const struct flock* lock) {
  if (lock->l_len == 0) return UINT64_MAX;
  return static_cast<uint64_t>(lock->l_start + lock->l_len - 1);
}

void OpGetLk(fuse_req_t req, fuse_ino_t, fuse_file_info* fi, struct flock* lock) {
  const nfs::LockType type = lock->l_type == F_WRLCK ? nfs::LockType::kWrite : nfs::LockType::kRead;
  struct flock copy = *lock;
  Fs(req)->GetLock(fi->fh, fi->lock_owner, type, static_cast<uint64_t>(lock->l_start),
                   LockEnd(lock), Killable(req, [req, copy](int err, LockOut out) mutable {
                     if (err != 0) {
                       fuse_reply_err(req, err);
                       return;
                     }
                     if (!out.conflict) {
                       copy.l_type = F_UNLCK;
                     } else {
                       copy.l_type = out.type == nfs::LockType::kWrite ? F_WRLCK : F_RDLCK;
                       copy.l_start = static_cast<off_t>(out.start);
                       copy.l_len = out.end == UINT64_MAX
                                        ? 0
                                        : static_cast<off_t>(out.end - out.start + 1);
                       copy.l_pid = static_cast<pid_t>(out.pid);  // 0: another machine
                     }
                     fuse_reply_lock(req, &copy);
                   }));
}

// A lock request's answer; its wait ends (EINTR) on any signal, which the
// request's watcher records (the request itself may be gone by then).
Reply<None> LockReply(fuse_req_t req, std::shared_ptr<KillableRequest> k) {
  return [req, k](int err, None) {
    if (k->Claim()) fuse_reply_err(req, err);
  };
}

void OpSetLk(fuse_req_t req, fuse_ino_t, fuse_file_info* fi, struct flock* lock, int sleep) {
  const bool unlock = lock->l_type == F_UNLCK;
  const nfs::LockType type = lock->l_type == F_WRLCK ? nfs::LockType::kWrite : nfs::LockType::kRead;
  auto k = Watch(req);
  Fs(req)->SetLock(fi->fh, fi->lock_owner, static_cast<uint32_t>(fuse_req_ctx(req)->pid), unlock,
                   type, static_cast<uint64_t>(lock->l_start), LockEnd(lock), sleep != 0,
                   [k] { return k->interrupted(); }, LockReply(req, k));
}

void OpFlock(fuse_req_t req, fuse_ino_t, fuse_file_info* fi, int op) {
  const bool unlock = (op & LOCK_UN) != 0;
  const nfs::LockType type = (op & LOCK_EX) ? nfs::LockType::kWrite : nfs::LockType::kRead;
  auto k = Watch(req);
  Fs(req)->SetLock(fi->fh, fi->lock_owner, static_cast<uint32_t>(fuse_req_ctx(req)->pid), unlock,
                   type, 0, UINT64_MAX, (op & LOCK_NB) == 0, [k] { return k->interrupted(); },
                   LockReply(req, k));
}

const fuse_lowlevel_ops kOps = [] {
  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetAttr;
  ops.setattr = OpSetAttr;
  ops.readlink = OpReadLink;
  ops.mknod = OpMkNod;
  ops.mkdir = OpMkDir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmDir;
  ops.symlink = OpSymlink;
  ops.rename = OpRename;
  ops.link = OpLink;
  ops.open = OpOpen;
  ops.create = OpCreate;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpFlush;
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.opendir = OpOpenDir;
  ops.readdir = OpReadDir;
  ops.readdirplus = OpReadDirPlus;
  ops.releasedir = OpReleaseDir;
  ops.fsyncdir = OpFsyncDir;
  ops.statfs = OpStatFs;
  ops.access = OpAccess;
  ops.getlk = OpGetLk;
  ops.setlk = OpSetLk;
  ops.flock = OpFlock;
  return ops;
}();

}  // namespace

struct FuseMount::Impl {
  fuse_session* session = nullptr;
  bool mounted = false;
  FuseMountOptions options;
};

std::unique_ptr<FuseMount> FuseMount::Mount(FileSystem* fs, const FuseMountOptions& options,
                                            std::string* error) {
  std::string opts = "fsname=" + options.fsname + ",subtype=floatmount";
  // A mount other users may use gets the kernel's permission checks
  // (default_permissions) on every path component, open, truncate, chmod
  // and chown, for the caller, from the attributes the server returned.
  // Without them the kernel checks no search permission on a walk through
  // dentries another user looked up: Bob read files in Alice's 0700
  // directory right after she had used it (issue 14). The server still
  // decides every call with the caller's credentials (root squash, ACLs
  // that deny).
  if (options.allow_other) opts += ",allow_other,default_permissions";
  if (options.read_only) opts += ",ro";
  std::vector<std::string> argv_s = {"floatmount", "-o", opts};
  if (options.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  std::unique_ptr<FuseMount> mount(new FuseMount());
  mount->impl_ = std::make_unique<Impl>();
  mount->impl_->options = options;
  mount->impl_->session = fuse_session_new(&args, &kOps, sizeof(kOps), fs);
  fuse_opt_free_args(&args);  // libfuse may have copied them to add its own
  if (mount->impl_->session == nullptr) {
    *error = "could not start a FUSE session (is /dev/fuse available?)";
    return nullptr;
  }
  if (fuse_session_mount(mount->impl_->session, options.mountpoint.c_str()) != 0) {
    *error = "the kernel refused the FUSE mount at " + options.mountpoint +
             " (see the message above; is /dev/fuse usable and the mount point free?)";
    fuse_session_destroy(mount->impl_->session);
    mount->impl_->session = nullptr;
    return nullptr;
  }
  mount->impl_->mounted = true;
  // Coherence with other clients: a granted lock on a file another node
  // changed drops the kernel's cached pages and attributes of it
  // (file_system_locks.cc); an open that finds the file changed drops its
  // attributes (the kernel would otherwise keep the old size until the
  // attribute timeout, and cut reads and O_APPEND at it). Offset 0, length
  // 0: all pages and the attributes; offset -1: the attributes only.
  fuse_session* session = mount->impl_->session;
  fs->SetKernelCacheInvalidator([session](InodeId ino, bool data) {
    const int err = fuse_lowlevel_notify_inval_inode(session, ino, data ? 0 : -1, 0);
    // ENOENT: the kernel no longer knows the inode, so it caches nothing.
    if (err != 0 && err != -ENOENT) {
      spdlog::warn("could not drop the kernel's cached pages of inode {}: {}", ino,
                   std::strerror(-err));
    }
  });
  fs->SetKernelEntryInvalidator([session](InodeId parent, const std::string& name) {
    const int err = fuse_lowlevel_notify_inval_entry(session, parent, name.c_str(), name.size());
    // ENOENT: the kernel has no such name cached.
    if (err != 0 && err != -ENOENT) {
      spdlog::debug("could not drop the kernel's entry of a moved directory: {}",
                    std::strerror(-err));
    }
  });
  return mount;
}

FuseMount::~FuseMount() {
  if (!impl_ || impl_->session == nullptr) return;
  Unmount();
  fuse_session_destroy(impl_->session);
}

int FuseMount::Run() {
  fuse_loop_config* config = fuse_loop_cfg_create();
  if (config == nullptr) return -ENOMEM;
  fuse_loop_cfg_set_clone_fd(config, 1);
  fuse_loop_cfg_set_idle_threads(config, impl_->options.max_idle_threads);
  fuse_loop_cfg_set_max_threads(config, impl_->options.max_threads);
  const int rc = fuse_session_loop_mt(impl_->session, config);
  fuse_loop_cfg_destroy(config);
  return rc;
}

void FuseMount::Exit() {
  if (impl_ && impl_->session) fuse_session_exit(impl_->session);
}

void FuseMount::Unmount() {
  if (impl_ && impl_->session && impl_->mounted) {
    fuse_session_unmount(impl_->session);
    impl_->mounted = false;
  }
}

}  // namespace floatmount::fuse
