// bench_passthrough: a minimal FUSE file system that mirrors a local
// directory, used by tests/bench/fio_bench.sh as the "FUSE ceiling": what a
// FUSE file system that does no network I/O at all reaches on this machine.
//
//   bench_passthrough SOURCE_DIR MOUNTPOINT     (stays in the foreground)
//
// libfuse3 low-level API, multi-threaded loop (clone_fd, 16 idle threads),
// and the same kernel-facing settings floatmount negotiates (fuse/
// fuse_adapter.cc): 1 MiB max_write and max_readahead, no writeback cache,
// 64 background requests, 1 s attribute and entry timeouts. Each READ is one
// pread() into a per-thread buffer; each WRITE one pwrite(). It is built for
// the benchmark only: every request runs with the daemon's own credentials
// (root), and it implements what fio and the small-file loop use (no rename,
// links, xattrs or locks).
#define FUSE_USE_VERSION 312
#include <dirent.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace {

constexpr double kTimeout = 1.0;        // floatmount's default actimeo
constexpr size_t kMaxIo = 1u << 20;     // max_write / max_readahead

// One per inode the kernel knows: an O_PATH descriptor and the lookup count.
struct Node {
  int fd = -1;
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t lookups = 0;
};

std::mutex g_mu;
std::map<std::pair<dev_t, ino_t>, Node*> g_nodes;  // guarded by g_mu
Node g_root;

Node* N(fuse_ino_t ino) {
  return ino == FUSE_ROOT_ID ? &g_root : reinterpret_cast<Node*>(static_cast<uintptr_t>(ino));
}

std::string ProcPath(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

int StatOf(int fd, struct stat* st) {
  return fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

// Looks `name` up in `parent` and takes one lookup reference on the result.
int DoLookup(fuse_ino_t parent, const char* name, fuse_entry_param* e) {
  *e = fuse_entry_param{};
  e->attr_timeout = e->entry_timeout = kTimeout;
  const int fd = openat(N(parent)->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno;
  if (const int err = StatOf(fd, &e->attr); err != 0) {
    close(fd);
    return err;
  }
  std::lock_guard<std::mutex> lock(g_mu);
  Node*& slot = g_nodes[{e->attr.st_dev, e->attr.st_ino}];
  if (slot == nullptr) {
    slot = new Node{fd, e->attr.st_dev, e->attr.st_ino, 0};
  } else {
    close(fd);
  }
  ++slot->lookups;
  e->ino = reinterpret_cast<uintptr_t>(slot);
  return 0;
}

void ReplyEntry(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_entry_param e;
  const int err = DoLookup(parent, name, &e);
  if (err != 0) {
    fuse_reply_err(req, err);
  } else {
    fuse_reply_entry(req, &e);
  }
}

void Forget(fuse_ino_t ino, uint64_t count) {
  Node* n = N(ino);
  if (n == &g_root) return;
  std::lock_guard<std::mutex> lock(g_mu);
  if (n->lookups > count) {
    n->lookups -= count;
    return;
  }
  g_nodes.erase({n->dev, n->ino});
  close(n->fd);
  delete n;
}

void OpInit(void*, fuse_conn_info* conn) {
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  conn->max_write = kMaxIo;
  conn->max_readahead = kMaxIo;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) { ReplyEntry(req, parent, name); }

void OpForget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  Forget(ino, nlookup);
  fuse_reply_none(req);
}

void OpForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* list) {
  for (size_t i = 0; i < count; ++i) Forget(list[i].ino, list[i].nlookup);
  fuse_reply_none(req);
}

void OpGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  struct stat st;
  const int err = StatOf(N(ino)->fd, &st);
  if (err != 0) {
    fuse_reply_err(req, err);
  } else {
    fuse_reply_attr(req, &st, kTimeout);
  }
}

void OpSetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  const std::string path = ProcPath(N(ino)->fd);  // O_PATH fds need the /proc path
  int rc = 0;
  if ((to_set & FUSE_SET_ATTR_MODE) && rc == 0) rc = chmod(path.c_str(), attr->st_mode);
  if ((to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) && rc == 0) {
    const uid_t uid = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : static_cast<uid_t>(-1);
    const gid_t gid = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : static_cast<gid_t>(-1);
    rc = fchownat(N(ino)->fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  }
  if ((to_set & FUSE_SET_ATTR_SIZE) && rc == 0) {
    rc = fi != nullptr ? ftruncate(static_cast<int>(fi->fh), attr->st_size)
                       : truncate(path.c_str(), attr->st_size);
  }
  if ((to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) && rc == 0) {
    timespec ts[2] = {{0, UTIME_OMIT}, {0, UTIME_OMIT}};
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) ts[0].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_ATIME) ts[0] = attr->st_atim;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) ts[1].tv_nsec = UTIME_NOW;
    else if (to_set & FUSE_SET_ATTR_MTIME) ts[1] = attr->st_mtim;
    rc = utimensat(AT_FDCWD, path.c_str(), ts, 0);
  }
  if (rc != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  OpGetAttr(req, ino, fi);
}

struct Dir {
  DIR* dp = nullptr;
  off_t next = 0;  // the offset readdir() continues from
};

void OpOpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  const int fd = openat(N(ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* dp = fd < 0 ? nullptr : fdopendir(fd);
  if (dp == nullptr) {
    const int err = errno;
    if (fd >= 0) close(fd);
    fuse_reply_err(req, err);
    return;
  }
  fi->fh = reinterpret_cast<uintptr_t>(new Dir{dp, 0});
  fuse_reply_open(req, fi);
}

void OpReadDir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  Dir* d = reinterpret_cast<Dir*>(fi->fh);
  if (off != d->next) {
    seekdir(d->dp, off);
    d->next = off;
  }
  std::unique_ptr<char[]> buf(new char[size]);
  size_t used = 0;
  for (;;) {
    errno = 0;
    const long before = telldir(d->dp);
    dirent* ent = readdir(d->dp);
    if (ent == nullptr) {
      if (errno != 0 && used == 0) {
        fuse_reply_err(req, errno);
        return;
      }
      break;
    }
    struct stat st {};
    st.st_ino = ent->d_ino;
    st.st_mode = static_cast<mode_t>(DTTOIF(ent->d_type));
    const size_t len = fuse_add_direntry(req, buf.get() + used, size - used, ent->d_name, &st, ent->d_off);
    if (len > size - used) {  // does not fit: hand it out next time
      seekdir(d->dp, before);
      break;
    }
    used += len;
    d->next = ent->d_off;
  }
  fuse_reply_buf(req, buf.get(), used);
}

void OpReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  Dir* d = reinterpret_cast<Dir*>(fi->fh);
  closedir(d->dp);
  delete d;
  fuse_reply_err(req, 0);
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  const int fd = open(ProcPath(N(ino)->fd).c_str(), (fi->flags & ~O_NOFOLLOW) | O_CLOEXEC);
  if (fd < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fi->fh = static_cast<uint64_t>(fd);
  fuse_reply_open(req, fi);
}

void OpCreate(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  const int fd = openat(N(parent)->fd, name, (fi->flags | O_CREAT) & ~O_NOFOLLOW, mode);
  if (fd < 0) {
    fuse_reply_err(req, errno);
    return;
  }
  fuse_entry_param e;
  if (const int err = DoLookup(parent, name, &e); err != 0) {
    close(fd);
    fuse_reply_err(req, err);
    return;
  }
  fi->fh = static_cast<uint64_t>(fd);
  fuse_reply_create(req, &e, fi);
}

void OpRead(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info* fi) {
  thread_local std::unique_ptr<char[]> buf(new char[kMaxIo]);
  if (size > kMaxIo) size = kMaxIo;
  const ssize_t n = pread(static_cast<int>(fi->fh), buf.get(), size, off);
  if (n < 0) {
    fuse_reply_err(req, errno);
  } else {
    fuse_reply_buf(req, buf.get(), static_cast<size_t>(n));
  }
}

void OpWrite(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off, fuse_file_info* fi) {
  const ssize_t n = pwrite(static_cast<int>(fi->fh), data, size, off);
  if (n < 0) {
    fuse_reply_err(req, errno);
  } else {
    fuse_reply_write(req, static_cast<size_t>(n));
  }
}

void OpFlush(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

void OpRelease(fuse_req_t req, fuse_ino_t, fuse_file_info* fi) {
  close(static_cast<int>(fi->fh));
  fuse_reply_err(req, 0);
}

void OpFsync(fuse_req_t req, fuse_ino_t, int datasync, fuse_file_info* fi) {
  const int fd = static_cast<int>(fi->fh);
  fuse_reply_err(req, (datasync ? fdatasync(fd) : fsync(fd)) == 0 ? 0 : errno);
}

void OpMkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  if (mkdirat(N(parent)->fd, name, mode) != 0) {
    fuse_reply_err(req, errno);
    return;
  }
  ReplyEntry(req, parent, name);
}

void OpUnlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, unlinkat(N(parent)->fd, name, 0) == 0 ? 0 : errno);
}

void OpRmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  fuse_reply_err(req, unlinkat(N(parent)->fd, name, AT_REMOVEDIR) == 0 ? 0 : errno);
}

void OpStatfs(fuse_req_t req, fuse_ino_t ino) {
  struct statvfs sv;
  const int fd = open(ProcPath(N(ino)->fd).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || fstatvfs(fd, &sv) != 0) {
    const int err = errno;
    if (fd >= 0) close(fd);
    fuse_reply_err(req, err);
    return;
  }
  close(fd);
  fuse_reply_statfs(req, &sv);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s SOURCE_DIR MOUNTPOINT\n", argv[0]);
    return 2;
  }
  g_root.fd = open(argv[1], O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (g_root.fd < 0) {
    std::perror(argv[1]);
    return 1;
  }
  fuse_lowlevel_ops ops{};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.forget = OpForget;
  ops.forget_multi = OpForgetMulti;
  ops.getattr = OpGetAttr;
  ops.setattr = OpSetAttr;
  ops.opendir = OpOpenDir;
  ops.readdir = OpReadDir;
  ops.releasedir = OpReleaseDir;
  ops.open = OpOpen;
  ops.create = OpCreate;
  ops.read = OpRead;
  ops.write = OpWrite;
  ops.flush = OpFlush;
  ops.release = OpRelease;
  ops.fsync = OpFsync;
  ops.mkdir = OpMkdir;
  ops.unlink = OpUnlink;
  ops.rmdir = OpRmdir;
  ops.statfs = OpStatfs;

  const std::string opts = std::string("fsname=") + argv[1] + ",subtype=bench_passthrough";
  char* args_v[] = {argv[0], const_cast<char*>("-o"), const_cast<char*>(opts.c_str())};
  fuse_args args = FUSE_ARGS_INIT(3, args_v);
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), nullptr);
  if (se == nullptr) return 1;
  int rc = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, argv[2]) == 0) {
      fuse_loop_config* cfg = fuse_loop_cfg_create();
      fuse_loop_cfg_set_clone_fd(cfg, 1);
      fuse_loop_cfg_set_idle_threads(cfg, 16);
      rc = fuse_session_loop_mt(se, cfg) == 0 ? 0 : 1;
      fuse_loop_cfg_destroy(cfg);
      fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  close(g_root.fd);
  return rc;
}
