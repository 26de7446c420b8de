// Nfs3Client's operations: each is one NFSv3 RPC (RFC 1813 section 3),
// sometimes followed by a GETATTR or LOOKUP when the server left out the
// optional attributes or handle of its reply.
#include <nfsc/libnfs.h>
#include <nfsc/libnfs-raw.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "nfs/v3/client.h"
#include "nfs/v3/convert.h"
#include "nfs/v4/protocol.h"

namespace floatmount::nfs {
namespace {

using RpcCallback = void (*)(rpc_context*, int, void*, void*);

// Largest READ/WRITE libnfs carries (its NFS_MAX_XFER_SIZE).
constexpr uint32_t kLibnfsMaxTransfer = 1u << 20;
constexpr auto kJukeboxFirstDelay = std::chrono::milliseconds(100);
constexpr auto kJukeboxMaxDelay = std::chrono::seconds(5);

// NFSv3 has no open state: the handle is all there is.
class Nfs3OpenFile : public OpenFile {
 public:
  explicit Nfs3OpenFile(FileHandle fh) : fh_(std::move(fh)) {}
  const FileHandle& fh() const override { return fh_; }

 private:
  const FileHandle fh_;
};

template <typename T>
std::function<void(Status)> Fail(Callback<T> done) {
  return [done = std::move(done)](Status s) { done(std::move(s)); };
}

diropargs3 DirOp(const FileHandle& dir, const std::string& name) {
  diropargs3 d{};
  d.dir = v3::ToFh3(dir);
  d.name = const_cast<char*>(name.c_str());
  return d;
}

}  // namespace

template <typename Res>
void Nfs3Client::Call(const Credentials& cred, const char* proc, decltype(Nfs3Call::issue) issue,
                      std::function<void(const Res&)> on_reply, std::function<void(Status)> fail,
                      uint64_t bytes_out) {
  auto call = std::make_shared<Nfs3Call>();
  call->proc = proc;
  call->cred = cred;
  call->issue = std::move(issue);
  call->bytes_out = bytes_out;
  call->on_error = std::move(fail);
  std::weak_ptr<Nfs3Call> weak = call;  // the call owns this handler
  call->on_reply = [this, weak, on_reply = std::move(on_reply)](void* data) {
    const Res& res = *static_cast<const Res*>(data);
    if (res.status == NFS3ERR_JUKEBOX) {
      if (auto again = weak.lock()) {
        const auto delay = std::min<std::chrono::milliseconds>(
            kJukeboxFirstDelay * (1 << std::min(again->sends, 6)), kJukeboxMaxDelay);
        SendLater(std::move(again), delay);
      }
      return;
    }
    if constexpr (std::is_same_v<Res, READ3res>) {
      if (auto c = weak.lock(); c && res.status == NFS3_OK) c->bytes_in = res.READ3res_u.resok.count;
    }
    on_reply(res);
  };
  Send(std::move(call));
}

void Nfs3Client::FsInfo(const Credentials& cred, std::function<void(Status)> done) {
  Call<FSINFO3res>(
      cred, "FSINFO",
      [root = root_](rpc_context* rpc, RpcCallback cb, void* p) {
        FSINFO3args a{};
        a.fsroot = v3::ToFh3(root);
        return rpc_nfs3_fsinfo_async(rpc, cb, &a, p);
      },
      [this, done](const FSINFO3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "FSINFO of the export root"));
        const FSINFO3resok& ok = r.FSINFO3res_u.resok;
        auto bound = [](uint32_t wanted, uint32_t server_max) {
          uint32_t size = std::min(wanted, kLibnfsMaxTransfer);
          if (server_max != 0) size = std::min(size, server_max);
          return std::max<uint32_t>(size, 4096);
        };
        rsize_ = bound(options_.rsize, ok.rtmax);
        wsize_ = bound(options_.wsize, ok.wtmax);
        done(Status::Ok());
      },
      done);
}

void Nfs3Client::Lookup(const Credentials& cred, const FileHandle& dir, const std::string& name,
                        Callback<Entry> done) {
  Call<LOOKUP3res>(
      cred, "LOOKUP",
      [dir, name](rpc_context* rpc, RpcCallback cb, void* p) {
        LOOKUP3args a{};
        a.what = DirOp(dir, name);
        return rpc_nfs3_lookup_async(rpc, cb, &a, p);
      },
      [this, cred, dir, name, done](const LOOKUP3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "LOOKUP " + name));
        const LOOKUP3resok& ok = r.LOOKUP3res_u.resok;
        FinishCreated(cred, dir, name, v3::FromFh3(ok.object), v3::FromPostOp(ok.obj_attributes),
                      done);
      },
      Fail(done));
}

void Nfs3Client::GetAttr(const Credentials& cred, const FileHandle& fh, Callback<Attributes> done) {
  Call<GETATTR3res>(
      cred, "GETATTR",
      [fh](rpc_context* rpc, RpcCallback cb, void* p) {
        GETATTR3args a{};
        a.object = v3::ToFh3(fh);
        return rpc_nfs3_getattr_async(rpc, cb, &a, p);
      },
      [done](const GETATTR3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "GETATTR"));
        done(v3::FromFattr3(r.GETATTR3res_u.resok.obj_attributes));
      },
      Fail(done));
}

void Nfs3Client::SetAttr(const Credentials& cred, const FileHandle& fh, const SetAttributes& attrs,
                         const OpenFile*, Callback<Attributes> done) {
  Call<SETATTR3res>(
      cred, "SETATTR",
      [fh, attrs](rpc_context* rpc, RpcCallback cb, void* p) {
        SETATTR3args a{};
        a.object = v3::ToFh3(fh);
        a.new_attributes = v3::ToSattr3(attrs);
        return rpc_nfs3_setattr_async(rpc, cb, &a, p);
      },
      [this, cred, fh, done](const SETATTR3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "SETATTR"));
        if (auto after = v3::FromPostOp(r.SETATTR3res_u.resok.obj_wcc.after)) return done(*after);
        GetAttr(cred, fh, done);
      },
      Fail(done));
}

void Nfs3Client::Access(const Credentials& cred, const FileHandle& fh, uint32_t mask,
                        Callback<uint32_t> done) {
  Call<ACCESS3res>(
      cred, "ACCESS",
      [fh, mask](rpc_context* rpc, RpcCallback cb, void* p) {
        ACCESS3args a{};
        a.object = v3::ToFh3(fh);
        a.access = mask;  // ACCESS3_* are the NFSv4 AccessBits
        return rpc_nfs3_access_async(rpc, cb, &a, p);
      },
      [mask, done](const ACCESS3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "ACCESS"));
        done(r.ACCESS3res_u.resok.access & mask);
      },
      Fail(done));
}

// What open(2) may do with the file: ACCESS for the caller, as the Linux
// NFSv3 client checks on open. Yields the file's attributes.
void Nfs3Client::CheckAccess(const Credentials& cred, const FileHandle& fh, bool read, bool write,
                             std::function<void(Result<Attributes>)> done) {
  const uint32_t want = (read ? kAccessRead : 0u) | (write ? kAccessModify : 0u);
  Call<ACCESS3res>(
      cred, "ACCESS",
      [fh](rpc_context* rpc, RpcCallback cb, void* p) {
        ACCESS3args a{};
        a.object = v3::ToFh3(fh);
        a.access = ACCESS3_READ | ACCESS3_MODIFY | ACCESS3_EXTEND;
        return rpc_nfs3_access_async(rpc, cb, &a, p);
      },
      [this, cred, fh, want, write, done](const ACCESS3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "ACCESS"));
        const ACCESS3resok& ok = r.ACCESS3res_u.resok;
        auto decide = [want, write, done](Result<Attributes> attr) {
          if (!attr.ok()) return done(attr.status());
          if (write && attr->type == FileType::kDirectory) {
            return done(Status::Nfs(v4::NFS4ERR_ISDIR, "open of a directory for writing"));
          }
          done(std::move(attr));
        };
        if ((ok.access & want) != want) {
          return done(Status::Nfs(v4::NFS4ERR_ACCESS, "the server's ACCESS check refused the open"));
        }
        if (auto attr = v3::FromPostOp(ok.obj_attributes)) return decide(*attr);
        GetAttr(cred, fh, decide);
      },
      Fail(Callback<Attributes>(done)));
}

void Nfs3Client::OpenExisting(const Credentials& cred, const FileHandle& fh,
                              const OpenRequest& req, Callback<OpenResult> done) {
  CheckAccess(cred, fh, req.read, req.write || req.truncate,
              [this, cred, fh, req, done](Result<Attributes> attr) {
                if (!attr.ok()) return done(attr.status());
                auto opened = [this, fh, done](Result<Attributes> a) {
                  if (!a.ok()) return done(a.status());
                  OpenResult out;
                  out.file = MakeOpenFile(fh);
                  out.fh = fh;
                  out.attr = *a;
                  done(std::move(out));
                };
                if (!req.truncate || attr->size == 0) return opened(std::move(attr));
                SetAttributes size_zero;
                size_zero.size = 0;
                SetAttr(cred, fh, size_zero, nullptr, opened);
              });
}

void Nfs3Client::FinishCreated(const Credentials& cred, const FileHandle& dir,
                               const std::string& name, std::optional<FileHandle> fh,
                               std::optional<Attributes> attr,
                               std::function<void(Result<Entry>)> done) {
  if (!fh) {  // the server did not return the handle: look the name up
    return Lookup(cred, dir, name, done);
  }
  if (attr) return done(Entry{std::move(*fh), *attr});
  GetAttr(cred, *fh, [fh = *fh, done](Result<Attributes> a) {
    if (!a.ok()) return done(a.status());
    done(Entry{fh, *a});
  });
}

void Nfs3Client::Open(const Credentials& cred, const FileHandle& dir, const std::string& name,
                      const OpenRequest& req, Callback<OpenResult> done) {
  if (req.create == CreateMode::kNoCreate) {
    Lookup(cred, dir, name, [this, cred, req, done](Result<Entry> e) {
      if (!e.ok()) return done(e.status());
      OpenExisting(cred, e->fh, req, done);
    });
    return;
  }
  // GUARDED first, so that `created` is exact; an existing file is then
  // opened as such, unless the caller wanted a new one (O_EXCL: kGuarded or
  // kExclusive). NFSv3's EXCLUSIVE (a verifier, safe to resend) is not used:
  // it sets no attributes, so the mode would need a second SETATTR.
  Call<CREATE3res>(
      cred, "CREATE",
      [dir, name, attrs = req.attrs](rpc_context* rpc, RpcCallback cb, void* p) {
        CREATE3args a{};
        a.where = DirOp(dir, name);
        a.how.mode = GUARDED;
        a.how.createhow3_u.obj_attributes = v3::ToSattr3(attrs);
        return rpc_nfs3_create_async(rpc, cb, &a, p);
      },
      [this, cred, dir, name, req, done](const CREATE3res& r) {
        if (r.status == NFS3ERR_EXIST && req.create == CreateMode::kUnchecked) {
          OpenRequest existing = req;
          existing.create = CreateMode::kNoCreate;
          return Open(cred, dir, name, existing, done);
        }
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "CREATE " + name));
        const CREATE3resok& ok = r.CREATE3res_u.resok;
        std::optional<FileHandle> fh;
        if (ok.obj.handle_follows) fh = v3::FromFh3(ok.obj.post_op_fh3_u.handle);
        FinishCreated(cred, dir, name, fh, v3::FromPostOp(ok.obj_attributes),
                      [this, done](Result<Entry> e) {
                        if (!e.ok()) return done(e.status());
                        OpenResult out;
                        out.file = MakeOpenFile(e->fh);
                        out.fh = e->fh;
                        out.attr = e->attr;
                        out.created = true;
                        done(std::move(out));
                      });
      },
      Fail(done));
}

void Nfs3Client::OpenHandle(const Credentials& cred, const FileHandle& fh, bool read, bool write,
                            Callback<OpenResult> done) {
  OpenRequest req;
  req.read = read;
  req.write = write;
  OpenExisting(cred, fh, req, std::move(done));
}

std::shared_ptr<OpenFile> Nfs3Client::MakeOpenFile(const FileHandle& fh) {
  std::lock_guard<std::mutex> lock(mu_);
  ++open_[std::string(reinterpret_cast<const char*>(fh.data()), fh.size())].opens;
  return std::make_shared<Nfs3OpenFile>(fh);
}

void Nfs3Client::Close(const Credentials& cred, std::shared_ptr<OpenFile> file,
                       Callback<Unit> done) {
  if (!file) return done(Unit{});
  const FileHandle& fh = file->fh();
  FileHandle silly_dir;
  std::string silly_name;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = open_.find(std::string(reinterpret_cast<const char*>(fh.data()), fh.size()));
    if (it != open_.end() && --it->second.opens <= 0) {
      silly_dir = it->second.silly_dir;
      silly_name = it->second.silly_name;
      open_.erase(it);
    }
  }
  if (silly_name.empty()) return done(Unit{});
  // The last close of a file unlinked while open: remove its hidden name.
  Call<REMOVE3res>(
      cred, "REMOVE",
      [silly_dir, silly_name](rpc_context* rpc, RpcCallback cb, void* p) {
        REMOVE3args a{};
        a.object = DirOp(silly_dir, silly_name);
        return rpc_nfs3_remove_async(rpc, cb, &a, p);
      },
      [silly_name, done](const REMOVE3res& r) {
        if (r.status != NFS3_OK && r.status != NFS3ERR_NOENT) {
          spdlog::warn("could not remove {} (a file unlinked while open): {}", silly_name,
                       v3::StatusFrom(r.status, "REMOVE").ToString());
        }
        done(Unit{});
      },
      [done](Status) { done(Unit{}); });
}

void Nfs3Client::SillyRenameIfOpen(const Credentials& cred, const FileHandle& dir,
                                   const std::string& name,
                                   std::function<void(Status, bool renamed)> next) {
  Lookup(cred, dir, name, [this, cred, dir, name, next](Result<Entry> e) {
    if (!e.ok()) return next(Status::Ok(), false);  // the operation itself reports it
    std::string silly;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = open_.find(std::string(reinterpret_cast<const char*>(e->fh.data()), e->fh.size()));
      // Only the file's last name: removing another leaves the file (and
      // its open) in place, and must drop its link count as the kernel
      // client's REMOVE does (it silly-renames only a name in use).
      const bool last_name = !e->attr.Has(Attributes::kNlink) || e->attr.nlink <= 1;
      if (it != open_.end() && e->attr.type != FileType::kDirectory && last_name) {
        char buf[48];
        std::snprintf(buf, sizeof(buf), ".nfs%016llx%08llx",
                      static_cast<unsigned long long>(e->attr.fileid),
                      static_cast<unsigned long long>(++silly_counter_));
        silly = buf;
        it->second.silly_dir = dir;
        it->second.silly_name = silly;
      }
    }
    if (silly.empty()) return next(Status::Ok(), false);
    RenameNow(cred, dir, name, dir, silly, [next](Result<Unit> r) { next(r.status(), r.ok()); });
  });
}

void Nfs3Client::Upgrade(const Credentials& cred, const OpenFile* file, bool read, bool write,
                         Callback<Unit> done) {
  if (file == nullptr) return done(Status::InvalidArgument("Upgrade without an open file"));
  CheckAccess(cred, file->fh(), read, write, [done](Result<Attributes> a) {
    if (!a.ok()) return done(a.status());
    done(Unit{});
  });
}

void Nfs3Client::Read(const Credentials& cred, const FileHandle& fh, const OpenFile*,
                      uint64_t offset, std::span<uint8_t> dest, Callback<ReadResult> done) {
  Call<READ3res>(
      cred, "READ",
      [fh, offset, count = uint32_t(dest.size())](rpc_context* rpc, RpcCallback cb, void* p) {
        READ3args a{};
        a.file = v3::ToFh3(fh);
        a.offset = offset;
        a.count = count;
        return rpc_nfs3_read_async(rpc, cb, &a, p);
      },
      [dest, done](const READ3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "READ"));
        const READ3resok& ok = r.READ3res_u.resok;
        const size_t n = std::min<size_t>({ok.data.data_len, ok.count, dest.size()});
        if (n > 0) std::memcpy(dest.data(), ok.data.data_val, n);
        done(ReadResult{uint32_t(n), ok.eof != 0});
      },
      Fail(done));
}

void Nfs3Client::Write(const Credentials& cred, const FileHandle& fh, const OpenFile*,
                       uint64_t offset, std::span<const uint8_t> data, Stability stability,
                       Callback<WriteResult> done) {
  Call<WRITE3res>(
      cred, "WRITE",
      [fh, offset, data, stability](rpc_context* rpc, RpcCallback cb, void* p) {
        WRITE3args a{};
        a.file = v3::ToFh3(fh);
        a.offset = offset;
        a.count = uint32_t(data.size());
        a.stable = static_cast<stable_how>(stability);  // the same three values
        a.data.data_len = uint32_t(data.size());
        a.data.data_val = reinterpret_cast<char*>(const_cast<uint8_t*>(data.data()));
        return rpc_nfs3_write_async(rpc, cb, &a, p);
      },
      [done](const WRITE3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "WRITE"));
        const WRITE3resok& ok = r.WRITE3res_u.resok;
        WriteResult out;
        out.count = ok.count;
        out.committed = static_cast<Stability>(ok.committed);
        std::memcpy(out.verifier.data(), ok.verf, out.verifier.size());
        done(out);
      },
      Fail(done), data.size());
}

void Nfs3Client::Commit(const Credentials& cred, const FileHandle& fh, uint64_t offset,
                        uint32_t count, Callback<WriteVerifier> done) {
  Call<COMMIT3res>(
      cred, "COMMIT",
      [fh, offset, count](rpc_context* rpc, RpcCallback cb, void* p) {
        COMMIT3args a{};
        a.file = v3::ToFh3(fh);
        a.offset = offset;
        a.count = count;
        return rpc_nfs3_commit_async(rpc, cb, &a, p);
      },
      [done](const COMMIT3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "COMMIT"));
        WriteVerifier verifier;
        std::memcpy(verifier.data(), r.COMMIT3res_u.resok.verf, verifier.size());
        done(verifier);
      },
      Fail(done));
}

void Nfs3Client::Create(const Credentials& cred, const FileHandle& dir, const std::string& name,
                        const CreateRequest& req, Callback<Entry> done) {
  // MKDIR, SYMLINK and MKNOD share the shape of their replies.
  auto finish = [this, cred, dir, name, done](int status, const post_op_fh3& obj,
                                              const post_op_attr& attr, const char* proc) {
    if (status != NFS3_OK) return done(v3::StatusFrom(status, std::string(proc) + " " + name));
    std::optional<FileHandle> fh;
    if (obj.handle_follows) fh = v3::FromFh3(obj.post_op_fh3_u.handle);
    FinishCreated(cred, dir, name, fh, v3::FromPostOp(attr), done);
  };
  switch (req.type) {
    case FileType::kDirectory:
      Call<MKDIR3res>(
          cred, "MKDIR",
          [dir, name, attrs = req.attrs](rpc_context* rpc, RpcCallback cb, void* p) {
            MKDIR3args a{};
            a.where = DirOp(dir, name);
            a.attributes = v3::ToSattr3(attrs);
            return rpc_nfs3_mkdir_async(rpc, cb, &a, p);
          },
          [finish](const MKDIR3res& r) {
            finish(r.status, r.MKDIR3res_u.resok.obj, r.MKDIR3res_u.resok.obj_attributes, "MKDIR");
          },
          Fail(done));
      return;
    case FileType::kSymlink:
      Call<SYMLINK3res>(
          cred, "SYMLINK",
          [dir, name, attrs = req.attrs, target = req.symlink_target](rpc_context* rpc,
                                                                      RpcCallback cb, void* p) {
            SYMLINK3args a{};
            a.where = DirOp(dir, name);
            a.symlink.symlink_attributes = v3::ToSattr3(attrs);
            a.symlink.symlink_data = const_cast<char*>(target.c_str());
            return rpc_nfs3_symlink_async(rpc, cb, &a, p);
          },
          [finish](const SYMLINK3res& r) {
            finish(r.status, r.SYMLINK3res_u.resok.obj, r.SYMLINK3res_u.resok.obj_attributes,
                   "SYMLINK");
          },
          Fail(done));
      return;
    case FileType::kBlockDevice:
    case FileType::kCharDevice:
    case FileType::kSocket:
    case FileType::kFifo:
      Call<MKNOD3res>(
          cred, "MKNOD",
          [dir, name, req](rpc_context* rpc, RpcCallback cb, void* p) {
            MKNOD3args a{};
            a.where = DirOp(dir, name);
            const sattr3 attrs = v3::ToSattr3(req.attrs);
            switch (req.type) {
              case FileType::kBlockDevice:
              case FileType::kCharDevice: {
                a.what.type = req.type == FileType::kBlockDevice ? NF3BLK : NF3CHR;
                devicedata3& dev = req.type == FileType::kBlockDevice
                                       ? a.what.mknoddata3_u.blk_device
                                       : a.what.mknoddata3_u.chr_device;
                dev.dev_attributes = attrs;
                dev.spec.specdata1 = req.rdev_major;
                dev.spec.specdata2 = req.rdev_minor;
                break;
              }
              case FileType::kSocket:
                a.what.type = NF3SOCK;
                a.what.mknoddata3_u.sock_attributes = attrs;
                break;
              default:
                a.what.type = NF3FIFO;
                a.what.mknoddata3_u.pipe_attributes = attrs;
                break;
            }
            return rpc_nfs3_mknod_async(rpc, cb, &a, p);
          },
          [finish](const MKNOD3res& r) {
            finish(r.status, r.MKNOD3res_u.resok.obj, r.MKNOD3res_u.resok.obj_attributes, "MKNOD");
          },
          Fail(done));
      return;
    case FileType::kRegular:
    default:
      done(Status::InvalidArgument("Create makes directories, symlinks and special files"));
      return;
  }
}

// NFSv3 removes files with REMOVE and directories with RMDIR; the callers
// (unlink and rmdir alike) checked the type already, so REMOVE is tried
// first and a directory (ISDIR) goes to RMDIR. A file held open here is
// silly-renamed instead.
void Nfs3Client::Remove(const Credentials& cred, const FileHandle& dir, const std::string& name,
                        Callback<Unit> done) {
  bool any_open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    any_open = !open_.empty();
  }
  if (any_open) {
    // A file held open here: the silly rename is the unlink (the name goes
    // away, the file stays until the last close).
    SillyRenameIfOpen(cred, dir, name, [this, cred, dir, name, done](Status s, bool renamed) {
      if (!s.ok()) return done(s);
      if (renamed) return done(Unit{});
      RemoveNow(cred, dir, name, done);
    });
    return;
  }
  RemoveNow(cred, dir, name, std::move(done));
}

void Nfs3Client::RemoveNow(const Credentials& cred, const FileHandle& dir, const std::string& name,
                           Callback<Unit> done) {
  Call<REMOVE3res>(
      cred, "REMOVE",
      [dir, name](rpc_context* rpc, RpcCallback cb, void* p) {
        REMOVE3args a{};
        a.object = DirOp(dir, name);
        return rpc_nfs3_remove_async(rpc, cb, &a, p);
      },
      [this, cred, dir, name, done](const REMOVE3res& r) {
        if (r.status == NFS3_OK) return done(Unit{});
        if (r.status != NFS3ERR_ISDIR) return done(v3::StatusFrom(r.status, "REMOVE " + name));
        Call<RMDIR3res>(
            cred, "RMDIR",
            [dir, name](rpc_context* rpc, RpcCallback cb, void* p) {
              RMDIR3args a{};
              a.object = DirOp(dir, name);
              return rpc_nfs3_rmdir_async(rpc, cb, &a, p);
            },
            [name, done](const RMDIR3res& rr) {
              if (rr.status != NFS3_OK) return done(v3::StatusFrom(rr.status, "RMDIR " + name));
              done(Unit{});
            },
            Fail(done));
      },
      Fail(done));
}

void Nfs3Client::Rename(const Credentials& cred, const FileHandle& from_dir,
                        const std::string& from_name, const FileHandle& to_dir,
                        const std::string& to_name, Callback<Unit> done) {
  bool any_open;
  {
    std::lock_guard<std::mutex> lock(mu_);
    any_open = !open_.empty();
  }
  if (any_open) {
    // A file held open here that the rename replaces must survive it.
    return SillyRenameIfOpen(
        cred, to_dir, to_name,
        [this, cred, from_dir, from_name, to_dir, to_name, done](Status s, bool) {
          if (!s.ok()) return done(s);
          RenameNow(cred, from_dir, from_name, to_dir, to_name, done);
        });
  }
  RenameNow(cred, from_dir, from_name, to_dir, to_name, std::move(done));
}

void Nfs3Client::RenameNow(const Credentials& cred, const FileHandle& from_dir,
                           const std::string& from_name, const FileHandle& to_dir,
                           const std::string& to_name, Callback<Unit> done) {
  Call<RENAME3res>(
      cred, "RENAME",
      [from_dir, from_name, to_dir, to_name](rpc_context* rpc, RpcCallback cb, void* p) {
        RENAME3args a{};
        a.from = DirOp(from_dir, from_name);
        a.to = DirOp(to_dir, to_name);
        return rpc_nfs3_rename_async(rpc, cb, &a, p);
      },
      [from_name, done](const RENAME3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "RENAME " + from_name));
        done(Unit{});
      },
      Fail(done));
}

void Nfs3Client::Link(const Credentials& cred, const FileHandle& fh, const FileHandle& dir,
                      const std::string& name, Callback<Attributes> done) {
  Call<LINK3res>(
      cred, "LINK",
      [fh, dir, name](rpc_context* rpc, RpcCallback cb, void* p) {
        LINK3args a{};
        a.file = v3::ToFh3(fh);
        a.link = DirOp(dir, name);
        return rpc_nfs3_link_async(rpc, cb, &a, p);
      },
      [this, cred, fh, name, done](const LINK3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "LINK " + name));
        if (auto a = v3::FromPostOp(r.LINK3res_u.resok.file_attributes)) return done(*a);
        GetAttr(cred, fh, done);
      },
      Fail(done));
}

void Nfs3Client::ReadLink(const Credentials& cred, const FileHandle& fh,
                          Callback<std::string> done) {
  Call<READLINK3res>(
      cred, "READLINK",
      [fh](rpc_context* rpc, RpcCallback cb, void* p) {
        READLINK3args a{};
        a.symlink = v3::ToFh3(fh);
        return rpc_nfs3_readlink_async(rpc, cb, &a, p);
      },
      [done](const READLINK3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "READLINK"));
        const char* target = r.READLINK3res_u.resok.data;
        done(std::string(target != nullptr ? target : ""));
      },
      Fail(done));
}

void Nfs3Client::ReadDir(const Credentials& cred, const FileHandle& dir, uint64_t cookie,
                         const std::array<uint8_t, 8>& verifier, uint32_t max_bytes,
                         Callback<DirPage> done) {
  // As the NFSv4 client: within the server's transfer size (FSINFO).
  const uint32_t count = std::min(std::max<uint32_t>(max_bytes, 4096), rsize_);
  Call<READDIRPLUS3res>(
      cred, "READDIRPLUS",
      [dir, cookie, verifier, count](rpc_context* rpc, RpcCallback cb, void* p) {
        READDIRPLUS3args a{};
        a.dir = v3::ToFh3(dir);
        a.cookie = cookie;
        std::memcpy(a.cookieverf, verifier.data(), verifier.size());
        a.dircount = count;
        a.maxcount = count;
        return rpc_nfs3_readdirplus_async(rpc, cb, &a, p);
      },
      [done](const READDIRPLUS3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "READDIRPLUS"));
        const READDIRPLUS3resok& ok = r.READDIRPLUS3res_u.resok;
        DirPage page;
        std::memcpy(page.cookie_verifier.data(), ok.cookieverf, page.cookie_verifier.size());
        page.eof = ok.reply.eof != 0;
        // libnfs's decoder places the list's entries at addresses that are
        // not 8-byte aligned: copy each out before reading its fields.
        for (const void* next = ok.reply.entries; next != nullptr;) {
          entryplus3 e;
          std::memcpy(&e, next, sizeof(e));
          next = e.nextentry;
          const std::string name = e.name != nullptr ? e.name : "";
          if (name == "." || name == "..") continue;  // NFSv4 has none; fuse/ adds its own
          DirEntry d;
          d.name = name;
          d.cookie = e.cookie;
          if (e.name_handle.handle_follows) d.fh = v3::FromFh3(e.name_handle.post_op_fh3_u.handle);
          if (auto a = v3::FromPostOp(e.name_attributes)) d.attr = *a;
          page.entries.push_back(std::move(d));
        }
        done(std::move(page));
      },
      Fail(done));
}

void Nfs3Client::StatFs(const Credentials& cred, const FileHandle& fh, Callback<FsStats> done) {
  Call<FSSTAT3res>(
      cred, "FSSTAT",
      [fh](rpc_context* rpc, RpcCallback cb, void* p) {
        FSSTAT3args a{};
        a.fsroot = v3::ToFh3(fh);
        return rpc_nfs3_fsstat_async(rpc, cb, &a, p);
      },
      [done](const FSSTAT3res& r) {
        if (r.status != NFS3_OK) return done(v3::StatusFrom(r.status, "FSSTAT"));
        const FSSTAT3resok& ok = r.FSSTAT3res_u.resok;
        FsStats s;
        s.space_total = ok.tbytes;
        s.space_free = ok.fbytes;
        s.space_avail = ok.abytes;
        s.files_total = ok.tfiles;
        s.files_free = ok.ffiles;
        s.files_avail = ok.afiles;
        done(s);
      },
      Fail(done));
}

// ---- locks: NLM is not spoken -------------------------------------------------

namespace {
Status NoLocks() {
  return Status::Nfs(v4::NFS4ERR_LOCK_NOTSUPP,
                     "byte-range locks need NLM, which floatmount's NFSv3 mounts do not speak");
}
}  // namespace

void Nfs3Client::Lock(const Credentials&, const OpenFile*, uint64_t, LockType, uint64_t, uint64_t,
                      Callback<Attributes> done) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!lock_warned_) {
      lock_warned_ = true;
      spdlog::warn(
          "a program asked for a file lock: NFSv3 mounts have no locks (NLM is not "
          "supported), so fcntl/flock locks fail with ENOLCK; mount with vers=4.1 for locks");
    }
  }
  done(NoLocks());
}

void Nfs3Client::Unlock(const Credentials&, const OpenFile*, uint64_t, uint64_t, uint64_t,
                        Callback<Unit> done) {
  done(NoLocks());
}

void Nfs3Client::TestLock(const Credentials&, const OpenFile*, uint64_t, LockType, uint64_t,
                          uint64_t, Callback<std::optional<LockConflict>> done) {
  done(NoLocks());
}

}  // namespace floatmount::nfs
