// fattr4 codec (RFC 8881 section 5): decoding every requested attribute,
// rejecting unknown bits and malformed values, and byte-exact encoding of
// the settable attributes.
#include "nfs/v4/attrs.h"
#include "tests/unit/wire.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace floatmount::nfs::v4 {
namespace {

using testing::Bytes;
using testing::Concat;
using testing::Wire;

IdMapper Ids() {
  IdMapperOptions o;
  o.domain = "example.com";
  return IdMapper(o);
}

// The reply to GETATTR(StandardAttrs()).
Bytes StandardReply() {
  Wire vals;
  vals.U32(NF4REG)                 // type
      .U64(0x0000000100000002ULL)  // change
      .U64(123456789)              // size
      .U64(7)                      // fsid.major
      .U64(9)                      // fsid.minor
      .U64(0x1234)                 // fileid
      .U32(0104755)                // mode, with the S_IFREG bits
      .U32(3)                      // numlinks
      .Str("1000")                 // owner
      .Str("root@example.com")     // owner_group
      .U32(8)                      // rawdev.specdata1
      .U32(1)                      // rawdev.specdata2
      .U64(4096)                   // space_used
      .U64(1700000000)
      .U32(5)  // time_access
      .U64(1700000001)
      .U32(6)  // time_metadata
      .U64(~uint64_t{0})
      .U32(999999999);  // time_modify: -1 s
  Wire w;
  w.U32(2).U32(0x0010011a).U32(0x0030a23a).Opaque(vals);
  return w.bytes();
}

TEST(Nfs4AttrsTest, RequestBitmaps) {
  EXPECT_EQ(StandardAttrs().words, (std::vector<uint32_t>{0x0010011a, 0x0030a23a}));
  EXPECT_EQ(StatFsAttrs().words, (std::vector<uint32_t>{0x00e00000, 0x00001c00}));
  EXPECT_EQ(ProbeAttrs().words, (std::vector<uint32_t>{0xf8000465, 0x00080000, 0x00000800}));
}

TEST(Nfs4AttrsTest, DecodesEveryStandardAttribute) {
  const Bytes b = StandardReply();
  XdrDecoder d(b);
  Attributes a;
  ASSERT_TRUE(DecodeFattr(d, Ids(), &a, nullptr, nullptr));
  EXPECT_TRUE(d.ok());
  EXPECT_EQ(d.remaining(), 0u);
  EXPECT_EQ(a.valid, 0x3fffu);  // all 14 fields
  EXPECT_EQ(a.type, FileType::kRegular);
  EXPECT_EQ(a.change, 0x0000000100000002ULL);
  EXPECT_EQ(a.size, 123456789u);
  EXPECT_EQ(a.fsid_major, 7u);
  EXPECT_EQ(a.fsid_minor, 9u);
  EXPECT_EQ(a.fileid, 0x1234u);
  EXPECT_EQ(a.mode, 04755u);
  EXPECT_EQ(a.nlink, 3u);
  EXPECT_EQ(a.uid, 1000u);
  EXPECT_EQ(a.gid, 0u);
  EXPECT_EQ(a.rdev_major, 8u);
  EXPECT_EQ(a.rdev_minor, 1u);
  EXPECT_EQ(a.space_used, 4096u);
  EXPECT_EQ(a.atime, (Timestamp{1700000000, 5}));
  EXPECT_EQ(a.ctime, (Timestamp{1700000001, 6}));
  EXPECT_EQ(a.mtime, (Timestamp{-1, 999999999}));
}

TEST(Nfs4AttrsTest, EveryTruncationFailsCleanly) {
  const Bytes b = StandardReply();
  for (size_t n = 0; n < b.size(); ++n) {
    XdrDecoder d(std::span<const uint8_t>(b.data(), n));
    Attributes a;
    EXPECT_FALSE(DecodeFattr(d, Ids(), &a, nullptr, nullptr)) << n;
    EXPECT_FALSE(d.ok());
    EXPECT_EQ(a.valid, 0u) << "outputs untouched on failure";
  }
}

TEST(Nfs4AttrsTest, FileTypes) {
  const std::pair<uint32_t, FileType> cases[] = {
      {NF4REG, FileType::kRegular},      {NF4DIR, FileType::kDirectory},
      {NF4BLK, FileType::kBlockDevice},  {NF4CHR, FileType::kCharDevice},
      {NF4LNK, FileType::kSymlink},      {NF4SOCK, FileType::kSocket},
      {NF4FIFO, FileType::kFifo},        {NF4ATTRDIR, FileType::kDirectory},
      {NF4NAMEDATTR, FileType::kRegular}};
  for (const auto& [ftype, type] : cases) {
    Wire w;
    w.U32(1).U32(1u << FATTR4_TYPE).Opaque(Wire().U32(ftype));
    XdrDecoder d(w.bytes());
    Attributes a;
    ASSERT_TRUE(DecodeFattr(d, Ids(), &a, nullptr, nullptr)) << ftype;
    EXPECT_EQ(a.type, type);
  }
  for (uint32_t bad : {0u, 10u, 0xffffffffu}) {
    Wire w;
    w.U32(1).U32(1u << FATTR4_TYPE).Opaque(Wire().U32(bad));
    XdrDecoder d(w.bytes());
    Attributes a;
    EXPECT_FALSE(DecodeFattr(d, Ids(), &a, nullptr, nullptr)) << bad;
  }
}

TEST(Nfs4AttrsTest, StatFs) {
  Wire vals;
  vals.U64(100).U64(200).U64(300).U64(1000).U64(2000).U64(3000);
  Wire w;
  w.U32(2).U32(0x00e00000).U32(0x00001c00).Opaque(vals);
  XdrDecoder d(w.bytes());
  FsStats s;
  ASSERT_TRUE(DecodeFattr(d, Ids(), nullptr, &s, nullptr));
  EXPECT_EQ(s.files_avail, 100u);
  EXPECT_EQ(s.files_free, 200u);
  EXPECT_EQ(s.files_total, 300u);
  EXPECT_EQ(s.space_avail, 1000u);
  EXPECT_EQ(s.space_free, 2000u);
  EXPECT_EQ(s.space_total, 3000u);
}

TEST(Nfs4AttrsTest, Probe) {
  Wire vals;
  vals.U32(3)
      .U32(0xffffffff)
      .U32(0x00ffffff)
      .U32(0x00001fff)             // supported_attrs
      .U32(FH4_VOL_RENAME)         // fh_expire_type
      .U32(1)                      // link_support
      .U32(0)                      // symlink_support
      .U32(90)                     // lease_time
      .U64(0x7fffffffffffffffULL)  // maxfilesize
      .U32(32000)                  // maxlink
      .U32(255)                    // maxname
      .U64(1048576)                // maxread
      .U64(2097152)                // maxwrite
      .U64(0)
      .U32(1)  // time_delta
      .U32(2)
      .U32(0x10)
      .U32(0x2);  // suppattr_exclcreat
  Wire w;
  w.U32(3).U32(0xf8000465).U32(0x00080000).U32(0x00000800).Opaque(vals);
  XdrDecoder d(w.bytes());
  ServerLimits l;
  ASSERT_TRUE(DecodeFattr(d, Ids(), nullptr, nullptr, &l));
  EXPECT_EQ(l.returned, ProbeAttrs());
  EXPECT_TRUE(l.supported.Test(FATTR4_FS_CHARSET_CAP));
  EXPECT_FALSE(l.supported.Test(77));
  EXPECT_EQ(l.fh_expire_type, FH4_VOL_RENAME);
  EXPECT_TRUE(l.link_support);
  EXPECT_FALSE(l.symlink_support);
  EXPECT_EQ(l.lease_time, 90u);
  EXPECT_EQ(l.maxfilesize, 0x7fffffffffffffffULL);
  EXPECT_EQ(l.maxlink, 32000u);
  EXPECT_EQ(l.maxname, 255u);
  EXPECT_EQ(l.maxread, 1048576u);
  EXPECT_EQ(l.maxwrite, 2097152u);
  EXPECT_EQ(l.time_delta, (Timestamp{0, 1}));
  EXPECT_EQ(l.suppattr_exclcreat, (Bitmap{FATTR4_SIZE, FATTR4_MODE}));
}

TEST(Nfs4AttrsTest, FileHandleAndSkippedAttributes) {
  // type, acl, filehandle, fileid, mounted_on_fileid: the acl and
  // mounted_on_fileid are parsed and dropped.
  Wire vals;
  vals.U32(NF4DIR)  // type
      .U32(1)
      .U32(0)
      .U32(0)
      .U32(0x1)
      .Str("OWNER@")                // acl: one nfsace4
      .Str("\x01\x02\x03\x04\x05")  // filehandle
      .U64(42)                      // fileid
      .U64(43);                     // mounted_on_fileid
  Wire w;
  w.U32(2).U32(0x00181002).U32(0x00800000).Opaque(vals);
  XdrDecoder d(w.bytes());
  Attributes a;
  FileHandle fh;
  ASSERT_TRUE(DecodeFattr(d, Ids(), &a, nullptr, nullptr, &fh));
  EXPECT_EQ(a.type, FileType::kDirectory);
  EXPECT_EQ(a.fileid, 42u);
  EXPECT_EQ(a.valid, Attributes::kType | Attributes::kFileId);
  const uint8_t expected_fh[] = {1, 2, 3, 4, 5};
  EXPECT_EQ(fh, FileHandle(expected_fh, 5));

  // Without outputs everything is skipped, still strictly.
  XdrDecoder d2(w.bytes());
  EXPECT_TRUE(DecodeFattr(d2, Ids(), nullptr, nullptr, nullptr, nullptr));
  EXPECT_EQ(d2.remaining(), 0u);
}

TEST(Nfs4AttrsTest, RejectsUnknownOrWriteOnlyBits) {
  // fs_locations_info (67) has no decoder, time_access_set (48) is write-only,
  // 100 is not an attribute of RFC 8881.
  for (uint32_t bit : {67u, 68u, 48u, 54u, 74u, 100u}) {
    Bitmap mask{FATTR4_SIZE, bit};
    Wire w;
    w.U32(static_cast<uint32_t>(mask.words.size()));
    for (uint32_t word : mask.words) w.U32(word);
    w.Opaque(Wire().U64(1).U32(0).U32(0));
    XdrDecoder d(w.bytes());
    Attributes a;
    EXPECT_FALSE(DecodeFattr(d, Ids(), &a, nullptr, nullptr)) << bit;
    EXPECT_FALSE(d.ok());
    EXPECT_EQ(a.valid, 0u);
  }
}

TEST(Nfs4AttrsTest, RejectsLengthMismatchAndBadValues) {
  {  // attr_vals longer than the values
    Wire w;
    w.U32(1).U32(1u << FATTR4_SIZE).Opaque(Wire().U64(1).U32(0));
    XdrDecoder d(w.bytes());
    EXPECT_FALSE(DecodeFattr(d, Ids(), nullptr, nullptr, nullptr));
  }
  {  // attr_vals shorter than the values
    Wire w;
    w.U32(1).U32(1u << FATTR4_SIZE).Opaque(Wire().U32(1));
    XdrDecoder d(w.bytes());
    EXPECT_FALSE(DecodeFattr(d, Ids(), nullptr, nullptr, nullptr));
  }
  {  // nseconds out of range
    Wire w;
    w.U32(2).U32(0).U32(1u << (FATTR4_TIME_MODIFY - 32)).Opaque(Wire().U64(1).U32(1000000000));
    XdrDecoder d(w.bytes());
    Attributes a;
    EXPECT_FALSE(DecodeFattr(d, Ids(), &a, nullptr, nullptr));
  }
  {  // bitmap with too many words
    Wire w;
    w.U32(9);
    for (int i = 0; i < 9; ++i) w.U32(0);
    w.U32(0);
    XdrDecoder d(w.bytes());
    EXPECT_FALSE(DecodeFattr(d, Ids(), nullptr, nullptr, nullptr));
  }
  {  // an empty fattr4 is fine
    Wire w;
    w.U32(0).U32(0);
    XdrDecoder d(w.bytes());
    Attributes a;
    EXPECT_TRUE(DecodeFattr(d, Ids(), &a, nullptr, nullptr));
    EXPECT_EQ(a.valid, 0u);
  }
}

TEST(Nfs4AttrsTest, UnknownOwnerIsNobody) {
  Wire vals;
  vals.Str("alice@elsewhere.org").Str("no-such-group@example.com");
  Wire w;
  w.U32(2).U32(0).U32(0x30).Opaque(vals);
  XdrDecoder d(w.bytes());
  Attributes a;
  ASSERT_TRUE(DecodeFattr(d, Ids(), &a, nullptr, nullptr));
  EXPECT_EQ(a.uid, IdMapper::kNobodyUid);
  EXPECT_EQ(a.gid, IdMapper::kNobodyGid);
}

Bytes Encode(const SetAttributes& s) {
  XdrEncoder e;
  EncodeFattr(e, s, Ids());
  return e.Flatten();
}

TEST(Nfs4AttrsTest, EncodeEmpty) {
  EXPECT_EQ(Encode(SetAttributes()), (Bytes{
                                         0x00, 0x00, 0x00, 0x00,  // bitmap: 0 words
                                         0x00, 0x00, 0x00, 0x00,  // attr_vals: 0 bytes
                                     }));
}

TEST(Nfs4AttrsTest, EncodeSizeOnlyHasOneBitmapWord) {
  SetAttributes s;
  s.size = 4096;
  EXPECT_EQ(Encode(s), (Bytes{
                           0x00, 0x00, 0x00, 0x01,  // bitmap: 1 word
                           0x00, 0x00, 0x00, 0x10,  // bit 4: size
                           0x00, 0x00, 0x00, 0x08,  // attr_vals: 8 bytes
                           0x00, 0x00, 0x00, 0x00,  //
                           0x00, 0x00, 0x10, 0x00,  // size 4096
                       }));
}

TEST(Nfs4AttrsTest, EncodeModeOnly) {
  SetAttributes s;
  s.mode = 0100644;  // the type bits are dropped
  EXPECT_EQ(Encode(s), (Bytes{
                           0x00, 0x00, 0x00, 0x02,  // bitmap: 2 words
                           0x00, 0x00, 0x00, 0x00,  //
                           0x00, 0x00, 0x00, 0x02,  // bit 33: mode
                           0x00, 0x00, 0x00, 0x04,  // attr_vals: 4 bytes
                           0x00, 0x00, 0x01, 0xa4,  // 0644
                       }));
}

TEST(Nfs4AttrsTest, EncodeAll) {
  SetAttributes s;
  s.size = 1;
  s.mode = 0755;
  s.uid = 1000;
  s.gid = 100;
  s.atime_how = SetAttributes::TimeHow::kServerTime;
  s.mtime_how = SetAttributes::TimeHow::kClientTime;
  s.mtime = Timestamp{1700000000, 500};
  EXPECT_EQ(Encode(s), (Bytes{
                           0x00, 0x00, 0x00, 0x02,  // bitmap: 2 words
                           0x00, 0x00, 0x00, 0x10,  // size
                           0x00, 0x41, 0x00, 0x32,  // mode owner group atime_set mtime_set
                           0x00, 0x00, 0x00, 0x30,  // attr_vals: 48 bytes
                           0x00, 0x00, 0x00, 0x00,  //
                           0x00, 0x00, 0x00, 0x01,  // size 1
                           0x00, 0x00, 0x01, 0xed,  // mode 0755
                           0x00, 0x00, 0x00, 0x04,  // owner: 4 bytes
                           '1',  '0',  '0',  '0',   //
                           0x00, 0x00, 0x00, 0x03,  // owner_group: 3 bytes
                           '1',  '0',  '0',  0x00,  // + padding
                           0x00, 0x00, 0x00, 0x00,  // SET_TO_SERVER_TIME4
                           0x00, 0x00, 0x00, 0x01,  // SET_TO_CLIENT_TIME4
                           0x00, 0x00, 0x00, 0x00,  //
                           0x65, 0x53, 0xf1, 0x00,  // seconds 1700000000
                           0x00, 0x00, 0x01, 0xf4,  // nseconds 500
                       }));
  EXPECT_EQ(SetAttrsMask(s), (Bitmap{FATTR4_SIZE, FATTR4_MODE, FATTR4_OWNER, FATTR4_OWNER_GROUP,
                                     FATTR4_TIME_ACCESS_SET, FATTR4_TIME_MODIFY_SET}));
}

TEST(Nfs4AttrsTest, EncodedAttributesDecodeBack) {
  SetAttributes s;
  s.size = 77;
  s.mode = 0640;
  s.uid = 0;
  s.gid = 65534;
  XdrEncoder e;
  EncodeFattr(e, s, Ids());
  const Bytes b = e.Flatten();
  XdrDecoder d(b);
  Attributes a;
  ASSERT_TRUE(DecodeFattr(d, Ids(), &a, nullptr, nullptr));
  EXPECT_EQ(a.size, 77u);
  EXPECT_EQ(a.mode, 0640u);
  EXPECT_EQ(a.uid, 0u);
  EXPECT_EQ(a.gid, 65534u);
  EXPECT_EQ(a.valid, Attributes::kSize | Attributes::kMode | Attributes::kUid | Attributes::kGid);
}

TEST(Nfs4AttrsTest, BitmapHelpers) {
  Bitmap b;
  EXPECT_TRUE(b.empty());
  b.Set(FATTR4_MODE);
  EXPECT_TRUE(b.Test(FATTR4_MODE));
  EXPECT_FALSE(b.Test(FATTR4_SIZE));
  EXPECT_FALSE(b.Test(1000));
  b.Clear(FATTR4_MODE);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(b, Bitmap());  // trailing zero words do not count
  XdrEncoder e;
  EncodeBitmap(e, b);
  EXPECT_EQ(e.Flatten(), (Bytes{0, 0, 0, 0}));
}

}  // namespace
}  // namespace floatmount::nfs::v4
