// NegativeNames (fuse/negative_names.h): remembered absences expire, are
// forgotten by name, are not remembered when a Forget overtook the LOOKUP,
// and stay within the capacity.
#include "fuse/negative_names.h"

#include <gtest/gtest.h>

namespace floatmount::fuse {
namespace {

using Clock = NegativeNames::Clock;
using std::chrono::seconds;

TEST(NegativeNamesTest, AMissingNameIsMissingUntilItsTime) {
  NegativeNames names;
  const Clock::time_point t0 = Clock::now();
  names.Remember(1, "a", t0 + seconds(3), names.Stamp());
  EXPECT_EQ(names.Missing(1, "a", t0 + seconds(1)), seconds(2));
  EXPECT_FALSE(names.Missing(2, "a", t0));  // another directory
  EXPECT_FALSE(names.Missing(1, "b", t0));
  EXPECT_FALSE(names.Missing(1, "a", t0 + seconds(3)));  // expired, and dropped
  EXPECT_EQ(names.size(), 0u);
}

TEST(NegativeNamesTest, ForgetEndsItAndOvertakenLookupsAreNotRemembered) {
  NegativeNames names;
  const Clock::time_point t0 = Clock::now();
  names.Remember(1, "a", t0 + seconds(3), names.Stamp());
  names.Forget(1, "a");
  EXPECT_FALSE(names.Missing(1, "a", t0));
  // A LOOKUP sent before a create, answered after it: its "missing" is old.
  const uint64_t stamp = names.Stamp();
  names.Forget(1, "b");
  names.Remember(1, "b", t0 + seconds(3), stamp);
  EXPECT_FALSE(names.Missing(1, "b", t0));
}

TEST(NegativeNamesTest, StaysWithinItsCapacity) {
  NegativeNames names(4);
  const Clock::time_point later = Clock::now() + seconds(60);
  for (int i = 0; i < 10; ++i) names.Remember(1, std::to_string(i), later, names.Stamp());
  EXPECT_LE(names.size(), 4u);
  EXPECT_TRUE(names.Missing(1, "9", Clock::now()));  // the newest is kept
}

}  // namespace
}  // namespace floatmount::fuse
