#include "fuse/inode_table.h"

#include <gtest/gtest.h>

#include <chrono>

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

// Attributes from an OPEN answer GETATTR until their time runs out, and
// never after a change that started since the OPEN was sent (Changed, at
// the start and the end of each change this mount makes).
TEST(InodeTableTest, FreshAttributesLastUntilTheirTimeOrTheNextChange) {
  using namespace std::chrono_literals;
  InodeTable t(Fh(0));
  nfs::Attributes attr;
  attr.valid = nfs::Attributes::kSize;
  attr.size = 7;
  const InodeId a = t.Learn(Fh(1), attr);
  const auto now = InodeTable::Clock::now();
  EXPECT_FALSE(t.FreshAttributes(a, now)) << "nothing marked yet";

  t.FreshUntil(a, t.Epoch(), now + 10s);
  auto fresh = t.FreshAttributes(a, now + 4s);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->attr.size, 7u);
  EXPECT_EQ(fresh->left, 6s);
  EXPECT_FALSE(t.FreshAttributes(a, now + 10s)) << "past its time";

  t.FreshUntil(a, t.Epoch(), now + 10s);
  t.Changed();
  EXPECT_FALSE(t.FreshAttributes(a, now)) << "a change through this mount ended it";

  // The OPEN was sent before a change started: its reply may predate it.
  const uint64_t before = t.Epoch();
  t.Changed();
  t.FreshUntil(a, before, now + 10s);
  EXPECT_FALSE(t.FreshAttributes(a, now));

  EXPECT_FALSE(t.FreshAttributes(999, now)) << "an unknown inode";
}

}  // namespace
}  // namespace floatmount::fuse
