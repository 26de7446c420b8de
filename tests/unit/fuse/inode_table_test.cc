#include "fuse/inode_table.h"

#include <gtest/gtest.h>

namespace floatmount::fuse {
namespace {

nfs::FileHandle Fh(uint8_t b) { return nfs::FileHandle(&b, 1); }

TEST(InodeTableTest, RootIsInodeOneAndNeverForgotten) {
  InodeTable t(Fh(0));
  EXPECT_EQ(t.Handle(kRootInode), Fh(0));
  t.Forget(kRootInode, 100);
  EXPECT_TRUE(t.Handle(kRootInode));
  EXPECT_EQ(t.Learn(Fh(0), {}), kRootInode);
}

TEST(InodeTableTest, OneInodePerHandleUntilForgotten) {
  InodeTable t(Fh(0));
  const InodeId a = t.Learn(Fh(1), {});
  EXPECT_EQ(t.Learn(Fh(1), {}), a);
  const InodeId b = t.Learn(Fh(2), {});
  EXPECT_NE(a, b);
  EXPECT_EQ(t.lookups(a), 2u);
  t.Forget(a, 1);
  EXPECT_TRUE(t.Handle(a));
  t.Forget(a, 1);
  EXPECT_FALSE(t.Handle(a));
  EXPECT_EQ(t.size(), 2u);  // root and b
  EXPECT_NE(t.Learn(Fh(1), {}), a);  // a fresh number after it was forgotten
}

TEST(InodeTableTest, RemembersTheLastAttributes) {
  InodeTable t(Fh(0));
  nfs::Attributes attr;
  attr.valid = nfs::Attributes::kChange;
  attr.change = 5;
  const InodeId a = t.Learn(Fh(1), attr);
  attr.change = 6;
  EXPECT_EQ(t.UpdateAttributes(a, attr), 5u);
  EXPECT_EQ(t.Attributes(a)->change, 6u);
  EXPECT_FALSE(t.UpdateAttributes(999, attr));
}

}  // namespace
}  // namespace floatmount::fuse
