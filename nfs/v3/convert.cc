#include "nfs/v3/convert.h"

#include <cstring>

namespace floatmount::nfs::v3 {

FileType FromFtype3(ftype3 type) {
  switch (type) {
    case NF3DIR: return FileType::kDirectory;
    case NF3BLK: return FileType::kBlockDevice;
    case NF3CHR: return FileType::kCharDevice;
    case NF3LNK: return FileType::kSymlink;
    case NF3SOCK: return FileType::kSocket;
    case NF3FIFO: return FileType::kFifo;
    case NF3REG:
    default: return FileType::kRegular;
  }
}

Attributes FromFattr3(const fattr3& a) {
  Attributes out;
  out.valid = Attributes::kType | Attributes::kMode | Attributes::kNlink | Attributes::kUid |
              Attributes::kGid | Attributes::kSize | Attributes::kSpaceUsed | Attributes::kAtime |
              Attributes::kMtime | Attributes::kCtime | Attributes::kChange |
              Attributes::kFileId | Attributes::kFsid | Attributes::kRdev;
  out.type = FromFtype3(a.type);
  out.mode = a.mode & 07777;
  out.nlink = a.nlink;
  out.uid = a.uid;
  out.gid = a.gid;
  out.size = a.size;
  out.space_used = a.used;
  out.atime = {a.atime.seconds, a.atime.nseconds};
  out.mtime = {a.mtime.seconds, a.mtime.nseconds};
  out.ctime = {a.ctime.seconds, a.ctime.nseconds};
  out.change = uint64_t(a.ctime.seconds) * 1000000000ull + a.ctime.nseconds;
  out.fileid = a.fileid;
  out.fsid_major = a.fsid;
  out.fsid_minor = 0;
  out.rdev_major = a.rdev.specdata1;
  out.rdev_minor = a.rdev.specdata2;
  return out;
}

std::optional<Attributes> FromPostOp(const post_op_attr& attr) {
  if (!attr.attributes_follow) return std::nullopt;
  return FromFattr3(attr.post_op_attr_u.attributes);
}

namespace {

time_how ToTimeHow(SetAttributes::TimeHow how) {
  switch (how) {
    case SetAttributes::TimeHow::kServerTime: return SET_TO_SERVER_TIME;
    case SetAttributes::TimeHow::kClientTime: return SET_TO_CLIENT_TIME;
    case SetAttributes::TimeHow::kDontChange:
    default: return DONT_CHANGE;
  }
}

nfstime3 ToNfstime3(const Timestamp& t) {
  nfstime3 out{};
  out.seconds = static_cast<u_int>(t.seconds);
  out.nseconds = t.nanoseconds;
  return out;
}

}  // namespace

sattr3 ToSattr3(const SetAttributes& attrs) {
  sattr3 s{};
  if (attrs.mode) {
    s.mode.set_it = 1;
    s.mode.set_mode3_u.mode = *attrs.mode & 07777;
  }
  if (attrs.uid) {
    s.uid.set_it = 1;
    s.uid.set_uid3_u.uid = *attrs.uid;
  }
  if (attrs.gid) {
    s.gid.set_it = 1;
    s.gid.set_gid3_u.gid = *attrs.gid;
  }
  if (attrs.size) {
    s.size.set_it = 1;
    s.size.set_size3_u.size = *attrs.size;
  }
  s.atime.set_it = ToTimeHow(attrs.atime_how);
  if (attrs.atime_how == SetAttributes::TimeHow::kClientTime) {
    s.atime.set_atime_u.atime = ToNfstime3(attrs.atime);
  }
  s.mtime.set_it = ToTimeHow(attrs.mtime_how);
  if (attrs.mtime_how == SetAttributes::TimeHow::kClientTime) {
    s.mtime.set_mtime_u.mtime = ToNfstime3(attrs.mtime);
  }
  return s;
}

nfs_fh3 ToFh3(const FileHandle& fh) {
  nfs_fh3 out{};
  out.data.data_len = static_cast<u_int>(fh.size());
  out.data.data_val = reinterpret_cast<char*>(const_cast<uint8_t*>(fh.data()));
  return out;
}

FileHandle FromFh3(const nfs_fh3& fh) {
  return FileHandle(reinterpret_cast<const uint8_t*>(fh.data.data_val), fh.data.data_len);
}

std::string RpcError(rpc_context* rpc) {
  const char* error = rpc != nullptr ? rpc_get_error(rpc) : nullptr;
  return error != nullptr ? error : "unknown error";
}

Status StatusFrom(int nfsstat3, const std::string& what) {
  return Status::Nfs(static_cast<uint32_t>(nfsstat3), what);
}

}  // namespace floatmount::nfs::v3
