// Reading a caller's supplementary groups from /proc (fuse/caller_groups.h).
#include "fuse/caller_groups.h"

#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

namespace floatmount::fuse {
namespace {

std::optional<std::vector<uint32_t>> Parse(const std::string& text) {
  return ParseStatusGroups(text.data(), text.size());
}

TEST(CallerGroupsTest, ParsesTheGroupsLine) {
  EXPECT_EQ(Parse("Name:\tcat\nGid:\t0\t0\t0\t0\nGroups:\t4 24 1500 \nNStgid:\t7\n"),
            (std::vector<uint32_t>{4, 24, 1500}));
  EXPECT_EQ(Parse("Groups:\t4294967294\n"), (std::vector<uint32_t>{4294967294u}));
  EXPECT_EQ(Parse("Uid:\t0\nGroups:\t\nNStgid:\t7\n"), std::vector<uint32_t>{});  // none
  EXPECT_EQ(Parse("Uid:\t0\nGroups:\t12"), std::vector<uint32_t>{12});  // no newline at the end
  EXPECT_FALSE(Parse("Uid:\t0\nGid:\t0\n").has_value());
  EXPECT_FALSE(Parse("").has_value());
  // Only a line that starts with it.
  EXPECT_FALSE(Parse("Name:\tGroups: 1 2\n").has_value());
}

TEST(CallerGroupsTest, ReadsThisThreadsGroups) {
  std::vector<gid_t> expected(static_cast<size_t>(getgroups(0, nullptr)));
  ASSERT_EQ(getgroups(static_cast<int>(expected.size()), expected.data()),
            static_cast<int>(expected.size()));
  const auto got = ReadCallerGroups(static_cast<pid_t>(syscall(SYS_gettid)));
  ASSERT_TRUE(got.has_value());
  std::vector<uint32_t> want(expected.begin(), expected.end());
  std::vector<uint32_t> have = *got;
  std::sort(want.begin(), want.end());
  std::sort(have.begin(), have.end());
  EXPECT_EQ(have, want);
}

TEST(CallerGroupsTest, AThreadThatIsGoneHasNone) {
  EXPECT_FALSE(ReadCallerGroups(0).has_value());
  EXPECT_FALSE(ReadCallerGroups(-1).has_value());
}

}  // namespace
}  // namespace floatmount::fuse
