#include "nfs/v4/attrs.h"

#include <optional>

namespace floatmount::nfs::v4 {
namespace {

// Bounds for values we only skip or store as strings.
constexpr size_t kMaxOwnerLen = NFS4_OPAQUE_LIMIT;
constexpr size_t kMaxStringLen = NFS4_OPAQUE_LIMIT;

// The XDR shape of an attribute value, enough to step over it.
enum class Shape : uint8_t {
  kUnknown,
  kU32,          // uint32_t, enum
  kBool,         // bool
  kU64,          // uint64_t
  kU32Pair,      // specdata4
  kU64Pair,      // fsid4, chg_policy4
  kTime,         // nfstime4
  kBitmap,       // bitmap4
  kString,       // utf8str_*
  kFh,           // nfs_fh4
  kAcl,          // nfsace4<>
  kAcl41,        // nfsacl41
  kU32Array,     // layouttype4<>
  kRetention,    // retention_get4
  kFsStatus,     // fs4_status
  kLayoutHint,   // layouthint4
  kFsLocations,  // fs_locations4
};

// RFC 8881 section 5.6 (REQUIRED), 5.7 (RECOMMENDED), 5.8 (definitions),
// 5.11-5.13 (ACL), 10.9 (notification delays), 5.12 (pNFS), 5.13 (retention).
// The write-only attributes (time_access_set, time_modify_set,
// retention_set, retentevt_set, mode_set_masked) never appear in a reply.
Shape ShapeOf(uint32_t bit) {
  switch (bit) {
    case FATTR4_TYPE:
    case FATTR4_FH_EXPIRE_TYPE:
    case FATTR4_LEASE_TIME:
    case FATTR4_RDATTR_ERROR:
    case FATTR4_ACLSUPPORT:
    case FATTR4_MAXLINK:
    case FATTR4_MAXNAME:
    case FATTR4_MODE:
    case FATTR4_NUMLINKS:
    case FATTR4_LAYOUT_BLKSIZE:
    case FATTR4_LAYOUT_ALIGNMENT:
    case FATTR4_FS_CHARSET_CAP:
      return Shape::kU32;
    case FATTR4_LINK_SUPPORT:
    case FATTR4_SYMLINK_SUPPORT:
    case FATTR4_NAMED_ATTR:
    case FATTR4_UNIQUE_HANDLES:
    case FATTR4_ARCHIVE:
    case FATTR4_CANSETTIME:
    case FATTR4_CASE_INSENSITIVE:
    case FATTR4_CASE_PRESERVING:
    case FATTR4_CHOWN_RESTRICTED:
    case FATTR4_HIDDEN:
    case FATTR4_HOMOGENEOUS:
    case FATTR4_NO_TRUNC:
    case FATTR4_SYSTEM:
      return Shape::kBool;
    case FATTR4_CHANGE:
    case FATTR4_SIZE:
    case FATTR4_FILEID:
    case FATTR4_FILES_AVAIL:
    case FATTR4_FILES_FREE:
    case FATTR4_FILES_TOTAL:
    case FATTR4_MAXFILESIZE:
    case FATTR4_MAXREAD:
    case FATTR4_MAXWRITE:
    case FATTR4_QUOTA_AVAIL_HARD:
    case FATTR4_QUOTA_AVAIL_SOFT:
    case FATTR4_QUOTA_USED:
    case FATTR4_SPACE_AVAIL:
    case FATTR4_SPACE_FREE:
    case FATTR4_SPACE_TOTAL:
    case FATTR4_SPACE_USED:
    case FATTR4_MOUNTED_ON_FILEID:
    case FATTR4_RETENTION_HOLD:
      return Shape::kU64;
    case FATTR4_RAWDEV:
      return Shape::kU32Pair;
    case FATTR4_FSID:
    case FATTR4_CHANGE_POLICY:
      return Shape::kU64Pair;
    case FATTR4_TIME_ACCESS:
    case FATTR4_TIME_BACKUP:
    case FATTR4_TIME_CREATE:
    case FATTR4_TIME_DELTA:
    case FATTR4_TIME_METADATA:
    case FATTR4_TIME_MODIFY:
    case FATTR4_DIR_NOTIF_DELAY:
    case FATTR4_DIRENT_NOTIF_DELAY:
      return Shape::kTime;
    case FATTR4_SUPPORTED_ATTRS:
    case FATTR4_SUPPATTR_EXCLCREAT:
      return Shape::kBitmap;
    case FATTR4_MIMETYPE:
    case FATTR4_OWNER:
    case FATTR4_OWNER_GROUP:
      return Shape::kString;
    case FATTR4_FILEHANDLE:
      return Shape::kFh;
    case FATTR4_ACL:
      return Shape::kAcl;
    case FATTR4_DACL:
    case FATTR4_SACL:
      return Shape::kAcl41;
    case FATTR4_FS_LAYOUT_TYPES:
    case FATTR4_LAYOUT_TYPES:
      return Shape::kU32Array;
    case FATTR4_RETENTION_GET:
    case FATTR4_RETENTEVT_GET:
      return Shape::kRetention;
    case FATTR4_FS_STATUS:
      return Shape::kFsStatus;
    case FATTR4_LAYOUT_HINT:
      return Shape::kLayoutHint;
    case FATTR4_FS_LOCATIONS:
      return Shape::kFsLocations;
    default:
      return Shape::kUnknown;
  }
}

// An array count that cannot fit in what is left (each element takes at
// least `min_size` bytes) fails the decoder, so that loops stay short.
uint32_t GetCount(XdrDecoder& v, size_t min_size) {
  const uint32_t n = v.GetUint32();
  if (n > v.remaining() / min_size) {
    v.Fail();
    return 0;
  }
  return n;
}

// nfsace4 (RFC 8881 section 6.2.1): type, flag, access_mask, who.
void SkipAces(XdrDecoder& v) {
  const uint32_t n = GetCount(v, 16);
  for (uint32_t i = 0; i < n && v.ok(); ++i) {
    v.Skip(12);
    v.GetOpaque(kMaxStringLen);
  }
}

// pathname4: component4<>.
void SkipPathname(XdrDecoder& v) {
  const uint32_t n = GetCount(v, 4);
  for (uint32_t i = 0; i < n && v.ok(); ++i) v.GetOpaque(kMaxStringLen);
}

// Steps over one value of a known shape; false if the shape is unknown.
bool SkipValue(XdrDecoder& v, Shape shape) {
  switch (shape) {
    case Shape::kUnknown:
      return false;
    case Shape::kU32:
    case Shape::kBool:
      v.Skip(4);
      break;
    case Shape::kU64:
    case Shape::kU32Pair:
      v.Skip(8);
      break;
    case Shape::kU64Pair:
      v.Skip(16);
      break;
    case Shape::kTime: {
      Timestamp t;
      DecodeNfstime(v, &t);
      break;
    }
    case Shape::kBitmap: {
      Bitmap b;
      DecodeBitmap(v, &b);
      break;
    }
    case Shape::kString:
      v.GetOpaque(kMaxStringLen);
      break;
    case Shape::kFh:
      v.GetOpaque(NFS4_FHSIZE);
      break;
    case Shape::kAcl:
      SkipAces(v);
      break;
    case Shape::kAcl41:  // aclflag4 na41_flag; nfsace4 na41_aces<>
      v.Skip(4);
      SkipAces(v);
      break;
    case Shape::kU32Array:
      v.Skip(size_t{4} * GetCount(v, 4));
      break;
    case Shape::kRetention: {  // uint64_t rg_duration; nfstime4 rg_begin_time<1>
      v.Skip(8);
      const uint32_t n = v.GetUint32();
      if (n > 1) v.Fail();
      Timestamp t;
      if (n == 1) DecodeNfstime(v, &t);
      break;
    }
    case Shape::kFsStatus: {  // absent, type, source, current, age, version
      v.Skip(8);
      v.GetOpaque(kMaxStringLen);
      v.GetOpaque(kMaxStringLen);
      v.Skip(4);
      Timestamp t;
      DecodeNfstime(v, &t);
      break;
    }
    case Shape::kLayoutHint:  // layouttype4 loh_type; opaque loh_body<>
      v.Skip(4);
      v.GetOpaque();
      break;
    case Shape::kFsLocations: {  // pathname4 fs_root; fs_location4 locations<>
      SkipPathname(v);
      const uint32_t n = GetCount(v, 8);
      for (uint32_t i = 0; i < n && v.ok(); ++i) {
        const uint32_t servers = GetCount(v, 4);
        for (uint32_t j = 0; j < servers && v.ok(); ++j) v.GetOpaque(kMaxStringLen);
        SkipPathname(v);
      }
      break;
    }
  }
  return true;
}

bool ToFileType(uint32_t ftype, FileType* type) {
  switch (ftype) {
    case NF4REG:
    case NF4DIR:
    case NF4BLK:
    case NF4CHR:
    case NF4LNK:
    case NF4SOCK:
    case NF4FIFO:
      *type = static_cast<FileType>(ftype);
      return true;
    case NF4ATTRDIR:  // named attribute directories and their files
      *type = FileType::kDirectory;
      return true;
    case NF4NAMEDATTR:
      *type = FileType::kRegular;
      return true;
    default:
      return false;
  }
}

struct Outputs {
  const IdMapper& ids;
  Attributes* attrs;
  FsStats* stats;
  ServerLimits* limits;
  FileHandle* fh;
};

// Decodes one attribute into the outputs that want it; false if unknown.
bool DecodeValue(XdrDecoder& v, uint32_t bit, const Outputs& out) {
  Attributes* a = out.attrs;
  FsStats* s = out.stats;
  ServerLimits* l = out.limits;
  // Each switch runs only when its output is wanted (~0u matches no case);
  // a value nobody wants falls through to SkipValue.
  switch (a != nullptr ? bit : ~0u) {
    case FATTR4_TYPE:
      if (!ToFileType(v.GetUint32(), &a->type)) v.Fail();
      a->valid |= Attributes::kType;
      return true;
    case FATTR4_CHANGE:
      a->change = v.GetUint64();
      a->valid |= Attributes::kChange;
      return true;
    case FATTR4_SIZE:
      a->size = v.GetUint64();
      a->valid |= Attributes::kSize;
      return true;
    case FATTR4_FSID:
      a->fsid_major = v.GetUint64();
      a->fsid_minor = v.GetUint64();
      a->valid |= Attributes::kFsid;
      return true;
    case FATTR4_FILEID:
      a->fileid = v.GetUint64();
      a->valid |= Attributes::kFileId;
      return true;
    case FATTR4_MODE:
      a->mode = v.GetUint32() & 07777;
      a->valid |= Attributes::kMode;
      return true;
    case FATTR4_NUMLINKS:
      a->nlink = v.GetUint32();
      a->valid |= Attributes::kNlink;
      return true;
    case FATTR4_OWNER:
      a->uid = out.ids.UidFromOwner(v.GetString(kMaxOwnerLen));
      a->valid |= Attributes::kUid;
      return true;
    case FATTR4_OWNER_GROUP:
      a->gid = out.ids.GidFromGroup(v.GetString(kMaxOwnerLen));
      a->valid |= Attributes::kGid;
      return true;
    case FATTR4_RAWDEV:
      a->rdev_major = v.GetUint32();
      a->rdev_minor = v.GetUint32();
      a->valid |= Attributes::kRdev;
      return true;
    case FATTR4_SPACE_USED:
      a->space_used = v.GetUint64();
      a->valid |= Attributes::kSpaceUsed;
      return true;
    case FATTR4_TIME_ACCESS:
      DecodeNfstime(v, &a->atime);
      a->valid |= Attributes::kAtime;
      return true;
    case FATTR4_TIME_METADATA:
      DecodeNfstime(v, &a->ctime);
      a->valid |= Attributes::kCtime;
      return true;
    case FATTR4_TIME_MODIFY:
      DecodeNfstime(v, &a->mtime);
      a->valid |= Attributes::kMtime;
      return true;
  }
  switch (s != nullptr ? bit : ~0u) {
    case FATTR4_FILES_AVAIL:
      s->files_avail = v.GetUint64();
      return true;
    case FATTR4_FILES_FREE:
      s->files_free = v.GetUint64();
      return true;
    case FATTR4_FILES_TOTAL:
      s->files_total = v.GetUint64();
      return true;
    case FATTR4_SPACE_AVAIL:
      s->space_avail = v.GetUint64();
      return true;
    case FATTR4_SPACE_FREE:
      s->space_free = v.GetUint64();
      return true;
    case FATTR4_SPACE_TOTAL:
      s->space_total = v.GetUint64();
      return true;
  }
  switch (l != nullptr ? bit : ~0u) {
    case FATTR4_SUPPORTED_ATTRS:
      DecodeBitmap(v, &l->supported);
      return true;
    case FATTR4_SUPPATTR_EXCLCREAT:
      DecodeBitmap(v, &l->suppattr_exclcreat);
      return true;
    case FATTR4_FH_EXPIRE_TYPE:
      l->fh_expire_type = v.GetUint32();
      return true;
    case FATTR4_LINK_SUPPORT:
      l->link_support = v.GetBool();
      return true;
    case FATTR4_SYMLINK_SUPPORT:
      l->symlink_support = v.GetBool();
      return true;
    case FATTR4_LEASE_TIME:
      l->lease_time = v.GetUint32();
      return true;
    case FATTR4_MAXFILESIZE:
      l->maxfilesize = v.GetUint64();
      return true;
    case FATTR4_MAXLINK:
      l->maxlink = v.GetUint32();
      return true;
    case FATTR4_MAXNAME:
      l->maxname = v.GetUint32();
      return true;
    case FATTR4_MAXREAD:
      l->maxread = v.GetUint64();
      return true;
    case FATTR4_MAXWRITE:
      l->maxwrite = v.GetUint64();
      return true;
    case FATTR4_TIME_DELTA:
      DecodeNfstime(v, &l->time_delta);
      return true;
  }
  if (bit == FATTR4_FILEHANDLE && out.fh != nullptr) {
    std::span<const uint8_t> fh = v.GetOpaque(NFS4_FHSIZE);
    if (v.ok()) *out.fh = FileHandle(fh.data(), fh.size());
    return true;
  }
  return SkipValue(v, ShapeOf(bit));
}

}  // namespace

Bitmap StandardAttrs() {
  return Bitmap{FATTR4_TYPE,          FATTR4_CHANGE,     FATTR4_SIZE,       FATTR4_FSID,
                FATTR4_FILEID,        FATTR4_MODE,       FATTR4_NUMLINKS,   FATTR4_OWNER,
                FATTR4_OWNER_GROUP,   FATTR4_RAWDEV,     FATTR4_SPACE_USED, FATTR4_TIME_ACCESS,
                FATTR4_TIME_METADATA, FATTR4_TIME_MODIFY};
}

Bitmap StatFsAttrs() {
  return Bitmap{FATTR4_FILES_AVAIL, FATTR4_FILES_FREE, FATTR4_FILES_TOTAL,
                FATTR4_SPACE_AVAIL, FATTR4_SPACE_FREE, FATTR4_SPACE_TOTAL};
}

Bitmap ProbeAttrs() {
  return Bitmap{FATTR4_SUPPORTED_ATTRS, FATTR4_FH_EXPIRE_TYPE, FATTR4_LINK_SUPPORT,
                FATTR4_SYMLINK_SUPPORT, FATTR4_LEASE_TIME,     FATTR4_MAXFILESIZE,
                FATTR4_MAXLINK,         FATTR4_MAXNAME,        FATTR4_MAXREAD,
                FATTR4_MAXWRITE,        FATTR4_TIME_DELTA,     FATTR4_SUPPATTR_EXCLCREAT};
}

bool DecodeFattr(XdrDecoder& d, const IdMapper& ids, Attributes* attrs, FsStats* stats,
                 ServerLimits* limits, FileHandle* fh) {
  Bitmap mask;
  DecodeBitmap(d, &mask);
  std::span<const uint8_t> vals = d.GetOpaque();
  if (!d.ok()) return false;

  // Decode into copies so that a failure leaves the outputs as they were.
  std::optional<Attributes> a;
  std::optional<FsStats> s;
  std::optional<ServerLimits> l;
  std::optional<FileHandle> f;
  if (attrs != nullptr) a = *attrs;
  if (stats != nullptr) s = *stats;
  if (limits != nullptr) l = *limits;
  if (fh != nullptr) f = *fh;
  const Outputs out{ids, a ? &*a : nullptr, s ? &*s : nullptr, l ? &*l : nullptr,
                    f ? &*f : nullptr};

  XdrDecoder v(vals);
  for (size_t w = 0; w < mask.words.size(); ++w) {
    for (uint32_t i = 0; i < 32; ++i) {
      if ((mask.words[w] & (1u << i)) == 0) continue;
      if (!DecodeValue(v, static_cast<uint32_t>(w * 32 + i), out) || !v.ok()) {
        d.Fail();
        return false;
      }
    }
  }
  if (v.remaining() != 0) {
    d.Fail();
    return false;
  }
  if (attrs != nullptr) *attrs = std::move(*a);
  if (stats != nullptr) *stats = *s;
  if (limits != nullptr) {
    *limits = std::move(*l);
    limits->returned = std::move(mask);
  }
  if (fh != nullptr) *fh = std::move(*f);
  return true;
}

Bitmap SetAttrsMask(const SetAttributes& attrs) {
  Bitmap mask;
  if (attrs.size) mask.Set(FATTR4_SIZE);
  if (attrs.mode) mask.Set(FATTR4_MODE);
  if (attrs.uid) mask.Set(FATTR4_OWNER);
  if (attrs.gid) mask.Set(FATTR4_OWNER_GROUP);
  if (attrs.atime_how != SetAttributes::TimeHow::kDontChange) mask.Set(FATTR4_TIME_ACCESS_SET);
  if (attrs.mtime_how != SetAttributes::TimeHow::kDontChange) mask.Set(FATTR4_TIME_MODIFY_SET);
  return mask;
}

namespace {

// settime4 (RFC 8881 section 3.3.7).
void EncodeSettime(XdrEncoder& e, SetAttributes::TimeHow how, const Timestamp& t) {
  if (how == SetAttributes::TimeHow::kClientTime) {
    e.PutUint32(SET_TO_CLIENT_TIME4);
    EncodeNfstime(e, t);
  } else {
    e.PutUint32(SET_TO_SERVER_TIME4);
  }
}

}  // namespace

void EncodeFattr(XdrEncoder& e, const SetAttributes& attrs, const IdMapper& ids) {
  EncodeBitmap(e, SetAttrsMask(attrs));
  const size_t len_offset = e.ReserveUint32();
  const size_t start = e.size();
  // In increasing bit order.
  if (attrs.size) e.PutUint64(*attrs.size);
  if (attrs.mode) e.PutUint32(*attrs.mode & 07777);
  if (attrs.uid) e.PutString(ids.OwnerString(*attrs.uid));
  if (attrs.gid) e.PutString(ids.GroupString(*attrs.gid));
  if (attrs.atime_how != SetAttributes::TimeHow::kDontChange) {
    EncodeSettime(e, attrs.atime_how, attrs.atime);
  }
  if (attrs.mtime_how != SetAttributes::TimeHow::kDontChange) {
    EncodeSettime(e, attrs.mtime_how, attrs.mtime);
  }
  e.PatchUint32(len_offset, static_cast<uint32_t>(e.size() - start));
}

}  // namespace floatmount::nfs::v4
