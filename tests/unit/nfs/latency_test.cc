#include "nfs/latency.h"

#include <gtest/gtest.h>

namespace floatmount::nfs {
namespace {

TEST(LatencyHistogramTest, QuantilesAreUpperBoundsWithinAFactorOfTwo) {
  LatencyHistogram h;
  EXPECT_EQ(h.QuantileUs(0.99), 0u);
  for (int i = 0; i < 98; ++i) h.Add(10'000);  // 10 ms round trips
  h.Add(400'000);                               // two waits behind other work
  h.Add(450'000);
  EXPECT_EQ(h.count, 100u);
  EXPECT_EQ(h.max_us, 450'000u);
  EXPECT_GE(h.QuantileUs(0.5), 10'000u);
  EXPECT_LT(h.QuantileUs(0.5), 20'000u);
  EXPECT_GE(h.QuantileUs(0.99), 400'000u);
  EXPECT_LE(h.QuantileUs(0.99), 450'000u);  // never above the maximum
  EXPECT_EQ(h.MeanUs(), (98u * 10'000 + 850'000) / 100);
}

TEST(LatencyHistogramTest, ZeroAndHugeValuesLandInTheEndBuckets) {
  LatencyHistogram h;
  h.Add(0);
  h.Add(uint64_t{1} << 40);
  EXPECT_EQ(h.buckets.front(), 1u);
  EXPECT_EQ(h.buckets.back(), 1u);
  EXPECT_EQ(h.QuantileUs(1.0), uint64_t{1} << 40);
}

}  // namespace
}  // namespace floatmount::nfs
