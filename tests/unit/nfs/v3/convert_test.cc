// nfs3_convert: libnfs's NFSv3 types to the project's and back.
#include "nfs/v3/convert.h"

#include <gtest/gtest.h>

#include "nfs/v4/protocol.h"

namespace floatmount::nfs::v3 {
namespace {

fattr3 SampleFattr() {
  fattr3 a{};
  a.type = NF3LNK;
  a.mode = 0120777;  // type bits must not leak into mode
  a.nlink = 3;
  a.uid = 1000;
  a.gid = 100;
  a.size = 1ull << 40;
  a.used = 4096;
  a.rdev = {8, 17};
  a.fsid = 0x1234;
  a.fileid = 99;
  a.atime = {10, 1};
  a.mtime = {20, 2};
  a.ctime = {30, 3};
  return a;
}

TEST(Nfs3ConvertTest, AttributesKeepEveryFieldAndDeriveChangeFromCtime) {
  const Attributes a = FromFattr3(SampleFattr());
  EXPECT_EQ(a.type, FileType::kSymlink);
  EXPECT_EQ(a.mode, 0777u);
  EXPECT_EQ(a.nlink, 3u);
  EXPECT_EQ(a.uid, 1000u);
  EXPECT_EQ(a.gid, 100u);
  EXPECT_EQ(a.size, 1ull << 40);
  EXPECT_EQ(a.space_used, 4096u);
  EXPECT_EQ(a.rdev_major, 8u);
  EXPECT_EQ(a.rdev_minor, 17u);
  EXPECT_EQ(a.fsid_major, 0x1234u);
  EXPECT_EQ(a.fileid, 99u);
  EXPECT_EQ(a.atime, (Timestamp{10, 1}));
  EXPECT_EQ(a.mtime, (Timestamp{20, 2}));
  EXPECT_EQ(a.ctime, (Timestamp{30, 3}));
  EXPECT_EQ(a.change, 30'000'000'003ull);
  EXPECT_TRUE(a.Has(Attributes::kChange));
  EXPECT_TRUE(a.Has(Attributes::kRdev));

  fattr3 later = SampleFattr();
  later.ctime.nseconds = 4;
  EXPECT_GT(FromFattr3(later).change, a.change) << "a ctime change must move `change`";
}

TEST(Nfs3ConvertTest, PostOpAttributesOnlyWhenTheyFollow) {
  post_op_attr none{};
  EXPECT_FALSE(FromPostOp(none).has_value());
  post_op_attr some{};
  some.attributes_follow = 1;
  some.post_op_attr_u.attributes = SampleFattr();
  ASSERT_TRUE(FromPostOp(some).has_value());
  EXPECT_EQ(FromPostOp(some)->fileid, 99u);
}

TEST(Nfs3ConvertTest, SattrSetsOnlyWhatIsAsked) {
  SetAttributes none;
  const sattr3 empty = ToSattr3(none);
  EXPECT_EQ(empty.mode.set_it, 0u);
  EXPECT_EQ(empty.uid.set_it, 0u);
  EXPECT_EQ(empty.gid.set_it, 0u);
  EXPECT_EQ(empty.size.set_it, 0u);
  EXPECT_EQ(empty.atime.set_it, DONT_CHANGE);
  EXPECT_EQ(empty.mtime.set_it, DONT_CHANGE);

  SetAttributes s;
  s.mode = 0104755;
  s.size = 0;
  s.gid = 7;
  s.atime_how = SetAttributes::TimeHow::kServerTime;
  s.mtime_how = SetAttributes::TimeHow::kClientTime;
  s.mtime = {123, 456};
  const sattr3 out = ToSattr3(s);
  EXPECT_EQ(out.mode.set_it, 1u);
  EXPECT_EQ(out.mode.set_mode3_u.mode, 04755u);
  EXPECT_EQ(out.size.set_it, 1u);
  EXPECT_EQ(out.size.set_size3_u.size, 0u);
  EXPECT_EQ(out.uid.set_it, 0u);
  EXPECT_EQ(out.gid.set_gid3_u.gid, 7u);
  EXPECT_EQ(out.atime.set_it, SET_TO_SERVER_TIME);
  EXPECT_EQ(out.mtime.set_it, SET_TO_CLIENT_TIME);
  EXPECT_EQ(out.mtime.set_mtime_u.mtime.seconds, 123u);
  EXPECT_EQ(out.mtime.set_mtime_u.mtime.nseconds, 456u);
}

TEST(Nfs3ConvertTest, FileHandlesRoundTrip) {
  const uint8_t bytes[] = {1, 2, 3, 250, 0, 9};
  const FileHandle fh(bytes, sizeof(bytes));
  const nfs_fh3 wire = ToFh3(fh);
  EXPECT_EQ(wire.data.data_len, sizeof(bytes));
  EXPECT_EQ(FromFh3(wire), fh);
}

TEST(Nfs3ConvertTest, Nfsstat3CodesAreTheNfs4CodesOfTheSameName) {
  EXPECT_TRUE(StatusFrom(NFS3ERR_NOENT, "x").IsNfs(v4::NFS4ERR_NOENT));
  EXPECT_TRUE(StatusFrom(NFS3ERR_ACCES, "x").IsNfs(v4::NFS4ERR_ACCESS));
  EXPECT_TRUE(StatusFrom(NFS3ERR_NOTEMPTY, "x").IsNfs(v4::NFS4ERR_NOTEMPTY));
  EXPECT_TRUE(StatusFrom(NFS3ERR_STALE, "x").IsNfs(v4::NFS4ERR_STALE));
  EXPECT_TRUE(StatusFrom(NFS3ERR_BAD_COOKIE, "x").IsNfs(v4::NFS4ERR_BAD_COOKIE));
  EXPECT_TRUE(StatusFrom(NFS3ERR_JUKEBOX, "x").IsNfs(v4::NFS4ERR_DELAY));
  EXPECT_TRUE(StatusFrom(NFS3ERR_DQUOT, "x").IsNfs(v4::NFS4ERR_DQUOT));
}

}  // namespace
}  // namespace floatmount::nfs::v3
