// What one mount sees of another's changes (two floatmount processes, two
// NFSv4 client IDs, one export): close-to-open consistency with the default
// caching, and immediate visibility of attributes and names with noac. (New
// names are only promised with noac or lookupcache=positive: like the
// kernel client, the default mode answers "no such file" from its cache
// for up to actimeo.)
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "tests/integration/mount_fixture.h"

namespace floatmount::testing {
namespace {

class PosixCoherenceTest : public MountTest {};

// After a close on one mount, an open on the other sees the new data, even
// when the size did not change and the reader had the old data cached.
TEST_F(PosixCoherenceTest, CloseToOpenAcrossMounts) {
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  const std::string v1 = TestData(200 * 1024, 1);
  const std::string v2 = TestData(200 * 1024, 2);
  ASSERT_TRUE(WriteFile(Path("doc"), v1));
  EXPECT_TRUE(SameBytes(ReadFile(other->Path("doc")).value_or(""), v1));

  // Same size, other bytes: only the change attribute tells.
  ASSERT_TRUE(WriteFile(Path("doc"), v2));
  EXPECT_TRUE(SameBytes(ReadFile(other->Path("doc")).value_or(""), v2));

  // And back the other way, growing the file.
  {
    UniqueFd fd(open(other->Path("doc").c_str(), O_WRONLY | O_APPEND));
    ASSERT_SYSCALL(fd.get());
    ASSERT_EQ(write(fd.get(), "appended", 8), 8);
    ASSERT_EQ(fd.Close(), 0) << ErrnoText();
  }
  UniqueFd fd(open(Path("doc").c_str(), O_RDONLY));
  ASSERT_SYSCALL(fd.get());
  struct stat st {};
  ASSERT_SYSCALL(fstat(fd.get(), &st));
  EXPECT_EQ(st.st_size, static_cast<off_t>(v2.size() + 8));
  const auto tail = PreadUpTo(fd.get(), 100, static_cast<off_t>(v2.size()));
  ASSERT_TRUE(tail) << ErrnoText();
  EXPECT_EQ(*tail, "appended");
}

class PosixNoacTest : public MountTest {
 protected:
  PosixNoacTest() { mount_options_ = "noac"; }
};

// With noac the test's mount asks the server every time: changes made
// through another mount show at once, without reopening anything.
TEST_F(PosixNoacTest, OtherMountsChangesShowAtOnce) {
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  struct stat st {};
  EXPECT_FAILS_WITH(stat(Path("f").c_str(), &st), ENOENT);
  ASSERT_TRUE(WriteFile(other->Path("f"), "0123456789"));
  ASSERT_SYSCALL(stat(Path("f").c_str(), &st)) << " right after the other mount created it";
  EXPECT_EQ(st.st_size, 10);

  {
    UniqueFd fd(open(other->Path("f").c_str(), O_WRONLY | O_APPEND));
    ASSERT_SYSCALL(fd.get());
    ASSERT_EQ(write(fd.get(), "abcde", 5), 5);
    ASSERT_EQ(fd.Close(), 0) << ErrnoText();
  }
  ASSERT_SYSCALL(stat(Path("f").c_str(), &st));
  EXPECT_EQ(st.st_size, 15);

  ASSERT_SYSCALL(chmod(other->Path("f").c_str(), 0600));
  ASSERT_SYSCALL(stat(Path("f").c_str(), &st));
  EXPECT_EQ(st.st_mode & 07777, 0600u);

  ASSERT_SYSCALL(rename(other->Path("f").c_str(), other->Path("g").c_str()));
  EXPECT_FAILS_WITH(stat(Path("f").c_str(), &st), ENOENT);
  ASSERT_SYSCALL(stat(Path("g").c_str(), &st));
  EXPECT_EQ(st.st_size, 15);

  ASSERT_SYSCALL(mkdir(other->Path("d").c_str(), 0755));
  ASSERT_TRUE(WriteFile(other->Path("d/x"), "x"));
  EXPECT_EQ(ListDir(Path("d")).value_or(std::vector<std::string>{"<error>"}),
            std::vector<std::string>{"x"});

  ASSERT_SYSCALL(unlink(other->Path("g").c_str()));
  EXPECT_FAILS_WITH(stat(Path("g").c_str(), &st), ENOENT);
  const auto root = ListDir(Path(""));
  ASSERT_TRUE(root) << ErrnoText();
  EXPECT_EQ(*root, std::vector<std::string>{"d"});
}

// A name found missing is remembered as missing for actimeo (the kernel's
// negative dentry, issue 18; the kernel NFS client's default too): a file
// another mount creates shows here once that runs out, without anything
// else happening here.
class PosixCoherenceNegativeEntryTest : public MountTest {
 protected:
  PosixCoherenceNegativeEntryTest() { mount_options_ = "actimeo=2"; }
};

TEST_F(PosixCoherenceNegativeEntryTest, AnotherMountsNewFileShowsWithinActimeo) {
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  struct stat st {};
  EXPECT_FAILS_WITH(stat(Path("f").c_str(), &st), ENOENT);
  ASSERT_TRUE(WriteFile(other->Path("f"), "0123456789"));
  const auto start = std::chrono::steady_clock::now();
  while (stat(Path("f").c_str(), &st) != 0 &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    usleep(100 * 1000);
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  ASSERT_SYSCALL(stat(Path("f").c_str(), &st));
  EXPECT_EQ(st.st_size, 10);
  EXPECT_LE(waited, std::chrono::milliseconds(3000)) << "actimeo=2";
}

// lookupcache=positive: missing names are not remembered, so another
// mount's new file shows at once even with a long actimeo.
class PosixCoherencePositiveLookupCacheTest : public MountTest {
 protected:
  PosixCoherencePositiveLookupCacheTest() { mount_options_ = "actimeo=3600,lookupcache=positive"; }
};

TEST_F(PosixCoherencePositiveLookupCacheTest, AnotherMountsNewFileShowsAtOnce) {
  FloatMount* other = MountSecond();
  ASSERT_NE(other, nullptr);
  struct stat st {};
  EXPECT_FAILS_WITH(stat(Path("f").c_str(), &st), ENOENT);
  EXPECT_FAILS_WITH(stat(Path("f").c_str(), &st), ENOENT);
  ASSERT_TRUE(WriteFile(other->Path("f"), "0123456789"));
  ASSERT_SYSCALL(stat(Path("f").c_str(), &st)) << " right after the other mount created it";
  EXPECT_EQ(st.st_size, 10);
}

}  // namespace
}  // namespace floatmount::testing
