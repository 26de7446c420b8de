#include "nfs/v4/lock_ranges.h"

#include <gtest/gtest.h>

#include <vector>

#include "nfs/v4/protocol.h"

namespace floatmount::nfs {
namespace {

using v4::NFS4_UINT64_MAX;
using v4::READ_LT;
using v4::READW_LT;
using v4::WRITE_LT;

std::vector<LockRange> R(std::initializer_list<LockRange> ranges) { return ranges; }

TEST(LockRangesTest, DisjointLocksAreKeptApartInOffsetOrder) {
  LockRanges held;
  held.Lock(WRITE_LT, 200, 100);
  held.Lock(READ_LT, 0, 10);
  EXPECT_EQ(held.ranges(), R({{READ_LT, 0, 10}, {WRITE_LT, 200, 100}}));
}

TEST(LockRangesTest, TouchingLocksOfOneTypeMerge) {
  LockRanges held;
  held.Lock(WRITE_LT, 0, 10);
  held.Lock(WRITE_LT, 20, 10);
  held.Lock(WRITE_LT, 10, 10);  // fills the gap: one range
  EXPECT_EQ(held.ranges(), R({{WRITE_LT, 0, 30}}));
  held.Lock(READ_LT, 30, 5);  // touching, other type: stays apart
  EXPECT_EQ(held.ranges(), R({{WRITE_LT, 0, 30}, {READ_LT, 30, 5}}));
}

TEST(LockRangesTest, ALockReplacesWhatTheOwnerHeldThere) {
  LockRanges held;
  held.Lock(WRITE_LT, 0, 100);
  held.Lock(READW_LT, 40, 20);  // a downgrade in the middle splits the write lock
  EXPECT_EQ(held.ranges(), R({{WRITE_LT, 0, 40}, {READ_LT, 40, 20}, {WRITE_LT, 60, 40}}));
  held.Lock(WRITE_LT, 30, 40);  // and the upgrade joins it again
  EXPECT_EQ(held.ranges(), R({{WRITE_LT, 0, 100}}));
}

TEST(LockRangesTest, UnlockSplitsAndRemoves) {
  LockRanges held;
  held.Lock(WRITE_LT, 0, 100);
  held.Unlock(10, 10);
  EXPECT_EQ(held.ranges(), R({{WRITE_LT, 0, 10}, {WRITE_LT, 20, 80}}));
  held.Unlock(0, 50);
  EXPECT_EQ(held.ranges(), R({{WRITE_LT, 50, 50}}));
  held.Unlock(0, NFS4_UINT64_MAX);
  EXPECT_TRUE(held.empty());
}

TEST(LockRangesTest, ToTheEndOfTheFileStaysAllOnes) {
  LockRanges held;
  held.Lock(WRITE_LT, 100, NFS4_UINT64_MAX);
  EXPECT_EQ(held.ranges(), R({{WRITE_LT, 100, NFS4_UINT64_MAX}}));
  held.Unlock(200, 10);
  EXPECT_EQ(held.ranges(), R({{WRITE_LT, 100, 100}, {WRITE_LT, 210, NFS4_UINT64_MAX}}));
  held.Lock(READ_LT, 0, NFS4_UINT64_MAX);  // the whole file, as a read lock
  EXPECT_EQ(held.ranges(), R({{READ_LT, 0, NFS4_UINT64_MAX}}));
}

}  // namespace
}  // namespace floatmount::nfs
