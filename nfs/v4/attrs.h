// fattr4 codec: NFSv4.1 attributes (RFC 8881 sections 5.6-5.8, 3.3.2)
// to and from the project's types (nfs/types.h).
//
// A fattr4 is a bitmap4 of attribute numbers followed by attr_vals, an
// opaque holding the values of the set bits in increasing bit order with no
// per-value length. One value of unknown shape therefore makes the rest
// unreadable: DecodeFattr knows the XDR shape of every readable attribute
// of RFC 8881 except fs_locations_info and mdsthreshold, and fails on any
// other bit (including the write-only *_set ones) rather than guess. The
// server only returns bits the client asked for, so asking for the sets
// below keeps every reply decodable.
//
// Which attributes are stored where:
//   Attributes   type mode numlinks owner owner_group size space_used
//                time_access time_modify time_metadata change fileid fsid
//                rawdev (each sets its Attributes::valid bit)
//   FsStats      files_avail/free/total space_avail/free/total
//   ServerLimits supported_attrs fh_expire_type link_support
//                symlink_support lease_time maxfilesize maxlink maxname
//                maxread maxwrite time_delta suppattr_exclcreat
//   FileHandle   filehandle (READDIR entries, GETATTR after a create)
// Any of these outputs may be null; its attributes are then parsed and
// dropped. Values of other known attributes are parsed and dropped.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>

#include "nfs/v4/id_mapper.h"
#include "nfs/v4/protocol.h"
#include "nfs/types.h"
#include "nfs/rpc/xdr.h"

namespace floatmount::nfs::v4 {

// What a server says about itself (RFC 8881 section 5.6, 5.7). A field the
// server did not return keeps its default; `returned` says which did.
struct ServerLimits {
  Bitmap returned;            // the attribute bits of the reply
  Bitmap supported;           // supported_attrs
  Bitmap suppattr_exclcreat;  // attributes EXCLUSIVE4_1 may set
  uint32_t fh_expire_type = 0;
  bool link_support = false;
  bool symlink_support = false;
  uint32_t lease_time = 0;  // seconds
  uint64_t maxfilesize = 0;
  uint32_t maxlink = 0;
  uint32_t maxname = 0;
  uint64_t maxread = 0;
  uint64_t maxwrite = 0;
  Timestamp time_delta;  // server time granularity
};

// GETATTR sets. StandardAttrs: what fills Attributes.
Bitmap StandardAttrs();
// files_avail/free/total, space_avail/free/total.
Bitmap StatFsAttrs();
// What a mount asks once: supported_attrs, fh_expire_type, link_support,
// symlink_support, lease_time, maxfilesize, maxlink, maxname, maxread,
// maxwrite, time_delta, suppattr_exclcreat.
Bitmap ProbeAttrs();

// Reads a fattr4 and decodes its values into the non-null outputs (see the
// table above). Fields of attributes absent from the reply are left
// untouched. Returns false, with `d` failed, on a malformed fattr4, an
// attribute bit of unknown shape, or attr_vals whose length does not match
// the values.
bool DecodeFattr(XdrDecoder& d, const IdMapper& ids, Attributes* attrs, FsStats* stats,
                 ServerLimits* limits, FileHandle* fh = nullptr);

// Writes the fattr4 of a SETATTR, CREATE or OPEN(create): size (4), mode
// (33), owner (36), owner_group (37), time_access_set (48),
// time_modify_set (54), whichever `attrs` sets. The bitmap has no trailing
// zero words (an empty SetAttributes gives a zero-length bitmap and
// attr_vals).
void EncodeFattr(XdrEncoder& e, const SetAttributes& attrs, const IdMapper& ids);

// The bits EncodeFattr would set for `attrs`.
Bitmap SetAttrsMask(const SetAttributes& attrs);

}  // namespace floatmount::nfs::v4
