#include "fuse/written_ends.h"

#include <gtest/gtest.h>

namespace floatmount::fuse {
namespace {

TEST(WrittenEnds, AnAnswerIsNeverShorterThanAWriteThatCompletedAfterItsStamp) {
  WrittenEnds ends;
  const uint64_t before = ends.Stamp();
  ends.Written(7, 5000);
  EXPECT_EQ(ends.SizeAfter(7, before, 0), 5000u);    // made before the WRITE landed
  EXPECT_EQ(ends.SizeAfter(7, before, 9000), 9000u);  // the server knows more
  EXPECT_EQ(ends.SizeAfter(8, before, 0), 0u);        // another file
  // Asked after the WRITE completed: the server's answer is the truth (a
  // truncate by another client shows).
  EXPECT_EQ(ends.SizeAfter(7, ends.Stamp(), 100), 100u);
}

TEST(WrittenEnds, TheFurthestOfTheWritesAfterTheStampCounts) {
  WrittenEnds ends;
  const uint64_t s0 = ends.Stamp();
  ends.Written(1, 300);
  const uint64_t s1 = ends.Stamp();
  ends.Written(1, 100);
  const uint64_t s2 = ends.Stamp();
  ends.Written(1, 200);
  EXPECT_EQ(ends.SizeAfter(1, s0, 0), 300u);
  EXPECT_EQ(ends.SizeAfter(1, s1, 0), 200u);
  EXPECT_EQ(ends.SizeAfter(1, s2, 0), 200u);
  EXPECT_EQ(ends.SizeAfter(1, ends.Stamp(), 0), 0u);
}

TEST(WrittenEnds, ATruncateByThisMountMakesTheServersSizeTheTruth) {
  WrittenEnds ends;
  const uint64_t before = ends.Stamp();
  ends.Written(1, 5000);
  ends.Resized(1);
  EXPECT_EQ(ends.SizeAfter(1, before, 0), 0u);
  ends.Written(2, 10);
  ends.Forget(2);
  EXPECT_EQ(ends.files(), 0u);
}

// A writer going backwards leaves a step per write; past the bound the
// oldest merge, which may only make an old stamp's size larger.
TEST(WrittenEnds, ABackwardsWriterIsBoundedAndNeverCutsItsBytes) {
  WrittenEnds ends;
  std::vector<uint64_t> stamps;
  constexpr uint64_t kWrites = 100;
  for (uint64_t i = 0; i < kWrites; ++i) {
    stamps.push_back(ends.Stamp());
    ends.Written(1, (kWrites - i) * 1000);
  }
  for (uint64_t i = 0; i < kWrites; ++i) {
    const uint64_t exact = (kWrites - i) * 1000;
    const uint64_t got = ends.SizeAfter(1, stamps[i], 0);
    EXPECT_GE(got, exact) << i;
    if (i >= kWrites - WrittenEnds::kSteps + 1) {
      EXPECT_EQ(got, exact) << i;  // the newest steps are exact
    }
  }
}

}  // namespace
}  // namespace floatmount::fuse
